//! Query words run together: the words of the index that join two nearby words of a bm25
//! query, whole or cut short (`read file` finds `readfile`, `previous focus` finds
//! `focusprev`, `is a directory` finds `isdir`), each looked up in each segment's term
//! dictionary, and scored beside the query's own words at [`COMPOUND_WEIGHT`].
//!
//! Code names things by running words together without a separator (`readfile`,
//! `getattr`, `numinput`), which the analyzer cannot split: it would need to know the
//! words. A query written in words can still find them, by asking the index for the
//! words' joins.

use std::collections::HashSet;

use super::index::IndexError;
use super::view::IndexView;

/// Words of a query, from its start, that joins are made of (a query of more words
/// looks for joins among its first ones only).
pub const MAX_COMPOUND_WORDS: usize = 32;

/// How far apart two query words may be and still be joined: at most this many
/// positions (`is a directory`: `is` and `directory` are 2 apart).
pub const COMPOUND_REACH: usize = 3;

/// A word is also joined cut to its first 3 and 4 letters (`dir`, `attr`, `prev`), the
/// commonest way code shortens a word, when that leaves out at least two letters.
const SHORT_FORMS: [usize; 2] = [3, 4];

/// Joins shorter than this (bytes) are not looked for: most are words of their own
/// (`into`, `isin`).
pub const MIN_COMPOUND_BYTES: usize = 5;

/// Joins found in the index that one query scores, at most (the first in query order).
pub const MAX_COMPOUNDS: usize = 16;

/// What a join's BM25 score counts for in a passage's score, where a query word counts
/// 1: it is a guess at what the query means, not one of its words. Chosen on
/// `codesearch.py` (docs/BENCHMARKS.md, "Query words run together").
pub const COMPOUND_WEIGHT: f32 = 0.5;

/// The joins that [`compounds`] looks for in `query`, in query order: for every two
/// different words of ASCII letters (two or more, lower-cased) among its first
/// [`MAX_COMPOUND_WORDS`] words, at most [`COMPOUND_REACH`] positions apart, in either
/// order, the first word then the second, each whole or cut to its first 3 or 4 letters,
/// of [`MIN_COMPOUND_BYTES`] or more. A word is a run of letters and digits; one with
/// other than ASCII letters joins nothing but still counts as a position.
pub fn compound_candidates(query: &str) -> Vec<String> {
    let words: Vec<Option<String>> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_COMPOUND_WORDS)
        .map(|w| {
            (w.len() >= 2 && w.bytes().all(|b| b.is_ascii_alphabetic()))
                .then(|| w.to_ascii_lowercase())
        })
        .collect();
    fn parts(w: &str) -> impl Iterator<Item = &str> {
        std::iter::once(w.len())
            .chain(SHORT_FORMS.into_iter().filter(|&k| w.len() >= k + 2))
            .map(move |k| &w[..k])
    }
    let mut out: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, first) in words.iter().enumerate() {
        let Some(first) = first else { continue };
        let from = i.saturating_sub(COMPOUND_REACH);
        let to = (i + COMPOUND_REACH).min(words.len() - 1);
        for second in words[from..=to].iter().flatten() {
            if second == first {
                continue;
            }
            for a in parts(first) {
                for b in parts(second) {
                    if a.len() + b.len() < MIN_COMPOUND_BYTES {
                        continue;
                    }
                    let join = format!("{a}{b}");
                    if seen.insert(join.clone()) {
                        out.push(join);
                    }
                }
            }
        }
    }
    out
}

/// The joins of `query`'s words ([`compound_candidates`]) that `view`'s passages hold,
/// other than those in `asked` (the query's own words and their forms), each with the
/// number of the view's passages holding it, in query order, at most [`MAX_COMPOUNDS`].
/// Each is looked up in each segment's term dictionary.
pub(crate) fn compounds(
    view: &IndexView,
    query: &str,
    asked: &[String],
) -> Result<Vec<(String, u64)>, IndexError> {
    let candidates: Vec<String> = compound_candidates(query)
        .into_iter()
        .filter(|c| !asked.contains(c))
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut present: Vec<bool> = vec![false; candidates.len()];
    for reader in view.searcher.segment_readers() {
        if !view.may_hold(reader.segment_id()) {
            continue;
        }
        let inverted = reader.inverted_index(view.text)?;
        let terms = inverted.terms();
        for (c, p) in candidates.iter().zip(present.iter_mut()) {
            if !*p && terms.term_ord(c.as_bytes())?.is_some() {
                *p = true;
            }
        }
    }
    let mut found = Vec::new();
    for (join, _) in candidates.into_iter().zip(present).filter(|(_, p)| *p) {
        if found.len() == MAX_COMPOUNDS {
            break;
        }
        // A segment's dictionary keeps the words of deleted passages and of other
        // sessions' texts: the view's own count decides.
        let df = view.doc_freq(&tantivy::Term::from_field_text(view.text, &join))?;
        if df > 0 {
            found.push((join, df));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::analyzer::AnalyzerOptions;
    use crate::search::bm25::{PassageIndex, Statistics};

    fn build(dir: &std::path::Path, texts: &[&str]) -> PassageIndex {
        crate::search::bm25::test_index(dir, AnalyzerOptions::DEFAULT, texts)
    }

    #[test]
    fn nearby_words_are_joined_whole_or_cut_short() {
        let c = compound_candidates("Read file FILENAME into the option database");
        for join in [
            "readfile",
            "fileread",
            "filefilename",
            "fileinto",
            "optiondatabase",
        ] {
            assert!(c.iter().any(|x| x == join), "{join} in {c:?}");
        }
        // Cut to 3 or 4 letters when two or more are left out, either side.
        let c = compound_candidates("Return True if the path is a directory");
        for join in ["isdir", "isdire", "isdirectory", "dirpath", "pathdir"] {
            assert!(c.iter().any(|x| x == join), "{join} in {c:?}");
        }
        assert!(compound_candidates("previous focus").contains(&"focusprev".to_owned()));
        assert!(compound_candidates("number input").contains(&"numinput".to_owned()));
        // `path` keeps its four letters: cutting one off is not a short form.
        assert!(!c.iter().any(|x| x == "patdir"));
        // Too far apart: `return` and `path` are 4 positions apart.
        assert!(!c.iter().any(|x| x == "returnpath" || x == "pathreturn"));
        // Too short, the same word twice, one letter, digits, other scripts: none.
        assert!(!c.iter().any(|x| x.len() < MIN_COMPOUND_BYTES));
        assert!(compound_candidates("file file").is_empty());
        assert!(compound_candidates("a file").is_empty());
        assert!(compound_candidates("utf8 decoder").is_empty());
        assert!(compound_candidates("naïve parser").is_empty());
        assert!(compound_candidates("").is_empty());
        // Every join is made of words of the query, lower-cased.
        assert!(compound_candidates("readFile now").contains(&"readfilenow".to_owned()));
    }

    #[test]
    fn only_the_first_words_of_a_long_query_are_joined() {
        let mut query: Vec<String> = (0..MAX_COMPOUND_WORDS)
            .map(|i| format!("w{}", "x".repeat(i + 2)))
            .collect();
        query.push("late".into());
        query.push("words".into());
        let query = query.join(" ");
        let c = compound_candidates(&query);
        assert!(!c.is_empty());
        assert!(!c.iter().any(|x| x.contains("late") || x.contains("words")));
        // A huge query costs what its first words cost.
        let huge = "alpha beta ".repeat(100_000);
        assert!(compound_candidates(&huge).len() <= 6 * 4);
    }

    #[test]
    fn the_index_words_that_join_query_words_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let index = build(
            tmp.path(),
            &[
                "def readfile(name): return open(name).read()",
                "def isdir(path): return stat(path).mode",
                "def focusprev(widget): pass",
                "def unrelated(): return readable",
            ],
        );
        let view = index.view(None, Statistics::View).unwrap();
        let found = |q: &str, asked: &[&str]| -> Vec<String> {
            let asked: Vec<String> = asked.iter().map(|s| (*s).to_owned()).collect();
            compounds(&view, q, &asked)
                .unwrap()
                .into_iter()
                .map(|(j, df)| {
                    assert_eq!(df, 1, "{j}");
                    j
                })
                .collect()
        };
        assert_eq!(found("read a file", &[]), ["readfile"]);
        assert_eq!(
            found("Return True if the path is a directory", &[]),
            ["isdir"]
        );
        assert_eq!(found("Return the previous focus", &[]), ["focusprev"]);
        // A join the query asks for itself is its own word, not a join.
        assert!(found("read file", &["readfile"]).is_empty());
        assert!(found("read one two three four file", &[]).is_empty());
        assert!(found("nothing joins here", &[]).is_empty());
    }

    /// A join scores as its word would, at [`COMPOUND_WEIGHT`]: a passage that holds only
    /// the join is found by the words it joins, at half the score the join itself gives.
    #[test]
    fn a_join_is_scored_at_its_weight() {
        let tmp = tempfile::tempdir().unwrap();
        let index = build(
            tmp.path(),
            &[
                "def readfile(name): pass",
                "def read(name): pass",
                "def other(): file",
                "nothing of the kind",
            ],
        );
        let view = index.view(None, Statistics::View).unwrap();
        let (hits, terms) = view.search_terms("read file", 10, None).unwrap();
        let mut keys: Vec<u64> = hits.iter().map(|h| h.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, [0, 1, 2]);
        let (alone, alone_terms) = view.search_terms("readfile", 10, None).unwrap();
        assert_eq!(alone.len(), 1);
        let joined = hits.iter().find(|h| h.key == 0).unwrap();
        assert!(
            (joined.score - COMPOUND_WEIGHT * alone[0].score).abs() < 1e-4,
            "{} against {}",
            joined.score,
            alone[0].score
        );
        // Highlights and contexts weigh the join the same way.
        let weight = |terms: &[crate::search::bm25::QueryTerm]| {
            terms.iter().find(|t| t.term == "readfile").unwrap().weight
        };
        assert!((weight(&terms) - COMPOUND_WEIGHT * weight(&alone_terms)).abs() < 1e-6);
        // Words too far apart join nothing: the passage is not found.
        let (far, _) = view
            .search_terms("read one two three four file", 10, None)
            .unwrap();
        assert!(far.iter().all(|h| h.key != 0));
    }
}
