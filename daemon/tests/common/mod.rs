//! Helpers shared by the integration tests: an engine on a private temp dir,
//! calls that expect success or a tool error, and views of the store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rlm::ToolError;
use rlmd::{CallContext, CallError, Engine, EngineConfig};
use serde_json::{Value, json};

/// Lowercase hex SHA-256, computed here rather than by the engine's own
/// `sha256_hex`, so that a hash the engine gets wrong cannot agree with itself.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A budget no test reaches unless it means to.
pub const BIG_BUDGET: u64 = 1_000_000;

/// An engine on its own temp dir, with the client's working directory set to
/// that dir. Background indexing and the index's compaction are off unless
/// a test turns them on, so that `index_built_this_call` and the index's
/// files are deterministic.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub ctx: CallContext,
}

impl Env {
    pub fn new() -> Env {
        Env::with(|_| {})
    }

    pub fn with(f: impl FnOnce(&mut EngineConfig)) -> Env {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = EngineConfig::new(dir.path().join("data"));
        config.background_index = false;
        config.compact_index = false;
        config.load_threads = 2;
        f(&mut config);
        let engine = Engine::open(config).expect("the engine opens");
        let ctx = CallContext::with_cwd(dir.path());
        Env { dir, engine, ctx }
    }

    /// The data directory of the engine.
    pub fn data(&self) -> PathBuf {
        self.engine.config().data_dir.clone()
    }

    /// The search index's write lock, as another process's writer (a build,
    /// a compaction step) holds it.
    pub fn index_write_lock(&self) -> rlmd::store::lock::SessionLock {
        rlmd::store::lock::SessionLock::acquire(
            &self.data().join(rlmd::store::layout::SEARCH_DIR),
            rlmd::store::layout::SEARCH_WRITE_LOCK,
            std::time::Duration::from_secs(10),
        )
        .expect("the index's write lock")
    }

    /// A second engine on the same data dir (a restart, or another daemon).
    pub fn reopen(&self) -> Engine {
        Engine::open(self.engine.config().clone()).expect("the engine reopens")
    }

    pub fn try_call(&self, tool: &str, args: Value) -> Result<Value, CallError> {
        self.engine.call(tool, args, &self.ctx)
    }

    /// A call that must succeed.
    pub fn call(&self, tool: &str, args: Value) -> Value {
        ok(tool, self.try_call(tool, args))
    }

    /// A call that must fail with a tool error.
    pub fn fail(&self, tool: &str, args: Value) -> ToolError {
        tool_err(tool, self.try_call(tool, args))
    }

    /// Creates a session. `config` overrides are merged over a large budget.
    pub fn session_with(&self, config: Value) -> String {
        session_on(&self.engine, &self.ctx, config)
    }

    /// A session with a large budget and the default caps.
    pub fn session(&self) -> String {
        self.session_with(json!({}))
    }

    /// Loads one inline text, returns its doc_id.
    pub fn load(&self, sid: &str, content: &str) -> String {
        let r = self.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": content}]}),
        );
        assert_eq!(r["loaded"].as_array().map(Vec::len), Some(1), "{r}");
        r["loaded"][0]["doc_id"].as_str().unwrap().to_owned()
    }

    /// The answer of one load of these inline texts.
    pub fn load_answer<S: AsRef<str>>(&self, sid: &str, contents: &[S]) -> Value {
        let sources: Vec<Value> = contents
            .iter()
            .map(|c| json!({"type": "inline", "content": c.as_ref()}))
            .collect();
        self.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": sources}),
        )
    }

    /// Loads several inline texts in one call, returns their doc_ids in order.
    pub fn load_all(&self, sid: &str, contents: &[&str]) -> Vec<String> {
        let r = self.load_answer(sid, contents);
        assert_eq!(r["loaded_count"], contents.len() as u64, "{r}");
        r["loaded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["doc_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Cuts a document, returns the whole result of the first page.
    pub fn chunk(&self, sid: &str, doc_id: &str, strategy: Value) -> Value {
        self.call(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc_id, "strategy": strategy}),
        )
    }

    /// Every span of a chunking, following `next_offset` until it is null.
    pub fn chunk_all(&self, sid: &str, doc_id: &str, strategy: Value) -> Vec<Value> {
        let mut spans = Vec::new();
        let mut offset = 0u64;
        let mut pages = 0;
        loop {
            let r = self.call(
                "rlm.chunk.create",
                json!({"session_id": sid, "doc_id": doc_id, "strategy": strategy, "offset": offset}),
            );
            let page = r["spans"].as_array().unwrap();
            spans.extend(page.iter().cloned());
            pages += 1;
            assert!(pages < 100_000, "paging does not end");
            match r["next_offset"].as_u64() {
                Some(n) => {
                    assert!(n > offset, "next_offset {n} does not advance from {offset}");
                    offset = n;
                }
                None => {
                    assert!(r["next_offset"].is_null(), "{r}");
                    break;
                }
            }
        }
        spans
    }

    pub fn search(&self, sid: &str, args: Value) -> Value {
        let mut a = args;
        a["session_id"] = json!(sid);
        self.call("rlm.search.query", a)
    }

    pub fn info(&self, sid: &str) -> Value {
        self.call("rlm.session.info", json!({"session_id": sid}))
    }

    /// A connection to the store's SQLite database.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data().join("store.sqlite")).expect("store.sqlite opens")
    }

    pub fn count(&self, sql: &str, params: impl rusqlite::Params) -> i64 {
        self.db()
            .query_row(sql, params, |r| r.get(0))
            .expect("a count")
    }

    /// A file under the client's working directory (parents created).
    pub fn write_file(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// Creates a session on any engine. `config` overrides are merged over a large budget.
pub fn session_on(engine: &Engine, ctx: &CallContext, config: Value) -> String {
    let mut c = json!({"max_tool_calls": BIG_BUDGET});
    for (k, v) in config.as_object().expect("config is an object") {
        c[k] = v.clone();
    }
    let r = ok(
        "rlm.session.create",
        engine.call(
            "rlm.session.create",
            json!({"name": "test", "config": c}),
            ctx,
        ),
    );
    r["session_id"].as_str().unwrap().to_owned()
}

pub fn ok(tool: &str, r: Result<Value, CallError>) -> Value {
    match r {
        Ok(v) => v,
        Err(CallError::Tool(e)) => panic!("{tool} failed: {}", e.to_json()),
        Err(e) => panic!("{tool} failed: {e}"),
    }
}

pub fn tool_err(tool: &str, r: Result<Value, CallError>) -> ToolError {
    match r {
        Err(CallError::Tool(e)) => e,
        Err(e) => panic!("{tool}: expected a tool error, got {e:?}"),
        Ok(v) => panic!("{tool}: expected a tool error, got the result {v}"),
    }
}

/// Asserts the error's code, and returns its message for further checks.
pub fn expect_code(e: &ToolError, code: &str) -> String {
    assert_eq!(e.code.as_str(), code, "wrong error code: {}", e.to_json());
    assert_eq!(e.to_json()["error"]["code"], code);
    e.message.clone()
}

/// Asserts that `v` is an object holding every one of `keys`.
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    for k in keys {
        assert!(obj.contains_key(*k), "key {k:?} missing from {v}");
    }
}

/// The code points `[start, end)` of `s`, like Python's `s[start:end]`.
pub fn chars(s: &str, start: u64, end: u64) -> String {
    s.chars()
        .skip(start as usize)
        .take(end.saturating_sub(start) as usize)
        .collect()
}

pub fn char_len(s: &str) -> u64 {
    s.chars().count() as u64
}

/// Characters of the JSON a client would receive for `v`.
pub fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).unwrap().chars().count()
}

/// An upper bound, computed from the contract's shape of a search match and
/// from `text` alone, of what one match of the one-word `term` with
/// `context_chars` costs in a response's `matches` list (its JSON and a
/// separator): the context is at most `context_chars` plus the match long
/// and holds the text's longest-escaping window of that length, the
/// highlights are as many as the most occurrences of `term` any such window
/// holds, and every number is as long as the longest one possible.
pub fn match_cost_bound(text: &str, term: &str, context_chars: u64) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let width = (context_chars as usize + term.chars().count()).min(chars.len());
    let term_lower = term.to_lowercase();
    let (mut context_json, mut hits) = (2, 0);
    for start in 0..=chars.len() - width {
        let window: String = chars[start..start + width].iter().collect();
        context_json = context_json.max(json_len(&Value::String(window.clone())));
        hits = hits.max(window.to_lowercase().matches(&term_lower).count());
    }
    let uuid = "00000000-0000-0000-0000-000000000000";
    let far = u64::MAX;
    let highlight = json!({"start": far, "end": far, "term": term});
    let one = json!({
        "doc_id": uuid,
        "span": {"doc_id": uuid, "start": far, "end": far},
        "span_id": null,
        "score": -1.234_567_890_123_456_7e-300,
        "context": "",
        "highlight_start": far,
        "highlight_end": far,
        "highlights": vec![highlight; hits],
    });
    // The empty context's two quotes give way to the longest window's JSON; one comma.
    json_len(&one) - 2 + context_json + 1
}

/// What a response's lists and texts may spend under a cap, by the contract:
/// the cap less 400 characters for the fixed part.
pub fn list_room(cap: u64) -> usize {
    cap as usize - 400
}

pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

pub fn is_utc_rfc3339(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok_and(|t| t.offset().local_minus_utc() == 0)
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

pub fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {v}"))
}

/// Every regular file below `dir` (recursively), skipping `skip` folder names.
pub fn files_below(dir: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !skip.contains(&name.as_str()) {
                out.extend(files_below(&p, skip));
            }
        } else if p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A small deterministic pseudo-random generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Words of the generated filler text (none of them is a test's needle term).
pub const FILLER_WORDS: &[&str] = &[
    "river", "stone", "window", "garden", "silver", "market", "engine", "letter", "summer",
    "harbor", "pencil", "candle", "forest", "bridge", "ticket", "orange", "planet", "copper",
    "meadow", "lantern", "whistle", "basket", "thunder", "velvet", "castle", "shadow", "mirror",
    "feather", "compass", "island", "valley", "ladder", "anchor", "button", "pepper", "saddle",
    "marble", "tunnel", "violin", "rocket", "blanket", "cobalt", "falcon", "glacier", "hammer",
    "jacket", "kettle", "lemon", "magnet", "napkin", "oyster", "parrot", "quartz", "rabbit",
    "spider", "tomato", "umbrella", "walnut", "yogurt", "zipper", "alpha", "bravo", "charlie",
    "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike",
    "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
    "whiskey", "xray", "yankee", "zulu", "was", "the", "and", "into", "over", "under", "quietly",
    "slowly", "brightly", "seven", "twelve", "forty", "ninety",
];

/// About `bytes` bytes of varied lines of filler words (ASCII, `\n`-terminated).
pub fn filler_text(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(bytes + 200);
    let mut line_no = 0u64;
    while out.len() < bytes {
        line_no += 1;
        let words = 4 + rng.below(14);
        out.push_str(&format!("{line_no:07} "));
        for i in 0..words {
            if i > 0 {
                out.push(' ');
            }
            let w = FILLER_WORDS[rng.below(FILLER_WORDS.len() as u64) as usize];
            if rng.below(9) == 0 {
                let mut c = w.chars();
                let first = c.next().unwrap().to_ascii_uppercase();
                out.push(first);
                out.push_str(c.as_str());
            } else {
                out.push_str(w);
            }
        }
        out.push_str(if rng.below(3) == 0 { ".\n" } else { "\n" });
    }
    out
}

/// Runs a call on a thread of its own and waits for it at most `within`: a
/// call that blocks fails the test at the deadline (saying `what` it should
/// have done) instead of hanging the suite.
pub fn call_within(
    env: &Env,
    within: std::time::Duration,
    what: &str,
    tool: &str,
    args: Value,
) -> Value {
    let (engine, ctx, tool) = (env.engine.clone(), env.ctx.clone(), tool.to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(engine.call(&tool, args, &ctx));
    });
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("{what}: no answer within {within:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The `errors` lines of a load result.
pub fn errors_of(r: &Value) -> Vec<&str> {
    r["errors"]
        .as_array()
        .expect("a load result has errors")
        .iter()
        .map(|e| e.as_str().expect("an error line is a string"))
        .collect()
}
