//! Arguments and results of `rlm.chunk.create` (the strategies) and `rlm.span.get`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::docs::SpanRef;

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

super::tagged!(ChunkStrategy {
    "fixed" => FixedStrategy,
    "lines" => LinesStrategy,
    "delimiter" => DelimiterStrategy,
});
