//! The index manager: one BM25 passage index per session, persisted under
//! `indexes/<session_id>/`, cached in memory and checked against the
//! session's generation before every use. Building or updating takes the
//! session's lock, so one process builds while the others wait and then
//! open what it persisted.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rlm::ToolError;

use super::docs::DocRow;
use super::{CallContext, Engine, SessionRow};
use crate::search::bm25::{IndexError, IndexStamp, PassageIndex, signature};

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

/// Keeps open indexes and builds missing ones.
pub struct IndexManager {
    capacity: usize,
    cache: Mutex<Cache>,
    background: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for IndexManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexManager")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl IndexManager {
    pub fn new(capacity: usize) -> IndexManager {
        IndexManager {
            capacity: capacity.max(1),
            cache: Mutex::new(Cache::default()),
            background: Mutex::default(),
        }
    }

    /// How many session indexes are open in memory.
    pub fn cached(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
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
        while cache.entries.len() > self.capacity {
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
    pub(crate) fn is_current(&self, engine: &Engine, session_id: &str, generation: u64) -> bool {
        if self.cached_at(session_id, generation).is_some() {
            return true;
        }
        let wanted = signature(engine.inner.config.analyzer);
        read_stamp(&engine.inner.store.index_dir(session_id))
            .is_some_and(|s| s.generation == generation && s.analyzer == wanted)
    }

    /// The session's index at its current generation, building or updating
    /// it when needed. Returns whether this call built or updated it.
    pub(crate) fn get(
        &self,
        engine: &Engine,
        session: &SessionRow,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        if let Some(idx) = self.cached_at(&session.id, session.generation) {
            return Ok((idx, false));
        }
        let store = &engine.inner.store;
        let _lock = store.lock_session(&session.id)?;
        // Re-read under the lock: a load may have committed meanwhile.
        let current = engine.load_session(&session.id)?;
        if let Some(idx) = self.cached_at(&session.id, current.generation) {
            return Ok((idx, false));
        }
        let docs = engine.docs_of(&session.id)?;
        let dir = store.index_dir(&session.id);
        let opts = engine.inner.config.analyzer;
        let stamp = IndexStamp {
            generation: current.generation,
            doc_count: docs.len() as u64,
            analyzer: signature(opts),
        };
        let (index, built) = match PassageIndex::open(&dir) {
            Ok(Some(mut index)) => match index.stamp() {
                Some(s) if s == stamp => (index, false),
                // Documents are only ever appended: index just the new ones.
                Some(s) if s.analyzer == stamp.analyzer && s.doc_count < stamp.doc_count => {
                    ctx.progress(
                        0,
                        Some(docs.len() as u64 - s.doc_count),
                        "indexing new documents",
                    );
                    add(engine, &mut index, &docs[s.doc_count as usize..], &stamp)?;
                    (index, true)
                }
                _ => (rebuild(engine, &dir, &docs, &stamp, ctx)?, true),
            },
            Ok(None) => (rebuild(engine, &dir, &docs, &stamp, ctx)?, true),
            Err(e) => {
                tracing::warn!(session_id = %session.id, error = %e, "search index unusable; rebuilding it");
                (rebuild(engine, &dir, &docs, &stamp, ctx)?, true)
            }
        };
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
        engine: &Engine,
        session: &SessionRow,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        self.forget(&session.id);
        {
            let _lock = engine.inner.store.lock_session(&session.id)?;
            let dir = engine.inner.store.index_dir(&session.id);
            let _ = std::fs::remove_dir_all(&dir);
        }
        self.get(engine, session, ctx)
    }

    /// Brings the session's index up to date on another thread, so that a
    /// search right after a load finds it ready.
    pub(crate) fn refresh_in_background(&self, engine: &Engine, session_id: &str) {
        if !engine.inner.config.background_index {
            return;
        }
        if !self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session_id.to_owned())
        {
            return; // one is pending; it reads the generation once it holds the lock
        }
        let engine = engine.clone();
        let sid = session_id.to_owned();
        let spawned = std::thread::Builder::new().name("rlm-index".into()).spawn(move || {
            let manager = &engine.inner.indexes;
            let result = engine.load_session(&sid).and_then(|s| {
                manager.background.lock().unwrap_or_else(|p| p.into_inner()).remove(&sid);
                manager.get(&engine, &s, &CallContext::default())
            });
            if let Err(e) = result {
                tracing::warn!(session_id = %sid, error = %e, "background index build failed; the next search retries");
            }
        });
        if spawned.is_err() {
            self.background
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(session_id);
        }
    }
}

fn index_err(e: IndexError) -> ToolError {
    ToolError::internal(format!(
        "{e}; retry the search (a damaged index is rebuilt)"
    ))
}

fn rebuild(
    engine: &Engine,
    dir: &Path,
    docs: &[DocRow],
    stamp: &IndexStamp,
    ctx: &CallContext,
) -> Result<PassageIndex, ToolError> {
    ctx.progress(0, Some(docs.len() as u64), "building the search index");
    let mut index =
        PassageIndex::create_with(dir, engine.inner.config.analyzer).map_err(index_err)?;
    add(engine, &mut index, docs, stamp)?;
    Ok(index)
}

fn add(
    engine: &Engine,
    index: &mut PassageIndex,
    docs: &[DocRow],
    stamp: &IndexStamp,
) -> Result<(), ToolError> {
    let texts = docs
        .iter()
        .map(|d| engine.inner.store.text(&d.hash).map(|t| (d.seq, t)))
        .collect::<Result<Vec<_>, _>>()?;
    index
        .add_documents(texts.iter().map(|(ord, t)| (*ord, t.as_str())), stamp)
        .map_err(index_err)
}

/// The stamp of the last commit in an index folder, read from tantivy's
/// `meta.json` without opening the index.
fn read_stamp(dir: &Path) -> Option<IndexStamp> {
    let meta = std::fs::read(dir.join("meta.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&meta).ok()?;
    serde_json::from_str(v.get("payload")?.as_str()?).ok()
}
