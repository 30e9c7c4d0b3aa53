//! Markdown's units: its headings (ATX and Setext, outside fenced code),
//! the section a position is in, and the outline the passage index cuts at.

use super::{Definition, MAX_SCAN_LINES, MAX_WITHIN, line_head, lines_from, sections_of};

/// Bytes a Markdown text is read through to tell headings from code blocks.
pub(super) const MAX_MARKDOWN_SCAN: usize = 4 << 20;

/// The sections of a Markdown text as the passage index sees them: each
/// heading ([`md_headings`]) is a section ([`sections_of`]). One pass over
/// the lines.
pub fn markdown_outline(text: &str) -> Vec<Definition> {
    let headings = md_headings(text).map(|h| {
        let line = &text[h.start..h.header_end];
        let header_start = h.start + (line.len() - line.trim_start().len());
        (h.level, h.start, header_start..h.header_end)
    });
    sections_of(headings, text.len())
}

/// A heading of a Markdown text.
pub(super) struct MdHeading<'t> {
    /// Where its (first) line starts.
    start: usize,
    /// 1 to 6.
    level: usize,
    /// Its text.
    title: &'t str,
    /// The end of its text's line, trailing white space left out.
    header_end: usize,
}

/// The headings of a Markdown text, in order, outside fenced code blocks:
/// ATX headings (`#` to `######` and a space), and Setext headings (a line
/// of text, indented less than four columns, that opens no list, quote or
/// table, underlined by three or more `=` (level 1) or `-` (level 2); the
/// line above is the heading, not the whole paragraph it ends). One pass.
pub(super) fn md_headings(text: &str) -> impl Iterator<Item = MdHeading<'_>> {
    let mut lines = lines_from(text, 0).peekable();
    let mut fenced = false;
    std::iter::from_fn(move || {
        while let Some((start, line)) = lines.next() {
            if is_fence(line) {
                fenced = !fenced;
                continue;
            }
            if fenced {
                continue;
            }
            let header_end = start + line.trim_end().len();
            if let Some((level, title)) = heading(line) {
                return Some(MdHeading {
                    start,
                    level,
                    title,
                    header_end,
                });
            }
            if setext_text(line)
                && let Some(level) = lines.peek().and_then(|&(_, next)| setext_level(next))
            {
                lines.next();
                return Some(MdHeading {
                    start,
                    level,
                    title: line.trim(),
                    header_end,
                });
            }
        }
        None
    })
}

/// The level of a Setext underline: `===` (1) or `---` (2), three or more,
/// indented at most three spaces, trailing white space allowed.
pub(super) fn setext_level(line: &str) -> Option<usize> {
    let t = line.trim_end();
    let rest = t.trim_start_matches(' ');
    if t.len() - rest.len() > 3 || rest.len() < 3 {
        return None;
    }
    if rest.bytes().all(|b| b == b'=') {
        Some(1)
    } else if rest.bytes().all(|b| b == b'-') {
        Some(2)
    } else {
        None
    }
}

/// Whether a line can be the text of a Setext heading: not blank, indented
/// less than four columns, not a heading or an underline itself, and not
/// the start of a list item, a quote or a table row.
pub(super) fn setext_text(line: &str) -> bool {
    line_head(line).is_some_and(|(depth, rest)| {
        depth < 4
            && heading(line).is_none()
            && setext_level(line).is_none()
            && !rest.starts_with(['>', '|'])
            && !opens_list_item(rest)
    })
}

/// Whether a line (from its first non-blank char) opens a list item: `-`,
/// `*` or `+` and a space, or digits, `.` or `)` and a space.
pub(super) fn opens_list_item(rest: &str) -> bool {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let marker = match digits {
        0 => rest.strip_prefix(['-', '*', '+']),
        _ => rest[digits..].strip_prefix(['.', ')']),
    };
    marker.is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t']))
}

/// An ATX heading's level and text.
pub(super) fn heading(line: &str) -> Option<(usize, &str)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.bytes().take_while(|&b| b == b'#').count();
    let rest = &trimmed[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    Some((level, text))
}

/// Whether `line` opens or closes a fenced code block.
pub(super) fn is_fence(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("```") || t.starts_with("~~~")
}

/// The section of a Markdown text around byte `at`: from the last heading
/// ([`md_headings`]) that starts at or before it to the next heading of the
/// same or a higher level, looked for at most [`MAX_SCAN_LINES`] lines past
/// `at` (trailing white space left out).
pub(super) fn section_at(
    text: &str,
    at: usize,
) -> Option<(&'static str, &str, usize, usize, Vec<&str>)> {
    if at > MAX_MARKDOWN_SCAN {
        return None;
    }
    let cut = memchr::memchr_iter(b'\n', &text.as_bytes()[at..])
        .nth(MAX_SCAN_LINES - 1)
        .map_or(text.len(), |i| at + i);
    let mut headings = md_headings(&text[..cut]);
    // The headings open at each point, outermost first: the last is the
    // section's own.
    let mut open: Vec<MdHeading<'_>> = Vec::new();
    let mut after = None;
    for h in headings.by_ref() {
        if h.start > at {
            after = Some(h);
            break;
        }
        while open.last().is_some_and(|o| o.level >= h.level) {
            open.pop();
        }
        open.push(h);
    }
    let h = open.pop()?;
    let within = open[open.len().saturating_sub(MAX_WITHIN)..]
        .iter()
        .map(|o| o.title)
        .collect();
    let next = after
        .into_iter()
        .chain(headings)
        .find(|n| n.level <= h.level);
    let limit = match next {
        Some(n) => n.start,
        None if cut < text.len() => return None, // longer than the scan: its end is not known
        None => text.len(),
    };
    let end = text[..limit].trim_end().len().max(h.header_end);
    Some(("section", h.title, h.start, end, within))
}
