//! Builds of the shared index: a session's texts the index does not hold,
//! indexed in batches under the write lock (`ensure`, `add_texts`), each
//! batch's keys claimed on a thread of their own while the one before it is
//! indexed, each batch committed to the index and then recorded in the
//! store; and a build started in the background after a load
//! (`refresh_in_background`).

use std::collections::HashMap;
use std::sync::Arc;

use rlm::ToolError;

use super::{IndexManager, index_err};
use crate::engine::CallContext;
use crate::engine::docs::DocRow;
use crate::engine::integrity::{check_read, open_texts};
use crate::search::bm25::{IndexText, PassageIndex};
use crate::search::units::{self, Syntax};
use crate::store::lock::SessionLock;

/// Texts added to the index in one commit, at most (characters): a crash
/// loses at most one batch. One writer serves every batch of a build;
/// smaller batches mean more, smaller segments for the compaction to merge
/// (progress is reported text by text).
pub(crate) const BATCH_CHARS: u64 = 256 << 20;
/// Progress is reported at most once per this many characters indexed.
const PROGRESS_CHARS: u64 = 8 << 20;

/// A text a build adds: the first document of the session that holds it,
/// and the syntax of the name it was loaded under, which decides where its
/// passages are cut (a Markdown file's at its headings).
struct ToIndex {
    doc: DocRow,
    syntax: Option<Syntax>,
}

/// The texts of a build cut into batches of at most `max_chars` (a text
/// longer than that is a batch alone), in order.
fn batches_of(texts: &[ToIndex], max_chars: u64) -> Vec<&[ToIndex]> {
    let mut batches = Vec::new();
    let mut rest = texts;
    while !rest.is_empty() {
        let mut n = 0;
        let mut chars = 0;
        while n < rest.len() && (n == 0 || chars + rest[n].doc.length_chars <= max_chars) {
            chars += rest[n].doc.length_chars;
            n += 1;
        }
        let (batch, after) = rest.split_at(n);
        batches.push(batch);
        rest = after;
    }
    batches
}

impl IndexManager {
    /// Indexes the session's texts the index does not hold. True when this
    /// call added any. Whenever it finds (or leaves) every text of the
    /// session's generation in the index, it records so (`found_current`),
    /// and a call that waited for the write lock trusts what the build
    /// before it recorded instead of reading the session's documents again.
    pub(crate) fn ensure(&self, session_id: &str, ctx: &CallContext) -> Result<bool, ToolError> {
        // A background build of the session's texts under way in this
        // process holds the write lock, or soon will: no count could spare
        // the wait for it, and one beside it takes CPU from it.
        self.ensure_with(session_id, ctx, !self.being_built(session_id))
    }

    /// [`IndexManager::ensure`], counting what is missing before it waits
    /// for the write lock when `count_first`.
    fn ensure_with(
        &self,
        session_id: &str,
        ctx: &CallContext,
        count_first: bool,
    ) -> Result<bool, ToolError> {
        let (_, id) = self.index(ctx)?;
        let Some(generation) = self.generation_of(session_id)? else {
            return Ok(false);
        };
        if self.is_found_current(session_id, generation, &id) {
            return Ok(false);
        }
        if count_first && self.store().unindexed_documents(session_id, &id)? == 0 {
            self.found_current()
                .insert(session_id.to_owned(), (generation, id));
            return Ok(false);
        }
        let lock = self.write_lock(ctx)?;
        let (index, id) = self.current_locked(&lock)?;
        // Read before the documents: a load committed after this only adds
        // documents, which the list below then holds too.
        let Some(generation) = self.generation_of(session_id)? else {
            return Ok(false);
        };
        if self.is_found_current(session_id, generation, &id) {
            // The build that held the lock before this call indexed every
            // text of this generation: reading the session's documents
            // again (57 000 on the scale corpus) kept the search that
            // waited for it 0.2 s past the build's end.
            return Ok(false);
        }
        // Read again under the lock: another process may have added them.
        let missing: Vec<ToIndex> = self
            .store()
            .unindexed_texts(session_id, &id)?
            .into_iter()
            .map(|(doc, source)| ToIndex {
                syntax: units::syntax_of(&source),
                doc,
            })
            .collect();
        if !missing.is_empty() {
            self.add_texts(&lock, &index, &id, &missing, ctx)?;
        }
        self.found_current()
            .insert(session_id.to_owned(), (generation, id));
        drop(lock);
        if missing.is_empty() {
            return Ok(false);
        }
        self.compact_in_background();
        Ok(true)
    }

    /// The session's generation (its count of committed loads), or None
    /// when it is gone.
    fn generation_of(&self, session_id: &str) -> Result<Option<u64>, ToolError> {
        Ok(self.store().session(session_id)?.map(|s| s.generation))
    }

    /// Whether a background build of the session's texts is asked for or
    /// under way in this process.
    pub(super) fn being_built(&self, session_id: &str) -> bool {
        self.building().get(session_id).is_some_and(|&n| n > 0)
    }

    fn building(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.shared
            .building
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Adds these texts (one document each names them) in batches, each
    /// committed to the index and then recorded in the store.
    fn add_texts(
        &self,
        _lock: &SessionLock,
        index: &PassageIndex,
        index_id: &str,
        texts: &[ToIndex],
        ctx: &CallContext,
    ) -> Result<(), ToolError> {
        let store = self.store();
        let stamp = self.stamp(index_id);
        let total: u64 = texts.iter().map(|t| t.doc.length_chars).sum();
        let mut done = 0u64;
        let mut moved = 0u64;
        ctx.progress(0, Some(total), "indexing texts");
        // One writer for every batch. It merges nothing (the compaction
        // does, after the build): its end waits for no merge.
        let mut build = index.build(&stamp).map_err(index_err)?;
        let batches = batches_of(texts, self.shared.batch_chars);
        // Each batch's keys are claimed (one SQL transaction on one thread:
        // about a second for the 42 343 texts of a batch of the scale
        // corpus) while the batch before it is indexed. A key claimed and not
        // committed is what an interrupted addition leaves anyway: the next
        // build replaces whatever it holds.
        let claim = |batch: &[ToIndex]| {
            let hashes: Vec<&str> = batch.iter().map(|t| t.doc.hash.as_str()).collect();
            let started = std::time::Instant::now();
            store
                .claim_index_keys(index_id, &hashes)
                .map(|claims| (claims, started.elapsed()))
        };
        std::thread::scope(|scope| -> Result<(), ToolError> {
            // A rendezvous: the claimer is at most one batch ahead, and stops
            // when this loop ends early (an error, a cancel).
            let (claimed_tx, claimed_rx) = std::sync::mpsc::sync_channel(0);
            let (batches, claim) = (&batches, &claim);
            scope.spawn(move || {
                for &batch in batches {
                    if claimed_tx.send(claim(batch)).is_err() {
                        break;
                    }
                }
            });
            for &batch in batches {
                ctx.check_cancel()?;
                let bytes: u64 = batch.iter().map(|t| t.doc.length_chars).sum();
                let started = std::time::Instant::now();
                // Opened while the batch's keys are claimed (the first batch's
                // claim has nothing else to overlap), in parallel: the first
                // open of a text hashes it.
                let all: Vec<&DocRow> = batch.iter().map(|t| &t.doc).collect();
                let mut texts = open_texts(store, &all)?;
                let opened_in = started.elapsed();
                let waiting = std::time::Instant::now();
                let (claims, claimed) = claimed_rx.recv().map_err(|_| {
                    ToolError::internal("the index build's claims stopped; retry the search")
                })??;
                let waited = waiting.elapsed();
                // What another process indexed meanwhile is not claimed (rare).
                let by_hash: HashMap<&str, (&ToIndex, usize)> = batch
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.doc.hash.as_str(), (t, i)))
                    .collect();
                let claimed_texts: Vec<&ToIndex> =
                    claims.iter().map(|c| by_hash[c.hash.as_str()].0).collect();
                let opened: Vec<Arc<crate::text::Text>> = claims
                    .iter()
                    .map(|c| texts[by_hash[c.hash.as_str()].1].clone())
                    .collect();
                texts.clear();
                let docs: Vec<&DocRow> = claimed_texts.iter().map(|t| &t.doc).collect();
                let replace: Vec<u64> =
                    claims.iter().filter(|c| c.replace).map(|c| c.key).collect();
                // Nothing read from a pack cut short meanwhile (zeros) is
                // committed: a fault while reading marks the text's pack damaged.
                let mut damaged = None;
                let mut told = done;
                let mut added = done;
                // Each text is read once here: the pages of those whose
                // passages are made go (RssFile stays small while the
                // writer's heap grows).
                let mut releaser = crate::text::Releaser::default();
                let mut previous: Option<&Arc<crate::text::Text>> = None;
                let added_at = std::time::Instant::now();
                let committed = build
                    .add_texts_if(
                        claims
                            .iter()
                            .zip(&claimed_texts)
                            .zip(&opened)
                            .map(|((c, d), t)| {
                                if let Some(p) = previous.replace(t) {
                                    releaser.done(p);
                                }
                                added += t.len_chars();
                                if added - told >= PROGRESS_CHARS {
                                    told = added;
                                    ctx.progress(added, Some(total), "indexing texts");
                                }
                                IndexText {
                                    key: c.key,
                                    text: t.as_str(),
                                    syntax: d.syntax,
                                }
                            }),
                        &replace,
                        || {
                            damaged = docs
                                .iter()
                                .zip(&opened)
                                .find_map(|(d, t)| check_read(store, d, t).err());
                            damaged.is_none()
                        },
                    )
                    .map_err(index_err)?;
                if let Some(p) = previous {
                    releaser.done(p);
                }
                drop(releaser);
                match (committed, damaged) {
                    (true, _) => {}
                    (false, Some(e)) => return Err(e),
                    (false, None) => {
                        return Err(ToolError::internal(
                            "the search index was not committed; retry the search",
                        ));
                    }
                }
                let keys: Vec<u64> = claims.iter().map(|c| c.key).collect();
                let added_in = added_at.elapsed();
                store.commit_index_keys(&keys)?;
                self.hint(index_id, claims.iter().map(|c| (c.hash.as_str(), c.key)));
                tracing::info!(
                    index_id,
                    texts = keys.len(),
                    redone = replace.len(),
                    chars = docs.iter().map(|d| d.length_chars).sum::<u64>(),
                    claim_ms = claimed.as_millis() as u64,
                    claim_wait_ms = waited.as_millis() as u64,
                    open_ms = opened_in.as_millis() as u64,
                    index_ms = added_in.as_millis() as u64,
                    total_ms = started.elapsed().as_millis() as u64,
                    "texts indexed"
                );
                done += bytes;
                moved += docs.iter().map(|d| d.length_chars).sum::<u64>();
                ctx.progress(done, Some(total), "indexing texts");
            }
            Ok(())
        })?;
        let finished_at = std::time::Instant::now();
        build.finish().map_err(index_err)?;
        tracing::info!(
            index_id,
            finish_ms = finished_at.elapsed().as_millis() as u64,
            "index build finished"
        );
        // The writer's buffers and the texts' analysis are freed by now.
        crate::alloc::after_large_work(moved);
        Ok(())
    }

    /// Indexes the session's new texts on another thread, so that a search
    /// right after a load finds them ready.
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
            return; // one is pending; it reads the documents once it holds the lock
        }
        // Counted out when the thread ends, however it ends (a panic too:
        // a count left behind would send every search of the session to
        // the write lock), or when it never begins.
        let counted = Building::new(self, session_id);
        let manager = self.clone();
        let sid = session_id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("rlm-index".into())
            .spawn(move || {
                let _counted = counted;
                manager
                    .shared
                    .background
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&sid);
                if let Err(e) = manager.ensure_with(&sid, &CallContext::default(), true) {
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

/// A background build of a session counted in `building` while it lives.
struct Building {
    manager: IndexManager,
    session_id: String,
}

impl Building {
    fn new(manager: &IndexManager, session_id: &str) -> Building {
        *manager.building().entry(session_id.to_owned()).or_default() += 1;
        Building {
            manager: manager.clone(),
            session_id: session_id.to_owned(),
        }
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        let mut building = self.manager.building();
        if let Some(n) = building.get_mut(&self.session_id) {
            *n -= 1;
            if *n == 0 {
                building.remove(&self.session_id);
            }
        }
    }
}
