//! Deleting sessions: the rows that are only a session's own (documents,
//! chunk sets, spans, artifacts, traces, the session) in one durable
//! transaction under its lock, then its lock file; and the sessions
//! retention makes eligible (closed long ago, idle long). The texts its
//! documents named, and their passages in the shared search index, stay
//! until `gc` finds no document naming them.

use rusqlite::{OptionalExtension, params};

use super::sessions::SessionStatus;
use super::{SessionLock, Store, StoreError};

/// What deleting a session removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub documents: u64,
    pub spans: u64,
    pub artifacts: u64,
    pub traces: u64,
}

impl Store {
    /// Deletes a session and every row only it owns, in one durable
    /// transaction; `None` when no such session exists. Only under the
    /// session's lock (`held`), so no load, chunking, index build or close
    /// of it is half-way; the lock file itself is removed after the commit
    /// (before the lock is released: a waiter then finds the path gone,
    /// locks a new file and the session missing). The blobs its documents
    /// named, and their passages in the search index, are left to `gc`.
    pub fn delete_session(
        &self,
        held: SessionLock,
        session_id: &str,
    ) -> Result<Option<Deleted>, StoreError> {
        let deleted = self.db.write_durable(|tx| {
            let exists = tx
                .query_row(
                    "SELECT 1 FROM sessions WHERE session_id = ?1",
                    [session_id],
                    |_| Ok(()),
                )
                .optional()?;
            if exists.is_none() {
                return Ok::<_, StoreError>(None);
            }
            let run = |sql: &str| -> rusqlite::Result<u64> {
                tx.execute(sql, [session_id]).map(|n| n as u64)
            };
            // Children before parents (foreign keys are on).
            let artifacts = run("DELETE FROM artifacts WHERE session_id = ?1")?;
            let spans = run("DELETE FROM spans WHERE session_id = ?1")?;
            run("DELETE FROM chunk_sets WHERE session_id = ?1")?;
            let documents = run("DELETE FROM documents WHERE session_id = ?1")?;
            let traces = run("DELETE FROM traces WHERE session_id = ?1")?;
            run("DELETE FROM sessions WHERE session_id = ?1")?;
            Ok(Some(Deleted {
                documents,
                spans,
                artifacts,
                traces,
            }))
        })?;
        if deleted.is_some() {
            let lock_path = held.path().to_owned();
            if let Err(e) = std::fs::remove_file(&lock_path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %lock_path.display(), error = %e, "could not remove a deleted session's lock file; gc removes it later");
            }
            drop(held);
        }
        Ok(deleted)
    }

    /// Closed sessions closed before `cutoff` (RFC 3339 UTC, as stored).
    pub fn sessions_closed_before(&self, cutoff: &str) -> Result<Vec<String>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT session_id FROM sessions WHERE status = ?1 AND closed_at IS NOT NULL \
                 AND closed_at < ?2 ORDER BY closed_at",
            )?;
            let ids = st
                .query_map(params![SessionStatus::Completed, cutoff], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
    }

    /// Active sessions whose last call (trace), or creation when they have
    /// none, is before `cutoff`.
    pub fn sessions_idle_since(&self, cutoff: &str) -> Result<Vec<String>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT s.session_id FROM sessions s WHERE s.status = ?1 AND \
                 coalesce((SELECT max(t.created_at) FROM traces t WHERE t.session_id = s.session_id), \
                 s.created_at) < ?2 ORDER BY s.created_at",
            )?;
            let ids = st
                .query_map(params![SessionStatus::Active, cutoff], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
    }
}
