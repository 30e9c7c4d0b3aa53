//! `rlm.session.create`, `rlm.session.info` and `rlm.session.close`.

use rlm::tools::{
    CloseSummary, SessionCloseResult, SessionConfig, SessionConfigArgs, SessionCreateArgs,
    SessionCreateResult, SessionInfoResult,
};
use rlm::{ErrorCode, ToolError};

use super::{CallContext, Engine, SessionRow, SessionStatus, now};
use crate::store::lock::SessionLock;
use crate::store::sessions::{Close, NewSession};

impl SessionRow {
    /// Fails with `session_closed` when the session no longer takes changes.
    pub fn require_active(&self, operation: &str) -> Result<(), ToolError> {
        if self.is_active() {
            return Ok(());
        }
        Err(self.closed_error(operation))
    }

    /// The `session_closed` error of `operation` on this (closed) session.
    pub fn closed_error(&self, operation: &str) -> ToolError {
        ToolError::new(
            ErrorCode::SessionClosed,
            format!(
                "session {} was closed at {}; it is read-only, so {operation} is refused. Create a new session with rlm.session.create to load or change documents.",
                self.id,
                self.closed_at.as_deref().unwrap_or("?")
            ),
        )
        .with("session_id", self.id.clone())
    }
}

/// Limits on a session's config values.
const MIN_RESPONSE_CHARS: u64 = 1000;
const MIN_PEEK_CHARS: u64 = 100;
const MIN_RESPONSE_TOKENS: u64 = 500;
/// Upper bounds keep one response within what any client accepts at all.
const MAX_RESPONSE_CHARS: u64 = 10_000_000;

/// Applies a client's overrides to the server defaults, checking each value.
pub(crate) fn effective_config(
    defaults: &SessionConfig,
    over: Option<SessionConfigArgs>,
) -> Result<SessionConfig, ToolError> {
    let mut c = defaults.clone();
    let Some(o) = over else { return Ok(c) };
    let range = |field: &str, v: u64, min: u64, max: u64| -> Result<u64, ToolError> {
        if v < min || v > max {
            return Err(ToolError::invalid(format!(
                "config.{field} = {v} is out of range; it must be between {min} and {max}"
            ))
            .with("field", format!("config.{field}"))
            .with("value", v));
        }
        Ok(v)
    };
    if let Some(v) = o.max_tool_calls {
        c.max_tool_calls = range("max_tool_calls", v, 1, i64::MAX as u64)?;
    }
    if let Some(v) = o.max_chars_per_response {
        c.max_chars_per_response = range(
            "max_chars_per_response",
            v,
            MIN_RESPONSE_CHARS,
            MAX_RESPONSE_CHARS,
        )?;
    }
    match o.max_tokens_per_response {
        Some(v) => {
            c.max_tokens_per_response = range(
                "max_tokens_per_response",
                v,
                MIN_RESPONSE_TOKENS,
                MAX_RESPONSE_CHARS,
            )?;
        }
        // A client that asked for larger answers in characters and said
        // nothing of tokens gets them: its cap in tokens grows with them, at
        // the estimate's 4 characters of prose a token.
        None if o.max_chars_per_response.is_some() => {
            c.max_tokens_per_response = c.max_tokens_per_response.max(c.max_chars_per_response / 4);
        }
        None => {}
    }
    if let Some(v) = o.max_chars_per_peek {
        c.max_chars_per_peek = range("max_chars_per_peek", v, MIN_PEEK_CHARS, MAX_RESPONSE_CHARS)?;
    }
    if let Some(v) = o.chunk_cache_enabled {
        c.chunk_cache_enabled = v;
    }
    if let Some(h) = o.model_hints {
        for (field, value) in [
            ("root_model", &h.root_model),
            ("subcall_model", &h.subcall_model),
            ("bulk_model", &h.bulk_model),
        ] {
            bounded_text(&format!("config.model_hints.{field}"), value.as_deref())?;
        }
        c.model_hints = h;
    }
    Ok(c)
}

/// Characters a session's name or a model hint may have: every one comes
/// back whole in `rlm.session.info`, which no cap cuts.
const MAX_ECHOED_CHARS: usize = 200;

/// Refuses a text that would be echoed back if it is longer than
/// [`MAX_ECHOED_CHARS`], naming the field and its length (not its value).
fn bounded_text(field: &str, value: Option<&str>) -> Result<(), ToolError> {
    let n = value.map_or(0, |v| v.chars().count());
    if n > MAX_ECHOED_CHARS {
        return Err(ToolError::invalid(format!(
            "{field} is {n} characters long; at most {MAX_ECHOED_CHARS} (it is echoed back by rlm.session.info)"
        ))
        .with("field", field));
    }
    Ok(())
}

impl Engine {
    pub(crate) fn session_create(
        &self,
        args: SessionCreateArgs,
    ) -> Result<SessionCreateResult, ToolError> {
        bounded_text("name", args.name.as_deref())?;
        let config = effective_config(&self.inner.config.session_defaults, args.config)?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let created_at = now();
        // Creating the session counts as its first call.
        self.inner.store.create_session(&NewSession {
            session_id: &session_id,
            name: args.name.as_deref(),
            created_at: &created_at,
            config: &config,
        })?;
        Ok(SessionCreateResult {
            session_id,
            created_at,
            config,
        })
    }

    pub(crate) fn session_info(&self, s: &SessionRow) -> Result<SessionInfoResult, ToolError> {
        let index_built = self.inner.indexes.is_current(&s.id, s.generation);
        Ok(SessionInfoResult {
            session_id: s.id.clone(),
            name: s.name.clone(),
            status: s.status.as_str().to_owned(),
            created_at: s.created_at.clone(),
            closed_at: s.closed_at.clone(),
            document_count: s.document_count,
            total_chars: s.total_chars,
            total_tokens_est: s.total_tokens_est,
            tool_calls_used: s.tool_calls_used,
            tool_calls_remaining: s.config.max_tool_calls.saturating_sub(s.tool_calls_used),
            index_built,
            config: s.config.clone(),
        })
    }

    /// Closes a session: exactly one of any number of concurrent closes wins.
    /// The session's texts are indexed first if no search or background
    /// build did it yet.
    pub(crate) fn session_close(
        &self,
        session_id: &str,
        ctx: &CallContext,
    ) -> Result<SessionCloseResult, ToolError> {
        let store = &self.inner.store;
        // The lock orders the close after any load or index build in flight,
        // so the index it leaves on disk is complete.
        let exists = self.load_session(session_id)?;
        let lock = store.lock_session(&exists.id)?;
        self.persist_index(&lock, session_id, ctx)?;
        let closed_at = now();
        let outcome = store.close_session(&lock, session_id, &closed_at)?;
        match outcome {
            Close::Closed(c) => {
                self.inner.indexes.forget(session_id);
                self.forget_scan_texts(session_id);
                Ok(SessionCloseResult {
                    session_id: session_id.to_owned(),
                    status: SessionStatus::Completed.as_str().to_owned(),
                    closed_at,
                    summary: CloseSummary {
                        documents: c.documents,
                        spans: c.spans,
                        artifacts: c.artifacts,
                        tool_calls: c.tool_calls,
                    },
                })
            }
            Close::AlreadyClosed { closed_at: when } => Err(ToolError::new(
                ErrorCode::SessionClosed,
                format!(
                    "session {session_id} is already closed (at {}); nothing to do. Its data stays readable.",
                    when.as_deref().unwrap_or("?")
                ),
            )
            .with("session_id", session_id.to_owned())),
        }
    }

    /// Indexes the texts of an active session the shared search index does
    /// not hold yet, so that a search of the closed session finds them
    /// ready. A build that fails does not stop the close (the next search
    /// builds it); a cancelled one does.
    fn persist_index(
        &self,
        _lock: &SessionLock,
        session_id: &str,
        ctx: &CallContext,
    ) -> Result<(), ToolError> {
        let Some(s) = self.inner.store.session(session_id)? else {
            return Ok(());
        };
        let indexes = &self.inner.indexes;
        if !s.is_active() || s.document_count == 0 || indexes.is_current(&s.id, s.generation) {
            return Ok(());
        }
        match indexes.ensure(session_id, ctx) {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::Cancelled => Err(e),
            Err(e) => {
                tracing::warn!(session_id, error = %e, "closing without its texts indexed; the next search indexes them");
                Ok(())
            }
        }
    }
}
