//! `rlm.docs.load`: the tool. Sources are expanded against the client's
//! working directory and the allowed roots (`sources.rs`), read, checked and
//! hashed in parallel on the engine's load threads (`read.rs`), the texts the
//! store lacks appended to one pack, and the load committed once, durably.

mod read;
mod sources;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use rlm::tools::{DocsLoadArgs, DocsLoadResult, LoadedDoc};
use rlm::{ErrorCode, ToolError};

use super::{CallContext, Engine, ResponseBudget, SessionRow, now};
use crate::store::PackWriter;
use crate::store::documents::{BlobRemovals, DocRow, FileRead, LoadCommit, NewDocument};
use crate::store::files::{FileIdentity, Recorded};
use crate::text::TextShape;
use read::{Prepared, shown_path};
use sources::Item;

/// Bytes read into memory at once during a load; larger loads go in batches
/// (a file larger than this is a batch alone). The heap a load takes is
/// about this much, whatever the size of the load (`BENCHMARKS.md`).
const LOAD_BATCH_BYTES: u64 = 32 << 20;
/// Recorded file identities looked up by one load thread at least: fewer
/// are not worth a thread's start.
const MIN_LOOKUPS_PER_THREAD: usize = 256;
/// Error lines listed one by one before the rest are summarized.
const MAX_ERROR_LINES: usize = 50;

/// What the commit needs of a text read (its bytes already stored).
struct Stored {
    source: String,
    hash: String,
    length_bytes: u64,
    shape: TextShape,
    hint: Option<u64>,
    /// Where this load's pack holds the text; None when the store had it.
    offset: Option<u64>,
    /// The file's identity as this load read it (None: inline, or reused).
    file: Option<FileRead>,
}

/// An item of a batch: to read, or a file found unchanged, its stored text
/// described without a read.
enum Slot {
    Read(Item),
    Unchanged(Prepared),
}

/// Why a file was not loaded, grouped for the summary of long error lists.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SkipKind {
    NotUtf8,
    TooLarge,
    Unreadable,
    Refused,
    Other,
}

/// A source or file not loaded, and the error line that says why.
struct Skip {
    kind: SkipKind,
    line: String,
}

impl Skip {
    fn new(kind: SkipKind, line: String) -> Skip {
        Skip { kind, line }
    }
}

/// A document's token estimate: the client's hint, else a char count / 4.
fn tokens_est(chars: u64, hint: Option<u64>) -> u64 {
    hint.unwrap_or(chars.div_ceil(4))
}

/// An I/O error as an error line words it.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

impl Engine {
    pub(crate) fn docs_load(
        &self,
        session: &SessionRow,
        args: DocsLoadArgs,
        ctx: &CallContext,
    ) -> Result<DocsLoadResult, ToolError> {
        session.require_active("rlm.docs.load")?;
        let started = std::time::Instant::now();
        // The sources are expanded side by side on the load threads (a walk
        // of a large tree is a quarter of a re-load of unchanged files);
        // their items and error lines keep the sources' order.
        let expanded: Vec<(Vec<Item>, Vec<Skip>)> = self.pool().install(|| {
            args.sources
                .into_par_iter()
                .enumerate()
                .map(|(i, source)| {
                    let (mut items, mut skips) = (Vec::new(), Vec::new());
                    match source.parsed {
                        Ok(source) => self.expand_source(i, source, ctx, &mut items, &mut skips),
                        // That source's error, not the call's: the others still load.
                        Err(reason) => skips.push(Skip::new(
                            SkipKind::Other,
                            format!(
                                "sources[{i}]: not a source: {reason}; a source is {{\"type\": \"inline\" | \"file\" | \"glob\" | \"directory\", ...}} with the keys the tool's inputSchema lists"
                            ),
                        )),
                    }
                    (items, skips)
                })
                .collect()
        });
        let mut skips: Vec<Skip> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        for (source_items, source_skips) in expanded {
            items.extend(source_items);
            skips.extend(source_skips);
        }
        let expanded_in = started.elapsed();
        // Held until the commit has ended: a gc meanwhile keeps what this
        // load claims and the pack it writes (`store::lock::LoadsLock`).
        let loads = self.inner.store.lock_for_load()?;
        // Read before any stored text is looked up: if the store removes
        // none before the commit, every text this load finds stored is
        // still there then (`Store::commit_load`).
        let removals = self.inner.store.blob_removals()?;
        let mut pack = self.inner.store.new_pack().map_err(|e| {
            ToolError::internal(format!("starting a pack under the data directory: {e}"))
        })?;
        let stored = match self.read_and_pack(items, &mut pack, &mut skips, ctx) {
            Ok(stored) => stored,
            Err(e) => {
                pack.abandon();
                return Err(e);
            }
        };
        let read_in = started.elapsed();
        // One durable point for the whole load, before the commit refers to it.
        let finished = pack.finish_identified().map_err(|e| {
            ToolError::internal(format!(
                "syncing stored texts to disk: {e}; check free space under the data directory"
            ))
        })?;
        let synced_in = started.elapsed();
        let pack_name = finished.as_ref().map(|(name, _)| name.as_str());
        let loaded = self.commit_load(session, &stored, pack_name, removals)?;
        // Each text written was hashed from the bytes written: its first
        // open (the index build, seconds from now) need not hash it again.
        if let Some((name, Some(id))) = &finished {
            self.inner.store.vouch_written(
                name,
                *id,
                stored
                    .iter()
                    .filter_map(|s| Some((s.offset?, s.length_bytes, s.hash.as_str()))),
            );
        }
        drop(loads);
        let committed_in = started.elapsed();
        if !stored.is_empty() {
            self.inner.indexes.refresh_in_background(&session.id);
        }
        let result = self.load_result(session, loaded, skips);
        tracing::debug!(
            documents = stored.len(),
            expand_ms = expanded_in.as_millis() as u64,
            read_ms = (read_in - expanded_in).as_millis() as u64,
            sync_ms = (synced_in - read_in).as_millis() as u64,
            commit_ms = (committed_in - synced_in).as_millis() as u64,
            answer_ms = (started.elapsed() - committed_in).as_millis() as u64,
            "load done"
        );
        Ok(result)
    }

    /// Reads, checks and hashes the items on the load threads, batch by
    /// batch, and appends every text the store lacks to `pack`. A file
    /// whose recorded identity vouches that it is unchanged
    /// (`Recorded::vouches_for`) is not read: its stored text is reused.
    fn read_and_pack(
        &self,
        items: Vec<Item>,
        pack: &mut PackWriter,
        skips: &mut Vec<Skip>,
        ctx: &CallContext,
    ) -> Result<Vec<Stored>, ToolError> {
        let max_bytes = self.inner.config.max_file_size_mb.saturating_mul(1 << 20);
        let total_items = items.len() as u64;
        let done = AtomicU64::new(0);
        let read_before = self.inner.files_read.load(Ordering::Relaxed);
        let mut unchanged = 0u64;
        let mut bytes_read = 0u64;
        let mut stored: Vec<Stored> = Vec::with_capacity(items.len());
        let mut placed: HashMap<String, u64> = HashMap::new();
        let mut batch: Vec<(Item, Option<FileIdentity>)> = Vec::new();
        let mut batch_bytes = 0u64;
        // Every file's size and identity, on the load threads (one after the
        // other they were a tenth of a re-load of 59 358 unchanged files).
        // What a load records of a file it reads comes from that read's own
        // `fstat`; these vouch for unchanged files and size the batches.
        let sized: Vec<(Item, u64, Option<FileIdentity>)> = self.pool().install(|| {
            items
                .into_par_iter()
                .map(|item| {
                    let (size, identity) = match &item {
                        Item::Inline { content, .. } => (content.len() as u64, None),
                        Item::File { path, .. } => match std::fs::metadata(path) {
                            Ok(m) => (m.len(), FileIdentity::of(&m)),
                            Err(_) => (0, None),
                        },
                    };
                    (item, size, identity)
                })
                .collect()
        });
        ctx.check_cancel()?;
        let mut queue = sized.into_iter().peekable();
        while queue.peek().is_some() {
            // Fill a batch up to the byte budget.
            while let Some(&(_, size, _)) = queue.peek() {
                if !batch.is_empty() && batch_bytes + size > LOAD_BATCH_BYTES {
                    break;
                }
                batch_bytes += size;
                batch.extend(queue.next().map(|(item, _, identity)| (item, identity)));
            }
            batch_bytes = 0;
            ctx.check_cancel()?;
            let slots = self.reuse_unchanged(std::mem::take(&mut batch), max_bytes)?;
            let files_read = &self.inner.files_read;
            let results: Vec<Result<Prepared, Skip>> = self.pool().install(|| {
                slots
                    .into_par_iter()
                    .map(|slot| {
                        let r = match slot {
                            Slot::Read(item) => read::read_item(item, max_bytes, ctx, files_read),
                            Slot::Unchanged(p) => Ok(p),
                        };
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_multiple_of(64) || n == total_items {
                            ctx.progress(n, Some(total_items), "reading files");
                        }
                        r
                    })
                    .collect()
            });
            ctx.check_cancel()?;
            // Every text the load will name without writing it, reused
            // files' included, is claimed so gc leaves it alone; the commit
            // checks again that it is still there (ARCHITECTURE, gc vs loads).
            // A reused file's text claimed since `reclaim_before` is known
            // from its recorded row already, and needs no claim.
            let reclaim_before = crate::store::gc::cutoff(crate::store::gc::GC_GRACE / 2);
            let fresh_claim = |p: &Prepared| {
                p.claimed_at
                    .as_deref()
                    .is_some_and(|at| at >= reclaim_before.as_str())
            };
            let known = self.inner.store.known_blobs(
                results
                    .iter()
                    .flatten()
                    .filter(|p| !fresh_claim(p))
                    .map(|p| p.hash.as_str()),
                &now(),
                &reclaim_before,
            )?;
            let is_known: Vec<bool> = results
                .iter()
                .map(|r| matches!(r, Ok(p) if fresh_claim(p) || known.contains(p.hash.as_str())))
                .collect();
            drop(known);
            let mut fresh: Vec<Stored> = Vec::new();
            for (r, is_known) in results.into_iter().zip(is_known) {
                let p = match r {
                    Ok(p) => p,
                    Err(s) => {
                        skips.push(s);
                        continue;
                    }
                };
                if !p.reused {
                    bytes_read += p.bytes.len() as u64;
                }
                let offset = if p.reused {
                    unchanged += 1;
                    None
                } else if is_known {
                    None
                } else if p.bytes.is_empty() {
                    // The empty text needs no bytes in any pack.
                    Some(0)
                } else if let Some(&at) = placed.get(&p.hash) {
                    Some(at)
                } else {
                    let at = pack.append(&p.bytes).map_err(|e| {
                        ToolError::internal(format!(
                            "storing the text of {}: {e}; check free space under the data directory",
                            p.source
                        ))
                    })?;
                    placed.insert(p.hash.clone(), at);
                    Some(at)
                };
                fresh.push(Stored {
                    length_bytes: p.length_bytes(),
                    source: p.source,
                    hash: p.hash,
                    shape: p.shape,
                    hint: p.hint,
                    offset,
                    file: p.file,
                });
            }
            stored.extend(fresh);
        }
        ctx.check_cancel()?;
        tracing::debug!(
            files = total_items,
            read = self.inner.files_read.load(Ordering::Relaxed) - read_before,
            unchanged,
            bytes_read,
            "load read its files"
        );
        // The batches' buffers are freed: give them back to the system.
        crate::alloc::after_large_work(bytes_read);
        Ok(stored)
    }

    /// Turns a batch into what to read and what the store already holds:
    /// a file whose recorded identity vouches for it (and within the size
    /// limit, which may have changed since) becomes its stored text's
    /// description, without a read.
    fn reuse_unchanged(
        &self,
        batch: Vec<(Item, Option<FileIdentity>)>,
        max_bytes: u64,
    ) -> Result<Vec<Slot>, ToolError> {
        let shown: Vec<Option<String>> = batch
            .iter()
            .map(|(item, identity)| match (item, identity) {
                (Item::File { path, .. }, Some(_)) => Some(shown_path(path)),
                _ => None,
            })
            .collect();
        // Looked up on the load threads, a share of the paths each (every
        // lookup is a read of its own; SQLite serves them side by side).
        let paths: Vec<&str> = shown.iter().flatten().map(String::as_str).collect();
        let share = paths
            .len()
            .div_ceil(self.pool().current_num_threads().max(1))
            .max(MIN_LOOKUPS_PER_THREAD);
        let store = &self.inner.store;
        let found: Vec<Vec<Option<Recorded>>> = self.pool().install(|| {
            paths
                .par_chunks(share)
                .map(|part| store.recorded_files(part))
                .collect::<Result<_, _>>()
        })?;
        // One answer for each path shown, in order.
        let mut recorded = found.into_iter().flatten();
        let window = self.inner.config.racy_window;
        Ok(batch
            .into_iter()
            .zip(shown)
            .map(|((item, identity), shown)| {
                let Some(shown) = shown else {
                    return Slot::Read(item);
                };
                let recorded = recorded.next().flatten();
                let (Item::File { hint, .. }, Some(identity)) = (&item, identity) else {
                    return Slot::Read(item);
                };
                match recorded {
                    Some(r) if identity.size <= max_bytes && r.vouches_for(&identity, window) => {
                        Slot::Unchanged(Prepared::reused(shown, r, *hint))
                    }
                    _ => Slot::Read(item),
                }
            })
            .collect())
    }

    /// The threads that read and hash files, built by this engine's first load.
    fn pool(&self) -> &rayon::ThreadPool {
        let threads = self.inner.config.load_threads;
        self.inner.load_pool.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("rlm-load-{i}"))
                .build()
                .unwrap_or_else(|_| {
                    rayon::ThreadPoolBuilder::new()
                        .build()
                        .expect("a thread pool")
                })
        })
    }

    /// Commits the load under the session's lock: one durable transaction
    /// (see `Store::commit_load`), after the pack it names is on disk;
    /// `removals` as the store counted them before the load looked up any
    /// stored text.
    fn commit_load(
        &self,
        session: &SessionRow,
        stored: &[Stored],
        pack: Option<&str>,
        removals: BlobRemovals,
    ) -> Result<Vec<LoadedDoc>, ToolError> {
        let store = &self.inner.store;
        let lock = store.lock_session(&session.id)?;
        let created = now();
        // Time-ordered (v7): they follow creation order, so a big load
        // appends to the documents' id index instead of writing at random
        // pages of it (ordered within this process; TOOLS.md: opaque ids).
        let ids: Vec<String> = stored
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let docs: Vec<NewDocument<'_>> = stored
            .iter()
            .zip(&ids)
            .map(|(s, doc_id)| NewDocument {
                doc_id,
                hash: &s.hash,
                source: &s.source,
                length_bytes: s.length_bytes,
                shape: &s.shape,
                tokens_est: tokens_est(s.shape.length_chars, s.hint),
                offset: s.offset,
                file: s.file,
            })
            .collect();
        match store.commit_load(&lock, &session.id, &docs, pack, Some(removals), &created)? {
            LoadCommit::Committed {
                first_seq,
                generation,
            } => {
                // The index manager learns the session's new documents here,
                // so the session's first search need not read them back.
                let rows: Vec<DocRow> = docs
                    .iter()
                    .enumerate()
                    .map(|(i, d)| DocRow {
                        doc_id: d.doc_id.to_owned(),
                        seq: first_seq + i as u64,
                        hash: d.hash.to_owned(),
                        length_chars: d.shape.length_chars,
                    })
                    .collect();
                self.inner.indexes.documents_added(
                    &session.id,
                    generation,
                    first_seq,
                    &rows,
                    stored
                        .iter()
                        .filter(|s| s.offset.is_some())
                        .map(|s| s.hash.as_str()),
                );
                Ok(docs
                    .iter()
                    .map(|d| LoadedDoc {
                        doc_id: d.doc_id.to_owned(),
                        content_hash: d.hash.to_owned(),
                        source: d.source.to_owned(),
                        length_chars: d.shape.length_chars,
                        length_tokens_est: d.tokens_est,
                    })
                    .collect())
            }
            // Closed while the files were being read.
            LoadCommit::Closed(current) => Err(current.closed_error("rlm.docs.load")),
            LoadCommit::NoPack => Err(ToolError::internal(
                "a stored text has no pack; retry the load",
            )),
            // Nothing was written; a second try stores the texts afresh.
            LoadCommit::Collected(what) => Err(ToolError::new(
                ErrorCode::Busy,
                format!(
                    "rlm gc removed {} the load relied on while it ran ({}); nothing was loaded: retry the load",
                    if what.len() == 1 {
                        "a stored text"
                    } else {
                        "stored texts"
                    },
                    what.first().map(String::as_str).unwrap_or_default()
                ),
            )),
        }
    }

    fn load_result(
        &self,
        session: &SessionRow,
        loaded: Vec<LoadedDoc>,
        skips: Vec<Skip>,
    ) -> DocsLoadResult {
        let total_chars = loaded.iter().map(|d| d.length_chars).sum();
        let total_tokens_est = loaded.iter().map(|d| d.length_tokens_est).sum();
        let loaded_count = loaded.len() as u64;
        let error_count = skips.len() as u64;
        let mut budget = ResponseBudget::for_response(session);
        // Errors first (at most a few dozen lines, then a summary), so the model
        // always learns what failed; then as many loaded entries as fit.
        let mut lines: Vec<String> = skips
            .iter()
            .take(MAX_ERROR_LINES)
            .map(|s| s.line.clone())
            .collect();
        if skips.len() > MAX_ERROR_LINES {
            let mut by_kind: HashMap<SkipKind, usize> = HashMap::new();
            for s in &skips[MAX_ERROR_LINES..] {
                *by_kind.entry(s.kind).or_default() += 1;
            }
            let names = [
                (SkipKind::NotUtf8, "not UTF-8"),
                (SkipKind::TooLarge, "too large"),
                (SkipKind::Unreadable, "unreadable or missing"),
                (SkipKind::Refused, "outside the allowed folders"),
                (SkipKind::Other, "other"),
            ];
            let parts: Vec<String> = names
                .iter()
                .filter_map(|(k, n)| by_kind.get(k).map(|c| format!("{c} {n}")))
                .collect();
            lines.push(format!(
                "... and {} more files not loaded: {}",
                skips.len() - MAX_ERROR_LINES,
                parts.join(", ")
            ));
        }
        let mut error_budget = budget.split_off(budget.left() / 2);
        let (errors, errors_cut) = error_budget.take_list(lines);
        budget.give_back(error_budget);
        let (loaded, loaded_cut) = budget.take_list(loaded);
        DocsLoadResult {
            loaded,
            errors,
            total_chars,
            total_tokens_est,
            loaded_count,
            error_count,
            truncated: loaded_cut || errors_cut || skips.len() > MAX_ERROR_LINES,
        }
    }
}
