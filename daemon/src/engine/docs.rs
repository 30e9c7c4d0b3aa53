//! `rlm.docs.load`, `rlm.docs.list` and `rlm.docs.peek`: resolving sources
//! against the client's working directory, reading, hashing and storing
//! files in parallel, and one durable commit per load.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rusqlite::{OptionalExtension, params};

use rlm::tools::{
    DirectorySource, DocEntry, DocsListArgs, DocsListResult, DocsLoadArgs, DocsLoadResult,
    DocsPeekArgs, DocsPeekResult, FileSource, GlobSource, InlineSource, LoadedDoc, Source, SpanRef,
};
use rlm::{ErrorCode, ToolError};

use super::{CallContext, Engine, ResponseBudget, SessionRow, now};
use crate::store::blobs::PackWriter;
use crate::store::sha256_hex;
use crate::text::TextShape;

/// Bytes read into memory at once during a load; larger loads go in batches.
const LOAD_BATCH_BYTES: u64 = 256 << 20;
/// Error lines listed one by one before the rest are summarized.
const MAX_ERROR_LINES: usize = 50;
/// Documents per page of `rlm.docs.list` at most.
const MAX_LIST_LIMIT: u64 = 10_000;

/// A document of a session as the tools need it.
#[derive(Debug, Clone)]
pub(crate) struct DocRow {
    pub doc_id: String,
    pub seq: u64,
    pub hash: String,
    pub length_chars: u64,
}

impl DocRow {
    pub const COLUMNS: &'static str = "doc_id, seq, hash, length_chars";

    pub fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRow> {
        Ok(DocRow {
            doc_id: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            hash: r.get(2)?,
            length_chars: r.get::<_, i64>(3)? as u64,
        })
    }
}

/// What a source expands to before reading.
enum Item {
    Inline {
        content: String,
        name: Option<String>,
        hint: Option<u64>,
    },
    File {
        path: PathBuf,
        hint: Option<u64>,
    },
}

/// A text read, checked and measured, ready to store.
struct Prepared {
    source: String,
    hash: String,
    bytes: Vec<u8>,
    shape: TextShape,
    hint: Option<u64>,
}

/// What the commit needs of a prepared text (its bytes already stored).
struct Stored {
    source: String,
    hash: String,
    length_bytes: u64,
    shape: TextShape,
    hint: Option<u64>,
    /// Where this load's pack holds the text; None when the store had it.
    offset: Option<u64>,
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

struct Skip {
    kind: SkipKind,
    line: String,
}

impl Skip {
    fn new(kind: SkipKind, line: String) -> Skip {
        Skip { kind, line }
    }
}

fn tokens_est(chars: u64, hint: Option<u64>) -> u64 {
    hint.unwrap_or(chars.div_ceil(4))
}

impl Engine {
    /// Finds a document of this session, or says why not.
    pub(crate) fn doc(&self, session: &SessionRow, doc_id: &str) -> Result<DocRow, ToolError> {
        let row = self.inner.store.db.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {}, session_id FROM documents WHERE doc_id = ?1",
                DocRow::COLUMNS
            ))?
            .query_row([doc_id], |r| {
                Ok((DocRow::from_row(r)?, r.get::<_, String>(4)?))
            })
            .optional()
            .map_err(ToolError::from)
        })?;
        match row {
            Some((d, sid)) if sid == session.id => Ok(d),
            Some(_) => Err(ToolError::new(
                ErrorCode::DocumentNotFound,
                format!(
                    "document {doc_id} belongs to another session, not to session {}; use rlm.docs.list on this session to see its documents",
                    session.id
                ),
            )
            .with("doc_id", doc_id.to_owned())),
            None => Err(ToolError::new(
                ErrorCode::DocumentNotFound,
                format!(
                    "session {} has no document {doc_id:?}; use rlm.docs.list to see its doc_ids",
                    session.id
                ),
            )
            .with("doc_id", doc_id.to_owned())),
        }
    }

    /// Every document of a session in load order.
    pub(crate) fn docs_of(&self, session_id: &str) -> Result<Vec<DocRow>, ToolError> {
        self.inner.store.db.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {} FROM documents WHERE session_id = ?1 ORDER BY seq",
                DocRow::COLUMNS
            ))?;
            let rows = st
                .query_map([session_id], DocRow::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    pub(crate) fn docs_load(
        &self,
        session: &SessionRow,
        args: DocsLoadArgs,
        ctx: &CallContext,
    ) -> Result<DocsLoadResult, ToolError> {
        session.require_active("rlm.docs.load")?;
        let mut skips: Vec<Skip> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        for (i, source) in args.sources.into_iter().enumerate() {
            self.expand_source(i, source, ctx, &mut items, &mut skips);
        }
        let mut pack = self.inner.store.blobs.new_pack().map_err(|e| {
            ToolError::internal(format!("starting a pack under the data directory: {e}"))
        })?;
        let stored = match self.read_and_pack(items, &mut pack, &mut skips, ctx) {
            Ok(stored) => stored,
            Err(e) => {
                pack.abandon();
                return Err(e);
            }
        };
        // One durable point for the whole load, before the commit refers to it.
        let pack_name = pack.finish().map_err(|e| {
            ToolError::internal(format!(
                "syncing stored texts to disk: {e}; check free space under the data directory"
            ))
        })?;
        let loaded = self.commit_load(session, &stored, pack_name.as_deref())?;
        if !stored.is_empty() {
            self.inner.indexes.refresh_in_background(self, &session.id);
        }
        Ok(self.load_result(session, loaded, skips))
    }

    /// Reads, checks and hashes the items on the load threads, batch by
    /// batch, and appends every text the store lacks to `pack`.
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
        let mut stored: Vec<Stored> = Vec::with_capacity(items.len());
        let mut placed: HashMap<String, u64> = HashMap::new();
        let mut batch: Vec<Item> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut queue = items.into_iter().peekable();
        while queue.peek().is_some() {
            // Fill a batch up to the byte budget (file sizes from metadata).
            while let Some(item) = queue.peek() {
                let size = match item {
                    Item::Inline { content, .. } => content.len() as u64,
                    Item::File { path, .. } => {
                        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
                    }
                };
                if !batch.is_empty() && batch_bytes + size > LOAD_BATCH_BYTES {
                    break;
                }
                batch_bytes += size;
                batch.extend(queue.next());
            }
            batch_bytes = 0;
            ctx.check_cancel()?;
            let results: Vec<Result<Prepared, Skip>> = self.pool().install(|| {
                std::mem::take(&mut batch)
                    .into_par_iter()
                    .map(|item| {
                        let r = prepare(item, max_bytes, ctx);
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_multiple_of(64) || n == total_items {
                            ctx.progress(n, Some(total_items), "reading files");
                        }
                        r
                    })
                    .collect()
            });
            ctx.check_cancel()?;
            let known = self.known_blobs(results.iter().flatten().map(|p| p.hash.as_str()))?;
            let mut fresh: Vec<Stored> = Vec::new();
            for r in &results {
                let p = match r {
                    Ok(p) => p,
                    Err(s) => {
                        skips.push(Skip::new(s.kind, s.line.clone()));
                        continue;
                    }
                };
                let offset = if known.contains(p.hash.as_str()) {
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
                    source: p.source.clone(),
                    hash: p.hash.clone(),
                    length_bytes: p.bytes.len() as u64,
                    shape: p.shape.clone(),
                    hint: p.hint,
                    offset,
                });
            }
            stored.extend(fresh);
        }
        ctx.check_cancel()?;
        Ok(stored)
    }

    /// Which of these hashes the store lists: their files are known complete.
    fn known_blobs<'a>(
        &self,
        hashes: impl Iterator<Item = &'a str>,
    ) -> Result<HashSet<&'a str>, ToolError> {
        self.inner.store.db.read(|c| {
            let mut st = c.prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1")?;
            let mut known = HashSet::new();
            for h in hashes {
                if st.exists([h])? {
                    known.insert(h);
                }
            }
            Ok(known)
        })
    }

    fn pool(&self) -> &'static rayon::ThreadPool {
        static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
        let threads = self.inner.config.load_threads;
        POOL.get_or_init(|| {
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

    fn commit_load(
        &self,
        session: &SessionRow,
        stored: &[Stored],
        pack: Option<&str>,
    ) -> Result<Vec<LoadedDoc>, ToolError> {
        let store = &self.inner.store;
        let _lock = store.lock_session(&session.id)?;
        let created = now();
        store.db.write_durable(|tx| {
            let (status, count): (String, i64) = tx.query_row(
                "SELECT status, document_count FROM sessions WHERE session_id = ?1",
                [&session.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if status != "active" {
                // Closed while the files were being read.
                let current = self.load_session(&session.id)?;
                current.require_active("rlm.docs.load")?;
            }
            let mut put_blob = tx.prepare_cached(
                "INSERT OR IGNORE INTO blobs (hash, pack, offset, length_bytes, length_chars, checkpoints, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut put_doc = tx.prepare_cached(
                "INSERT INTO documents (doc_id, session_id, seq, hash, source, length_chars, length_tokens_est, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut loaded = Vec::with_capacity(stored.len());
            let (mut chars, mut tokens) = (0u64, 0u64);
            for (i, s) in stored.iter().enumerate() {
                if let Some(offset) = s.offset {
                    let pack = match (s.length_bytes, pack) {
                        (0, _) => "",
                        (_, Some(p)) => p,
                        (_, None) => {
                            return Err(ToolError::internal("a stored text has no pack; retry the load"));
                        }
                    };
                    put_blob.execute(params![
                        s.hash,
                        pack,
                        offset as i64,
                        s.length_bytes as i64,
                        s.shape.length_chars as i64,
                        s.shape.checkpoints_blob(),
                        created
                    ])?;
                }
                let doc_id = uuid::Uuid::new_v4().to_string();
                let est = tokens_est(s.shape.length_chars, s.hint);
                put_doc.execute(params![
                    doc_id,
                    session.id,
                    count + i as i64,
                    s.hash,
                    s.source,
                    s.shape.length_chars as i64,
                    est as i64,
                    created
                ])?;
                chars += s.shape.length_chars;
                tokens += est;
                loaded.push(LoadedDoc {
                    doc_id,
                    content_hash: s.hash.clone(),
                    source: s.source.clone(),
                    length_chars: s.shape.length_chars,
                    length_tokens_est: est,
                });
            }
            if !stored.is_empty() {
                tx.execute(
                    "UPDATE sessions SET generation = generation + 1, document_count = document_count + ?2, \
                     total_chars = total_chars + ?3, total_tokens_est = total_tokens_est + ?4 WHERE session_id = ?1",
                    params![session.id, stored.len() as i64, chars as i64, tokens as i64],
                )?;
            }
            Ok::<_, ToolError>(loaded)
        })
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

    /// Turns one source into items to read, or into error lines.
    fn expand_source(
        &self,
        index: usize,
        source: Source,
        ctx: &CallContext,
        items: &mut Vec<Item>,
        skips: &mut Vec<Skip>,
    ) {
        match source {
            Source::Inline(InlineSource {
                content,
                name,
                token_count_hint,
            }) => {
                items.push(Item::Inline {
                    content,
                    name,
                    hint: token_count_hint,
                });
            }
            Source::File(FileSource {
                path,
                token_count_hint,
            }) => match self.resolve(&path, ctx) {
                Ok(p) => match self.check_allowed(&p) {
                    Ok(p) => items.push(Item::File {
                        path: p,
                        hint: token_count_hint,
                    }),
                    Err(s) => skips.push(s),
                },
                Err(line) => skips.push(Skip::new(
                    SkipKind::Other,
                    format!("sources[{index}] (file): {line}"),
                )),
            },
            Source::Glob(GlobSource {
                path,
                include_pattern,
                exclude_pattern,
                token_count_hint,
            }) => {
                let filters =
                    match Filters::new(include_pattern.as_deref(), exclude_pattern.as_deref()) {
                        Ok(f) => f,
                        Err(line) => {
                            return skips.push(Skip::new(
                                SkipKind::Other,
                                format!("sources[{index}] (glob {path}): {line}"),
                            ));
                        }
                    };
                let pattern = match self.resolve(&path, ctx) {
                    Ok(p) => p,
                    Err(line) => {
                        return skips.push(Skip::new(
                            SkipKind::Other,
                            format!("sources[{index}] (glob): {line}"),
                        ));
                    }
                };
                let options = glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: true,
                    require_literal_leading_dot: false,
                };
                let paths = match glob::glob_with(&pattern.to_string_lossy(), options) {
                    Ok(p) => p,
                    Err(e) => {
                        return skips.push(Skip::new(
                            SkipKind::Other,
                            format!("sources[{index}] (glob {path}): invalid pattern: {e}"),
                        ));
                    }
                };
                let mut found = Vec::new();
                for entry in paths {
                    match entry {
                        Ok(p) if p.is_file() && filters.keep(&p) => found.push((p, false)),
                        Ok(_) => {}
                        Err(e) => skips.push(Skip::new(
                            SkipKind::Unreadable,
                            format!(
                                "{}: unreadable while matching glob {path}: {}",
                                e.path().display(),
                                e.error()
                            ),
                        )),
                    }
                }
                found.sort();
                if found.is_empty() {
                    skips.push(Skip::new(
                        SkipKind::Other,
                        format!("sources[{index}] (glob {}): matched no files; check the pattern and the working directory", pattern.display()),
                    ));
                }
                self.push_files(found, token_count_hint, items, skips);
            }
            Source::Directory(DirectorySource {
                path,
                recursive,
                include_pattern,
                exclude_pattern,
                token_count_hint,
            }) => {
                let filters =
                    match Filters::new(include_pattern.as_deref(), exclude_pattern.as_deref()) {
                        Ok(f) => f,
                        Err(line) => {
                            return skips.push(Skip::new(
                                SkipKind::Other,
                                format!("sources[{index}] (directory {path}): {line}"),
                            ));
                        }
                    };
                let dir = match self.resolve(&path, ctx) {
                    Ok(p) => p,
                    Err(line) => {
                        return skips.push(Skip::new(
                            SkipKind::Other,
                            format!("sources[{index}] (directory): {line}"),
                        ));
                    }
                };
                if !dir.is_dir() {
                    let why = if dir.exists() {
                        "is not a directory; use a file source"
                    } else {
                        "does not exist"
                    };
                    return skips.push(Skip::new(
                        SkipKind::Unreadable,
                        format!("{}: {why}", dir.display()),
                    ));
                }
                // Entries under a canonical root are canonical unless they are links.
                let dir = match dir.canonicalize() {
                    Ok(d) => d,
                    Err(e) => {
                        return skips.push(Skip::new(
                            SkipKind::Unreadable,
                            format!("{}: {}", dir.display(), io_reason(&e)),
                        ));
                    }
                };
                let walker = walkdir::WalkDir::new(&dir)
                    .max_depth(if recursive { usize::MAX } else { 1 })
                    .sort_by_file_name();
                let mut found = Vec::new();
                for entry in walker {
                    match entry {
                        Ok(e) => {
                            let link = e.file_type().is_symlink();
                            let is_file = e.file_type().is_file() || (link && e.path().is_file());
                            if is_file && filters.keep(e.path()) {
                                found.push((e.into_path(), !link));
                            }
                        }
                        Err(e) => skips.push(Skip::new(
                            SkipKind::Unreadable,
                            format!(
                                "{}: unreadable while listing directory {}: {e}",
                                e.path()
                                    .map(|p| p.display().to_string())
                                    .unwrap_or_default(),
                                dir.display()
                            ),
                        )),
                    }
                }
                if found.is_empty() {
                    skips.push(Skip::new(
                        SkipKind::Other,
                        format!(
                            "sources[{index}] (directory {}): no files{}{}",
                            dir.display(),
                            if recursive {
                                ""
                            } else {
                                " directly inside (set recursive: true to descend)"
                            },
                            if filters.any() {
                                " matching include_pattern / exclude_pattern"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                self.push_files(found, token_count_hint, items, skips);
            }
        }
    }

    /// Queues files; `canonical` tells which paths need no resolving.
    fn push_files(
        &self,
        found: Vec<(PathBuf, bool)>,
        hint: Option<u64>,
        items: &mut Vec<Item>,
        skips: &mut Vec<Skip>,
    ) {
        for (p, canonical) in found {
            let checked = if canonical {
                self.check_root(p)
            } else {
                self.check_allowed(&p)
            };
            match checked {
                Ok(p) => items.push(Item::File { path: p, hint }),
                Err(s) => skips.push(s),
            }
        }
    }

    /// Resolves a path against the client's working directory.
    fn resolve(&self, path: &str, ctx: &CallContext) -> Result<PathBuf, String> {
        if path.is_empty() {
            return Err("empty path".into());
        }
        let p = Path::new(path);
        if p.is_absolute() {
            return Ok(p.to_owned());
        }
        match &ctx.cwd {
            Some(cwd) => Ok(cwd.join(p)),
            None => Err(format!(
                "relative path {path:?} but the client sent no working directory; give an absolute path"
            )),
        }
    }

    /// Canonicalizes a file path and checks it against the allowed folders.
    fn check_allowed(&self, path: &Path) -> Result<PathBuf, Skip> {
        match path.canonicalize() {
            Ok(c) => self.check_root(c),
            Err(e) => Err(Skip::new(
                SkipKind::Unreadable,
                format!("{}: {}", path.display(), io_reason(&e)),
            )),
        }
    }

    /// Checks a canonical path against the allowed folders, if any are set.
    fn check_root(&self, canonical: PathBuf) -> Result<PathBuf, Skip> {
        if let Some(roots) = &self.inner.config.allowed_roots {
            let inside = roots.iter().any(|r| canonical.starts_with(r));
            if !inside {
                return Err(Skip::new(
                    SkipKind::Refused,
                    format!(
                        "{}: outside the folders this server may read (allowed_roots in its config.toml); ask its operator to allow it",
                        canonical.display()
                    ),
                ));
            }
        }
        Ok(canonical)
    }

    pub(crate) fn docs_list(
        &self,
        session: &SessionRow,
        args: DocsListArgs,
    ) -> Result<DocsListResult, ToolError> {
        let limit = args.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(ToolError::invalid(format!(
                "limit {limit} is out of range; use 1 to {MAX_LIST_LIMIT}"
            ))
            .with("field", "limit"));
        }
        let offset = args.offset.unwrap_or(0);
        let rows = self.inner.store.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.doc_id, d.hash, d.source, d.length_chars, d.length_tokens_est, \
                 (SELECT count(*) FROM spans s WHERE s.doc_id = d.doc_id) \
                 FROM documents d WHERE d.session_id = ?1 ORDER BY d.seq LIMIT ?2 OFFSET ?3",
            )?;
            let rows = st
                .query_map(params![session.id, limit as i64, offset as i64], |r| {
                    Ok(DocEntry {
                        doc_id: r.get(0)?,
                        content_hash: r.get(1)?,
                        source: r.get(2)?,
                        length_chars: r.get::<_, i64>(3)? as u64,
                        length_tokens_est: r.get::<_, i64>(4)? as u64,
                        span_count: r.get::<_, i64>(5)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ToolError>(rows)
        })?;
        let (documents, truncated) = ResponseBudget::for_response(session).take_list(rows);
        let total = session.document_count;
        let next = offset + documents.len() as u64;
        let has_more = next < total;
        Ok(DocsListResult {
            documents,
            total,
            has_more,
            next_offset: has_more.then_some(next),
            truncated,
        })
    }

    pub(crate) fn docs_peek(
        &self,
        session: &SessionRow,
        args: DocsPeekArgs,
    ) -> Result<DocsPeekResult, ToolError> {
        let doc = self.doc(session, &args.doc_id)?;
        let total = doc.length_chars;
        let start = args.start.unwrap_or(0);
        let end = args.end.unwrap_or(-1);
        if start < 0 || start as u64 > total {
            return Err(ToolError::invalid(format!(
                "start {start} is outside document {} (length {total} characters); start must be in 0..={total}",
                doc.doc_id
            ))
            .with("total_length", total)
            .with("field", "start"));
        }
        let end = if end == -1 { total as i64 } else { end };
        if end < start || end as u64 > total {
            return Err(ToolError::invalid(format!(
                "end {end} is outside document {} (length {total} characters); end must be in {start}..={total}, or -1 for the end",
                doc.doc_id
            ))
            .with("total_length", total)
            .with("field", "end"));
        }
        let text = self.inner.store.text(&doc.hash)?;
        let wanted = text.slice(start as u64, end as u64);
        let (content, truncated) = ResponseBudget::cut_text(
            wanted,
            session.config.max_chars_per_peek as usize,
            ResponseBudget::for_response(session).left(),
        );
        let returned_end = start as u64 + content.chars().count() as u64;
        Ok(DocsPeekResult {
            content_hash: sha256_hex(content.as_bytes()),
            content: content.to_owned(),
            span: SpanRef {
                doc_id: doc.doc_id,
                start: start as u64,
                end: returned_end,
            },
            truncated,
            total_length: total,
        })
    }
}

/// include/exclude regexes of a glob or directory source.
struct Filters {
    include: Option<regex::Regex>,
    exclude: Option<regex::Regex>,
}

impl Filters {
    fn new(include: Option<&str>, exclude: Option<&str>) -> Result<Filters, String> {
        let compile = |field: &str, p: Option<&str>| -> Result<Option<regex::Regex>, String> {
            p.map(|p| {
                regex::Regex::new(p).map_err(|e| format!("{field} {p:?} is not a valid regex: {e}"))
            })
            .transpose()
        };
        Ok(Filters {
            include: compile("include_pattern", include)?,
            exclude: compile("exclude_pattern", exclude)?,
        })
    }

    fn any(&self) -> bool {
        self.include.is_some() || self.exclude.is_some()
    }

    fn keep(&self, path: &Path) -> bool {
        let s = path.to_string_lossy();
        self.include.as_ref().is_none_or(|r| r.is_match(&s))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(&s))
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Reads, checks and measures one item (runs on a load thread).
fn prepare(item: Item, max_bytes: u64, ctx: &CallContext) -> Result<Prepared, Skip> {
    if ctx.cancelled() {
        return Err(Skip::new(SkipKind::Other, "cancelled".into()));
    }
    let too_large = |what: &str, n: u64| {
        Skip::new(
            SkipKind::TooLarge,
            format!(
                "{what}: {:.1} MB is larger than max_file_size_mb ({} MB); split it or raise the limit in the server's config",
                n as f64 / (1 << 20) as f64,
                max_bytes >> 20
            ),
        )
    };
    let (source, bytes, hint) = match item {
        Item::Inline {
            content,
            name,
            hint,
        } => {
            let source = name.unwrap_or_else(|| "inline".to_owned());
            if content.len() as u64 > max_bytes {
                return Err(too_large(
                    &format!("inline source {source:?}"),
                    content.len() as u64,
                ));
            }
            (source, content.into_bytes(), hint)
        }
        Item::File { path, hint } => {
            let shown = path.display().to_string();
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    return Err(Skip::new(
                        SkipKind::Other,
                        format!("{shown}: is a directory; use a directory source"),
                    ));
                }
                Ok(m) if m.len() > max_bytes => return Err(too_large(&shown, m.len())),
                Ok(_) => {}
                Err(e) => {
                    return Err(Skip::new(
                        SkipKind::Unreadable,
                        format!("{shown}: {}", io_reason(&e)),
                    ));
                }
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                Skip::new(SkipKind::Unreadable, format!("{shown}: {}", io_reason(&e)))
            })?;
            if bytes.len() as u64 > max_bytes {
                return Err(too_large(&shown, bytes.len() as u64));
            }
            if let Err(e) = std::str::from_utf8(&bytes) {
                return Err(Skip::new(
                    SkipKind::NotUtf8,
                    format!(
                        "{shown}: not UTF-8 text (invalid byte at offset {}); only UTF-8 text files can be loaded",
                        e.valid_up_to()
                    ),
                ));
            }
            (shown, bytes, hint)
        }
    };
    // Checked above for files; inline content arrived as a String.
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    let shape = TextShape::of(text);
    let hash = sha256_hex(&bytes);
    Ok(Prepared {
        source,
        hash,
        bytes,
        shape,
        hint,
    })
}
