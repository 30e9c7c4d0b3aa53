//! The `sessions` table: a session's status, config, budget and counters;
//! creating, reading, charging and closing sessions, listing and counting them.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};

use rlm::tools::SessionConfig;

use super::{SessionLock, Store, StoreError};

/// Whether a session still takes changes. Stored as `'active'` / `'completed'`
/// (the schema's CHECK names these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Active,
    Completed,
}

impl SessionStatus {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<SessionStatus> {
        match s {
            "active" => Some(SessionStatus::Active),
            "completed" => Some(SessionStatus::Completed),
            _ => None,
        }
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for SessionStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for SessionStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        SessionStatus::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown session status {s:?}").into()))
    }
}

/// A session row as the tools need it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub name: Option<String>,
    pub status: SessionStatus,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub config: SessionConfig,
    pub tool_calls_used: u64,
    pub generation: u64,
    pub document_count: u64,
    pub total_chars: u64,
    pub total_tokens_est: u64,
    /// The characters of its documents of prose ([`super::documents::is_prose_source`]).
    pub prose_chars: u64,
}

impl SessionRow {
    const COLUMNS: &'static str = "session_id, name, status, created_at, closed_at, config, tool_calls_used, \
         generation, document_count, total_chars, total_tokens_est, prose_chars";

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
        let config: String = r.get(5)?;
        Ok(SessionRow {
            id: r.get(0)?,
            name: r.get(1)?,
            status: r.get(2)?,
            created_at: r.get(3)?,
            closed_at: r.get(4)?,
            config: serde_json::from_str(&config).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
            tool_calls_used: r.get::<_, i64>(6)? as u64,
            generation: r.get::<_, i64>(7)? as u64,
            document_count: r.get::<_, i64>(8)? as u64,
            total_chars: r.get::<_, i64>(9)? as u64,
            total_tokens_est: r.get::<_, i64>(10)? as u64,
            prose_chars: r.get::<_, i64>(11)? as u64,
        })
    }

    pub fn is_active(&self) -> bool {
        self.status == SessionStatus::Active
    }
}

/// A session to create.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub session_id: &'a str,
    pub name: Option<&'a str>,
    pub created_at: &'a str,
    pub config: &'a SessionConfig,
}

/// What charging one call to a session's budget found.
#[derive(Debug)]
// The large variant is the common one, taken apart at once: boxing it would
// cost an allocation per call for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Charge {
    /// Counted; the session as it is after the charge.
    Charged(SessionRow),
    /// The budget is spent: nothing was counted.
    Spent { used: i64, limit: i64 },
    /// No session has this id.
    NoSession,
}

/// What a close found.
#[derive(Debug)]
pub enum Close {
    /// This call closed the session; its counts at the close.
    Closed(CloseCounts),
    /// The session was already closed (at this time, if recorded), or does not exist.
    AlreadyClosed { closed_at: Option<String> },
}

/// A session's counts as its close leaves them.
#[derive(Debug, Clone, Copy)]
pub struct CloseCounts {
    pub documents: u64,
    pub spans: u64,
    pub artifacts: u64,
    pub tool_calls: u64,
}

/// The session `session_id` as `conn` sees it (inside a transaction, as of it).
pub(super) fn session_in(
    conn: &Connection,
    session_id: &str,
) -> rusqlite::Result<Option<SessionRow>> {
    conn.prepare_cached(&format!(
        "SELECT {} FROM sessions WHERE session_id = ?1",
        SessionRow::COLUMNS
    ))?
    .query_row([session_id], SessionRow::from_row)
    .optional()
}

/// The status of session `session_id` inside a write, and the whole row when it
/// no longer takes changes (to say since when). Fails when the session does not exist.
pub(super) fn closed_in(
    conn: &Connection,
    session_id: &str,
) -> rusqlite::Result<Option<SessionRow>> {
    let status: SessionStatus = conn
        .prepare_cached("SELECT status FROM sessions WHERE session_id = ?1")?
        .query_row([session_id], |r| r.get(0))?;
    if status == SessionStatus::Active {
        return Ok(None);
    }
    session_in(conn, session_id)
}

impl Store {
    /// Creates a session (durably); creating it counts as its first call.
    pub fn create_session(&self, s: &NewSession<'_>) -> Result<(), StoreError> {
        let config_json = serde_json::to_string(s.config).map_err(|e| StoreError::Encode {
            what: "a session config",
            message: e.to_string(),
        })?;
        self.db.write_durable(|tx| {
            tx.execute(
                "INSERT INTO sessions (session_id, name, status, created_at, config, max_tool_calls, tool_calls_used) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
                params![
                    s.session_id,
                    s.name,
                    SessionStatus::Active,
                    s.created_at,
                    config_json,
                    s.config.max_tool_calls as i64
                ],
            )?;
            Ok(())
        })
    }

    /// Reads a session without charging it.
    pub fn session(&self, session_id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.db
            .read(|c| session_in(c, session_id).map_err(StoreError::from))
    }

    /// Counts one call against the session's budget in one statement (exact
    /// under any concurrency, in any process), and returns the session as it
    /// is after the charge; or, in the same transaction, why nothing was counted.
    pub fn charge(&self, session_id: &str) -> Result<Charge, StoreError> {
        self.db.write_small(|tx| {
            let row = tx
                .prepare_cached(&format!(
                    "UPDATE sessions SET tool_calls_used = tool_calls_used + 1 \
                     WHERE session_id = ?1 AND tool_calls_used < max_tool_calls RETURNING {}",
                    SessionRow::COLUMNS
                ))?
                .query_row([session_id], SessionRow::from_row)
                .optional()?;
            if let Some(row) = row {
                return Ok(Charge::Charged(row));
            }
            let spent = tx
                .prepare_cached(
                    "SELECT tool_calls_used, max_tool_calls FROM sessions WHERE session_id = ?1",
                )?
                .query_row([session_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?;
            Ok(match spent {
                Some((used, limit)) => Charge::Spent { used, limit },
                None => Charge::NoSession,
            })
        })
    }

    /// Closes an active session (durably) and counts what it holds, in one
    /// transaction: of any number of concurrent closes exactly one sees
    /// `Closed`. Only under the session's lock (`_held`), so the close comes
    /// after any load or index build in flight.
    pub fn close_session(
        &self,
        _held: &SessionLock,
        session_id: &str,
        closed_at: &str,
    ) -> Result<Close, StoreError> {
        self.db.write_durable(|tx| {
            let changed = tx.execute(
                "UPDATE sessions SET status = ?3, closed_at = ?2 WHERE session_id = ?1 AND status = ?4",
                params![
                    session_id,
                    closed_at,
                    SessionStatus::Completed,
                    SessionStatus::Active
                ],
            )?;
            if changed == 0 {
                let when: Option<Option<String>> = tx
                    .query_row(
                        "SELECT closed_at FROM sessions WHERE session_id = ?1",
                        [session_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                return Ok(Close::AlreadyClosed {
                    closed_at: when.flatten(),
                });
            }
            let count = |sql: &str| -> rusqlite::Result<u64> {
                tx.query_row(sql, [session_id], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
            };
            Ok(Close::Closed(CloseCounts {
                documents: count("SELECT document_count FROM sessions WHERE session_id = ?1")?,
                spans: count("SELECT count(*) FROM spans WHERE session_id = ?1")?,
                artifacts: count("SELECT count(*) FROM artifacts WHERE session_id = ?1")?,
                tool_calls: count("SELECT tool_calls_used FROM sessions WHERE session_id = ?1")?,
            }))
        })
    }

    /// Sessions still active, and all sessions.
    pub fn session_counts(&self) -> Result<(u64, u64), StoreError> {
        self.db.read(|c| {
            c.query_row(
                "SELECT count(*) FILTER (WHERE status = ?1), count(*) FROM sessions",
                [SessionStatus::Active],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(StoreError::from)
        })
    }

    /// Every session, newest first.
    pub fn list_sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {} FROM sessions ORDER BY created_at DESC",
                SessionRow::COLUMNS
            ))?;
            let rows = st
                .query_map([], SessionRow::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_its_stored_spelling() {
        for s in [SessionStatus::Active, SessionStatus::Completed] {
            assert_eq!(SessionStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SessionStatus::parse("closed"), None);
        let c = Connection::open_in_memory().unwrap();
        let back: SessionStatus = c
            .query_row("SELECT ?1", [SessionStatus::Completed], |r| r.get(0))
            .unwrap();
        assert_eq!(back, SessionStatus::Completed);
        let bad = c.query_row("SELECT 'closed'", [], |r| r.get::<_, SessionStatus>(0));
        assert!(bad.is_err());
    }
}
