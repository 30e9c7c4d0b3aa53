//! Searching a text window by window with the matches of one search: which
//! regexes allow it (`Pieces`) and the walk over the windows (`Windows`).

/// Bytes of a text searched between two questions to the caller of
/// [`Scanner::for_each_match`](super::Scanner::for_each_match) (see [`Pieces`]): a quarter of a MiB is a
/// tenth of a millisecond at the regex crate's usual speed (a search call
/// per window costs well under a microsecond) and a few seconds at its
/// slowest (0.1 MB/s: 10 000 alternated words with `\b` on non-ASCII text).
pub const WINDOW_BYTES: usize = 256 << 10;

/// The longest match a regex may have for its windows to overlap by it: a
/// window then reads at most a sixteenth of its bytes twice.
pub const MAX_OVERLAP_BYTES: usize = WINDOW_BYTES / 16;

/// How a regex's matches can be found window by window, exactly as one
/// search of the whole text finds them (leftmost-first, each search going on
/// from the end of the last match). Only for patterns whose every match is
/// at least one byte long, so that the searches never meet an empty match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pieces {
    /// No match is longer than this many bytes: a window's haystack goes on
    /// that far past its end (to a char's end), so that every match that
    /// starts in the window, and the chars its look-arounds see, are in it.
    Bounded(usize),
    /// No match holds a line break: a window ends just after one, and no
    /// match that starts in it can reach past it.
    Lines,
}

/// The [`Pieces`] of a pattern as the regex crate parses it (Unicode on,
/// case folded or not, as the regex is built), if any.
pub(crate) fn pieces_of(pattern: &str, case_insensitive: bool) -> Option<Pieces> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .unicode(true)
        .build()
        .parse(pattern)
        .ok()?;
    let props = hir.properties();
    if props.minimum_len().is_none_or(|n| n == 0) {
        return None;
    }
    match props.maximum_len() {
        Some(n) if n <= MAX_OVERLAP_BYTES => Some(Pieces::Bounded(n)),
        _ => (!may_consume_newline(&hir)).then_some(Pieces::Lines),
    }
}

/// Whether some match of `hir` can hold a `\n` (look-arounds consume
/// nothing). Recursion is bounded by the parser's nesting limit.
fn may_consume_newline(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => lit.0.contains(&b'\n'),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= '\n' && '\n' <= r.end()),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        HirKind::Repetition(rep) => rep.max != Some(0) && may_consume_newline(&rep.sub),
        HirKind::Capture(cap) => may_consume_newline(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(may_consume_newline),
    }
}

/// Why [`Scanner::for_each_match`](super::Scanner::for_each_match) left a text before its end: its caller
/// said to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A text cut into windows for a regex whose matches allow it.
pub(crate) struct Windows<'t> {
    pub(crate) text: &'t str,
    pub(crate) pieces: Pieces,
    pub(crate) window: usize,
}

impl Windows<'_> {
    /// Searches window after window with `find_at(end, at)`: the regex's
    /// first match in `text[..end]` at or after `at` (the search sees the
    /// text before `at`, as a whole-text search going on from there does).
    /// A window takes the matches that start in it; the next one starts at
    /// its end, or at the end of its last match when that reaches past it.
    pub(crate) fn search(
        &self,
        find_at: impl Fn(usize, usize) -> Option<(usize, usize)>,
        mut stop: impl FnMut(usize) -> bool,
        mut each: impl FnMut(usize, usize),
    ) -> Result<(), Stopped> {
        let text = self.text;
        let len = text.len();
        let mut pos = 0;
        while pos < len {
            let from = pos.saturating_add(self.window.max(1)).min(len);
            // Where the window ends, and where its haystack does.
            let (end, reach) = match self.pieces {
                Pieces::Bounded(longest) => {
                    let end = char_boundary_at_or_after(text, from);
                    // A match that starts before `end` ends before `end +
                    // longest`, so the char after it ends by the boundary
                    // at or after that.
                    let reach = end.saturating_add(longest).min(len);
                    (end, char_boundary_at_or_after(text, reach))
                }
                Pieces::Lines => {
                    let end = memchr::memchr(b'\n', &text.as_bytes()[from..])
                        .map_or(len, |i| from + i + 1);
                    (end, end)
                }
            };
            let mut at = pos;
            while let Some((s, e)) = find_at(reach, at) {
                if s >= end {
                    break;
                }
                // The ASCII program on a text wrongly said to be ASCII may
                // cut a char; such a match is left out, as `Matches` does.
                if text.is_char_boundary(s) && text.is_char_boundary(e) {
                    each(s, e);
                }
                // Every match is at least a byte long (`Pieces`).
                at = e.max(s + 1);
            }
            let next = end.max(at);
            if stop(next - pos) && next < len {
                return Err(Stopped);
            }
            pos = next;
        }
        Ok(())
    }
}

/// The first char boundary of `text` at or after byte `i` (its length at
/// most).
fn char_boundary_at_or_after(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}
