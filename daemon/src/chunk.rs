//! Chunk strategies: fixed windows, line groups and delimiter splits, in code points.
//!
//! Every strategy walks the text once, front to back: line ends are found
//! with `memchr`, code points are counted only over the bytes a cursor has
//! just passed (never again from the start), and an all-ASCII text (which
//! `total_chars == text.len()` reveals) skips the counting altogether, since
//! there a byte offset is a code-point offset.
//!
//! Definitions (offsets in code points, end exclusive):
//! - **fixed**: windows of `chunk_size`, window `k` starting at
//!   `k * (chunk_size - overlap)`; the last window is cut at the end of the
//!   document, and no window follows one that reaches the end.
//! - **lines**: groups of `line_count` lines split on `\n`, each including
//!   its `\n`; group `k` starts at line `k * (line_count - overlap)`; a last
//!   line without `\n` is a line; no group follows one that reaches the end.
//! - **delimiter**: a regex (case-sensitive, as written). Every match start
//!   is a split point: each span starts at a match and runs to the next
//!   match start (or the end); text before the first match is its own span.
//!   Zero-width matches (`(?m)^`, `\b`) are split points like any other
//!   match, so `(?m)^` splits into lines; splits never make an empty span
//!   (a split at the start of the text or at the same place as the previous
//!   one is dropped). One quirk of the regex crate's iterator: an empty match
//!   right where a non-empty match ended is not reported, so it does not
//!   split. No match: the whole document is one span. A delimiter whose
//!   matches are bounded or hold no line break, and are never empty, is
//!   searched in windows (`scan::Windows`, the same matches), and
//!   [`chunk_until`] asks its caller between them whether to stop: the
//!   regex crate cannot be stopped inside one search of a 100 MB text.
//! - An empty document has no spans, whatever the strategy.

use regex::{Regex, RegexBuilder};

use crate::search::scan::{self, Pieces, WINDOW_BYTES, Windows};

/// Compiled-program size limit of a delimiter regex (bytes).
pub const DELIMITER_SIZE_LIMIT: usize = 10 * (1 << 20);
/// Lazy-DFA cache limit of a delimiter regex (bytes).
pub const DELIMITER_DFA_SIZE_LIMIT: usize = 10 * (1 << 20);

/// One span: code-point offsets (what the tools show) and the matching byte
/// offsets into the UTF-8 text (to slice or hash without recounting).
/// `end_*` are exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkRange {
    pub start_char: u64,
    pub end_char: u64,
    pub start_byte: usize,
    pub end_byte: usize,
}

/// How to cut a document into spans (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Strategy {
    Fixed { chunk_size: u64, overlap: u64 },
    Lines { line_count: u64, overlap: u64 },
    Delimiter { pattern: String },
}

/// Why a strategy cannot be applied; the message names the field, the value
/// and what to do, so it can be shown to the model as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChunkError(pub String);

/// Validates the strategy (sizes > 0, overlap < size, delimiter compiles)
/// without touching any text.
pub fn validate(strategy: &Strategy) -> Result<(), ChunkError> {
    match strategy {
        Strategy::Delimiter { pattern } => compile_delimiter(pattern).map(|_| ()),
        other => validate_sizes(other),
    }
}

/// The spans of `text` under the strategy, in order, at most `max_chunks`
/// (`None` = no limit; `Some(0)` gives none).
///
/// `total_chars` must be the number of code points of `text` (the store
/// knows it). A value that does not fit the text is reported as a
/// `ChunkError` (an internal error, not the model's) rather than producing
/// wrong offsets.
pub fn chunk(
    text: &str,
    total_chars: u64,
    strategy: &Strategy,
    max_chunks: Option<u64>,
) -> Result<Vec<ChunkRange>, ChunkError> {
    chunk_until(text, total_chars, strategy, max_chunks, |_| false)
        .map(|spans| spans.unwrap_or_default())
}

/// [`chunk`], asking `stop` while a delimiter is searched (see the module
/// docs; with the bytes searched since it last asked): `Ok(None)` when it
/// said to stop before the spans were all found.
pub fn chunk_until(
    text: &str,
    total_chars: u64,
    strategy: &Strategy,
    max_chunks: Option<u64>,
    stop: impl FnMut(usize) -> bool,
) -> Result<Option<Vec<ChunkRange>>, ChunkError> {
    let regex = match strategy {
        Strategy::Delimiter { pattern } => {
            Some((compile_delimiter(pattern)?, scan::pieces_of(pattern, false)))
        }
        other => {
            validate_sizes(other)?;
            None
        }
    };
    // `len` chars in `len` bytes means every byte is one ASCII char.
    let ascii = total_chars == text.len() as u64;
    if ascii && !text.is_ascii() {
        return Err(mismatch(text, total_chars));
    }
    if (total_chars == 0) != text.is_empty() {
        return Err(mismatch(text, total_chars));
    }
    let max = max_chunks.unwrap_or(u64::MAX);
    if text.is_empty() || max == 0 {
        return Ok(Some(Vec::new()));
    }
    let out = match strategy {
        Strategy::Fixed {
            chunk_size,
            overlap,
        } => {
            if ascii {
                fixed_ascii(text.len() as u64, *chunk_size, *overlap, max)
            } else {
                fixed_unicode(text, total_chars, *chunk_size, *overlap, max)?
            }
        }
        Strategy::Lines {
            line_count,
            overlap,
        } => lines(text, ascii, *line_count, *overlap, max),
        // `regex` is Some exactly for a delimiter strategy.
        Strategy::Delimiter { .. } => match &regex {
            Some((re, pieces)) => match delimiter(text, ascii, re, *pieces, max, stop) {
                Some(spans) => spans,
                None => return Ok(None),
            },
            None => Vec::new(),
        },
    };
    // Lines and delimiter spans count code points themselves; if they reached
    // the end, the count must agree with what the store said.
    if let Some(last) = out.last()
        && last.end_byte == text.len()
        && last.end_char != total_chars
    {
        return Err(mismatch(text, total_chars));
    }
    Ok(Some(out))
}

fn validate_sizes(strategy: &Strategy) -> Result<(), ChunkError> {
    match strategy {
        Strategy::Fixed {
            chunk_size,
            overlap,
        } => check_sizes("chunk_size", *chunk_size, *overlap),
        Strategy::Lines {
            line_count,
            overlap,
        } => check_sizes("line_count", *line_count, *overlap),
        Strategy::Delimiter { .. } => Ok(()),
    }
}

fn check_sizes(size_name: &str, size: u64, overlap: u64) -> Result<(), ChunkError> {
    if size == 0 {
        return Err(ChunkError(format!(
            "{size_name} 0 must be positive; use a {size_name} of at least 1"
        )));
    }
    if overlap >= size {
        let hint = if size == 1 {
            "use an overlap of 0".to_owned()
        } else {
            format!("use an overlap below {size}")
        };
        return Err(ChunkError(format!(
            "overlap {overlap} must be smaller than {size_name} {size}; {hint}"
        )));
    }
    Ok(())
}

fn compile_delimiter(pattern: &str) -> Result<Regex, ChunkError> {
    RegexBuilder::new(pattern)
        .size_limit(DELIMITER_SIZE_LIMIT)
        .dfa_size_limit(DELIMITER_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let hint = match e {
                regex::Error::CompiledTooBig(_) => {
                    "Use smaller repetition counts or a simpler pattern, or another strategy."
                }
                _ => {
                    "Fix the pattern (escape special characters such as . ( [ with a \
                     backslash) or use another strategy."
                }
            };
            ChunkError(format!(
                "delimiter {pattern:?} is not a usable regex: {e}\n{hint}"
            ))
        })
}

fn mismatch(text: &str, total_chars: u64) -> ChunkError {
    ChunkError(format!(
        "internal error: the stored length of the document ({total_chars} characters) does \
         not match its text ({} bytes); the document record is inconsistent",
        text.len()
    ))
}

/// Fixed windows over an ASCII text: byte offsets are char offsets.
fn fixed_ascii(total: u64, size: u64, overlap: u64, max: u64) -> Vec<ChunkRange> {
    let step = size - overlap;
    let mut out = Vec::with_capacity(capacity(fixed_count(total, size, step), max));
    let mut start = 0u64;
    loop {
        let end = start.saturating_add(size).min(total);
        out.push(ChunkRange {
            start_char: start,
            end_char: end,
            start_byte: start as usize,
            end_byte: end as usize,
        });
        if end == total || out.len() as u64 >= max {
            return out;
        }
        start += step;
    }
}

/// Fixed windows over a non-ASCII text: two cursors (window starts and
/// window ends) move forward only, each crossing the text at most once.
fn fixed_unicode(
    text: &str,
    total: u64,
    size: u64,
    overlap: u64,
    max: u64,
) -> Result<Vec<ChunkRange>, ChunkError> {
    let step = size - overlap;
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(capacity(fixed_count(total, size, step), max));
    let mut start = CharCursor::default();
    let mut end = CharCursor::default();
    let mut want_end = size.min(total);
    loop {
        end.advance(text, want_end - end.chars);
        if end.chars != want_end || (want_end == total && end.byte != bytes.len()) {
            return Err(mismatch(text, total));
        }
        out.push(ChunkRange {
            start_char: start.chars,
            end_char: end.chars,
            start_byte: start.byte,
            end_byte: end.byte,
        });
        if want_end == total || out.len() as u64 >= max {
            return Ok(out);
        }
        if overlap == 0 {
            start = end;
        } else {
            start.advance(text, step);
        }
        want_end = start.chars.saturating_add(size).min(total);
    }
}

/// How many fixed windows a text of `total` chars gets.
fn fixed_count(total: u64, size: u64, step: u64) -> u64 {
    if total <= size {
        1
    } else {
        1 + (total - size).div_ceil(step)
    }
}

/// Vec capacity: the expected count, capped so that a huge request does not
/// reserve everything up front.
fn capacity(expected: u64, max: u64) -> usize {
    expected.min(max).min(1 << 16) as usize
}

/// A position in a UTF-8 text, as a byte offset (always a char boundary)
/// and the number of code points before it.
#[derive(Debug, Default, Clone, Copy)]
struct CharCursor {
    byte: usize,
    chars: u64,
}

impl CharCursor {
    /// Moves forward by `n` code points, or to the end of the text if it has
    /// fewer left.
    fn advance(&mut self, text: &str, n: u64) {
        let bytes = text.as_bytes();
        let mut left = n;
        let mut pos = self.byte;
        // Big strides: `left` bytes hold at most `left` chars, so counting
        // the chars of the next `left` bytes (cut back to a char boundary)
        // never overshoots, and uses std's word-at-a-time char count. Each
        // stride takes at least a quarter of what is left.
        while left >= 64 && pos < bytes.len() {
            let mut to = pos.saturating_add(usize::try_from(left).unwrap_or(usize::MAX));
            if to >= bytes.len() {
                to = bytes.len();
            } else {
                while !text.is_char_boundary(to) {
                    to -= 1;
                }
            }
            left -= text[pos..to].chars().count() as u64;
            pos = to;
        }
        // Then byte by byte: stop on the start of char number `left + 1`.
        while pos < bytes.len() {
            if is_char_start(bytes[pos]) {
                if left == 0 {
                    break;
                }
                left -= 1;
            }
            pos += 1;
        }
        self.byte = pos;
        self.chars += n - left;
    }
}

#[inline]
fn is_char_start(b: u8) -> bool {
    // Continuation bytes are 0b10xx_xxxx, i.e. -128..=-65 as i8.
    (b as i8) >= -0x40
}

/// Code points in `text[from..to]` (both char boundaries).
#[inline]
fn count_chars(text: &str, ascii: bool, from: usize, to: usize) -> u64 {
    if ascii {
        (to - from) as u64
    } else {
        text[from..to].chars().count() as u64
    }
}

/// A line-start position: byte offset, code points before it.
#[derive(Debug, Default, Clone, Copy)]
struct LineCursor {
    byte: usize,
    chars: u64,
}

impl LineCursor {
    /// Moves forward by `n` lines (past `n` newlines), or to the end of the
    /// text if fewer remain.
    fn advance(&mut self, text: &str, ascii: bool, n: u64) {
        let bytes = text.as_bytes();
        let from = self.byte;
        // For many lines, first skip whole strides holding fewer newlines
        // than are left (memchr's vectorized count), then find the last ones
        // one by one.
        const STRIDE: usize = 1024;
        let mut left = n;
        let mut pos = from;
        while left > 16 && pos + STRIDE <= bytes.len() {
            let c = memchr::memchr_iter(b'\n', &bytes[pos..pos + STRIDE]).count() as u64;
            if c >= left {
                break;
            }
            left -= c;
            pos += STRIDE;
        }
        let to = if left == 0 {
            pos
        } else {
            let skip = usize::try_from(left - 1).unwrap_or(usize::MAX);
            match memchr::memchr_iter(b'\n', &bytes[pos..]).nth(skip) {
                Some(i) => pos + i + 1,
                None => bytes.len(),
            }
        };
        self.chars += count_chars(text, ascii, from, to);
        self.byte = to;
    }
}

fn lines(text: &str, ascii: bool, count: u64, overlap: u64, max: u64) -> Vec<ChunkRange> {
    let step = count - overlap;
    let mut out = Vec::new();
    let mut start = LineCursor::default();
    let mut end = LineCursor::default();
    end.advance(text, ascii, count);
    loop {
        out.push(ChunkRange {
            start_char: start.chars,
            end_char: end.chars,
            start_byte: start.byte,
            end_byte: end.byte,
        });
        if end.byte == text.len() || out.len() as u64 >= max {
            return out;
        }
        // The next group starts at or before this group's end (step <=
        // count), which is before the end of the text: never empty.
        if overlap == 0 {
            start = end;
        } else {
            start.advance(text, ascii, step);
        }
        end.advance(text, ascii, step);
    }
}

/// The delimiter's spans; None when `stop` said to stop first.
fn delimiter(
    text: &str,
    ascii: bool,
    re: &Regex,
    pieces: Option<Pieces>,
    max: u64,
    mut stop: impl FnMut(usize) -> bool,
) -> Option<Vec<ChunkRange>> {
    let mut out = Vec::new();
    let mut last = LineCursor::default();
    let full = std::cell::Cell::new(false);
    let mut split_at = |at: usize| {
        if full.get() || at == last.byte {
            // A match at the start of the text or where the last span starts
            // (an empty match after a non-empty one): no empty span.
            return;
        }
        let chars = last.chars + count_chars(text, ascii, last.byte, at);
        out.push(ChunkRange {
            start_char: last.chars,
            end_char: chars,
            start_byte: last.byte,
            end_byte: at,
        });
        full.set(out.len() as u64 >= max);
        last = LineCursor { byte: at, chars };
    };
    match pieces {
        Some(pieces) => {
            let windows = Windows {
                text,
                pieces,
                window: WINDOW_BYTES,
            };
            let found = windows.search(
                |end, at| re.find_at(&text[..end], at).map(|m| (m.start(), m.end())),
                |bytes| full.get() || stop(bytes),
                |at, _| split_at(at),
            );
            if found.is_err() && !full.get() {
                return None;
            }
        }
        None => {
            for m in re.find_iter(text) {
                split_at(m.start());
                if full.get() {
                    break;
                }
            }
        }
    }
    if full.get() {
        return Some(out);
    }
    if last.byte < text.len() {
        out.push(ChunkRange {
            start_char: last.chars,
            end_char: last.chars + count_chars(text, ascii, last.byte, text.len()),
            start_byte: last.byte,
            end_byte: text.len(),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use super::*;
    use proptest::prelude::*;

    fn total(text: &str) -> u64 {
        text.chars().count() as u64
    }

    fn run(text: &str, strategy: &Strategy) -> Vec<(u64, u64)> {
        chunk(text, total(text), strategy, None)
            .unwrap()
            .into_iter()
            .map(|r| (r.start_char, r.end_char))
            .collect()
    }

    fn fixed(chunk_size: u64, overlap: u64) -> Strategy {
        Strategy::Fixed {
            chunk_size,
            overlap,
        }
    }

    fn lines_of(line_count: u64, overlap: u64) -> Strategy {
        Strategy::Lines {
            line_count,
            overlap,
        }
    }

    fn delim(pattern: &str) -> Strategy {
        Strategy::Delimiter {
            pattern: pattern.to_owned(),
        }
    }

    fn pieces(text: &str, strategy: &Strategy) -> Vec<String> {
        chunk(text, total(text), strategy, None)
            .unwrap()
            .into_iter()
            .map(|r| text[r.start_byte..r.end_byte].to_owned())
            .collect()
    }

    // ---- validation -------------------------------------------------------

    #[test]
    fn validation_messages_name_field_value_and_fix() {
        let e = validate(&fixed(500, 500)).unwrap_err().0;
        assert_eq!(
            e,
            "overlap 500 must be smaller than chunk_size 500; use an overlap below 500"
        );
        let e = validate(&fixed(0, 0)).unwrap_err().0;
        assert_eq!(
            e,
            "chunk_size 0 must be positive; use a chunk_size of at least 1"
        );
        let e = validate(&lines_of(10, 12)).unwrap_err().0;
        assert_eq!(
            e,
            "overlap 12 must be smaller than line_count 10; use an overlap below 10"
        );
        let e = validate(&lines_of(0, 0)).unwrap_err().0;
        assert!(e.contains("line_count 0 must be positive"), "{e}");
        let e = validate(&lines_of(1, 1)).unwrap_err().0;
        assert!(e.ends_with("use an overlap of 0"), "{e}");
        assert!(validate(&fixed(1, 0)).is_ok());
        assert!(validate(&lines_of(3, 2)).is_ok());
        assert!(validate(&delim(r"\n## ")).is_ok());
    }

    #[test]
    fn bad_delimiter_has_engine_reason() {
        let e = validate(&delim("(unclosed")).unwrap_err().0;
        assert!(e.contains("delimiter \"(unclosed\""), "{e}");
        assert!(e.contains("unclosed group"), "{e}");
        // Same check in chunk().
        let e = chunk("abc", 3, &delim("a{2,1}"), None).unwrap_err().0;
        assert!(e.contains("invalid repetition"), "{e}");
    }

    #[test]
    fn huge_delimiter_rejected_with_reason() {
        let e = validate(&delim(r"\w{1000}{1000}")).unwrap_err().0;
        assert!(e.contains("size limit"), "{e}");
    }

    #[test]
    fn chunk_validates_sizes_too() {
        assert!(chunk("abc", 3, &fixed(2, 2), None).is_err());
        assert!(chunk("", 0, &lines_of(0, 0), None).is_err());
    }

    #[test]
    fn wrong_total_is_an_error_not_wrong_offsets() {
        assert!(chunk("héllo", 5, &fixed(2, 0), None).is_ok());
        assert!(chunk("héllo", 6, &fixed(2, 0), None).is_err()); // claims ASCII
        assert!(chunk("héllo", 4, &fixed(2, 0), None).is_err());
        assert!(chunk("héllo", 4, &lines_of(1, 0), None).is_err());
        assert!(chunk("héllo", 3, &delim("l"), None).is_err());
        assert!(chunk("abc", 0, &fixed(2, 0), None).is_err());
        assert!(chunk("", 1, &fixed(2, 0), None).is_err());
    }

    // ---- fixed ------------------------------------------------------------

    #[test]
    fn fixed_examples() {
        assert_eq!(run("abcdefghij", &fixed(4, 0)), [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(run("abcdefghij", &fixed(4, 1)), [(0, 4), (3, 7), (6, 10)]);
        // The window that reaches the end is the last one: no (8,10) tail.
        assert_eq!(
            run("abcdefghij", &fixed(5, 3)),
            [(0, 5), (2, 7), (4, 9), (6, 10)]
        );
        assert_eq!(run("abcdefgh", &fixed(4, 0)), [(0, 4), (4, 8)]);
        assert_eq!(run("abc", &fixed(10, 0)), [(0, 3)]);
        assert_eq!(run("abc", &fixed(u64::MAX, u64::MAX - 1)), [(0, 3)]);
        assert_eq!(run("abc", &fixed(1, 0)), [(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn fixed_non_ascii_bytes_follow_chars() {
        let text = "héllo wörld ✓ 😀x";
        let r = chunk(text, total(text), &fixed(3, 1), None).unwrap();
        for c in &r {
            let s = &text[c.start_byte..c.end_byte];
            assert_eq!(s.chars().count() as u64, c.end_char - c.start_char);
            let want: String = text
                .chars()
                .skip(c.start_char as usize)
                .take((c.end_char - c.start_char) as usize)
                .collect();
            assert_eq!(s, want);
        }
        assert_eq!(r.last().unwrap().end_byte, text.len());
    }

    #[test]
    fn fixed_long_non_ascii_uses_block_skip() {
        // Long enough for the 64-byte block skip, mixing 1- to 4-byte chars.
        let text: String = "aé✓😀".repeat(200);
        let n = total(&text);
        let r = chunk(&text, n, &fixed(150, 7), None).unwrap();
        let idx: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        for c in &r {
            assert_eq!(c.start_byte, idx[c.start_char as usize]);
            assert_eq!(c.end_byte, idx[c.end_char as usize]);
        }
    }

    #[test]
    fn empty_document_has_no_spans() {
        for s in [fixed(3, 1), lines_of(2, 1), delim("x"), delim("")] {
            assert!(chunk("", 0, &s, None).unwrap().is_empty());
        }
    }

    #[test]
    fn max_chunks_stops_early() {
        assert_eq!(
            chunk("abcdefghij", 10, &fixed(2, 0), Some(2))
                .unwrap()
                .len(),
            2
        );
        assert!(
            chunk("abcdefghij", 10, &fixed(2, 0), Some(0))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            chunk("a\nb\nc\n", 6, &lines_of(1, 0), Some(2))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(chunk("a,b,c,d", 7, &delim(","), Some(3)).unwrap().len(), 3);
        assert_eq!(chunk("abc", 3, &fixed(1, 0), Some(100)).unwrap().len(), 3);
    }

    // ---- lines ------------------------------------------------------------

    #[test]
    fn lines_examples() {
        let t = "a\nb\nc\nd\ne";
        assert_eq!(pieces(t, &lines_of(2, 0)), ["a\nb\n", "c\nd\n", "e"]);
        assert_eq!(
            pieces(t, &lines_of(2, 1)),
            ["a\nb\n", "b\nc\n", "c\nd\n", "d\ne"]
        );
        assert_eq!(pieces(t, &lines_of(10, 0)), [t]);
        // A trailing newline does not make an extra empty line.
        assert_eq!(pieces("a\nb\n", &lines_of(1, 0)), ["a\n", "b\n"]);
        assert_eq!(pieces("a\nb\n", &lines_of(2, 0)), ["a\nb\n"]);
        // Last group reaches the end: stop (no group made only of overlap).
        assert_eq!(
            pieces("1\n2\n3\n4\n", &lines_of(3, 1)),
            ["1\n2\n3\n", "3\n4\n"]
        );
        assert_eq!(pieces("1\n2\n3\n", &lines_of(2, 1)), ["1\n2\n", "2\n3\n"]);
        // Empty lines are lines.
        assert_eq!(pieces("\n\n\n", &lines_of(2, 0)), ["\n\n", "\n"]);
        // No newline at all: one line.
        assert_eq!(pieces("no newline", &lines_of(3, 2)), ["no newline"]);
        // Char offsets with non-ASCII text.
        assert_eq!(run("é\n😀😀\nz", &lines_of(1, 0)), [(0, 2), (2, 5), (5, 6)]);
    }

    // ---- delimiter --------------------------------------------------------

    #[test]
    fn delimiter_examples() {
        let t = "intro\n## A\naaa\n## B\nbbb";
        assert_eq!(
            pieces(t, &delim(r"\n## ")),
            ["intro", "\n## A\naaa", "\n## B\nbbb"]
        );
        // Match at 0: no empty leading span.
        assert_eq!(pieces("## A\n## B", &delim("(?m)^## ")), ["## A\n", "## B"]);
        // No match: the whole document.
        assert_eq!(pieces("nothing here", &delim("zzz")), ["nothing here"]);
        // Adjacent matches: each span starts at a match.
        assert_eq!(pieces("a,,b", &delim(",")), ["a", ",", ",b"]);
        // Match at the very end: a span made of the match.
        assert_eq!(pieces("ab,", &delim(",")), ["ab", ","]);
        // Case-sensitive.
        assert_eq!(pieces("aXbxc", &delim("x")), ["aXb", "xc"]);
        // Non-ASCII offsets.
        assert_eq!(run("été§ça§", &delim("§")), [(0, 3), (3, 6), (6, 7)]);
    }

    /// Over a text of several windows, a delimiter searched window by
    /// window splits where one search of the whole text does, and a stop
    /// asked between windows ends the chunking there.
    #[test]
    fn delimiters_searched_in_windows_split_alike_and_stop_when_asked() {
        let section = |i: usize| format!("## Part {i}\nsome text of the part, é and more\n");
        let text: String = (0..40_000).map(section).collect(); // ~1.8 MB, 7 windows
        for pattern in [r"\n## ", r"(?m)^## Part \d+", "## "] {
            assert!(scan::pieces_of(pattern, false).is_some(), "{pattern}");
            let spans = chunk(&text, total(&text), &delim(pattern), None).unwrap();
            let re = Regex::new(pattern).unwrap();
            let mut starts: Vec<usize> = re.find_iter(&text).map(|m| m.start()).collect();
            starts.retain(|&s| s > 0);
            let want: Vec<usize> = std::iter::once(0).chain(starts).collect();
            let got: Vec<usize> = spans.iter().map(|r| r.start_byte).collect();
            assert_eq!(got, want, "{pattern}");
            check_common(&text, &spans);

            let mut asked = 0;
            let stopped = chunk_until(&text, total(&text), &delim(pattern), None, |_| {
                asked += 1;
                asked == 2
            });
            assert_eq!(stopped, Ok(None), "{pattern}");
            // A chunking that reaches its cap gives its spans, whatever the
            // stop says after.
            let capped =
                chunk_until(&text, total(&text), &delim(pattern), Some(10), |_| true).unwrap();
            assert_eq!(capped.as_deref(), Some(&spans[..10]), "{pattern}");
        }
    }

    #[test]
    fn delimiter_zero_width_matches_split_without_empty_spans() {
        assert_eq!(
            pieces("a\nb\n\nc", &delim("(?m)^")),
            ["a\n", "b\n", "\n", "c"]
        );
        assert_eq!(pieces("ab", &delim("")), ["a", "b"]);
        assert_eq!(pieces("é😀", &delim("x*")), ["é", "😀"]);
        assert_eq!(pieces("one two", &delim(r"\b")), ["one", " ", "two"]);
        assert_eq!(pieces("abc", &delim("$")), ["abc"]);
    }

    // ---- properties -------------------------------------------------------

    fn text_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        // Mostly short alphabets with newlines so that lines and delimiters
        // get exercised, with 2-, 3- and 4-byte chars.
        prop_oneof![
            Just(String::new()),
            "[a-c\n]{0,40}",
            "[aé✓😀\n,]{0,60}",
            "[ab\n]{0,300}",
            "[x😀]{0,200}",
            "[aé✓😀\n]{200,1500}",
            any::<String>(),
        ]
    }

    fn check_common(text: &str, spans: &[ChunkRange]) {
        let n = total(text);
        let mut prev: Option<&ChunkRange> = None;
        for s in spans {
            assert!(s.start_char < s.end_char, "empty span {s:?}");
            assert!(s.end_char <= n && s.end_byte <= text.len());
            assert!(text.is_char_boundary(s.start_byte) && text.is_char_boundary(s.end_byte));
            let slice = &text[s.start_byte..s.end_byte];
            assert_eq!(slice.chars().count() as u64, s.end_char - s.start_char);
            assert_eq!(text[..s.start_byte].chars().count() as u64, s.start_char);
            if let Some(p) = prev {
                assert!(p.start_char < s.start_char, "not in order");
                // Union covers everything: no gap between consecutive spans.
                assert!(s.start_char <= p.end_char, "gap between {p:?} and {s:?}");
                assert!(p.end_char <= s.end_char);
            }
            prev = Some(s);
        }
        if n == 0 {
            assert!(spans.is_empty());
        } else {
            assert_eq!(spans[0].start_char, 0);
            assert_eq!(spans.last().unwrap().end_char, n);
            assert_eq!(spans.last().unwrap().end_byte, text.len());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn prop_fixed(
            text in text_strategy(),
            size in prop_oneof![1u64..20, 60u64..300],
            ov in prop_oneof![0u64..20, 0u64..300],
            max in 0u64..30,
        ) {
            let overlap = ov % size;
            let s = fixed(size, overlap);
            let spans = chunk(&text, total(&text), &s, None).unwrap();
            check_common(&text, &spans);
            let n = total(&text);
            let step = size - overlap;
            for (k, r) in spans.iter().enumerate() {
                prop_assert_eq!(r.start_char, k as u64 * step);
                if k + 1 < spans.len() {
                    prop_assert_eq!(r.end_char - r.start_char, size);
                    prop_assert_eq!(r.end_char - spans[k + 1].start_char, overlap);
                } else {
                    prop_assert!(r.end_char - r.start_char <= size);
                }
            }
            // Nothing after the window that reaches the end.
            prop_assert!(spans.iter().filter(|r| r.end_char == n).count() <= 1);
            if n > 0 {
                prop_assert_eq!(spans.len() as u64, fixed_count(n, size, step));
            }
            let capped = chunk(&text, n, &s, Some(max)).unwrap();
            prop_assert_eq!(&capped[..], &spans[..spans.len().min(max as usize)]);
        }

        #[test]
        fn prop_lines(
            text in prop_oneof![
                text_strategy(),
                "([a-z]{0,80}\n){0,200}[a-z]{0,5}",
                "([é😀a]{0,60}\n){0,200}",
            ],
            count in prop_oneof![1u64..8, 17u64..60],
            ov in prop_oneof![0u64..8, 0u64..60],
            max in 0u64..30,
        ) {
            let overlap = ov % count;
            let s = lines_of(count, overlap);
            let spans = chunk(&text, total(&text), &s, None).unwrap();
            check_common(&text, &spans);
            // Reference: lines with their newlines.
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let step = (count - overlap) as usize;
            for (k, r) in spans.iter().enumerate() {
                let first = k * step;
                let last = (first + count as usize).min(lines.len());
                let want: String = lines[first..last].concat();
                prop_assert_eq!(&text[r.start_byte..r.end_byte], want.as_str());
                if k + 1 < spans.len() {
                    // Exactly `overlap` lines shared with the next group.
                    let shared = &text[spans[k + 1].start_byte..r.end_byte];
                    prop_assert_eq!(shared.split_inclusive('\n').count() as u64, overlap);
                    prop_assert!(last < lines.len());
                } else {
                    prop_assert_eq!(last, lines.len());
                }
            }
            let capped = chunk(&text, total(&text), &s, Some(max)).unwrap();
            prop_assert_eq!(&capped[..], &spans[..spans.len().min(max as usize)]);
        }

        #[test]
        fn prop_delimiter(
            text in text_strategy(),
            pat in prop_oneof![
                Just(","), Just("\n"), Just("a+"), Just("😀"), Just("(?m)^"),
                Just("b*"), Just(r"\b"), Just("é|✓"), Just("")
            ],
            max in 0u64..30,
        ) {
            let s = delim(pat);
            let spans = chunk(&text, total(&text), &s, None).unwrap();
            check_common(&text, &spans);
            // Disjoint, and concatenated they are the text.
            let joined: String = spans.iter().map(|r| &text[r.start_byte..r.end_byte]).collect();
            prop_assert_eq!(&joined, &text);
            for w in spans.windows(2) {
                prop_assert_eq!(w[0].end_byte, w[1].start_byte);
            }
            // Every span after the first starts at a match of the pattern.
            let re = Regex::new(pat).unwrap();
            for r in spans.iter().skip(1) {
                prop_assert!(re.find_at(&text, r.start_byte).is_some_and(|m| m.start() == r.start_byte));
            }
            let capped = chunk(&text, total(&text), &s, Some(max)).unwrap();
            prop_assert_eq!(&capped[..], &spans[..spans.len().min(max as usize)]);
        }
    }
}
