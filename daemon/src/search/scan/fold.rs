//! ASCII needles over texts that hold non-ASCII members of their fold
//! classes (the Kelvin sign for `k`, the long s for `s`): the members, and
//! the search over the text mapped to one byte a char, window by window.

use std::sync::OnceLock;

use super::AsciiLiteral;

/// The non-ASCII chars in the simple case fold classes of an ASCII needle's
/// chars (the Kelvin sign for `k`, the long s for `s`), each with the ASCII
/// lowercase char it folds with, and a finder of its UTF-8 form.
#[derive(Debug)]
pub(super) struct Folds {
    pub(super) members: Vec<(char, u8)>,
    finders: Vec<memchr::memmem::Finder<'static>>,
}

impl Folds {
    pub(super) fn of(needle: &[u8]) -> Folds {
        let members: Vec<(char, u8)> = ascii_fold_members()
            .iter()
            .filter(|(_, b)| needle.iter().any(|n| n.to_ascii_lowercase() == *b))
            .copied()
            .collect();
        let finders = members
            .iter()
            .map(|(c, _)| {
                memchr::memmem::Finder::new(c.encode_utf8(&mut [0; 4]).as_bytes()).into_owned()
            })
            .collect();
        Folds { members, finders }
    }

    /// Whether `text` holds one of the members.
    pub(super) fn occur_in(&self, text: &str) -> bool {
        self.finders
            .iter()
            .any(|f| f.find(text.as_bytes()).is_some())
    }

    /// The ASCII char a member folds with; 0x80 (which no needle has) for
    /// any other non-ASCII char.
    fn symbol(&self, c: char) -> u8 {
        self.members.iter().find(|m| m.0 == c).map_or(0x80, |m| m.1)
    }
}

/// Every non-ASCII char whose simple case fold class holds an ASCII char,
/// with the lowercase of that char, by code point: the Kelvin sign U+212A
/// (`k`) and the long s U+017F (`s`) in the Unicode versions so far. Read
/// from the fold tables of `regex-syntax`, the regex crate's own, so that a
/// literal folds exactly as a regex does.
pub(super) fn ascii_fold_members() -> &'static [(char, u8)] {
    static MEMBERS: OnceLock<Vec<(char, u8)>> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        use regex_syntax::hir::{ClassUnicode, ClassUnicodeRange};
        let mut out = Vec::new();
        for b in 0u8..128 {
            let c = char::from(b);
            let mut class = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
            class.case_fold_simple();
            for r in class.iter() {
                for m in r.start()..=r.end() {
                    if !m.is_ascii() {
                        out.push((m, b.to_ascii_lowercase()));
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    })
}

/// Chars of a text mapped at a time by [`FoldedMatches`]: its memory is
/// about 17 bytes a char of a window (the mapped byte, and the matches of
/// the window at worst), some 4.5 MB, whatever the text's size.
pub(super) const FOLD_WINDOW_CHARS: usize = 256 << 10;

/// Matches of an ASCII needle in a text that holds members of its fold
/// classes: each char of the text becomes one byte (ASCII as is, a member
/// as the ASCII char it folds with, any other char 0x80, which no needle
/// has), the ASCII search runs over those bytes, and its ranges, in chars,
/// are turned back into byte ranges by walking the text once more. Window
/// by window of [`FOLD_WINDOW_CHARS`]: a window's mapped bytes run on past
/// it by the longest match less one, and it takes the matches that start
/// in it, so the matches are those of one search of the whole mapped text
/// (they have a bounded length and no context), with memory bounded by the
/// window, not the text (a 95 MB text mapped whole took 180 MB for a
/// search of `s`). Linear in the text.
pub(super) struct FoldedMatches<'t> {
    lit: &'t AsciiLiteral,
    folds: &'t Folds,
    text: &'t str,
    window: usize,
    /// Where the next window starts (a char boundary).
    next: usize,
    /// The mapped bytes of the current window.
    symbols: Vec<u8>,
    /// The matches of the current window, in byte ranges, still to give.
    found: std::collections::VecDeque<(usize, usize)>,
}

impl<'t> FoldedMatches<'t> {
    pub(super) fn new(
        lit: &'t AsciiLiteral,
        folds: &'t Folds,
        text: &'t str,
        window: usize,
    ) -> Self {
        let window = window.max(1);
        // A window's mapped bytes: at most one a byte of the text.
        let mapped = text.len().min(window + lit.longest());
        FoldedMatches {
            lit,
            folds,
            text,
            window,
            next: 0,
            symbols: Vec::with_capacity(mapped),
            found: Default::default(),
        }
    }

    /// Maps `chars` chars of the text from byte `from` into `symbols`
    /// (fewer at the text's end); returns the byte just after them.
    fn map(&mut self, from: usize, chars: usize) -> usize {
        let bytes = self.text.as_bytes();
        let (mut i, mut mapped) = (from, 0);
        while i < bytes.len() && mapped < chars {
            let run = ascii_run(&bytes[i..(i + chars - mapped).min(bytes.len())]);
            self.symbols.extend_from_slice(&bytes[i..i + run]);
            i += run;
            mapped += run;
            if mapped < chars
                && let Some(c) = self.text.get(i..).and_then(|rest| rest.chars().next())
            {
                self.symbols.push(self.folds.symbol(c));
                i += c.len_utf8();
                mapped += 1;
            }
        }
        i
    }

    /// Finds the matches of the window at `self.next`; false at the end.
    fn fill(&mut self) -> bool {
        let text = self.text;
        let bytes = text.as_bytes();
        let start = self.next;
        if start >= bytes.len() {
            return false;
        }
        self.symbols.clear();
        let own_end = self.map(start, self.window);
        let own = self.symbols.len();
        self.map(own_end, self.lit.longest().saturating_sub(1));
        // Matches come in order and do not overlap, so one walk from the
        // window's start turns every char offset into a byte offset.
        let (mut chars, mut at) = (0, start);
        let mut to_byte = |char_offset: usize| {
            while chars < char_offset {
                // No further than needed (at least one byte per char),
                // which keeps the walk linear however many matches there are.
                let need = (char_offset - chars).min(bytes.len() - at);
                let run = ascii_run(&bytes[at..at + need]);
                chars += run;
                at += run;
                if chars < char_offset {
                    at += text
                        .get(at..)
                        .and_then(|rest| rest.chars().next())
                        .map_or(1, char::len_utf8);
                    chars += 1;
                }
            }
            at
        };
        let mut next = own_end;
        for (a, b) in self.lit.find_iter(&self.symbols) {
            if a >= own {
                break;
            }
            let range = (to_byte(a), to_byte(b));
            next = next.max(range.1);
            self.found.push_back(range);
        }
        self.next = next;
        true
    }
}

impl Iterator for FoldedMatches<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        loop {
            if let Some(m) = self.found.pop_front() {
                return Some(m);
            }
            if !self.fill() {
                return None;
            }
        }
    }
}

/// Length of the ASCII prefix of `b`, eight bytes at a time.
#[inline]
pub(super) fn ascii_run(b: &[u8]) -> usize {
    let mut words = b.chunks_exact(8);
    let mut n = 0;
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0x80; 8]));
        let high = w & 0x8080_8080_8080_8080;
        if high != 0 {
            return n + high.trailing_zeros() as usize / 8;
        }
        n += 8;
    }
    n + words
        .remainder()
        .iter()
        .take_while(|c| c.is_ascii())
        .count()
}
