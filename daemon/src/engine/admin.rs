//! Maintenance the daemon offers beside the tools: listing sessions, and
//! garbage collection of files under the data directory that nothing
//! references (never a file another process may still commit).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rlm::protocol::{GcReport, SessionSummary};

use super::Engine;
use crate::store::StoreError;

/// Files younger than this are never collected: a load in any process
/// renames its pack into place moments before it commits the rows naming it.
pub const GC_GRACE: Duration = Duration::from_secs(3600);

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a >= age)
}

impl Engine {
    /// Every session, newest first.
    pub fn list_sessions(&self) -> Result<Vec<SessionSummary>, StoreError> {
        self.inner.store.db.read(|c| {
            let mut st = c.prepare(
                "SELECT session_id, name, status, created_at, closed_at, document_count, total_chars, \
                 tool_calls_used, max_tool_calls FROM sessions ORDER BY created_at DESC",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok(SessionSummary {
                        session_id: r.get(0)?,
                        name: r.get(1)?,
                        status: r.get(2)?,
                        created_at: r.get(3)?,
                        closed_at: r.get(4)?,
                        document_count: r.get::<_, i64>(5)? as u64,
                        total_chars: r.get::<_, i64>(6)? as u64,
                        tool_calls_used: r.get::<_, i64>(7)? as u64,
                        max_tool_calls: r.get::<_, i64>(8)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Removes packs no `blobs` row names, temporary files of unfinished
    /// loads, and index folders and lock files of unknown sessions; all only
    /// when older than `grace`.
    pub fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        let store = &self.inner.store;
        let mut report = GcReport {
            grace_seconds: grace.as_secs(),
            ..GcReport::default()
        };
        let (packs, sessions): (HashSet<String>, HashSet<String>) = store.db.read(|c| {
            let packs = c
                .prepare("SELECT DISTINCT pack FROM blobs")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<HashSet<_>, _>>()?;
            let sessions = c
                .prepare("SELECT session_id FROM sessions")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<HashSet<_>, _>>()?;
            Ok::<_, StoreError>((packs, sessions))
        })?;
        let remove = |path: &Path, what: &str, report: &mut GcReport| -> bool {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let done = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            match done {
                Ok(()) => {
                    report.bytes_freed += size;
                    true
                }
                Err(e) => {
                    report
                        .errors
                        .push(format!("{what} {}: {e}", path.display()));
                    false
                }
            }
        };
        for name in store.blobs.pack_names().unwrap_or_default() {
            let path = store.blobs.pack_path(&name);
            if !packs.contains(&name)
                && older_than(&path, grace)
                && remove(&path, "pack", &mut report)
            {
                report.packs_removed += 1;
            }
        }
        for entry in std::fs::read_dir(store.root().join("blobs").join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if older_than(&path, grace) && remove(&path, "temporary file", &mut report) {
                report.temp_files_removed += 1;
            }
        }
        for entry in std::fs::read_dir(store.root().join("indexes"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !sessions.contains(&name)
                && older_than(&path, grace)
                && remove(&path, "index folder", &mut report)
            {
                report.index_dirs_removed += 1;
            }
        }
        for entry in std::fs::read_dir(store.root().join("locks"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(sid) = name.strip_suffix(".lock") else {
                continue;
            };
            let path = entry.path();
            // Only locks of sessions that do not exist: a lock file of a live
            // session is never removed (every locker must hold the same file).
            if !sessions.contains(sid)
                && older_than(&path, grace)
                && remove(&path, "lock file", &mut report)
            {
                report.lock_files_removed += 1;
            }
        }
        Ok(report)
    }
}
