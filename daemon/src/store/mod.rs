//! The store under the data directory: SQLite (`store.sqlite`), the blob
//! store (`blobs/`), the shared search index's folder (`search/`) and the
//! session lock files (`locks/`). Only this module and the index manager
//! write there, and every file removal under the data directory is here
//! (`gc`, `delete`, the blob store's temporary files) but the index's own
//! (tantivy's merges, and the index made afresh by the index manager).
//!
//! The store owns its data: every SQL statement is in a module of this one,
//! one per table family (`sessions`, `documents` with `blobs`, `files`
//! (`file_identities`), `indexed` (`indexed_texts`), `spans` with `chunk_sets`, `artifacts`, `traces`), and the engine sees only typed
//! methods of [`Store`]. **Each public method is one transaction**, opened
//! and committed inside it: reads on a pooled connection, writes `IMMEDIATE`
//! (`Db::write`), and those that keep what a user gave (sessions, documents,
//! spans, artifacts, close) with `synchronous=FULL` (`Db::write_durable`).
//! An operation that must be atomic (a load's commit, a chunking, an
//! artifact with its span, a close) is therefore a single method, and what
//! it must check inside its transaction (the session still active) comes
//! back as a typed outcome (`LoadCommit::Closed`, ...) for the engine to
//! word. `Db` stays private to the store. The writes that change a
//! session's documents or chunkings, or close it, take the session's lock as
//! a parameter: the engine takes it (`lock_session`) before its checks and
//! holds it through the commit.

pub mod artifacts;
pub mod blobs;
pub mod db;
pub mod delete;
pub mod documents;
pub mod files;
pub mod gc;
pub mod indexed;
pub mod layout;
pub mod sessions;
pub mod spans;
pub mod traces;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rayon::prelude::*;

pub use blobs::{BlobStore, PackWriter, sha256_hex};
pub use db::{Db, DbError};
pub use layout::Layout;

use crate::text::{DamageLog, MAX_VERIFIED, Pack, PackFile, Text, TextShape, VerifiedTexts};
pub mod lock;
use lock::{LoadsLock, SessionLock};

/// How long a change waits for another process holding the session's lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Open texts kept mapped for reuse.
const TEXT_CACHE_ENTRIES: usize = 8192;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("blob {hash} is not in the store")]
    MissingBlob { hash: String },
    /// A stored text failed its check when opened (`corrupt_text`): its pack
    /// is missing or too short, or its bytes do not hash to its key.
    #[error("the stored copy of text {hash} in pack {pack} is damaged: {why}")]
    Corrupt {
        hash: String,
        pack: String,
        why: String,
    },
    #[error("encoding {what}: {message}")]
    Encode { what: &'static str, message: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(DbError::Sqlite(e))
    }
}

pub fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// The paths and handles of one data directory.
pub struct Store {
    layout: Layout,
    db: Db,
    blobs: BlobStore,
    texts: Mutex<TextCache>,
    packs: Mutex<HashMap<String, Weak<Pack>>>,
    /// The texts found to hash to their keys, by pack, with the identity of
    /// the file they were read from: a later mapping of the same file (the
    /// first was let go with its texts, or when the daemon idled) does not
    /// hash them again. Those of packs no longer mapped are kept up to
    /// [`MAX_VERIFIED`] texts in all, while their files stay the same.
    verified: Mutex<HashMap<String, (PackFile, Arc<VerifiedTexts>)>>,
    /// Packs found cut short while mapped (`fault`).
    damage: Arc<DamageLog>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.layout.root())
            .finish()
    }
}

#[derive(Default)]
struct TextCache {
    map: HashMap<String, Arc<Text>>,
    order: VecDeque<String>,
}

/// Refuses a data directory this process cannot write (a read-only file
/// system, no rights), before anything is served: otherwise every call
/// would fail later with SQLite's words. A full disk is not refused: what
/// is stored can still be read.
fn check_writable(root: &Path) -> Result<(), StoreError> {
    let probe = root.join(format!(".rlmd-write-check-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match created {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            tracing::warn!(data_dir = %root.display(), "the disk holding the data directory is full: only reads will work");
            Ok(())
        }
        Err(e) => Err(StoreError::Io {
            context: format!(
                "the data directory {} cannot be written; make it writable, or give rlmd another (--data-dir, RLM_DATA_DIR)",
                root.display()
            ),
            source: e,
        }),
    }
}

impl Store {
    /// Opens the data directory, creating what is missing.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let mk = |p: &Path| {
            std::fs::create_dir_all(p).map_err(io_err(format!("creating {}", p.display())))
        };
        let layout = Layout::new(root);
        // The root is this user's, and 0700 when it holds only the store (a
        // store of an older version, or made by hand with a looser mode, is
        // tightened); a folder that also holds the user's own files (a home
        // folder given as the data directory) keeps its mode.
        let privacy = rlm::paths::ensure_own_dir(
            root,
            &layout::is_store_entry,
            "data folder",
            "--data-dir, RLM_DATA_DIR",
        )
        .map_err(io_err(format!("making {} private", root.display())))?;
        if privacy == rlm::paths::Privacy::LeftOpen {
            tracing::warn!(data_dir = %root.display(), "the data directory holds other files than the store's and is open to other users: its mode is left as it is, the store's own files are made private; give rlm a folder of its own (--data-dir, RLM_DATA_DIR)");
        }
        check_writable(root)?;
        // And every file of the store 0600, every folder 0700; nothing else.
        let repaired = rlm::paths::make_private_tree(root, &layout::is_store_entry).map_err(
            io_err(format!("making the files under {} private", root.display())),
        )?;
        if repaired > 0 {
            tracing::info!(repaired, data_dir = %root.display(), "made files and folders readable by this user only");
        }
        mk(&layout.locks_dir())?;
        mk(&layout.search_dir())?;
        let blobs = BlobStore::open(&layout).map_err(io_err("opening the blob store"))?;
        let db = Db::open(&layout.sqlite())?;
        // Temporary blob files older than a day cannot belong to a live load.
        let _ = blobs.clean_tmp(Duration::from_secs(24 * 3600));
        Ok(Store {
            layout,
            db,
            blobs,
            texts: Mutex::new(TextCache::default()),
            packs: Mutex::new(HashMap::new()),
            verified: Mutex::default(),
            damage: Arc::default(),
        })
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The paths of the data directory.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The folder of the search index every session shares.
    pub fn search_index_dir(&self) -> PathBuf {
        self.layout.search_index_dir()
    }

    /// Takes the shared search index's write lock (blocking; call from a
    /// blocking thread), calling `waiting` about once a second while another
    /// process holds it. One process at a time adds to or deletes from the
    /// index, or makes it afresh.
    pub fn lock_search_index(
        &self,
        waiting: &mut dyn FnMut(Duration),
    ) -> Result<SessionLock, StoreError> {
        let dir = self.layout.search_dir();
        SessionLock::acquire_watched(&dir, layout::SEARCH_WRITE_LOCK, LOCK_TIMEOUT, waiting)
            .map_err(io_err(format!(
                "locking the search index in {}",
                dir.display()
            )))
    }

    /// The search index's write lock if no one holds it now (`None` when
    /// another writer does), without waiting: for work that can be left
    /// to whoever writes next (the index's compaction).
    pub fn try_lock_search_index(&self) -> Result<Option<SessionLock>, StoreError> {
        let dir = self.layout.search_dir();
        match SessionLock::acquire(&dir, layout::SEARCH_WRITE_LOCK, Duration::ZERO) {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(io_err(format!(
                "locking the search index in {}",
                dir.display()
            ))(e)),
        }
    }

    /// Starts a pack for a load's new texts (under `blobs/tmp/` until it is
    /// finished: synced and renamed into `blobs/packs/`).
    pub fn new_pack(&self) -> std::io::Result<PackWriter> {
        self.blobs.new_pack()
    }

    /// Takes the loads lock shared, for one load from before its pack or its
    /// first claim until its commit has ended (blocking, while a gc holds it
    /// exclusively; call from a blocking thread). See `lock::LoadsLock`.
    pub fn lock_for_load(&self) -> Result<LoadsLock, StoreError> {
        let path = self.layout.loads_lock();
        LoadsLock::shared(&path, LOCK_TIMEOUT).map_err(io_err(format!(
            "waiting for gc to let loads in ({})",
            path.display()
        )))
    }

    /// Takes a session's exclusive lock (blocking; call from a blocking thread).
    pub fn lock_session(&self, session_id: &str) -> Result<SessionLock, StoreError> {
        SessionLock::acquire(&self.layout.locks_dir(), session_id, LOCK_TIMEOUT)
            .map_err(io_err(format!("locking session {session_id}")))
    }

    /// The text of a stored blob, verified when it is first opened
    /// (`Text::in_pack`: inside its pack as the file is now, its bytes'
    /// SHA-256 equal to `hash`, UTF-8), then mapped and shared. A damaged text
    /// is an error (`StoreError::Corrupt`, or `MissingBlob` once forgotten),
    /// is never cached, and its blob row is forgotten so that a load of the
    /// same text stores it afresh. A cached text whose pack was since found
    /// cut short is dropped and opened again (and then fails).
    pub fn text(&self, hash: &str) -> Result<Arc<Text>, StoreError> {
        {
            let mut cache = self.texts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = cache.map.get(hash) {
                if !t.damaged() {
                    return Ok(t.clone());
                }
                cache.map.remove(hash);
            }
        }
        // A compaction (gc, any process) may move the text and remove its
        // old pack between the read of its row and the open: a failed open
        // whose row has since moved tries again at the new place.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.open_text(hash)? {
                Ok(text) => return Ok(text),
                Err((pack, offset, why)) => {
                    let moved = self
                        .db
                        .read(|c| documents::blob_in(c, hash).map_err(StoreError::from))?
                        .is_some_and(|now| now.pack != pack || now.offset != offset);
                    if moved && tries < 3 {
                        continue;
                    }
                    if let Err(e) = self.forget_blob(hash, &pack, offset) {
                        tracing::warn!(%hash, %pack, error = %e, "could not forget a damaged text");
                    }
                    tracing::warn!(%hash, %pack, %why, "a stored text is damaged");
                    return Err(StoreError::Corrupt {
                        hash: hash.to_owned(),
                        pack,
                        why,
                    });
                }
            }
        }
    }

    /// The texts of these blobs, in order, each as [`Store::text`] gives it;
    /// the places of those not open read from the store at once (one read
    /// for all, where [`Store::text`] reads each text's row on its own: a
    /// build opens tens of thousands), then opened in parallel.
    /// A text not at the place read (moved meanwhile by a compaction, or
    /// damaged) goes the way of [`Store::text`].
    pub fn texts(&self, hashes: &[&str]) -> Result<Vec<Result<Arc<Text>, StoreError>>, StoreError> {
        let cached: Vec<Option<Arc<Text>>> = {
            let cache = self.texts.lock().unwrap_or_else(|p| p.into_inner());
            hashes
                .iter()
                .map(|h| cache.map.get(*h).filter(|t| !t.damaged()).cloned())
                .collect()
        };
        let places: Vec<Option<documents::BlobLocation>> = self.db.read(|c| {
            // One snapshot for every row, not a read transaction each.
            let tx = c.unchecked_transaction().map_err(DbError::from)?;
            let places = hashes
                .iter()
                .zip(&cached)
                .map(|(h, t)| match t {
                    Some(_) => Ok(None),
                    None => documents::blob_in(&tx, h),
                })
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StoreError::from)?;
            drop(tx);
            Ok::<_, StoreError>(places)
        })?;
        Ok(hashes
            .par_iter()
            .zip(cached)
            .zip(places)
            .map(|((hash, cached), place)| match (cached, place) {
                (Some(text), _) => Ok(text),
                (None, Some(place)) => match self.open_at(hash, place)? {
                    Ok(text) => Ok(text),
                    Err(_) => self.text(hash),
                },
                (None, None) => self.text(hash),
            })
            .collect())
    }

    /// One try of [`Store::text`]: the text, or the copy it found damaged
    /// (`pack`, `offset`, why).
    #[allow(clippy::type_complexity)]
    fn open_text(
        &self,
        hash: &str,
    ) -> Result<Result<Arc<Text>, (String, i64, String)>, StoreError> {
        let row = self
            .db
            .read(|c| documents::blob_in(c, hash).map_err(StoreError::from))?;
        let place = row.ok_or_else(|| StoreError::MissingBlob {
            hash: hash.to_owned(),
        })?;
        self.open_at(hash, place)
    }

    /// [`Store::open_text`] at a place read from the `blobs` table.
    #[allow(clippy::type_complexity)]
    fn open_at(
        &self,
        hash: &str,
        place: documents::BlobLocation,
    ) -> Result<Result<Arc<Text>, (String, i64, String)>, StoreError> {
        let documents::BlobLocation {
            pack,
            offset,
            length_bytes: bytes,
            length_chars: chars,
            checkpoints: cps,
        } = place;
        let shape = TextShape::from_stored(chars as u64, cps.as_deref());
        let opened = if bytes == 0 {
            match sha256_hex(b"") == hash {
                true => Ok(Text::from_string(String::new())),
                false => Err("recorded as empty, but its hash is not that of an empty text".into()),
            }
        } else if offset < 0 {
            // Marked by `forget_blob`: not stored again since.
            return Err(StoreError::Corrupt {
                hash: hash.to_owned(),
                pack,
                why: "it was found damaged before, and has not been loaded again since".into(),
            });
        } else if bytes < 0 {
            Err(format!("recorded at bytes {offset}..+{bytes}"))
        } else {
            let need = offset as u64 + bytes as u64;
            match self.pack(&pack, need) {
                Ok(map) => Text::in_pack(map, offset as u64, bytes as u64, shape, hash),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    Err(e.to_string())
                }
                Err(e) => {
                    return Err(StoreError::Io {
                        context: format!("mapping pack {}", self.layout.pack_file(&pack).display()),
                        source: e,
                    });
                }
            }
        };
        let text = match opened {
            Ok(t) => Arc::new(t),
            Err(why) => return Ok(Err((pack, offset, why))),
        };
        // Another thread may have opened the same text meanwhile (a batch's
        // `texts` opens in parallel): the first copy kept is the one every
        // caller shares, with the line marks it keeps.
        let mut cache = self.texts.lock().unwrap_or_else(|p| p.into_inner());
        match cache.map.get(hash) {
            Some(kept) if !kept.damaged() => return Ok(Ok(kept.clone())),
            // In the order already: only its copy changes.
            Some(_) => {
                cache.map.insert(hash.to_owned(), text.clone());
            }
            None => {
                cache.map.insert(hash.to_owned(), text.clone());
                cache.order.push_back(hash.to_owned());
                while cache.order.len() > TEXT_CACHE_ENTRIES {
                    if let Some(old) = cache.order.pop_front() {
                        cache.map.remove(&old);
                    }
                }
            }
        }
        Ok(Ok(text))
    }

    /// A pack's mapping, shared by every text it holds while any is open.
    /// One shorter than `at_least` (a range recorded in it) is never mapped;
    /// a mapping found cut short is replaced (and the new one then refused).
    fn pack(&self, name: &str, at_least: u64) -> std::io::Result<Arc<Pack>> {
        let mut packs = self.packs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = packs.get(name).and_then(Weak::upgrade) {
            if !map.record_damage() && map.len() as u64 >= at_least {
                return Ok(map);
            }
            packs.remove(name);
        }
        let path = self.layout.pack_file(name);
        let map = Pack::open(&path, at_least, name, self.damage.clone())?;
        let verified = self.verified_in(name, map.file_id());
        let map = Arc::new(map.with_verified(verified));
        packs.retain(|_, w| w.strong_count() > 0);
        packs.insert(name.to_owned(), Arc::downgrade(&map));
        Ok(map)
    }

    /// The texts verified in pack `name` as the file `id` (none when the
    /// file is another than the one they were read from).
    fn verified_in(&self, name: &str, id: PackFile) -> Arc<VerifiedTexts> {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        match verified.get(name) {
            Some((was, texts)) if *was == id => texts.clone(),
            _ => {
                self.prune_verified(&mut verified, false);
                let texts = Arc::new(VerifiedTexts::default());
                verified.insert(name.to_owned(), (id, texts.clone()));
                texts
            }
        }
    }

    /// Vouches for texts this process hashed from the very bytes it then
    /// wrote at these places of pack `name` (a load: `(offset, length,
    /// key)`), the file being `id` as it was put in place: their first open
    /// does not hash them again, while the file stays the same. The check
    /// would read back the page cache the load just filled, not the disk.
    pub fn vouch_written<'a>(
        &self,
        name: &str,
        id: PackFile,
        texts: impl IntoIterator<Item = (u64, u64, &'a str)>,
    ) {
        let verified = self.verified_in(name, id);
        for (offset, length_bytes, hash) in texts {
            if length_bytes > 0 {
                verified.vouch(offset, length_bytes, hash);
            }
        }
    }

    /// Keeps what packs no longer mapped verified up to [`MAX_VERIFIED`]
    /// texts in all, the largest first (a daemon that never idles maps a
    /// new pack a load), and, when `look`, only while their files stay the
    /// same (gone after a gc, or another file).
    fn prune_verified(
        &self,
        verified: &mut HashMap<String, (PackFile, Arc<VerifiedTexts>)>,
        look: bool,
    ) {
        let mut idle: Vec<(String, usize)> = verified
            .iter()
            .filter(|(_, (_, texts))| Arc::strong_count(texts) == 1)
            .map(|(name, (_, texts))| (name.clone(), texts.len()))
            .collect();
        idle.sort_unstable_by_key(|b| std::cmp::Reverse(b.1));
        let mut kept = 0;
        for (name, n) in idle {
            let same = !look
                || std::fs::metadata(self.layout.pack_file(&name)).is_ok_and(|m| {
                    verified
                        .get(&name)
                        .is_some_and(|(id, _)| *id == PackFile::of(&m))
                });
            if same && n > 0 && kept + n <= MAX_VERIFIED {
                kept += n;
            } else {
                verified.remove(&name);
            }
        }
    }

    /// Drops the open texts kept for reuse, and with the last of their
    /// readers their packs' mappings (a daemon that has idled a while: the
    /// next read opens them again). What was verified in packs no longer
    /// mapped is kept while their files stay the same, up to
    /// [`MAX_VERIFIED`] texts in all (about 2.4 MB), the largest first.
    pub fn forget_open_texts(&self) {
        *self.texts.lock().unwrap_or_else(|p| p.into_inner()) = TextCache::default();
        self.packs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, w| w.strong_count() > 0);
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        self.prune_verified(&mut verified, true);
    }

    /// The texts remembered as verified in pack `name` (tests).
    #[cfg(test)]
    pub(crate) fn verified_texts(&self, name: &str) -> usize {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        verified.get(name).map_or(0, |(_, texts)| texts.len())
    }

    /// Texts hashed by the live mapping of pack `name` (tests).
    #[cfg(test)]
    pub(crate) fn texts_hashed_in(&self, name: &str) -> Option<u64> {
        let packs = self.packs.lock().unwrap_or_else(|p| p.into_inner());
        packs
            .get(name)
            .and_then(Weak::upgrade)
            .map(|p| p.texts_hashed())
    }

    /// How many open texts are kept for reuse.
    pub fn open_texts(&self) -> usize {
        self.texts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// The packs found cut short while mapped since the fault count was
    /// `faults` (`fault::faults`), after dropping every damaged mapping from
    /// the caches (so the next open of their texts checks the files again).
    /// For a call that saw the count move while it ran: what it read of
    /// these packs may be zeros.
    pub fn damaged_packs_since(&self, faults: u64) -> Vec<String> {
        {
            let mut packs = self.packs.lock().unwrap_or_else(|p| p.into_inner());
            packs.retain(|_, w| w.upgrade().is_some_and(|m| !m.record_damage()));
        }
        {
            let mut cache = self.texts.lock().unwrap_or_else(|p| p.into_inner());
            cache.map.retain(|_, t| !t.damaged());
        }
        self.damage.since(faults)
    }

    /// The current size of a pack's file (None when it is gone).
    pub fn pack_len(&self, name: &str) -> Option<u64> {
        std::fs::metadata(self.layout.pack_file(name))
            .ok()
            .map(|m| m.len())
    }
}
