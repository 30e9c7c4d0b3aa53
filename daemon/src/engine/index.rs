//! The index manager: one BM25 passage index per session, persisted under
//! `indexes/<session_id>/`, cached in memory and checked against the
//! session's generation before every use. Building or updating takes the
//! session's lock, so one process builds while the others wait and then
//! open what it persisted.
//!
//! The manager owns what it needs (the store, the analysis of new indexes,
//! whether to build after a load), so it never reaches back into the engine;
//! it is cheap to clone, and a background build holds a clone.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use rlm::ToolError;

use super::budget::session_not_found;
use super::docs::DocRow;
use super::integrity::{check_read, open_text};
use super::{CallContext, EngineConfig, SessionRow};
use crate::search::analyzer::AnalyzerOptions;
use crate::search::bm25::{IndexError, IndexStamp, PassageIndex, signature};
use crate::store::Store;
use crate::store::lock::SessionLock;

/// An open index and the documents its ords stand for.
pub(crate) struct SessionIndex {
    pub generation: u64,
    pub index: PassageIndex,
    /// Documents by ord (their load sequence number).
    pub docs: Vec<DocRow>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, (Arc<SessionIndex>, u64)>,
    tick: u64,
}

/// Keeps open indexes and builds missing ones. Cheap to clone: clones share
/// the cache.
#[derive(Clone)]
pub struct IndexManager {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    /// Text analysis of new indexes (`EngineConfig::analyzer`).
    analyzer: AnalyzerOptions,
    /// Build after each load (`EngineConfig::background_index`).
    background_index: bool,
    capacity: usize,
    cache: Mutex<Cache>,
    background: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for IndexManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexManager")
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

impl IndexManager {
    /// A manager of the indexes of `store`'s sessions, with the engine's
    /// index settings (cache size, analysis, background builds).
    pub fn new(store: Arc<Store>, config: &EngineConfig) -> IndexManager {
        IndexManager {
            shared: Arc::new(Shared {
                store,
                analyzer: config.analyzer,
                background_index: config.background_index,
                capacity: config.index_cache_sessions.max(1),
                cache: Mutex::new(Cache::default()),
                background: Mutex::default(),
            }),
        }
    }

    /// How many session indexes are open in memory.
    pub fn cached(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.shared.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached_at(&self, session_id: &str, generation: u64) -> Option<Arc<SessionIndex>> {
        let mut cache = self.lock_cache();
        cache.tick += 1;
        let tick = cache.tick;
        let (idx, used) = cache.entries.get_mut(session_id)?;
        if idx.generation != generation {
            return None;
        }
        *used = tick;
        Some(idx.clone())
    }

    fn insert(&self, session_id: &str, idx: Arc<SessionIndex>) {
        let mut cache = self.lock_cache();
        cache.tick += 1;
        let tick = cache.tick;
        cache.entries.insert(session_id.to_owned(), (idx, tick));
        while cache.entries.len() > self.shared.capacity {
            let oldest = cache
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => cache.entries.remove(&k),
                None => break,
            };
        }
    }

    /// Drops a session's open index (its files stay).
    pub(crate) fn forget(&self, session_id: &str) {
        self.lock_cache().entries.remove(session_id);
    }

    /// Whether a current index exists for the session, in memory or on disk.
    pub(crate) fn is_current(&self, session_id: &str, generation: u64) -> bool {
        if self.cached_at(session_id, generation).is_some() {
            return true;
        }
        let wanted = signature(self.shared.analyzer);
        read_stamp(&self.shared.store.index_dir(session_id))
            .is_some_and(|s| s.generation == generation && s.analyzer == wanted)
    }

    /// The session's index at its current generation, building or updating
    /// it when needed. Returns whether this call built or updated it.
    pub(crate) fn get(
        &self,
        session: &SessionRow,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        if let Some(idx) = self.cached_at(&session.id, session.generation) {
            return Ok((idx, false));
        }
        let lock = self.shared.store.lock_session(&session.id)?;
        self.get_locked(&lock, &session.id, ctx)
    }

    /// [`IndexManager::get`] for a caller that already holds the session's
    /// lock (`rlm.session.close` persists the index before it closes).
    pub(crate) fn get_locked(
        &self,
        _lock: &SessionLock,
        session_id: &str,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        let store = &self.shared.store;
        // Re-read under the lock: a load may have committed meanwhile.
        let current = store
            .session(session_id)?
            .ok_or_else(|| session_not_found(session_id))?;
        let session = &current;
        if let Some(idx) = self.cached_at(&session.id, current.generation) {
            return Ok((idx, false));
        }
        let docs = store.documents_of(&session.id)?;
        let dir = store.index_dir(&session.id);
        let opts = self.shared.analyzer;
        let stamp = IndexStamp {
            generation: current.generation,
            doc_count: docs.len() as u64,
            analyzer: signature(opts),
        };
        let chars = |docs: &[DocRow]| docs.iter().map(|d| d.length_chars).sum::<u64>();
        // The index, and the chars this call indexed (None: none, it was current).
        let (index, indexed) = match PassageIndex::open(&dir) {
            Ok(Some(mut index)) => match index.stamp() {
                Some(s) if s == stamp => (index, None),
                // Documents are only ever appended: index just the new ones.
                Some(s) if s.analyzer == stamp.analyzer && s.doc_count < stamp.doc_count => {
                    let new = &docs[s.doc_count as usize..];
                    ctx.progress(0, Some(new.len() as u64), "indexing new documents");
                    add(store, &mut index, new, &stamp)?;
                    (index, Some(chars(new)))
                }
                _ => (
                    rebuild(store, opts, &dir, &docs, &stamp, ctx)?,
                    Some(chars(&docs)),
                ),
            },
            Ok(None) => (
                rebuild(store, opts, &dir, &docs, &stamp, ctx)?,
                Some(chars(&docs)),
            ),
            Err(e) => {
                tracing::warn!(session_id = %session.id, error = %e, "search index unusable; rebuilding it");
                (
                    rebuild(store, opts, &dir, &docs, &stamp, ctx)?,
                    Some(chars(&docs)),
                )
            }
        };
        let built = indexed.is_some();
        // The writer's buffers and the texts' analysis are freed by now.
        crate::alloc::after_large_work(indexed.unwrap_or(0));
        let idx = Arc::new(SessionIndex {
            generation: current.generation,
            index,
            docs,
        });
        self.insert(&session.id, idx.clone());
        Ok((idx, built))
    }

    /// Drops the session's index files and builds them again (after a search
    /// found them damaged).
    pub(crate) fn rebuild_damaged(
        &self,
        session: &SessionRow,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        self.forget(&session.id);
        {
            let _lock = self.shared.store.lock_session(&session.id)?;
            // Whatever is left is rebuilt over (`PassageIndex::create_with`).
            let _ = self.shared.store.remove_index_dir(&session.id);
        }
        self.get(session, ctx)
    }

    /// Brings the session's index up to date on another thread, so that a
    /// search right after a load finds it ready.
    pub(crate) fn refresh_in_background(&self, session_id: &str) {
        if !self.shared.background_index {
            return;
        }
        if !self
            .shared
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session_id.to_owned())
        {
            return; // one is pending; it reads the generation once it holds the lock
        }
        let manager = self.clone();
        let sid = session_id.to_owned();
        let spawned = std::thread::Builder::new().name("rlm-index".into()).spawn(move || {
            let session = manager
                .shared
                .store
                .session(&sid)
                .map_err(ToolError::from)
                .and_then(|s| s.ok_or_else(|| session_not_found(&sid)));
            let result = session.and_then(|s| {
                manager.shared.background.lock().unwrap_or_else(|p| p.into_inner()).remove(&sid);
                manager.get(&s, &CallContext::default())
            });
            if let Err(e) = result {
                tracing::warn!(session_id = %sid, error = %e, "background index build failed; the next search retries");
            }
        });
        if spawned.is_err() {
            self.shared
                .background
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(session_id);
        }
    }
}

/// A search index that could not be opened is rebuilt without a word; this
/// is a build that failed, which a retry repeats until its cause is gone.
fn index_err(e: IndexError) -> ToolError {
    ToolError::internal(format!(
        "the search index could not be built: {e}; a retry fails the same way until the cause is fixed (a full or read-only disk under the data directory); `method: \"literal\"` and `\"regex\"` search without it"
    ))
}

fn rebuild(
    store: &Store,
    opts: AnalyzerOptions,
    dir: &Path,
    docs: &[DocRow],
    stamp: &IndexStamp,
    ctx: &CallContext,
) -> Result<PassageIndex, ToolError> {
    ctx.progress(0, Some(docs.len() as u64), "building the search index");
    let mut index = PassageIndex::create_with(dir, opts).map_err(index_err)?;
    add(store, &mut index, docs, stamp)?;
    Ok(index)
}

fn add(
    store: &Store,
    index: &mut PassageIndex,
    docs: &[DocRow],
    stamp: &IndexStamp,
) -> Result<(), ToolError> {
    // Opened in parallel: the first open of a text hashes it.
    let texts = docs
        .par_iter()
        .map(|d| open_text(store, d))
        .collect::<Result<Vec<_>, _>>()?;
    // Nothing read from a pack cut short meanwhile (zeros) is committed: a
    // fault while reading marks the text's pack damaged (`fault`).
    let mut damaged = None;
    let committed = index
        .add_documents_if(
            docs.iter().zip(&texts).map(|(d, t)| (d.seq, t.as_str())),
            stamp,
            || {
                damaged = docs
                    .iter()
                    .zip(&texts)
                    .find_map(|(d, t)| check_read(store, d, t).err());
                damaged.is_none()
            },
        )
        .map_err(index_err)?;
    match (committed, damaged) {
        (true, _) => Ok(()),
        (false, Some(e)) => Err(e),
        (false, None) => Err(ToolError::internal(
            "the search index was not committed; retry the search",
        )),
    }
}

/// The stamp of the last commit in an index folder, read from tantivy's
/// `meta.json` without opening the index.
fn read_stamp(dir: &Path) -> Option<IndexStamp> {
    let meta = std::fs::read(dir.join("meta.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&meta).ok()?;
    serde_json::from_str(v.get("payload")?.as_str()?).ok()
}
