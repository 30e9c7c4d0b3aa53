//! Regex and literal scanners over stored text, case-insensitive and linear-time.
//!
//! Matches are byte ranges into the `&str` given (always on char
//! boundaries), in order, non-overlapping, never empty.
//!
//! - **Regex**: the `regex` crate, case-insensitive with Unicode simple case
//!   folding and Unicode classes (`\w`, `\d`, `\s`, `\b`, `.` are Unicode
//!   aware), with size limits on the compiled program and the lazy DFA. Its
//!   automata search in time linear in the text for any pattern. Zero-length
//!   matches (`^`, `\b`, `a*` on `b`) are skipped.
//!   A regex that is nothing but 64 or more plain ASCII literals joined by
//!   `|` (no metacharacter, none empty: a list of words) is searched as
//!   literals instead, with Aho-Corasick, leftmost-first and ASCII case
//!   folding, through the same fold handling as a literal (below): the same
//!   matches as the regex (a proptest holds them together), where the
//!   regex crate's lazy DFA thrashes (1 000 alternated words at 17 MB/s,
//!   10 000 at 0.1 MB/s).
//! - **Literal**: a case-insensitive substring, successive non-overlapping
//!   occurrences, metacharacters taken literally, folded exactly as a regex
//!   search folds: the matches of a needle are those of the regex crate's
//!   `(?i)` + `regex::escape(needle)`, same spans, for any needle and text
//!   (a proptest holds the two together). That is Unicode simple case
//!   folding: `ÉTÉ` matches `été`, `k` the Kelvin sign U+212A and `s` the
//!   long s U+017F (fold classes whose members differ in UTF-8 length), and
//!   `STRASSE` does not match `straße`, which needs full folding.
//!
//!   A needle with a non-ASCII char is the escaped regex. An ASCII needle
//!   uses the byte paths below, with ASCII folding, which is exact on any
//!   text that holds no non-ASCII member of the needle's fold classes: an
//!   ASCII text (the hint says so for free) or a text without them (one
//!   memmem pass per member finds out; the members are read once from the
//!   regex crate's fold tables, through `regex-syntax`: today U+212A for
//!   `k` and U+017F for `s`, so a needle without `k` or `s` never checks).
//!   A text that holds one is mapped to one byte per char (a member to the
//!   ASCII letter it folds with, any other non-ASCII char to 0x80), searched
//!   with the same byte paths, and the spans mapped back: linear, 256 Ki
//!   chars at a time (a few MB, whatever the text's size).
//!
//! **Searched in pieces.** The regex crate cannot be stopped inside one
//! search, and one document can be 100 MB: a slow pattern (a long
//! alternation with `\b` over text with non-ASCII chars, where the lazy DFA
//! gives up: 3 MB/s for 2 000 words) held a thread for half a minute after
//! its client had gone. [`Scanner::for_each_match`] searches a text in
//! windows of [`WINDOW_BYTES`] and asks its caller between them whether to
//! go on, where that gives exactly the matches of one search ([`Pieces`]):
//! a pattern no match of which can be longer than [`MAX_OVERLAP_BYTES`]
//! (each window's haystack reaches that far past it), or none of which can
//! hold a line break (windows end just after one). A pattern that can match
//! the empty string, or match across lines without bound (`a[\s\S]*b`,
//! `foo\s+bar`), is searched a whole text at once; so are ASCII literals,
//! searched on bytes at 1 GB/s and more.
//!
//! Speed notes (`rlm-engine-bench scan`; release, 2-core AMD EPYC Zen 4 VM shared with other jobs,
//! load ~3; 734 Python stdlib files = 12.0 MB scanned one document at a
//! time, every match counted; p50 of 31 runs; figures move ±30% between
//! runs on this VM).
//!
//! ASCII literal candidates, measured side by side in a scratch bench (ms,
//! whole corpus): Aho-Corasick with `ascii_case_insensitive`; the regex
//! crate on the escaped needle, `(?i)` and `(?i-u)`; memchr2 on both cases
//! of the rarest byte, then verify; the pair filter below, restarted per
//! match; the same as an iterator that keeps its candidate mask (chosen).
//!
//! | needle                 | aho  | re (?i) | re (?i-u) | memchr2 | pair | pair iter |
//! |------------------------|------|------|------|------|------|------|
//! | `def `                 | 6.02 | 2.04 | 2.00 | 4.39 | 1.54 | 1.21 |
//! | `self`                 | 10.1 | 9.63 | 5.73 | 5.28 | 2.61 | 1.75 |
//! | `import os`            | 8.88 | 2.50 | 2.42 | 4.02 | 1.55 | 1.26 |
//! | `ValueError`           | 2.02 | 2.50 | 2.52 | 1.68 | 1.26 | 0.99 |
//! | `__init__`             | 3.07 | 1.31 | 1.27 | 2.79 | 0.95 | 0.79 |
//! | `return None`          | 8.97 | 2.33 | 2.30 | 3.93 | 1.61 | 1.35 |
//! | `isinstance(`          | 12.1 | 1.35 | 1.25 | 2.39 | 0.76 | 0.58 |
//! | `zirconiumrelay`       | 0.47 | 0.93 | 0.93 | 0.45 | 0.51 | 0.35 |
//! | `http://`              | 0.67 | 1.08 | 1.05 | 1.66 | 0.54 | 0.40 |
//! | `encoding`             | 9.87 | 1.50 | 1.46 | 2.42 | 0.76 | 0.56 |
//! | `xyzzy`                | 1.19 | 0.98 | 0.95 | 0.50 | 0.53 | 0.39 |
//! | `q`                    | 0.85 | 0.79 | 0.76 | 0.70 | 0.97 | 0.71 |
//! | `Return the number of` | 7.87 | 2.30 | 2.32 | 2.16 | 0.75 | 0.51 |
//!
//! So a one-byte needle uses memchr2 (both cases), and a longer ASCII
//! needle the pair filter: its two rarest bytes (by a byte-frequency table)
//! are tested for 64 candidate starts at a time in code LLVM vectorizes,
//! compiled a second time for AVX2 and picked at run time (AVX2 vs SSE2:
//! about 20% faster), then each candidate is checked with
//! `eq_ignore_ascii_case`. A verify budget hands a pathological text over to
//! Aho-Corasick, so the worst case stays linear. The memchr2-only approach
//! loses whenever the rarest byte is a common letter; the regex crate's own
//! prefilter for a case-insensitive literal is Teddy on the case variants
//! of a prefix, about 2x slower here.
//!
//! Folding like a regex (see **Literal** above) costs nothing on ASCII
//! texts and, for a needle with `k` or `s`, one memmem pass per member on
//! other texts. Same corpus, median of 3 alternated runs of the p50s, before
//! / after (ms; 2 cores at load 9-10, so ±20%): the 13 literals above on the
//! corpus, p50 of the p50s, 1.05 / 1.03; over the corpus with `é` in every
//! 20th line (12.2 MB, no document ASCII) `encoding` 1.00 / 1.03,
//! `isinstance(` 1.06 / 1.54, `keyword` 0.84 / 1.36; with a Kelvin sign and
//! a long s added to every document (each then mapped) `encoding` 1.09 /
//! 1.05, `isinstance(` 1.06 / 4.39, `keyword` 0.92 / 3.88, and `self`
//! (55 388 matches) 2.52 / 12.8: mapping costs ~3 ms per 12 MB plus the walk
//! back to byte offsets, ~0.1 µs per match. The regex crate on the escaped
//! needle is the other exact path; the mapping reuses the byte paths, needs
//! no compilation and has no program size limit.
//!
//! Regex (ms, whole corpus, case-insensitive, Unicode). Columns: this
//! scanner without and with the ASCII hint (713 of the 734 files are ASCII);
//! `regex::bytes` with Unicode on; a Unicode-off program run on every file
//! (not valid on the 21 non-ASCII files, for timing only):
//!
//! | pattern               | `find_iter` | hinted | bytes, Unicode on | Unicode off |
//! |-----------------------|------|------|------|------|
//! | `def __\w+__\(self`   | 1.99 | 1.96 | 1.89 | 1.89 |
//! | `class \w+Error\(`    | 1.85 | 1.91 | 1.78 | 1.81 |
//! | `\d{4}-\d{2}-\d{2}`   | 4.64 | 3.03 | 4.37 | 1.67 |
//! | `[A-Z_]{12,} = \d+`   | 9.89 | 9.74 | 9.80 | 9.77 |
//! | `zirconium\d+relay`   | 0.91 | 0.90 | 0.89 | 0.89 |
//!
//! `regex::bytes` with Unicode on gains nothing. What helps is that on a
//! text that is all ASCII, a pattern with only ASCII in it matches exactly
//! the same with Unicode off (Unicode `\d`, `\w`, `\s`, `\b`, `.` and case
//! folding differ from the ASCII ones only on non-ASCII chars), and the
//! ASCII program is smaller and faster: 1.5x over the corpus, 2.6x on ASCII
//! files, for `\d{4}-\d{2}-\d{2}`. The scanner builds that program when it
//! is safe (see [`Scanner::find_iter_hinted`]); the caller says whether a
//! text is ASCII (`chars == bytes`, known from the store), as checking
//! costs a pass (0.5 ms over the corpus). `[A-Z_]{12,} = \d+` is slow
//! because case-insensitivity makes every ` = ` after a long identifier a
//! candidate for the regex crate's reverse-inner search (3.0 ms
//! case-sensitive); neither a 100 MB DFA cache nor turning the meta
//! engine's literal optimizations off (20 ms) helps. Searching one
//! concatenated 12 MB haystack instead of one document at a time was slower
//! for the inner-literal patterns (`\d{4}-..` 18.8 ms, `[A-Z_]{12,} = \d+`
//! 16.8 ms), so scanning per document is right.

mod fold;
mod pair;
mod windows;

use regex::{Regex, RegexBuilder};

use fold::{FOLD_WINDOW_CHARS, FoldedMatches, Folds};
use pair::{PairIter, PairLiteral};
pub use windows::{MAX_OVERLAP_BYTES, Stopped, WINDOW_BYTES};
pub(crate) use windows::{Pieces, Windows, pieces_of};

/// Compiled-program size limit of a search regex (bytes).
pub const REGEX_SIZE_LIMIT: usize = 10 * (1 << 20);
/// Lazy-DFA cache limit of a search regex (bytes).
pub const REGEX_DFA_SIZE_LIMIT: usize = 10 * (1 << 20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanMethod {
    Regex,
    Literal,
}

/// Why a pattern cannot be searched for; fit to show the model as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScanError(pub String);

/// A compiled search. Cheap to share between threads (`Send + Sync`).
#[derive(Debug)]
pub struct Scanner {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A regex, or a literal with non-ASCII chars as an escaped regex.
    Regex {
        re: Regex,
        /// The same pattern with Unicode off, for texts that are all ASCII,
        /// when that gives the same matches.
        ascii: Option<regex::bytes::Regex>,
        /// How its matches can be searched window by window, if they can.
        pieces: Option<Pieces>,
    },
    /// An ASCII needle.
    Ascii {
        lit: AsciiLiteral,
        /// The non-ASCII chars that fold with a char of the needle.
        folds: Folds,
    },
}

/// An ASCII needle, compared with ASCII case folding: exact on a text
/// without the non-ASCII members of its fold classes (see [`Folds`]).
#[derive(Debug)]
enum AsciiLiteral {
    /// One byte: its lower and upper case.
    Byte(u8, u8),
    /// Two bytes or more.
    Pair(PairLiteral),
    /// A regex that is an alternation of many plain ASCII literals
    /// ([`plain_alternatives`]), with the regex's leftmost-first preference.
    Many(aho_corasick::AhoCorasick),
}

impl AsciiLiteral {
    fn find_iter<'t>(&'t self, hay: &'t [u8]) -> Matches<'t> {
        match self {
            AsciiLiteral::Byte(lower, upper) => {
                Matches::Byte(memchr::memchr2_iter(*lower, *upper, hay))
            }
            AsciiLiteral::Pair(lit) => Matches::Pair(PairIter::new(lit, hay)),
            AsciiLiteral::Many(ac) => Matches::Many(ac.find_iter(hay)),
        }
    }
    /// The longest match, in bytes of the ASCII search (chars of a mapped
    /// text).
    fn longest(&self) -> usize {
        match self {
            AsciiLiteral::Byte(..) => 1,
            AsciiLiteral::Pair(lit) => lit.lower.len(),
            AsciiLiteral::Many(ac) => ac.max_pattern_len(),
        }
    }
}

/// Alternatives from which a regex that is nothing but plain ASCII
/// literals joined by `|` is searched as literals: the regex crate's lazy
/// DFA thrashes on large case-insensitive alternations (1 000 words scanned
/// at 17 MB/s, 10 000 at 0.1 MB/s), Aho-Corasick does not.
const MANY_ALTERNATIVES: usize = 64;

/// The longest list of words searched as literals: 1 MiB (some 150 000
/// words) makes an automaton of 5 MB in under a second. A longer one goes
/// to the regex crate, whose size limit refuses it.
const MAX_ALTERNATION_BYTES: usize = 1 << 20;

/// The alternatives of `pattern` when it is [`MANY_ALTERNATIVES`] or more
/// plain ASCII literals joined by `|`, at most [`MAX_ALTERNATION_BYTES`]
/// in all: none empty, no char a regex reads as anything but itself. `(?i)` regex matching of such an alternation is
/// leftmost-first with simple case folding, which Aho-Corasick's
/// leftmost-first ASCII-case-insensitive search gives on any text without
/// the alternatives' non-ASCII fold members ([`Folds`]).
fn plain_alternatives(pattern: &str) -> Option<Vec<&str>> {
    const META: &[u8] = b"\\.+*?()|[]{}^$";
    let parts: Vec<&str> = pattern.split('|').collect();
    let plain = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii() && !b.is_ascii_control() && !META.contains(&b))
    };
    (pattern.len() <= MAX_ALTERNATION_BYTES
        && parts.len() >= MANY_ALTERNATIVES
        && parts.iter().all(plain))
    .then_some(parts)
}

impl Scanner {
    /// Regex: case-insensitive (Unicode), with size limits; invalid or too
    /// big -> `ScanError` with the engine's reason.
    /// Literal: case-insensitive substring (see the module docs). An empty
    /// pattern is an error for both methods.
    pub fn new(method: ScanMethod, pattern: &str) -> Result<Scanner, ScanError> {
        if pattern.is_empty() {
            return Err(ScanError(
                "the pattern is empty; give at least one character to search for".to_owned(),
            ));
        }
        let kind = match method {
            ScanMethod::Regex => match plain_alternatives(pattern) {
                Some(parts) => Kind::Ascii {
                    lit: AsciiLiteral::Many(
                        aho_corasick::AhoCorasick::builder()
                            .ascii_case_insensitive(true)
                            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                            .build(&parts)
                            .map_err(|e| {
                                ScanError(format!(
                                    "the alternation of {} words is too big to search: {e}; \
                                     search for fewer at once",
                                    parts.len()
                                ))
                            })?,
                    ),
                    folds: Folds::of(pattern.as_bytes()),
                },
                None => {
                    // Two compilations of a few hundred microseconds each: side by side.
                    let (re, ascii) =
                        rayon::join(|| build_regex(pattern), || build_ascii_twin(pattern));
                    Kind::Regex {
                        re: re.map_err(|e| regex_error(&e))?,
                        ascii,
                        pieces: pieces_of(pattern, true),
                    }
                }
            },
            ScanMethod::Literal => {
                let b = pattern.as_bytes();
                if !pattern.is_ascii() {
                    let escaped = regex::escape(pattern);
                    Kind::Regex {
                        pieces: pieces_of(&escaped, true),
                        re: build_regex(&escaped).map_err(|_| {
                            ScanError(format!(
                                "the literal of {} characters is too long to search for; \
                                 search for a shorter part of it",
                                pattern.chars().count()
                            ))
                        })?,
                        // A non-ASCII needle can match ASCII text (the Kelvin
                        // sign matches `k`), so no ASCII shortcut.
                        ascii: None,
                    }
                } else {
                    let lit = if b.len() == 1 {
                        AsciiLiteral::Byte(b[0].to_ascii_lowercase(), b[0].to_ascii_uppercase())
                    } else {
                        AsciiLiteral::Pair(PairLiteral::new(b))
                    };
                    Kind::Ascii {
                        lit,
                        folds: Folds::of(b),
                    }
                }
            }
        };
        Ok(Scanner { kind })
    }

    /// Byte ranges of every match in `text`, in order, non-overlapping,
    /// none empty.
    pub fn find_iter<'t>(&'t self, text: &'t str) -> impl Iterator<Item = (usize, usize)> + 't {
        self.find_iter_hinted(text, false)
    }

    /// Like [`Scanner::find_iter`], for a caller that knows whether `text`
    /// is all ASCII (its char count equals its byte length). Same matches;
    /// faster for some regexes on ASCII text, which may then use a program
    /// compiled with Unicode off. That program exists only for a pattern
    /// written in ASCII without `\x`, `\u`, `\U`, `\p`, `\P` escapes: such a
    /// pattern has no way to name a non-ASCII char, so on ASCII text its
    /// Unicode and ASCII meanings agree (`\w`, `\d`, `\s`, `\b`, `.`, negated
    /// classes and case folding differ only on non-ASCII chars).
    ///
    /// `text_is_ascii` must be `text.is_ascii()`. If it is wrongly `true`,
    /// results may be wrong, but every range is still on char boundaries
    /// (ranges that are not are dropped), so slicing with them never panics.
    pub fn find_iter_hinted<'t>(
        &'t self,
        text: &'t str,
        text_is_ascii: bool,
    ) -> impl Iterator<Item = (usize, usize)> + 't {
        debug_assert!(
            !text_is_ascii || text.is_ascii(),
            "text_is_ascii hint is wrong"
        );
        match &self.kind {
            Kind::Regex {
                ascii: Some(ascii), ..
            } if text_is_ascii => Matches::Ascii(text, ascii.find_iter(text.as_bytes())),
            Kind::Regex { re, .. } => Matches::Regex(re.find_iter(text)),
            // ASCII folding is exact unless the text holds a non-ASCII
            // member of the needle's fold classes, which an ASCII text
            // cannot.
            Kind::Ascii { lit, folds } if text_is_ascii || !folds.occur_in(text) => {
                lit.find_iter(text.as_bytes())
            }
            Kind::Ascii { lit, folds } => Matches::Folded(Box::new(FoldedMatches::new(
                lit,
                folds,
                text,
                FOLD_WINDOW_CHARS,
            ))),
        }
    }

    /// Hands every match of `text` to `each`, in order, the same as
    /// [`Scanner::find_iter_hinted`] gives them, and asks `stop` after each
    /// window of about [`WINDOW_BYTES`] it has searched (with the bytes it
    /// went over since it last asked) whether to go on: `Err(Stopped)` as
    /// soon as it says stop, with the matches of the windows before given.
    /// A pattern that cannot be searched in windows (see the module docs)
    /// is searched whole, and `stop` asked once, after.
    pub fn for_each_match(
        &self,
        text: &str,
        text_is_ascii: bool,
        stop: impl FnMut(usize) -> bool,
        each: impl FnMut(usize, usize),
    ) -> Result<(), Stopped> {
        self.for_each_match_in(text, text_is_ascii, WINDOW_BYTES, stop, each)
    }

    /// [`Scanner::for_each_match`] with windows of `window` bytes.
    fn for_each_match_in(
        &self,
        text: &str,
        text_is_ascii: bool,
        window: usize,
        mut stop: impl FnMut(usize) -> bool,
        mut each: impl FnMut(usize, usize),
    ) -> Result<(), Stopped> {
        match &self.kind {
            Kind::Regex {
                re,
                ascii,
                pieces: Some(pieces),
            } => {
                let windows = Windows {
                    text,
                    pieces: *pieces,
                    window,
                };
                match ascii {
                    Some(ascii) if text_is_ascii => windows.search(
                        |end, at| {
                            ascii
                                .find_at(&text.as_bytes()[..end], at)
                                .map(|m| (m.start(), m.end()))
                        },
                        stop,
                        each,
                    ),
                    _ => windows.search(
                        |end, at| re.find_at(&text[..end], at).map(|m| (m.start(), m.end())),
                        stop,
                        each,
                    ),
                }
            }
            _ => {
                for (a, b) in self.find_iter_hinted(text, text_is_ascii) {
                    each(a, b);
                }
                stop(text.len());
                Ok(())
            }
        }
    }

    /// Number of matches in `text` (as `find_iter(text).count()`).
    pub fn count(&self, text: &str) -> usize {
        self.count_hinted(text, false)
    }

    /// Number of matches in `text`, with the hint of
    /// [`Scanner::find_iter_hinted`].
    pub fn count_hinted(&self, text: &str, text_is_ascii: bool) -> usize {
        match &self.kind {
            // memchr counts with SIMD.
            Kind::Ascii {
                lit: AsciiLiteral::Byte(lower, upper),
                folds,
            } if lower == upper && folds.members.is_empty() => {
                memchr::memchr_iter(*lower, text.as_bytes()).count()
            }
            _ => self.find_iter_hinted(text, text_is_ascii).count(),
        }
    }
}

fn build_regex(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
}

/// The Unicode-off twin of a regex, for ASCII texts, when it is sure to
/// match the same there (see [`Scanner::find_iter_hinted`]).
fn build_ascii_twin(pattern: &str) -> Option<regex::bytes::Regex> {
    if !pattern.is_ascii() {
        return None;
    }
    // Any escape that can name a code point or a Unicode class. A `\\x`
    // (escaped backslash, then x) also trips this: that only costs speed.
    let b = pattern.as_bytes();
    if b.windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'x' | b'u' | b'U' | b'p' | b'P'))
    {
        return None;
    }
    regex::bytes::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .ok()
}

fn regex_error(e: &regex::Error) -> ScanError {
    match e {
        regex::Error::CompiledTooBig(limit) => ScanError(format!(
            "the regex is too big once compiled (over the limit of {limit} bytes); use \
             smaller repetition counts (e.g. `\\w+` rather than `\\w{{1000}}`) or a simpler \
             pattern"
        )),
        _ => ScanError(format!(
            "{e}\nFix the pattern (escape special characters such as . ( [ with a \
             backslash), or use method `literal` to search for the text as written."
        )),
    }
}

/// The matches of one search of one text.
enum Matches<'t> {
    Regex(regex::Matches<'t, 't>),
    /// The ASCII twin over the bytes of `text`.
    Ascii(&'t str, regex::bytes::Matches<'t, 't>),
    Byte(memchr::Memchr2<'t>),
    Pair(PairIter<'t>),
    Many(aho_corasick::FindIter<'t, 't>),
    /// Of an ASCII needle over a text holding members of its fold classes.
    Folded(Box<FoldedMatches<'t>>),
}

impl Iterator for Matches<'_> {
    type Item = (usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        match self {
            Matches::Regex(it) => it.find(|m| !m.is_empty()).map(|m| (m.start(), m.end())),
            Matches::Ascii(text, it) => it
                .find(|m| {
                    !m.is_empty()
                        && text.is_char_boundary(m.start())
                        && text.is_char_boundary(m.end())
                })
                .map(|m| (m.start(), m.end())),
            Matches::Byte(it) => it.next().map(|i| (i, i + 1)),
            Matches::Pair(it) => it.next(),
            Matches::Many(it) => it.next().map(|m| (m.start(), m.end())),
            Matches::Folded(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fold::{ascii_fold_members, ascii_run};
    use super::*;
    use proptest::prelude::*;

    fn lit(p: &str) -> Scanner {
        Scanner::new(ScanMethod::Literal, p).unwrap()
    }

    fn re(p: &str) -> Scanner {
        Scanner::new(ScanMethod::Regex, p).unwrap()
    }

    fn all(s: &Scanner, text: &str) -> Vec<(usize, usize)> {
        let v: Vec<_> = s.find_iter(text).collect();
        assert_eq!(s.count(text), v.len());
        if text.is_ascii() {
            let h: Vec<_> = s.find_iter_hinted(text, true).collect();
            assert_eq!(h, v, "ASCII program differs");
            assert_eq!(s.count_hinted(text, true), v.len());
        }
        v
    }

    /// The matches [`Scanner::for_each_match_in`] gives with windows of
    /// `window` bytes, never stopped, and how many windows it asked about.
    fn windowed(
        s: &Scanner,
        text: &str,
        ascii: bool,
        window: usize,
    ) -> (Vec<(usize, usize)>, usize) {
        let mut got = Vec::new();
        let mut asked = 0;
        let mut bytes = 0;
        let r = s.for_each_match_in(
            text,
            ascii,
            window,
            |n| {
                asked += 1;
                bytes += n;
                false
            },
            |a, b| got.push((a, b)),
        );
        assert_eq!(r, Ok(()));
        assert_eq!(bytes, text.len(), "every byte told once");
        (got, asked)
    }

    fn pieces(p: &str) -> Option<Pieces> {
        match re(p).kind {
            Kind::Regex { pieces, .. } => pieces,
            Kind::Ascii { .. } => panic!("{p} is searched as literals"),
        }
    }

    /// A pattern is searched in windows where that is exact: a bound on its
    /// matches' length, or no line break in them, and never an empty match.
    #[test]
    fn pieces_where_windows_find_the_same_matches() {
        assert_eq!(pieces(r"\bfoo\b|\bbar\b"), Some(Pieces::Bounded(3)));
        assert_eq!(
            pieces("k"),
            Some(Pieces::Bounded(3)),
            "the Kelvin sign is 3 bytes"
        );
        assert_eq!(pieces(r"\w{2}"), Some(Pieces::Bounded(8)));
        assert_eq!(pieces(r"fn \w+\("), Some(Pieces::Lines));
        assert_eq!(
            pieces(r"(?m)^def .*:$"),
            Some(Pieces::Lines),
            "`.` is not `\n`"
        );
        assert_eq!(pieces(r"[^\n]+x"), Some(Pieces::Lines));
        assert_eq!(
            pieces(r"a\s{1,3}b"),
            Some(Pieces::Bounded(11)),
            "U+3000 is 3 bytes"
        );
        assert_eq!(pieces(r"foo\s+bar"), None, "unbounded across lines");
        assert_eq!(pieces(r"(?s)a.*b"), None);
        assert_eq!(pieces(r"[^x]+y"), None, "`[^x]` holds the line break");
        assert_eq!(pieces(r"a\nb*"), None);
        assert_eq!(pieces(r"a*"), None, "can match the empty string");
        assert_eq!(pieces(r"\b"), None);
        // Past the overlap bound, only lines can cut it.
        let most = MAX_OVERLAP_BYTES;
        assert_eq!(
            pieces(&format!("x[ab]{{1,{}}}", most - 1)),
            Some(Pieces::Bounded(most))
        );
        assert_eq!(pieces(&format!("x[ab]{{1,{most}}}")), Some(Pieces::Lines));
        assert_eq!(pieces(&format!("x[a\n]{{1,{most}}}")), None);
        assert_eq!(
            pieces(r"with open\([^)]*\) as \w+"),
            None,
            "`[^)]` holds `\n`"
        );
        // A literal with a non-ASCII char, searched as its escaped regex.
        match lit("été").kind {
            Kind::Regex { pieces, .. } => assert_eq!(pieces, Some(Pieces::Bounded(5))),
            Kind::Ascii { .. } => panic!("a non-ASCII literal is a regex"),
        }
    }

    /// A stop asked between windows ends the search of one text there: the
    /// matches of the windows before were given, none after.
    #[test]
    fn a_stop_between_windows_ends_the_search_inside_a_text() {
        let line = "alpha beta gamma\n";
        let text = line.repeat(20_000); // 340 000 bytes
        for pattern in [r"\bbeta\b", r"b\w+"] {
            let s = re(pattern);
            let mut asked = 0;
            let mut got = Vec::new();
            let r = s.for_each_match_in(
                &text,
                false,
                1000,
                |_| {
                    asked += 1;
                    asked == 3
                },
                |a, b| got.push((a, b)),
            );
            assert_eq!(r, Err(Stopped), "{pattern}");
            assert_eq!(asked, 3);
            let all: Vec<_> = s.find_iter(&text).collect();
            assert_eq!(all.len(), 20_000);
            assert!(
                !got.is_empty() && got.len() < 300,
                "{pattern}: {} matches of 20 000 before the stop",
                got.len()
            );
            assert_eq!(got[..], all[..got.len()], "the first matches, in order");
            // Asked nothing between windows, it gives every match.
            let (every, windows) = windowed(&s, &text, false, 1000);
            assert_eq!(every, all);
            assert!(windows >= 300, "{windows} windows");
        }
        // A pattern without windows is searched whole, and asked once.
        let s = re(r"beta\s+gamma");
        let (every, asked) = windowed(&s, &text, false, 1000);
        assert_eq!(every.len(), 20_000);
        assert_eq!(asked, 1);
    }

    fn texts<'a>(s: &Scanner, text: &'a str) -> Vec<&'a str> {
        all(s, text).into_iter().map(|(a, b)| &text[a..b]).collect()
    }

    /// Reference for ASCII needles: successive non-overlapping occurrences
    /// under ASCII case folding.
    fn naive(needle: &str, text: &str) -> Vec<(usize, usize)> {
        let (h, n) = (text.as_bytes(), needle.as_bytes());
        let mut out = Vec::new();
        let mut i = 0;
        while i + n.len() <= h.len() {
            if h[i..i + n.len()].eq_ignore_ascii_case(n) {
                out.push((i, i + n.len()));
                i += n.len();
            } else {
                i += 1;
            }
        }
        out
    }

    /// Only an alternation of 64 or more plain ASCII literals, none empty,
    /// is searched as literals; any other regex as a regex.
    #[test]
    fn only_many_plain_alternatives_are_searched_as_literals() {
        let words = |n: usize, extra: &str| {
            let mut v: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
            v.push(extra.to_owned());
            v.join("|")
        };
        assert_eq!(
            plain_alternatives(&words(63, "x")).map(|v| v.len()),
            Some(64)
        );
        assert_eq!(plain_alternatives(&words(62, "x")), None);
        for extra in [
            "", "a.b", "a+", r"a\|b", "(a)", "[ab]", "a{2}", "^a", "a$", "é", "a?", "a*",
        ] {
            assert_eq!(plain_alternatives(&words(70, extra)), None, "{extra:?}");
        }
        assert!(plain_alternatives(&words(70, "a b-c,d=e'f\"g#h")).is_some());
        // Past 1 MiB of words: the regex crate's, which refuses it as too big.
        let huge = words(200_000, "x");
        assert!(huge.len() > MAX_ALTERNATION_BYTES);
        assert_eq!(plain_alternatives(&huge), None);
        assert!(Scanner::new(ScanMethod::Regex, &huge).is_err());
        // Ten thousand words, with a Kelvin sign and a long s in the text.
        let many: Vec<String> = (0..10_000).map(|i| format!("k{i}s")).collect();
        let pattern = many.join("|");
        let s = re(&pattern);
        assert!(matches!(
            s.kind,
            Kind::Ascii {
                lit: AsciiLiteral::Many(_),
                ..
            }
        ));
        // `k10000s` is no match: no word is a prefix of it that ends in `s`.
        let text = "K12S \u{212A}9999\u{17F} k10000s k1s";
        let want: Vec<(usize, usize)> = Regex::new(&format!("(?i){pattern}"))
            .unwrap()
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        assert_eq!(all(&s, text), want);
        assert_eq!(texts(&s, text), ["K12S", "\u{212A}9999\u{17F}", "k1s"]);
    }

    #[test]
    fn literal_ascii_case_insensitive() {
        assert_eq!(
            texts(&lit("error"), "Error ERROR eRrOr err"),
            ["Error", "ERROR", "eRrOr"]
        );
        assert_eq!(texts(&lit("X"), "axbXc"), ["x", "X"]);
        assert_eq!(texts(&lit("1"), "a1b11"), ["1", "1", "1"]);
    }

    /// The regex crate's matches of `(?i)` and the escaped needle: what a
    /// literal search must find.
    /// The non-empty matches of the regex crate's `(?i)` + `pattern`.
    fn regex_matches(pattern: &str, text: &str) -> Vec<(usize, usize)> {
        Regex::new(&format!("(?i){pattern}"))
            .unwrap()
            .find_iter(text)
            .filter(|m| !m.is_empty())
            .map(|m| (m.start(), m.end()))
            .collect()
    }

    fn reference(needle: &str, text: &str) -> Vec<(usize, usize)> {
        Regex::new(&format!("(?i){}", regex::escape(needle)))
            .unwrap()
            .find_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect()
    }

    #[test]
    fn literal_ascii_needle_finds_non_ascii_fold_members() {
        // U+212A KELVIN SIGN folds with k (3 bytes for 1), U+017F LONG S
        // with s (2 bytes for 1), as in the regex search.
        assert_eq!(texts(&lit("k"), "\u{212A}kK"), ["\u{212A}", "k", "K"]);
        assert_eq!(texts(&lit("s"), "\u{17F}sS"), ["\u{17F}", "s", "S"]);
        let text = "Kelvin \u{212A}elvin \u{212A}ELVIN k\u{212A}";
        assert_eq!(
            texts(&lit("kelvin"), text),
            ["Kelvin", "\u{212A}elvin", "\u{212A}ELVIN"]
        );
        assert_eq!(all(&lit("kelvin"), text), reference("kelvin", text));
        let text = "\u{17F}top, Stop, \u{e9}\u{17F}TOP, nonstop, \u{17F}\u{17F}";
        assert_eq!(
            texts(&lit("stop"), text),
            ["\u{17F}top", "Stop", "\u{17F}TOP", "stop"]
        );
        assert_eq!(all(&lit("stop"), text), reference("stop", text));
        assert_eq!(texts(&lit("ss"), text), ["\u{17F}\u{17F}"]);
        // The same needles on text that holds other non-ASCII chars only.
        assert_eq!(texts(&lit("stop"), "\u{e9}STOP stop"), ["STOP", "stop"]);
        // Past the pair filter's first 64-start block.
        let text = format!("{}\u{212A}s{}ks", "x".repeat(100), "y".repeat(100));
        assert_eq!(all(&lit("ks"), &text), [(100, 104), (204, 206)]);
        // A pathological text for the pair filter, mapped: the verify budget
        // still hands over to Aho-Corasick, and the spans map back.
        let needle = "k".repeat(41);
        let text = format!(
            "{}\u{212A}{needle}",
            format!("{}c", "k".repeat(40)).repeat(3000)
        );
        assert_eq!(all(&lit(&needle), &text), reference(&needle, &text));
        assert_eq!(all(&lit(&needle), &text).len(), 1);
    }

    #[test]
    fn ascii_fold_members_are_the_regex_crates() {
        // Every non-ASCII char that a case-insensitive regex of ASCII chars
        // matches, and the ASCII char each folds with.
        let members = ascii_fold_members();
        let all_chars: String = (0x80..=0x10_FFFF).filter_map(char::from_u32).collect();
        let found: Vec<char> = Regex::new(r"(?i)[\x00-\x7F]")
            .unwrap()
            .find_iter(&all_chars)
            .filter_map(|m| m.as_str().chars().next())
            .collect();
        assert_eq!(members.iter().map(|m| m.0).collect::<Vec<_>>(), found);
        assert!(members.contains(&('\u{212A}', b'k')));
        assert!(members.contains(&('\u{17F}', b's')));
        let ascii: String = (0u8..128).map(char::from).collect();
        for b in 0u8..128 {
            let c = char::from(b);
            let re = Regex::new(&format!("(?i){}", regex::escape(&c.to_string()))).unwrap();
            // Among ASCII chars, only its own cases: ASCII folding is exact
            // on ASCII text.
            let same: Vec<u8> = re
                .find_iter(&ascii)
                .map(|m| m.as_str().as_bytes()[0])
                .collect();
            let mut want = vec![b.to_ascii_lowercase(), b.to_ascii_uppercase()];
            want.sort();
            want.dedup();
            assert_eq!(same, want, "{c:?}");
            for &(m, lower) in members {
                assert_eq!(re.is_match(&m.to_string()), lower == b.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn literal_non_ascii_simple_folding() {
        assert_eq!(texts(&lit("ÉTÉ"), "un été, L'ÉTÉ"), ["été", "ÉTÉ"]);
        assert!(all(&lit("STRASSE"), "straße").is_empty());
        assert!(all(&lit("straße"), "STRASSE").is_empty());
        assert_eq!(texts(&lit("ß"), "ßẞ"), ["ß", "ẞ"]);
        // Non-ASCII needle: Unicode simple folding, also for its ASCII letters.
        assert_eq!(texts(&lit("é\u{212A}"), "éK ék"), ["éK", "ék"]);
        assert_eq!(texts(&lit("Σ"), "σςΣ"), ["σ", "ς", "Σ"]);
    }

    #[test]
    fn literal_metacharacters_are_literal() {
        assert_eq!(texts(&lit("a.b"), "axb a.b"), ["a.b"]);
        assert_eq!(texts(&lit("f(x)"), "f(x) fx"), ["f(x)"]);
        assert_eq!(texts(&lit("[a-z]+"), "abc [A-Z]+"), ["[A-Z]+"]);
        assert_eq!(texts(&lit(r"\d"), r"1 \d \D"), [r"\d", r"\D"]);
        assert_eq!(texts(&lit("$^*?|{}"), "$^*?|{}"), ["$^*?|{}"]);
        assert_eq!(texts(&lit("é.*"), "é.* éx"), ["é.*"]);
    }

    #[test]
    fn literal_non_overlapping_in_order() {
        assert_eq!(all(&lit("aa"), "aaaaa"), [(0, 2), (2, 4)]);
        assert_eq!(all(&lit("aba"), "ababababa"), [(0, 3), (4, 7)]);
        assert_eq!(all(&lit("a"), "aAa"), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(all(&lit("éé"), "ééééé"), [(0, 4), (4, 8)]);
    }

    #[test]
    fn literal_long_texts_cross_blocks() {
        // Matches near and across the 64-start block edges and in the tail.
        let mut text = "x".repeat(300);
        for at in [0, 60, 64, 124, 128, 200, 290, 296] {
            text.replace_range(at..at + 4, "NeEd");
        }
        let s = lit("need");
        assert_eq!(all(&s, &text), naive("need", &text));
        assert_eq!(all(&s, &text).len(), 8);
        let s = lit("xneedx");
        assert_eq!(all(&s, &text), naive("xneedx", &text));
    }

    #[test]
    fn literal_pathological_text_switches_to_aho_corasick_and_stays_right() {
        // Every start is a candidate and fails late: the verify budget runs
        // out and Aho-Corasick (linear) takes over mid-text.
        let needle = "a".repeat(41);
        let text = format!("{}{}", format!("{}c", "a".repeat(40)).repeat(5000), needle);
        let s = lit(&needle);
        assert_eq!(all(&s, &text), [(text.len() - 41, text.len())]);
        let switched = |s: &Scanner| matches!(&s.kind, Kind::Ascii { lit: AsciiLiteral::Pair(p), .. } if p.fallback.get().is_some());
        assert!(switched(&s));
        // Same, with matches before and after the switch.
        let s = lit(&needle);
        let text = format!(
            "{needle}{}{needle}xx{needle}{}{needle}",
            format!("{}c", "a".repeat(40)).repeat(3000),
            format!("{}c", "a".repeat(40)).repeat(3000)
        );
        assert_eq!(all(&s, &text), naive(&needle, &text));
        assert_eq!(all(&s, &text).len(), 4);
        assert!(switched(&s));
        // An ordinary text never needs the fallback.
        let s = lit("needle");
        let text = "a needle in a haystack ".repeat(1000);
        assert_eq!(all(&s, &text).len(), 1000);
        assert!(!switched(&s));
    }

    #[test]
    fn empty_pattern_is_an_error() {
        assert!(Scanner::new(ScanMethod::Literal, "").is_err());
        assert!(Scanner::new(ScanMethod::Regex, "").is_err());
    }

    #[test]
    fn regex_case_insensitive() {
        assert_eq!(texts(&re("hello"), "Hello HELLO"), ["Hello", "HELLO"]);
        assert_eq!(texts(&re("été"), "ÉTÉ été"), ["ÉTÉ", "été"]);
        assert_eq!(
            texts(&re(r"class \w+Error\("), "CLASS FooError(x)"),
            ["CLASS FooError("]
        );
        // Unicode classes and simple folding.
        assert_eq!(texts(&re(r"\w+"), "żółw 9"), ["żółw", "9"]);
        assert_eq!(texts(&re(r"\d+"), "٣٤ 12"), ["٣٤", "12"]);
        assert_eq!(texts(&re("k"), "K\u{212A}k"), ["K", "\u{212A}", "k"]);
        assert!(all(&re("strasse"), "straße").is_empty());
    }

    #[test]
    fn regex_matches_in_order_without_overlap_or_empties() {
        assert_eq!(all(&re("a+"), "baaab a"), [(1, 4), (6, 7)]);
        assert_eq!(all(&re("aba"), "ababa"), [(0, 3)]);
        assert!(all(&re("^"), "abc").is_empty());
        assert!(all(&re(r"\b"), "one two").is_empty());
        assert_eq!(all(&re("x*"), "axxbx"), [(1, 3), (4, 5)]);
        assert!(all(&re("(?m)^$"), "a\n\nb").is_empty());
        assert_eq!(all(&re("é*"), "aéé"), [(1, 5)]);
    }

    #[test]
    fn invalid_regex_has_the_engine_reason() {
        let e = Scanner::new(ScanMethod::Regex, "(unclosed").unwrap_err().0;
        assert!(e.contains("unclosed group"), "{e}");
        assert!(e.contains("literal"), "{e}");
        let e = Scanner::new(ScanMethod::Regex, "a{3,1}").unwrap_err().0;
        assert!(e.contains("invalid repetition count"), "{e}");
        let e = Scanner::new(ScanMethod::Regex, r"(?<=x)y").unwrap_err().0;
        assert!(e.contains("look-around"), "{e}");
        // The same pattern as a literal is fine.
        assert_eq!(texts(&lit("(unclosed"), "an (UNCLOSED one"), ["(UNCLOSED"]);
    }

    #[test]
    fn huge_regex_is_rejected_with_a_reason() {
        let e = Scanner::new(ScanMethod::Regex, r"\w{1000}{1000}")
            .unwrap_err()
            .0;
        assert!(e.contains("too big"), "{e}");
        assert!(e.contains("limit of 10485760 bytes"), "{e}");
        let e = Scanner::new(ScanMethod::Regex, r"(?:a{100}){100}\w{200}")
            .unwrap_err()
            .0;
        assert!(e.contains("too big"), "{e}");
    }

    #[test]
    fn ascii_twin_only_when_safe() {
        let has_twin = |p: &str| matches!(re(p).kind, Kind::Regex { ascii: Some(_), .. });
        assert!(has_twin(r"\d{4}-\d{2}"));
        assert!(has_twin(r"\bfoo\b.\s\W"));
        // Patterns that can name a non-ASCII char that folds to ASCII.
        assert!(!has_twin("\u{17F}"));
        assert!(!has_twin(r"\x{212A}"));
        assert!(!has_twin(r"\u{17F}"));
        assert!(!has_twin(r"\pL"));
        // Same matches on ASCII text with and without the hint.
        for (p, t) in [
            ("\u{17F}", "s S"),
            (r"\x{212A}", "k K"),
            (r"\u017F+", "ss"),
            (r"\p{Greek}|\w+", "abc"),
            (r"[^a]", "ab"),
        ] {
            let s = re(p);
            assert_eq!(
                s.find_iter_hinted(t, true).collect::<Vec<_>>(),
                s.find_iter(t).collect::<Vec<_>>(),
                "{p}"
            );
        }
        assert_eq!(texts(&re("\u{17F}"), "s S"), ["s", "S"]);
    }

    #[test]
    fn scanner_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Scanner>();
    }

    fn ascii_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[abAB ]{0,200}",
            "[a-cA-C\n._()]{0,400}",
            "(ab|Ab|aB|abc|x){0,200}",
            "[aA]{0,300}",
        ]
    }

    /// Chars rich in simple case fold classes with members of different
    /// UTF-8 lengths or more than two members: ASCII, Kelvin and Angstrom
    /// signs, long s, sharp s, sigmas, dotted and dotless i, Greek letters
    /// with symbol variants, Cyrillic with its old forms, titlecase
    /// digraphs, combining marks (U+0345 folds with iota), emoji.
    const FOLD_RICH: &[char] = &[
        'a',
        'A',
        'e',
        'i',
        'I',
        'k',
        'K',
        's',
        'S',
        't',
        ' ',
        '.',
        '\u{212A}',
        '\u{17F}',
        '\u{212B}',
        '\u{E5}',
        '\u{C5}',
        '\u{DF}',
        '\u{1E9E}',
        '\u{3A3}',
        '\u{3C3}',
        '\u{3C2}',
        '\u{130}',
        '\u{131}',
        '\u{B5}',
        '\u{3BC}',
        '\u{39C}',
        '\u{3B8}',
        '\u{3D1}',
        '\u{3F4}',
        '\u{3B2}',
        '\u{3D0}',
        '\u{3B9}',
        '\u{345}',
        '\u{1FBE}',
        '\u{432}',
        '\u{412}',
        '\u{1C80}',
        '\u{1E61}',
        '\u{1E9B}',
        '\u{1C4}',
        '\u{1C5}',
        '\u{1C6}',
        '\u{301}',
        '\u{E9}',
        '\u{1F600}',
    ];
    /// ASCII letters whose fold classes leave ASCII, and others.
    const ASCII_WITH_FOLDS: &[char] = &['k', 'K', 's', 'S', 'e', 'l', 't', 'a', ' '];
    /// Few chars, so that long needles and texts match often.
    const SMALL_FOLDS: &[char] = &['k', 'K', 's', 'S', '\u{212A}', '\u{17F}', ' '];

    fn chars_of(
        alphabet: &'static [char],
        len: std::ops::Range<usize>,
    ) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(alphabet), len)
            .prop_map(|v| v.into_iter().collect())
    }

    fn windows_text() -> impl Strategy<Value = String> {
        const CHARS: &[char] = &[
            'a',
            'b',
            'k',
            'K',
            ' ',
            ' ',
            '\n',
            '\n',
            '_',
            '1',
            '.',
            '\u{E9}',
            '\u{212A}',
            '\u{1F600}',
        ];
        prop_oneof![
            chars_of(CHARS, 0..200),
            chars_of(&['a', 'b', ' ', '\n'], 0..300),
            "[ab ]{0,120}",
        ]
    }

    /// Patterns of one to three alternatives, each one to four atoms with a
    /// repetition or none.
    fn windows_pattern() -> impl Strategy<Value = String> {
        const ATOMS: &[&str] = &[
            "a",
            "b",
            "ab",
            "k",
            "\u{E9}",
            r"\w",
            r"\s",
            r"\S",
            r"\d",
            ".",
            "[^a]",
            r"[^\n]",
            "[ab]",
            r"\n",
            r"\b",
            r"\B",
            "(?m:^)",
            "(?m:$)",
            "^",
            "$",
            r"\z",
            r"\A",
            r"\b{start}",
            r"\b{end}",
            "(?:a|ab)",
            "(?:ab|a)",
            r"\x{1F600}",
        ];
        const REPEATS: &[&str] = &["", "", "", "?", "*", "+", "{1,3}", "{2}", "??", "+?"];
        let piece = (prop::sample::select(ATOMS), prop::sample::select(REPEATS))
            .prop_map(|(a, r)| format!("{a}{r}"));
        let alternative = prop::collection::vec(piece, 1..5).prop_map(|v| v.concat());
        prop::collection::vec(alternative, 1..4).prop_map(|v| v.join("|"))
    }

    fn fold_text() -> impl Strategy<Value = String> {
        prop_oneof![
            chars_of(FOLD_RICH, 0..80),
            chars_of(SMALL_FOLDS, 0..300),
            chars_of(ASCII_WITH_FOLDS, 0..200),
            // Long ASCII runs between the others.
            prop::collection::vec(
                (chars_of(ASCII_WITH_FOLDS, 0..20), chars_of(FOLD_RICH, 0..2)),
                0..12
            )
            .prop_map(|parts| parts.into_iter().map(|(a, b)| a + &b).collect()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn prop_ascii_literal_matches_naive(
            text in ascii_text(),
            needle in prop_oneof!["[abAB ]{1,5}", "[a-cA-C.(]{1,3}", "[aA]{1,70}", "(ab){1,3}c?"],
        ) {
            let s = lit(&needle);
            prop_assert_eq!(all(&s, &text), naive(&needle, &text));
        }

        #[test]
        fn prop_literal_matches_regex_on_escaped_needle(
            text in fold_text(),
            needle in prop_oneof![
                chars_of(FOLD_RICH, 1..5),
                chars_of(ASCII_WITH_FOLDS, 1..6),
                chars_of(SMALL_FOLDS, 1..4),
            ],
        ) {
            // Any needle, any text: the same ranges as the regex crate's
            // `(?i)` + escaped needle (`all` also checks the hinted path on
            // ASCII text).
            let s = lit(&needle);
            prop_assert_eq!(all(&s, &text), reference(&needle, &text));
        }

        #[test]
        fn prop_many_alternatives_match_the_regex(
            text in fold_text(),
            words in prop::collection::vec(chars_of(ASCII_WITH_FOLDS, 1..4), 64..90),
        ) {
            // Duplicates, prefixes of later words and spaces included: the
            // regex's leftmost-first preference decides among them.
            let pattern = words.join("|");
            let s = re(&pattern);
            let many = matches!(s.kind, Kind::Ascii { lit: AsciiLiteral::Many(_), .. });
            prop_assert!(many, "not searched as literals");
            let want = regex_matches(&pattern, &text);
            prop_assert_eq!(all(&s, &text), want);
        }

        /// A text holding fold members, mapped window by window (1 to 11
        /// chars, so that window ends fall inside matches and members):
        /// the matches of the regex crate on the escaped needle.
        #[test]
        fn prop_folded_windows_find_what_one_search_finds(
            text in fold_text(),
            needle in chars_of(ASCII_WITH_FOLDS, 1..6),
            words in prop::collection::vec(chars_of(ASCII_WITH_FOLDS, 1..4), 64..70),
            window in 1usize..12,
        ) {
            let folded = |s: &Scanner| match &s.kind {
                Kind::Ascii { lit, folds } => FoldedMatches::new(lit, folds, &text, window).collect::<Vec<_>>(),
                Kind::Regex { .. } => panic!("an ASCII needle is searched on bytes"),
            };
            prop_assert_eq!(folded(&lit(&needle)), reference(&needle, &text));
            // A list of words, searched as literals, leftmost-first.
            let pattern = words.join("|");
            let want = regex_matches(&pattern, &text);
            prop_assert_eq!(folded(&re(&pattern)), want);
        }

        #[test]
        fn prop_ascii_run_is_the_ascii_prefix(
            b in prop::collection::vec(prop_oneof![4 => 0u8..0x80, 1 => 0x80u8..=0xff], 0..40),
        ) {
            prop_assert_eq!(ascii_run(&b), b.iter().take_while(|c| c.is_ascii()).count());
        }

        /// Window by window, the matches of one whole search, for patterns
        /// built from atoms that mix look-arounds, classes with and without
        /// the line break, non-ASCII chars and repetitions, on texts of
        /// short lines, long lines and multi-byte chars, with windows of
        /// 1 to 40 bytes (so that window ends fall inside chars and matches).
        #[test]
        fn prop_windows_find_what_one_search_finds(
            text in windows_text(),
            pattern in windows_pattern(),
            window in 1usize..40,
        ) {
            let Ok(s) = Scanner::new(ScanMethod::Regex, &pattern) else {
                return Ok(());
            };
            let want: Vec<_> = s.find_iter(&text).collect();
            prop_assert_eq!(&windowed(&s, &text, false, window).0, &want, "{:?}", pattern);
            if text.is_ascii() {
                prop_assert_eq!(&windowed(&s, &text, true, window).0, &want, "{:?} hinted", pattern);
            }
        }

        #[test]
        fn prop_regex_ascii_twin_agrees(
            text in "[a-zA-Z0-9 _\n=.-]{0,200}",
            pat in prop_oneof![
                Just(r"\w+"), Just(r"\d{2,}"), Just(r"\b[a-z]\w*\b"), Just(r"\s+\S"),
                Just(r"[^a-z ]+"), Just("a.b"), Just(r"(?-i:A)\w"), Just(r"\W"),
                Just("(?s).{3}"), Just(r"[[:upper:]]+"), Just(r"\B\w"),
            ],
        ) {
            let s = re(pat);
            prop_assert_eq!(
                s.find_iter_hinted(&text, true).collect::<Vec<_>>(),
                s.find_iter(&text).collect::<Vec<_>>()
            );
        }
    }
}
