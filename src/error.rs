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

/// Characters of an error message kept from its start and from its end when
/// it echoes a caller's value of any size (a 1 MB id, a 300k regex): the
/// start names the thing, the end says what to do.
const MESSAGE_HEAD_CHARS: usize = 1_000;
const MESSAGE_TAIL_CHARS: usize = 500;
/// Characters of a string context field kept (`value`, `session_id`, ...).
const CONTEXT_VALUE_CHARS: usize = 200;

/// `message`, or its first and last characters around a note of how many
/// were left out when it is longer than both together.
fn bounded_message(message: String) -> String {
    let n = message.chars().count();
    if n <= MESSAGE_HEAD_CHARS + MESSAGE_TAIL_CHARS + 100 {
        return message;
    }
    let head: String = message.chars().take(MESSAGE_HEAD_CHARS).collect();
    let tail: String = message.chars().skip(n - MESSAGE_TAIL_CHARS).collect();
    let cut = n - MESSAGE_HEAD_CHARS - MESSAGE_TAIL_CHARS;
    format!("{head} [... {cut} characters left out ...] {tail}")
}

impl ToolError {
    /// An error of `code`. A message longer than about 1,600 characters
    /// (one that quotes a huge value a caller sent) keeps its first 1,000
    /// and last 500, so no error echoes a value unbounded.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ToolError {
            code,
            message: bounded_message(message.into()),
            context: Map::new(),
        }
    }

    /// Adds a context field; a string of more than 200 characters is cut
    /// there, with its length said.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = match value.into() {
            Value::String(s) if s.chars().count() > CONTEXT_VALUE_CHARS => {
                let n = s.chars().count();
                let kept: String = s.chars().take(CONTEXT_VALUE_CHARS).collect();
                Value::String(format!("{kept}... ({n} characters)"))
            }
            value => value,
        };
        self.context.insert(key.to_owned(), value);
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

    #[test]
    fn errors_never_echo_a_value_unbounded() {
        let huge = "x".repeat(300_000);
        let e = ToolError::invalid(format!(
            "no session `{huge}`; create one with rlm.session.create"
        ))
        .with("session_id", huge.as_str())
        .with("limit", 5);
        assert!(e.message.chars().count() < 1_700, "{}", e.message.len());
        assert!(e.message.starts_with("no session `xxx"));
        assert!(e.message.ends_with("create one with rlm.session.create"));
        assert!(e.message.contains("characters left out"));
        let id = e.context["session_id"].as_str().unwrap();
        assert!(
            id.len() < 250 && id.ends_with("(300000 characters)"),
            "{id}"
        );
        assert_eq!(e.context["limit"], 5);
        let short = ToolError::invalid("limit 0 is out of range");
        assert_eq!(short.message, "limit 0 is out of range");
    }
}
