//! Passage layout: how a document is cut into the consecutive passages the index holds:
//! one at each definition of code that starts at least [`MIN_UNIT_CHARS`] into the
//! passage before it, and windows of at most [`PASSAGE_CHARS`] code points (their ends
//! snapped back to line starts) through what is longer.

use crate::search::markup;
use crate::search::units::{self, Definition, Syntax};

/// Nominal length of a passage, in code points.
pub const PASSAGE_CHARS: u64 = 1500;
/// How far a passage end moves back (to the start of a line), at most, in code points.
pub const PASSAGE_SNAP: u64 = 600;
/// How far past a passage's nominal end the indentation of a line starting just before it
/// is measured, at most, in code points.
pub const INDENT_LOOKAHEAD: u64 = 100;
const _: () = assert!(PASSAGE_CHARS >= 2 * PASSAGE_SNAP + INDENT_LOOKAHEAD);
/// A passage is ended before a definition only once it holds this many code points: a
/// passage per definition, short ones together. Measured through the shim, seeds 1-3
/// (`codesearch.py` MRR@10 / hit@10; `niah.py` hit@1): windows alone 0.294 / 0.508, 1.00;
/// a cut at every definition 0.317 / 0.588 but niah 0.85-0.90 (a needle of a few words
/// in a passage of one line outranks the passage holding the whole needle); 300: 0.314 /
/// 0.572, niah 0.90-1.00; 450: 0.316 / 0.567, niah 0.95-1.00; 600: 0.309 / 0.552, niah
/// 1.00.
pub const MIN_UNIT_CHARS: u64 = 600;

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
        self.skip_within(target, self.text.len());
        self.char_pos >= target
    }

    /// Moves toward char index `target`, never past byte `limit` (a char boundary): to
    /// `target` or to `limit`, whichever comes first.
    fn skip_within(&mut self, target: u64, limit: usize) {
        let bytes = &self.text.as_bytes()[..limit.min(self.text.len())];
        while self.char_pos < target && self.byte < bytes.len() {
            // Each char takes at least one byte: the next `remaining` bytes hold at most
            // `remaining` char starts.
            let remaining = usize::try_from(target - self.char_pos).unwrap_or(usize::MAX);
            let end = self.byte.saturating_add(remaining).min(bytes.len());
            self.char_pos += crate::text::count_chars(&bytes[self.byte..end]);
            self.byte = end;
            // Finish the char the slice may have cut.
            while self.byte < bytes.len() && (bytes[self.byte] as i8) < -0x40 {
                self.byte += 1;
            }
        }
    }
}

/// How a line start ranks as a place to end a passage (greater is better): a line with
/// text over a blank one, then the least indented (the start of a definition in code, a
/// heading or a paragraph in prose), then one after a blank line, then the latest (the
/// longer passage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Boundary {
    /// The line holds something other than spaces and tabs (within the lookahead).
    has_text: bool,
    /// Columns of indentation of the line, negated (a tab counts 4).
    outdent: i64,
    /// The line before it is blank (only spaces and tabs), as far as the region shows.
    after_blank: bool,
    /// Char index of the line start.
    pos: u64,
}

/// Cuts `text` (loaded as `syntax`: by its file name's extension) into consecutive
/// passages, in order, covering every char once: at the start of each definition of its
/// [`outline_for_index`] that lies at least [`MIN_UNIT_CHARS`] past the last cut, and
/// through each piece between two such cuts by [`windows`]. A text without definitions
/// (prose, markup) is cut as [`windows`] cuts it.
pub fn passages(text: &str, syntax: Option<Syntax>) -> Vec<Passage> {
    passages_of(text, &outline_for_index(text, syntax))
}

/// The outline the index reads of a text: the heading elements of an HTML page (told by
/// its content: [`markup::html_outline`]), whose lines are markup; the `#` headings of a
/// Markdown file (told by its name: [`units::markdown_outline`]), whose `#` lines could as
/// well be comments of code; the definitions of any other text, read from its lines
/// ([`units::outline`]).
pub fn outline_for_index(text: &str, syntax: Option<Syntax>) -> Vec<Definition> {
    if markup::is_html(text) {
        markup::html_outline(text)
    } else if syntax == Some(Syntax::Markdown) {
        units::markdown_outline(text)
    } else {
        units::outline(text)
    }
}

/// [`passages`] with the text's outline already read.
pub fn passages_of(text: &str, defs: &[Definition]) -> Vec<Passage> {
    let chars_in = |from: usize, to: usize| crate::text::count_chars(&text.as_bytes()[from..to]);
    let mut out = Vec::new();
    // The last cut and the definition start counted up to, (char, byte) each.
    let mut cut = (0u64, 0usize);
    let mut seen = (0u64, 0usize);
    let piece = |from: (u64, usize), to: usize, out: &mut Vec<Passage>| {
        out.extend(windows(&text[from.1..to]).into_iter().map(|p| Passage {
            start_char: from.0 + p.start_char,
            end_char: from.0 + p.end_char,
            start_byte: from.1 + p.start_byte,
            end_byte: from.1 + p.end_byte,
        }));
    };
    for d in defs {
        if d.start <= seen.1 {
            continue;
        }
        seen = (seen.0 + chars_in(seen.1, d.start), d.start);
        if seen.0 - cut.0 >= MIN_UNIT_CHARS {
            piece(cut, seen.1, &mut out);
            cut = seen;
        }
    }
    if cut.1 < text.len() {
        piece(cut, text.len(), &mut out);
    }
    out
}

/// Cuts `text` into consecutive windows, in order, covering every char once.
///
/// Each passage starts where the previous one ended (the first at 0) and nominally ends
/// [`PASSAGE_CHARS`] chars later. Its *region* is the [`PASSAGE_SNAP`] chars before that
/// nominal end; the passage ends at the best line start (by [`Boundary`]) strictly after
/// the region's first char and at most at the nominal end, or at the nominal end when no
/// line starts there. A line's indentation is read up to [`INDENT_LOOKAHEAD`] chars past
/// the nominal end (a line still blank there counts as text indented that far); whether the
/// line before a line start is blank is known only for lines that start inside the region.
/// The last passage ends at the end of the text.
///
/// So passages do not overlap, every one but the last holds more than `PASSAGE_CHARS -
/// PASSAGE_SNAP` chars, and every line of at most [`PASSAGE_SNAP`] chars (its `\n`
/// included) lies whole inside one passage; in code the cuts fall before definitions, in
/// prose between paragraphs, where the text has them. One pass over the text.
pub fn windows(text: &str) -> Vec<Passage> {
    let mut out = Vec::with_capacity(text.len() / (PASSAGE_CHARS - PASSAGE_SNAP) as usize + 1);
    if text.is_empty() {
        return out;
    }
    let mut cursor = Cursor::new(text);
    let mut start: (u64, usize) = (0, 0);
    loop {
        let nominal_end = start.0 + PASSAGE_CHARS;
        // Nothing before the region matters. The cursor is never past it: it stopped at
        // most `INDENT_LOOKAHEAD` chars after the last nominal end, the last passage ended
        // less than `PASSAGE_SNAP` chars before that, and `PASSAGE_CHARS >= 2 *
        // PASSAGE_SNAP + INDENT_LOOKAHEAD`.
        if !cursor.skip_to(nominal_end - PASSAGE_SNAP) || cursor.at_end() {
            out.push(passage(start, (cursor.char_pos, text.len())));
            break;
        }
        let end = match best_end(&mut cursor, nominal_end) {
            Cut::Last => {
                out.push(passage(start, (cursor.char_pos, text.len())));
                break;
            }
            Cut::At(end) => end,
            Cut::Nominal => {
                // No line starts in the region: the cursor stopped at the nominal end.
                (cursor.char_pos, cursor.byte)
            }
        };
        out.push(passage(start, end));
        start = end;
        if start.1 >= text.len() {
            break;
        }
    }
    out
}

fn passage(start: (u64, usize), end: (u64, usize)) -> Passage {
    Passage {
        start_char: start.0,
        end_char: end.0,
        start_byte: start.1,
        end_byte: end.1,
    }
}

/// Where [`best_end`] ends a passage.
enum Cut {
    /// The text ends at or before the nominal end: this is the last passage.
    Last,
    /// At this line start (char, byte).
    At((u64, usize)),
    /// At the nominal end, where the cursor stands.
    Nominal,
}

/// Reads the region from the cursor (at its first char) to `nominal_end`, and past it
/// while the indentation of a line starting at most at `nominal_end` is being measured.
fn best_end(cursor: &mut Cursor<'_>, nominal_end: u64) -> Cut {
    let lookahead_end = nominal_end + INDENT_LOOKAHEAD;
    let mut best: Option<(Boundary, usize)> = None;
    let mut consider = |b: Boundary, byte: usize| {
        if best.is_none_or(|(old, _)| b > old) {
            best = Some((b, byte));
        }
    };
    // The line being measured (its start, when that is a candidate), whether only spaces
    // and tabs were seen on the current line so far (the line the region starts in counts
    // as not blank), its columns, and whether the line before it was blank.
    let mut line: Option<(u64, usize)> = None;
    let mut blank = false;
    let mut columns = 0i64;
    let mut prev_blank = false;
    loop {
        if !blank && line.is_none() {
            // Inside a line with text and no line start being measured, no char before the
            // line's end changes anything: skip to it, or to the nominal end (vectorized,
            // not char by char; HTML's lines are long).
            // The chars up to the nominal end lie within 4 bytes each: the line's end is
            // looked for there only.
            let left =
                usize::try_from(nominal_end.saturating_sub(cursor.char_pos)).unwrap_or(usize::MAX);
            let reach = cursor
                .byte
                .saturating_add(left.saturating_mul(4))
                .min(cursor.text.len());
            match memchr::memchr(b'\n', &cursor.text.as_bytes()[cursor.byte..reach]) {
                Some(p) => cursor.skip_within(nominal_end, cursor.byte + p),
                None => {
                    cursor.skip_to(nominal_end);
                }
            }
            if cursor.char_pos >= nominal_end {
                break;
            }
        }
        let Some((pos, byte, c)) = cursor.next() else {
            // The end of the text: a line still blank is a blank line.
            if let Some((at, at_byte)) = line.filter(|_| blank) {
                consider(boundary(false, columns, prev_blank, at), at_byte);
            }
            break;
        };
        if c == '\n' {
            if let Some((at, at_byte)) = line.filter(|_| blank) {
                consider(boundary(false, columns, prev_blank, at), at_byte);
            }
            prev_blank = blank;
            blank = true;
            columns = 0;
            line = (pos < nominal_end).then_some((pos + 1, byte + 1));
        } else if blank && (c == ' ' || c == '\t') {
            columns += if c == '\t' { 4 } else { 1 };
        } else if blank {
            blank = false;
            if let Some((at, at_byte)) = line.take() {
                consider(boundary(true, columns, prev_blank, at), at_byte);
            }
        }
        if cursor.char_pos >= nominal_end && (line.is_none() || cursor.char_pos >= lookahead_end) {
            // Still blank at the lookahead's end: text indented that far.
            if let Some((at, at_byte)) = line.filter(|_| blank) {
                consider(boundary(true, columns, prev_blank, at), at_byte);
            }
            break;
        }
    }
    if cursor.at_end() && cursor.char_pos <= nominal_end {
        return Cut::Last;
    }
    match best {
        Some((b, byte)) => Cut::At((b.pos, byte)),
        None => Cut::Nominal,
    }
}

fn boundary(has_text: bool, columns: i64, after_blank: bool, pos: u64) -> Boundary {
    Boundary {
        has_text,
        outdent: -columns,
        after_blank,
        pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The layout of [`passages`] as its doc states it, by brute force over a char vector:
    /// `(start_char, end_char)` of each passage.
    fn reference(text: &str) -> Vec<(u64, u64)> {
        let chars: Vec<char> = text.chars().collect();
        let n = chars.len() as u64;
        let at = |i: u64| chars[i as usize];
        let mut out = Vec::new();
        let mut start = 0u64;
        while start < n {
            let nominal_end = start + PASSAGE_CHARS;
            if n <= nominal_end {
                out.push((start, n));
                break;
            }
            let region = nominal_end - PASSAGE_SNAP;
            let lookahead_end = (nominal_end + INDENT_LOOKAHEAD).min(n);
            let mut best: Option<Boundary> = None;
            for l in region + 1..=nominal_end {
                if at(l - 1) != '\n' {
                    continue;
                }
                let mut columns = 0;
                let mut has_text = None;
                let mut i = l;
                while i < lookahead_end {
                    match at(i) {
                        ' ' => columns += 1,
                        '\t' => columns += 4,
                        '\n' => {
                            has_text = Some(false);
                            break;
                        }
                        _ => {
                            has_text = Some(true);
                            break;
                        }
                    }
                    i += 1;
                }
                // Blank up to the end of the text: a blank line; up to the lookahead: text.
                let has_text = has_text.unwrap_or(i < n);
                // The line before: known only when it starts after the region's first char.
                let prev_start = (0..l - 1).rev().find(|&j| at(j) == '\n').map(|j| j + 1);
                let after_blank = prev_start
                    .is_some_and(|p| p > region && (p..l - 1).all(|j| matches!(at(j), ' ' | '\t')));
                let b = Boundary {
                    has_text,
                    outdent: -columns,
                    after_blank,
                    pos: l,
                };
                if best.is_none_or(|old| b > old) {
                    best = Some(b);
                }
            }
            let end = best.map_or(nominal_end, |b| b.pos);
            out.push((start, end));
            start = end;
        }
        out
    }

    /// Checks `windows(text)` against [`reference`] and every promise of its doc.
    fn check_windows(text: &str) {
        let ps = windows(text);
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let n = chars.len() as u64;
        let byte_of = |c: u64| -> usize {
            if c == n {
                text.len()
            } else {
                chars[c as usize].0
            }
        };
        let spans: Vec<(u64, u64)> = ps.iter().map(|p| (p.start_char, p.end_char)).collect();
        assert_eq!(spans, reference(text));
        if text.is_empty() {
            assert!(ps.is_empty());
            return;
        }
        assert_eq!(ps[0].start_char, 0);
        assert_eq!(ps.last().map(|p| p.end_char), Some(n));
        for (k, p) in ps.iter().enumerate() {
            assert!(p.start_char < p.end_char, "{p:?}");
            assert!(p.end_char - p.start_char <= PASSAGE_CHARS, "{p:?}");
            assert_eq!(p.start_byte, byte_of(p.start_char), "{p:?}");
            assert_eq!(p.end_byte, byte_of(p.end_char), "{p:?}");
            if k > 0 {
                assert_eq!(p.start_char, ps[k - 1].end_char, "gap or overlap at {p:?}");
            }
            if k + 1 < ps.len() {
                assert!(p.end_char - p.start_char > PASSAGE_CHARS - PASSAGE_SNAP);
            }
        }
        // Every line of at most PASSAGE_SNAP chars (its '\n' included) lies whole in a
        // passage.
        let mut line_start = 0u64;
        for (i, &(_, c)) in chars.iter().enumerate() {
            let i = i as u64;
            if c == '\n' || i + 1 == n {
                let line_end = i + 1;
                if line_end - line_start <= PASSAGE_SNAP {
                    assert!(
                        ps.iter()
                            .any(|p| p.start_char <= line_start && line_end <= p.end_char),
                        "line [{line_start}, {line_end}) split by {spans:?}"
                    );
                }
                line_start = line_end;
            }
        }
    }

    #[test]
    fn windows_small_cases() {
        assert!(windows("").is_empty());
        assert_eq!(
            windows("é"),
            [Passage {
                start_char: 0,
                end_char: 1,
                start_byte: 0,
                end_byte: 2
            }]
        );
        for n in [
            1, 899, 900, 901, 1499, 1500, 1501, 1600, 1601, 2999, 3000, 10_000,
        ] {
            check_windows(&"x".repeat(n));
            check_windows(&"日".repeat(n));
            check_windows(&"\n".repeat(n));
            check_windows(&" ".repeat(n));
            check_windows(&"ab\n".repeat(n));
        }
        // No newline: consecutive windows of the nominal length.
        let ps = windows(&"y".repeat(4000));
        let spans: Vec<(u64, u64)> = ps.iter().map(|p| (p.start_char, p.end_char)).collect();
        assert_eq!(spans, [(0, 1500), (1500, 3000), (3000, 4000)]);
    }

    #[test]
    fn windows_snap_to_lines() {
        // 99-char lines, all alike: the latest line start of the region.
        let text = format!("{}\n", "z".repeat(99)).repeat(100);
        check_windows(&text);
        for p in windows(&text) {
            assert_eq!(p.start_char % 100, 0, "{p:?}");
            assert!(p.end_char % 100 == 0, "{p:?}");
        }
    }

    #[test]
    fn windows_end_before_definitions() {
        // Python: top-level functions of 40 lines, with methods indented below them. Each
        // cut falls before a `def` at column 0, after the blank line, never inside a body.
        let mut text = String::new();
        let mut defs = Vec::new();
        for f in 0..40 {
            defs.push(text.chars().count() as u64);
            text.push_str(&format!("def function_{f}(x):\n"));
            for l in 0..30 {
                text.push_str(&format!("    y = x * {l}  # a line of the body\n"));
                if l % 10 == 9 {
                    text.push_str("        return y\n");
                }
            }
            text.push('\n');
        }
        check_windows(&text);
        let ps = windows(&text);
        assert!(ps.len() > 10);
        for p in &ps[1..] {
            assert!(defs.contains(&p.start_char), "{p:?} starts inside a body");
        }
        // Markdown: headings and paragraphs at column 0; the cut falls after a blank line.
        let para = "A sentence of prose that goes on for a while. ".repeat(4);
        let mut md = String::new();
        for s in 0..30 {
            md.push_str(&format!("## Section {s}\n\n{para}\n{para}\n\n"));
        }
        check_windows(&md);
        let chars: Vec<char> = md.chars().collect();
        for p in &windows(&md)[1..] {
            let at = p.start_char as usize;
            assert_eq!(
                &chars[at - 2..at],
                ['\n', '\n'],
                "{p:?} does not follow a blank line"
            );
        }
    }

    #[test]
    fn windows_of_long_texts_cover_them_to_the_end() {
        // 20 MB without a newline and 20 MB of short lines (their speed is
        // `rlm-engine-bench index-build`'s to measure).
        let long = "ab cd é ".repeat(2_500_000);
        let ps = windows(&long);
        assert_eq!(ps.first().map(|p| p.start_byte), Some(0));
        assert_eq!(ps.last().map(|p| p.end_byte), Some(long.len()));
        let lines = "short line\n".repeat(2_000_000);
        let ps2 = windows(&lines);
        assert_eq!(ps2.first().map(|p| p.start_byte), Some(0));
        assert_eq!(ps2.last().map(|p| p.end_byte), Some(lines.len()));
        // Consecutive passages touch: no text is left out, none is indexed twice.
        for ps in [&ps, &ps2] {
            assert!(ps.windows(2).all(|w| w[1].start_byte == w[0].end_byte));
        }
        assert_eq!(
            ps.len() as u64,
            (long.chars().count() as u64).div_ceil(PASSAGE_CHARS)
        );
    }

    /// Checks `passages(text, syntax)`: consecutive, covering the text, each cut at a
    /// definition start of the outline (of code, or of Markdown headings) at least
    /// [`MIN_UNIT_CHARS`] past the cut before it (the first such), the pieces between cut
    /// by [`windows`] as [`reference`] states it.
    fn check_passages(text: &str, syntax: Option<Syntax>) -> Vec<Passage> {
        let ps = passages(text, syntax);
        let outline = match syntax {
            _ if markup::is_html(text) => markup::html_outline(text),
            Some(Syntax::Markdown) => units::markdown_outline(text),
            _ => units::outline(text),
        };
        let starts: Vec<u64> = outline
            .iter()
            .map(|d| text[..d.start].chars().count() as u64)
            .collect();
        let n = text.chars().count() as u64;
        let mut cuts = vec![0u64];
        for s in starts {
            if s >= cuts.last().copied().unwrap_or(0) + MIN_UNIT_CHARS {
                cuts.push(s);
            }
        }
        cuts.push(n);
        let chars: Vec<char> = text.chars().collect();
        let mut expected = Vec::new();
        for w in cuts.windows(2).filter(|w| w[0] < w[1]) {
            let piece: String = chars[w[0] as usize..w[1] as usize].iter().collect();
            expected.extend(
                reference(&piece)
                    .into_iter()
                    .map(|(a, b)| (w[0] + a, w[0] + b)),
            );
        }
        let spans: Vec<(u64, u64)> = ps.iter().map(|p| (p.start_char, p.end_char)).collect();
        assert_eq!(spans, expected);
        for p in &ps {
            assert_eq!(text[..p.start_byte].chars().count() as u64, p.start_char);
            assert_eq!(text[..p.end_byte].chars().count() as u64, p.end_char);
        }
        ps
    }

    /// A Python module: a class of `methods` decorated methods of about `body` lines each,
    /// then a function; and the char where each definition (decorator included) starts.
    fn python_module(methods: usize, body: usize) -> (String, Vec<u64>) {
        let mut text = String::from("import os\n\n\nclass Spinbox(Entry):\n");
        let mut starts = vec![text.chars().count() as u64 - 22];
        for m in 0..methods {
            text.push('\n');
            starts.push(text.chars().count() as u64);
            text.push_str(&format!(
                "    @property\n    def method_{m}(self, value):\n"
            ));
            for l in 0..body {
                text.push_str(&format!(
                    "        value = value * {l} + self.offset  # step\n"
                ));
            }
            text.push_str("        return value\n");
        }
        text.push_str("\n\n");
        starts.push(text.chars().count() as u64);
        text.push_str("def main(argv):\n    return Spinbox(argv)\n");
        (text, starts)
    }

    #[test]
    fn passages_start_at_definitions() {
        // Methods of about 500 chars: a passage holds two, and starts at a decorator.
        let (text, starts) = python_module(12, 9);
        let ps = check_passages(&text, None);
        assert!(ps.len() >= 6, "{ps:?}");
        for p in &ps[1..] {
            assert!(
                starts.contains(&p.start_char),
                "{p:?} starts inside a definition"
            );
            assert!(
                text[p.start_byte..].starts_with("    @property\n")
                    || text[p.start_byte..].starts_with("def main")
            );
        }
        for p in &ps[..ps.len() - 1] {
            assert!(p.end_char - p.start_char >= MIN_UNIT_CHARS, "{p:?}");
        }
        // Methods of about 2,000 chars: each starts a passage, its body cut by windows.
        let (text, starts) = python_module(4, 40);
        let ps = check_passages(&text, None);
        for s in &starts[2..] {
            assert!(
                ps.iter().any(|p| p.start_char == *s),
                "no passage starts at {s}"
            );
        }
        assert!(
            ps.iter()
                .any(|p| !starts.contains(&p.start_char) && p.start_char > 0)
        );
    }

    #[test]
    fn passages_of_prose_are_its_windows() {
        // Lines with parentheses that the header patterns alone would take for C
        // functions (`acetyltransferases (HATs)`), and a heading ending in a colon.
        let para = "Histone acetyltransferases (HATs) and remodeling factors (ADCRs) are \
                    involved in selective gene regulation (see below)\n";
        let mut text = String::new();
        for k in 0..60 {
            text.push_str(&format!(
                "Results for the group {k} (n = 77):\n{para}{para}\n"
            ));
        }
        assert!(units::outline(&text).is_empty());
        assert_eq!(passages(&text, None), windows(&text));
        check_passages(&text, None);
    }

    /// A Markdown guide: `sections` sections of about 700 chars under `##` headings, a
    /// fenced shell block with a `#` comment in each; and the char where each heading starts.
    fn markdown_guide(sections: usize) -> (String, Vec<u64>) {
        let mut text = String::from("# Guide\n\nWhat this is.\n\n");
        let mut starts = Vec::new();
        for k in 0..sections {
            starts.push(text.chars().count() as u64);
            text.push_str(&format!(
                "## Step {k}\n\n```sh\n# run step {k}\nmake step{k}\n```\n\n"
            ));
            for line in 0..10 {
                text.push_str(&format!(
                    "Line {line} of step {k} says what the step does, and why it matters.\n"
                ));
            }
            text.push('\n');
        }
        (text, starts)
    }

    #[test]
    fn passages_of_markdown_start_at_headings() {
        let (text, headings) = markdown_guide(6);
        let ps = check_passages(&text, Some(Syntax::Markdown));
        let starts: Vec<u64> = ps.iter().map(|p| p.start_char).collect();
        // The first heading lies within MIN_UNIT_CHARS of the text's start; every other
        // one ends a section of about 700 chars.
        for h in &headings[1..] {
            assert!(
                starts.contains(h),
                "no passage starts at heading {h}: {starts:?}"
            );
        }
        // Read as code (or with no name), the same text is cut by windows alone: its `#`
        // lines could be comments.
        let as_code = passages(&text, Some(Syntax::Code));
        assert_eq!(as_code, windows(&text));
        assert!(
            !headings
                .iter()
                .all(|h| as_code.iter().any(|p| p.start_char == *h))
        );
    }

    #[test]
    fn passages_of_html_start_at_headings() {
        let mut page = String::from("<!DOCTYPE html>\n<html><body><h1>Struct Stack</h1>\n");
        let mut headings = Vec::new();
        for k in 0..6 {
            headings.push(page.chars().count() as u64);
            page.push_str(&format!(
                "<h4 class=\"code-header\">pub fn step{k}()</h4>\n"
            ));
            for line in 0..15 {
                page.push_str(&format!(
                    "<p>Line {line} of step {k} says what it does.</p>\n"
                ));
            }
        }
        page.push_str("</body></html>\n");
        let ps = check_passages(&page, None);
        let starts: Vec<u64> = ps.iter().map(|p| p.start_char).collect();
        // The first section starts within MIN_UNIT_CHARS of the page's start.
        for h in &headings[1..] {
            assert!(
                starts.contains(h),
                "no passage starts at heading {h}: {starts:?}"
            );
        }
    }

    fn lines_text() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-z é日\t]{0,400}", 0..40).prop_map(|lines| lines.join("\n"))
    }

    /// Code-like text: lines of a few indentation levels, some blank or only spaces.
    fn code_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (0usize..4, "[a-z(): ]{0,70}", prop::bool::weighted(0.1)),
            0..120,
        )
        .prop_map(|lines| {
            let mut text = String::new();
            for (depth, body, tabs) in lines {
                let indent = if tabs { "\t" } else { "    " };
                text.push_str(&indent.repeat(depth));
                text.push_str(&body);
                text.push('\n');
            }
            text
        })
    }

    /// Code with definitions: headers (`def`, `fn`, `class`) at a few depths between
    /// bodies of random length.
    fn defs_text() -> impl Strategy<Value = String> {
        prop::collection::vec((0usize..3, 0usize..3, 0usize..30, "[a-z]{1,8}"), 0..60).prop_map(
            |defs| {
                let mut text = String::new();
                for (depth, kind, lines, name) in defs {
                    let indent = "    ".repeat(depth);
                    match kind {
                        0 => text.push_str(&format!("{indent}def {name}(x, y):\n")),
                        1 => text.push_str(&format!("{indent}pub fn {name}(x: u8) -> u8 {{\n")),
                        _ => {
                            text.push_str(&format!("{indent}# doc\n{indent}class {name}(Base):\n"))
                        }
                    }
                    for l in 0..lines {
                        text.push_str(&format!("{indent}    x = {name}(x, {l}) + y  # é\n"));
                    }
                    if kind == 1 {
                        text.push_str(&format!("{indent}}}\n"));
                    }
                }
                text
            },
        )
    }

    /// Markdown: headings of levels 1-4, Setext underlines, fence lines and prose lines of
    /// random length.
    fn markdown_text() -> impl Strategy<Value = String> {
        prop::collection::vec((0usize..6, 1usize..5, "[a-z é]{0,120}"), 0..80).prop_map(|lines| {
            let mut text = String::new();
            for (kind, level, words) in lines {
                match kind {
                    0 => text.push_str(&format!("{} {words}\n", "#".repeat(level))),
                    1 => text.push_str("```\n"),
                    // Setext underlines.
                    2 => text.push_str(&format!("{}\n", "=".repeat(level + 1))),
                    3 => text.push_str(&format!("{}\n", "-".repeat(level + 1))),
                    _ => text.push_str(&format!("{words}\n")),
                }
            }
            text
        })
    }

    proptest! {
        #[test]
        fn windows_lines(text in lines_text()) {
            check_windows(&text);
        }

        #[test]
        fn windows_code(text in code_text()) {
            check_windows(&text);
        }

        #[test]
        fn windows_random(text in "[a\n é日\t]{0,6000}") {
            check_windows(&text);
        }

        #[test]
        fn windows_long_lines(text in "[ab é日Ω]{0,9000}") {
            check_windows(&text);
        }

        #[test]
        fn passages_code(text in code_text()) {
            check_passages(&text, None);
        }

        #[test]
        fn passages_defs(text in defs_text()) {
            check_passages(&text, None);
        }

        #[test]
        fn passages_markdown(text in markdown_text()) {
            check_passages(&text, Some(Syntax::Markdown));
        }

        #[test]
        fn passages_html(
            sections in prop::collection::vec((1usize..5, "[a-z é<>]{0,900}"), 0..12)
        ) {
            let mut page = String::from("<!DOCTYPE html><html>");
            for (level, body) in sections {
                page.push_str(&format!("<h{level}>Title {level}</h{level}>\n{body}\n"));
            }
            check_passages(&page, None);
        }

        #[test]
        fn windows_sparse_newlines(
            parts in prop::collection::vec((0usize..2000, prop::bool::ANY), 0..12)
        ) {
            let mut text = String::new();
            for (len, wide) in parts {
                let c = if wide { 'ü' } else { 'q' };
                text.extend(std::iter::repeat_n(c, len));
                text.push('\n');
            }
            check_windows(&text);
        }
    }
}
