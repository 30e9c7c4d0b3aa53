//! `rlm.search.query`: BM25 over passages with the context centred on the
//! matched terms, and regex / literal scans over the stored texts.

use std::sync::Arc;

use rayon::prelude::*;

use rlm::ToolError;
use rlm::tools::{Highlight, SearchArgs, SearchMatch, SearchMethod, SearchResult, SpanRef};

use super::docs::DocRow;
use super::{CallContext, Engine, SessionRow, json_chars, list_budget};
use crate::search::bm25::{self, IndexError};
use crate::search::scan::{ScanMethod, Scanner};
use crate::text::Text;

/// Matches one search may return.
const MAX_LIMIT: u64 = 1000;
/// Context one match may carry.
const MAX_CONTEXT_CHARS: u64 = 100_000;
/// Extra matches a scan keeps per document so that hits near the last
/// returned one can still be highlighted.
const SCAN_SLACK: usize = 16;

/// A match before it is cut to the response cap.
struct Found {
    doc_id: String,
    start: u64,
    end: u64,
    score: f64,
    context: String,
    /// The hit this match stands for, relative to `context`.
    primary: (u64, u64),
    /// Every hit inside `context`, in order.
    highlights: Vec<Highlight>,
}

impl Engine {
    pub(crate) fn search_query(
        &self,
        session: &SessionRow,
        args: SearchArgs,
        ctx: &CallContext,
    ) -> Result<SearchResult, ToolError> {
        let method = args.method.unwrap_or_default();
        let limit = args.limit.unwrap_or(10);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ToolError::invalid(format!(
                "limit {limit} is out of range; use 1 to {MAX_LIMIT}"
            ))
            .with("field", "limit"));
        }
        let context_chars = args.context_chars.unwrap_or(200);
        if context_chars > MAX_CONTEXT_CHARS {
            return Err(ToolError::invalid(format!(
                "context_chars {context_chars} is out of range; use 0 to {MAX_CONTEXT_CHARS}"
            ))
            .with("field", "context_chars"));
        }
        if args.query.trim().is_empty() {
            return Err(ToolError::invalid("query is empty; give words to search for (bm25), a pattern (regex) or a substring (literal)")
                .with("field", "query"));
        }
        let only: Option<Vec<DocRow>> = match &args.doc_ids {
            Some(ids) => Some(
                ids.iter()
                    .map(|id| self.doc(session, id))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        let (found, built_now) = match method {
            SearchMethod::Bm25 => {
                let (found, built) = self.bm25(
                    session,
                    &args.query,
                    only.as_deref(),
                    limit as usize,
                    context_chars,
                    ctx,
                )?;
                (found, built)
            }
            SearchMethod::Regex | SearchMethod::Literal => {
                let scan = if method == SearchMethod::Regex {
                    ScanMethod::Regex
                } else {
                    ScanMethod::Literal
                };
                let scanner = Scanner::new(scan, &args.query).map_err(|e| {
                    ToolError::invalid(format!(
                        "{} {:?} rejected: {e}",
                        method.as_str(),
                        args.query
                    ))
                    .with("field", "query")
                })?;
                let docs = match only {
                    Some(d) => d,
                    None => self.docs_of(&session.id)?,
                };
                (
                    self.scan(&scanner, &docs, limit as usize, context_chars, ctx)?,
                    false,
                )
            }
        };
        let (found, total_matches) = found;
        let mut budget = list_budget(session);
        let mut matches = Vec::with_capacity(found.len());
        let mut truncated = false;
        for f in found {
            let (highlight_start, highlight_end) = f.primary;
            let m = SearchMatch {
                span: SpanRef {
                    doc_id: f.doc_id.clone(),
                    start: f.start,
                    end: f.end,
                },
                doc_id: f.doc_id,
                span_id: None,
                score: f.score,
                context: f.context,
                highlight_start,
                highlight_end,
                highlights: f.highlights,
            };
            let cost = json_chars(&m) + 1;
            if cost > budget {
                truncated = true;
                break;
            }
            budget -= cost;
            matches.push(m);
        }
        let index_built = method == SearchMethod::Bm25
            || self
                .inner
                .indexes
                .is_current(self, &session.id, session.generation);
        Ok(SearchResult {
            matches,
            total_matches,
            truncated,
            index_built,
            index_built_this_call: built_now,
        })
    }

    fn bm25(
        &self,
        session: &SessionRow,
        query: &str,
        only: Option<&[DocRow]>,
        limit: usize,
        context_chars: u64,
        ctx: &CallContext,
    ) -> Result<((Vec<Found>, u64), bool), ToolError> {
        let manager = &self.inner.indexes;
        let (mut idx, mut built) = manager.get(self, session, ctx)?;
        let ords: Option<Vec<u64>> = only.map(|d| d.iter().map(|d| d.seq).collect());
        // Overlapping passages can hit the same place: ask for more and keep distinct ones.
        let want = limit * 3 + 8;
        let hits = match idx.index.search(query, want, ords.as_deref()) {
            Ok(h) => h,
            Err(IndexError::Damaged(why)) => {
                tracing::warn!(session_id = %session.id, %why, "search index damaged during a search; rebuilding it");
                (idx, built) = manager.rebuild_damaged(self, session, ctx)?;
                idx.index
                    .search(query, want, ords.as_deref())
                    .map_err(|e| ToolError::internal(format!("{e}; retry the search")))?
            }
            Err(e) => return Err(ToolError::internal(format!("{e}; retry the search"))),
        };
        let terms = idx.index.query_terms(query);
        // Contexts are analysed as the index was, so what is highlighted is what matched.
        let opts = idx.index.options();
        let window = context_chars.max(1) as usize;
        let mut out: Vec<Found> = Vec::new();
        let mut taken: Vec<(u64, u64, u64)> = Vec::new(); // (ord, start, end) of returned contexts
        for hit in hits {
            if out.len() >= limit {
                break;
            }
            let Some(doc) = idx.docs.get(hit.doc_ord as usize) else {
                continue;
            };
            let text = self.inner.store.text(&doc.hash)?;
            let passage = text.slice(hit.start_char, hit.end_char);
            // One analysis of the passage serves the cluster and, mostly, the highlights.
            let occ = bm25::occurrences(passage, &terms, opts);
            let (cs, ce) = bm25::best_cluster_in(&occ, &terms, window)
                .map(|(a, b)| (hit.start_char + a as u64, hit.start_char + b as u64))
                .unwrap_or((hit.start_char, hit.start_char));
            if taken
                .iter()
                .any(|&(o, s, e)| o == hit.doc_ord && (cs < e && ce > s || cs == s))
            {
                continue;
            }
            let (start, end) = centre(cs, ce, context_chars, text.len_chars());
            let context = text.slice(start, end);
            let inside = start >= hit.start_char && end <= hit.end_char;
            let found = if inside {
                let (from, to) = (
                    (start - hit.start_char) as usize,
                    (end - hit.start_char) as usize,
                );
                let shifted: Vec<(usize, usize, usize)> = occ
                    .iter()
                    .filter(|&&(s, e, _)| s >= from && e <= to)
                    .map(|&(s, e, i)| (s - from, e - from, i))
                    .collect();
                bm25::highlights_in(&shifted, &terms)
            } else {
                bm25::highlights_with(context, &terms, opts)
            };
            let highlights: Vec<Highlight> = found
                .into_iter()
                .map(|(s, e, term)| Highlight {
                    start: s as u64,
                    end: e as u64,
                    term,
                })
                .collect();
            // The first hit of the cluster the context is centred on.
            let primary = highlights
                .iter()
                .find(|h| h.start >= cs - start)
                .or(highlights.first())
                .map_or((0, 0), |h| (h.start, h.end));
            taken.push((hit.doc_ord, start, end));
            out.push(Found {
                doc_id: doc.doc_id.clone(),
                start,
                end,
                score: f64::from(hit.score),
                context: context.to_owned(),
                primary,
                highlights,
            });
        }
        let n = out.len() as u64;
        Ok(((out, n), built))
    }

    fn scan(
        &self,
        scanner: &Scanner,
        docs: &[DocRow],
        limit: usize,
        context_chars: u64,
        ctx: &CallContext,
    ) -> Result<(Vec<Found>, u64), ToolError> {
        let texts = docs
            .iter()
            .map(|d| self.inner.store.text(&d.hash))
            .collect::<Result<Vec<Arc<Text>>, _>>()?;
        let keep = limit + SCAN_SLACK;
        // Every document is scanned (all matches are counted); the first few
        // matches of each are kept, in byte offsets.
        let per_doc: Vec<(u64, Vec<(usize, usize)>)> = texts
            .par_iter()
            .map(|t| {
                if ctx.cancelled() {
                    return (0, Vec::new());
                }
                let mut first = Vec::new();
                let mut count = 0u64;
                for m in scanner.find_iter_hinted(t.as_str(), t.is_ascii()) {
                    if first.len() < keep {
                        first.push(m);
                    }
                    count += 1;
                }
                (count, first)
            })
            .collect();
        ctx.check_cancel()?;
        let total: u64 = per_doc.iter().map(|(c, _)| *c).sum();
        let mut out = Vec::new();
        'docs: for ((doc, text), (_, ms)) in docs.iter().zip(&texts).zip(&per_doc) {
            let chars: Vec<(u64, u64)> = ms
                .iter()
                .map(|&(b0, b1)| (text.char_of(b0), text.char_of(b1)))
                .collect();
            for &(ms_, me) in &chars {
                if out.len() >= limit {
                    break 'docs;
                }
                let (start, end) = if me - ms_ >= context_chars {
                    (ms_, ms_ + context_chars)
                } else {
                    centre(ms_, me, context_chars, text.len_chars())
                };
                let context = text.slice(start, end);
                // Every kept match that starts inside the context, cut at its end.
                let highlights = chars
                    .iter()
                    .filter(|&&(s, _)| s >= start && (s < end || s == ms_))
                    .map(|&(s, e)| Highlight {
                        start: s - start,
                        end: e.min(end) - start,
                        term: text.slice(s, e.min(end)).to_owned(),
                    })
                    .collect();
                out.push(Found {
                    doc_id: doc.doc_id.clone(),
                    start,
                    end,
                    score: 1.0,
                    context: context.to_owned(),
                    primary: (ms_ - start, me.min(end) - start),
                    highlights,
                });
            }
        }
        Ok((out, total))
    }
}

/// A window of `width` chars centred on `[a, b)`, inside `[0, len)`.
fn centre(a: u64, b: u64, width: u64, len: u64) -> (u64, u64) {
    let mid = (a + b) / 2;
    let start = mid.saturating_sub(width / 2);
    let end = (start + width).min(len);
    let start = end.saturating_sub(width).min(a);
    (start, end.max(b.min(len)))
}
