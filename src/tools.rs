//! The tool contract: the twelve tool names, their descriptions, and the typed
//! arguments and results from which the input and output schemas are derived.
//!
//! Both sides use these types: the engine deserializes arguments into them and
//! serializes results from them; the shim lists the tools from them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The twelve tools of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    SessionCreate,
    SessionInfo,
    SessionClose,
    DocsLoad,
    DocsList,
    DocsPeek,
    ChunkCreate,
    SpanGet,
    SearchQuery,
    ArtifactStore,
    ArtifactList,
    ArtifactGet,
}

impl Tool {
    /// Every tool, in the order `tools/list` presents them.
    pub const ALL: [Tool; 12] = [
        Tool::SessionCreate,
        Tool::SessionInfo,
        Tool::SessionClose,
        Tool::DocsLoad,
        Tool::DocsList,
        Tool::DocsPeek,
        Tool::ChunkCreate,
        Tool::SpanGet,
        Tool::SearchQuery,
        Tool::ArtifactStore,
        Tool::ArtifactList,
        Tool::ArtifactGet,
    ];

    /// The dotted name of the contract, e.g. `rlm.session.create`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::SessionCreate => "rlm.session.create",
            Tool::SessionInfo => "rlm.session.info",
            Tool::SessionClose => "rlm.session.close",
            Tool::DocsLoad => "rlm.docs.load",
            Tool::DocsList => "rlm.docs.list",
            Tool::DocsPeek => "rlm.docs.peek",
            Tool::ChunkCreate => "rlm.chunk.create",
            Tool::SpanGet => "rlm.span.get",
            Tool::SearchQuery => "rlm.search.query",
            Tool::ArtifactStore => "rlm.artifact.store",
            Tool::ArtifactList => "rlm.artifact.list",
            Tool::ArtifactGet => "rlm.artifact.get",
        }
    }

    /// The same name with underscores, for clients that accept only `[A-Za-z0-9_-]`.
    pub fn underscore_name(self) -> String {
        self.name().replace('.', "_")
    }

    /// Finds a tool by either spelling (`rlm.docs.load` or `rlm_docs_load`).
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL
            .into_iter()
            .find(|t| t.name() == name || t.name().replace('.', "_") == name)
    }

    /// Whether the call needs and names a session (all but `rlm.session.create`).
    pub fn names_session(self) -> bool {
        self != Tool::SessionCreate
    }

    /// The description an LLM reads in `tools/list`.
    pub fn description(self) -> &'static str {
        match self {
            Tool::SessionCreate => {
                "Create a session: a workspace that holds loaded documents, spans and artifacts \
                 outside your context. Returns session_id and the effective config (budget of tool \
                 calls, response and peek size caps). Every later call names the session."
            }
            Tool::SessionInfo => {
                "Show a session: status, document count, total characters, tool calls used and \
                 remaining, whether a search index is built, and its config."
            }
            Tool::SessionClose => {
                "Close a session when done. It becomes read-only (info, list, peek, span.get, \
                 search and artifact reads still work; load, chunk and artifact.store fail) and \
                 returns a summary. Does not count against the budget."
            }
            Tool::DocsLoad => {
                "Load text into the session from sources: inline content, a file, a glob \
                 (`src/**/*.py`) or a directory (recursive optional; include_pattern / \
                 exclude_pattern regexes filter paths). Relative paths are resolved against your \
                 working directory. Files that are not UTF-8, too large or unreadable are reported \
                 in `errors`; the rest still load. Returns doc_ids, hashes and lengths in \
                 characters."
            }
            Tool::DocsList => {
                "List the session's documents in load order (doc_id, source, length in \
                 characters, span count), a page at a time (limit, offset; has_more / next_offset)."
            }
            Tool::DocsPeek => {
                "Read part of a document by character offsets [start, end) (end -1 = end of the \
                 document). Capped at max_chars_per_peek; `truncated` says when cut. Use it to \
                 see a document's shape before chunking or searching."
            }
            Tool::ChunkCreate => {
                "Cut a document into spans: `fixed` (chunk_size characters, optional overlap), \
                 `lines` (line_count lines, optional overlap) or `delimiter` (a regex; each span \
                 starts at a match). Returns span ids with offsets and previews, a page at a time \
                 (offset / limit, next_offset). The same strategy again returns the same spans \
                 (`cached`)."
            }
            Tool::SpanGet => {
                "Read spans by id, in the order asked. The total is capped at \
                 max_chars_per_response: the span that crosses the cap is cut (`truncated`) and \
                 ids not returned are listed in `omitted`; ask for them again."
            }
            Tool::SearchQuery => {
                "Search the session's documents. `bm25` (default): ranked keyword search that \
                 returns the passages that match, with context centred on the matched terms and \
                 every term highlighted. `regex` (case-insensitive) and `literal` \
                 (case-insensitive substring): every match in document order. Each match gives \
                 doc_id, the context's offsets (span), the context and highlight offsets inside \
                 it. Optional doc_ids restricts the search."
            }
            Tool::ArtifactStore => {
                "Store what you derived (a JSON object: summary, extraction, classification, \
                 ...) with provenance, attached to a span (span_id, or span offsets that make a \
                 new span) or to the session."
            }
            Tool::ArtifactList => {
                "List the session's artifacts, oldest first, optionally filtered by span_id or \
                 type, a page at a time (offset / limit, next_offset)."
            }
            Tool::ArtifactGet => "Read one artifact: its content, span and provenance.",
        }
    }

    /// JSON schema of the arguments.
    pub fn input_schema(self) -> Value {
        match self {
            Tool::SessionCreate => schema::<SessionCreateArgs>(),
            Tool::SessionInfo | Tool::SessionClose => schema::<SessionArgs>(),
            Tool::DocsLoad => schema::<DocsLoadArgs>(),
            Tool::DocsList => schema::<DocsListArgs>(),
            Tool::DocsPeek => schema::<DocsPeekArgs>(),
            Tool::ChunkCreate => schema::<ChunkCreateArgs>(),
            Tool::SpanGet => schema::<SpanGetArgs>(),
            Tool::SearchQuery => schema::<SearchArgs>(),
            Tool::ArtifactStore => schema::<ArtifactStoreArgs>(),
            Tool::ArtifactList => schema::<ArtifactListArgs>(),
            Tool::ArtifactGet => schema::<ArtifactGetArgs>(),
        }
    }

    /// JSON schema of a successful result.
    pub fn output_schema(self) -> Value {
        match self {
            Tool::SessionCreate => schema::<SessionCreateResult>(),
            Tool::SessionInfo => schema::<SessionInfoResult>(),
            Tool::SessionClose => schema::<SessionCloseResult>(),
            Tool::DocsLoad => schema::<DocsLoadResult>(),
            Tool::DocsList => schema::<DocsListResult>(),
            Tool::DocsPeek => schema::<DocsPeekResult>(),
            Tool::ChunkCreate => schema::<ChunkCreateResult>(),
            Tool::SpanGet => schema::<SpanGetResult>(),
            Tool::SearchQuery => schema::<SearchResult>(),
            Tool::ArtifactStore => schema::<ArtifactStoreResult>(),
            Tool::ArtifactList => schema::<ArtifactListResult>(),
            Tool::ArtifactGet => schema::<ArtifactGetResult>(),
        }
    }
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

fn default_true() -> bool {
    true
}

// ---------------------------------------------------------------- sessions

/// Arguments of `rlm.session.create`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCreateArgs {
    /// A name for people; not unique.
    #[serde(default)]
    pub name: Option<String>,
    /// Overrides of the server's session defaults.
    #[serde(default)]
    pub config: Option<SessionConfigArgs>,
}

/// Session settings a client may override; anything left out takes the server's default.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionConfigArgs {
    /// Budget of tool calls for the session (>= 1).
    #[serde(default)]
    pub max_tool_calls: Option<u64>,
    /// Cap on the characters of one response (>= 1000).
    #[serde(default)]
    pub max_chars_per_response: Option<u64>,
    /// Cap on the characters one peek returns (>= 100).
    #[serde(default)]
    pub max_chars_per_peek: Option<u64>,
    /// Whether asking again for the same chunking returns the same spans.
    #[serde(default)]
    pub chunk_cache_enabled: Option<bool>,
    /// Advice to the client, stored and echoed, never acted on.
    #[serde(default)]
    pub model_hints: Option<ModelHints>,
}

/// Model advice stored with a session; the server never calls a model.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelHints {
    #[serde(default)]
    pub root_model: Option<String>,
    #[serde(default)]
    pub subcall_model: Option<String>,
    #[serde(default)]
    pub bulk_model: Option<String>,
}

/// The effective configuration of a session.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SessionConfig {
    pub max_tool_calls: u64,
    pub max_chars_per_response: u64,
    pub max_chars_per_peek: u64,
    #[serde(default = "default_true")]
    pub chunk_cache_enabled: bool,
    #[serde(default)]
    pub model_hints: ModelHints,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_tool_calls: 500,
            max_chars_per_response: 50_000,
            max_chars_per_peek: 10_000,
            chunk_cache_enabled: true,
            model_hints: ModelHints::default(),
        }
    }
}

/// Result of `rlm.session.create`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SessionCreateResult {
    pub session_id: String,
    pub created_at: String,
    pub config: SessionConfig,
}

/// Arguments of the tools that name only a session.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    pub session_id: String,
}

/// Result of `rlm.session.info`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SessionInfoResult {
    pub session_id: String,
    pub name: Option<String>,
    /// `active` or `completed`.
    pub status: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub document_count: u64,
    pub total_chars: u64,
    pub total_tokens_est: u64,
    pub tool_calls_used: u64,
    pub tool_calls_remaining: u64,
    /// True when a current search index exists for the session, in memory or on disk.
    pub index_built: bool,
    pub config: SessionConfig,
}

/// Counts reported when a session closes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct CloseSummary {
    pub documents: u64,
    pub spans: u64,
    pub artifacts: u64,
    pub tool_calls: u64,
}

/// Result of `rlm.session.close`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SessionCloseResult {
    pub session_id: String,
    pub status: String,
    pub closed_at: String,
    pub summary: CloseSummary,
}

// ---------------------------------------------------------------- documents

/// Arguments of `rlm.docs.load`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsLoadArgs {
    pub session_id: String,
    /// What to load; one source's failure never fails the others.
    pub sources: Vec<Source>,
}

/// One source of `rlm.docs.load`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    /// Text given in the call.
    Inline(InlineSource),
    /// One file; a relative path is resolved against the client's working directory.
    File(FileSource),
    /// A glob pattern such as `src/**/*.py` (`**` crosses directories).
    Glob(GlobSource),
    /// The files of a directory (its subdirectories too when `recursive`).
    Directory(DirectorySource),
}

/// `{"type": "inline", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineSource {
    pub content: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// `{"type": "file", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub path: String,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// `{"type": "glob", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobSource {
    pub path: String,
    /// Regex a file's path must match.
    #[serde(default)]
    pub include_pattern: Option<String>,
    /// Regex that leaves a file out when its path matches.
    #[serde(default)]
    pub exclude_pattern: Option<String>,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// `{"type": "directory", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectorySource {
    pub path: String,
    /// Descend into subdirectories (default false).
    #[serde(default)]
    pub recursive: bool,
    /// Regex a file's path must match.
    #[serde(default)]
    pub include_pattern: Option<String>,
    /// Regex that leaves a file out when its path matches.
    #[serde(default)]
    pub exclude_pattern: Option<String>,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// A document as `rlm.docs.load` reports it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct LoadedDoc {
    pub doc_id: String,
    /// Lowercase hex SHA-256 of the UTF-8 bytes.
    pub content_hash: String,
    /// Absolute path, `inline`, or the inline source's name.
    pub source: String,
    pub length_chars: u64,
    pub length_tokens_est: u64,
}

/// Result of `rlm.docs.load`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocsLoadResult {
    /// The documents loaded, cut at the response cap (see `truncated`; `rlm.docs.list` pages all).
    pub loaded: Vec<LoadedDoc>,
    /// One line per source or file that was not loaded, naming it and the reason.
    pub errors: Vec<String>,
    pub total_chars: u64,
    pub total_tokens_est: u64,
    /// How many documents this call loaded, even when `loaded` is cut.
    pub loaded_count: u64,
    /// How many sources or files failed, even when `errors` is cut or summarized.
    pub error_count: u64,
    /// True when `loaded` or `errors` was cut to fit the response cap.
    pub truncated: bool,
}

/// Arguments of `rlm.docs.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsListArgs {
    pub session_id: String,
    /// Documents per page (default 100).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Documents to skip (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
}

/// A document as `rlm.docs.list` reports it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocEntry {
    pub doc_id: String,
    pub content_hash: String,
    pub source: String,
    pub length_chars: u64,
    pub length_tokens_est: u64,
    pub span_count: u64,
}

/// Result of `rlm.docs.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocsListResult {
    pub documents: Vec<DocEntry>,
    /// All documents of the session.
    pub total: u64,
    pub has_more: bool,
    /// The offset of the next page, or null at the end.
    pub next_offset: Option<u64>,
    /// True when the page was cut short to fit the response cap.
    pub truncated: bool,
}

/// Arguments of `rlm.docs.peek`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsPeekArgs {
    pub session_id: String,
    pub doc_id: String,
    /// First character (default 0).
    #[serde(default)]
    pub start: Option<i64>,
    /// End character, exclusive; -1 (default) means the end of the document.
    #[serde(default)]
    pub end: Option<i64>,
}

/// A range of a document, in characters, `end` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpanRef {
    pub doc_id: String,
    pub start: u64,
    pub end: u64,
}

/// Result of `rlm.docs.peek`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocsPeekResult {
    pub content: String,
    /// What was returned: `end` is the end actually returned.
    pub span: SpanRef,
    /// SHA-256 of the returned text.
    pub content_hash: String,
    pub truncated: bool,
    pub total_length: u64,
}

// ---------------------------------------------------------------- chunks and spans

/// Arguments of `rlm.chunk.create`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChunkCreateArgs {
    pub session_id: String,
    pub doc_id: String,
    pub strategy: ChunkStrategy,
    /// First span of the page (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Spans per page (default: as many as fit the response cap).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// How to cut a document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChunkStrategy {
    /// Windows of `chunk_size` characters, each starting `chunk_size - overlap` after the last.
    Fixed(FixedStrategy),
    /// Groups of `line_count` lines (newlines included), the next starting `line_count - overlap` lines later.
    Lines(LinesStrategy),
    /// A regex; each span starts at a match and runs to the next one.
    Delimiter(DelimiterStrategy),
}

/// `{"type": "fixed", ...}`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedStrategy {
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    #[serde(default)]
    pub overlap: u64,
    #[serde(default)]
    pub max_chunks: Option<u64>,
}

/// `{"type": "lines", ...}`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinesStrategy {
    #[serde(default = "default_line_count")]
    pub line_count: u64,
    #[serde(default)]
    pub overlap: u64,
    #[serde(default)]
    pub max_chunks: Option<u64>,
}

/// `{"type": "delimiter", ...}`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelimiterStrategy {
    pub delimiter: String,
    #[serde(default)]
    pub max_chunks: Option<u64>,
}

fn default_chunk_size() -> u64 {
    50_000
}

fn default_line_count() -> u64 {
    100
}

/// One span of `rlm.chunk.create`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ChunkSpan {
    pub span_id: String,
    /// 0-based position in the chunking.
    pub index: u64,
    pub span: SpanRef,
    pub length_chars: u64,
    pub content_hash: String,
    /// The first 100 characters.
    pub preview: String,
}

/// Result of `rlm.chunk.create`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ChunkCreateResult {
    pub spans: Vec<ChunkSpan>,
    pub total_spans: u64,
    /// True when these spans were made by an earlier identical call.
    pub cached: bool,
    /// True when the page was cut short to fit the response cap.
    pub truncated: bool,
    /// The offset of the next page, or null at the end.
    pub next_offset: Option<u64>,
}

/// Arguments of `rlm.span.get`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpanGetArgs {
    pub session_id: String,
    pub span_ids: Vec<String>,
}

/// One span's text.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SpanContent {
    pub span_id: String,
    pub span: SpanRef,
    pub content: String,
    /// SHA-256 of the returned text.
    pub content_hash: String,
    pub truncated: bool,
}

/// Result of `rlm.span.get`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SpanGetResult {
    pub spans: Vec<SpanContent>,
    pub total_chars_returned: u64,
    /// Ids asked for but not returned because the response cap was reached.
    pub omitted: Vec<String>,
}

// ---------------------------------------------------------------- search

/// Search method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMethod {
    #[default]
    Bm25,
    Regex,
    Literal,
}

impl SearchMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMethod::Bm25 => "bm25",
            SearchMethod::Regex => "regex",
            SearchMethod::Literal => "literal",
        }
    }
}

/// Arguments of `rlm.search.query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    pub session_id: String,
    pub query: String,
    /// `bm25` (default), `regex` or `literal`.
    #[serde(default)]
    pub method: Option<SearchMethod>,
    /// Search only these documents.
    #[serde(default)]
    pub doc_ids: Option<Vec<String>>,
    /// Most matches to return (default 10).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Characters of context around each hit (default 200).
    #[serde(default)]
    pub context_chars: Option<u64>,
}

/// One hit of a query term inside a match's context.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Highlight {
    /// Offsets relative to `context`.
    pub start: u64,
    pub end: u64,
    pub term: String,
}

/// One match of `rlm.search.query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SearchMatch {
    pub doc_id: String,
    /// The context window in the document.
    pub span: SpanRef,
    /// Always null: search does not create spans.
    pub span_id: Option<String>,
    /// BM25 score (higher is better); 1.0 for regex and literal.
    pub score: f64,
    pub context: String,
    /// The first hit, relative to `context`.
    pub highlight_start: u64,
    pub highlight_end: u64,
    /// Every hit inside `context`.
    pub highlights: Vec<Highlight>,
}

/// Result of `rlm.search.query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    /// How many matches were found before the limit and the size cap cut any.
    pub total_matches: u64,
    pub truncated: bool,
    pub index_built: bool,
    pub index_built_this_call: bool,
}

// ---------------------------------------------------------------- artifacts

/// Where an artifact came from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct Provenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Any other keys the client records.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Arguments of `rlm.artifact.store`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactStoreArgs {
    pub session_id: String,
    /// Kind of artifact: `summary`, `extraction`, `classification`, anything.
    #[serde(rename = "type")]
    pub kind: String,
    /// The artifact itself, a JSON object.
    pub content: Map<String, Value>,
    /// Attach to this existing span.
    #[serde(default)]
    pub span_id: Option<String>,
    /// Attach to this range of a document (a span is made for it). Give span_id or span, not both.
    #[serde(default)]
    pub span: Option<SpanRef>,
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

/// Result of `rlm.artifact.store`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ArtifactStoreResult {
    pub artifact_id: String,
    /// Null for a session-level artifact.
    pub span_id: Option<String>,
}

/// Arguments of `rlm.artifact.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactListArgs {
    pub session_id: String,
    #[serde(default)]
    pub span_id: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub limit: Option<u64>,
}

/// One artifact in a list (content left out: `rlm.artifact.get` reads it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ArtifactEntry {
    pub artifact_id: String,
    pub span_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub provenance: Option<Provenance>,
}

/// Result of `rlm.artifact.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ArtifactListResult {
    pub artifacts: Vec<ArtifactEntry>,
    /// How many artifacts match the filters.
    pub total: u64,
    pub truncated: bool,
    pub next_offset: Option<u64>,
}

/// Arguments of `rlm.artifact.get`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactGetArgs {
    pub session_id: String,
    pub artifact_id: String,
}

/// Result of `rlm.artifact.get`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct ArtifactGetResult {
    pub artifact_id: String,
    pub span_id: Option<String>,
    pub span: Option<SpanRef>,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Map<String, Value>,
    pub provenance: Option<Provenance>,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_name_the_same_tool() {
        for t in Tool::ALL {
            assert_eq!(Tool::from_name(t.name()), Some(t));
            assert_eq!(Tool::from_name(&t.underscore_name()), Some(t));
        }
        assert_eq!(Tool::from_name("rlm.nope"), None);
    }

    #[test]
    fn every_schema_is_an_object_schema() {
        for t in Tool::ALL {
            for s in [t.input_schema(), t.output_schema()] {
                assert_eq!(s["type"], "object", "{}: {s}", t.name());
            }
        }
    }

    #[test]
    fn sources_reject_unknown_fields_and_types() {
        let ok: Source =
            serde_json::from_value(serde_json::json!({"type": "directory", "path": "x"})).unwrap();
        assert!(matches!(
            ok,
            Source::Directory(DirectorySource {
                recursive: false,
                ..
            })
        ));
        let bad = serde_json::from_value::<Source>(
            serde_json::json!({"type": "file", "path": "x", "recurse": true}),
        );
        assert!(bad.unwrap_err().to_string().contains("recurse"));
        let bad = serde_json::from_value::<Source>(serde_json::json!({"type": "url", "path": "x"}));
        assert!(bad.is_err());
    }
}
