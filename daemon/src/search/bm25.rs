//! The per-session BM25 index over overlapping passages (tantivy).
//!
//! Every document (identified by its `ord`, its load sequence number in the session) is cut
//! into overlapping [`passages`] of about [`PASSAGE_CHARS`] code points, and each passage is a
//! tantivy document: `doc_ord` (u64, indexed + fast), `start` / `end` (u64, fast: code point
//! offsets in the document) and `text` (analysed with the `rlm` tokenizer of
//! [`super::analyzer`], term frequencies only, not stored: the text lives in the store).
//!
//! What an index covers is proven only by its [`IndexStamp`], stored as the payload of the
//! tantivy commit. [`PassageIndex::open`] checks every file of every committed segment
//! (presence and checksum) so that a damaged index is reported as
//! [`IndexError::Damaged`] and rebuilt, never served.
//!
//! [`best_cluster`] and [`highlights`] find query terms again inside a passage (or any text)
//! with the same analysis, to centre contexts and mark hits; a [`TermMatcher`] finds them
//! mostly without analysing the text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::columnar::Column;
use tantivy::index::SegmentComponent;
use tantivy::indexer::LogMergePolicy;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, TantivyError, Term};

use super::analyzer::{self, AnalyzerOptions, TOKENIZER_NAME};

/// Nominal length of a passage, in code points.
pub const PASSAGE_CHARS: u64 = 1500;
/// Nominal distance between the starts of two consecutive passages, in code points.
pub const PASSAGE_STEP: u64 = 1200;
/// How far a passage start moves forward (to just after a `\n`) and a passage end moves
/// back (to just after a `\n`), at most, in code points.
pub const PASSAGE_SNAP: u64 = 200;
/// Version of the index layout (schema, passages, analysis); part of [`signature`].
pub const INDEX_FORMAT: &str = "v1";

const FIELD_DOC_ORD: &str = "doc_ord";
const FIELD_START: &str = "start";
const FIELD_END: &str = "end";
const FIELD_TEXT: &str = "text";

/// Total memory budget of the index writer (split between its threads).
const WRITER_MEMORY_BYTES: usize = 32 << 20;
/// At most this many indexing threads (the machine is small and shared).
const MAX_WRITER_THREADS: usize = 2;

// ---------------------------------------------------------------------------------------
// Passages

/// A window of a document: `[start_char, end_char)` in code points and the same range in
/// bytes of the UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Passage {
    pub start_char: u64,
    pub end_char: u64,
    pub start_byte: usize,
    pub end_byte: usize,
}

/// A forward-only walk over the chars of a text, counting code points.
struct Cursor<'a> {
    text: &'a str,
    /// Byte offset of the next char.
    byte: usize,
    /// Index (in chars) of the next char.
    char_pos: u64,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor {
            text,
            byte: 0,
            char_pos: 0,
        }
    }

    /// The next char: (char index, byte offset, char).
    #[inline]
    fn next(&mut self) -> Option<(u64, usize, char)> {
        let byte = self.byte;
        let b = *self.text.as_bytes().get(byte)?;
        let c = if b < 0x80 {
            char::from(b)
        } else {
            self.text[byte..].chars().next()?
        };
        self.byte += c.len_utf8();
        let pos = self.char_pos;
        self.char_pos += 1;
        Some((pos, byte, c))
    }

    fn at_end(&self) -> bool {
        self.byte >= self.text.len()
    }

    /// Moves to char index `target`; false when the text ends before it. Counts char
    /// starts over whole slices of bytes (vectorized) rather than decoding chars.
    fn skip_to(&mut self, target: u64) -> bool {
        let bytes = self.text.as_bytes();
        let len = bytes.len();
        while self.char_pos < target && self.byte < len {
            // Each char takes at least one byte: the next `remaining` bytes hold at most
            // `remaining` char starts.
            let remaining = usize::try_from(target - self.char_pos).unwrap_or(usize::MAX);
            let end = self.byte.saturating_add(remaining).min(len);
            let starts = bytes[self.byte..end]
                .iter()
                .filter(|&&b| (b as i8) >= -0x40)
                .count();
            self.byte = end;
            self.char_pos += starts as u64;
            // Finish the char the slice may have cut.
            while self.byte < len && (bytes[self.byte] as i8) < -0x40 {
                self.byte += 1;
            }
        }
        self.char_pos >= target
    }
}

/// Cuts `text` into overlapping passages, in order, covering every char.
///
/// Passage `k` nominally spans `[k*STEP, k*STEP + CHARS)`. Its end moves back to just after
/// the last `\n` among the [`PASSAGE_SNAP`] chars before the nominal end; the start of the
/// next passage moves forward to just after the first `\n` at or after one char before its
/// nominal start and less than [`PASSAGE_SNAP`] chars after it (never past the end of the
/// previous passage). The first passage starts at 0 and the last one ends at the end of the
/// text. So every line of at most `CHARS - STEP` chars (its `\n` included) lies whole inside
/// some passage. One pass over the text.
pub fn passages(text: &str) -> Vec<Passage> {
    let mut out = Vec::with_capacity(text.len() / PASSAGE_STEP as usize + 1);
    if text.is_empty() {
        return out;
    }
    let mut cursor = Cursor::new(text);
    let mut start: (u64, usize) = (0, 0);
    let mut nominal_start: u64 = 0;
    loop {
        let nominal_end = nominal_start + PASSAGE_CHARS;
        let next_nominal = nominal_start + PASSAGE_STEP;
        let push = |out: &mut Vec<Passage>, end: (u64, usize)| {
            out.push(Passage {
                start_char: start.0,
                end_char: end.0,
                start_byte: start.1,
                end_byte: end.1,
            })
        };
        // Everything before the snap region of the next start is of no interest.
        if !cursor.skip_to(next_nominal - 1) {
            push(&mut out, (cursor.char_pos, text.len()));
            break;
        }
        let mut first_newline: Option<(u64, usize)> = None;
        let mut last_newline: Option<(u64, usize)> = None;
        let mut next_nominal_byte = 0;
        let mut ended = false;
        while cursor.char_pos < nominal_end {
            let Some((pos, byte, c)) = cursor.next() else {
                ended = true;
                break;
            };
            if pos == next_nominal {
                next_nominal_byte = byte;
            }
            if c == '\n' {
                if first_newline.is_none() && pos < next_nominal + PASSAGE_SNAP {
                    first_newline = Some((pos + 1, byte + 1));
                }
                if pos + PASSAGE_SNAP >= nominal_end {
                    last_newline = Some((pos + 1, byte + 1));
                }
            }
        }
        if ended || cursor.at_end() {
            push(&mut out, (cursor.char_pos, text.len()));
            break;
        }
        let end = last_newline.unwrap_or((nominal_end, cursor.byte));
        push(&mut out, end);
        let mut next = first_newline.unwrap_or((next_nominal, next_nominal_byte));
        if next.0 > end.0 {
            next = end;
        }
        start = next;
        nominal_start = next_nominal;
    }
    out
}

/// The analysis and passage layout of an index, as recorded in its stamp:
/// e.g. `v1;stop=1;stem=0;p=1500/1200`.
pub fn signature(opts: AnalyzerOptions) -> String {
    format!(
        "{INDEX_FORMAT};{};p={PASSAGE_CHARS}/{PASSAGE_STEP}",
        opts.describe()
    )
}

/// The options of a [`signature`] written by this version; None for any other layout.
pub fn parse_signature(sig: &str) -> Option<AnalyzerOptions> {
    let rest = sig.strip_prefix(INDEX_FORMAT)?.strip_prefix(';')?;
    let suffix = format!(";p={PASSAGE_CHARS}/{PASSAGE_STEP}");
    let opts = AnalyzerOptions::parse(rest.strip_suffix(suffix.as_str())?)?;
    (signature(opts) == sig).then_some(opts)
}

// ---------------------------------------------------------------------------------------
// The index

/// What an index covers, stored (serde_json) as the payload of its last commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStamp {
    /// The session's document generation the index was built for (the engine's counter).
    pub generation: u64,
    /// How many documents the index holds.
    pub doc_count: u64,
    /// [`signature`] of the analysis and passage layout.
    pub analyzer: String,
}

/// Failures of the passage index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Files missing or corrupt, checksum mismatch, unreadable meta or schema: rebuild.
    #[error("search index damaged: {0}")]
    Damaged(String),
    /// A file-system failure outside tantivy.
    #[error("search index I/O error: {0}")]
    Io(String),
    /// Another index writer holds the directory's writer lock.
    #[error("search index busy: {0}")]
    Busy(String),
    /// The caller asked for something inconsistent (e.g. a stamp of another analysis).
    #[error("search index misuse: {0}")]
    Invalid(String),
    /// Any other tantivy failure.
    #[error("search index error: {0}")]
    Tantivy(String),
}

impl From<TantivyError> for IndexError {
    fn from(e: TantivyError) -> Self {
        match e {
            TantivyError::DataCorruption(_)
            | TantivyError::IncompatibleIndex(_)
            | TantivyError::OpenReadError(_) => IndexError::Damaged(e.to_string()),
            TantivyError::LockFailure(..) => IndexError::Busy(e.to_string()),
            TantivyError::IoError(_) => IndexError::Io(e.to_string()),
            _ => IndexError::Tantivy(e.to_string()),
        }
    }
}

impl From<std::io::Error> for IndexError {
    fn from(e: std::io::Error) -> Self {
        IndexError::Io(e.to_string())
    }
}

fn damaged(e: impl std::fmt::Display) -> IndexError {
    IndexError::Damaged(e.to_string())
}

/// One passage found by [`PassageIndex::search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassageHit {
    pub doc_ord: u64,
    /// Code point offsets of the passage in the document.
    pub start_char: u64,
    pub end_char: u64,
    /// BM25 score, higher is better.
    pub score: f32,
}

/// A query term after analysis, with its BM25 idf in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTerm {
    pub term: String,
    pub weight: f32,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    doc_ord: Field,
    start: Field,
    end: Field,
    text: Field,
}

fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let doc_ord = builder.add_u64_field(
        FIELD_DOC_ORD,
        NumericOptions::default().set_indexed().set_fast(),
    );
    let start = builder.add_u64_field(FIELD_START, NumericOptions::default().set_fast());
    let end = builder.add_u64_field(FIELD_END, NumericOptions::default().set_fast());
    let text = builder.add_text_field(
        FIELD_TEXT,
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER_NAME)
                .set_index_option(IndexRecordOption::WithFreqs),
        ),
    );
    (
        builder.build(),
        Fields {
            doc_ord,
            start,
            end,
            text,
        },
    )
}

/// The BM25 index of a session's passages, in one directory.
pub struct PassageIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    opts: AnalyzerOptions,
    stamp: Option<IndexStamp>,
    /// The fast-field columns of each segment, for the searcher generation they were
    /// opened for (opening them costs more than reading the few hits of a search).
    columns: std::sync::Mutex<Option<(u64, Arc<SegmentColumns>)>>,
}

/// `[doc_ord, start, end]` columns of each segment of a searcher, by segment ord.
type SegmentColumns = Vec<[Column<u64>; 3]>;

impl std::fmt::Debug for PassageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassageIndex")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("stamp", &self.stamp)
            .finish_non_exhaustive()
    }
}

/// The built-in segment files every committed segment must have.
const SEGMENT_COMPONENTS: [SegmentComponent; 6] = [
    SegmentComponent::Postings,
    SegmentComponent::Positions,
    SegmentComponent::Terms,
    SegmentComponent::FastFields,
    SegmentComponent::FieldNorms,
    SegmentComponent::Store,
];

impl PassageIndex {
    /// Opens the index in `dir`. `Ok(None)` when there is none (no `meta.json`).
    /// `Err(Damaged)` when its meta is unreadable, its schema is not ours, or any file of a
    /// committed segment is missing or fails its checksum. The analysis used for queries is
    /// the one recorded in the stamp (the default when there is no stamp or an unknown
    /// signature: the caller rebuilds when `stamp()` is not what it wants anyway).
    pub fn open(dir: &Path) -> Result<Option<PassageIndex>, IndexError> {
        match dir.join("meta.json").try_exists() {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let index = Index::open_in_dir(dir).map_err(damaged)?;
        let metas = index.load_metas().map_err(damaged)?;
        let (schema, fields) = build_schema();
        if metas.schema != schema {
            return Err(IndexError::Damaged(
                "the index schema is not the passage schema".into(),
            ));
        }
        // Every file of every committed segment must exist and pass its checksum (tantivy's
        // own `validate_checksum` skips files that are missing).
        let directory = index.directory();
        for segment in &metas.segments {
            let mut paths: Vec<PathBuf> = SEGMENT_COMPONENTS
                .iter()
                .map(|c| segment.relative_path(c.clone()))
                .collect();
            paths.extend(
                metas
                    .persisted_custom_extensions
                    .iter()
                    .map(|ext| segment.relative_path(SegmentComponent::Custom(ext.clone()))),
            );
            if segment.has_deletes() {
                paths.push(segment.relative_path(SegmentComponent::Delete));
            }
            for path in paths {
                if !dir.join(&path).is_file() {
                    return Err(IndexError::Damaged(format!(
                        "missing index file {}",
                        path.display()
                    )));
                }
                match directory.validate_checksum(&path) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(IndexError::Damaged(format!(
                            "checksum mismatch in {}",
                            path.display()
                        )));
                    }
                    Err(e) => return Err(damaged(e)),
                }
            }
        }
        let stamp = match &metas.payload {
            None => None,
            Some(payload) => Some(
                serde_json::from_str::<IndexStamp>(payload)
                    .map_err(|e| IndexError::Damaged(format!("unreadable index stamp: {e}")))?,
            ),
        };
        let opts = stamp
            .as_ref()
            .and_then(|s| parse_signature(&s.analyzer))
            .unwrap_or(AnalyzerOptions::DEFAULT);
        Self::finish(dir, index, fields, opts, stamp)
            .map(Some)
            .map_err(|e| match e {
                IndexError::Tantivy(m) => IndexError::Damaged(m),
                other => other,
            })
    }

    /// Creates a fresh empty index in `dir` with the default analysis, removing whatever
    /// is there first.
    pub fn create(dir: &Path) -> Result<PassageIndex, IndexError> {
        Self::create_with(dir, AnalyzerOptions::DEFAULT)
    }

    /// Creates a fresh empty index in `dir` with the given analysis, removing whatever is
    /// there first.
    pub fn create_with(dir: &Path, opts: AnalyzerOptions) -> Result<PassageIndex, IndexError> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = build_schema();
        let index = Index::create_in_dir(dir, schema)?;
        Self::finish(dir, index, fields, opts, None)
    }

    fn finish(
        dir: &Path,
        index: Index,
        fields: Fields,
        opts: AnalyzerOptions,
        stamp: Option<IndexStamp>,
    ) -> Result<PassageIndex, IndexError> {
        index
            .tokenizers()
            .register(TOKENIZER_NAME, analyzer::text_analyzer(opts));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(PassageIndex {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            opts,
            stamp,
            columns: std::sync::Mutex::new(None),
        })
    }

    /// What the last commit covers (None for an index never committed with a stamp).
    pub fn stamp(&self) -> Option<IndexStamp> {
        self.stamp.clone()
    }

    /// The analysis this index uses.
    pub fn options(&self) -> AnalyzerOptions {
        self.opts
    }

    /// [`signature`] of this index's analysis: what a stamp given to
    /// [`PassageIndex::add_documents`] must carry as `analyzer`.
    pub fn signature(&self) -> String {
        signature(self.opts)
    }

    /// The directory of the index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds the passages of these documents, commits once with `stamp` as the payload and
    /// reloads the reader. `stamp.analyzer` must be [`PassageIndex::signature`]. On error
    /// nothing is committed: the index stays as it was.
    pub fn add_documents<'a>(
        &mut self,
        docs: impl IntoIterator<Item = (u64, &'a str)>,
        stamp: &IndexStamp,
    ) -> Result<(), IndexError> {
        let expected = self.signature();
        if stamp.analyzer != expected {
            return Err(IndexError::Invalid(format!(
                "stamp analyzer {:?} is not this index's {:?}",
                stamp.analyzer, expected
            )));
        }
        let payload =
            serde_json::to_string(stamp).map_err(|e| IndexError::Tantivy(e.to_string()))?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_WRITER_THREADS);
        let mut writer = self
            .index
            .writer_with_num_threads::<TantivyDocument>(threads, WRITER_MEMORY_BYTES)?;
        // Small segments from incremental additions get merged (in the background, waited
        // for below) once there are enough of them.
        writer.set_merge_policy(Box::new(LogMergePolicy::default()));
        let f = self.fields;
        for (ord, text) in docs {
            for p in passages(text) {
                let mut doc = TantivyDocument::new();
                doc.add_u64(f.doc_ord, ord);
                doc.add_u64(f.start, p.start_char);
                doc.add_u64(f.end, p.end_char);
                doc.add_text(f.text, &text[p.start_byte..p.end_byte]);
                writer.add_document(doc)?;
            }
        }
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        writer.wait_merging_threads()?;
        self.stamp = Some(stamp.clone());
        self.reader.reload()?;
        Ok(())
    }

    /// Number of passages in the index.
    pub fn num_passages(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The distinct terms of `query` after analysis, in query order.
    fn analyzed_terms(&self, query: &str) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        for t in analyzer::analyze(query, self.opts) {
            if !terms.contains(&t.term) {
                terms.push(t.term);
            }
        }
        terms
    }

    /// The top passages for `query`, best first (BM25 over the analysed query terms, any
    /// of which may match). `only_docs` restricts the search to these document ords. A
    /// query with no term left after analysis gives no hits; no query is ever a syntax
    /// error.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        only_docs: Option<&[u64]>,
    ) -> Result<Vec<PassageHit>, IndexError> {
        self.search_terms(query, limit, only_docs)
            .map(|(hits, _)| hits)
    }

    /// [`PassageIndex::search`] and [`PassageIndex::query_terms`] in one go: the query is
    /// analysed once and each term's document frequency looked up once, for both the
    /// weights and the BM25 scoring (tantivy would look them up again).
    pub fn search_terms(
        &self,
        query: &str,
        limit: usize,
        only_docs: Option<&[u64]>,
    ) -> Result<(Vec<PassageHit>, Vec<QueryTerm>), IndexError> {
        let analyzed = self.analyzed_terms(query);
        if analyzed.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let searcher = self.reader.searcher();
        let total = searcher.num_docs();
        let f = self.fields;
        let mut freqs: Vec<(Term, u64)> = Vec::with_capacity(analyzed.len());
        let mut terms = Vec::with_capacity(analyzed.len());
        for term in analyzed {
            let t = Term::from_field_text(f.text, &term);
            let df = searcher.doc_freq(&t)?;
            terms.push(QueryTerm {
                weight: idf_weight(df.min(total), total),
                term,
            });
            freqs.push((t, df));
        }
        // A term no passage holds matches nothing and adds nothing to any score.
        freqs.retain(|&(_, df)| df > 0);
        if freqs.is_empty() || limit == 0 || only_docs.is_some_and(|d| d.is_empty()) {
            return Ok((Vec::new(), terms));
        }
        let limit = limit.min(usize::try_from(total).unwrap_or(usize::MAX));
        if limit == 0 {
            return Ok((Vec::new(), terms));
        }
        let term_query = |t: &Term| -> Box<dyn Query> {
            Box::new(TermQuery::new(t.clone(), IndexRecordOption::WithFreqs))
        };
        let text_query: Box<dyn Query> = if let [(only, _)] = freqs.as_slice() {
            term_query(only)
        } else {
            Box::new(BooleanQuery::new(
                freqs
                    .iter()
                    .map(|(t, _)| (Occur::Should, term_query(t)))
                    .collect(),
            ))
        };
        let query: Box<dyn Query> = match only_docs {
            None => text_query,
            Some(ords) => {
                let filter =
                    TermSetQuery::new(ords.iter().map(|&ord| Term::from_field_u64(f.doc_ord, ord)));
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, text_query),
                    // Score 0: the filter does not change the BM25 scores.
                    (
                        Occur::Must,
                        Box::new(ConstScoreQuery::new(Box::new(filter), 0.0)),
                    ),
                ]))
            }
        };
        let stats = KnownFreqs {
            searcher: &searcher,
            freqs: &freqs,
        };
        let top = searcher.search_with_statistics_provider(
            &query,
            &TopDocs::with_limit(limit).order_by_score(),
            &stats,
        )?;
        let columns = self.columns_of(&searcher)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let cols = columns
                .get(address.segment_ord as usize)
                .ok_or_else(|| IndexError::Damaged("a hit in an unknown segment".into()))?;
            let value = |i: usize| {
                cols[i]
                    .first(address.doc_id)
                    .ok_or_else(|| IndexError::Damaged("a passage has no document offsets".into()))
            };
            hits.push(PassageHit {
                doc_ord: value(0)?,
                start_char: value(1)?,
                end_char: value(2)?,
                score,
            });
        }
        Ok((hits, terms))
    }

    /// The `[doc_ord, start, end]` columns of every segment of `searcher`, opened once
    /// per searcher generation.
    fn columns_of(&self, searcher: &tantivy::Searcher) -> Result<Arc<SegmentColumns>, IndexError> {
        let generation = searcher.generation().generation_id();
        let mut cache = self.columns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, cols)) = cache.as_ref()
            && *g == generation
        {
            return Ok(cols.clone());
        }
        let cols = searcher
            .segment_readers()
            .iter()
            .map(|r| {
                let fast = r.fast_fields();
                Ok([
                    fast.u64(FIELD_DOC_ORD)?,
                    fast.u64(FIELD_START)?,
                    fast.u64(FIELD_END)?,
                ])
            })
            .collect::<Result<SegmentColumns, IndexError>>()?;
        let cols = Arc::new(cols);
        *cache = Some((generation, cols.clone()));
        Ok(cols)
    }

    /// The distinct analysed terms of `query` with their BM25 idf in this index
    /// (`ln(1 + (N - n + 0.5) / (n + 0.5))` for `n` passages containing the term among
    /// `N`); 0 for a term that no passage contains.
    pub fn query_terms(&self, query: &str) -> Vec<QueryTerm> {
        let terms = self.analyzed_terms(query);
        if terms.is_empty() {
            return Vec::new();
        }
        let searcher = self.reader.searcher();
        let total = searcher.num_docs();
        terms
            .into_iter()
            .map(|term| {
                let df = searcher
                    .doc_freq(&Term::from_field_text(self.fields.text, &term))
                    .unwrap_or(0)
                    .min(total);
                QueryTerm {
                    weight: idf_weight(df, total),
                    term,
                }
            })
            .collect()
    }
}

/// `ln(1 + (N - n + 0.5) / (n + 0.5))` for a term in `df` of `total` passages; 0 when no
/// passage holds it.
fn idf_weight(df: u64, total: u64) -> f32 {
    if df == 0 {
        0.0
    } else {
        let x = ((total - df) as f64 + 0.5) / (df as f64 + 0.5);
        (1.0 + x).ln() as f32
    }
}

/// The searcher's BM25 statistics with the query terms' document frequencies already
/// looked up.
struct KnownFreqs<'a> {
    searcher: &'a tantivy::Searcher,
    freqs: &'a [(Term, u64)],
}

impl tantivy::query::Bm25StatisticsProvider for KnownFreqs<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        tantivy::query::Bm25StatisticsProvider::total_num_tokens(self.searcher, field)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        tantivy::query::Bm25StatisticsProvider::total_num_docs(self.searcher)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        match self.freqs.iter().find(|(t, _)| t == term) {
            Some(&(_, df)) => Ok(df),
            None => self.searcher.doc_freq(term),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Finding the query terms in a text

/// The analysis [`best_cluster`] and [`highlights`] apply to text: stop words kept (the
/// terms never hold a stop word the index dropped, and hold those it kept), stemming as in
/// [`AnalyzerOptions::DEFAULT`]. Use the `_with` variants for an index built with other
/// options (pass [`PassageIndex::options`]).
const TEXT_MATCH_OPTIONS: AnalyzerOptions = AnalyzerOptions {
    stop_words: false,
    stemming: AnalyzerOptions::DEFAULT.stemming,
};

/// Every occurrence of a query term in `text`, as `(start_char, end_char, term index)`
/// relative to `text`, sorted by start (longest first): what [`best_cluster`] and
/// [`highlights`] work from, computed once when both are wanted. Builds a [`TermMatcher`];
/// make one and reuse it to search several texts for the same terms.
pub fn occurrences(
    text: &str,
    terms: &[QueryTerm],
    opts: AnalyzerOptions,
) -> Vec<(usize, usize, usize)> {
    TermMatcher::new(terms, opts).occurrences(text)
}

/// Above this many terms, a token's term is found by hashing rather than by comparing it
/// with each term.
const LINEAR_TERMS: usize = 16;

/// Finds the occurrences of a query's terms in texts exactly as a full analysis of each
/// text (stop words kept) would, usually without analysing most of the text.
///
/// A token is a whole word or an identifier part of it, lower-cased (then stemmed when the
/// index stems), and analysis never looks beyond a word (a maximal run of alphanumerics and
/// `_`). In an ASCII text without stemming, a token equal to a term is an ASCII
/// case-insensitive occurrence of that term inside one word (a term, being a token, is
/// made of word chars only), so only the words holding an occurrence need analysing: a
/// substring search of the lower-cased text for each term finds them, and
/// [`analyzer::ascii_word_tokens`] gives their tokens. Anything else (stemming, where a
/// stem need not be a substring of its word; non-ASCII text, where lower-casing can change
/// lengths or turn a non-ASCII char into an ASCII one, such as the Kelvin sign into `k`) is
/// analysed whole. On the stdlib corpus this is about 4 times faster than analysing each
/// passage whole.
pub struct TermMatcher<'t> {
    terms: &'t [QueryTerm],
    /// Term text -> its first index in `terms` (only when there are many terms).
    index: HashMap<&'t str, usize>,
    /// The analysis applied to texts: the index's, with stop words kept.
    opts: AnalyzerOptions,
    /// Substring finders of the distinct ASCII terms, when the words holding them may be
    /// analysed alone (no stemming).
    finders: Option<Vec<memchr::memmem::Finder<'t>>>,
}

impl<'t> TermMatcher<'t> {
    /// A matcher of `terms` for texts analysed as an index built with `opts` analyses them.
    pub fn new(terms: &'t [QueryTerm], opts: AnalyzerOptions) -> TermMatcher<'t> {
        let mut index = HashMap::new();
        if terms.len() > LINEAR_TERMS {
            for (i, t) in terms.iter().enumerate() {
                index.entry(t.term.as_str()).or_insert(i);
            }
        }
        let opts = AnalyzerOptions {
            stop_words: false,
            ..opts
        };
        let finders = (!opts.stemming).then(|| {
            let mut seen: Vec<&str> = Vec::new();
            let mut finders = Vec::new();
            for t in terms {
                let t = t.term.as_str();
                // A non-ASCII term never equals a token of ASCII text.
                if !t.is_empty() && t.is_ascii() && !seen.contains(&t) {
                    seen.push(t);
                    finders.push(memchr::memmem::Finder::new(t.as_bytes()));
                }
            }
            finders
        });
        TermMatcher {
            terms,
            index,
            opts,
            finders,
        }
    }

    /// The index in `terms` of the term equal to `token`.
    #[inline]
    fn term_of(&self, token: &str) -> Option<usize> {
        if self.terms.len() > LINEAR_TERMS {
            self.index.get(token).copied()
        } else {
            self.terms.iter().position(|t| t.term == token)
        }
    }

    /// Every occurrence of a term in `text`: see [`occurrences`].
    pub fn occurrences(&self, text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        if self.terms.is_empty() {
            return out;
        }
        match &self.finders {
            Some(finders) if text.is_ascii() => self.ascii_occurrences(finders, text, &mut out),
            _ => {
                // Token starts never decrease: convert bytes to chars incrementally.
                let mut last_byte = 0usize;
                let mut last_char = 0usize;
                analyzer::for_each_token(text, self.opts, |t| {
                    let Some(i) = self.term_of(&t.text) else {
                        return;
                    };
                    if t.offset_from >= last_byte {
                        last_char += text[last_byte..t.offset_from].chars().count();
                    } else {
                        last_char = text[..t.offset_from].chars().count();
                    }
                    last_byte = t.offset_from;
                    let end = last_char + text[t.offset_from..t.offset_to].chars().count();
                    out.push((last_char, end, i));
                });
            }
        }
        out.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
        out
    }

    /// The occurrences in an ASCII `text` (chars are bytes), unsorted: the tokens of each
    /// word holding a term, compared with the terms.
    fn ascii_occurrences(
        &self,
        finders: &[memchr::memmem::Finder<'_>],
        text: &str,
        out: &mut Vec<(usize, usize, usize)>,
    ) {
        if finders.is_empty() {
            return;
        }
        let bytes = text.as_bytes();
        let lower = bytes.to_ascii_lowercase();
        let in_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        // The words holding an occurrence. Occurrences of one term that overlap lie in the
        // same word, so non-overlapping ones are enough.
        let mut words: Vec<(usize, usize)> = Vec::new();
        for finder in finders {
            let mut word_end = 0usize;
            for at in finder.find_iter(&lower) {
                if at < word_end {
                    continue; // inside the word just found
                }
                let mut start = at;
                while start > 0 && in_word(bytes[start - 1]) {
                    start -= 1;
                }
                let mut end = at + finder.needle().len();
                while end < bytes.len() && in_word(bytes[end]) {
                    end += 1;
                }
                word_end = end;
                words.push((start, end));
            }
        }
        if words.is_empty() {
            return;
        }
        words.sort_unstable();
        words.dedup();
        // Each token is the lower case of its range: a slice of `lower`.
        let lower = std::str::from_utf8(&lower).unwrap_or_default();
        let mut parts = Vec::new();
        for (start, end) in words {
            analyzer::ascii_word_tokens(text, start, end, &mut parts, |s, e| {
                if let Some(i) = self.term_of(&lower[s..e]) {
                    out.push((s, e, i));
                }
            });
        }
    }
}

/// Within `text`, the densest cluster of query-term occurrences: among windows of at most
/// `window_chars` chars, the one maximizing the summed weights of the distinct terms it
/// holds (then the number of distinct terms; ties: the earliest). Returns the cluster's
/// `(start_char, end_char)` relative to `text`, from its first to its last term occurrence
/// (leading repeats of terms that occur again later in it are left out), or None when no
/// term occurs. A single occurrence longer than the window is a cluster by itself.
pub fn best_cluster(
    text: &str,
    terms: &[QueryTerm],
    window_chars: usize,
) -> Option<(usize, usize)> {
    best_cluster_with(text, terms, window_chars, TEXT_MATCH_OPTIONS)
}

/// [`best_cluster`] for an index built with `opts`.
pub fn best_cluster_with(
    text: &str,
    terms: &[QueryTerm],
    window_chars: usize,
    opts: AnalyzerOptions,
) -> Option<(usize, usize)> {
    best_cluster_in(&occurrences(text, terms, opts), terms, window_chars)
}

/// [`best_cluster`] over occurrences already found by [`occurrences`].
pub fn best_cluster_in(
    occ: &[(usize, usize, usize)],
    terms: &[QueryTerm],
    window_chars: usize,
) -> Option<(usize, usize)> {
    if occ.is_empty() {
        return None;
    }
    // Negative or NaN weights count as 0 (`f32::max` returns the other operand on NaN).
    let weight = |i: usize| f64::from(terms[i].weight.max(0.0));
    let eval = |counts: &[u32]| {
        let mut sum = 0.0f64;
        let mut distinct = 0usize;
        for (i, &c) in counts.iter().enumerate() {
            if c > 0 {
                sum += weight(i);
                distinct += 1;
            }
        }
        (sum, distinct)
    };
    let mut counts = vec![0u32; terms.len()];
    let mut left = 0usize;
    let mut best: Option<(f64, usize, usize, usize)> = None;
    for right in 0..occ.len() {
        counts[occ[right].2] += 1;
        while left < right && occ[right].1 - occ[left].0 > window_chars {
            counts[occ[left].2] -= 1;
            left += 1;
        }
        let (sum, distinct) = eval(&counts);
        let better = match best {
            None => true,
            Some((bs, bd, _, _)) => sum > bs || (sum == bs && distinct > bd),
        };
        if better {
            best = Some((sum, distinct, left, right));
        }
    }
    let (_, _, mut left, right) = best?;
    // Tighten: drop leading occurrences whose term occurs again later in the window.
    let mut counts = vec![0u32; terms.len()];
    for o in &occ[left..=right] {
        counts[o.2] += 1;
    }
    while left < right && counts[occ[left].2] > 1 {
        counts[occ[left].2] -= 1;
        left += 1;
    }
    let start = occ[left].0;
    let end = occ[left..=right].iter().map(|o| o.1).max().unwrap_or(start);
    Some((start, end))
}

/// Every occurrence of a query term in `text`: `(start_char, end_char, term)` relative to
/// `text`, in order. An occurrence inside another one (the part `http` of a matching
/// `parsehttpheader`) is left out, so highlights never overlap; a part is highlighted alone
/// when its whole word is not a query term.
pub fn highlights(text: &str, terms: &[QueryTerm]) -> Vec<(usize, usize, String)> {
    highlights_with(text, terms, TEXT_MATCH_OPTIONS)
}

/// [`highlights`] for an index built with `opts`.
pub fn highlights_with(
    text: &str,
    terms: &[QueryTerm],
    opts: AnalyzerOptions,
) -> Vec<(usize, usize, String)> {
    highlights_in(&occurrences(text, terms, opts), terms)
}

/// [`highlights`] over occurrences already found by [`occurrences`].
pub fn highlights_in(
    occ: &[(usize, usize, usize)],
    terms: &[QueryTerm],
) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut covered_to = 0usize;
    for &(start, end, i) in occ {
        if !out.is_empty() && end <= covered_to {
            continue;
        }
        covered_to = covered_to.max(end);
        out.push((start, end, terms[i].term.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // -----------------------------------------------------------------------------------
    // Passages

    /// Checks every invariant of `passages(text)`.
    fn check_passages(text: &str) {
        let ps = passages(text);
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let n = chars.len() as u64;
        let byte_of = |c: u64| -> usize {
            if c == n {
                text.len()
            } else {
                chars[c as usize].0
            }
        };
        if text.is_empty() {
            assert!(ps.is_empty());
            return;
        }
        assert!(!ps.is_empty());
        assert_eq!(ps[0].start_char, 0);
        assert_eq!(ps.last().map(|p| p.end_char), Some(n));
        for (k, p) in ps.iter().enumerate() {
            assert!(p.start_char < p.end_char, "{p:?}");
            assert!(p.end_char - p.start_char <= PASSAGE_CHARS, "{p:?}");
            assert_eq!(p.start_byte, byte_of(p.start_char), "{p:?}");
            assert_eq!(p.end_byte, byte_of(p.end_char), "{p:?}");
            let nominal_start = k as u64 * PASSAGE_STEP;
            let nominal_end = nominal_start + PASSAGE_CHARS;
            if k > 0 {
                let prev = ps[k - 1];
                assert!(p.start_char <= prev.end_char, "gap before {p:?}");
                assert!(p.start_char > prev.start_char && p.end_char > prev.end_char);
                let after_newline = chars[p.start_char as usize - 1].1 == '\n';
                assert!(after_newline || p.start_char == nominal_start, "{k} {p:?}");
                assert!(p.start_char <= nominal_start + PASSAGE_SNAP);
            }
            if k + 1 < ps.len() {
                let before_newline = chars[p.end_char as usize - 1].1 == '\n';
                assert!(before_newline || p.end_char == nominal_end, "{k} {p:?}");
                assert!(p.end_char + PASSAGE_SNAP >= nominal_end);
                assert!(p.end_char - p.start_char >= PASSAGE_CHARS - 2 * PASSAGE_SNAP);
            }
        }
        // Every line of at most the overlap (its '\n' included) lies whole in a passage.
        let mut line_start = 0u64;
        for (i, &(_, c)) in chars.iter().enumerate() {
            let i = i as u64;
            if c == '\n' || i + 1 == n {
                let line_end = i + 1;
                if line_end - line_start <= PASSAGE_CHARS - PASSAGE_STEP {
                    assert!(
                        ps.iter()
                            .any(|p| p.start_char <= line_start && line_end <= p.end_char),
                        "line [{line_start}, {line_end}) split by {ps:?}"
                    );
                }
                line_start = line_end;
            }
        }
    }

    #[test]
    fn passages_small_cases() {
        assert!(passages("").is_empty());
        assert_eq!(
            passages("é"),
            [Passage {
                start_char: 0,
                end_char: 1,
                start_byte: 0,
                end_byte: 2
            }]
        );
        for n in [1, 1199, 1200, 1201, 1499, 1500, 1501, 2700, 2701, 10_000] {
            check_passages(&"x".repeat(n));
            check_passages(&"日".repeat(n));
            check_passages(&"\n".repeat(n));
            check_passages(&"ab\n".repeat(n));
        }
        // No newline: plain grid.
        let ps = passages(&"y".repeat(3000));
        let spans: Vec<(u64, u64)> = ps.iter().map(|p| (p.start_char, p.end_char)).collect();
        assert_eq!(spans, [(0, 1500), (1200, 2700), (2400, 3000)]);
    }

    #[test]
    fn passages_snap_to_lines() {
        // 99-char lines: the boundaries sit on line ends.
        let text = format!("{}\n", "z".repeat(99)).repeat(100);
        check_passages(&text);
        for p in passages(&text) {
            assert_eq!(p.start_char % 100, 0, "{p:?}");
            assert!(p.end_char % 100 == 0, "{p:?}");
        }
    }

    #[test]
    fn passages_long_text_is_fast() {
        // 20 MB without a newline and 20 MB of short lines: one pass each.
        let long = "ab cd é ".repeat(2_500_000);
        let t = std::time::Instant::now();
        let ps = passages(&long);
        assert_eq!(ps.last().map(|p| p.end_byte), Some(long.len()));
        let lines = "short line\n".repeat(2_000_000);
        let ps2 = passages(&lines);
        assert_eq!(ps2.last().map(|p| p.end_byte), Some(lines.len()));
        assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
        assert_eq!(
            ps.len() as u64,
            (long.chars().count() as u64 - 300) / PASSAGE_STEP + 1
        );
    }

    fn lines_text() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-z é日\t]{0,400}", 0..40).prop_map(|lines| lines.join("\n"))
    }

    proptest! {
        #[test]
        fn passages_lines(text in lines_text()) {
            check_passages(&text);
        }

        #[test]
        fn passages_random(text in "[a\n é日]{0,6000}") {
            check_passages(&text);
        }

        #[test]
        fn passages_long_lines(text in "[ab é日Ω]{0,9000}") {
            check_passages(&text);
        }

        #[test]
        fn passages_sparse_newlines(
            parts in prop::collection::vec((0usize..2000, prop::bool::ANY), 0..12)
        ) {
            let mut text = String::new();
            for (len, wide) in parts {
                let c = if wide { 'ü' } else { 'q' };
                text.extend(std::iter::repeat_n(c, len));
                text.push('\n');
            }
            check_passages(&text);
        }
    }

    #[test]
    fn signatures() {
        let sig = signature(AnalyzerOptions::DEFAULT);
        assert_eq!(sig, "v1;stop=1;stem=0;p=1500/1200");
        assert_eq!(parse_signature(&sig), Some(AnalyzerOptions::DEFAULT));
        let other = AnalyzerOptions {
            stop_words: false,
            stemming: true,
        };
        assert_eq!(parse_signature(&signature(other)), Some(other));
        assert_eq!(parse_signature("v0;stop=1;stem=0;p=1500/1200"), None);
        assert_eq!(parse_signature("v1;stop=1;stem=0;p=1000/800"), None);
        assert_eq!(parse_signature(""), None);
    }

    // -----------------------------------------------------------------------------------
    // The index

    fn stamp(generation: u64, doc_count: u64) -> IndexStamp {
        IndexStamp {
            generation,
            doc_count,
            analyzer: signature(AnalyzerOptions::DEFAULT),
        }
    }

    /// A deterministic pseudo-random text of about `chars` code points, in lines.
    fn filler(seed: u64, chars: usize) -> String {
        const WORDS: &[&str] = &[
            "lorem",
            "ipsum",
            "dolor",
            "sit",
            "amet",
            "def",
            "return",
            "self",
            "value",
            "import",
            "class",
            "café",
            "größe",
            "naïve",
            "日本",
            "data",
            "index",
            "the",
            "of",
            "parse_args",
            "getValue",
            "HTTPRequest",
            "x",
            "y",
            "42",
            "None",
            "True",
        ];
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut out = String::with_capacity(chars + 64);
        let mut count = 0;
        let mut line = 0;
        while count < chars {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let w = WORDS[(state >> 33) as usize % WORDS.len()];
            out.push_str(w);
            count += w.chars().count();
            line += 1;
            if (state >> 20).is_multiple_of(11) || line > 30 {
                out.push('\n');
                line = 0;
            } else {
                out.push(' ');
            }
            count += 1;
        }
        out
    }

    /// Inserts ` needle ` after about `at` chars of `text`; returns the text and the
    /// needle's char offset.
    fn with_needle(text: &str, at: usize, needle: &str) -> (String, u64) {
        let byte = text.char_indices().nth(at).map_or(text.len(), |(b, _)| b);
        let mut out = String::with_capacity(text.len() + needle.len() + 2);
        out.push_str(&text[..byte]);
        out.push(' ');
        let offset = out.chars().count() as u64;
        out.push_str(needle);
        out.push(' ');
        out.push_str(&text[byte..]);
        (out, offset)
    }

    fn segment_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == ext)
                    && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            })
            .collect();
        files.sort();
        files
    }

    fn small_index(dir: &Path) -> Vec<String> {
        let docs: Vec<String> = (0..5)
            .map(|i| format!("{}\nunique_marker_{i} appears here\n", filler(i, 5000)))
            .collect();
        let mut index = PassageIndex::create(dir).unwrap();
        index
            .add_documents(
                docs.iter().enumerate().map(|(i, d)| (i as u64, d.as_str())),
                &stamp(1, 5),
            )
            .unwrap();
        docs
    }

    #[test]
    fn needle_in_a_big_document() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        let base = filler(7, 2_500_000);
        let (big, needle_at) = with_needle(&base, 1_234_567, "zanzibarQuux");
        let small = filler(8, 3000);
        let docs = [(3u64, small.as_str()), (9u64, big.as_str())];
        let mut index = PassageIndex::create(&dir).unwrap();
        assert_eq!(index.stamp(), None);
        assert_eq!(index.num_passages(), 0);
        assert!(index.search("zanzibarquux", 10, None).unwrap().is_empty());
        index.add_documents(docs, &stamp(4, 2)).unwrap();
        assert_eq!(index.stamp(), Some(stamp(4, 2)));
        let expected_passages: usize = docs.iter().map(|(_, t)| passages(t).len()).sum();
        assert_eq!(index.num_passages(), expected_passages as u64);

        let check = |index: &PassageIndex| {
            for query in ["zanzibarquux", "What is ZanzibarQuux?", "zanzibar_quux"] {
                let hits = index.search(query, 5, None).unwrap();
                assert!(!hits.is_empty(), "{query}");
                let top = hits[0];
                assert_eq!(top.doc_ord, 9, "{query}");
                assert!(top.start_char <= needle_at, "{top:?} {needle_at}");
                assert!(top.end_char >= needle_at + 12, "{top:?} {needle_at}");
                assert!(top.score > 0.0);
            }
            // Scores are sorted, best first.
            let hits = index.search("lorem ipsum getValue", 50, None).unwrap();
            assert_eq!(hits.len(), 50);
            assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        };
        check(&index);

        // The passage text itself, cut by char offsets, holds the needle.
        let top = index.search("zanzibarquux", 1, None).unwrap()[0];
        let passage: String = big
            .chars()
            .skip(top.start_char as usize)
            .take((top.end_char - top.start_char) as usize)
            .collect();
        assert!(passage.contains("zanzibarQuux"));
        let terms = index.query_terms("zanzibarQuux");
        let terms_str: Vec<&str> = terms.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(terms_str, ["zanzibarquux", "zanzibar", "quux"]);
        let (s, e) = best_cluster(&passage, &terms, 200).unwrap();
        let cluster: String = passage.chars().skip(s).take(e - s).collect();
        assert_eq!(cluster, "zanzibarQuux");

        // Reopen from disk: same stamp, same results.
        let before = index.search("zanzibarquux lorem", 20, None).unwrap();
        drop(index);
        let reopened = PassageIndex::open(&dir).unwrap().unwrap();
        assert_eq!(reopened.stamp(), Some(stamp(4, 2)));
        assert_eq!(reopened.num_passages(), expected_passages as u64);
        assert_eq!(
            reopened.search("zanzibarquux lorem", 20, None).unwrap(),
            before
        );
        check(&reopened);
    }

    #[test]
    fn doc_filter() {
        let tmp = tempfile::tempdir().unwrap();
        let docs = small_index(tmp.path());
        let index = PassageIndex::open(tmp.path()).unwrap().unwrap();
        let all = index.search("lorem", 1000, None).unwrap();
        let ords: std::collections::BTreeSet<u64> = all.iter().map(|h| h.doc_ord).collect();
        assert_eq!(ords.len(), docs.len());
        let only = index.search("lorem", 1000, Some(&[1, 3, 99])).unwrap();
        assert!(!only.is_empty());
        assert!(only.iter().all(|h| h.doc_ord == 1 || h.doc_ord == 3));
        // The filter does not change scores.
        for h in &only {
            assert!(all.contains(h), "{h:?}");
        }
        let hits = index.search("unique_marker_2", 3, Some(&[2])).unwrap();
        assert_eq!(hits[0].doc_ord, 2);
        assert!(
            index
                .search("unique_marker_2", 3, Some(&[]))
                .unwrap()
                .is_empty()
        );
        assert!(
            index
                .search("unique_marker_2", 3, Some(&[99]))
                .unwrap()
                .is_empty()
        );
        assert!(index.search("lorem", 0, None).unwrap().is_empty());
        assert!(!index.search("lorem", usize::MAX, None).unwrap().is_empty());
    }

    #[test]
    fn queries_without_terms_and_odd_syntax() {
        let tmp = tempfile::tempdir().unwrap();
        small_index(tmp.path());
        let index = PassageIndex::open(tmp.path()).unwrap().unwrap();
        for q in [
            "",
            "the of and",
            "?!... :: ()",
            "a:b(",
            "\"",
            "The",
            "* AND OR NOT -",
        ] {
            let hits = index.search(q, 10, None).unwrap();
            if q == "a:b(" || q == "* AND OR NOT -" {
                continue; // these have terms ("b", "or"...): just no error
            }
            assert!(hits.is_empty(), "{q:?}");
        }
        assert!(index.query_terms("the of ?").is_empty());
        assert!(!index.search("What is x?", 10, None).unwrap().is_empty());
        assert!(index.search("field:value [1 TO 2] ~2 ^3", 10, None).is_ok());
        let terms = index.query_terms("lorem absentword lorem");
        assert_eq!(terms.len(), 2);
        assert!(terms[0].weight > 0.0);
        assert_eq!(terms[1].weight, 0.0);
    }

    #[test]
    fn incremental_additions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut index = PassageIndex::create(dir).unwrap();
        let a = format!("{} firstbatchword {}", filler(1, 4000), filler(2, 100));
        let b = format!("{} secondbatchword", filler(3, 2000));
        index
            .add_documents([(0, a.as_str())], &stamp(1, 1))
            .unwrap();
        index
            .add_documents([(1, b.as_str())], &stamp(2, 2))
            .unwrap();
        assert_eq!(
            index.search("firstbatchword", 5, None).unwrap()[0].doc_ord,
            0
        );
        assert_eq!(
            index.search("secondbatchword", 5, None).unwrap()[0].doc_ord,
            1
        );
        // Many small batches: merges happen and keep the stamp.
        let mut texts = Vec::new();
        for i in 0..20u64 {
            texts.push(format!("{} batchtoken{i}", filler(10 + i, 1500)));
        }
        for (i, t) in texts.iter().enumerate() {
            let i = i as u64;
            index
                .add_documents([(2 + i, t.as_str())], &stamp(3 + i, 3 + i))
                .unwrap();
        }
        let index = PassageIndex::open(dir).unwrap().unwrap();
        assert_eq!(index.stamp(), Some(stamp(22, 22)));
        for i in 0..20u64 {
            let hits = index.search(&format!("batchtoken{i}"), 3, None).unwrap();
            assert_eq!(hits[0].doc_ord, 2 + i);
        }
        assert_eq!(
            index.search("firstbatchword", 5, None).unwrap()[0].doc_ord,
            0
        );
        let segments = index.index.searchable_segment_metas().unwrap().len();
        assert!(segments < 20, "{segments} segments");
        // An empty batch still commits its stamp.
        let mut index = index;
        index.add_documents([], &stamp(23, 22)).unwrap();
        assert_eq!(
            PassageIndex::open(dir).unwrap().unwrap().stamp(),
            Some(stamp(23, 22))
        );
    }

    #[test]
    fn stamp_must_match_analysis() {
        let tmp = tempfile::tempdir().unwrap();
        let mut index = PassageIndex::create(tmp.path()).unwrap();
        let mut bad = stamp(1, 1);
        bad.analyzer = "v1;stop=0;stem=0;p=1500/1200".into();
        assert!(matches!(
            index.add_documents([(0, "text")], &bad),
            Err(IndexError::Invalid(_))
        ));
        // An index with other options records them and is reopened with them.
        let opts = AnalyzerOptions {
            stop_words: false,
            stemming: true,
        };
        let mut index = PassageIndex::create_with(tmp.path(), opts).unwrap();
        let st = IndexStamp {
            generation: 1,
            doc_count: 1,
            analyzer: signature(opts),
        };
        index
            .add_documents([(0, "the runners were running")], &st)
            .unwrap();
        drop(index);
        let index = PassageIndex::open(tmp.path()).unwrap().unwrap();
        assert_eq!(index.options(), opts);
        assert_eq!(index.stamp(), Some(st));
        assert_eq!(index.search("run", 5, None).unwrap().len(), 1);
        assert_eq!(index.search("the", 5, None).unwrap().len(), 1);
    }

    #[test]
    fn dir_layout() {
        let tmp = tempfile::tempdir().unwrap();
        small_index(tmp.path());
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in &names {
            let segment_file = name.split_once('.').is_some_and(|(id, ext)| {
                id.len() == 32
                    && id.bytes().all(|b| b.is_ascii_hexdigit())
                    && ["idx", "pos", "term", "fast", "fieldnorm", "store"].contains(&ext)
            });
            let known = [
                "meta.json",
                ".managed.json",
                ".tantivy-meta.lock",
                ".tantivy-writer.lock",
            ];
            assert!(segment_file || known.contains(&name.as_str()), "{name}");
        }
        assert!(names.iter().any(|n| n == "meta.json"));
    }

    #[test]
    fn open_missing_and_create_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nothing");
        assert!(PassageIndex::open(&dir).unwrap().is_none());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("junk.idx"), b"junk").unwrap();
        assert!(PassageIndex::open(&dir).unwrap().is_none());
        small_index(&dir);
        assert!(!dir.join("junk.idx").exists());
        // A fresh index without a commit opens with no stamp.
        let fresh = tmp.path().join("fresh");
        drop(PassageIndex::create(&fresh).unwrap());
        let index = PassageIndex::open(&fresh).unwrap().unwrap();
        assert_eq!(index.stamp(), None);
        assert_eq!(index.num_passages(), 0);
    }

    fn expect_damaged(dir: &Path, what: &str) {
        match PassageIndex::open(dir) {
            Err(IndexError::Damaged(_)) => {}
            Err(e) => panic!("{what}: expected Damaged, got {e:?}"),
            Ok(_) => panic!("{what}: a damaged index was opened"),
        }
    }

    #[test]
    fn damaged_indexes_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for (case, ext) in [
            ("truncate", "idx"),
            ("truncate", "term"),
            ("truncate", "fast"),
            ("overwrite", "idx"),
            ("overwrite", "term"),
            ("overwrite", "fast"),
            ("overwrite", "fieldnorm"),
            ("overwrite", "store"),
            ("delete", "idx"),
            ("delete", "fast"),
            ("delete", "pos"),
            ("delete", "store"),
            ("empty", "term"),
        ] {
            let dir = tmp.path().join(format!("{case}-{ext}"));
            small_index(&dir);
            assert!(PassageIndex::open(&dir).unwrap().is_some());
            let files = segment_files(&dir, ext);
            assert!(!files.is_empty(), "no .{ext} file");
            let file = &files[0];
            let len = std::fs::metadata(file).unwrap().len();
            match case {
                "truncate" => {
                    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
                    f.set_len(len / 2).unwrap();
                }
                "overwrite" => {
                    let mut bytes = std::fs::read(file).unwrap();
                    let mid = bytes.len() / 2;
                    for b in &mut bytes[mid.saturating_sub(4)..(mid + 4).min(len as usize)] {
                        *b ^= 0x5a;
                    }
                    std::fs::write(file, bytes).unwrap();
                }
                "delete" => std::fs::remove_file(file).unwrap(),
                "empty" => std::fs::write(file, b"").unwrap(),
                _ => unreachable!(),
            }
            expect_damaged(&dir, &format!("{case} .{ext}"));
        }
        // Unreadable meta.json, or a payload that is not a stamp.
        let dir = tmp.path().join("meta");
        small_index(&dir);
        std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
        expect_damaged(&dir, "meta.json");
        let dir = tmp.path().join("payload");
        small_index(&dir);
        let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&meta).unwrap();
        json["payload"] = serde_json::Value::String("not a stamp".into());
        std::fs::write(dir.join("meta.json"), json.to_string()).unwrap();
        expect_damaged(&dir, "payload");
        // Damage is repaired by create.
        let docs = small_index(&dir);
        let index = PassageIndex::open(&dir).unwrap().unwrap();
        assert_eq!(
            index.search("unique_marker_4", 1, None).unwrap()[0].doc_ord,
            4
        );
        assert_eq!(docs.len(), 5);
    }

    // -----------------------------------------------------------------------------------
    // Clusters and highlights

    fn qt(pairs: &[(&str, f32)]) -> Vec<QueryTerm> {
        pairs
            .iter()
            .map(|&(t, w)| QueryTerm {
                term: t.to_string(),
                weight: w,
            })
            .collect()
    }

    fn cut(text: &str, (s, e): (usize, usize)) -> String {
        text.chars().skip(s).take(e - s).collect()
    }

    #[test]
    fn cluster_prefers_more_distinct_terms() {
        let filler = "filler words here. ".repeat(20);
        let text = format!("alpha {filler} some alpha then beta and gamma end");
        let terms = qt(&[("alpha", 1.0), ("beta", 1.0), ("gamma", 1.0)]);
        let c = best_cluster(&text, &terms, 100).unwrap();
        assert_eq!(cut(&text, c), "alpha then beta and gamma");
        // A heavier single term beats two light ones.
        let terms = qt(&[("alpha", 5.0), ("beta", 1.0), ("gamma", 1.0)]);
        let text2 = format!("beta gamma {filler} alpha");
        let c = best_cluster(&text2, &terms, 50).unwrap();
        assert_eq!(cut(&text2, c), "alpha");
        // Ties: the earliest.
        let terms = qt(&[("alpha", 1.0), ("beta", 1.0)]);
        let text3 = format!("alpha {filler} beta");
        assert_eq!(
            cut(&text3, best_cluster(&text3, &terms, 10).unwrap()),
            "alpha"
        );
        // Weight 0 terms still make a cluster.
        let terms = qt(&[("beta", 0.0)]);
        assert_eq!(
            cut(&text3, best_cluster(&text3, &terms, 10).unwrap()),
            "beta"
        );
        assert_eq!(best_cluster(&text3, &qt(&[("zeta", 1.0)]), 10), None);
        assert_eq!(best_cluster(&text3, &[], 10), None);
        assert_eq!(best_cluster("", &terms, 10), None);
    }

    #[test]
    fn cluster_offsets_are_chars() {
        let text = "ééé 日本語 größe x naïve Größe";
        let terms = qt(&[("größe", 1.0), ("naïve", 2.0)]);
        let c = best_cluster(text, &terms, 100).unwrap();
        assert_eq!(cut(text, c), "größe x naïve");
        let c = best_cluster(text, &terms, 11).unwrap();
        assert_eq!(cut(text, c), "naïve Größe");
        let hl = highlights(text, &terms);
        let got: Vec<(String, String)> = hl
            .iter()
            .map(|(s, e, t)| (cut(text, (*s, *e)), t.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("größe".to_string(), "größe".to_string()),
                ("naïve".into(), "naïve".into()),
                ("Größe".into(), "größe".into())
            ]
        );
    }

    /// What [`occurrences`] must return: the tokens of a full analysis of `text` (stop
    /// words kept) that equal a term, in chars.
    fn reference_occurrences(
        text: &str,
        terms: &[QueryTerm],
        opts: AnalyzerOptions,
    ) -> Vec<(usize, usize, usize)> {
        let opts = AnalyzerOptions {
            stop_words: false,
            ..opts
        };
        let mut out = Vec::new();
        for t in analyzer::analyze(text, opts) {
            if let Some(i) = terms.iter().position(|q| q.term == t.term) {
                let s = text[..t.byte_start].chars().count();
                out.push((s, s + text[t.byte_start..t.byte_end].chars().count(), i));
            }
        }
        out.sort_by_key(|&(s, e, _)| (s, std::cmp::Reverse(e)));
        out
    }

    #[test]
    fn matcher_examples() {
        let terms = qt(&[
            ("http", 1.0),
            ("read_file", 1.0),
            ("file", 1.0),
            ("the", 1.0),
            ("k", 1.0),
            ("größe", 1.0),
        ]);
        for text in [
            "call parseHTTPHeader(h) then http.get and read_file; The FILE_NAME, Files",
            "__file__ _file file_ fileHTTP HTTPfile xhttp httpx the THE The",
            // Non-ASCII: analysed whole (the Kelvin sign lower-cases to `k`).
            "the \u{212A} k K Größe GRÖSSE read_file",
            "",
            "   ",
        ] {
            for opts in [
                AnalyzerOptions::DEFAULT,
                AnalyzerOptions {
                    stop_words: true,
                    stemming: true,
                },
            ] {
                assert_eq!(
                    occurrences(text, &terms, opts),
                    reference_occurrences(text, &terms, opts),
                    "{text:?} {opts:?}"
                );
            }
        }
        let kelvin = "\u{212A}ey";
        assert_eq!(
            highlights(kelvin, &qt(&[("key", 1.0)])),
            [(0, 3, "key".to_string())]
        );
        // Many terms: looked up by hash.
        let many: Vec<QueryTerm> = (0..40)
            .map(|i| QueryTerm {
                term: format!("w{i}"),
                weight: 1.0,
            })
            .collect();
        let text = "w1 W39 x_w7 w40 w3w";
        assert_eq!(
            occurrences(text, &many, AnalyzerOptions::DEFAULT),
            reference_occurrences(text, &many, AnalyzerOptions::DEFAULT)
        );
    }

    proptest! {
        #[test]
        fn matcher_agrees_with_analysis(
            text in prop_oneof![
                "[a-zA-Z0-9_ .(\n]{0,300}",
                "(read|Read|READ|file|File|_|x|http|HTTP|[ .(]|é|\u{212A}){0,80}",
            ],
            picks in prop::collection::vec(0usize..1000, 1..6),
            extra in "[a-z_]{1,6}",
        ) {
            // Terms: some tokens of the text itself, and one more word.
            let tokens = analyzer::analyze(&text, AnalyzerOptions { stop_words: false, stemming: false });
            let mut terms: Vec<QueryTerm> = Vec::new();
            let mut add = |t: String| {
                if !terms.iter().any(|q| q.term == t) {
                    terms.push(QueryTerm { term: t, weight: 1.0 });
                }
            };
            if !tokens.is_empty() {
                for p in picks {
                    add(tokens[p % tokens.len()].term.clone());
                }
            }
            add(extra);
            for t in ["read", "file", "http", "read_file"] {
                add(t.to_string());
            }
            for opts in [AnalyzerOptions::DEFAULT, AnalyzerOptions { stop_words: false, stemming: true }] {
                prop_assert_eq!(
                    occurrences(&text, &terms, opts),
                    reference_occurrences(&text, &terms, opts)
                );
            }
        }
    }

    #[test]
    fn highlights_of_identifier_parts() {
        let text = "call parseHTTPHeader(h) then http.get and read_file";
        let terms = qt(&[("http", 1.0)]);
        let hl = highlights(text, &terms);
        let got: Vec<&str> = hl.iter().map(|(s, e, _)| &text[*s..*e]).collect();
        assert_eq!(got, ["HTTP", "http"]);
        // A whole identifier hides its nested parts.
        let terms = qt(&[("read_file", 2.0), ("read", 1.0), ("file", 1.0)]);
        let hl = highlights(text, &terms);
        assert_eq!(hl, [(42, 51, "read_file".to_string())]);
        // Stop words kept by the query (an index without stop words) are found too.
        let terms = qt(&[("the", 1.0)]);
        assert_eq!(highlights("The end", &terms), [(0, 3, "the".to_string())]);
        assert!(highlights("nothing", &qt(&[("x", 1.0)])).is_empty());
    }

    fn bench_corpus() -> Vec<String> {
        let root = std::env::var("RLM_BENCH_DIR").unwrap_or_else(|_| "/usr/lib/python3".into());
        let mut files = Vec::new();
        let mut stack = vec![PathBuf::from(root)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "py")
                    && let Ok(t) = std::fs::read_to_string(&p)
                {
                    files.push(t);
                }
            }
        }
        let limit: usize = std::env::var("RLM_BENCH_BYTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(12 << 20);
        let mut total = 0;
        files.retain(|t| {
            let keep = total < limit;
            total += t.len();
            keep
        });
        files
    }

    /// Build time on a large corpus (release): `RLM_BENCH_DIR=/usr/lib/python3.12 cargo test
    /// --release -p rlmd --lib search::bm25::tests::bench_build -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_build() {
        let files = bench_corpus();
        let bytes: usize = files.iter().map(|t| t.len()).sum();
        let tmp = tempfile::tempdir().unwrap();
        let t0 = std::time::Instant::now();
        let n_passages: usize = files.iter().map(|t| passages(t).len()).sum();
        let t_passages = t0.elapsed();
        let t0 = std::time::Instant::now();
        let mut tokens = 0usize;
        for t in &files {
            analyzer::for_each_token(t, AnalyzerOptions::DEFAULT, |_| tokens += 1);
        }
        let t_analyze = t0.elapsed();
        let t0 = std::time::Instant::now();
        let mut index = PassageIndex::create(&tmp.path().join("i")).unwrap();
        index
            .add_documents(
                files
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (i as u64, t.as_str())),
                &stamp(1, files.len() as u64),
            )
            .unwrap();
        let t_build = t0.elapsed();
        let t0 = std::time::Instant::now();
        let reopened = PassageIndex::open(&tmp.path().join("i")).unwrap().unwrap();
        let t_open = t0.elapsed();
        let t0 = std::time::Instant::now();
        let hits = reopened
            .search("parse the http header of a request", 10, None)
            .unwrap();
        let t_search = t0.elapsed();
        eprintln!(
            "{} docs, {bytes} bytes, {n_passages} passages, {tokens} tokens: passages {t_passages:?}, \
             analyze {t_analyze:?}, build {t_build:?}, open {t_open:?}, search {t_search:?} ({} hits)",
            files.len(),
            hits.len()
        );
    }

    /// Where the build time goes (release, ignored).
    #[test]
    #[ignore]
    fn bench_phases() {
        let files = bench_corpus();
        for threads in [1usize, 2, 2, 1] {
            let tmp = tempfile::tempdir().unwrap();
            let index = PassageIndex::create(tmp.path()).unwrap();
            let f = index.fields;
            let t0 = std::time::Instant::now();
            let mut docs = Vec::new();
            for (ord, text) in files.iter().enumerate() {
                for p in passages(text) {
                    let mut doc = TantivyDocument::new();
                    doc.add_u64(f.doc_ord, ord as u64);
                    doc.add_u64(f.start, p.start_char);
                    doc.add_u64(f.end, p.end_char);
                    doc.add_text(f.text, &text[p.start_byte..p.end_byte]);
                    docs.push(doc);
                }
            }
            let t_docs = t0.elapsed();
            let t0 = std::time::Instant::now();
            let mut writer = index
                .index
                .writer_with_num_threads::<TantivyDocument>(threads, WRITER_MEMORY_BYTES)
                .unwrap();
            let t_writer = t0.elapsed();
            let t0 = std::time::Instant::now();
            for d in docs {
                writer.add_document(d).unwrap();
            }
            let t_add = t0.elapsed();
            let t0 = std::time::Instant::now();
            writer.commit().unwrap();
            let t_commit = t0.elapsed();
            let t0 = std::time::Instant::now();
            writer.wait_merging_threads().unwrap();
            let t_wait = t0.elapsed();
            eprintln!(
                "threads {threads}: docs {t_docs:?}, writer {t_writer:?}, add {t_add:?}, \
                 commit {t_commit:?}, wait {t_wait:?}"
            );
        }
    }
}
