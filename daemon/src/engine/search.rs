//! `rlm.search.query`: BM25 over passages with the context centred on the
//! matched terms, and regex / literal scans over the stored texts.

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use rlm::ToolError;
use rlm::tokens::TokenCounter;
use rlm::tools::{
    Highlight, MatchUnit, SearchArgs, SearchMatch, SearchMethod, SearchResult, SpanRef,
};

use super::context::TimedProgress;
use super::docs::DocRow;
use super::index::SessionIndex;
use super::integrity::{check_read, open_text};
use super::response::{json_measure, push_escaped};
use super::{CallContext, Engine, ResponseBudget, SessionRow, fit};
use crate::search::bm25::{self, IndexError};
use crate::search::markup;
use crate::search::scan::{ScanMethod, Scanner};
use crate::search::units::{self, Syntax};
use crate::text::Text;

/// Matches one search may return.
const MAX_LIMIT: u64 = 1000;
/// Context one match may carry.
const MAX_CONTEXT_CHARS: u64 = 100_000;
/// The most distinct words (after analysis) a bm25 query may have. A
/// query is words to find, a sentence or a paragraph; each word is looked
/// up in every segment with its forms and scored in every passage that
/// holds it, so a query of 100 000 words took 24 s and 400 MB.
const MAX_QUERY_WORDS: usize = 1024;

/// Extra matches a scan keeps per document so that hits near the last
/// returned one can still be highlighted.
const SCAN_SLACK: usize = 16;

/// Sessions whose documents the scan cache keeps.
const SCAN_CACHE_SESSIONS: usize = 16;

/// Bytes a piece of a scan searches before it counts them in the scan's
/// progress (and looks at the clock): a window of a large text, some 16
/// documents of 16 KB.
const SCAN_PROGRESS_BYTES: u64 = crate::search::scan::WINDOW_BYTES as u64;

/// The documents of a session with their texts, as of one generation of the session
/// (documents are only ever appended, and each load bumps the generation).
pub(crate) struct SessionTexts {
    session_id: String,
    generation: u64,
    docs: Vec<DocRow>,
    texts: Vec<Arc<Text>>,
}

/// The documents the last scans of recent sessions read (`Inner::scan_cache`): a scan
/// of every document then neither reads the document rows again nor looks up each text,
/// which together cost more than a literal scan of a 12 MB session.
pub(crate) type ScanCache = Mutex<Vec<Arc<SessionTexts>>>;

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
    /// The definition or section the hit is in.
    unit: Option<MatchUnit>,
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
        if method == SearchMethod::Bm25 {
            // Counted as a default index analyses them (before any index is opened).
            let words = crate::search::analyzer::distinct_terms(
                &args.query,
                crate::search::analyzer::AnalyzerOptions::DEFAULT,
            )
            .len();
            if words > MAX_QUERY_WORDS {
                return Err(ToolError::invalid(format!(
                    "the bm25 query has {words} distinct words; at most {MAX_QUERY_WORDS} are searched: keep the words that matter (a sentence or a paragraph), or split it into several searches"
                ))
                .with("field", "query"));
            }
        }
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
                    Some(docs) => {
                        let texts = self.texts_of(&docs)?;
                        Arc::new(SessionTexts {
                            session_id: session.id.clone(),
                            generation: session.generation,
                            docs,
                            texts,
                        })
                    }
                    None => self.session_texts(session)?,
                };
                (
                    self.scan(&scanner, &docs, limit as usize, context_chars, ctx)?,
                    false,
                )
            }
        };
        let (found, total_matches) = found;
        let mut budget = ResponseBudget::for_response(session);
        let all: Vec<SearchMatch> = found
            .into_iter()
            .map(|f| {
                let (highlight_start, highlight_end) = f.primary;
                SearchMatch {
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
                    unit: f.unit,
                }
            })
            .collect();
        // Usually far below the cap, with few highlights: then no need to
        // measure each match exactly. Otherwise cut, never drop (`fit.rs`).
        // The loose bound (no token counted) first; then the tighter one.
        let bound = |string: fn(&str) -> Cost| -> usize {
            all.iter()
                .map(|m| units_bound(&budget, m, string) + 1)
                .sum()
        };
        let fits = budget.fits(bound(Cost::string_loose)) || budget.fits(bound(Cost::string));
        let (matches, truncated) = if fits && all.iter().all(few_highlights) {
            (all, false)
        } else {
            fit::take_matches(all, &mut budget)
        };
        let index_built = method == SearchMethod::Bm25
            || self
                .inner
                .indexes
                .is_current(&session.id, session.generation);
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
        let (mut idx, mut built) = manager.get(session, ctx)?;
        // A hit next to one already taken can fall inside its context, so some hits are
        // dropped as duplicates: ask for a few more hits than `limit` (dropping more than half of
        // `limit` is rare), and only when they do not make `limit` distinct matches, for
        // three times as many. A smaller top-k is a cheaper search.
        let most = limit * 3 + 8;
        let mut want = (limit + limit / 2 + 4).min(most);
        let out = loop {
            let keys: Option<Vec<u64>> = only.map(|d| idx.keys_of(d));
            let (hits, terms) = match idx.view.search_terms(query, want, keys.as_deref()) {
                Ok(h) => h,
                Err(IndexError::Damaged(why)) => {
                    tracing::warn!(session_id = %session.id, %why, "search index damaged during a search; making it afresh");
                    (idx, built) = manager.rebuild_damaged(session, ctx)?;
                    let keys: Option<Vec<u64>> = only.map(|d| idx.keys_of(d));
                    idx.view
                        .search_terms(query, want, keys.as_deref())
                        .map_err(|e| ToolError::internal(format!("the search index was made afresh and still fails: {e}; a retry will not help, `method: \"literal\"` and `\"regex\"` search without it")))?
                }
                Err(e) => {
                    return Err(ToolError::internal(format!(
                        "searching the index failed: {e}; `method: \"literal\"` and `\"regex\"` search without it"
                    )));
                }
            };
            let exhausted = hits.len() < want;
            let out =
                self.bm25_matches(&session.id, &idx, only, hits, &terms, limit, context_chars)?;
            if out.len() >= limit || exhausted || want >= most {
                break out;
            }
            want = most;
        };
        let n = out.len() as u64;
        Ok(((out, n), built))
    }

    /// The distinct matches of `hits` (best first), at most `limit`: each hit
    /// is a match in every document of the session (of `only`, when given)
    /// that holds the hit's text.
    #[allow(clippy::too_many_arguments)]
    fn bm25_matches(
        &self,
        session_id: &str,
        idx: &SessionIndex,
        only: Option<&[DocRow]>,
        hits: Vec<bm25::PassageHit>,
        terms: &[bm25::QueryTerm],
        limit: usize,
        context_chars: u64,
    ) -> Result<Vec<Found>, ToolError> {
        // Contexts are analysed as the index was, so what is highlighted is what matched.
        let matcher = bm25::TermMatcher::new(terms, idx.view.options());
        let wanted: Option<std::collections::HashSet<u64>> =
            only.map(|d| d.iter().map(|d| d.seq).collect());
        // The rows of the documents hits land in, read once each.
        // With their sources: they tell how to read a text's units.
        let mut rows: std::collections::HashMap<u64, (DocRow, String)> =
            std::collections::HashMap::new();
        let window = context_chars.max(1) as usize;
        let mut out: Vec<Found> = Vec::new();
        let mut taken: Vec<(u64, u64, u64)> = Vec::new(); // (seq, start, end) of returned contexts
        for hit in hits {
            if out.len() >= limit {
                break;
            }
            let holders: Vec<u64> = idx
                .holders_of(hit.key)
                .filter(|seq| wanted.as_ref().is_none_or(|w| w.contains(seq)))
                .collect();
            let unread: Vec<u64> = holders
                .iter()
                .copied()
                .filter(|seq| !rows.contains_key(seq))
                .collect();
            if !unread.is_empty() {
                for (d, source) in self.inner.store.documents_at(session_id, &unread)? {
                    rows.insert(d.seq, (d, source));
                }
            }
            let Some((first, _)) = holders.iter().find_map(|seq| rows.get(seq)) else {
                continue;
            };
            let text = self.text_of(first)?;
            let passage = slice(&text, hit.start_char, hit.end_char);
            // Terms are found where the index found them: an HTML page's
            // markup masked (same offsets), so neither the cluster nor a
            // highlight lands in a tag.
            let html = markup::is_html(text.as_str());
            // One search of the passage serves the cluster and, mostly, the highlights.
            let occ = matcher.occurrences(&markup::as_indexed(html, passage));
            let (cs, ce) = bm25::best_cluster_in(&occ, terms, window)
                .map(|(a, b)| (hit.start_char + a as u64, hit.start_char + b as u64))
                .unwrap_or((hit.start_char, hit.start_char));
            let fresh: Vec<u64> = holders
                .into_iter()
                .filter(|seq| rows.contains_key(seq))
                .filter(|&i| {
                    !taken
                        .iter()
                        .any(|&(o, s, e)| o == i && (cs < e && ce > s || cs == s))
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let (start, end) = centre(cs, ce, context_chars, text.len_chars());
            let inside = start >= hit.start_char && end <= hit.end_char;
            let (context, found) = if inside {
                let (from, to) = (
                    (start - hit.start_char) as usize,
                    (end - hit.start_char) as usize,
                );
                let shifted: Vec<(usize, usize, usize)> = occ
                    .iter()
                    .filter(|&&(s, e, _)| s >= from && e <= to)
                    .map(|&(s, e, i)| (s - from, e - from, i))
                    .collect();
                (
                    slice_str(passage, from, to),
                    bm25::highlights_in(&shifted, terms),
                )
            } else {
                let context = slice(&text, start, end);
                let read = markup::as_indexed(html, context);
                (
                    context,
                    bm25::highlights_in(&matcher.occurrences(&read), terms),
                )
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
            check_read(&self.inner.store, first, &text)?;
            for i in fresh {
                if out.len() >= limit {
                    break;
                }
                taken.push((i, start, end));
                let (row, source) = &rows[&i];
                out.push(Found {
                    doc_id: row.doc_id.clone(),
                    start,
                    end,
                    score: f64::from(hit.score),
                    context: context.to_owned(),
                    primary,
                    highlights: highlights.clone(),
                    unit: unit_of(&text, source, start + primary.0),
                });
            }
        }
        Ok(out)
    }

    /// Drops what the scan cache holds of every session.
    pub(crate) fn forget_all_scan_texts(&self) {
        self.inner
            .scan_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Drops what the scan cache holds of a session (on close).
    pub(crate) fn forget_scan_texts(&self, session_id: &str) {
        let mut cache = self
            .inner
            .scan_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.retain(|e| e.session_id != session_id);
    }

    /// Every document of the session with its text, from the scan cache when the
    /// session's documents have not changed since the last scan.
    fn session_texts(&self, session: &SessionRow) -> Result<Arc<SessionTexts>, ToolError> {
        let cache = &self.inner.scan_cache;
        let lock = || cache.lock().unwrap_or_else(|p| p.into_inner());
        // An entry with a text of a pack since found cut short is stale.
        if let Some(e) = lock().iter().find(|e| {
            e.session_id == session.id
                && e.generation == session.generation
                && !e.texts.iter().any(|t| t.damaged())
        }) {
            return Ok(e.clone());
        }
        let docs = self.docs_of(&session.id)?;
        let texts = self.texts_of(&docs)?;
        let texts = Arc::new(SessionTexts {
            session_id: session.id.clone(),
            generation: session.generation,
            docs,
            texts,
        });
        let mut cache = lock();
        cache.retain(|e| e.session_id != session.id);
        if cache.len() >= SCAN_CACHE_SESSIONS {
            cache.remove(0);
        }
        cache.push(texts.clone());
        Ok(texts)
    }

    /// The verified texts of `docs`, in order, opened in parallel (the
    /// first open of a text hashes it).
    fn texts_of(&self, docs: &[DocRow]) -> Result<Vec<Arc<Text>>, ToolError> {
        let store = &self.inner.store;
        docs.par_iter().map(|d| open_text(store, d)).collect()
    }

    fn scan(
        &self,
        scanner: &Scanner,
        session_texts: &SessionTexts,
        limit: usize,
        context_chars: u64,
        ctx: &CallContext,
    ) -> Result<(Vec<Found>, u64), ToolError> {
        let docs = &session_texts.docs;
        let texts = &session_texts.texts;
        let keep = limit + SCAN_SLACK;
        let progress = TimedProgress::new(
            texts.iter().map(|t| t.as_str().len() as u64).sum(),
            "searching texts (bytes)",
        );
        // Every document is scanned (all matches are counted); the first few
        // matches of each are kept, in byte offsets. A cancel stops the scan
        // between documents, and inside one between the windows of a
        // pattern that allows them (`Scanner::for_each_match`).
        // Each piece of the parallel scan counts its bytes on its own and
        // adds them to the shared count every `SCAN_PROGRESS_BYTES` (a
        // shared count and a clock read per document cost more than a
        // literal scan of most documents).
        let per_doc: Vec<(u64, Vec<(usize, usize)>)> = texts
            .par_iter()
            .map_init(
                || 0u64,
                |unsent, t| {
                    if ctx.cancelled() {
                        return (0, Vec::new());
                    }
                    let mut first = Vec::new();
                    let mut count = 0u64;
                    let stop = |bytes: usize| {
                        *unsent += bytes as u64;
                        if *unsent >= SCAN_PROGRESS_BYTES {
                            progress.advance(std::mem::take(unsent), ctx);
                        }
                        ctx.cancelled()
                    };
                    // A stopped scan's figures are not used: the call fails below.
                    let _ = scanner.for_each_match(t.as_str(), t.is_ascii(), stop, |a, b| {
                        if first.len() < keep {
                            first.push((a, b));
                        }
                        count += 1;
                    });
                    (count, first)
                },
            )
            .collect();
        ctx.check_cancel()?;
        let total: u64 = per_doc.iter().map(|(c, _)| *c).sum();
        let mut out = Vec::new();
        // Where each match's hit is: (its document's index, its first char).
        let mut hits: Vec<(usize, u64)> = Vec::new();
        'docs: for (di, ((doc, text), (_, ms))) in docs.iter().zip(texts).zip(&per_doc).enumerate()
        {
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
                    unit: None,
                });
                hits.push((di, ms_));
            }
        }
        // The units of the matches, read as their documents' sources say.
        let mut seqs: Vec<u64> = hits.iter().map(|&(di, _)| docs[di].seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let sources: std::collections::HashMap<u64, String> = self
            .inner
            .store
            .documents_at(&session_texts.session_id, &seqs)?
            .into_iter()
            .map(|(d, source)| (d.seq, source))
            .collect();
        for (found, &(di, at)) in out.iter_mut().zip(&hits) {
            if let Some(source) = sources.get(&docs[di].seq) {
                found.unit = unit_of(&texts[di], source, at);
            }
        }
        // A text of a pack cut short while it was scanned read as zeros.
        for (doc, text) in docs.iter().zip(texts) {
            check_read(&self.inner.store, doc, text)?;
        }
        Ok((out, total))
    }
}

/// The unit of `text` around char `at`, read as the name `source` says
/// (`search::units`).
fn unit_of(text: &Text, source: &str, at: u64) -> Option<MatchUnit> {
    // An HTML page is told by its content, as the index tells it.
    let syntax = if markup::is_html(text.as_str()) {
        Syntax::Html
    } else {
        units::syntax_of(source)?
    };
    let u = units::unit_at_lined(
        text.as_str(),
        text.byte_of(at.min(text.len_chars())),
        syntax,
        &|b| text.line_of(b),
    )?;
    Some(MatchUnit {
        kind: u.kind.to_owned(),
        name: u.name,
        line_start: u.line_start,
        line_end: u.line_end,
        start: text.char_of(u.start),
        end: text.char_of(u.end),
        within: u.within,
    })
}

/// Characters and estimated tokens of a piece of JSON, or at least them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cost {
    chars: usize,
    tokens: u64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost {
            chars: self.chars + other.chars,
            tokens: self.tokens + other.tokens,
        }
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        *self = *self + other;
    }
}

impl Cost {
    /// At least what `s` costs inside a JSON string (its quotes are its
    /// skeleton's): its bytes, and five more for each byte JSON escapes
    /// (`\u001f`: six bytes for one); its token estimate with its escapes. The
    /// estimate adds up across a quote, a colon or a comma (each ends the
    /// counter's run), so a string counts inside a piece what it counts alone.
    fn string(s: &str) -> Cost {
        let mut tokens = TokenCounter::default();
        s.chars().for_each(|c| push_escaped(&mut tokens, c));
        Cost {
            chars: Cost::string_loose(s).chars,
            tokens: tokens.total(),
        }
    }

    /// At least what [`Cost::string`] says `s` costs, without counting its
    /// tokens: the estimate counts at most a token a byte (`rlm::tokens`),
    /// and an escape at most one a character of its six, so the characters
    /// bound the tokens too. A byte scan instead of a walk of the chars.
    fn string_loose(s: &str) -> Cost {
        let escaped = s
            .bytes()
            .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
            .count();
        let chars = s.len() + 5 * escaped;
        Cost {
            chars,
            tokens: chars as u64,
        }
    }

    /// At least what a u64 adds to its skeleton's `0`: its other digits, and a
    /// token for each two.
    fn number(n: u64) -> Cost {
        let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
        Cost {
            chars: digits - 1,
            tokens: digits.div_ceil(2) as u64,
        }
    }

    /// At least what an f64 adds to its skeleton's `0.0`: the longest JSON text
    /// of one (`-1.7976931348623157e308`), a token a character.
    const FLOAT: Cost = Cost {
        chars: 24,
        tokens: 24,
    };

    /// At least what JSON punctuation and keys cost: a character and a token a
    /// byte.
    const fn raw(s: &str) -> Cost {
        Cost {
            chars: s.len(),
            tokens: s.len() as u64,
        }
    }

    /// A list's separator.
    const COMMA: Cost = Cost::raw(",");

    /// A string's two quotes.
    const QUOTES: Cost = Cost::raw("\"\"");
}

/// What a unit's names around it add to its skeleton, besides the names (left
/// out when there are none).
const WITHIN_KEY: &str = r#","within":[]"#;

/// The keys and punctuation of a match (its unit `null`), of a highlight and of
/// a unit, with empty strings and zeros: measured once.
fn skeletons() -> (Cost, Cost, Cost) {
    static SKELETONS: OnceLock<(Cost, Cost, Cost)> = OnceLock::new();
    *SKELETONS.get_or_init(|| {
        let empty = SearchMatch {
            doc_id: String::new(),
            span: SpanRef {
                doc_id: String::new(),
                start: 0,
                end: 0,
            },
            span_id: None,
            score: 0.0,
            context: String::new(),
            highlight_start: 0,
            highlight_end: 0,
            highlights: Vec::new(),
            unit: None,
        };
        let h = Highlight {
            start: 0,
            end: 0,
            term: String::new(),
        };
        let unit = MatchUnit {
            kind: String::new(),
            name: String::new(),
            line_start: 0,
            line_end: 0,
            start: 0,
            end: 0,
            within: Vec::new(),
        };
        let of = |(chars, tokens)| Cost { chars, tokens };
        (
            of(json_measure(&empty)),
            of(json_measure(&h)),
            of(json_measure(&unit)),
        )
    })
}

/// At least what `m` costs in a response, in characters and in estimated tokens,
/// without serializing it: its skeletons, numbers and strings, each bounded,
/// the strings by `string` ([`Cost::string`], or the looser and cheaper
/// [`Cost::string_loose`]).
fn json_bound(m: &SearchMatch, string: fn(&str) -> Cost) -> Cost {
    let (matched, _, unit) = skeletons();
    let mut cost = matched
        + string(&m.doc_id)
        + string(&m.span.doc_id)
        + Cost::number(m.span.start)
        + Cost::number(m.span.end)
        + Cost::FLOAT
        + string(&m.context)
        + Cost::number(m.highlight_start)
        + Cost::number(m.highlight_end)
        + highlights_bound(m, string);
    if let Some(u) = &m.unit {
        cost += unit
            + string(&u.kind)
            + string(&u.name)
            + Cost::number(u.line_start)
            + Cost::number(u.line_end)
            + Cost::number(u.start)
            + Cost::number(u.end);
        if !u.within.is_empty() {
            cost += Cost::raw(WITHIN_KEY);
            for name in &u.within {
                cost += string(name) + Cost::QUOTES + Cost::COMMA;
            }
        }
    }
    if let Some(id) = &m.span_id {
        // Quoted, in place of `null`.
        cost += string(id) + Cost::QUOTES;
    }
    cost
}

/// At least `budget.cost(m)` ([`json_bound`], its strings bounded by `string`):
/// caps in tokens weigh a token as several characters, so with
/// [`Cost::string_loose`] a bound is several times the size of a text, and
/// only [`Cost::string`]'s count of the tokens tells a large answer that fits.
fn units_bound(budget: &ResponseBudget, m: &SearchMatch, string: fn(&str) -> Cost) -> usize {
    let cost = json_bound(m, string);
    budget.units(cost.chars, cost.tokens)
}

/// At least what `m`'s highlights cost: each its skeleton, numbers and term
/// (bounded by `string`), a comma between.
fn highlights_bound(m: &SearchMatch, string: fn(&str) -> Cost) -> Cost {
    let (_, highlight, _) = skeletons();
    let mut cost = Cost::default();
    for h in &m.highlights {
        cost +=
            highlight + Cost::number(h.start) + Cost::number(h.end) + string(&h.term) + Cost::COMMA;
    }
    cost
}

/// Whether `m`'s highlights surely weigh no more than their allowance (then
/// `fit::bound_highlights` would keep them all): a context costs at least
/// its characters and two quotes.
fn few_highlights(m: &SearchMatch) -> bool {
    // Characters only: the loose bound's are the exact one's.
    highlights_bound(m, Cost::string_loose).chars
        <= (m.context.chars().count() + 2).max(fit::HIGHLIGHTS_FLOOR)
}

/// Chars `[start, end)` of `text` (clamped), without walking an ASCII text.
fn slice(text: &Text, start: u64, end: u64) -> &str {
    if text.is_ascii() {
        let s = text.as_str();
        let end = (end as usize).min(s.len());
        &s[(start as usize).min(end)..end]
    } else {
        text.slice(start, end)
    }
}

/// Chars `[start, end)` of `s` (clamped).
fn slice_str(s: &str, start: usize, end: usize) -> &str {
    if s.is_ascii() {
        let end = end.min(s.len());
        &s[start.min(end)..end]
    } else {
        let b0 = crate::text::advance_chars(s, 0, start as u64);
        let b1 = crate::text::advance_chars(s, b0, end.saturating_sub(start) as u64);
        &s[b0..b1]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn a_match(doc_id: &str, context: &str, score: f64, terms: &[&str]) -> SearchMatch {
        SearchMatch {
            doc_id: doc_id.to_owned(),
            span: SpanRef {
                doc_id: doc_id.to_owned(),
                start: u64::MAX - 1,
                end: u64::MAX,
            },
            span_id: None,
            score,
            context: context.to_owned(),
            highlight_start: u64::MAX,
            highlight_end: 12345,
            highlights: terms
                .iter()
                .map(|t| Highlight {
                    start: u64::MAX,
                    end: 0,
                    term: (*t).to_owned(),
                })
                .collect(),
            unit: None,
        }
    }

    #[test]
    fn scans_see_every_load() {
        use serde_json::json;
        let dir = tempfile::tempdir().unwrap();
        let mut config = super::super::EngineConfig::new(dir.path());
        config.background_index = false;
        let engine = Engine::open(config).unwrap();
        let ctx = CallContext::default();
        let call = |tool: &str, args: serde_json::Value| engine.call(tool, args, &ctx).unwrap();
        let sid = call("rlm.session.create", json!({}))["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let load = |text: &str| {
            call(
                "rlm.docs.load",
                json!({"session_id": sid, "sources": [{"type": "inline", "content": text}]}),
            );
        };
        let count = |method: &str| {
            call(
                "rlm.search.query",
                json!({"session_id": sid, "query": "needle", "method": method}),
            )["total_matches"]
                .as_u64()
                .unwrap()
        };
        load("one needle here");
        assert_eq!((count("literal"), count("regex")), (1, 1));
        load("two needles: needle");
        assert_eq!((count("literal"), count("regex")), (3, 3));
        assert_eq!((count("literal"), count("regex")), (3, 3));
        // Another engine on another data folder keeps its own documents.
        let dir2 = tempfile::tempdir().unwrap();
        let engine2 = Engine::open(super::super::EngineConfig::new(dir2.path())).unwrap();
        let sid2 = engine2.call("rlm.session.create", json!({}), &ctx).unwrap()["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = engine2
            .call(
                "rlm.search.query",
                json!({"session_id": sid2, "query": "needle", "method": "literal"}),
                &ctx,
            )
            .unwrap();
        assert_eq!(r["total_matches"], 0);
        assert_eq!(count("literal"), 3);
    }

    fn with_unit(m: SearchMatch, name: &str) -> SearchMatch {
        SearchMatch {
            unit: Some(MatchUnit {
                kind: "definition".into(),
                name: name.to_owned(),
                line_start: u64::MAX,
                line_end: u64::MAX,
                start: u64::MAX,
                end: u64::MAX,
                within: vec![name.repeat(2); 3],
            }),
            ..m
        }
    }

    proptest::proptest! {
        /// A string's loose cost has its characters and at least its tokens.
        #[test]
        fn a_strings_loose_cost_bounds_its_cost(s in proptest::prelude::any::<String>()) {
            let (loose, exact) = (Cost::string_loose(&s), Cost::string(&s));
            proptest::prop_assert_eq!(loose.chars, exact.chars);
            proptest::prop_assert!(loose.tokens >= exact.tokens, "{} < {}", loose.tokens, exact.tokens);
        }
    }

    #[test]
    fn json_bound_is_never_below_the_size() {
        let nasty = "\u{0}\u{1f}\"\\\n\t\r\u{8}\u{c}é日😀 plain";
        for m in [
            a_match("", "", 0.0, &[]),
            a_match(
                "3f2c9a4e-1111-4222-8333-444455556666",
                "context",
                1.5,
                &["x"],
            ),
            a_match(
                nasty,
                nasty,
                -1.797_693_134_862_315_7e308,
                &[nasty, "", "a"],
            ),
            a_match("d", &"\u{1}".repeat(500), f64::NAN, &["\u{1}"; 20]),
            a_match("d", "ctx", f64::MIN_POSITIVE, &[]),
            with_unit(a_match("d", nasty, 0.5, &[nasty]), &nasty.repeat(9)),
            // What the token estimate counts most of a byte: punctuation, lone
            // digits, chars outside ASCII, escapes.
            a_match(
                "d",
                &"!.;\"1 2 3 é日😀\u{1}\\".repeat(40),
                2.0,
                &["!!", "7", "😀", "\u{1}"],
            ),
            with_unit(a_match("d", "{}()", 0.5, &["{"]), &"(!)".repeat(30)),
            SearchMatch {
                span_id: Some(nasty.repeat(3)),
                ..a_match("d", "ctx", 1.0, &[])
            },
        ] {
            let exact = ResponseBudget::of(usize::MAX).cost(&m);
            let bound = json_bound(&m, Cost::string).chars;
            assert!(bound >= exact, "{bound} < {exact} for {m:?}");
            // The bound holds in every unit: caps in tokens weigh a token
            // as several characters.
            for (chars, tokens) in [(50_000, 12_500), (1_000, 1), (7, 1_000_000)] {
                let budget = ResponseBudget::with_caps(chars, tokens);
                let (bound, exact) = (units_bound(&budget, &m, Cost::string), budget.cost(&m));
                assert!(bound >= exact, "{bound} < {exact} for {m:?}");
                // The loose bound (strings' tokens taken as their characters)
                // is above the bound.
                let loose = units_bound(&budget, &m, Cost::string_loose);
                assert!(loose >= bound, "{loose} < {bound} for {m:?}");
            }
        }
    }

    #[test]
    fn slices_are_text_slices() {
        for s in ["", "plain ascii text", "é日😀 mixed ascii é"] {
            let text = Text::from_string(s.to_owned());
            let n = text.len_chars();
            for a in 0..=n + 2 {
                for b in 0..=n + 2 {
                    assert_eq!(slice(&text, a, b), text.slice(a, b), "{s:?} {a} {b}");
                    if a <= b {
                        let (a, b) = (a as usize, b as usize);
                        assert_eq!(
                            slice_str(s, a, b),
                            text.slice(a as u64, b as u64),
                            "{s:?} {a} {b}"
                        );
                    }
                }
            }
        }
    }
}
