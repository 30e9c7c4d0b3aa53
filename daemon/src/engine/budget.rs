//! The budget of tool calls: the atomic charge of one call against the
//! session it names, and reading a session without charging it.

use rlm::{ErrorCode, ToolError};

use super::{Engine, SessionRow};
use crate::store::sessions::Charge;

impl Engine {
    /// Counts one call against the session's budget, atomically, and returns
    /// the session as it is after the charge.
    pub(super) fn charge(&self, session_id: &str) -> Result<SessionRow, ToolError> {
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
            Charge::NoSession => Err(session_not_found(session_id)),
        }
    }

    /// Reads a session without charging it.
    pub(crate) fn load_session(&self, session_id: &str) -> Result<SessionRow, ToolError> {
        self.inner
            .store
            .session(session_id)?
            .ok_or_else(|| session_not_found(session_id))
    }
}

/// The error of a call naming a session the store does not hold.
pub(crate) fn session_not_found(session_id: &str) -> ToolError {
    ToolError::new(
        ErrorCode::SessionNotFound,
        format!(
            "no session has id {session_id:?}; use the session_id that rlm.session.create returned, or create one"
        ),
    )
    .with("session_id", session_id.to_owned())
}
