//! Arguments and results of the session tools (`rlm.session.*`) and the session config.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Cap on the estimated tokens of one response (>= 500); the estimate
    /// errs high, so a client's own count stays under it.
    #[serde(default)]
    pub max_tokens_per_response: Option<u64>,
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

/// The default cap in estimated tokens of one response: under the 10,000
/// tokens from which Claude Code warns about a tool's answer (and far under
/// the 25,000 it refuses by default), with the estimate's margin on top.
pub const DEFAULT_TOKENS_PER_RESPONSE: u64 = 8_000;

fn default_tokens_per_response() -> u64 {
    DEFAULT_TOKENS_PER_RESPONSE
}

/// The effective configuration of a session.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct SessionConfig {
    pub max_tool_calls: u64,
    pub max_chars_per_response: u64,
    /// Sessions stored before the cap in tokens existed get the default.
    #[serde(default = "default_tokens_per_response")]
    pub max_tokens_per_response: u64,
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
            max_tokens_per_response: DEFAULT_TOKENS_PER_RESPONSE,
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

fn default_true() -> bool {
    true
}
