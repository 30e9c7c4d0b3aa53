//! One session's view of the shared passage index: the passages of the texts
//! it holds, in one searcher snapshot. A view filters every search to its
//! texts (without losing block-max WAND pruning), and gives the BM25
//! statistics either of its own passages or of the whole index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::columnar::Column;
use tantivy::query::{Bm25StatisticsProvider, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    BitSet, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term, index::SegmentId,
};

use super::forms::{MAX_CACHED_GROUPS, WordGroup};
use super::index::IndexError;
use crate::search::analyzer::AnalyzerOptions;

/// Which passages the BM25 statistics (passage count, average length,
/// document frequencies) are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Statistics {
    /// The passages of the view's own texts: a session's scores do not
    /// depend on what other sessions hold (the default).
    #[default]
    View,
    /// Every passage of the shared index.
    Index,
}

/// A set of text keys, as a dense bit array (keys are small integers given
/// out in order by the store).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    words: Vec<u64>,
    len: usize,
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// Adds `key`; true when it was not there.
    pub fn insert(&mut self, key: u64) -> bool {
        let (w, b) = ((key / 64) as usize, key % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let fresh = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        self.len += usize::from(fresh);
        fresh
    }

    pub fn contains(&self, key: u64) -> bool {
        let (w, b) = ((key / 64) as usize, key % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromIterator<u64> for KeySet {
    fn from_iter<I: IntoIterator<Item = u64>>(iter: I) -> KeySet {
        let mut set = KeySet::new();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

/// What a segment holds of a view.
#[derive(Debug, Clone)]
pub(crate) enum Held {
    /// Every live document: no filter needed.
    All,
    /// The documents in the bit set (some, not none, not all).
    Some(Arc<BitSet>),
    /// None of them.
    None,
}

/// What each segment of a view's searcher holds of it.
pub(crate) type Filters = HashMap<SegmentId, Held>;

/// The `[key, start, end]` columns of each segment of a searcher, by segment ord.
pub(crate) type SegmentColumns = Vec<[Column<u64>; 3]>;

/// A session's passages in one snapshot of the shared index.
pub struct IndexView {
    pub(crate) searcher: Searcher,
    pub(crate) key: Field,
    pub(crate) text: Field,
    pub(crate) opts: AnalyzerOptions,
    pub(crate) filters: Arc<Filters>,
    pub(crate) columns: SegmentColumns,
    /// Passages (live documents) in the view.
    pub(crate) passages: u64,
    /// Tokens of those passages (their field norms).
    pub(crate) tokens: u64,
    /// The keys with at least one passage in the view.
    pub(crate) held: KeySet,
    pub(crate) statistics: Statistics,
    /// Whether a query word also matches its other forms (`forms.rs`; off
    /// unless the daemon's `[search] word_forms` is on).
    pub word_forms: bool,
    /// The query words this view was asked for, with their forms.
    pub(crate) groups: Mutex<HashMap<String, Arc<WordGroup>>>,
}

impl std::fmt::Debug for IndexView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexView")
            .field("passages", &self.passages)
            .field("statistics", &self.statistics)
            .finish_non_exhaustive()
    }
}

impl IndexView {
    /// Builds the view of the texts in `keys` over `searcher`: one scan of
    /// the key column of every segment.
    pub(crate) fn build(
        searcher: Searcher,
        [key, text]: [Field; 2],
        opts: AnalyzerOptions,
        columns: SegmentColumns,
        keys: Option<&KeySet>,
        statistics: Statistics,
    ) -> Result<IndexView, IndexError> {
        let mut filters = Filters::new();
        let (mut passages, mut tokens) = (0u64, 0u64);
        let mut seen = KeySet::new();
        // Counted document by document whatever the segments are, so that
        // the same texts have the same statistics however merges grouped
        // them, and deleted passages count for nothing.
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let column = &columns[ord][0];
            let alive = reader.alive_bitset();
            let norms = reader.get_fieldnorms_reader(text)?;
            let mut bits = BitSet::with_max_value(reader.max_doc());
            let mut held = 0u32;
            for doc in 0..reader.max_doc() {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let Some(key) = column.first(doc) else {
                    continue;
                };
                if keys.is_none_or(|keys| keys.contains(key)) {
                    seen.insert(key);
                    bits.insert(doc);
                    held += 1;
                    tokens += u64::from(norms.fieldnorm(doc));
                }
            }
            passages += u64::from(held);
            // `All` only without deletions: then the term dictionary's
            // counts are the view's.
            let segment = if held == reader.max_doc() {
                Held::All
            } else if held == 0 {
                Held::None
            } else {
                Held::Some(Arc::new(bits))
            };
            filters.insert(reader.segment_id(), segment);
        }
        Ok(IndexView {
            searcher,
            key,
            text,
            opts,
            filters: Arc::new(filters),
            columns,
            passages,
            tokens,
            held: seen,
            statistics,
            word_forms: false,
            groups: Mutex::default(),
        })
    }

    /// About what the view keeps on the heap: its bit sets and word groups.
    pub fn heap_bytes(&self) -> usize {
        let bits: usize = self
            .filters
            .values()
            .map(|h| match h {
                Held::Some(b) => b.max_value() as usize / 8,
                Held::All | Held::None => 0,
            })
            .sum();
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner()).len();
        // A group: its key, a stem and a few forms.
        bits + self.held.words.len() * 8 + groups * 160
    }

    /// Whether the view has passages of the text of `key`.
    pub fn holds(&self, key: u64) -> bool {
        self.held.contains(key)
    }

    /// Passages in the view.
    pub fn passages(&self) -> u64 {
        self.passages
    }

    /// The number of the view's passages holding `term` (for
    /// [`Statistics::Index`], of the index's).
    pub(crate) fn doc_freq(&self, term: &Term) -> Result<u64, IndexError> {
        if self.statistics == Statistics::Index {
            return Ok(self.searcher.doc_freq(term)?);
        }
        let mut n = 0u64;
        for reader in self.searcher.segment_readers() {
            let inverted = reader.inverted_index(self.text)?;
            match self.filters.get(&reader.segment_id()) {
                Some(Held::All) => n += u64::from(inverted.doc_freq(term)?),
                Some(Held::Some(bits)) => {
                    if let Some(mut postings) =
                        inverted.read_postings(term, IndexRecordOption::Basic)?
                    {
                        let mut doc = postings.doc();
                        while doc != TERMINATED {
                            n += u64::from(bits.contains(doc));
                            doc = postings.advance();
                        }
                    }
                }
                Some(Held::None) | None => {}
            }
        }
        Ok(n)
    }

    /// The group of `term` if a search of this view found it already.
    pub(crate) fn cached_group(&self, term: &str) -> Option<Arc<WordGroup>> {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.get(term).cloned()
    }

    /// Keeps the group of `term` for the next searches.
    pub(crate) fn keep_group(&self, term: &str, group: Arc<WordGroup>) {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if groups.len() >= MAX_CACHED_GROUPS {
            groups.clear();
        }
        groups.insert(term.to_owned(), group);
    }

    /// Whether the view may have passages in this segment.
    pub(crate) fn may_hold(&self, segment: tantivy::index::SegmentId) -> bool {
        matches!(self.filters.get(&segment), Some(Held::All | Held::Some(_)))
    }

    /// The number of the view's passages holding any of `terms` (for
    /// [`Statistics::Index`], of the index's): each segment's postings of the terms read
    /// together once.
    pub(crate) fn union_doc_freq(&self, terms: &[Term]) -> Result<u64, IndexError> {
        if let [term] = terms {
            return self.doc_freq(term);
        }
        let mut n = 0u64;
        for reader in self.searcher.segment_readers() {
            let bits = match self.filters.get(&reader.segment_id()) {
                _ if self.statistics == Statistics::Index => None,
                Some(Held::All) => None,
                Some(Held::Some(bits)) => Some(bits),
                Some(Held::None) | None => continue,
            };
            let inverted = reader.inverted_index(self.text)?;
            let mut postings = Vec::with_capacity(terms.len());
            for term in terms {
                if let Some(p) = inverted.read_postings(term, IndexRecordOption::Basic)? {
                    postings.push(p);
                }
            }
            let alive = reader.alive_bitset();
            loop {
                let doc = postings.iter().map(DocSet::doc).min().unwrap_or(TERMINATED);
                if doc == TERMINATED {
                    break;
                }
                let counted = match bits {
                    Some(bits) => bits.contains(doc),
                    None => alive.is_none_or(|a| a.is_alive(doc)),
                };
                n += u64::from(counted);
                for p in &mut postings {
                    if p.doc() == doc {
                        p.advance();
                    }
                }
            }
        }
        Ok(n)
    }

    /// The passage count BM25 is computed over.
    pub(crate) fn total_docs(&self) -> u64 {
        match self.statistics {
            Statistics::View => self.passages,
            Statistics::Index => self.searcher.num_docs(),
        }
    }

    /// `query` restricted to the view's passages.
    pub(crate) fn restrict(&self, query: Box<dyn Query>) -> Box<dyn Query> {
        Box::new(InView {
            inner: query,
            filters: self.filters.clone(),
        })
    }
}

/// BM25 statistics of a view, with the query terms' frequencies already
/// counted.
pub(crate) struct ViewStats<'a> {
    pub view: &'a IndexView,
    pub freqs: &'a [(Term, u64)],
}

impl Bm25StatisticsProvider for ViewStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        match self.view.statistics {
            Statistics::View => Ok(self.view.tokens),
            Statistics::Index => self.view.searcher.total_num_tokens(field),
        }
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.view.total_docs())
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        match self.freqs.iter().find(|(t, _)| t == term) {
            Some(&(_, df)) => Ok(df),
            None => self
                .view
                .doc_freq(term)
                .map_err(|e| tantivy::TantivyError::InternalError(e.to_string())),
        }
    }
}

/// A query whose matches are kept only inside a view.
#[derive(Debug)]
struct InView {
    inner: Box<dyn Query>,
    filters: Arc<Filters>,
}

impl Clone for InView {
    fn clone(&self) -> InView {
        InView {
            inner: self.inner.box_clone(),
            filters: self.filters.clone(),
        }
    }
}

impl Query for InView {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(InViewWeight {
            inner: self.inner.weight(enable_scoring)?,
            filters: self.filters.clone(),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor);
    }
}

struct InViewWeight {
    inner: Box<dyn Weight>,
    filters: Arc<Filters>,
}

impl InViewWeight {
    /// A segment the view's searcher did not have holds nothing of it.
    fn held(&self, reader: &SegmentReader) -> &Held {
        self.filters
            .get(&reader.segment_id())
            .unwrap_or(&Held::None)
    }
}

impl Weight for InViewWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        match self.held(reader) {
            Held::All => self.inner.scorer(reader, boost),
            Held::Some(bits) => {
                let mut inner = self.inner.scorer(reader, boost)?;
                let mut doc = inner.doc();
                while doc != TERMINATED && !bits.contains(doc) {
                    doc = inner.advance();
                }
                Ok(Box::new(Filtered {
                    inner,
                    bits: Arc::clone(bits),
                }))
            }
            Held::None => Ok(Box::new(tantivy::query::EmptyScorer)),
        }
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.inner.explain(reader, doc)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        match self.held(reader) {
            Held::All => self.inner.for_each_pruning(threshold, reader, callback),
            // The inner query keeps its pruning: only passages in the view
            // raise the threshold, so nothing that could enter the top is skipped.
            Held::Some(bits) => {
                let mut current = threshold;
                self.inner
                    .for_each_pruning(threshold, reader, &mut |doc, score| {
                        if bits.contains(doc) {
                            current = callback(doc, score);
                        }
                        current
                    })
            }
            Held::None => Ok(()),
        }
    }
}

/// A scorer that skips the documents outside a bit set.
struct Filtered {
    inner: Box<dyn Scorer>,
    bits: Arc<BitSet>,
}

impl DocSet for Filtered {
    fn advance(&mut self) -> DocId {
        let mut doc = self.inner.advance();
        while doc != TERMINATED && !self.bits.contains(doc) {
            doc = self.inner.advance();
        }
        doc
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
}

impl Scorer for Filtered {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}
