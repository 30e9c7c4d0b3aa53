//! Garbage collection under the data directory: packs no `blobs` row names,
//! temporary files of unfinished loads, and index folders and lock files of
//! sessions that do not exist; only when older than a grace period, so
//! never a file another process may still commit.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rlm::protocol::GcReport;

use super::layout::locked_session;
use super::{Store, StoreError};

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

/// Removes a file or folder, counting the bytes freed or the error.
fn remove(path: &Path, what: &str, report: &mut GcReport) -> bool {
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
}

/// The entries of a folder (none if it cannot be read).
fn entries(dir: &Path) -> impl Iterator<Item = std::fs::DirEntry> {
    std::fs::read_dir(dir).into_iter().flatten().flatten()
}

impl Store {
    /// Every pack name the `blobs` table lists, and every session id.
    fn referenced(&self) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
        self.db.read(|c| {
            let packs = c
                .prepare("SELECT DISTINCT pack FROM blobs")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<HashSet<_>, _>>()?;
            let sessions = c
                .prepare("SELECT session_id FROM sessions")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<HashSet<_>, _>>()?;
            Ok((packs, sessions))
        })
    }

    /// Removes packs no `blobs` row names, temporary files of unfinished
    /// loads, and index folders and lock files of unknown sessions; all only
    /// when older than `grace`.
    pub fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        let mut report = GcReport {
            grace_seconds: grace.as_secs(),
            ..GcReport::default()
        };
        let (packs, sessions) = self.referenced()?;
        for name in self.blobs.pack_names().unwrap_or_default() {
            let path = self.layout.pack_file(&name);
            if !packs.contains(&name)
                && older_than(&path, grace)
                && remove(&path, "pack", &mut report)
            {
                report.packs_removed += 1;
            }
        }
        for entry in entries(&self.layout.tmp_dir()) {
            let path = entry.path();
            if older_than(&path, grace) && remove(&path, "temporary file", &mut report) {
                report.temp_files_removed += 1;
            }
        }
        for entry in entries(&self.layout.indexes_dir()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !sessions.contains(&name)
                && older_than(&path, grace)
                && remove(&path, "index folder", &mut report)
            {
                report.index_dirs_removed += 1;
            }
        }
        for entry in entries(&self.layout.locks_dir()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(sid) = locked_session(&name) else {
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
