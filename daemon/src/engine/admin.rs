//! Maintenance the daemon offers beside the tools: listing and deleting
//! sessions, retention, and garbage collection of what nothing references
//! (done by the store, `store/delete.rs`, `store/gc.rs`).

use std::time::Duration;

use rlm::config::Retention;
use rlm::protocol::{DeleteOutcome, GcReport, SessionSummary};

use rlm::ToolError;

use super::{Compacted, Engine, now};
use crate::store::StoreError;
use crate::store::gc::cutoff;
use crate::store::sessions::Close;

/// What retention did in one pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetentionPass {
    /// Active sessions closed for being idle.
    pub closed: Vec<String>,
    /// Closed sessions deleted for being closed long ago.
    pub deleted: Vec<String>,
    /// Sessions a step failed on, with why.
    pub failed: Vec<String>,
}

impl Engine {
    /// Every session, newest first.
    pub fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        let rows = self.inner.store.list_sessions()?;
        Ok(rows
            .into_iter()
            .map(|r| SessionSummary {
                session_id: r.id,
                name: r.name,
                // The wire keeps the status as its stored spelling.
                status: r.status.as_str().to_owned(),
                created_at: r.created_at,
                closed_at: r.closed_at,
                document_count: r.document_count,
                total_chars: r.total_chars,
                tool_calls_used: r.tool_calls_used,
                max_tool_calls: r.config.max_tool_calls,
            })
            .collect())
    }

    /// Deletes texts no document names, packs nothing names (compacting
    /// those mostly garbage), temporary files of unfinished loads, lock
    /// files of unknown sessions (`Store::gc`), then the passages of the
    /// texts deleted from the shared search index.
    pub fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        self.gc_with(grace, grace)
    }

    /// `gc` with its two grace periods apart (`Store::gc_with`): files
    /// (temporary files, unnamed packs, locks of unknown sessions), and
    /// texts a load claimed.
    pub fn gc_with(
        &self,
        file_grace: Duration,
        text_grace: Duration,
    ) -> Result<GcReport, StoreError> {
        let mut report = self.inner.store.gc_with(file_grace, text_grace)?;
        match self.inner.indexes.collect_garbage() {
            Ok(n) => report.index_texts_removed = n,
            Err(e) => report
                .errors
                .push(format!("search index: {}; the next gc retries", e.message)),
        }
        match self.inner.store.compact_database() {
            Ok(n) => {
                report.database_bytes_freed = n;
                report.bytes_freed += n;
            }
            Err(e) => report
                .errors
                .push(format!("compacting the database: {e}; the next gc retries")),
        }
        // What gc and the deletions before it freed goes back to the system.
        crate::alloc::trim();
        Ok(report)
    }

    /// Merges the shared search index's segments now, as the compaction
    /// after each build and gc does on a thread of its own
    /// (`engine/index/compact.rs`): at most `step_bytes` of segment files a
    /// merge, the segments 30% deleted first, then the smallest, until no
    /// two fit in one and none that fits is that much deleted.
    pub fn compact_index(&self, step_bytes: u64) -> Result<Compacted, ToolError> {
        self.inner.indexes.compact(step_bytes)
    }

    /// Gives back the memory kept for speed (sessions' views of the search
    /// index, their documents, the scan cache, the open texts), then the
    /// freed heap: for a daemon that has had no call for a while.
    pub fn release_idle_memory(&self) {
        self.inner.indexes.forget_all();
        self.forget_all_scan_texts();
        self.inner.store.forget_open_texts();
        crate::alloc::trim();
    }

    /// Drops the views of the search index and the documents kept for the
    /// sessions neither searched nor loaded into for `quiet` (but the one
    /// searched last), while other sessions' calls keep the daemon from
    /// idling; their freed memory serves the calls that follow. Returns how
    /// many sessions' caches were dropped.
    pub fn release_quiet_sessions(&self, quiet: std::time::Duration) -> usize {
        self.inner.indexes.release_quiet(quiet)
    }

    /// Deletes one session with all that is only its own, under its lock;
    /// the in-memory caches forget it.
    pub fn delete_session(&self, session_id: &str) -> DeleteOutcome {
        let outcome = |status: &str, message: String| DeleteOutcome {
            session_id: session_id.to_owned(),
            status: status.to_owned(),
            message,
        };
        let not_found = || {
            outcome(
                "not_found",
                format!("no session {session_id} in this store; `rlm sessions` lists them"),
            )
        };
        let store = &self.inner.store;
        // Checked before locking, so an unknown id leaves no lock file.
        match store.session(session_id) {
            Ok(Some(_)) => {}
            Ok(None) => return not_found(),
            Err(e) => return outcome("failed", format!("reading session {session_id}: {e}")),
        }
        let deleted = store
            .lock_session(session_id)
            .and_then(|lock| store.delete_session(lock, session_id));
        self.inner.indexes.forget(session_id);
        self.forget_scan_texts(session_id);
        match deleted {
            Ok(Some(d)) => {
                tracing::info!(session_id, documents = d.documents, "session deleted");
                outcome(
                    "deleted",
                    format!(
                        "deleted with {} documents, {} spans, {} artifacts, {} traces",
                        d.documents, d.spans, d.artifacts, d.traces
                    ),
                )
            }
            Ok(None) => not_found(),
            Err(e) => outcome(
                "failed",
                format!("deleting session {session_id}: {e}; retry, or check the data directory"),
            ),
        }
    }

    /// Deletes each session, one outcome each, in the order given.
    pub fn delete_sessions(&self, session_ids: &[String]) -> Vec<DeleteOutcome> {
        session_ids
            .iter()
            .map(|id| self.delete_session(id))
            .collect()
    }

    /// Deletes the closed sessions closed more than `age` ago.
    pub fn prune_closed(&self, age: Duration) -> Result<Vec<DeleteOutcome>, StoreError> {
        let ids = self.inner.store.sessions_closed_before(&cutoff(age))?;
        Ok(self.delete_sessions(&ids))
    }

    /// One retention pass: closes the active sessions idle longer than
    /// `close_idle_after_days`, then deletes the sessions closed longer ago
    /// than `delete_closed_after_days` (0 turns either off). Logged.
    pub fn apply_retention(&self, retention: &Retention) -> Result<RetentionPass, StoreError> {
        const DAY: u64 = 24 * 3600;
        let mut pass = RetentionPass::default();
        let store = &self.inner.store;
        if retention.close_idle_after_days > 0 {
            let idle = Duration::from_secs(retention.close_idle_after_days * DAY);
            for id in store.sessions_idle_since(&cutoff(idle))? {
                let closed = store
                    .lock_session(&id)
                    .and_then(|lock| store.close_session(&lock, &id, &now()));
                match closed {
                    Ok(Close::Closed(_)) => {
                        self.inner.indexes.forget(&id);
                        pass.closed.push(id);
                    }
                    Ok(_) => {}
                    Err(e) => pass.failed.push(format!("closing idle session {id}: {e}")),
                }
            }
        }
        if retention.delete_closed_after_days > 0 {
            let age = Duration::from_secs(retention.delete_closed_after_days * DAY);
            for o in self.prune_closed(age)? {
                match o.status.as_str() {
                    "deleted" => pass.deleted.push(o.session_id),
                    "not_found" => {} // deleted meanwhile by another process
                    _ => pass.failed.push(format!("{}: {}", o.session_id, o.message)),
                }
            }
        }
        if !(pass.closed.is_empty() && pass.deleted.is_empty() && pass.failed.is_empty()) {
            tracing::info!(closed = ?pass.closed, deleted = ?pass.deleted, failed = ?pass.failed, "retention applied");
        }
        Ok(pass)
    }
}
