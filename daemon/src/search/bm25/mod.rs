//! The BM25 index over passages (tantivy), shared by every session of a store.
//!
//! Every stored text (identified by its `key`, which the store gives it once, for good) is
//! cut into consecutive [`passages()`] of at most [`PASSAGE_CHARS`] code points (one
//! starting at each definition of code, or heading of a Markdown file or HTML page, once
//! the one before holds [`MIN_UNIT_CHARS`], ending before a definition or a paragraph where the
//! text has them), and each
//! passage is a tantivy document: `text_key` (u64, indexed + fast), `start` / `end` (u64,
//! fast: code point offsets in the text) and `text` (the passage, the header lines of the
//! definitions it is nested in, and its own header lines again, analysed with the `rlm` tokenizer of
//! [`super::analyzer`], term frequencies only, not stored: the text lives in the store).
//! A session searches an [`IndexView`]: the passages of its own texts in one snapshot, with
//! BM25 statistics of those passages ([`Statistics::View`]) or of the whole index.
//!
//! What an index covers is proven only by its [`IndexStamp`], stored as the payload of the
//! tantivy commit. [`PassageIndex::open`] checks every file of every committed segment
//! (presence and checksum) so that a damaged index is reported as
//! [`IndexError::Damaged`] and rebuilt, never served.
//!
//! [`best_cluster`] and [`highlights`] find query terms again inside a passage (or any text)
//! with the same analysis, to centre contexts and mark hits; a [`TermMatcher`] finds them
//! mostly without analysing the text.
//!
//! The parts, each re-exported here (callers name everything `bm25::X`): `passages.rs`
//! (the passage layout), `stamp.rs` (what a stored index covers, the analysis signature),
//! `index.rs` (the tantivy index: schema, additions and deletions, open, search), `forms.rs`
//! (a query word's other forms in the index, scored as one term), `compounds.rs` (index
//! words that run two query words together, scored beside them), `view.rs`
//! (a set of texts in one snapshot: the filter and the statistics) and `matching.rs` (query
//! terms found again in a text: clusters, highlights).

mod compounds;
mod forms;
mod index;
mod matching;
mod passages;
mod stamp;
mod view;

pub use index::{
    IndexBuild, IndexError, IndexText, Merged, PassageHit, PassageIndex, QueryTerm,
    measure_build_phases,
};
pub use matching::{
    TermMatcher, best_cluster, best_cluster_in, best_cluster_with, highlights, highlights_in,
    highlights_with, occurrences,
};
pub use passages::{MIN_UNIT_CHARS, PASSAGE_CHARS, PASSAGE_SNAP, Passage, passages};
pub use stamp::{INDEX_FORMAT, IndexStamp, parse_signature, signature};
pub use view::{IndexView, KeySet, Statistics};

/// An index in `dir` of `texts`, text `i` under key `i`, for the parts' tests.
#[cfg(test)]
pub(crate) fn test_index(
    dir: &std::path::Path,
    opts: crate::search::analyzer::AnalyzerOptions,
    texts: &[&str],
) -> PassageIndex {
    let index = PassageIndex::create_with(dir, opts).unwrap();
    let stamp = IndexStamp {
        index_id: "test".into(),
        analyzer: signature(opts),
    };
    index
        .add_documents(
            texts.iter().enumerate().map(|(i, t)| (i as u64, *t)),
            &stamp,
        )
        .unwrap();
    index
}
