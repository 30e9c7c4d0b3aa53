//! The engine: its configuration, its handles (store, indexes, handlers),
//! and the session row every handler works on. The rooms: `dispatch` (the
//! one path of a call), `budget`, `trace`, `response` (the response
//! budget), `context` (what a caller brings), and one module per family of
//! tools holding their handlers.

mod admin;
mod artifacts;
mod budget;
mod chunks;
mod context;
mod dispatch;
mod docs;
mod fit;
mod index;
mod integrity;
mod load;
mod response;
mod search;
mod sessions;
mod trace;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;

use rlm::tools::SessionConfig;
use rlm::{ErrorCode, ToolError};

use crate::store::{Store, StoreError, io_err};

pub use crate::store::gc::GC_GRACE;
pub(crate) use crate::store::sessions::{SessionRow, SessionStatus};
pub use context::{CallContext, ProgressFn};
pub use index::{
    COMPACTION_CROWDED, COMPACTION_QUIET, COMPACTION_STEP_BYTES, Compacted, IndexManager,
};
pub(crate) use response::{ResponseBudget, json_bytes};

/// Server-side settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The data directory (SQLite, blobs, indexes, locks).
    pub data_dir: PathBuf,
    /// Defaults of every new session's config.
    pub session_defaults: SessionConfig,
    /// Files larger than this are not loaded.
    pub max_file_size_mb: u64,
    /// Threads that read and hash files during a load (0: one per core).
    pub load_threads: usize,
    /// When set, file loads may read only below these folders.
    pub allowed_roots: Option<Vec<PathBuf>>,
    /// Sessions whose view of the search index is kept in memory.
    pub index_cache_sessions: usize,
    /// Which passages BM25's statistics count: a session's own (the
    /// default) or the whole shared index's (`[search] bm25_statistics`).
    pub bm25_statistics: crate::search::bm25::Statistics,
    /// In which sessions a bm25 query word also matches its other forms in
    /// the index (`[search] word_forms`; `search/bm25/forms.rs`).
    pub word_forms: rlm::config::WordForms,
    /// Build a session's index in the background right after each load.
    pub background_index: bool,
    /// Merge the shared index's small segments on a thread of its own after
    /// each build and gc (`engine/index/compact.rs`).
    pub compact_index: bool,
    /// Text analysis of new indexes (stop words, stemming).
    pub analyzer: crate::search::analyzer::AnalyzerOptions,
    /// A load reuses the stored text of a file unchanged since an earlier
    /// load only when that read began more than this long after the file's
    /// last modification and status change (the "racily clean" guard of
    /// `store/files.rs`); longer than any file system's timestamp tick.
    pub racy_window: std::time::Duration,
    /// Characters of texts an index build commits at once, at most
    /// (`index::BATCH_CHARS`; smaller in tests, to build in many batches).
    pub index_batch_chars: u64,
}

impl EngineConfig {
    /// The defaults, with data under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            data_dir: data_dir.into(),
            session_defaults: SessionConfig::default(),
            max_file_size_mb: 100,
            load_threads: 0,
            allowed_roots: None,
            index_cache_sessions: 32,
            bm25_statistics: crate::search::bm25::Statistics::View,
            word_forms: rlm::config::WordForms::Prose,
            background_index: true,
            compact_index: true,
            analyzer: crate::search::analyzer::AnalyzerOptions::DEFAULT,
            racy_window: std::time::Duration::from_secs(2),
            index_batch_chars: index::BATCH_CHARS,
        }
    }
}

/// Why a call produced no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No tool has this name: a protocol error (JSON-RPC -32602), not a tool error.
    #[error(
        "unknown tool {0:?}; the tools are rlm.session.create, rlm.session.info, ... (see tools/list)"
    )]
    UnknownTool(String),
    /// The tool ran and failed; the model can read the error and fix its call.
    #[error(transparent)]
    Tool(#[from] ToolError),
}

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) indexes: IndexManager,
    pub(crate) scan_cache: search::ScanCache,
    /// The threads that read and hash files during a load, built by the
    /// first load of this engine (`EngineConfig::load_threads`).
    pub(crate) load_pool: OnceLock<rayon::ThreadPool>,
    /// Files this engine's loads have read (a file found unchanged is not).
    pub(crate) files_read: AtomicU64,
    registry: dispatch::Registry,
}

/// The engine. Cheap to clone; every method blocks, so async callers run it
/// on a blocking thread.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("data_dir", &self.inner.config.data_dir)
            .finish()
    }
}

impl From<StoreError> for ToolError {
    /// Words a store failure by what happened, and promises a retry only
    /// where one can help. The engine adds the data directory
    /// ([`Engine::call`]).
    fn from(e: StoreError) -> Self {
        match StoreFailure::of(&e) {
            StoreFailure::ReadOnly => ToolError::new(
                ErrorCode::StoreReadOnly,
                format!(
                    "the store cannot be written ({e}); make the data directory writable again (a file system remounted read-only, changed rights), then retry; nothing was changed"
                ),
            ),
            StoreFailure::Full => ToolError::new(
                ErrorCode::DiskFull,
                format!(
                    "the disk holding the store is full ({e}); free space on it (`rlm gc` removes files nothing uses), then retry; nothing was changed"
                ),
            ),
            StoreFailure::Busy => ToolError::new(
                ErrorCode::Busy,
                format!(
                    "the store stayed locked by another process past the wait ({e}); retry in a moment; nothing was changed"
                ),
            ),
            StoreFailure::Damaged => ToolError::internal(format!(
                "the store is damaged ({e}); a retry will not help: stop rlmd, keep a copy of the data directory, and check it (`sqlite3 store.sqlite 'PRAGMA integrity_check'`)"
            )),
            StoreFailure::Other => ToolError::internal(format!(
                "store error: {e}; the call changed nothing it could not finish"
            )),
        }
    }
}

/// What kind of failure a store error is, for its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreFailure {
    ReadOnly,
    Full,
    Busy,
    Damaged,
    Other,
}

impl StoreFailure {
    fn of(e: &StoreError) -> StoreFailure {
        use rusqlite::ErrorCode as Sq;
        let sqlite = match e {
            StoreError::Db(crate::store::DbError::Sqlite(e)) => e,
            StoreError::Io { source, .. } => return Self::of_io(source),
            _ => return StoreFailure::Other,
        };
        match sqlite.sqlite_error_code() {
            Some(Sq::ReadOnly | Sq::PermissionDenied | Sq::CannotOpen) => StoreFailure::ReadOnly,
            Some(Sq::DiskFull) => StoreFailure::Full,
            Some(Sq::DatabaseBusy | Sq::DatabaseLocked) => StoreFailure::Busy,
            Some(Sq::DatabaseCorrupt | Sq::NotADatabase) => StoreFailure::Damaged,
            // SQLite's I/O errors do not keep errno; the process's last one
            // is this thread's, set by the failed call.
            Some(Sq::SystemIoFailure) => match Self::of_io(&std::io::Error::last_os_error()) {
                StoreFailure::Other => StoreFailure::Other,
                known => known,
            },
            _ => StoreFailure::Other,
        }
    }

    fn of_io(e: &std::io::Error) -> StoreFailure {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ReadOnlyFilesystem | K::PermissionDenied => StoreFailure::ReadOnly,
            K::StorageFull | K::QuotaExceeded => StoreFailure::Full,
            _ => StoreFailure::Other,
        }
    }
}

impl From<crate::store::DbError> for ToolError {
    fn from(e: crate::store::DbError) -> Self {
        ToolError::from(StoreError::from(e))
    }
}

/// Now, as RFC 3339 UTC.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::internal(format!("serializing the result: {e}")))
}

impl Engine {
    /// Opens the engine on its data directory.
    pub fn open(mut config: EngineConfig) -> Result<Engine, StoreError> {
        // Compared against canonical file paths, so canonical themselves.
        if let Some(roots) = &mut config.allowed_roots {
            for r in roots.iter_mut() {
                *r = r
                    .canonicalize()
                    .map_err(io_err(format!("allowed root {}", r.display())))?;
            }
        }
        let store = Arc::new(Store::open(&config.data_dir)?);
        let indexes = IndexManager::new(store.clone(), &config);
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                store,
                indexes,
                scan_cache: Default::default(),
                load_pool: OnceLock::new(),
                files_read: AtomicU64::new(0),
                registry: dispatch::Registry::new(),
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Sessions still active, and all sessions, in the store.
    pub fn session_counts(&self) -> Result<(u64, u64), StoreError> {
        self.inner.store.session_counts()
    }

    /// Sessions whose view of the search index is kept in memory.
    pub fn indexes_cached(&self) -> usize {
        self.inner.indexes.cached()
    }

    /// Sessions whose documents this process knows without reading them
    /// from the store (a view of theirs is made from them and key hints).
    pub fn sessions_known(&self) -> usize {
        self.inner.indexes.known()
    }

    /// Writers of this process (builds, gc) that wait for the search
    /// index's write lock or hold it; a compaction waits for them.
    pub fn index_writers(&self) -> usize {
        self.inner.indexes.writers()
    }

    /// Files this engine's loads have opened and read since it was opened;
    /// a file whose stored text was reused because it is unchanged is not
    /// counted.
    pub fn files_read(&self) -> u64 {
        self.inner.files_read.load(Ordering::Relaxed)
    }
}
