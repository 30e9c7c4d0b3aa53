//! The engine: one entry point, `Engine::call(name, arguments, context)`,
//! that validates arguments, charges the session's budget, runs the tool,
//! and records a trace row for every call.

mod admin;
mod artifacts;
mod chunks;
mod docs;
mod index;
mod load;
mod search;
mod sessions;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use rlm::tools::{SessionConfig, Tool};
use rlm::{ErrorCode, ToolError};

use crate::store::sessions::Charge;
use crate::store::traces::TraceRow;
use crate::store::{Store, StoreError, io_err, sha256_hex};

pub use crate::store::gc::GC_GRACE;
pub(crate) use crate::store::sessions::{SessionRow, SessionStatus};
pub use index::IndexManager;

/// Server-side settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The data directory (SQLite, blobs, indexes, locks).
    pub data_dir: PathBuf,
    /// Defaults of every new session's config.
    pub session_defaults: SessionConfig,
    /// Files larger than this are not loaded.
    pub max_file_size_mb: u64,
    /// Threads that read and hash files during a load (0: one per core).
    pub load_threads: usize,
    /// When set, file loads may read only below these folders.
    pub allowed_roots: Option<Vec<PathBuf>>,
    /// Session indexes kept open in memory.
    pub index_cache_sessions: usize,
    /// Build a session's index in the background right after each load.
    pub background_index: bool,
    /// Text analysis of new indexes (stop words, stemming).
    pub analyzer: crate::search::analyzer::AnalyzerOptions,
}

impl EngineConfig {
    /// The defaults, with data under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            session_defaults: SessionConfig::default(),
            max_file_size_mb: 100,
            load_threads: 0,
            allowed_roots: None,
            index_cache_sessions: 32,
            background_index: true,
            analyzer: crate::search::analyzer::AnalyzerOptions::DEFAULT,
        }
    }
}

/// Progress of a long call: (done, total if known, message).
pub type ProgressFn = dyn Fn(u64, Option<u64>, &str) + Send + Sync;

/// What the caller of a tool brings besides its arguments.
#[derive(Clone, Default)]
pub struct CallContext {
    /// The client's working directory: relative paths are resolved against it.
    pub cwd: Option<PathBuf>,
    /// Receives progress of long calls (loads, index builds).
    pub progress: Option<Arc<ProgressFn>>,
    /// Set when the client cancels the call.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl CallContext {
    pub fn with_cwd(cwd: impl Into<PathBuf>) -> CallContext {
        CallContext {
            cwd: Some(cwd.into()),
            ..CallContext::default()
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn check_cancel(&self) -> Result<(), ToolError> {
        if self.cancelled() {
            return Err(ToolError::new(
                ErrorCode::Cancelled,
                "the call was cancelled by the client",
            ));
        }
        Ok(())
    }

    fn progress(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(p) = &self.progress {
            p(done, total, message);
        }
    }
}

/// Why a call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No tool has this name: a protocol error (JSON-RPC -32602), not a tool error.
    #[error(
        "unknown tool {0:?}; the tools are rlm.session.create, rlm.session.info, ... (see tools/list)"
    )]
    UnknownTool(String),
    /// The tool ran and failed; the model can read the error and fix its call.
    #[error(transparent)]
    Tool(#[from] ToolError),
}

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) indexes: IndexManager,
    pub(crate) scan_cache: search::ScanCache,
    /// The threads that read and hash files during a load, built by the
    /// first load of this engine (`EngineConfig::load_threads`).
    pub(crate) load_pool: OnceLock<rayon::ThreadPool>,
}

/// The engine. Cheap to clone; every method blocks, so async callers run it
/// on a blocking thread.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        ToolError::internal(format!(
            "store error: {e}; the call changed nothing it could not finish, retry it"
        ))
    }
}

impl From<crate::store::DbError> for ToolError {
    fn from(e: crate::store::DbError) -> Self {
        ToolError::from(StoreError::from(e))
    }
}

/// Now, as RFC 3339 UTC.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Deserializes arguments, naming the offending field in the error.
pub(crate) fn parse_args<T: DeserializeOwned>(tool: Tool, args: &Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize::<_, T>(args).map_err(|e| {
        let (path, inner) = refine_error(args, e.path().to_string())
            .unwrap_or_else(|| (e.path().to_string(), e.into_inner().to_string()));
        let at = if path == "." {
            String::new()
        } else {
            format!(" at `{path}`")
        };
        ToolError::invalid(format!(
            "invalid arguments for {}{at}: {inner}. See the tool's inputSchema.",
            tool.name()
        ))
        .with("field", path)
    })
}

/// A tagged variant (`{"type": ...}`) is read whole, so serde names only
/// the variant when a field inside it is wrong; reading the variant's own
/// type again names the field (`sources[1].path`, `strategy.overlap`).
fn refine_error(args: &Value, path: String) -> Option<(String, String)> {
    use rlm::tools::{
        DelimiterStrategy, DirectorySource, FileSource, FixedStrategy, GlobSource, InlineSource,
        LinesStrategy,
    };
    fn inner<T: DeserializeOwned>(v: &Value) -> Option<(String, String)> {
        let mut v = v.clone();
        v.as_object_mut()?.remove("type");
        serde_path_to_error::deserialize::<_, T>(&v)
            .err()
            .map(|e| (e.path().to_string(), e.into_inner().to_string()))
    }
    let found = if path == "strategy" {
        let v = args.get("strategy")?;
        match v.get("type")?.as_str()? {
            "fixed" => inner::<FixedStrategy>(v),
            "lines" => inner::<LinesStrategy>(v),
            "delimiter" => inner::<DelimiterStrategy>(v),
            _ => None,
        }
    } else {
        let i: usize = path
            .strip_prefix("sources[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        let v = args.get("sources")?.get(i)?;
        match v.get("type")?.as_str()? {
            "inline" => inner::<InlineSource>(v),
            "file" => inner::<FileSource>(v),
            "glob" => inner::<GlobSource>(v),
            "directory" => inner::<DirectorySource>(v),
            _ => None,
        }
    };
    found.map(|(p, m)| (format!("{path}.{p}"), m))
}

/// Characters of the JSON serialization of `v` (what a client receives).
pub(crate) fn json_chars<T: Serialize + ?Sized>(v: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.iter().filter(|&&b| b & 0xC0 != 0x80).count();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::internal(format!("serializing the result: {e}")))
}

/// The session-id field of a call, checked to be a string.
fn session_id_of(tool: Tool, args: &Value) -> Result<String, ToolError> {
    match args.get("session_id") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ToolError::invalid(format!(
            "invalid arguments for {}: `session_id` must be a string (the id rlm.session.create returned), got {other}",
            tool.name()
        ))
        .with("field", "session_id")),
        None => Err(ToolError::invalid(format!(
            "invalid arguments for {}: missing `session_id`; create a session with rlm.session.create first",
            tool.name()
        ))
        .with("field", "session_id")),
    }
}

impl Engine {
    /// Opens the engine on its data directory.
    pub fn open(mut config: EngineConfig) -> Result<Engine, StoreError> {
        // Compared against canonical file paths, so canonical themselves.
        if let Some(roots) = &mut config.allowed_roots {
            for r in roots.iter_mut() {
                *r = r
                    .canonicalize()
                    .map_err(io_err(format!("allowed root {}", r.display())))?;
            }
        }
        let store = Arc::new(Store::open(&config.data_dir)?);
        let indexes = IndexManager::new(store.clone(), &config);
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                store,
                indexes,
                scan_cache: Default::default(),
                load_pool: OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Sessions still active, and all sessions, in the store.
    pub fn session_counts(&self) -> Result<(u64, u64), StoreError> {
        self.inner.store.session_counts()
    }

    /// Session indexes open in memory.
    pub fn indexes_cached(&self) -> usize {
        self.inner.indexes.cached()
    }

    /// Runs one tool call. `name` takes either spelling of a tool name.
    pub fn call(&self, name: &str, args: Value, ctx: &CallContext) -> Result<Value, CallError> {
        let tool = Tool::from_name(name).ok_or_else(|| CallError::UnknownTool(name.to_owned()))?;
        let started = Instant::now();
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        let result = if args.is_object() {
            self.run(tool, &args, ctx)
        } else {
            Err(ToolError::invalid(format!(
                "arguments of {} must be a JSON object, got {}",
                tool.name(),
                json_type(&args)
            )))
        };
        let session_id = match (&result, tool) {
            (Ok(v), Tool::SessionCreate) => v
                .get("session_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => args
                .get("session_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        self.record_trace(
            tool,
            session_id.as_deref(),
            &args,
            &result,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        result.map_err(CallError::Tool)
    }

    fn run(&self, tool: Tool, args: &Value, ctx: &CallContext) -> Result<Value, ToolError> {
        match tool {
            Tool::SessionCreate => to_value(&self.session_create(parse_args(tool, args)?)?),
            Tool::SessionClose => {
                let sid = session_id_of(tool, args)?;
                let a: rlm::tools::SessionArgs = parse_args(tool, args)?;
                debug_assert_eq!(a.session_id, sid);
                to_value(&self.session_close(&sid)?)
            }
            _ => {
                let sid = session_id_of(tool, args)?;
                let session = self.charge(&sid)?;
                match tool {
                    Tool::SessionInfo => {
                        let _: rlm::tools::SessionArgs = parse_args(tool, args)?;
                        to_value(&self.session_info(&session)?)
                    }
                    Tool::DocsLoad => {
                        to_value(&self.docs_load(&session, parse_args(tool, args)?, ctx)?)
                    }
                    Tool::DocsList => to_value(&self.docs_list(&session, parse_args(tool, args)?)?),
                    Tool::DocsPeek => to_value(&self.docs_peek(&session, parse_args(tool, args)?)?),
                    Tool::ChunkCreate => {
                        to_value(&self.chunk_create(&session, parse_args(tool, args)?, ctx)?)
                    }
                    Tool::SpanGet => to_value(&self.span_get(&session, parse_args(tool, args)?)?),
                    Tool::SearchQuery => {
                        to_value(&self.search_query(&session, parse_args(tool, args)?, ctx)?)
                    }
                    Tool::ArtifactStore => {
                        to_value(&self.artifact_store(&session, parse_args(tool, args)?)?)
                    }
                    Tool::ArtifactList => {
                        to_value(&self.artifact_list(&session, parse_args(tool, args)?)?)
                    }
                    Tool::ArtifactGet => {
                        to_value(&self.artifact_get(&session, parse_args(tool, args)?)?)
                    }
                    Tool::SessionCreate | Tool::SessionClose => unreachable!("handled above"),
                }
            }
        }
    }

    /// Counts one call against the session's budget, atomically, and returns
    /// the session as it is after the charge.
    fn charge(&self, session_id: &str) -> Result<SessionRow, ToolError> {
        let charged = self.inner.store.charge(session_id)?;
        match charged {
            Charge::Charged(row) => Ok(row),
            Charge::Spent { used, limit } => Err(ToolError::new(
                ErrorCode::BudgetExceeded,
                format!(
                    "session {session_id} has used its budget of tool calls (used {used}, limit {limit}); \
                     create a new session with a larger config.max_tool_calls to go on"
                ),
            )
            .with("used", used)
            .with("limit", limit)),
            Charge::NoSession => Err(self.session_not_found(session_id)),
        }
    }

    pub(crate) fn session_not_found(&self, session_id: &str) -> ToolError {
        ToolError::new(
            ErrorCode::SessionNotFound,
            format!(
                "no session has id {session_id:?}; use the session_id that rlm.session.create returned, or create one"
            ),
        )
        .with("session_id", session_id.to_owned())
    }

    /// Reads a session without charging it.
    pub(crate) fn load_session(&self, session_id: &str) -> Result<SessionRow, ToolError> {
        self.inner
            .store
            .session(session_id)?
            .ok_or_else(|| self.session_not_found(session_id))
    }

    fn record_trace(
        &self,
        tool: Tool,
        session_id: Option<&str>,
        args: &Value,
        result: &Result<Value, ToolError>,
        duration_ms: f64,
    ) {
        let arguments = redacted_arguments(tool, args);
        let (outcome, code, chars, hash) = match result {
            Ok(v) => {
                let (chars, hash) = json_digest(v);
                ("ok", None, Some(chars as i64), Some(hash))
            }
            Err(e) => ("error", Some(e.code.as_str()), None, None),
        };
        let written = self.inner.store.record_trace(&TraceRow {
            session_id,
            operation: tool.name(),
            arguments: &arguments,
            outcome,
            error_code: code,
            duration_ms,
            result_chars: chars,
            result_hash: hash.as_deref(),
            created_at: &now(),
        });
        if let Err(e) = written {
            tracing::warn!(operation = tool.name(), error = %e, "could not record the trace of a call");
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The length in chars and the SHA-256 (hex) of the compact JSON text of `v`.
fn json_digest(v: &Value) -> (u64, String) {
    // `serde_json::to_vec`, not `Value::to_string`: the latter writes through a
    // `fmt::Formatter` and takes twice as long on a search result.
    let text = serde_json::to_vec(v).unwrap_or_default();
    let chars = text.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64;
    (chars, sha256_hex(&text))
}

/// The JSON text of the arguments as traces keep them (see [`redact_arguments`]).
fn redacted_arguments(tool: Tool, args: &Value) -> String {
    match tool {
        Tool::DocsLoad | Tool::ArtifactStore => {
            serde_json::to_string(&redact_arguments(tool, args)).unwrap_or_default()
        }
        // Nothing to redact: no copy of the arguments.
        _ => serde_json::to_string(args).unwrap_or_default(),
    }
}

/// The arguments as traces keep them: document text and artifact content are
/// replaced by their SHA-256 and length, never copied.
fn redact_arguments(tool: Tool, args: &Value) -> Value {
    fn digest(v: &Value) -> Value {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        serde_json::json!({"sha256": sha256_hex(text.as_bytes()), "chars": text.chars().count()})
    }
    let mut out = args.clone();
    match tool {
        Tool::DocsLoad => {
            if let Some(Value::Array(sources)) = out.get_mut("sources") {
                for s in sources {
                    if let Some(c) = s.get_mut("content") {
                        *c = digest(c);
                    }
                }
            }
        }
        Tool::ArtifactStore => {
            if let Some(c) = out.get_mut("content") {
                *c = digest(c);
            }
        }
        _ => {}
    }
    out
}

/// Characters `c` takes inside a JSON string.
fn json_char_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        _ => 1,
    }
}

/// The longest prefix of `text` with at most `max_chars` characters whose
/// JSON form takes at most `max_json_chars`. Returns it and whether it cut.
pub(crate) fn cut_to_fit(text: &str, max_chars: usize, max_json_chars: usize) -> (&str, bool) {
    let mut json = 0usize;
    for (n, (i, c)) in text.char_indices().enumerate() {
        json += json_char_cost(c);
        if n >= max_chars || json > max_json_chars {
            return (&text[..i], true);
        }
    }
    (text, false)
}

/// Keeps items of a list while their JSON fits in `budget` characters
/// (taking each item's size off the budget). Returns the kept items and
/// whether any was left out.
pub(crate) fn fit_list<T: Serialize>(
    items: impl IntoIterator<Item = T>,
    budget: &mut usize,
) -> (Vec<T>, bool) {
    let mut kept = Vec::new();
    for item in items {
        let cost = json_chars(&item) + 1;
        if cost > *budget {
            return (kept, true);
        }
        *budget -= cost;
        kept.push(item);
    }
    (kept, false)
}

/// Room left for list items once the fixed part of a response is counted:
/// the cap less what the rest of the response (ids, counts, keys) takes.
pub(crate) const RESPONSE_OVERHEAD: usize = 400;

pub(crate) fn list_budget(session: &SessionRow) -> usize {
    (session.config.max_chars_per_response as usize).saturating_sub(RESPONSE_OVERHEAD)
}
