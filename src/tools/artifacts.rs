//! Arguments and results of the artifact tools (`rlm.artifact.*`) and provenance.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::docs::SpanRef;

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
    /// Present and true when `provenance` was left out to fit the response
    /// cap (the entry comes back alone so paging advances); read it with
    /// `rlm.artifact.get`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
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
