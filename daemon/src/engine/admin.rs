//! Maintenance the daemon offers beside the tools: listing sessions, and
//! garbage collection of files under the data directory that nothing
//! references (done by the store, `store/gc.rs`).

use std::time::Duration;

use rlm::protocol::{GcReport, SessionSummary};

use super::Engine;
use crate::store::StoreError;

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

    /// Removes packs no `blobs` row names, temporary files of unfinished
    /// loads, and index folders and lock files of unknown sessions; all only
    /// when older than `grace`.
    pub fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        self.inner.store.gc(grace)
    }
}
