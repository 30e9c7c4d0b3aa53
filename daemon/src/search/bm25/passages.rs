//! Passage layout: how a document is cut into the overlapping windows the index holds
//! (about [`PASSAGE_CHARS`] code points every [`PASSAGE_STEP`], snapped to line ends).

/// Nominal length of a passage, in code points.
pub const PASSAGE_CHARS: u64 = 1500;
/// Nominal distance between the starts of two consecutive passages, in code points.
pub const PASSAGE_STEP: u64 = 1200;
/// How far a passage start moves forward (to just after a `\n`) and a passage end moves
/// back (to just after a `\n`), at most, in code points.
pub const PASSAGE_SNAP: u64 = 200;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn passages_of_long_texts_cover_them_to_the_end() {
        // 20 MB without a newline and 20 MB of short lines (their speed is
        // `rlm-engine-bench index-build`'s to measure).
        let long = "ab cd é ".repeat(2_500_000);
        let ps = passages(&long);
        assert_eq!(ps.first().map(|p| p.start_byte), Some(0));
        assert_eq!(ps.last().map(|p| p.end_byte), Some(long.len()));
        let lines = "short line\n".repeat(2_000_000);
        let ps2 = passages(&lines);
        assert_eq!(ps2.first().map(|p| p.start_byte), Some(0));
        assert_eq!(ps2.last().map(|p| p.end_byte), Some(lines.len()));
        // Consecutive passages overlap or touch: no text is left out.
        for ps in [&ps, &ps2] {
            assert!(
                ps.windows(2)
                    .all(|w| w[1].start_byte <= w[0].end_byte && w[1].start_byte > w[0].start_byte)
            );
        }
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
}
