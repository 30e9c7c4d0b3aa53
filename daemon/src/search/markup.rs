//! HTML markup as the BM25 index reads it: as spaces. What a reader of a page
//! sees is indexed; its tags, comments, scripts, styles and character
//! references are not (rustdoc's pages are three quarters markup by their
//! word count, and words like `class`, `href` and `span` drowned what they
//! say). The masked text keeps every byte and character where it was, so
//! the offsets found in it are the original text's.

use crate::search::units::{Definition, sections_of};

/// Bytes of a text's start that decide whether it is an HTML page, at most.
const SNIFF_BYTES: usize = 1024;

/// Names of a character reference (`&amp;`, `&#x3C;`), at most this long.
const MAX_REFERENCE: usize = 32;

/// Whether `text` is an HTML page: after an optional byte-order mark, white
/// space, comments and an XML declaration, within its first 1 KiB, it
/// opens with `<!doctype html` or `<html` (ASCII case ignored). Decided by
/// the text alone, since one index entry serves a text whatever file name
/// each session loaded it from; a fragment without either is read as text.
pub fn is_html(text: &str) -> bool {
    let b = text.as_bytes();
    let b = &b[..b.len().min(SNIFF_BYTES)];
    let mut i = if b.starts_with("\u{feff}".as_bytes()) {
        3
    } else {
        0
    };
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            match find(rest, 4, b"-->") {
                Some(end) => i += end + 3,
                None => return false,
            }
        } else if rest.starts_with(b"<?") {
            match find(rest, 2, b"?>") {
                Some(end) => i += end + 2,
                None => return false,
            }
        } else {
            return opens_with(rest, b"<!doctype html") || opens_with(rest, b"<html");
        }
    }
}

/// `rest` starts with `name` (ASCII case ignored), followed by a byte that
/// ends a tag name, or by nothing.
fn opens_with(rest: &[u8], name: &[u8]) -> bool {
    rest.len() >= name.len()
        && rest[..name.len()].eq_ignore_ascii_case(name)
        && rest
            .get(name.len())
            .is_none_or(|&c| c.is_ascii_whitespace() || c == b'>' || c == b'/')
}

/// `passage` into `out` with every ASCII byte of markup replaced by a
/// space: tags (from a `<` followed by a letter, `/`, `!` or `?` to the
/// first `>` outside a quoted attribute value), comments, the contents of
/// `script` and `style` elements, and character references (`&amp;`,
/// `&#60;`, `&#x3C;`). Bytes outside ASCII stay, so the result is valid
/// UTF-8 with every character at its byte and character offset. A passage
/// is read on its own (the index and the search both mask one passage at a
/// time): one that opens inside a tag, whose first `>` comes before any
/// `<`, is read as markup up to that `>`; one that opens inside a script is
/// read as text until its closing tag.
pub fn mask_into(passage: &str, out: &mut String) {
    let mut m = std::mem::take(out).into_bytes();
    m.clear();
    m.extend_from_slice(passage.as_bytes());
    for_each_markup(passage.as_bytes(), |from, to| blank(&mut m, from, to));
    // Only ASCII bytes were replaced, by ASCII: still UTF-8.
    *out = String::from_utf8(m).expect("masking replaces only ASCII bytes");
}

/// `passage` into `out` as the index reads it: what [`mask_into`] leaves,
/// with each stretch of markup written as one space instead of a space a
/// byte (the characters outside ASCII it holds kept, as masking keeps
/// them). Its words, and their order, are those of the masked passage:
/// a run of spaces separates words as one space does. The index keeps no
/// offsets, so it need not read the markup's room; on rustdoc's pages,
/// three quarters markup, the index's copy and its tokenizer's scan of
/// each passage are a quarter as long.
pub fn compact_into(passage: &str, out: &mut String) {
    out.clear();
    let mut last = 0;
    for_each_markup(passage.as_bytes(), |from, to| {
        out.push_str(&passage[last..from]);
        if !out.ends_with(' ') {
            out.push(' ');
        }
        let markup = &passage[from..to];
        if !markup.is_ascii() {
            for run in markup
                .split(|c: char| c.is_ascii())
                .filter(|r| !r.is_empty())
            {
                out.push_str(run);
                out.push(' ');
            }
        }
        last = to;
    });
    out.push_str(&passage[last..]);
}

/// Calls `markup(from, to)` for each stretch of `b` that [`mask_into`]
/// blanks, in order: they do not overlap, and each starts and ends at an
/// ASCII byte or at an end of `b` (so at a char boundary).
fn for_each_markup(b: &[u8], mut markup: impl FnMut(usize, usize)) {
    let mut i = 0;
    if let Some(gt) = memchr::memchr(b'>', b)
        && memchr::memchr(b'<', &b[..gt]).is_none()
    {
        markup(0, gt + 1);
        i = gt + 1;
    }
    while let Some(at) = memchr::memchr2(b'<', b'&', &b[i..]) {
        let at = i + at;
        let end = if b[at] == b'&' {
            reference_end(b, at)
        } else {
            markup_end(b, at)
        };
        i = match end {
            Some(end) => {
                markup(at, end);
                end
            }
            None => at + 1,
        };
    }
}

/// `passage` masked as [`mask_into`] does.
pub fn mask(passage: &str) -> String {
    let mut out = String::new();
    mask_into(passage, &mut out);
    out
}

/// A passage, or any piece of one's text, as the index reads it: masked
/// when the text it comes from is an HTML page ([`is_html`] of the text).
pub fn as_indexed(html: bool, piece: &str) -> std::borrow::Cow<'_, str> {
    if html {
        std::borrow::Cow::Owned(mask(piece))
    } else {
        std::borrow::Cow::Borrowed(piece)
    }
}

/// A heading element's closing tag is looked for this far past its opening
/// tag, at most: a heading without one within it (broken markup) does not
/// start a section.
pub(crate) const MAX_HEADING_BYTES: usize = 4096;

/// The sections of an HTML page as the passage index sees them: each
/// heading element ([`html_headings`]) is a section ([`sections_of`]); its
/// header is the element, tags included (mask it to read its words).
pub fn html_outline(text: &str) -> Vec<Definition> {
    let headings = html_headings(text).map(|h| (usize::from(h.level), h.element.start, h.element));
    sections_of(headings, text.len())
}

/// A heading element of an HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// 1 for `<h1>`, ... 6 for `<h6>`.
    pub level: u8,
    /// Bytes of the element, from its opening tag's `<` to its closing
    /// tag's `>`.
    pub element: std::ops::Range<usize>,
}

/// The heading elements of an HTML page, in order: `<h1>` to `<h6>`
/// (ASCII case ignored) outside comments, scripts and styles, each closed
/// within [`MAX_HEADING_BYTES`] of its opening tag (one that is not is
/// passed over). One pass over the markup, as far as it is read.
pub fn html_headings(text: &str) -> impl Iterator<Item = Heading> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while let Some(p) = memchr::memchr(b'<', &b[i..]) {
            let at = i + p;
            let rest = &b[at..];
            if rest.starts_with(b"<!--") {
                i = find(rest, 4, b"-->").map_or(b.len(), |e| at + e + 3);
                continue;
            }
            // Only headings, scripts and styles matter here: any other tag
            // is passed over without reading it to its end (a `<h1` inside
            // an attribute value of one would be read as a heading).
            if !rest
                .get(1)
                .is_some_and(|c| matches!(c, b'h' | b'H' | b's' | b'S'))
            {
                i = at + 1;
                continue;
            }
            let end = tag_end(b, at + 1);
            let name_end = rest[1..]
                .iter()
                .position(|c| !c.is_ascii_alphanumeric())
                .map_or(rest.len(), |p| p + 1);
            let name = &rest[1..name_end];
            let self_closing = end >= 2 && b[end - 2] == b'/';
            i = end;
            if !self_closing
                && let Some(raw) = [&b"script"[..], b"style"]
                    .into_iter()
                    .find(|raw| name.eq_ignore_ascii_case(raw))
            {
                i = find_closing(b, end, raw).unwrap_or(b.len());
                continue;
            }
            let level = match name {
                [b'h' | b'H', d @ b'1'..=b'6'] => d - b'0',
                _ => continue,
            };
            let limit = (end + MAX_HEADING_BYTES).min(b.len());
            let Some(close) = find_closing(&b[..limit], end, name) else {
                continue;
            };
            i = tag_end(&b[..limit], close + 2);
            return Some(Heading {
                level,
                element: at..i,
            });
        }
        i = b.len();
        None
    })
}

/// Where the markup that starts at the `<` at `at` ends, if any starts
/// there (a `<` of the text, "a < b", starts none): after a comment, or
/// after a tag, or for a `script` or `style` element, at its closing tag.
fn markup_end(b: &[u8], at: usize) -> Option<usize> {
    let rest = &b[at..];
    if rest.starts_with(b"<!--") {
        return Some(find(rest, 4, b"-->").map_or(b.len(), |e| at + e + 3));
    }
    let opens_tag = rest
        .get(1)
        .is_some_and(|&c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'));
    if !opens_tag {
        return None;
    }
    let end = tag_end(b, at + 1);
    // Raw text elements: their contents are script or style, never text.
    let name_end = rest[1..]
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .map_or(rest.len(), |p| p + 1);
    let name = &rest[1..name_end];
    let self_closing = end >= 2 && b[end - 2] == b'/' && b[end - 1] == b'>';
    for raw in [&b"script"[..], b"style"] {
        if name.eq_ignore_ascii_case(raw) && !self_closing {
            return Some(find_closing(b, end, raw).unwrap_or(b.len()));
        }
    }
    Some(end)
}

/// Where the tag whose name starts at `from` ends: after its first `>`
/// outside a quoted attribute value (`title="a > b"`), or the passage's end.
fn tag_end(b: &[u8], from: usize) -> usize {
    // Byte by byte up to each `=`: a tag's name and attribute names are a
    // few bytes, shorter than a vector search pays for (with `memchr2`
    // there, the markup's scan took as many instructions as the
    // tokenizer's).
    let mut i = from;
    while let Some(&c) = b.get(i) {
        i += 1;
        match c {
            b'>' => return i,
            b'=' => {
                while b.get(i).is_some_and(u8::is_ascii_whitespace) {
                    i += 1;
                }
                if let Some(&q @ (b'"' | b'\'')) = b.get(i) {
                    match memchr::memchr(q, &b[i + 1..]) {
                        Some(p) => i += p + 2,
                        None => return b.len(),
                    }
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// Where `</name` (ASCII case ignored) next starts at or after `from`.
fn find_closing(b: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let mut i = from;
    while let Some(p) = memchr::memchr(b'<', &b[i..]) {
        let at = i + p;
        let rest = &b[at..];
        if rest.len() > name.len() + 1
            && rest[1] == b'/'
            && rest[2..2 + name.len()].eq_ignore_ascii_case(name)
        {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// The end (after its `;`) of the character reference that starts at the
/// `&` at `at`, if one does: `&name;`, `&#digits;` or `&#xhex;`.
fn reference_end(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    let numeric = b.get(i) == Some(&b'#');
    if numeric {
        i += 1;
        if matches!(b.get(i), Some(b'x' | b'X')) {
            i += 1;
        }
    }
    let start = i;
    while i < b.len() && i - start <= MAX_REFERENCE && b[i].is_ascii_alphanumeric() {
        i += 1;
    }
    (i > start && i - start <= MAX_REFERENCE && b.get(i) == Some(&b';')).then_some(i + 1)
}

/// Where `needle` first starts in `hay` at or after `from`.
fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|p| from + p)
}

/// Replaces the ASCII bytes of `m[from..to]` with spaces.
fn blank(m: &mut [u8], from: usize, to: usize) {
    for c in &mut m[from..to] {
        // Branch-free, so the loop vectorizes.
        *c = if c.is_ascii() { b' ' } else { *c };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The words left once masked.
    fn words(html: &str) -> Vec<String> {
        mask(html)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The outline of `page`: (the header's words, the parent's words, the section's
    /// words).
    fn sections(page: &str) -> Vec<(String, Option<String>, String)> {
        let defs = html_outline(page);
        let said = |r: std::ops::Range<usize>| words(&page[r]).join(" ");
        defs.iter()
            .map(|d| {
                assert!(d.start == d.header.start && d.header.end <= d.end, "{d:?}");
                (
                    said(d.header.clone()),
                    d.parent.map(|p| said(defs[p].header.clone())),
                    said(d.start..d.end),
                )
            })
            .collect()
    }

    #[test]
    fn html_outlines_nest_headings() {
        let page = "<!DOCTYPE html><html><head><title>Vec</title>\
            <script>var s = '<h2>not a heading</h2>';</script></head><body>\
            <!-- <h1>commented out</h1> -->\
            <H1 class=\"title\">Struct <a href=\"#\">Vec</a></H1><p>A growable array.</p>\
            <h2 id=\"impl\">Implementations</h2><h3>impl Vec</h3>\
            <h4 class=\"code-header\">pub fn <a>push</a>(&amp;mut self)</h4><p>Appends.</p>\
            <h4>pub fn pop</h4><p>Removes.</p><h2>Traits</h2><p>Clone.</p></body></html>";
        let s = |x: &str| x.to_owned();
        assert_eq!(
            sections(page),
            [
                (
                    s("Struct Vec"),
                    None,
                    s(
                        "Struct Vec A growable array Implementations impl Vec pub fn push mut self Appends pub fn pop Removes Traits Clone"
                    )
                ),
                (
                    s("Implementations"),
                    Some(s("Struct Vec")),
                    s("Implementations impl Vec pub fn push mut self Appends pub fn pop Removes")
                ),
                (
                    s("impl Vec"),
                    Some(s("Implementations")),
                    s("impl Vec pub fn push mut self Appends pub fn pop Removes")
                ),
                (
                    s("pub fn push mut self"),
                    Some(s("impl Vec")),
                    s("pub fn push mut self Appends")
                ),
                (
                    s("pub fn pop"),
                    Some(s("impl Vec")),
                    s("pub fn pop Removes")
                ),
                (s("Traits"), Some(s("Struct Vec")), s("Traits Clone")),
            ]
        );
        // A heading that is never closed (within 4 KiB), an <h7>, a <header>.
        let broken = format!(
            "<html><h2>Open {}<h7>x</h7><header>y</header>",
            "word ".repeat(1000)
        );
        assert!(html_outline(&broken).is_empty());
    }

    #[test]
    fn pages_are_told_by_their_opening() {
        for page in [
            "<!DOCTYPE html><html lang=\"en\">",
            "\u{feff}  <!doctype HTML>\n<html>",
            "<html>",
            "<HTML lang=en>",
            "<!-- generated -->\n<!DOCTYPE html>",
            "<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">",
        ] {
            assert!(is_html(page), "{page:?} is a page");
        }
        for text in [
            "",
            "plain text about <html> tags",
            "<htmlx>",
            "<div>a fragment</div>",
            "<!-- never closed <!DOCTYPE html>",
            "# Markdown\n<html>",
        ] {
            assert!(!is_html(text), "{text:?} is not a page");
        }
        let late = format!("{}<!DOCTYPE html>", " ".repeat(SNIFF_BYTES));
        assert!(!is_html(&late), "only the first KiB decides");
    }

    #[test]
    fn tags_comments_scripts_styles_and_references_are_masked() {
        let page = "<!DOCTYPE html><html><head><title>Vec in std</title>\
            <style>.class { color: red }</style>\
            <script type=\"text/javascript\">var hidden = 1;</script></head>\
            <body><!-- a comment --><a class=\"struct\" href=\"struct.Vec.html\" \
            title=\"a > b\">Vec</a>&lt;T&gt; grows &amp; shrinks&#160;&#x3C;fast</body></html>";
        assert_eq!(
            words(page),
            ["Vec", "in", "std", "Vec", "T", "grows", "shrinks", "fast"]
        );
    }

    #[test]
    fn text_that_only_looks_like_markup_stays() {
        assert_eq!(words("a < b and c > d"), ["a", "b", "and", "c", "d"]);
        assert_eq!(
            words("x<3 & y&z; &toolongname1234567890123456789012345;"),
            ["x", "3", "y", "toolongname1234567890123456789012345"]
        );
        assert_eq!(words("AT&T rocks"), ["AT", "T", "rocks"]);
    }

    #[test]
    fn a_passage_may_open_or_end_inside_markup() {
        // Opening inside a tag (the cut fell in its attributes).
        assert_eq!(
            words("s=\"struct\" href=\"x.html\">Vec</a> grows"),
            ["Vec", "grows"]
        );
        // A `>` of the text after a `<`: not a tag's tail.
        assert_eq!(words("a <b>bold</b> c > d"), ["a", "bold", "c", "d"]);
        // Ending inside a tag, a comment, a script, a quoted value.
        assert_eq!(words("text <a href=\"x"), ["text"]);
        assert_eq!(words("text <!-- open"), ["text"]);
        assert_eq!(words("text <script>var x"), ["text"]);
        assert_eq!(words("text <a title='open"), ["text"]);
        // Self-closing and upper-case raw elements.
        assert_eq!(
            words("<SCRIPT src=x.js/>after <STYLE>p{}</Style>shown"),
            ["after", "shown"]
        );
    }

    #[test]
    fn characters_outside_ascii_stay_where_they_are() {
        let page = "<p title=\"été\">日本語 — ünïcode</p>";
        let masked = mask(page);
        assert_eq!(masked.len(), page.len());
        assert_eq!(masked.chars().count(), page.chars().count());
        assert!(masked.contains("日本語 — ünïcode"));
        // So do the attribute's own letters outside ASCII (the price of
        // keeping every offset; tags seldom hold any).
        assert_eq!(words(page), ["é", "é", "日本語", "ünïcode"]);
    }

    /// Pages made of heading tags (some never closed), scripts, comments,
    /// other tags and text.
    fn page_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<h1>".to_owned()),
            Just("</h1>".to_owned()),
            Just("<H2 class=\"a>b\">".to_owned()),
            Just("</h2>".to_owned()),
            Just("<h3>".to_owned()),
            Just("</h3 >".to_owned()),
            Just("<script>".to_owned()),
            Just("</script>".to_owned()),
            Just("<!--".to_owned()),
            Just("-->".to_owned()),
            Just("<p>".to_owned()),
            Just("<hr/>".to_owned()),
            "[a-z é<>\"=\n]{0,12}",
        ];
        prop::collection::vec(piece, 0..60)
            .prop_map(|pieces| format!("<!DOCTYPE html>{}", pieces.concat()))
    }

    #[test]
    fn the_index_reads_a_page_without_its_markup() {
        let page = "<div class=\"docblock\"><p>Appends an <code>element</code> to the back&nbsp;of a collection.</p>\
                    <script>var x = \"hidden\";</script><!-- note --><a title=\"caf\u{e9}\">Vec</a></div>";
        let mut compact = String::new();
        compact_into(page, &mut compact);
        assert_eq!(
            compact.split_whitespace().collect::<Vec<_>>(),
            [
                "Appends",
                "an",
                "element",
                "to",
                "the",
                "back",
                "of",
                "a",
                "collection.",
                "\u{e9}",
                "Vec"
            ]
        );
        assert!(compact.len() < page.len() / 2, "{compact:?}");
        // The words are those the search finds in the masked page.
        assert_eq!(words(&compact), words(page));
        // Text that is not markup is read as it is, whatever `out` held.
        let mut out = String::from("left over");
        compact_into("a < b && c", &mut out);
        assert_eq!(out, "a < b && c");
    }

    proptest! {
        /// Every section of an outline starts at its header, holds it and
        /// lies in the page, after the header before it, inside its parent.
        #[test]
        fn html_outlines_nest(page in page_text()) {
            let defs = html_outline(&page);
            for (k, d) in defs.iter().enumerate() {
                prop_assert!(d.start == d.header.start && d.header.start < d.header.end);
                prop_assert!(d.header.end <= d.end && d.end <= page.len());
                prop_assert!(page.is_char_boundary(d.header.end));
                if k > 0 {
                    prop_assert!(defs[k - 1].header.end <= d.start);
                }
                if let Some(p) = d.parent {
                    prop_assert!(p < k);
                    prop_assert!(defs[p].start < d.start && d.end <= defs[p].end);
                }
            }
        }

        /// Masking keeps every character's byte and character offset, keeps
        /// every character outside ASCII, and only ever writes spaces.
        #[test]
        fn masking_keeps_the_layout(text in "[<>/!?&#;=\"'a-zA-Z0-9 \n\té日😀-]{0,400}") {
            let masked = mask(&text);
            prop_assert_eq!(masked.len(), text.len());
            for ((i, a), (j, b)) in text.char_indices().zip(masked.char_indices()) {
                prop_assert_eq!(i, j);
                prop_assert!(a == b || (a.is_ascii() && b == ' '), "{:?} became {:?}", a, b);
            }
        }

        /// The index's compact reading of a passage has the words of its
        /// masked reading, in the same order, and is never longer.
        #[test]
        fn compact_reading_has_the_masked_words(text in "[<>/!?&#;=\"'a-zA-Z0-9_ \n\té日😀-]{0,400}") {
            let mut compact = String::new();
            compact_into(&text, &mut compact);
            prop_assert!(compact.len() <= text.len() + 1, "{:?} -> {:?}", text, compact);
            let opts = crate::search::analyzer::AnalyzerOptions::DEFAULT;
            let terms = |t: &str| -> Vec<String> {
                crate::search::analyzer::analyze(t, opts).into_iter().map(|t| t.term).collect()
            };
            prop_assert_eq!(terms(&compact), terms(&mask(&text)));
        }

        /// Text without `<`, `>` or `&` is left as it is.
        #[test]
        fn plain_text_is_untouched(text in "[a-zA-Z0-9 \n\t.,;:'\"=/!?é日😀-]{0,400}") {
            prop_assert_eq!(mask(&text), text);
        }
    }
}
