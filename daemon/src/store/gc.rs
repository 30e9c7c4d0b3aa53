//! Garbage collection under the data directory: texts (`blobs` rows) no
//! document names, packs no `blobs` row names, packs mostly garbage
//! (compacted: their live texts copied into a new pack), temporary files of
//! unfinished loads, and index folders and lock files of sessions that do
//! not exist. Rows and packs go inside write transactions that check again
//! that nothing names them, so a load committing in another process either
//! sees them gone or keeps them (the protocol is in ARCHITECTURE.md);
//! temporary files, index folders and lock files only when older than a
//! grace period.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use rusqlite::params;

use rlm::protocol::GcReport;

use super::blobs::sha256_hex;
use super::layout::locked_session;
use super::lock::LoadsLock;
use super::{LOCK_TIMEOUT, Store, StoreError, io_err};

/// A pack whose unreferenced bytes pass this share of its size is compacted.
pub const COMPACT_GARBAGE_SHARE: f64 = 0.5;

/// One live text of a pack being compacted.
struct LiveBlob {
    hash: String,
    offset: i64,
    length: i64,
}

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

/// Removes a file or folder, counting the bytes freed or the error. One
/// gone already (a load in another process renamed its temporary file into
/// place, or another gc took it, since the folder was listed) is neither.
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
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
    /// Everything `gc_with` does, with one grace period for files and texts.
    pub fn gc(&self, grace: Duration) -> Result<GcReport, StoreError> {
        self.gc_with(grace, grace)
    }

    /// Deletes the `blobs` rows no document names that no load claimed in
    /// the last `text_grace`, removes packs no row names and compacts packs
    /// mostly garbage; then temporary files of unfinished loads and index
    /// folders and lock files of unknown sessions older than `file_grace`.
    /// When no load is under way in any process (the loads lock is free),
    /// texts and packs need no grace: every one no session names goes.
    pub fn gc_with(
        &self,
        file_grace: Duration,
        text_grace: Duration,
    ) -> Result<GcReport, StoreError> {
        let mut report = GcReport {
            grace_seconds: file_grace.as_secs(),
            ..GcReport::default()
        };
        // With no load under way in any process, nothing unnamed is a load's
        // to commit: texts and packs go whatever their age. Else the graces
        // hold, and gc shares the lock with the loads (so a gc that finds
        // none never takes this one's compacted packs for garbage).
        let path = self.layout.loads_lock();
        let context = || format!("taking the loads lock {}", path.display());
        let loads = match LoadsLock::try_exclusive(&path).map_err(io_err(context()))? {
            Some(alone) => alone,
            None => LoadsLock::shared(&path, LOCK_TIMEOUT).map_err(io_err(context()))?,
        };
        report.no_load_under_way = loads.is_exclusive();
        let (text_grace, pack_grace) = if loads.is_exclusive() {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (text_grace, file_grace)
        };
        report.texts_removed = self.collect_blob_rows(text_grace)?;
        self.collect_packs(pack_grace, &mut report)?;
        drop(loads);
        let sessions = self.session_ids()?;
        for entry in entries(&self.layout.tmp_dir()) {
            let path = entry.path();
            if older_than(&path, file_grace) && remove(&path, "temporary file", &mut report) {
                report.temp_files_removed += 1;
            }
        }
        // Per-session index folders of schema 3 and before: every session
        // now searches the shared index (`search/`).
        for entry in entries(&self.layout.indexes_dir()) {
            if remove(&entry.path(), "index folder", &mut report) {
                report.index_dirs_removed += 1;
            }
        }
        if std::fs::remove_dir(self.layout.indexes_dir()).is_ok() {
            tracing::info!("removed the per-session index folders of an earlier version");
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
                && older_than(&path, file_grace)
                && remove(&path, "lock file", &mut report)
            {
                report.lock_files_removed += 1;
            }
        }
        Ok(report)
    }

    /// Compacts the database after large deletions (`Db::compact`);
    /// returns the bytes it shrank by.
    pub fn compact_database(&self) -> Result<u64, StoreError> {
        Ok(self.db.compact()?)
    }

    /// Every session id.
    fn session_ids(&self) -> Result<HashSet<String>, StoreError> {
        self.db.read(|c| {
            Ok(c.prepare("SELECT session_id FROM sessions")?
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<HashSet<_>, _>>()?)
        })
    }

    /// Deletes, in one durable transaction, the blob rows no document names
    /// and no load claimed since `now - grace` (a load that found a text
    /// stored claims its row, `known_blobs`, and checks it again in its
    /// commit), with the rows that hang on them (`file_identities`,
    /// `indexed_texts`). Foreign keys are not enforced here: no index covers
    /// `documents.hash` (one would cost every load's commit ~7 µs a
    /// document), so SQLite looked for documents naming a blob by reading the
    /// whole table once per blob deleted, quadratic: minutes for 60 000 texts
    /// beside a session of 60 000. The rows deleted are the ones no document
    /// names, by the same query in the same transaction, and the children are
    /// deleted explicitly (a test checks `foreign_key_check` after gc).
    fn collect_blob_rows(&self, grace: Duration) -> Result<u64, StoreError> {
        const UNNAMED: &str = "SELECT hash FROM blobs WHERE created_at < ?1 \
                               EXCEPT SELECT hash FROM documents";
        let cutoff = cutoff(grace);
        self.db.write_durable_unchecked(|tx| {
            for child in ["file_identities", "indexed_texts"] {
                tx.execute(
                    &format!("DELETE FROM {child} WHERE hash IN ({UNNAMED})"),
                    [&cutoff],
                )?;
            }
            Ok(tx.execute(
                &format!("DELETE FROM blobs WHERE hash IN ({UNNAMED})"),
                [&cutoff],
            )? as u64)
        })
    }

    /// Removes the packs no row names and compacts those mostly garbage.
    /// A pack no row names is removed only when older than `grace` too: a
    /// load renames its pack into place moments before its commit names it
    /// (a load that still finds its pack gone fails cleanly, `commit_load`).
    fn collect_packs(&self, grace: Duration, report: &mut GcReport) -> Result<(), StoreError> {
        let live: std::collections::HashMap<String, i64> = self.db.read(|c| {
            Ok::<_, StoreError>(
                c.prepare(
                    "SELECT pack, sum(CASE WHEN offset >= 0 THEN length_bytes ELSE 0 END) \
                     FROM blobs GROUP BY pack",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?,
            )
        })?;
        for name in self.blobs.pack_names().unwrap_or_default() {
            let size = self.pack_len(&name).unwrap_or(0);
            match live.get(&name) {
                None => {
                    if older_than(&self.layout.pack_file(&name), grace)
                        && self.remove_pack_if_unnamed(&name, report)?
                    {
                        report.packs_removed += 1;
                        report.bytes_freed += size;
                    }
                }
                Some(&bytes)
                    if (size as f64 - bytes as f64) > size as f64 * COMPACT_GARBAGE_SHARE =>
                {
                    match self.compact_pack(&name) {
                        Ok(true) => {
                            report.packs_compacted += 1;
                            report.bytes_freed += size.saturating_sub(bytes.max(0) as u64);
                        }
                        Ok(false) => {}
                        Err(e) => report.errors.push(format!("compacting pack {name}: {e}")),
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Removes a pack's file inside a write transaction that finds no row
    /// naming it: a load's commit (which checks its pack exists inside its
    /// own transaction) is either before, and its rows keep the pack, or
    /// after, and finds it gone. True when removed.
    fn remove_pack_if_unnamed(
        &self,
        name: &str,
        report: &mut GcReport,
    ) -> Result<bool, StoreError> {
        let path = self.layout.pack_file(name);
        self.db.write(|tx| {
            let named = tx
                .prepare_cached("SELECT 1 FROM blobs WHERE pack = ?1 LIMIT 1")?
                .exists([name])?;
            if named {
                return Ok(false);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => {
                    report.errors.push(format!("pack {}: {e}", path.display()));
                    Ok(false)
                }
            }
        })
    }

    /// Copies the live texts of pack `name` into a new pack (written as a
    /// load writes one: temporary file, fsync, rename, folder fsync), each
    /// checked against its hash on the way; repoints their rows in one
    /// durable transaction (only rows still where they were read); then
    /// removes the old pack once no row names it. True when it was removed.
    fn compact_pack(&self, name: &str) -> Result<bool, StoreError> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let rows: Vec<LiveBlob> = self.db.read(|c| {
            Ok::<_, StoreError>(
                c.prepare(
                    "SELECT hash, offset, length_bytes FROM blobs \
                     WHERE pack = ?1 AND offset >= 0 AND length_bytes > 0 ORDER BY offset",
                )?
                .query_map([name], |r| {
                    Ok(LiveBlob {
                        hash: r.get(0)?,
                        offset: r.get(1)?,
                        length: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?,
            )
        })?;
        let path = self.layout.pack_file(name);
        let mut file = std::fs::File::open(&path)
            .map_err(super::io_err(format!("opening {}", path.display())))?;
        let mut writer = self
            .blobs
            .new_pack()
            .map_err(super::io_err("starting a compacted pack"))?;
        let mut moved: Vec<(&LiveBlob, u64)> = Vec::new();
        let mut buf = Vec::new();
        for row in &rows {
            buf.resize(row.length as usize, 0);
            // A text that cannot be read whole, or hashes to another key,
            // stays where it is (and keeps the old pack): its first open
            // reports it damaged.
            let read = file
                .seek(SeekFrom::Start(row.offset as u64))
                .and_then(|_| file.read_exact(&mut buf));
            if read.is_err() || sha256_hex(&buf) != row.hash {
                continue;
            }
            match writer.append(&buf) {
                Ok(at) => moved.push((row, at)),
                Err(e) => {
                    writer.abandon();
                    return Err(StoreError::Io {
                        context: "writing a compacted pack".into(),
                        source: e,
                    });
                }
            }
        }
        let new_name = writer
            .finish()
            .map_err(super::io_err("syncing a compacted pack"))?;
        if let Some(new_name) = &new_name {
            self.db.write_durable(|tx| {
                let mut st = tx.prepare_cached(
                    "UPDATE blobs SET pack = ?1, offset = ?2 WHERE hash = ?3 AND pack = ?4 AND offset = ?5",
                )?;
                for (row, at) in &moved {
                    st.execute(params![new_name, *at as i64, row.hash, name, row.offset])?;
                }
                Ok::<_, StoreError>(())
            })?;
        }
        let mut report = GcReport::default();
        let removed = self.remove_pack_if_unnamed(name, &mut report)?;
        if let Some(e) = report.errors.pop() {
            return Err(StoreError::Io {
                context: e,
                source: std::io::Error::other("removal failed"),
            });
        }
        Ok(removed)
    }
}

/// `now - grace` as stored timestamps are written (RFC 3339 UTC, micros).
pub fn cutoff(grace: Duration) -> String {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let at = chrono::Utc::now()
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file that went between the listing and the removal is no error;
    /// one that cannot go is.
    #[test]
    fn a_file_already_gone_is_not_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut report = GcReport::default();
        let gone = tmp.path().join("renamed-meanwhile.pack.tmp");
        assert!(!remove(&gone, "temporary file", &mut report));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let here = tmp.path().join("left.pack.tmp");
        std::fs::write(&here, b"12345").unwrap();
        assert!(remove(&here, "temporary file", &mut report));
        assert_eq!(report.bytes_freed, 5);
        assert!(!here.exists());
        // A path that cannot go for another reason (it runs through a
        // file) is an error, named.
        let folder = tmp.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("inside"), b"x").unwrap();
        let not_a_dir = folder.join("inside").join("deeper");
        assert!(!remove(&not_a_dir, "temporary file", &mut report));
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        assert!(report.errors[0].contains("deeper"), "{:?}", report.errors);
    }
}
