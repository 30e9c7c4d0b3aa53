//! The index manager: one BM25 passage index for the whole store, under
//! `search/index/`, holding each stored text's passages once, under the key
//! the store gave the text (`indexed_texts`). A session searches a view of
//! it: the passages of its own texts, in one snapshot, kept in memory per
//! session and generation. A load indexes only the texts the index does not
//! hold yet; a second session over the same files indexes nothing.
//!
//! One process at a time writes the index (`search/write.lock`); a writer
//! reads again, under the lock, what the index holds before adding. An index
//! that cannot be opened, or fails a search as damaged, is made afresh with
//! a new id: the store's records of the old one then vouch for nothing, and
//! each session's texts are indexed again at its next search.
//!
//! The manager owns what it needs (the store, the analysis, the statistics,
//! whether to build after a load), so it never reaches back into the engine;
//! it is cheap to clone, and a background build holds a clone. Its builds
//! are `build.rs`, its merges `compact.rs`, what it keeps in memory
//! `memory.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rlm::ToolError;
use rlm::config::WordForms;

use super::budget::session_not_found;
use super::docs::DocRow;
use super::{CallContext, EngineConfig, SessionRow};
use crate::search::analyzer::AnalyzerOptions;
use crate::search::bm25::{
    IndexError, IndexStamp, IndexText, KeySet, PassageIndex, Statistics, signature,
};
use crate::store::Store;
use crate::store::lock::SessionLock;

mod build;
mod compact;
mod memory;

pub(crate) use build::BATCH_CHARS;
pub use compact::{
    CROWDED as COMPACTION_CROWDED, Compacted, QUIET as COMPACTION_QUIET,
    STEP_BYTES as COMPACTION_STEP_BYTES,
};
pub(crate) use memory::SessionIndex;
use memory::{
    CACHE_BYTES, Cache, DocMark, Hint, KEEP_IDLE_BYTES, KEPT_BYTES_A_DOCUMENT, KeyHints, Keyed,
    KnownDocs, MAX_KEY_HINTS, hint_of, keep_known,
};

/// The index's write lock, held by a writer of this process (counted while
/// it lives: `compact.rs`).
struct WriteLock {
    lock: SessionLock,
    _writer: compact::Writer,
}

impl std::ops::Deref for WriteLock {
    type Target = SessionLock;

    fn deref(&self) -> &SessionLock {
        &self.lock
    }
}

/// Keeps the shared index open and the sessions' views of it. Cheap to
/// clone: clones share the index and the views.
#[derive(Clone)]
pub struct IndexManager {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    /// Text analysis of the index (`EngineConfig::analyzer`).
    analyzer: AnalyzerOptions,
    /// Which passages BM25's statistics count (`EngineConfig::bm25_statistics`).
    statistics: Statistics,
    /// Where query words match their other forms (`EngineConfig::word_forms`).
    word_forms: WordForms,
    /// Build after each load (`EngineConfig::background_index`).
    background_index: bool,
    /// Characters a build commits at once (`EngineConfig::index_batch_chars`).
    batch_chars: u64,
    capacity: usize,
    index: Mutex<Option<Arc<PassageIndex>>>,
    cache: Mutex<Cache>,
    /// Sessions whose texts the index is known to hold: the generation and
    /// the index id it was found at (so `is_current` asks the store once).
    current: Mutex<HashMap<String, (u64, String)>>,
    /// Sessions' documents, so that a first search after a load need not
    /// read them back (at most `capacity` sessions).
    docs: Mutex<HashMap<String, KnownDocs>>,
    /// The session whose view a search took last (kept when idle:
    /// `forget_all`; the views may be gone by then, a compaction drops
    /// those of the snapshot before it).
    last: Mutex<Option<String>>,
    /// When each session was last searched or loaded into, for the sessions
    /// whose view or documents are kept (`release_quiet`).
    used: Mutex<HashMap<String, Instant>>,
    hints: Mutex<KeyHints>,
    /// Sessions whose background build is asked for and not begun.
    background: Mutex<HashSet<String>>,
    /// Sessions with background builds asked for or under way, and how
    /// many (a load during a build asks for another): a search of one waits
    /// for the write lock they hold before it reads the session's documents
    /// (`ensure`).
    building: Mutex<HashMap<String, usize>>,
    /// Merge the index's small segments after builds and gcs
    /// (`EngineConfig::compact_index`).
    compact: bool,
    compaction: compact::Compaction,
}

impl std::fmt::Debug for IndexManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexManager")
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

impl IndexManager {
    /// A manager of `store`'s index, with the engine's index settings (views
    /// kept, analysis, statistics, background builds).
    pub fn new(store: Arc<Store>, config: &EngineConfig) -> IndexManager {
        IndexManager {
            shared: Arc::new(Shared {
                store,
                analyzer: config.analyzer,
                statistics: config.bm25_statistics,
                word_forms: config.word_forms,
                background_index: config.background_index,
                batch_chars: config.index_batch_chars.max(1),
                capacity: config.index_cache_sessions.max(1),
                index: Mutex::new(None),
                cache: Mutex::new(Cache::default()),
                current: Mutex::default(),
                docs: Mutex::default(),
                last: Mutex::default(),
                used: Mutex::default(),
                hints: Mutex::default(),
                background: Mutex::default(),
                building: Mutex::default(),
                compact: config.compact_index,
                compaction: compact::Compaction::default(),
            }),
        }
    }

    /// How many session views are kept in memory.
    pub fn cached(&self) -> usize {
        self.lock_cache().entries.len()
    }

    /// How many sessions' documents are known without reading the store.
    pub fn known(&self) -> usize {
        self.known_docs().len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.shared.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The session's view if it is kept, of this generation, and taken in
    /// the index's current snapshot (a snapshot the reader has left pins
    /// files merges removed, so it is taken again).
    fn cached_at(&self, session_id: &str, generation: u64) -> Option<Arc<SessionIndex>> {
        let current = self.open_now().map(|i| i.reader_generation());
        let mut cache = self.lock_cache();
        cache.tick += 1;
        let tick = cache.tick;
        let (idx, used) = cache.entries.get_mut(session_id)?;
        if idx.generation != generation || Some(idx.searcher) != current {
            return None;
        }
        *used = tick;
        Some(idx.clone())
    }

    fn insert(&self, session_id: &str, idx: Arc<SessionIndex>) {
        let mut cache = self.lock_cache();
        cache.tick += 1;
        let tick = cache.tick;
        // Views of an older snapshot are never used again (`cached_at`), and
        // each holds its snapshot's segments open: they go now.
        let current = idx.searcher;
        cache.entries.retain(|_, (i, _)| i.searcher == current);
        cache.entries.insert(session_id.to_owned(), (idx, tick));
        loop {
            let weight: usize = cache.entries.values().map(|(i, _)| i.weight()).sum();
            if cache.entries.len() <= 1
                || (cache.entries.len() <= self.shared.capacity && weight <= CACHE_BYTES)
            {
                break;
            }
            let oldest = cache
                .entries
                .iter()
                .filter(|(k, _)| k.as_str() != session_id)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => cache.entries.remove(&k),
                None => break,
            };
        }
    }

    /// Drops every session's view and documents and the key hints (a
    /// daemon that has idled a while), but the documents of the session
    /// searched last and its texts' key hints, when they weigh at most
    /// [`KEEP_IDLE_BYTES`]: a client that paused (a model thinking) and
    /// searches that session again gets its view made from them, without
    /// reading its documents back (59 358 documents: 27 ms against 122 ms).
    /// Every other session's next search reads its documents from the store.
    pub(crate) fn forget_all(&self) {
        self.lock_cache().entries.clear();
        let last = self.lock_last().take();
        self.found_current().clear();
        // The documents kept below have no time of use: `release_quiet`
        // leaves them until the next idle.
        self.lock_used().clear();
        {
            let mut known = self.known_docs();
            let kept = last
                .and_then(|id| known.remove_entry(&id))
                .filter(|(_, k)| k.marks.len() * KEPT_BYTES_A_DOCUMENT <= KEEP_IDLE_BYTES);
            known.clear();
            known.extend(kept);
        }
        self.keep_hints_of_known();
    }

    /// Keeps only the key hints of the texts of the documents still known
    /// (no view is made from the others' hints), the map shrunk to them.
    fn keep_hints_of_known(&self) {
        let wanted: HashSet<Hint> = self
            .known_docs()
            .values()
            .flat_map(|k| k.marks.iter().filter_map(|m| m.hint))
            .collect();
        let mut hints = self.hints();
        hints.keys.retain(|h, _| wanted.contains(h));
        hints.keys.shrink_to_fit();
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.shared.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops a session's view (the index keeps its texts).
    pub(crate) fn forget(&self, session_id: &str) {
        self.lock_cache().entries.remove(session_id);
        self.found_current().remove(session_id);
        self.known_docs().remove(session_id);
        self.lock_used().remove(session_id);
    }

    fn lock_used(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.shared.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that a session was searched or loaded into now.
    fn touch(&self, session_id: &str) {
        let mut used = self.lock_used();
        match used.get_mut(session_id) {
            Some(at) => *at = Instant::now(),
            None => {
                used.insert(session_id.to_owned(), Instant::now());
            }
        }
    }

    /// Drops the views and documents of the sessions neither searched nor
    /// loaded into for `quiet` (but the session searched last), and the key
    /// hints of texts no session still kept holds: while other clients keep
    /// the daemon busy, what a session left is not kept until the caches'
    /// bounds (`forget_all` does it for all at once when no call comes).
    /// Their next search reads their documents from the store. Returns how
    /// many sessions were dropped.
    pub(crate) fn release_quiet(&self, quiet: Duration) -> usize {
        let last = self.lock_last().clone();
        let gone: Vec<String> = self
            .lock_used()
            .extract_if(|id, at| at.elapsed() >= quiet && last.as_deref() != Some(id.as_str()))
            .map(|(id, _)| id)
            .collect();
        if gone.is_empty() {
            return 0;
        }
        for id in &gone {
            self.forget(id);
        }
        self.keep_hints_of_known();
        gone.len()
    }

    fn known_docs(&self) -> std::sync::MutexGuard<'_, HashMap<String, KnownDocs>> {
        self.shared.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hints(&self) -> std::sync::MutexGuard<'_, KeyHints> {
        self.shared.hints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records keys of texts in index `index_id`.
    fn hint<'a>(&self, index_id: &str, keys: impl IntoIterator<Item = (&'a str, u64)>) {
        let mut hints = self.hints();
        if hints.index_id != index_id || hints.keys.len() > MAX_KEY_HINTS {
            hints.index_id = index_id.to_owned();
            hints.keys.clear();
        }
        for (hash, key) in keys {
            if let Some(h) = hint_of(hash) {
                hints.keys.insert(h, key);
            }
        }
    }

    /// A load committed these documents (from `first_seq` on), leaving the
    /// session at `generation`: they join what this process knows of the
    /// session's documents, when it knows all those before them. `stored`
    /// are the texts the load stored anew: whatever key such a text had
    /// went with its old blob row (gc), so no hint of it is kept.
    pub(crate) fn documents_added<'a>(
        &self,
        session_id: &str,
        generation: u64,
        first_seq: u64,
        rows: &[DocRow],
        stored: impl IntoIterator<Item = &'a str>,
    ) {
        {
            let mut hints = self.hints();
            for hash in stored.into_iter().filter_map(hint_of) {
                hints.keys.remove(&hash);
            }
        }
        self.touch(session_id);
        let mut known = self.known_docs();
        let before = known.remove(session_id);
        let new = rows.iter().map(DocMark::of);
        let marks = match before {
            Some(k) if k.marks.len() as u64 == first_seq => {
                let mut marks = Arc::unwrap_or_clone(k.marks);
                marks.extend(new);
                marks
            }
            _ if first_seq == 0 => new.collect(),
            _ => return,
        };
        keep_known(
            &mut known,
            session_id,
            generation,
            Arc::new(marks),
            self.shared.capacity,
        );
    }

    /// The session's documents at `generation` with their texts' keys in
    /// index `index_id`, when this process knows them all (no store read).
    fn hinted_documents(&self, session_id: &str, generation: u64, index_id: &str) -> Option<Keyed> {
        let marks = self
            .known_docs()
            .get(session_id)
            .filter(|k| k.generation == generation)
            .map(|k| k.marks.clone())?;
        let hints = self.hints();
        if hints.index_id != index_id {
            return None;
        }
        let keys: Vec<Option<u64>> = marks
            .iter()
            .map(|m| m.hint.and_then(|h| hints.keys.get(&h).copied()))
            .collect();
        keys.iter().all(Option::is_some).then_some(Keyed {
            marks,
            keys,
            hinted: true,
        })
    }

    /// The session's documents at `generation` with their texts' keys in
    /// index `index_id`, read from the store.
    fn stored_documents(
        &self,
        session_id: &str,
        generation: u64,
        document_count: u64,
        index_id: &str,
    ) -> Result<Keyed, ToolError> {
        let rows = self.store().documents_with_keys(session_id, index_id)?;
        // Load positions are 0, 1, 2...: a view keeps its keys by position.
        if let Some((at, (d, _))) = rows
            .iter()
            .enumerate()
            .find(|(i, (d, _))| d.seq != *i as u64)
        {
            return Err(ToolError::internal(format!(
                "document {} of session {session_id} is numbered {} in load order where {at} was expected; the store is damaged",
                d.doc_id, d.seq
            )));
        }
        self.hint(
            index_id,
            rows.iter()
                .filter_map(|(d, k)| k.map(|k| (d.hash.as_str(), k))),
        );
        let marks: Arc<Vec<DocMark>> = Arc::new(rows.iter().map(|(d, _)| DocMark::of(d)).collect());
        let keys = rows.into_iter().map(|(_, k)| k).collect();
        // Only a read that matches the generation (no load committed in
        // between) is kept for later searches.
        if marks.len() as u64 == document_count {
            keep_known(
                &mut self.known_docs(),
                session_id,
                generation,
                marks.clone(),
                self.shared.capacity,
            );
        }
        Ok(Keyed {
            marks,
            keys,
            hinted: false,
        })
    }

    /// Whether this process found every text of the session's `generation`
    /// in index `index_id` (documents only come, and the index never loses
    /// a text a session holds: a later generation may lack some).
    fn is_found_current(&self, session_id: &str, generation: u64, index_id: &str) -> bool {
        self.found_current()
            .get(session_id)
            .is_some_and(|(g, id)| *g == generation && id == index_id)
    }

    fn found_current(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, String)>> {
        self.shared
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The index this process has open, if any.
    fn open_now(&self) -> Option<Arc<PassageIndex>> {
        self.shared
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_open(&self, index: Option<Arc<PassageIndex>>) {
        *self.shared.index.lock().unwrap_or_else(|p| p.into_inner()) = index;
    }

    /// The id of an index with this build's analysis: its stamp.
    fn id_of(&self, index: &PassageIndex) -> Option<String> {
        index
            .stamp()
            .filter(|s| s.analyzer == signature(self.shared.analyzer))
            .map(|s| s.index_id)
    }

    /// Whether every text of the session is in the index, as the store and
    /// the index's last commit on disk say (no index opened).
    pub(crate) fn is_current(&self, session_id: &str, generation: u64) -> bool {
        if self.cached_at(session_id, generation).is_some() {
            return true;
        }
        let id = match self.open_now().and_then(|i| self.id_of(&i)) {
            Some(id) => id,
            None => match read_stamp(&self.store().search_index_dir()) {
                Some(s) if s.analyzer == signature(self.shared.analyzer) => s.index_id,
                _ => return false,
            },
        };
        if self.is_found_current(session_id, generation, &id) {
            return true;
        }
        // Documents only come: all those of now being held, those of
        // `generation` are.
        let held = self
            .store()
            .unindexed_documents(session_id, &id)
            .is_ok_and(|n| n == 0);
        if held {
            self.found_current()
                .insert(session_id.to_owned(), (generation, id));
        }
        held
    }

    /// The index, opened (and checked) once per process; made afresh when
    /// there is none or it cannot be used.
    fn index(&self, ctx: &CallContext) -> Result<(Arc<PassageIndex>, String), ToolError> {
        if let Some(index) = self.open_now()
            && let Some(id) = self.id_of(&index)
        {
            return Ok((index, id));
        }
        match PassageIndex::open(&self.store().search_index_dir()) {
            Ok(Some(index)) => {
                if let Some(id) = self.id_of(&index) {
                    let index = Arc::new(index);
                    self.set_open(Some(index.clone()));
                    return Ok((index, id));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "search index unusable; making it afresh"),
        }
        let lock = self.write_lock(ctx)?;
        self.fresh_locked(&lock, None)
    }

    /// Under the write lock: the index as the last commit on disk has it,
    /// made afresh if it is missing, of another analysis, or `damaged` (the
    /// id of the index a search found damaged: another process may have
    /// made it afresh already).
    fn fresh_locked(
        &self,
        _lock: &SessionLock,
        damaged: Option<&str>,
    ) -> Result<(Arc<PassageIndex>, String), ToolError> {
        let dir = self.store().search_index_dir();
        let reopened = match PassageIndex::open(&dir) {
            Ok(Some(index)) => self
                .id_of(&index)
                .filter(|id| Some(id.as_str()) != damaged)
                .map(|id| (index, id)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "search index unusable; making it afresh");
                None
            }
        };
        let (index, id) = match reopened {
            Some(found) => found,
            None => {
                let index =
                    PassageIndex::create_with(&dir, self.shared.analyzer).map_err(index_err)?;
                let id = uuid::Uuid::new_v4().simple().to_string();
                index
                    .add_documents(std::iter::empty::<IndexText>(), &self.stamp(&id))
                    .map_err(index_err)?;
                // What the store recorded of earlier indexes vouches for nothing now.
                self.store().forget_index_rows(&id, &[])?;
                tracing::info!(index_id = %id, "made the search index afresh");
                (index, id)
            }
        };
        let index = Arc::new(index);
        self.set_open(Some(index.clone()));
        self.lock_cache().entries.clear();
        Ok((index, id))
    }

    fn stamp(&self, index_id: &str) -> IndexStamp {
        IndexStamp {
            index_id: index_id.to_owned(),
            analyzer: signature(self.shared.analyzer),
        }
    }

    /// The index's write lock, reporting the wait as progress. A compaction
    /// waits while this process has a writer waiting or holding it.
    fn write_lock(&self, ctx: &CallContext) -> Result<WriteLock, ToolError> {
        let writer = self.shared.compaction.writer();
        let lock = self.store().lock_search_index(&mut |waited| {
            ctx.progress(
                waited.as_secs(),
                None,
                "waiting for another process's search index build",
            );
        })?;
        Ok(WriteLock {
            lock,
            _writer: writer,
        })
    }

    /// Under the write lock: the index as on disk now (another process may
    /// have committed, or made it afresh).
    fn current_locked(&self, lock: &SessionLock) -> Result<(Arc<PassageIndex>, String), ToolError> {
        if let Some(index) = self.open_now()
            && index.reload().is_ok()
            && let Some(id) = self.id_of(&index)
        {
            return Ok((index, id));
        }
        self.fresh_locked(lock, None)
    }

    /// The session's view of the index at its current generation, indexing
    /// its texts first when needed. Returns whether this call indexed any.
    pub(crate) fn get(
        &self,
        session: &SessionRow,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        {
            let mut last = self.lock_last();
            if last.as_deref() != Some(session.id.as_str()) {
                *last = Some(session.id.clone());
            }
        }
        self.touch(&session.id);
        if let Some(idx) = self.cached_at(&session.id, session.generation) {
            return Ok((idx, false));
        }
        let mut built = false;
        // Texts the index does not hold are indexed first; a text missing
        // again afterwards means the index was made afresh meanwhile (by
        // another process): index again, a few times at most.
        for _ in 0..4 {
            let t0 = std::time::Instant::now();
            let (index, id) = self.index(ctx)?;
            let current = self
                .store()
                .session(&session.id)?
                .ok_or_else(|| session_not_found(&session.id))?;
            let mut hinted = self.hinted_documents(&session.id, current.generation, &id);
            if hinted.is_none() && self.being_built(&session.id) {
                // The build a load began: wait for it, and take the keys it
                // hints. Read beside it, the session's documents (and then
                // a count of those not indexed) took CPU from it: 0.5 s of
                // its 21 on the 850 MB corpus.
                built |= self.ensure(&session.id, ctx)?;
                hinted = self.hinted_documents(&session.id, current.generation, &id);
            }
            let Keyed {
                marks,
                keys,
                hinted,
            } = match hinted {
                Some(keyed) => keyed,
                None => self.stored_documents(
                    &session.id,
                    current.generation,
                    current.document_count,
                    &id,
                )?,
            };
            let t_rows = t0.elapsed();
            let Some(keys) = keys.into_iter().collect::<Option<Vec<u64>>>() else {
                built |= self.ensure(&session.id, ctx)?;
                continue;
            };
            // After the keys are read: every text the store says the index
            // holds is then in the snapshot (the index commits first).
            index.reload().map_err(index_err)?;
            if self.id_of(&index).as_deref() != Some(id.as_str()) {
                self.set_open(None);
                continue;
            }
            let wanted: KeySet = keys.iter().copied().collect();
            let mut holders: Vec<(u64, u64)> = keys
                .iter()
                .enumerate()
                .map(|(seq, &k)| (k, seq as u64))
                .collect();
            holders.sort_unstable();
            let searcher = index.reader_generation();
            let t_map = t0.elapsed();
            let mut view = index
                .view(Some(&wanted), self.shared.statistics)
                .map_err(index_err)?;
            view.word_forms = match self.shared.word_forms {
                WordForms::Never => false,
                WordForms::Always => true,
                WordForms::Prose => mostly_prose(&current),
            };
            // A text with characters has passages: a key without any is a
            // stale hint (gc took the text, and a load brought it back
            // under another key), or, from the store, an index that lost
            // what it committed.
            let unseen: Vec<&DocMark> = marks
                .iter()
                .zip(&keys)
                .filter(|(m, k)| m.has_chars && !view.holds(**k))
                .map(|(m, _)| m)
                .collect();
            if !unseen.is_empty() {
                let mut hints = self.hints();
                for h in unseen.iter().filter_map(|m| m.hint) {
                    hints.keys.remove(&h);
                }
                drop(hints);
                self.known_docs().remove(&session.id);
                if !hinted {
                    tracing::warn!(session_id = %session.id, texts = unseen.len(), "the search index lacks texts the store says it holds; making it afresh");
                    let lock = self.write_lock(ctx)?;
                    self.fresh_locked(&lock, Some(&id))?;
                }
                continue;
            }
            tracing::debug!(
                session_id = %session.id,
                documents = keys.len(),
                passages = view.passages(),
                hinted,
                rows_us = t_rows.as_micros() as u64,
                map_us = t_map.as_micros() as u64,
                view_us = t0.elapsed().as_micros() as u64,
                "session view built"
            );
            let idx = Arc::new(SessionIndex {
                generation: current.generation,
                view,
                keys,
                holders,
                searcher,
            });
            self.insert(&session.id, idx.clone());
            self.found_current()
                .insert(session.id.clone(), (current.generation, id));
            return Ok((idx, built));
        }
        Err(ToolError::internal(
            "the search index was made afresh again and again while this search ran; retry it",
        ))
    }

    /// Makes the index afresh after a search found it damaged (unless
    /// another process did already), then the session's view again.
    pub(crate) fn rebuild_damaged(
        &self,
        session: &SessionRow,
        ctx: &CallContext,
    ) -> Result<(Arc<SessionIndex>, bool), ToolError> {
        let damaged = self.open_now().and_then(|i| self.id_of(&i));
        {
            let lock = self.write_lock(ctx)?;
            self.fresh_locked(&lock, damaged.as_deref())?;
        }
        self.get(session, ctx)
    }

    /// Removes from the index the passages of texts the store no longer
    /// has (gc deleted their rows) and of additions that never committed.
    /// Returns how many texts' passages went.
    pub(crate) fn collect_garbage(&self) -> Result<u64, ToolError> {
        let ctx = CallContext::default();
        if read_stamp(&self.store().search_index_dir()).is_none() && self.open_now().is_none() {
            return Ok(0); // no index was ever made
        }
        let lock = self.write_lock(&ctx)?;
        let (index, id) = self.current_locked(&lock)?;
        let recorded = self.store().index_keys(&id)?;
        let held = index.keys().map_err(index_err)?;
        // Under the lock no addition is under way: a row not committed is
        // one that never finished.
        let committed: HashSet<u64> = recorded.iter().filter(|r| r.1).map(|r| r.0).collect();
        let unfinished: Vec<u64> = recorded.iter().filter(|r| !r.1).map(|r| r.0).collect();
        let gone: Vec<u64> = held
            .iter()
            .copied()
            .filter(|k| !committed.contains(k))
            .collect();
        if !gone.is_empty() {
            index
                .delete_texts(&gone, &self.stamp(&id))
                .map_err(index_err)?;
        }
        self.store().forget_index_rows(&id, &unfinished)?;
        drop(lock);
        self.lock_cache().entries.clear();
        if !gone.is_empty() {
            self.compact_in_background();
        }
        Ok(gone.len() as u64)
    }
}

/// A search index that could not be opened is made afresh without a word;
/// this is a build that failed, which a retry repeats until its cause is gone.
fn index_err(e: IndexError) -> ToolError {
    ToolError::internal(format!(
        "the search index could not be built: {e}; a retry fails the same way until the cause is fixed (a full or read-only disk under the data directory); `method: \"literal\"` and `\"regex\"` search without it"
    ))
}

/// Whether more than half of a session's characters are in documents of
/// prose (`store::documents::is_prose_source`): where `[search] word_forms
/// = "prose"` matches a query word's forms.
fn mostly_prose(session: &SessionRow) -> bool {
    session.prose_chars.saturating_mul(2) > session.total_chars
}

/// The stamp of the last commit in an index folder, read from tantivy's
/// `meta.json` without opening the index.
fn read_stamp(dir: &std::path::Path) -> Option<IndexStamp> {
    let meta = std::fs::read(dir.join("meta.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&meta).ok()?;
    serde_json::from_str(v.get("payload")?.as_str()?).ok()
}
