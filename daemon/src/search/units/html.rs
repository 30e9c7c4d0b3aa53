//! HTML's units: the section of a heading element a position is in, the
//! headings it is within, and a heading's words as a reader sees them.

use super::MAX_WITHIN;
use crate::search::markup;

/// Bytes of an HTML page read back from a section's heading for the
/// headings around it, at most: over `std`'s rustdoc pages a unit took 24
/// µs on average when this scan went as far back as the heading's own (256
/// KiB), 15-16 µs with 64 KiB, 6 µs before units named any.
pub(super) const MAX_WITHIN_BYTES: usize = 64 << 10;

/// Bytes of an HTML page read back from a match for its heading, and past it
/// for the end of its section, at most: a section that starts or goes on
/// farther is not named.
pub(super) const MAX_HTML_SECTION_BYTES: usize = 256 << 10;

/// The section of an HTML page around byte `at`: that of the last heading
/// element (`<h1>` to `<h6>`, closed) that opens before it, to the next
/// heading of the same or a higher level ([`markup::html_headings`] from
/// there; trailing white space left out), named by the heading's words
/// (tags left out, character references read). The heading is looked for
/// backwards, by its opening tag alone: one inside a comment or a script
/// counts.
pub(super) fn html_section_at(
    text: &str,
    at: usize,
) -> Option<(String, usize, usize, Vec<String>)> {
    let b = text.as_bytes();
    let from = at.saturating_sub(MAX_HTML_SECTION_BYTES);
    let opens_heading = |p: usize| {
        matches!(b.get(p + 1), Some(b'h' | b'H'))
            && matches!(b.get(p + 2), Some(b'1'..=b'6'))
            && b.get(p + 3)
                .is_some_and(|&c| c.is_ascii_whitespace() || c == b'>' || c == b'/')
    };
    let start = from
        + memchr::memrchr_iter(b'<', &b[from..(at + 1).min(b.len())])
            .find(|&p| opens_heading(from + p))?;
    let cut = char_boundary_from(text, at + MAX_HTML_SECTION_BYTES);
    let mut headings = markup::html_headings(&text[start..cut]);
    let first = headings.next().filter(|h| h.element.start == 0)?;
    let end = match headings.find(|h| h.level <= first.level) {
        Some(next) => start + next.element.start,
        None if cut < text.len() => return None, // longer than the scan: its end is not known
        None => cut,
    };
    let header_end = start + first.element.end;
    let end = text[..end].trim_end().len().max(header_end);
    // The headings around it: going back, each of a higher level than the
    // last one taken, at most `MAX_WITHIN_BYTES` back (pages hold a `<`
    // every few bytes, and each is looked at).
    let mut within = Vec::new();
    let mut level = first.level;
    let above = start.saturating_sub(MAX_WITHIN_BYTES).max(from);
    for p in memchr::memrchr_iter(b'<', &b[above..start]).map(|p| above + p) {
        if level == 1 || within.len() == MAX_WITHIN {
            break;
        }
        if !opens_heading(p) || b[p + 2] - b'0' >= level {
            continue;
        }
        let cut = char_boundary_from(text, p + markup::MAX_HEADING_BYTES);
        if let Some(h) = markup::html_headings(&text[p..cut])
            .next()
            .filter(|h| h.element.start == 0)
        {
            within.push(heading_text(&text[p..p + h.element.end]));
            level = h.level;
        }
    }
    within.reverse();
    Some((heading_text(&text[start..header_end]), start, end, within))
}

/// The first char boundary of `text` at or after byte `at` (its end, past it).
/// (`str::ceil_char_boundary`, stable since Rust 1.91, is past the workspace's MSRV, 1.89.)
fn char_boundary_from(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The words of a heading element as a reader sees them: tags left out (a
/// `<br>`, `<div>` or `<p>` read as a space, a `<button>`'s label left out), character references read (`&amp;` is `&`; one not known stays as
/// written), white space runs as one space.
pub(super) fn heading_text(element: &str) -> String {
    let mut out = String::with_capacity(element.len());
    let mut rest = element;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            // Inline tags (`<a>`, `<code>`) join what they hold to what is
            // around it (`push</a>(` reads `push(`); a line break does not.
            let end = rest.find('>').map_or(rest.len(), |i| i + 1);
            let name = rest[1..end].trim_start_matches('/').as_bytes();
            let name = &name[..name
                .iter()
                .position(|c| !c.is_ascii_alphanumeric())
                .unwrap_or(name.len())];
            if [&b"br"[..], b"div", b"p"]
                .iter()
                .any(|t| name.eq_ignore_ascii_case(t))
            {
                out.push(' ');
            }
            let opens_button = name.eq_ignore_ascii_case(b"button") && !rest[1..].starts_with('/');
            rest = &rest[end..];
            if opens_button {
                // A control's label is not the heading's (rustdoc's "Copy
                // item path"): left out up to the button's end.
                let close = rest
                    .as_bytes()
                    .windows(8)
                    .position(|w| w.eq_ignore_ascii_case(b"</button"));
                rest = close.map_or("", |i| &rest[i..]);
            }
        } else if c == '&'
            // Bytes, not chars: the 12th byte may fall inside a char.
            && let Some(semi) = rest.as_bytes()[..rest.len().min(12)]
                .iter()
                .position(|&b| b == b';')
            && let Some(ch) = character_reference(&rest[1..semi])
        {
            out.push(ch);
            rest = &rest[semi + 1..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The character a reference names (`amp`, `lt`, `#60`, `#x3C`...): the
/// ones markup escapes, and any number.
pub(super) fn character_reference(name: &str) -> Option<char> {
    let number = |digits: &str, radix| {
        u32::from_str_radix(digits, radix)
            .ok()
            .and_then(char::from_u32)
    };
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => match name.strip_prefix('#')? {
            hex if hex.starts_with(['x', 'X']) => number(&hex[1..], 16),
            dec => number(dec, 10),
        },
    }
}
