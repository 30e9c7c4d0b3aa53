//! The budget of tool calls: the atomic charge of one call against the
//! session it names, and reading a session without charging it.

use rusqlite::OptionalExtension;

use rlm::{ErrorCode, ToolError};

use super::{Engine, SessionRow};

impl Engine {
    /// Counts one call against the session's budget, atomically, and returns
    /// the session as it is after the charge.
    pub(super) fn charge(&self, session_id: &str) -> Result<SessionRow, ToolError> {
        let charged = self.inner.store.db.write(|tx| {
            let row = tx
                .prepare_cached(&format!(
                    "UPDATE sessions SET tool_calls_used = tool_calls_used + 1 \
                     WHERE session_id = ?1 AND tool_calls_used < max_tool_calls RETURNING {}",
                    SessionRow::COLUMNS
                ))?
                .query_row([session_id], SessionRow::from_row)
                .optional()?;
            if let Some(row) = row {
                return Ok(Ok(row));
            }
            let spent = tx
                .prepare_cached(
                    "SELECT tool_calls_used, max_tool_calls FROM sessions WHERE session_id = ?1",
                )?
                .query_row([session_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?;
            Ok::<_, ToolError>(Err(spent))
        })?;
        match charged {
            Ok(row) => Ok(row),
            Err(Some((used, limit))) => Err(ToolError::new(
                ErrorCode::BudgetExceeded,
                format!(
                    "session {session_id} has used its budget of tool calls (used {used}, limit {limit}); \
                     create a new session with a larger config.max_tool_calls to go on"
                ),
            )
            .with("used", used)
            .with("limit", limit)),
            Err(None) => Err(self.session_not_found(session_id)),
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
            .db
            .read(|c| {
                c.prepare_cached(&format!(
                    "SELECT {} FROM sessions WHERE session_id = ?1",
                    SessionRow::COLUMNS
                ))?
                .query_row([session_id], SessionRow::from_row)
                .optional()
                .map_err(ToolError::from)
            })?
            .ok_or_else(|| self.session_not_found(session_id))
    }
}
