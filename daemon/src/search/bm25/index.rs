//! The shared tantivy index of the stored texts' passages: schema, open with damage
//! detection, reload, views of a set of texts, BM25 search in a view with the query
//! terms' statistics looked up once. Writing it is `write.rs`; one step of its
//! compaction, `merge.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tantivy::Directory as _;
use tantivy::directory::META_LOCK;
use tantivy::index::SegmentComponent;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyError, Term};

use super::compounds::{COMPOUND_WEIGHT, compounds};
use super::forms::{FormsQuery, word_group};
use super::stamp::{IndexStamp, parse_signature, signature};
use super::view::{IndexView, KeySet, SegmentColumns, Statistics, ViewStats};
use crate::search::analyzer::{self, AnalyzerOptions, TOKENIZER_NAME};

mod merge;
mod write;

pub use merge::Merged;
pub use write::{
    HEADER_WEIGHT, IndexBuild, IndexText, MAX_ENCLOSING_HEADERS, measure_build_phases,
};

const FIELD_KEY: &str = "text_key";
const FIELD_START: &str = "start";
const FIELD_END: &str = "end";
const FIELD_TEXT: &str = "text";

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
    /// The key of the text the passage is in.
    pub key: u64,
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
    key: Field,
    start: Field,
    end: Field,
    text: Field,
}

fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let key = builder.add_u64_field(
        FIELD_KEY,
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
            key,
            start,
            end,
            text,
        },
    )
}

/// The BM25 index of the stored texts' passages, in one directory. Every
/// passage carries the key of its text; texts are added and deleted by key.
/// Reading is a snapshot ([`PassageIndex::view`]) taken after
/// [`PassageIndex::reload`]; writers in any process are serialized by the
/// caller, and each write opens the directory afresh (tantivy's list of the
/// files it manages is read from disk, so one process never deletes files
/// another wrote).
pub struct PassageIndex {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    opts: AnalyzerOptions,
    stamp: Mutex<Option<IndexStamp>>,
}

impl std::fmt::Debug for PassageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassageIndex")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("stamp", &self.stamp())
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
        // Another process's merge deletes the merged segments' files just
        // after its commit. Its deletion waits for tantivy's meta lock,
        // which readers hold while they open a commit's files: held here
        // too, the check below never takes a commit merged meanwhile for a
        // damaged one (which would cost a wait for the write lock and an
        // open again). Its wait has no deadline, as that of the reader made
        // below (tantivy's), which takes the same lock: others hold it for
        // milliseconds.
        let meta_lock = index
            .directory()
            .acquire_lock(&META_LOCK)
            .map_err(|e| IndexError::Io(format!("locking the index's meta: {e}")))?;
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
        drop(meta_lock);
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
        // Whatever is in the index's place goes: a folder of an old or
        // damaged index, or a file or link put there (never followed).
        let removed = match std::fs::symlink_metadata(dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(dir),
            Ok(_) => std::fs::remove_file(dir),
            Err(e) => Err(e),
        };
        match removed {
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
            stamp: Mutex::new(stamp),
        })
    }

    /// What the last commit this process saw says (None for an index never
    /// committed with a stamp).
    pub fn stamp(&self) -> Option<IndexStamp> {
        self.stamp.lock().unwrap_or_else(|p| p.into_inner()).clone()
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

    /// Moves the reader to the last commit on disk (any process's) and reads
    /// its stamp again. `Damaged` when the commit's stamp is unreadable.
    pub fn reload(&self) -> Result<(), IndexError> {
        // The stamp must be the one of the commit the reader is at: read the
        // commit on disk again after a reload, until they agree (another
        // process may commit in between).
        for _ in 0..8 {
            let metas = self.index.load_metas()?;
            let on_disk: std::collections::BTreeMap<_, _> = metas
                .segments
                .iter()
                .map(|m| (m.id(), m.delete_opstamp()))
                .collect();
            // A reload opens every segment again and starts a new
            // generation: only when the commit holds other segments or deletions.
            if *self.reader.searcher().generation().segments() != on_disk {
                self.reader.reload()?;
                continue;
            }
            let stamp = match &metas.payload {
                None => None,
                Some(p) => Some(
                    serde_json::from_str::<IndexStamp>(p)
                        .map_err(|e| IndexError::Damaged(format!("unreadable index stamp: {e}")))?,
                ),
            };
            *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
            return Ok(());
        }
        Err(IndexError::Busy(
            "the search index changed eight times while it was being read; retry".into(),
        ))
    }

    /// The number of committed segments (at the last reload).
    pub fn num_segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// The generation of the reader's snapshot (it changes at each reload
    /// that finds a new commit).
    pub fn reader_generation(&self) -> u64 {
        self.reader.searcher().generation().generation_id()
    }

    /// Number of passages in the index (at the last reload).
    pub fn num_passages(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The keys of the texts with passages in the index (at the last reload).
    pub fn keys(&self) -> Result<BTreeSet<u64>, IndexError> {
        let searcher = self.reader.searcher();
        let mut keys = BTreeSet::new();
        for reader in searcher.segment_readers() {
            let column = reader.fast_fields().u64(FIELD_KEY)?;
            let alive = reader.alive_bitset();
            for doc in 0..reader.max_doc() {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                if let Some(k) = column.first(doc) {
                    keys.insert(k);
                }
            }
        }
        Ok(keys)
    }

    /// A snapshot of the passages of the texts in `keys` (every text: None),
    /// as of the last reload, searched with `statistics`.
    pub fn view(
        &self,
        keys: Option<&KeySet>,
        statistics: Statistics,
    ) -> Result<IndexView, IndexError> {
        let searcher = self.reader.searcher();
        let columns = searcher
            .segment_readers()
            .iter()
            .map(|r| {
                let fast = r.fast_fields();
                Ok([
                    fast.u64(FIELD_KEY)?,
                    fast.u64(FIELD_START)?,
                    fast.u64(FIELD_END)?,
                ])
            })
            .collect::<Result<SegmentColumns, IndexError>>()?;
        IndexView::build(
            searcher,
            [self.fields.key, self.fields.text],
            self.opts,
            columns,
            keys,
            statistics,
        )
    }

    /// The top passages for `query` in the whole index, best first; `only`
    /// restricts them to these keys. See [`IndexView::search_terms`].
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        only: Option<&[u64]>,
    ) -> Result<Vec<PassageHit>, IndexError> {
        self.view(None, Statistics::View)?
            .search_terms(query, limit, only)
            .map(|(hits, _)| hits)
    }

    /// [`IndexView::query_terms`] over the whole index.
    pub fn query_terms(&self, query: &str) -> Vec<QueryTerm> {
        self.view(None, Statistics::View)
            .map(|v| v.query_terms(query))
            .unwrap_or_default()
    }
}

impl IndexView {
    /// The analysis the view's index uses.
    pub fn options(&self) -> AnalyzerOptions {
        self.opts
    }

    /// The distinct terms of `query` after analysis, in query order.
    fn analyzed_terms(&self, query: &str) -> Vec<String> {
        analyzer::distinct_terms(query, self.opts)
    }

    /// The top passages of the view for `query`, best first (equal scores by
    /// text key, then offset; BM25 over the analysed query
    /// words, any of which may match, each with its other forms in the index scored as one
    /// term: `forms.rs`, and the index words that join two nearby query words, scored at
    /// [`COMPOUND_WEIGHT`]: `compounds.rs`), with the terms to find in the passages (every
    /// form and join) and their
    /// weights, analysed once and each term's document frequency looked up once (tantivy
    /// would look them up again). `only` restricts the hits to the texts of these keys without changing
    /// scores. A query with no term left after analysis gives no hits; no query is ever a
    /// syntax error.
    pub fn search_terms(
        &self,
        query: &str,
        limit: usize,
        only: Option<&[u64]>,
    ) -> Result<(Vec<PassageHit>, Vec<QueryTerm>), IndexError> {
        let analyzed = self.analyzed_terms(query);
        if analyzed.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let total = self.total_docs();
        let mut freqs: Vec<(Term, u64)> = Vec::with_capacity(analyzed.len());
        let mut terms = Vec::with_capacity(analyzed.len());
        // Each query word: its term, or its forms in the index scored as one.
        let mut words: Vec<Box<dyn Query>> = Vec::with_capacity(analyzed.len());
        let stemmer = analyzer::english_stemmer();
        let mut stems: Vec<String> = Vec::new();
        for term in analyzed {
            let group = word_group(self, &stemmer, &term)?;
            // A word of a stem already asked for is one of its forms already.
            if let Some(stem) = &group.stem {
                if stems.contains(stem) {
                    continue;
                }
                stems.push(stem.clone());
            }
            let mut held = Vec::with_capacity(group.forms.len());
            for (form, df) in &group.forms {
                let t = Term::from_field_text(self.text, form);
                // Highlights and contexts weigh every form by the group's idf.
                let weight_df = if *df > 0 { group.doc_freq } else { 0 };
                terms.push(QueryTerm {
                    weight: idf_weight(weight_df, total),
                    term: form.clone(),
                });
                if *df > 0 {
                    held.push(t.clone());
                }
                freqs.push((t, *df));
            }
            match held.len() {
                0 => {}
                1 => words.push(Box::new(TermQuery::new(
                    held.swap_remove(0),
                    IndexRecordOption::WithFreqs,
                ))),
                _ => words.push(Box::new(FormsQuery {
                    field: self.text,
                    terms: held,
                    doc_freq: group.doc_freq,
                })),
            }
        }
        // Index words that run nearby query words together (`readfile` for `read file`),
        // scored beside them at a lesser weight.
        let asked: Vec<String> = terms.iter().map(|t| t.term.clone()).collect();
        for (join, df) in compounds(self, query, &asked)? {
            let t = Term::from_field_text(self.text, &join);
            terms.push(QueryTerm {
                weight: idf_weight(df, total) * COMPOUND_WEIGHT,
                term: join,
            });
            freqs.push((t.clone(), df));
            // The boost goes into the term's scorer: block-max WAND still prunes.
            words.push(Box::new(BoostQuery::new(
                Box::new(TermQuery::new(t, IndexRecordOption::WithFreqs)),
                COMPOUND_WEIGHT,
            )));
        }
        // A term no passage holds matches nothing and adds nothing to any score.
        freqs.retain(|&(_, df)| df > 0);
        if words.is_empty() || limit == 0 || only.is_some_and(|d| d.is_empty()) {
            return Ok((Vec::new(), terms));
        }
        let limit = limit.min(usize::try_from(self.passages).unwrap_or(usize::MAX));
        if limit == 0 {
            return Ok((Vec::new(), terms));
        }
        let text_query: Box<dyn Query> = match words.pop() {
            Some(word) if words.is_empty() => word,
            Some(word) => {
                words.push(word);
                Box::new(BooleanQuery::new(
                    words.into_iter().map(|w| (Occur::Should, w)).collect(),
                ))
            }
            None => return Ok((Vec::new(), terms)),
        };
        let query: Box<dyn Query> = match only {
            None => text_query,
            Some(keys) => {
                let filter =
                    TermSetQuery::new(keys.iter().map(|&k| Term::from_field_u64(self.key, k)));
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
        let query = self.restrict(query);
        let stats = ViewStats {
            view: self,
            freqs: &freqs,
        };
        let top = top_by_score(&self.searcher, query.as_ref(), &stats, limit)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let cols = self
                .columns
                .get(address.segment_ord as usize)
                .ok_or_else(|| IndexError::Damaged("a hit in an unknown segment".into()))?;
            let value = |i: usize| {
                cols[i]
                    .first(address.doc_id)
                    .ok_or_else(|| IndexError::Damaged("a passage has no text offsets".into()))
            };
            hits.push(PassageHit {
                key: value(0)?,
                start_char: value(1)?,
                end_char: value(2)?,
                score,
            });
        }
        // Equal scores in the order of their texts' keys and offsets, not
        // of where the build's threads happened to put the passages: the
        // same query over the same store answers the same, in the same order.
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.key.cmp(&b.key))
                .then(a.start_char.cmp(&b.start_char))
        });
        Ok((hits, terms))
    }

    /// The distinct analysed terms of `query` with their BM25 idf in the view
    /// (`ln(1 + (N - n + 0.5) / (n + 0.5))` for `n` passages containing the term among
    /// `N`); 0 for a term that no passage contains.
    pub fn query_terms(&self, query: &str) -> Vec<QueryTerm> {
        let total = self.total_docs();
        self.analyzed_terms(query)
            .into_iter()
            .map(|term| {
                let df = self
                    .doc_freq(&Term::from_field_text(self.text, &term))
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

/// The `limit` best-scored passages `query` (restricted to a view,
/// [`IndexView::restrict`], which leaves deleted passages out) matches in
/// `searcher`'s segments, with the view's statistics: tantivy's top-k by
/// score, with one heap for every segment instead of one each. tantivy
/// searches the segments one after the other, each from a threshold of
/// nothing, so block-max WAND prunes nothing in a segment until that
/// segment alone has filled a top-k; here each segment starts from the
/// k-th best score of those before it.
/// The same passages come back but for ties at the last place, of which
/// the first segment's are kept (tantivy kept each segment's first, then
/// chose among them by segment); a score can differ in its last bits, as
/// WAND sums a passage's terms in the order it meets them.
fn top_by_score(
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    stats: &ViewStats<'_>,
    limit: usize,
) -> Result<Vec<(f32, tantivy::DocAddress)>, IndexError> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    /// A hit in the heap, ordered by score, then the later found first: of
    /// the entries tied for the least score, the one found last is the one
    /// a better hit replaces.
    #[derive(PartialEq)]
    struct Entry(f32, u32, u32);
    impl Eq for Entry {}
    impl PartialOrd for Entry {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Entry {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0
                .total_cmp(&other.0)
                .then(other.1.cmp(&self.1))
                .then(other.2.cmp(&self.2))
        }
    }
    let weight = query
        .weight(tantivy::query::EnableScoring::enabled_from_statistics_provider(stats, searcher))?;
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::with_capacity(limit);
    let mut threshold = f32::MIN;
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let ord = ord as u32;
        weight.for_each_pruning(threshold, reader, &mut |doc, score| {
            if heap.len() < limit {
                heap.push(Reverse(Entry(score, ord, doc)));
                if heap.len() == limit {
                    threshold = heap.peek().map_or(f32::MIN, |Reverse(e)| e.0);
                }
            } else if score > threshold {
                if let Some(mut min) = heap.peek_mut() {
                    *min = Reverse(Entry(score, ord, doc));
                }
                threshold = heap.peek().map_or(f32::MIN, |Reverse(e)| e.0);
            }
            threshold
        })?;
    }
    Ok(heap
        .into_iter()
        .map(|Reverse(Entry(score, ord, doc))| (score, tantivy::DocAddress::new(ord, doc)))
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::bm25::{best_cluster, passages};

    fn stamp(generation: u64, doc_count: u64) -> IndexStamp {
        IndexStamp {
            index_id: format!("test-{generation}-{doc_count}"),
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
        let index = PassageIndex::create(dir).unwrap();
        index
            .add_documents(
                docs.iter().enumerate().map(|(i, d)| (i as u64, d.as_str())),
                &stamp(1, 5),
            )
            .unwrap();
        docs
    }

    /// Passages of equal score come in the order of their texts' keys and
    /// offsets, whatever order the build added them in.
    #[test]
    fn equal_scores_come_in_key_order() {
        let tmp = tempfile::tempdir().unwrap();
        let index = PassageIndex::create(&tmp.path().join("idx")).unwrap();
        let text = "alpha beta gamma\n".repeat(3);
        // One commit each, the highest key first: a segment each, in that order.
        for (n, key) in [9u64, 5, 7, 3].into_iter().enumerate() {
            index
                .add_documents([(key, text.as_str())], &stamp(n as u64 + 1, n as u64 + 1))
                .unwrap();
        }
        let hits = index.search("alpha", 10, None).unwrap();
        assert!(
            hits.windows(2).all(|w| w[0].score == w[1].score),
            "{hits:?}"
        );
        let keys: Vec<u64> = hits.iter().map(|h| h.key).collect();
        assert_eq!(keys, [3, 5, 7, 9]);
    }

    /// The top k of an index of many segments, searched with one threshold
    /// carried from segment to segment (`top_by_score`), is the head of the
    /// whole ranking for every k, and never holds a deleted text's passage.
    #[test]
    fn the_top_of_many_segments_is_the_head_of_the_whole_ranking() {
        let tmp = tempfile::tempdir().unwrap();
        let index = PassageIndex::create(&tmp.path().join("idx")).unwrap();
        // Texts whose scores differ (the word's count and the text's length
        // vary), the weaker ones first and the best in the middle, a commit
        // (a segment) each few texts.
        let text = |i: u64| {
            let n = (i * 7 + 3) % 11 + 1;
            format!(
                "{} {}\n",
                "ember ".repeat(n as usize),
                "ash coal smoke ".repeat((i % 5) as usize + 1)
            )
        };
        let keys: Vec<u64> = (1..=40).collect();
        for (n, group) in keys.chunks(5).enumerate() {
            let texts: Vec<String> = group.iter().map(|&k| text(k)).collect();
            index
                .add_documents(
                    group.iter().copied().zip(texts.iter().map(String::as_str)),
                    &stamp(n as u64 + 1, n as u64 + 1),
                )
                .unwrap();
        }
        index
            .delete_texts(&[keys[13], keys[27]], &stamp(20, 20))
            .unwrap();
        index.reload().unwrap();
        assert!(index.num_segments() >= 8, "{}", index.num_segments());
        let all = index.search("ember", 1000, None).unwrap();
        assert_eq!(all.len(), 38, "every text but the two deleted");
        assert!(all.iter().all(|h| h.key != keys[13] && h.key != keys[27]));
        assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
        for k in 1..all.len() {
            let top = index.search("ember", k, None).unwrap();
            assert_eq!(top.len(), k);
            let scores = |h: &[PassageHit]| h.iter().map(|h| h.score).collect::<Vec<_>>();
            assert_eq!(scores(&top), scores(&all[..k]), "top {k}");
            // The same passages, but for those tied with the last one kept.
            let last = all[k - 1].score;
            let sure = |h: &[PassageHit]| {
                h.iter()
                    .filter(|h| h.score > last)
                    .map(|h| (h.key, h.start_char))
                    .collect::<Vec<_>>()
            };
            assert_eq!(sure(&top), sure(&all[..k]), "top {k}");
        }
    }

    #[test]
    fn needle_in_a_big_document() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("idx");
        let base = filler(7, 2_500_000);
        let (big, needle_at) = with_needle(&base, 1_234_567, "zanzibarQuux");
        let small = filler(8, 3000);
        let docs = [(3u64, small.as_str()), (9u64, big.as_str())];
        let index = PassageIndex::create(&dir).unwrap();
        assert_eq!(index.stamp(), None);
        assert_eq!(index.num_passages(), 0);
        assert!(index.search("zanzibarquux", 10, None).unwrap().is_empty());
        index.add_documents(docs, &stamp(4, 2)).unwrap();
        assert_eq!(index.stamp(), Some(stamp(4, 2)));
        let expected_passages: usize = docs.iter().map(|(_, t)| passages(t, None).len()).sum();
        assert_eq!(index.num_passages(), expected_passages as u64);

        let check = |index: &PassageIndex| {
            for query in ["zanzibarquux", "What is ZanzibarQuux?", "zanzibar_quux"] {
                let hits = index.search(query, 5, None).unwrap();
                assert!(!hits.is_empty(), "{query}");
                let top = hits[0];
                assert_eq!(top.key, 9, "{query}");
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
        let ords: std::collections::BTreeSet<u64> = all.iter().map(|h| h.key).collect();
        assert_eq!(ords.len(), docs.len());
        let only = index.search("lorem", 1000, Some(&[1, 3, 99])).unwrap();
        assert!(!only.is_empty());
        assert!(only.iter().all(|h| h.key == 1 || h.key == 3));
        // The filter does not change scores.
        for h in &only {
            assert!(all.contains(h), "{h:?}");
        }
        let hits = index.search("unique_marker_2", 3, Some(&[2])).unwrap();
        assert_eq!(hits[0].key, 2);
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
        // A sixth document holds the words of the odd queries below.
        index
            .add_documents(
                [(5u64, "to be or not to be: plan b, then plan c\n")],
                &stamp(2, 6),
            )
            .unwrap();
        // Only stop words and punctuation: no terms, no hits.
        for q in [
            "",
            "the of and",
            "?!... :: ()",
            "\"",
            "The",
            "* AND OR NOT -",
        ] {
            assert!(index.query_terms(q).is_empty(), "{q:?}");
            assert!(index.search(q, 10, None).unwrap().is_empty(), "{q:?}");
        }
        // Query syntax is not parsed: a query is the words it holds.
        for (q, words) in [("a:b(", "b"), ("plan:c AND b", "plan c b")] {
            assert!(!index.query_terms(q).is_empty(), "{q:?}");
            let hits = index.search(q, 10, None).unwrap();
            assert!(!hits.is_empty(), "{q:?}");
            assert_eq!(hits[0].key, 5, "{q:?}: {hits:?}");
            assert_eq!(hits, index.search(words, 10, None).unwrap(), "{q:?}");
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
        let index = PassageIndex::create(dir).unwrap();
        let a = format!("{} firstbatchword {}", filler(1, 4000), filler(2, 100));
        let b = format!("{} secondbatchword", filler(3, 2000));
        index
            .add_documents([(0, a.as_str())], &stamp(1, 1))
            .unwrap();
        index
            .add_documents([(1, b.as_str())], &stamp(2, 2))
            .unwrap();
        assert_eq!(index.search("firstbatchword", 5, None).unwrap()[0].key, 0);
        assert_eq!(index.search("secondbatchword", 5, None).unwrap()[0].key, 1);
        // Many small batches: a segment each (a build merges nothing), and
        // the compaction's merge keeps the last stamp.
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
            assert_eq!(hits[0].key, 2 + i);
        }
        assert_eq!(index.search("firstbatchword", 5, None).unwrap()[0].key, 0);
        // (A commit's passages are split between the writer's threads.)
        assert!(index.num_segments() >= 22, "no merges");
        let step = index.merge_smallest(u64::MAX).unwrap().unwrap();
        assert_eq!(step.left, 1, "{step:?}");
        let index = PassageIndex::open(dir).unwrap().unwrap();
        assert_eq!(index.stamp(), Some(stamp(22, 22)));
        for i in 0..20u64 {
            let hits = index.search(&format!("batchtoken{i}"), 3, None).unwrap();
            assert_eq!(hits[0].key, 2 + i);
        }
        // An empty batch still commits its stamp.
        index
            .add_documents(std::iter::empty::<IndexText>(), &stamp(23, 22))
            .unwrap();
        assert_eq!(
            PassageIndex::open(dir).unwrap().unwrap().stamp(),
            Some(stamp(23, 22))
        );
    }

    /// Hits as comparable values, in a canonical order (ties in score may
    /// come in another order once doc ids change).
    fn hit_set(hits: &[PassageHit]) -> Vec<(u64, u64, u64, u32)> {
        let mut v: Vec<_> = hits
            .iter()
            .map(|h| (h.key, h.start_char, h.end_char, h.score.to_bits()))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn merge_smallest_merges_what_fits_and_keeps_the_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let index = PassageIndex::create(dir).unwrap();
        // Texts of growing sizes, one commit each: a segment each.
        let texts: Vec<String> = (0..6u64)
            .map(|i| {
                format!(
                    "{} mergetoken{i} shared",
                    filler(40 + i, 2_000 * (i as usize + 1))
                )
            })
            .collect();
        for (i, t) in texts.iter().enumerate() {
            let i = i as u64;
            index
                .add_documents([(i, t.as_str())], &stamp(1 + i, 1 + i))
                .unwrap();
        }
        let queries = ["shared", "mergetoken0 mergetoken5", "mergetoken3"];
        let before: Vec<_> = queries
            .iter()
            .map(|q| hit_set(&index.search(q, 50, None).unwrap()))
            .collect();
        // (bytes, passages) of each segment, smallest first.
        let mut sized: Vec<(u64, u64)> = index
            .index
            .searchable_segment_metas()
            .unwrap()
            .iter()
            .map(|m| (index.segment_bytes(m), u64::from(m.num_docs())))
            .collect();
        sized.sort_unstable();
        let sizes: Vec<u64> = sized.iter().map(|s| s.0).collect();
        let n = sizes.len();
        assert!(n >= 6, "no merges: {sizes:?}");
        assert_eq!(index.num_segments(), n);
        // Less than the two smallest: nothing to do.
        assert_eq!(index.merge_smallest(sizes[0] + sizes[1] - 1).unwrap(), None);
        assert_eq!(index.num_segments(), n);
        // The three smallest fit, the fourth does not.
        let three = sizes[0] + sizes[1] + sizes[2];
        let step = index.merge_smallest(three + sizes[3] - 1).unwrap().unwrap();
        assert_eq!(
            (step.segments, step.bytes, step.left),
            (3, three, n - 2),
            "{step:?}"
        );
        assert_eq!(step.passages, sized[..3].iter().map(|s| s.1).sum::<u64>());
        assert_eq!(index.num_segments(), n - 2, "the reader moved to the merge");
        for (q, want) in queries.iter().zip(&before) {
            assert_eq!(&hit_set(&index.search(q, 50, None).unwrap()), want, "{q}");
        }
        // Everything fits: one segment, the same answers, the stamp kept.
        let step = index.merge_smallest(u64::MAX).unwrap().unwrap();
        assert_eq!((step.segments, step.left), (n - 2, 1), "{step:?}");
        assert_eq!(
            index.merge_smallest(u64::MAX).unwrap(),
            None,
            "one segment is left alone"
        );
        let reopened = PassageIndex::open(dir).unwrap().unwrap();
        assert_eq!(reopened.stamp(), Some(stamp(6, 6)));
        assert_eq!(reopened.num_segments(), 1);
        assert_eq!(reopened.num_passages(), index.num_passages());
        for (q, want) in queries.iter().zip(&before) {
            assert_eq!(
                &hit_set(&reopened.search(q, 50, None).unwrap()),
                want,
                "{q}"
            );
        }
    }

    /// The segments of the last commit on disk: (passages, deleted ones).
    fn segment_counts(dir: &Path) -> Vec<(u32, u32)> {
        let index = Index::open_in_dir(dir).unwrap();
        let mut v: Vec<_> = index
            .searchable_segment_metas()
            .unwrap()
            .iter()
            .map(|m| (m.max_doc(), m.num_deleted_docs()))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn merge_smallest_rewrites_a_segment_mostly_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let index = PassageIndex::create(dir).unwrap();
        // Texts of one passage each (short): a segment of five (merged: a
        // commit's passages are split between the writer's threads), then
        // one of one.
        let texts: Vec<String> = (0..6u64)
            .map(|i| format!("{} purgetoken{i}", filler(70 + i, 300)))
            .collect();
        let t: Vec<(u64, &str)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u64, t.as_str()))
            .collect();
        index.add_documents(t[..5].to_vec(), &stamp(1, 5)).unwrap();
        if index.num_segments() > 1 {
            index.merge_smallest(u64::MAX).unwrap().unwrap();
        }
        index.add_documents(t[5..].to_vec(), &stamp(2, 6)).unwrap();
        assert_eq!(segment_counts(dir), vec![(1, 0), (5, 0)]);
        let bytes = |index: &PassageIndex| -> Vec<u64> {
            let mut v: Vec<u64> = index
                .index
                .searchable_segment_metas()
                .unwrap()
                .iter()
                .map(|m| index.segment_bytes(m))
                .collect();
            v.sort_unstable();
            v
        };
        // One of five deleted (20%): below the share, and the two segments
        // do not fit in one step: nothing to do.
        index.delete_texts(&[0], &stamp(3, 6)).unwrap();
        assert_eq!(segment_counts(dir), vec![(1, 0), (5, 1)]);
        let budget = bytes(&index)[1];
        assert_eq!(index.merge_smallest(budget).unwrap(), None);
        // Two of five (40%): that segment is rewritten alone, without them.
        index.delete_texts(&[1], &stamp(4, 4)).unwrap();
        let budget = bytes(&index)[1];
        let step = index.merge_smallest(budget).unwrap().unwrap();
        assert_eq!((step.segments, step.passages, step.left), (1, 3, 2));
        assert_eq!(segment_counts(dir), vec![(1, 0), (3, 0)]);
        assert_eq!(index.num_passages(), 4);
        assert!(index.search("purgetoken0", 5, None).unwrap().is_empty());
        assert_eq!(index.search("purgetoken2", 5, None).unwrap()[0].key, 2);
        assert_eq!(index.stamp(), Some(stamp(4, 4)));
        // Nothing deleted is left, and the two still do not fit together.
        assert_eq!(index.merge_smallest(bytes(&index)[1]).unwrap(), None);
        // A segment deleted enough but bigger than a step is left as it is.
        index.delete_texts(&[2, 3], &stamp(5, 2)).unwrap();
        assert_eq!(segment_counts(dir), vec![(1, 0), (3, 2)]);
        let sizes = bytes(&index);
        assert!(sizes[0] < sizes[1], "{sizes:?}");
        assert_eq!(index.merge_smallest(sizes[0]).unwrap(), None);
        assert_eq!(segment_counts(dir), vec![(1, 0), (3, 2)]);
    }

    #[test]
    fn stamp_must_match_analysis() {
        let tmp = tempfile::tempdir().unwrap();
        let index = PassageIndex::create(tmp.path()).unwrap();
        let mut bad = stamp(1, 1);
        bad.analyzer = "v4;stop=0;stem=0;p=1500-600".into();
        assert!(matches!(
            index.add_documents([(0, "text")], &bad),
            Err(IndexError::Invalid(_))
        ));
        // An index with other options records them and is reopened with them.
        let opts = AnalyzerOptions {
            stop_words: false,
            stemming: true,
        };
        let index = PassageIndex::create_with(tmp.path(), opts).unwrap();
        let st = IndexStamp {
            index_id: "other-analysis".into(),
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
    fn a_build_commits_each_batch_and_a_refused_one_leaves_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let index = PassageIndex::create(tmp.path()).unwrap();
        let (a, b, c) = (filler(1, 40_000), filler(2, 40_000), filler(3, 40_000));
        let mut build = index.build(&stamp(1, 1)).unwrap();
        assert!(build.add_texts_if([(0, a.as_str())], &[], || true).unwrap());
        // Committed on disk before the build ends: another process sees it.
        let other = PassageIndex::open(tmp.path()).unwrap().unwrap();
        assert_eq!(other.keys().unwrap(), BTreeSet::from([0]));
        // A batch refused once read is not committed, and the build goes on.
        assert!(
            !build
                .add_texts_if([(1, b.as_str())], &[], || false)
                .unwrap()
        );
        assert!(
            build
                .add_texts_if([(2, c.as_str())], &[0], || true)
                .unwrap()
        );
        build.finish().unwrap();
        assert_eq!(index.keys().unwrap(), BTreeSet::from([2]));
        assert_eq!(
            index.num_passages(),
            passages(&c, None).len() as u64,
            "the replaced text's passages are gone, none of the refused batch came in"
        );
        assert_eq!(index.stamp(), Some(stamp(1, 1)));
        // Dropped without finishing, a build keeps what it committed.
        let mut build = index.build(&stamp(1, 1)).unwrap();
        assert!(build.add_texts_if([(3, a.as_str())], &[], || true).unwrap());
        drop(build);
        index.reload().unwrap();
        assert_eq!(index.keys().unwrap(), BTreeSet::from([2, 3]));
        // A stamp of another analysis is refused before anything is written.
        let mut bad = stamp(1, 1);
        bad.analyzer = "v4;stop=0;stem=0;p=1500-600".into();
        assert!(matches!(index.build(&bad), Err(IndexError::Invalid(_))));
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
        assert_eq!(index.search("unique_marker_4", 1, None).unwrap()[0].key, 4);
        assert_eq!(docs.len(), 5);
    }
}
