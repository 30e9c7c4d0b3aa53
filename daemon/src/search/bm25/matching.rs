//! Finding the query terms again in a text (a passage, a context) with the index's
//! analysis: the [`TermMatcher`], the densest cluster of terms and the highlights.

use std::collections::HashMap;

use super::index::QueryTerm;
use crate::search::analyzer::{self, AnalyzerOptions};

/// The analysis [`best_cluster`] and [`highlights`] apply to text: stop words kept (the
/// terms never hold a stop word the index dropped, and hold those it kept), stemming as in
/// [`AnalyzerOptions::DEFAULT`]. Use the `_with` variants for an index built with other
/// options (pass [`PassageIndex::options`](super::PassageIndex::options)).
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
}
