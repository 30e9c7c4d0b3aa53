//! `rlm.chunk.create` (with its per-strategy cache and paging) and
//! `rlm.span.get` (in the order asked, cut at the response cap with the
//! rest listed in `omitted`).

use rayon::prelude::*;

use rlm::tools::{
    ChunkCreateArgs, ChunkCreateResult, ChunkSpan, ChunkStrategy, SpanContent, SpanGetArgs,
    SpanGetResult, SpanRef,
};
use rlm::{ErrorCode, ToolError};

use super::context::TimedProgress;
use super::integrity::check_read;
use super::{CallContext, Engine, ResponseBudget, SessionRow, now};
use crate::chunk::{self, Strategy};
use crate::store::sha256_hex;
pub(crate) use crate::store::spans::SpanRow;
use crate::store::spans::{Chunking, IdKind, NewChunkSpan};

/// Spans one chunking may make; more would bloat the store for no reader.
pub(crate) const MAX_SPANS_PER_CHUNKING: u64 = 100_000;
/// Span ids one `rlm.span.get` may ask for.
const MAX_SPAN_IDS: usize = 1000;
/// Characters of a span's preview.
const PREVIEW_CHARS: u64 = 100;

impl Engine {
    pub(crate) fn chunk_create(
        &self,
        session: &SessionRow,
        args: ChunkCreateArgs,
        ctx: &CallContext,
    ) -> Result<ChunkCreateResult, ToolError> {
        session.require_active("rlm.chunk.create")?;
        let doc = self.doc(session, &args.doc_id)?;
        let (strategy, max_chunks) = to_strategy(&args.strategy);
        if max_chunks == Some(0) {
            return Err(ToolError::invalid("strategy.max_chunks must be at least 1")
                .with("field", "strategy.max_chunks"));
        }
        chunk::validate(&strategy)
            .map_err(|e| ToolError::invalid(e.to_string()).with("field", "strategy"))?;
        let limit = args.limit.unwrap_or(u64::MAX);
        if limit == 0 {
            return Err(
                ToolError::invalid("limit must be at least 1 (or left out)").with("field", "limit")
            );
        }
        let offset = args.offset.unwrap_or(0);
        let key = serde_json::to_string(&args.strategy)
            .map_err(|e| ToolError::internal(e.to_string()))?;
        let reuse = session.config.chunk_cache_enabled || offset > 0;
        let store = &self.inner.store;
        let mut found = if reuse {
            self.find_chunking(session, &doc.doc_id, &key)?
        } else {
            None
        };
        let mut cached = found.is_some();
        if found.is_none() {
            let lock = store.lock_session(&session.id)?;
            // Another call may have made it while this one waited for the lock.
            found = if reuse {
                self.find_chunking(session, &doc.doc_id, &key)?
            } else {
                None
            };
            cached = found.is_some();
            if found.is_none() {
                ctx.check_cancel()?;
                let text = self.text_of(&doc)?;
                // One span past the limit is enough to refuse: never build more.
                let cap = max_chunks
                    .unwrap_or(u64::MAX)
                    .min(MAX_SPANS_PER_CHUNKING + 1);
                let progress =
                    TimedProgress::new(text.as_str().len() as u64, "cutting the document (bytes)");
                let ranges = chunk::chunk_until(
                    text.as_str(),
                    doc.length_chars,
                    &strategy,
                    Some(cap),
                    |bytes| {
                        progress.advance(bytes as u64, ctx);
                        ctx.cancelled()
                    },
                )
                .map_err(|e| {
                    if e.0.starts_with("internal error") {
                        ToolError::internal(e.to_string())
                    } else {
                        ToolError::invalid(e.to_string()).with("field", "strategy")
                    }
                })?;
                // None only when the cancel stopped the delimiter's search.
                let Some(ranges) = ranges else {
                    ctx.check_cancel()?;
                    return Err(ToolError::internal(
                        "the chunking stopped without a cancel; this is a bug",
                    ));
                };
                if ranges.len() as u64 > MAX_SPANS_PER_CHUNKING {
                    return Err(ToolError::new(
                        ErrorCode::TooLarge,
                        format!(
                            "this strategy cuts document {} into more than the {MAX_SPANS_PER_CHUNKING} spans one chunking may make; use larger chunks or set max_chunks",
                            doc.doc_id
                        ),
                    )
                    .with("limit", MAX_SPANS_PER_CHUNKING));
                }
                let s = text.as_str();
                let hashes: Vec<String> = ranges
                    .par_iter()
                    .map(|r| sha256_hex(&s.as_bytes()[r.start_byte..r.end_byte]))
                    .collect();
                // Nothing read from a pack cut short meanwhile is committed.
                check_read(store, &doc, &text)?;
                let created = now();
                let spans: Vec<NewChunkSpan<'_>> = ranges
                    .iter()
                    .zip(&hashes)
                    .map(|(r, h)| NewChunkSpan {
                        start: r.start_char,
                        end: r.end_char,
                        content_hash: h,
                    })
                    .collect();
                // The session may have been closed while we waited for the lock.
                let set_id = match store.create_chunking(
                    &lock,
                    &session.id,
                    &doc.doc_id,
                    &key,
                    &spans,
                    &created,
                )? {
                    Chunking::Created(set_id) => set_id,
                    Chunking::Closed(current) => {
                        return Err(current.closed_error("rlm.chunk.create"));
                    }
                };
                found = Some((set_id, ranges.len() as u64));
            }
        }
        let (set_id, total_spans) = found.unwrap_or((0, 0));
        let page = store.chunking_page(set_id, offset, limit)?;
        let text = self.text_of(&doc)?;
        let mut budget = ResponseBudget::for_response(session);
        let mut spans = Vec::with_capacity(page.len());
        let mut truncated = false;
        for row in page {
            let (span_id, index, start, end, hash) =
                (row.span_id, row.index, row.start, row.end, row.content_hash);
            let content_hash = match hash {
                Some(h) => h,
                None => sha256_hex(text.slice(start, end).as_bytes()),
            };
            let preview = text.slice(start, end.min(start + PREVIEW_CHARS)).to_owned();
            let entry = ChunkSpan {
                span_id,
                index,
                span: SpanRef {
                    doc_id: doc.doc_id.clone(),
                    start,
                    end,
                },
                length_chars: end - start,
                content_hash,
                preview,
            };
            if !budget.take(&entry) {
                truncated = true;
                break;
            }
            spans.push(entry);
        }
        check_read(store, &doc, &text)?;
        let next = offset + spans.len() as u64;
        Ok(ChunkCreateResult {
            spans,
            total_spans,
            cached,
            truncated,
            next_offset: (next < total_spans).then_some(next),
        })
    }

    /// The newest chunking of this document with this strategy, if any.
    fn find_chunking(
        &self,
        session: &SessionRow,
        doc_id: &str,
        key: &str,
    ) -> Result<Option<(i64, u64)>, ToolError> {
        Ok(self.inner.store.find_chunking(&session.id, doc_id, key)?)
    }

    /// Finds a span of this session, or explains why the id does not name one.
    pub(crate) fn span(&self, session: &SessionRow, span_id: &str) -> Result<SpanRow, ToolError> {
        let row = self.inner.store.span(span_id)?;
        match row {
            Some(s) if s.session_id == session.id => Ok(s),
            Some(_) => Err(ToolError::new(
                ErrorCode::SpanNotFound,
                format!(
                    "span {span_id} belongs to another session, not to session {}; a span is reachable only through its own session",
                    session.id
                ),
            )
            .with("span_id", span_id.to_owned())),
            None => {
                let hint = self.id_hint(session, span_id)?;
                Err(ToolError::new(
                    ErrorCode::SpanNotFound,
                    format!("session {} has no span {span_id:?}; {hint}", session.id),
                )
                .with("span_id", span_id.to_owned()))
            }
        }
    }

    /// What an id that is not a span of this session might be.
    fn id_hint(&self, session: &SessionRow, id: &str) -> Result<String, ToolError> {
        let kind = self.inner.store.id_kind(&session.id, id)?;
        Ok(match kind {
            IdKind::Document(source) => format!(
                "{id} is the doc_id of document {source}; use rlm.docs.peek to read it, or rlm.chunk.create to cut it into spans"
            ),
            IdKind::Artifact => format!("{id} is an artifact_id; use rlm.artifact.get to read it"),
            IdKind::Unknown => {
                "span ids come from rlm.chunk.create or rlm.artifact.store of this session".into()
            }
        })
    }

    pub(crate) fn span_get(
        &self,
        session: &SessionRow,
        args: SpanGetArgs,
    ) -> Result<SpanGetResult, ToolError> {
        if args.span_ids.len() > MAX_SPAN_IDS {
            return Err(ToolError::invalid(format!(
                "{} span ids asked; at most {MAX_SPAN_IDS} per call, ask in several calls",
                args.span_ids.len()
            ))
            .with("field", "span_ids"));
        }
        let mut budget = ResponseBudget::for_response(session);
        // Ids left out are listed in `omitted`, so the list of ids must fit
        // beside the texts whatever happens.
        let ids_chars = budget.cost(&args.span_ids);
        if !budget.fits(ids_chars) {
            let each = ids_chars / args.span_ids.len().max(1);
            return Err(ToolError::invalid(format!(
                "{} span ids take {ids_chars} characters, more than this session's max_chars_per_response ({}) leaves for a response; ask for at most {} ids per call",
                args.span_ids.len(),
                session.config.max_chars_per_response,
                budget.left() / each.max(1)
            ))
            .with("field", "span_ids"));
        }
        let rows = args
            .span_ids
            .iter()
            .map(|id| self.span(session, id))
            .collect::<Result<Vec<_>, _>>()?;
        // What listing the ids after each one in `omitted` would cost.
        let mut reserve: Vec<usize> = vec![0; rows.len() + 1];
        for i in (0..rows.len()).rev() {
            reserve[i] = reserve[i + 1] + budget.cost(&rows[i].span_id) + 1;
        }
        let mut spans = Vec::new();
        let mut omitted = Vec::new();
        let mut total = 0u64;
        let mut full = false;
        for (i, row) in rows.into_iter().enumerate() {
            if full {
                omitted.push(row.span_id);
                continue;
            }
            let doc = self.doc(session, &row.doc_id)?;
            let text = self.text_of(&doc)?;
            let whole = text.slice(row.start, row.end);
            let mut entry = SpanContent {
                span_id: row.span_id.clone(),
                span: SpanRef {
                    doc_id: row.doc_id.clone(),
                    start: row.start,
                    end: row.end,
                },
                content: String::new(),
                // A stand-in of the hash's length and kind (letters and
                // digits mixed, as its estimated tokens count), to count the
                // entry's size.
                content_hash: "0a".repeat(32),
                truncated: false,
            };
            let overhead = budget.cost(&entry) + 1;
            let room = budget.left().saturating_sub(reserve[i + 1]);
            if overhead >= room {
                full = true;
                omitted.push(row.span_id);
                continue;
            }
            let (content, cut) = budget.cut_text(whole, usize::MAX, room - overhead);
            if cut && content.is_empty() {
                full = true;
                omitted.push(row.span_id);
                continue;
            }
            budget.spend(overhead + budget.cost(content) - 2);
            total += content.chars().count() as u64;
            entry.content_hash = sha256_hex(content.as_bytes());
            entry.content = content.to_owned();
            check_read(&self.inner.store, &doc, &text)?;
            entry.truncated = cut;
            full = cut;
            spans.push(entry);
        }
        Ok(SpanGetResult {
            spans,
            total_chars_returned: total,
            omitted,
        })
    }
}

/// The chunk module's strategy and `max_chunks` of a contract strategy.
fn to_strategy(s: &ChunkStrategy) -> (Strategy, Option<u64>) {
    match s {
        ChunkStrategy::Fixed(f) => (
            Strategy::Fixed {
                chunk_size: f.chunk_size,
                overlap: f.overlap,
            },
            f.max_chunks,
        ),
        ChunkStrategy::Lines(l) => (
            Strategy::Lines {
                line_count: l.line_count,
                overlap: l.overlap,
            },
            l.max_chunks,
        ),
        ChunkStrategy::Delimiter(d) => (
            Strategy::Delimiter {
                pattern: d.delimiter.clone(),
            },
            d.max_chunks,
        ),
    }
}
