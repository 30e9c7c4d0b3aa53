//! The store under the data directory: SQLite (`store.sqlite`), the blob
//! store (`blobs/`), the search indexes (`indexes/`) and the session lock
//! files (`locks/`). Only this module and the index manager write there.

pub mod blobs;
pub mod db;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rusqlite::OptionalExtension;

pub use blobs::{BlobStore, sha256_hex};
pub use db::{Db, DbError};

use crate::text::{Text, TextShape, map_file};
pub mod lock;
use lock::SessionLock;

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
    root: PathBuf,
    pub db: Db,
    pub blobs: BlobStore,
    locks: PathBuf,
    indexes: PathBuf,
    texts: Mutex<TextCache>,
    packs: Mutex<HashMap<String, Weak<memmap2::Mmap>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

#[derive(Default)]
struct TextCache {
    map: HashMap<String, Arc<Text>>,
    order: VecDeque<String>,
}

impl Store {
    /// Opens the data directory, creating what is missing.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let mk = |p: &Path| {
            std::fs::create_dir_all(p).map_err(io_err(format!("creating {}", p.display())))
        };
        mk(root)?;
        let locks = root.join("locks");
        let indexes = root.join("indexes");
        mk(&locks)?;
        mk(&indexes)?;
        let blobs =
            BlobStore::open(&root.join("blobs")).map_err(io_err("opening the blob store"))?;
        let db = Db::open(&root.join("store.sqlite"))?;
        // Temporary blob files older than a day cannot belong to a live load.
        let _ = blobs.clean_tmp(Duration::from_secs(24 * 3600));
        Ok(Store {
            root: root.to_owned(),
            db,
            blobs,
            locks,
            indexes,
            texts: Mutex::new(TextCache::default()),
            packs: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a session's search index.
    pub fn index_dir(&self, session_id: &str) -> PathBuf {
        self.indexes.join(session_id)
    }

    /// Takes a session's exclusive lock (blocking; call from a blocking thread).
    pub fn lock_session(&self, session_id: &str) -> Result<SessionLock, StoreError> {
        SessionLock::acquire(&self.locks, session_id, LOCK_TIMEOUT)
            .map_err(io_err(format!("locking session {session_id}")))
    }

    /// The text of a stored blob, mapped once and then shared.
    pub fn text(&self, hash: &str) -> Result<Arc<Text>, StoreError> {
        if let Some(t) = self
            .texts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .get(hash)
        {
            return Ok(t.clone());
        }
        let row = self.db.read(|c| {
            c.prepare_cached(
                "SELECT pack, offset, length_bytes, length_chars, checkpoints FROM blobs WHERE hash = ?1",
            )?
            .query_row([hash], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .optional()
            .map_err(StoreError::from)
        })?;
        let (pack, offset, bytes, chars, cps) = row.ok_or_else(|| StoreError::MissingBlob {
            hash: hash.to_owned(),
        })?;
        let shape = TextShape::from_stored(chars as u64, cps.as_deref());
        let text = if bytes == 0 {
            Text::from_string(String::new())
        } else {
            let map = self.pack(&pack)?;
            let what = format!("blob {hash} in pack {pack}");
            Text::in_pack(map, offset as u64, bytes as u64, shape, &what)
                .map_err(io_err("reading a stored text"))?
        };
        let text = Arc::new(text);
        let mut cache = self.texts.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.map.contains_key(hash) {
            cache.map.insert(hash.to_owned(), text.clone());
            cache.order.push_back(hash.to_owned());
            while cache.order.len() > TEXT_CACHE_ENTRIES {
                if let Some(old) = cache.order.pop_front() {
                    cache.map.remove(&old);
                }
            }
        }
        Ok(text)
    }

    /// A pack's mapping, shared by every text it holds while any is open.
    fn pack(&self, pack: &str) -> Result<Arc<memmap2::Mmap>, StoreError> {
        let mut packs = self.packs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = packs.get(pack).and_then(Weak::upgrade) {
            return Ok(map);
        }
        let path = self.blobs.pack_path(pack);
        let map = map_file(&path)
            .map_err(io_err(format!("mapping pack {}", path.display())))?
            .ok_or_else(|| StoreError::Io {
                context: format!("pack {} is empty", path.display()),
                source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            })?;
        let map = Arc::new(map);
        packs.retain(|_, w| w.strong_count() > 0);
        packs.insert(pack.to_owned(), Arc::downgrade(&map));
        Ok(map)
    }
}
