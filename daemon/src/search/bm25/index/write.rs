//! Writing the passage index: the passages' documents of a text (its
//! outline's headers weighed in), additions and deletions by text key, and
//! builds of several batches with one writer that merges nothing (the
//! compaction does, `merge.rs`).

use std::borrow::Cow;
use std::path::Path;

use tantivy::indexer::NoMergePolicy;
use tantivy::{Index, IndexWriter, TantivyDocument, Term};

use super::{Fields, IndexError, PassageIndex};
use crate::search::analyzer::{self, TOKENIZER_NAME};
use crate::search::bm25::passages::{outline_for_index, passages_of};
use crate::search::bm25::stamp::IndexStamp;
use crate::search::markup;
use crate::search::units::{self, Syntax};

/// Total memory budget of the index writer (split between its threads).
/// 64 MiB: 32 MiB a thread. At 16 MiB a thread (tantivy's least is 15) each
/// thread flushed a segment every few megabytes of text and the merges of
/// those ran beside the indexing on the same two cores (when builds had a
/// merge policy): 260 MB of Rust sources took 7.2-8.6 s to add, commit and
/// merge against 4.1-4.7 s at 64 MiB (96 MiB: 4.1-4.4 s); the arena is
/// freed when the build ends (`rlm-engine-bench index-phases --include
/// '\.rs$' --bytes 268000000`). Each flush is a segment the compaction
/// merges later: fewer, bigger flushes would cost the daemon's peak memory.
const WRITER_MEMORY_BYTES: usize = 64 << 20;
/// At most this many indexing threads (the machine is small and shared).
const MAX_WRITER_THREADS: usize = 2;
/// A text to index: its key, its text, and its syntax by the name it was
/// loaded under (`units::syntax_of`), which decides how it is cut into
/// passages (`passages::outline_for_index`).
#[derive(Debug, Clone, Copy)]
pub struct IndexText<'a> {
    pub key: u64,
    pub text: &'a str,
    pub syntax: Option<Syntax>,
}

impl<'a> From<(u64, &'a str)> for IndexText<'a> {
    /// A text of no known syntax (read as code or prose by its lines).
    fn from((key, text): (u64, &'a str)) -> Self {
        IndexText {
            key,
            text,
            syntax: None,
        }
    }
}

/// A build in progress on a [`PassageIndex`] (see [`PassageIndex::build`]).
/// Dropped without [`IndexBuild::finish`], the batches committed so far stay
/// and merges under way stop (their inputs are left as they were).
pub struct IndexBuild<'a> {
    index: &'a PassageIndex,
    writer: IndexWriter<TantivyDocument>,
    /// The stamp, as every commit's payload.
    payload: String,
}

impl IndexBuild<'_> {
    /// Deletes every passage of the keys in `replace` (what an interrupted
    /// earlier addition may have left), adds the passages of `docs`, and
    /// commits them only if `commit` says so once every text is read (the
    /// engine checks that none came from a pack cut short meanwhile);
    /// returns whether it committed. When it did not, the index stays at the
    /// last commit and the build can go on.
    pub fn add_texts_if<'a>(
        &mut self,
        docs: impl IntoIterator<Item = impl Into<IndexText<'a>>>,
        replace: &[u64],
        commit: impl FnOnce() -> bool,
    ) -> Result<bool, IndexError> {
        let f = self.index.fields;
        for &key in replace {
            self.writer.delete_term(Term::from_field_u64(f.key, key));
        }
        for doc in docs {
            let IndexText { key, text, syntax } = doc.into();
            for doc in passage_documents(f, key, text, syntax) {
                self.writer.add_document(doc)?;
            }
        }
        if !commit() {
            self.writer.rollback()?;
            return Ok(false);
        }
        self.commit()?;
        Ok(true)
    }

    fn commit(&mut self) -> Result<(), IndexError> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&self.payload);
        prepared.commit()?;
        Ok(())
    }

    /// Ends the writer's threads and moves the index's reader to the last
    /// commit. A build merges nothing (its writer's policy is
    /// `NoMergePolicy`), so nothing here waits for a merge.
    pub fn finish(self) -> Result<(), IndexError> {
        self.writer.wait_merging_threads()?;
        self.index.reload()
    }
}

/// How many times the words of a definition's header line count in the
/// passage that holds it (its name and signature say what the passage is,
/// as a title does). Measured through the shim, codesearch MRR@10 / hit@10,
/// seeds 1-3, mean: 1 (the header once, as written) 0.300 / 0.548; 2 0.321 /
/// 0.565; 3 0.330 / 0.567; 4 0.333 / 0.567; niah hit@1 1.00 for each.
pub const HEADER_WEIGHT: usize = 3;

/// The enclosing header lines a passage carries, innermost first, at most: a
/// method's class and a module or impl block around it. A bound, so that a
/// text nested thousands deep cannot make each of its passages carry
/// thousands of lines.
pub const MAX_ENCLOSING_HEADERS: usize = 3;

/// The documents of a text's passages, each with the text as the index
/// reads it: an HTML page's markup left out, passage by passage
/// (`markup::compact_into`: the words the search finds in the masked
/// passage, `search::markup`), the header lines of the definitions the
/// passage is nested in and does not hold (`units::enclosing`, the
/// innermost [`MAX_ENCLOSING_HEADERS`]: a method's passage is also found by
/// its class's name), and again those of the definitions it holds
/// (`units::headers_in`), so that their words count [`HEADER_WEIGHT`] times.
///
/// All of it is one value of the text field, the pieces joined by line
/// breaks ([`append_pieces`]): the index records term frequencies and the
/// field's length in tokens, not positions, so it holds what it would for
/// the pieces as values of their own, and tantivy's per-value work (a
/// boxed token stream each, the document's values collected and sorted)
/// is done once a passage instead of up to a dozen times.
fn passage_documents(
    f: Fields,
    key: u64,
    text: &str,
    syntax: Option<Syntax>,
) -> impl Iterator<Item = TantivyDocument> {
    let html = markup::is_html(text);
    let read = move |piece| as_the_index_reads(html, piece);
    let defs = outline_for_index(text, syntax);
    let layout = passages_of(text, &defs);
    // Each header as the index reads it, once (an HTML page's headers are
    // elements: their words, as the passage's): every passage of a section
    // carries its heading again.
    let headers: Vec<Cow<'_, str>> = defs.iter().map(|d| read(&text[d.header.clone()])).collect();
    // The headers a passage carries, by their index in `defs`.
    let mut pieces: Vec<usize> = Vec::new();
    let mut joined = String::new();
    layout.into_iter().map(move |p| {
        // Header lines start in the order of the definitions, one each.
        let header = |h: std::ops::Range<usize>| -> usize {
            let i = defs.partition_point(|d| d.header.start < h.start);
            debug_assert_eq!(defs[i].header, h);
            i
        };
        pieces.clear();
        pieces.extend(
            units::enclosing(&defs, p.start_byte)
                .take(MAX_ENCLOSING_HEADERS)
                .map(header),
        );
        // The headers it holds weigh more, as a title would.
        for held in units::headers_in(&defs, p.start_byte..p.end_byte).map(header) {
            pieces.extend(std::iter::repeat_n(held, HEADER_WEIGHT - 1));
        }
        let body = &text[p.start_byte..p.end_byte];
        let carried = pieces.iter().map(|&i| &*headers[i]);
        // One buffer for every passage: a page's passage is compacted into
        // it, another's copied there only when headers follow it.
        let value: &str = if html {
            markup::compact_into(body, &mut joined);
            append_pieces(&mut joined, carried);
            &joined
        } else if pieces.is_empty() {
            body
        } else {
            joined.clear();
            joined.push_str(body);
            append_pieces(&mut joined, carried);
            &joined
        };
        // The document's bytes, sized once (three numbers and a string).
        let mut doc = TantivyDocument::with_capacity(value.len() + 64);
        doc.add_u64(f.key, key);
        doc.add_u64(f.start, p.start_char);
        doc.add_u64(f.end, p.end_char);
        doc.add_text(f.text, value);
        doc
    })
}

/// Appends each of `pieces` to `out` on a line of its own: a line break is
/// no part of a word, so the analysis gives the tokens of what `out` held
/// and of each piece, and none that spans two.
fn append_pieces<'p>(out: &mut String, pieces: impl Iterator<Item = &'p str> + Clone) {
    out.reserve(pieces.clone().map(|p| p.len() + 1).sum::<usize>());
    for piece in pieces {
        out.push('\n');
        out.push_str(piece);
    }
}

/// A piece of a text as the index reads it: an HTML page's without its
/// markup (`markup::compact_into`), any other as it is.
fn as_the_index_reads(html: bool, piece: &str) -> Cow<'_, str> {
    if html {
        let mut out = String::with_capacity(piece.len());
        markup::compact_into(piece, &mut out);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(piece)
    }
}

impl PassageIndex {
    /// Adds the passages of these texts ([`IndexText`], or (key, text) for a text
    /// of no known syntax), commits once with `stamp` as the
    /// payload and reloads the reader. `stamp.analyzer` must be [`PassageIndex::signature`].
    /// On error nothing is committed: the index stays as it was.
    pub fn add_documents<'a>(
        &self,
        docs: impl IntoIterator<Item = impl Into<IndexText<'a>>>,
        stamp: &IndexStamp,
    ) -> Result<(), IndexError> {
        self.add_texts_if(docs, &[], stamp, || true).map(|_| ())
    }

    /// [`PassageIndex::add_documents`] after deleting every passage of the
    /// keys in `replace`, committed only if `commit` says so: one batch of
    /// an [`IndexBuild`], which it makes and finishes.
    pub fn add_texts_if<'a>(
        &self,
        docs: impl IntoIterator<Item = impl Into<IndexText<'a>>>,
        replace: &[u64],
        stamp: &IndexStamp,
        commit: impl FnOnce() -> bool,
    ) -> Result<bool, IndexError> {
        let mut build = self.build(stamp)?;
        let committed = build.add_texts_if(docs, replace, commit)?;
        build.finish()?;
        Ok(committed)
    }

    /// A build of several batches with one writer: each batch is committed
    /// on its own (so what is done survives a failure of the next one). It
    /// merges no segments: the compaction does, a bounded step at a time,
    /// after it ([`PassageIndex::merge_smallest`]). `stamp.analyzer` must be
    /// [`PassageIndex::signature`].
    pub fn build(&self, stamp: &IndexStamp) -> Result<IndexBuild<'_>, IndexError> {
        let expected = self.signature();
        if stamp.analyzer != expected {
            return Err(IndexError::Invalid(format!(
                "stamp analyzer {:?} is not this index's {:?}",
                stamp.analyzer, expected
            )));
        }
        self.writing(stamp)
    }

    /// A writer on the directory as it is on disk now, committing with
    /// `stamp` as the payload.
    fn writing(&self, stamp: &IndexStamp) -> Result<IndexBuild<'_>, IndexError> {
        let payload =
            serde_json::to_string(stamp).map_err(|e| IndexError::Tantivy(e.to_string()))?;
        Ok(IndexBuild {
            index: self,
            writer: self.writer()?,
            payload,
        })
    }

    /// Deletes every passage of these texts, and commits with `stamp`.
    pub fn delete_texts(&self, keys: &[u64], stamp: &IndexStamp) -> Result<(), IndexError> {
        let mut build = self.writing(stamp)?;
        for &key in keys {
            build
                .writer
                .delete_term(Term::from_field_u64(self.fields.key, key));
        }
        build.commit()?;
        build.finish()
    }

    /// A writer on the directory as it is on disk now (see the type's doc).
    fn writer(&self) -> Result<IndexWriter<TantivyDocument>, IndexError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_WRITER_THREADS);
        self.writer_with_threads(threads)
    }

    /// A writer of `threads` indexing threads on the directory as it is on
    /// disk now, merging nothing.
    fn writer_with_threads(
        &self,
        threads: usize,
    ) -> Result<IndexWriter<TantivyDocument>, IndexError> {
        let index = Index::open_in_dir(&self.dir)?;
        index
            .tokenizers()
            .register(TOKENIZER_NAME, analyzer::text_analyzer(self.opts));
        let writer =
            index.writer_with_num_threads::<TantivyDocument>(threads, WRITER_MEMORY_BYTES)?;
        // Writers merge nothing: the compaction owns every merge, in steps
        // of bounded size (`merge_smallest`). A merge policy's merges cannot
        // be stopped once begun, and a build's end waited for them: with
        // tantivy's `LogMergePolicy`, seventy builds of 100 MB each waited
        // 1-1.5 s every fourth build and 12-13 s twice, while it merged
        // eight merged segments (docs/BENCHMARKS.md).
        writer.set_merge_policy(Box::new(NoMergePolicy));
        Ok(writer)
    }
}

/// What one build of an index over `texts` spends in each phase, with
/// `threads` writer threads: making the tantivy documents, opening the
/// writer, adding the documents, the commit, and ending the writer (its
/// threads; it merges nothing, as the engine's builds). For
/// `rlm-engine-bench index-phases`; the engine builds with
/// [`PassageIndex::add_documents`].
#[doc(hidden)]
pub fn measure_build_phases(
    dir: &Path,
    texts: &[String],
    threads: usize,
) -> Result<[std::time::Duration; 5], IndexError> {
    use std::time::Instant;
    let index = PassageIndex::create(dir)?;
    let f = index.fields;
    let t0 = Instant::now();
    let mut docs = Vec::new();
    for (ord, text) in texts.iter().enumerate() {
        docs.extend(passage_documents(f, ord as u64, text, None));
    }
    let t_docs = t0.elapsed();
    let t0 = Instant::now();
    let mut writer = index.writer_with_threads(threads)?;
    let t_writer = t0.elapsed();
    let t0 = Instant::now();
    for d in docs {
        writer.add_document(d)?;
    }
    let t_add = t0.elapsed();
    let t0 = Instant::now();
    writer.commit()?;
    let t_commit = t0.elapsed();
    let t0 = Instant::now();
    writer.wait_merging_threads()?;
    let t_wait = t0.elapsed();
    Ok([t_docs, t_writer, t_add, t_commit, t_wait])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::bm25::index::build_schema;
    use crate::search::bm25::passages;
    use tantivy::schema::Value as _;

    /// The terms of `text` as the index analyses it.
    fn terms(text: &str) -> Vec<String> {
        use crate::search::analyzer::{AnalyzerOptions, analyze};
        analyze(text, AnalyzerOptions::DEFAULT)
            .into_iter()
            .map(|t| t.term)
            .collect()
    }

    /// The pieces a passage's value holds beside its body: its lines
    /// past the body's.
    fn pieces_beside(doc: &TantivyDocument, f: Fields, body: &str) -> usize {
        let values: Vec<&str> = doc.get_all(f.text).filter_map(|v| v.as_str()).collect();
        assert_eq!(values.len(), 1, "one text value a passage");
        assert!(values[0].starts_with(body));
        values[0].split('\n').count() - body.split('\n').count()
    }

    /// A text nested thousands of definitions deep: each passage carries at
    /// most [`MAX_ENCLOSING_HEADERS`] enclosing headers beside its own text
    /// and its own headers again.
    #[test]
    fn passages_carry_a_bounded_number_of_headers() {
        let mut deep = String::new();
        for d in 0..2000 {
            deep.push_str(&" ".repeat(d));
            deep.push_str(&format!("def level_{d}(x):\n"));
        }
        let (_, f) = build_schema();
        let defs = units::outline(&deep);
        assert_eq!(defs.len(), 2000);
        let docs: Vec<TantivyDocument> = passage_documents(f, 1, &deep, None).collect();
        assert!(docs.len() > 100);
        let layout = passages(&deep, None);
        for (doc, p) in docs.iter().zip(&layout) {
            let held = units::headers_in(&defs, p.start_byte..p.end_byte).count();
            let pieces = pieces_beside(doc, f, &deep[p.start_byte..p.end_byte]);
            assert!(
                pieces <= MAX_ENCLOSING_HEADERS + (HEADER_WEIGHT - 1) * held,
                "{pieces} pieces for {held} headers"
            );
        }
        // A passage past the first holds part of the nesting: it carries some.
        let p = &layout[10];
        let pieces = pieces_beside(&docs[10], f, &deep[p.start_byte..p.end_byte]);
        assert!(pieces > (HEADER_WEIGHT - 1) * 2, "{pieces}");
    }

    /// An HTML page's passages are read without their markup, their
    /// headings' words after their own: a value's tokens start with those
    /// of its passage as the search reads it (masked), and no tag, attribute
    /// or reference is in it.
    #[test]
    fn a_pages_passages_are_read_without_markup() {
        let mut page =
            String::from("<!DOCTYPE html><html><head><style>p { x: y }</style></head><body>");
        for s in 0..6 {
            page.push_str(&format!(
                "<h2 id=\"s{s}\">Section <code>topic_{s}</code> &amp; more</h2>"
            ));
            for n in 0..40 {
                page.push_str(&format!(
                    "<p class=\"docblock\">Paragraph {n} of <a href=\"../x/{s}.html\">section {s}</a>.</p>\n"
                ));
            }
        }
        page.push_str("</body></html>");
        let (_, f) = build_schema();
        let docs: Vec<TantivyDocument> = passage_documents(f, 1, &page, None).collect();
        let layout = passages(&page, None);
        assert!(layout.len() > 6, "{}", layout.len());
        let mut carried = 0;
        for (doc, p) in docs.iter().zip(&layout) {
            let value = doc.get_first(f.text).and_then(|v| v.as_str()).unwrap();
            for markup in ["<", ">", "href", "docblock", "&amp;", "style"] {
                assert!(!value.contains(markup), "{markup:?} in {value:?}");
            }
            let read = terms(&markup::mask(&page[p.start_byte..p.end_byte]));
            let all = terms(value);
            assert_eq!(all[..read.len()], read[..]);
            carried += all.len() - read.len();
        }
        // The passages of a section carry its heading's words.
        assert!(carried > 0);
    }

    /// The joined value analyses to the tokens of its pieces one after
    /// another (what the index held when each piece was a value of its
    /// own): no word runs on across a join, none is cut, wherever the
    /// pieces end and start (a letter, `_`, a digit, a Han char, a
    /// combining mark, nothing).
    #[test]
    fn joined_pieces_give_the_tokens_of_each_piece() {
        let pieces = [
            "fn read_file(path: &Path) -> io::Result<String> {",
            "impl Reader",
            "parseHTTPHeader",
            "_",
            "__init__",
            "class 文字列処理",
            "漢字",
            "cafe\u{301}",
            "",
            "x1",
            "2y",
            "trailing_",
            "  indented body\nsecond line_end",
        ];
        for (i, body) in pieces.iter().enumerate() {
            let rest: Vec<&str> = pieces.iter().cycle().skip(i + 1).take(5).copied().collect();
            let mut joined = (*body).to_owned();
            append_pieces(&mut joined, rest.iter().copied());
            let mut expected = terms(body);
            for piece in &rest {
                expected.extend(terms(piece));
            }
            assert_eq!(terms(&joined), expected, "{joined:?}");
        }
    }
}
