//! Tool errors as the contract shows them: a stable snake_case code, a message
//! that names the value and the next step, and context fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The stable codes of tool errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    SessionNotFound,
    DocumentNotFound,
    SpanNotFound,
    ArtifactNotFound,
    SessionClosed,
    BudgetExceeded,
    InvalidArgument,
    NotFound,
    TooLarge,
    CorruptText,
    Cancelled,
    /// Another process held the store's write lock past the busy timeout.
    Busy,
    /// The data directory cannot be written (read-only file system, rights).
    StoreReadOnly,
    /// The disk holding the data directory is full.
    DiskFull,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::SessionNotFound => "session_not_found",
            ErrorCode::DocumentNotFound => "document_not_found",
            ErrorCode::SpanNotFound => "span_not_found",
            ErrorCode::ArtifactNotFound => "artifact_not_found",
            ErrorCode::SessionClosed => "session_closed",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::CorruptText => "corrupt_text",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Busy => "busy",
            ErrorCode::StoreReadOnly => "store_read_only",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A failed tool call: the model can read `message` and fix its call.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{code:?}: {message}")]
pub struct ToolError {
    pub code: ErrorCode,
    pub message: String,
    /// Extra fields shown beside code and message (the value, the limit, ...).
    #[serde(default)]
    pub context: Map<String, Value>,
}

impl ToolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ToolError {
            code,
            message: message.into(),
            context: Map::new(),
        }
    }

    /// Adds a context field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The `structuredContent` of the error result: `{"error": {"code", "message", ...context}}`.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("code".into(), Value::from(self.code.as_str()));
        body.insert("message".into(), Value::from(self.message.clone()));
        for (k, v) in &self.context {
            body.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut outer = Map::new();
        outer.insert("error".into(), Value::Object(body));
        Value::Object(outer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_code_message_and_context() {
        let e = ToolError::new(ErrorCode::BudgetExceeded, "spent").with("limit", 5);
        let v = e.to_json();
        assert_eq!(v["error"]["code"], "budget_exceeded");
        assert_eq!(v["error"]["message"], "spent");
        assert_eq!(v["error"]["limit"], 5);
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [ErrorCode::TooLarge, ErrorCode::CorruptText] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
