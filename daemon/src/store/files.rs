//! The `file_identities` table: what each file a load read looked like
//! (size, modification and change times, inode, device) and which stored
//! text it held, so that a later load can reuse the text of a file that has
//! not changed instead of reading and hashing it again; and the one rule
//! that says when a recorded identity may be trusted ([`Recorded::vouches_for`]).

use std::time::{Duration, SystemTime};

use rusqlite::{Transaction, params};

use super::{Store, StoreError};
use crate::text::TextShape;

/// What the file system says of a regular file: equal identities are taken
/// to mean equal contents, within the rule of [`Recorded::vouches_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time (any write, rename, chmod or `utimes` sets it to
    /// now; no call sets it back), nanoseconds since the epoch.
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
}

impl FileIdentity {
    /// The identity of a regular file; None for anything else, and on
    /// systems without inodes and change times (no file is then skipped).
    pub fn of(meta: &std::fs::Metadata) -> Option<FileIdentity> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if !meta.is_file() {
                return None;
            }
            let ns = |s: i64, n: i64| s.checked_mul(1_000_000_000)?.checked_add(n);
            Some(FileIdentity {
                size: meta.size(),
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec())?,
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec())?,
                inode: meta.ino(),
                device: meta.dev(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// Now, in nanoseconds since the epoch (the clock file times are set by).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A file as a load read it: its identity, when the read began, and the
/// stored text it held (whose `blobs` row is intact: see [`Store::recorded_files`]).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub identity: FileIdentity,
    /// The clock just before the file was opened for that read.
    pub read_at_ns: i64,
    pub hash: String,
    pub length_bytes: u64,
    pub shape: TextShape,
    /// When a load last claimed the stored text (its `created_at`).
    pub claimed_at: String,
}

impl Recorded {
    /// Whether the file, whose identity is now `current`, still holds the
    /// recorded text. Every field must be equal, and the recorded times
    /// must both lie more than `window` before the read began: a file
    /// written within a timestamp tick of its read ("racily clean", as git
    /// calls it) could have been written again in that same tick, at the
    /// same size, leaving every field equal; a write after the read sets
    /// both times to at least the read's time, more than `window` past the
    /// recorded ones, as long as the file system's timestamps are finer
    /// than `window`. A change time is never set back, so an edit that
    /// restores the modification time (`touch -r`, `cp -p`, `rsync -t`)
    /// is seen too.
    pub fn vouches_for(&self, current: &FileIdentity, window: Duration) -> bool {
        let window = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        let newest = self.identity.mtime_ns.max(self.identity.ctime_ns);
        self.identity == *current && newest.saturating_add(window) < self.read_at_ns
    }
}

/// Records (or replaces) what the file at `path` looked like when it was
/// read, in the load's commit; `hash` must be in `blobs` already.
pub(super) fn record_file(
    tx: &Transaction<'_>,
    path: &str,
    identity: &FileIdentity,
    read_at_ns: i64,
    hash: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO file_identities (path, size, mtime_ns, ctime_ns, inode, device, read_at_ns, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, \
         ctime_ns = excluded.ctime_ns, inode = excluded.inode, device = excluded.device, \
         read_at_ns = excluded.read_at_ns, hash = excluded.hash",
    )?
    .execute(params![
        path,
        identity.size as i64,
        identity.mtime_ns,
        identity.ctime_ns,
        identity.inode as i64,
        identity.device as i64,
        read_at_ns,
        hash
    ])?;
    Ok(())
}

impl Store {
    /// What the store recorded of these files (by path, as loads name
    /// them), one answer a path, in their order: None for a path it holds
    /// nothing of, and for one whose text is no longer stored intact (a
    /// text whose `blobs` row is gone or marked damaged, `offset < 0`,
    /// vouches for nothing, so the file is read again and its text stored
    /// afresh). Answers in order, not a map by path: a re-load of 59 358
    /// files hashed each path three times for maps (SipHash, 4% of its CPU).
    pub fn recorded_files(&self, paths: &[&str]) -> Result<Vec<Option<Recorded>>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT f.size, f.mtime_ns, f.ctime_ns, f.inode, f.device, f.read_at_ns, \
                 f.hash, b.length_bytes, b.length_chars, b.checkpoints, b.created_at \
                 FROM file_identities f JOIN blobs b ON b.hash = f.hash AND b.offset >= 0 \
                 WHERE f.path = ?1",
            )?;
            let mut found = Vec::with_capacity(paths.len());
            for path in paths {
                let mut rows = st.query([path])?;
                let Some(r) = rows.next()? else {
                    found.push(None);
                    continue;
                };
                let checkpoints: Option<Vec<u8>> = r.get(9)?;
                found.push(Some(Recorded {
                    identity: FileIdentity {
                        size: r.get::<_, i64>(0)? as u64,
                        mtime_ns: r.get(1)?,
                        ctime_ns: r.get(2)?,
                        inode: r.get::<_, i64>(3)? as u64,
                        device: r.get::<_, i64>(4)? as u64,
                    },
                    read_at_ns: r.get(5)?,
                    hash: r.get(6)?,
                    length_bytes: r.get::<_, i64>(7)? as u64,
                    shape: TextShape::from_stored(
                        r.get::<_, i64>(8)? as u64,
                        checkpoints.as_deref(),
                    ),
                    claimed_at: r.get(10)?,
                }));
            }
            Ok(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn recorded(mtime_ns: i64, ctime_ns: i64, read_at_ns: i64) -> Recorded {
        Recorded {
            identity: FileIdentity {
                size: 10,
                mtime_ns,
                ctime_ns,
                inode: 7,
                device: 1,
            },
            read_at_ns,
            hash: String::new(),
            length_bytes: 10,
            shape: TextShape::of("0123456789"),
            claimed_at: String::new(),
        }
    }

    #[test]
    fn only_an_equal_identity_read_well_after_its_times_vouches() {
        let window = Duration::from_secs(2);
        let r = recorded(100 * SEC, 100 * SEC, 110 * SEC);
        let same = r.identity;
        assert!(r.vouches_for(&same, window));
        for changed in [
            FileIdentity { size: 11, ..same },
            FileIdentity {
                mtime_ns: same.mtime_ns + 1,
                ..same
            },
            // The modification time put back, the change time not.
            FileIdentity {
                ctime_ns: same.ctime_ns + 1,
                ..same
            },
            FileIdentity { inode: 8, ..same },
            FileIdentity { device: 2, ..same },
        ] {
            assert!(!r.vouches_for(&changed, window), "{changed:?}");
        }
        // Racily clean: written (either time) within the window of the read.
        for (m, c) in [
            (109 * SEC, 100 * SEC),
            (100 * SEC, 109 * SEC),
            (108 * SEC, 108 * SEC),
        ] {
            let r = recorded(m, c, 110 * SEC);
            assert!(!r.vouches_for(&r.identity, window), "m {m} c {c}");
            assert!(r.vouches_for(&r.identity, Duration::ZERO), "m {m} c {c}");
        }
        // A time in the future of the read never vouches.
        let r = recorded(120 * SEC, 120 * SEC, 110 * SEC);
        assert!(!r.vouches_for(&r.identity, Duration::ZERO));
    }
}
