//! The unit a match fell in: the definition of code around a position (a
//! function, method, class, impl block, ...: its header line and name, found
//! by indentation and header patterns common to the C, Python, Rust, Go,
//! JavaScript and JVM families) or the section of a Markdown or HTML
//! heading, with its byte range and line numbers, so that a client can read
//! it whole next, and the names of the units it is within. The unit type,
//! code's definitions and outline, and the line reading and section nesting
//! the others share are here; Markdown's headings and sections are in
//! `markdown.rs`, HTML's in `html.rs`.

use std::ops::Range;
use std::sync::OnceLock;

use regex::{Regex, RegexSet};

mod html;
mod markdown;

use html::html_section_at;
pub use markdown::markdown_outline;
use markdown::section_at;

/// How a text is cut into units, by the file name it was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Definitions of code, found by indentation and header lines.
    Code,
    /// Sections under `#` headings (outside fenced code blocks).
    Markdown,
    /// Sections under heading elements (`<h1>` to `<h6>`): an HTML page,
    /// told by its content ([`markup::is_html`]), never by its name.
    Html,
}

/// File name extensions read as code.
const CODE_EXTENSIONS: &[&str] = &[
    "rs", "py", "pyi", "pyw", "go", "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "java",
    "kt", "kts", "scala", "groovy", "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "hxx", "cs", "m",
    "mm", "swift", "rb", "php", "lua", "pl", "pm", "sh", "bash", "zsh", "r", "jl", "dart", "ex",
    "exs", "erl", "hs", "ml", "fs", "clj", "vue", "svelte", "zig", "nim", "v", "sol",
];

/// Lines looked at, outward from the match and forward to the unit's end:
/// a unit whose header or end is farther is not named (a call took 15 µs on
/// average with 4,000, 6 µs with 1,000, on the stdlib corpus:
/// `rlm-engine-bench units`).
const MAX_SCAN_LINES: usize = 1_000;
/// A unit's name is cut to this many chars.
const MAX_NAME_CHARS: usize = 120;

/// The syntax of a text loaded from `source` (a path, or a name given to
/// inline text), by its extension; None for prose and unknown kinds.
pub fn syntax_of(source: &str) -> Option<Syntax> {
    let name = source.rsplit(['/', '\\']).next().unwrap_or(source);
    let (_, ext) = name.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    if CODE_EXTENSIONS.contains(&ext.as_str()) {
        Some(Syntax::Code)
    } else if matches!(ext.as_str(), "md" | "markdown" | "mdx") {
        Some(Syntax::Markdown)
    } else {
        None
    }
}

/// A unit of a text, in bytes and lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `definition` or `section`.
    pub kind: &'static str,
    /// The definition's name (`read_and_pack`, `impl Display for Foo`) or
    /// the heading's text.
    pub name: String,
    /// Bytes `[start, end)` of the text: from the start of the unit's first
    /// line (its header's, or the first of the doc comment, attributes or
    /// decorators right above it) to the end of its last line (trailing
    /// white space and the newline excluded).
    pub start: usize,
    pub end: usize,
    /// Lines, 1-based, inclusive.
    pub line_start: u64,
    pub line_end: u64,
    /// The names of the units around this one, outermost first, at most
    /// [`MAX_WITHIN`] (the innermost): a method's impl block or class, a
    /// section's headings above it.
    pub within: Vec<String>,
}

/// Units around a unit named at most (the innermost kept).
pub const MAX_WITHIN: usize = 3;

/// The unit of `text` (of `syntax`) holding byte `at`, if any: the
/// innermost definition around it, or the section it is in. Its lines are
/// counted from the text's start ([`count_line`]); the engine, which reads
/// stored texts, counts them with [`unit_at_lined`] and the text's marks.
pub fn unit_at(text: &str, at: usize, syntax: Syntax) -> Option<Unit> {
    unit_at_lined(text, at, syntax, &|b| count_line(text, b))
}

/// The number (from 1) of the line of `text` that holds byte `at`: one more
/// than the newlines before it.
pub fn count_line(text: &str, at: usize) -> u64 {
    let at = at.min(text.len());
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count() as u64
}

/// [`unit_at`], with `line_of` telling the line (from 1) of a byte.
pub fn unit_at_lined(
    text: &str,
    at: usize,
    syntax: Syntax,
    line_of: &dyn Fn(usize) -> u64,
) -> Option<Unit> {
    if at > text.len() || !text.is_char_boundary(at) {
        return None;
    }
    let (kind, name, start, end, within) = match syntax {
        Syntax::Code => {
            let (kind, name, start, end) = definition_at(text, at)?;
            (
                kind,
                name.to_owned(),
                start,
                end,
                definitions_around(text, start),
            )
        }
        Syntax::Markdown => {
            let (kind, name, start, end, within) = section_at(text, at)?;
            let within = within.into_iter().map(str::to_owned).collect();
            (kind, name.to_owned(), start, end, within)
        }
        Syntax::Html => {
            let (name, start, end, within) = html_section_at(text, at)?;
            ("section", name, start, end, within)
        }
    };
    let mut unit = unit_spanning(kind, &name, start, end, line_of);
    unit.within = within.iter().map(|n| cut_name(n)).collect();
    Some(unit)
}

/// The names of the definitions around the one whose first line (its
/// header's, or its preamble's) starts at `start`, outermost first, at most
/// [`MAX_WITHIN`]: going back, each header line indented less than every
/// line met since, until a line at the left margin or [`MAX_SCAN_LINES`].
fn definitions_around(text: &str, start: usize) -> Vec<String> {
    let Some((mut limit, _)) = line_head(&text[start..line_end_of(text, start)]) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for (n, (at, line)) in lines_back(text, start).enumerate() {
        if n >= MAX_SCAN_LINES || limit == 0 || names.len() == MAX_WITHIN {
            break;
        }
        if at == start {
            continue;
        }
        let Some((depth, rest)) = line_head(line) else {
            continue;
        };
        if depth >= limit || continues_header(rest) || is_preamble(rest) {
            continue;
        }
        if let Some(name) = header_name(rest) {
            names.push(name.to_owned());
        }
        limit = depth;
    }
    names.reverse();
    names
}

/// The unit `kind` named `name` over bytes `[start, end)` of its text, with
/// its lines (`line_of`).
fn unit_spanning(
    kind: &'static str,
    name: &str,
    start: usize,
    end: usize,
    line_of: &dyn Fn(usize) -> u64,
) -> Unit {
    let line_start = line_of(start);
    let line_end = line_of(end);
    Unit {
        kind,
        name: cut_name(name),
        start,
        end,
        line_start,
        line_end,
        within: Vec::new(),
    }
}

fn cut_name(name: &str) -> String {
    let name = name.trim();
    match name.char_indices().nth(MAX_NAME_CHARS) {
        Some((i, _)) => format!("{}…", &name[..i]),
        None => name.to_owned(),
    }
}

/// The byte where the line holding byte `at` starts.
fn line_start_of(text: &str, at: usize) -> usize {
    memchr::memrchr(b'\n', &text.as_bytes()[..at]).map_or(0, |i| i + 1)
}

/// The byte where the line starting at `start` ends (its newline excluded).
fn line_end_of(text: &str, start: usize) -> usize {
    memchr::memchr(b'\n', &text.as_bytes()[start..]).map_or(text.len(), |i| start + i)
}

/// A line's depth (its leading white space, a tab counting as four columns)
/// and what follows it; None for a blank line. Byte by byte (a `trim` of
/// every line passed was most of the time a unit took).
fn line_head(line: &str) -> Option<(usize, &str)> {
    let mut depth = 0;
    for (i, b) in line.bytes().enumerate() {
        match b {
            b' ' => depth += 1,
            b'\t' => depth += 4,
            b'\r' | b'\x0b' | b'\x0c' => {}
            _ => return Some((depth, &line[i..])),
        }
    }
    None
}

/// The lines of `text` going back from the line starting at `from` (that
/// line first): (start byte, line). One backward scan for newlines.
fn lines_back(text: &str, from: usize) -> impl Iterator<Item = (usize, &str)> {
    let mut newlines = memchr::memrchr_iter(b'\n', &text.as_bytes()[..from]).peekable();
    let mut line = Some((from, line_end_of(text, from)));
    std::iter::from_fn(move || {
        let (start, end) = line?;
        line = (start > 0).then(|| {
            newlines.next(); // the newline at `start - 1`, ending the line before
            let before = newlines.peek().map_or(0, |&i| i + 1);
            (before, start - 1)
        });
        Some((start, &text[start..end]))
    })
}

/// The lines of `text` from the one starting at `from`: (start byte, line).
/// One forward scan for newlines.
fn lines_from(text: &str, from: usize) -> impl Iterator<Item = (usize, &str)> {
    let from = from.min(text.len());
    let mut newlines = memchr::memchr_iter(b'\n', &text.as_bytes()[from..]);
    let mut next = Some(from);
    std::iter::from_fn(move || {
        let start = next?;
        let end = newlines.next().map_or(text.len(), |i| from + i);
        next = (end < text.len()).then_some(end + 1);
        Some((start, &text[start..end]))
    })
}

/// The index among the header patterns (`with_header_patterns`) of typed
/// functions and methods.
const TYPED_FUNCTION: usize = 2;

/// The header patterns one by one, each with a `name` group, and as one
/// set, which tells which of them a line matches in one pass without
/// captures (the passage index reads every line of every text: `outline`):
/// definitions by keyword (most languages), typed functions and methods (C,
/// C++, Java, C#), methods and arrow functions (JavaScript, TypeScript).
type HeaderPatterns = (Vec<Regex>, RegexSet);

/// Calls `f` with this thread's copy of the header patterns.
///
/// The patterns are compiled once; each thread searches with a clone, which
/// shares the compiled program but has a pool of search caches of its own,
/// dropped when the thread ends. Searched from the shared patterns, every
/// thread that ever ran them left its caches (the lazy DFA's, up to a few MB
/// each) in the patterns' pool for the daemon's life: the index build's
/// threads and the runtime's blocking threads come and go, and a heap
/// profile after 8 builds of 100 MB found 8 MB of such caches kept, more
/// after each build. What a thread pays instead: its first searches fill a
/// cache of its own (ten units of `argparse.py` took 250 µs on a new thread
/// against 64 µs on a warm one; compiling the patterns, once a process,
/// 10 ms).
fn with_header_patterns<R>(f: impl FnOnce(&HeaderPatterns) -> R) -> R {
    static COMPILED: OnceLock<HeaderPatterns> = OnceLock::new();
    thread_local! {
        static MINE: HeaderPatterns = COMPILED
            .get_or_init(|| {
                let patterns = header_sources();
                let set = RegexSet::new(&patterns).expect("valid header patterns");
                let one_by_one = patterns
                    .iter()
                    .map(|p| Regex::new(p).expect("a valid header pattern"))
                    .collect();
                (one_by_one, set)
            })
            .clone();
    }
    MINE.with(f)
}

/// The sources of the header patterns (`with_header_patterns`).
fn header_sources() -> Vec<String> {
    {
        let modifiers = r"(?:(?:pub(?:\([^)]*\))?|export|default|public|private|protected|internal|static|final|abstract|sealed|async|unsafe|const|extern(?:\s+\x22[^\x22]*\x22)?|override|virtual|inline|open|suspend|partial|declare|synchronized|native|constexpr|explicit)\s+)*";
        [
            format!(
                r"^{modifiers}(?:fn|def|func|function\*?|fun|class|struct|enum|trait|interface|mod|module|namespace|union|object|record|protocol|extension|type)(?:\s*\([^)]*\))?\s+\*?(?P<name>[A-Za-z_$][\w$.]*)"
            ),
            format!(r"^{modifiers}(?P<name>impl\b[^{{]*?)\s*(?:\bwhere\b.*)?\{{?\s*$"),
            format!(
                r"^{modifiers}[\w:<>\[\],.*&?]+(?:\s+[\w:<>\[\],.*&?]+)*\s+[*&]*(?:\w+::)*(?P<name>~?[A-Za-z_]\w*)\s*\([^;]*$"
            ),
            r"^(?:(?:async|static|get|set|public|private|protected|override)\s+)*(?P<name>[A-Za-z_$][\w$]*)\s*\([^;]*\)\s*(?::\s*[^{]+)?\{\s*$".to_owned(),
            r"^(?:export\s+)?(?:const|let|var)\s+(?P<name>[A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[A-Za-z_$][\w$]*\s*=>)".to_owned(),
        ]
        .into()
    }
}

/// Lines that look like calls or statements rather than definitions.
const NOT_HEADERS: &[&str] = &[
    "if", "else", "for", "while", "switch", "match", "return", "catch", "new", "throw", "case",
    "do", "try", "sizeof", "delete", "await", "yield", "elif", "except", "with", "assert", "print",
    "raise", "loop", "unless", "until", "when", "using", "goto", "typeof",
];

/// The name a definition's header line declares, if it is one.
fn header_name(line: &str) -> Option<&str> {
    let line = line.trim();
    if !may_be_header(line) {
        return None;
    }
    // Most lines match none: one pass of the set says so, and only a line
    // that matches one is searched for captures, pattern by pattern (a unit
    // asks this of every line less indented than those met since its match).
    with_header_patterns(|(one_by_one, set)| {
        if !set.is_match(line) {
            return None;
        }
        one_by_one
            .iter()
            .find_map(|re| re.captures(line)?.name("name"))
            .map(|m| m.as_str())
    })
}

/// The index among the header patterns of the first that takes `line` as
/// [`header_name`] would (each pattern captures a name when it matches).
fn header_kind(line: &str) -> Option<usize> {
    let line = line.trim();
    if !may_be_header(line) {
        return None;
    }
    // Most lines match none: one pass says so, the patterns one by one say
    // which for the few that do.
    with_header_patterns(|(one_by_one, set)| {
        if !set.is_match(line) {
            return None;
        }
        one_by_one.iter().position(|re| re.is_match(line))
    })
}

/// Whether `line` (trimmed) may be a header: not a statement by its first
/// word (`if`, `return`, ...), not a closing bracket, comment or string.
fn may_be_header(line: &str) -> bool {
    let first = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    !(NOT_HEADERS.contains(&first)
        || line.starts_with(['}', ')', ']', '#', '/', '*', '@', '"', '\'']))
}

/// Whether a line (`rest`: from its first non-blank character) continues
/// a header of several lines at the header's depth: `) -> u64 {`, `where`,
/// an opening brace on a line of its own.
fn continues_header(rest: &str) -> bool {
    rest.starts_with([')', ']', '{'])
        || rest.starts_with("->")
        || (rest.starts_with("where")
            && matches!(rest.as_bytes().get(5), None | Some(b' ' | b'\r' | b'\t')))
}

/// The innermost definition around byte `at`: going back from its line,
/// the first header line indented less than every line met since (the
/// match's own line, when it is a header, is the unit); its end is the last
/// line before the first one indented no deeper than the header (a closing
/// `}` or `end` at the header's depth included; `)`, `]`, `{`, `->` or
/// `where` there continue a header of several lines).
fn definition_at(text: &str, at: usize) -> Option<(&'static str, &str, usize, usize)> {
    let here = line_start_of(text, at);
    if let Some(documented) = documented_at(text, here) {
        return Some(documented);
    }
    let mut limit = usize::MAX;
    let mut header: Option<(usize, usize, &str)> = None; // (start byte, indent, name)
    for (n, (start, line)) in lines_back(text, here).enumerate() {
        if n >= MAX_SCAN_LINES {
            return None;
        }
        let Some((depth, rest)) = line_head(line) else {
            continue;
        };
        if start != here && continues_header(rest) {
            continue;
        }
        if start == here || depth < limit {
            if let Some(name) = header_name(rest) {
                header = Some((start, depth, name));
                break;
            }
            limit = limit.min(depth);
            if limit == 0 {
                return None; // at the top, outside any definition
            }
        }
    }
    let (start, depth, name) = header?;
    let end = definition_end(text, start, depth)?;
    (at <= end.max(start)).then_some(("definition", name, start, end))
}

/// Lines read as a definition's preamble: doc and other comments,
/// attributes, decorators (not the inner docs of the enclosing item).
fn is_preamble(rest: &str) -> bool {
    (rest.starts_with(['#', '@', '*']) || rest.starts_with("//") || rest.starts_with("/*"))
        && !(rest.starts_with("//!") || rest.starts_with("/*!") || rest.starts_with("#!"))
}

/// Lines of a preamble looked at, each way.
const MAX_PREAMBLE_LINES: usize = 500;

/// The definition whose preamble (doc comment, attributes, decorators) the
/// line at `here` is in: the header right after the block of preamble lines
/// at that line's depth, the unit starting at the block's first line.
fn documented_at(text: &str, here: usize) -> Option<(&'static str, &str, usize, usize)> {
    let (depth, rest) = line_head(&text[here..line_end_of(text, here)])?;
    if !is_preamble(rest) {
        return None;
    }
    let in_block = |line: &str| line_head(line).is_some_and(|(d, r)| d == depth && is_preamble(r));
    let (header_at, name) = lines_from(text, here)
        .take(MAX_PREAMBLE_LINES)
        .find(|&(_, line)| !in_block(line))
        .and_then(|(at, line)| match line_head(line)? {
            (d, r) if d == depth => Some((at, header_name(r)?)),
            _ => None,
        })?;
    let first = lines_back(text, here)
        .take(MAX_PREAMBLE_LINES)
        .take_while(|&(_, line)| in_block(line))
        .last()
        .map_or(here, |(at, _)| at);
    let end = definition_end(text, header_at, depth)?;
    Some(("definition", name, first, end))
}

/// The end of the definition whose header line starts at `start`, at
/// `depth`: see [`definition_at`]; None past [`MAX_SCAN_LINES`].
fn definition_end(text: &str, start: usize, depth: usize) -> Option<usize> {
    let mut end = start + text[start..line_end_of(text, start)].trim_end().len();
    for (n, (line_at, line)) in lines_from(text, end + 1).enumerate() {
        if n >= MAX_SCAN_LINES {
            return None; // longer than the scan: its end is not known
        }
        let Some((indent, rest)) = line_head(line) else {
            continue;
        };
        let rest = rest.trim_end();
        let last = line_at + line.trim_end().len();
        if indent > depth || continues_header(rest) {
            end = last;
            continue;
        }
        if rest.starts_with('}') || rest == "end" || rest.starts_with("end ") {
            end = last;
        }
        break;
    }
    Some(end)
}

/// Longest header line the passage index takes as a definition's start, in
/// bytes: code headers are short, a paragraph on one line is not.
const MAX_OUTLINE_HEADER_BYTES: usize = 240;

/// A definition of code as the passage index sees a text (`outline`):
/// byte offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The first line of its preamble (doc comment, attributes, decorators
    /// right above the header, at its depth), or its header line.
    pub start: usize,
    /// The header line, trailing white space excluded.
    pub header: Range<usize>,
    /// The start of the first line after it (a line indented no deeper
    /// than its header), or the text's end.
    pub end: usize,
    /// The definition it is nested in (an index into the outline).
    pub parent: Option<usize>,
}

/// Whether a line (`rest`: from its first non-blank char) starts a
/// definition where the kind of text is not known, as the passage index
/// reads every text: a header by [`header_name`] that starts with a
/// letter, is at most [`MAX_OUTLINE_HEADER_BYTES`] long and ends as code
/// headers do (`{`, `)`, `,`, `;`, `=>`, ...; a typed function's only
/// `{`, `(`, `,`, or `)` with `{` on the next line). The last rules keep
/// prose out: on SciFact's 5,183 abstracts, the header patterns alone
/// took a line of 1,390 of them (`Histone acetyltransferases (HATs) and
/// ...`); with it, 8 titles (`... Imaging (SOFI)`), each a text's first
/// line, where no passage is cut.
fn outline_header<'t>(rest: &str, next_line: impl FnOnce() -> &'t str) -> bool {
    let line = rest.trim_end();
    if line.len() > MAX_OUTLINE_HEADER_BYTES
        || !line.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        || !line.ends_with(['{', '}', ':', ')', ',', '(', ';', '[', '=', '>'])
    {
        return false;
    }
    match header_kind(line) {
        None => false,
        // A typed function (C, Java) has no keyword, and prose with a
        // parenthesis looks like one (`factors (ADCRs) are ... (see below)`):
        // its line must open the body or the parameters, or the next line
        // open the body.
        Some(TYPED_FUNCTION) => {
            line.ends_with(['{', '(', ','])
                || (line.ends_with(')') && next_line().trim_start().starts_with('{'))
        }
        Some(_) => true,
    }
}

/// The definitions of `text`, in order, at every depth, with the one each
/// is nested in, from the text alone (any language, prose included: see
/// [`outline_header`]). One pass over the lines: a header opens a
/// definition; a line indented no deeper than an open header (not a
/// preamble line, not one that continues a header) closes it.
pub fn outline(text: &str) -> Vec<Definition> {
    let mut defs: Vec<Definition> = Vec::new();
    // The open definitions, innermost last: (depth, index into `defs`).
    let mut open: Vec<(usize, usize)> = Vec::new();
    // The first line of the block of preamble lines just above, and its depth.
    let mut preamble: Option<(usize, usize)> = None;
    for (start, line) in lines_from(text, 0) {
        let Some((depth, rest)) = line_head(line) else {
            preamble = None;
            continue;
        };
        if is_preamble(rest) {
            if preamble.is_none_or(|(_, d)| d != depth) {
                preamble = Some((start, depth));
            }
            continue;
        }
        let above = preamble.take();
        if continues_header(rest) {
            continue;
        }
        while let Some(&(d, i)) = open.last() {
            if d < depth {
                break;
            }
            // Closed where this line, or the preamble above it, starts.
            defs[i].end = above.filter(|&(_, pd)| pd <= d).map_or(start, |(at, _)| at);
            open.pop();
        }
        let next_line = || {
            let next = &text[(start + line.len() + 1).min(text.len())..];
            &next[..memchr::memchr(b'\n', next.as_bytes()).unwrap_or(next.len())]
        };
        if outline_header(rest, next_line) {
            let header_start = start + (line.len() - rest.len());
            defs.push(Definition {
                start: above
                    .filter(|&(_, pd)| pd == depth)
                    .map_or(start, |(at, _)| at),
                header: header_start..header_start + rest.trim_end().len(),
                end: text.len(),
                parent: open.last().map(|&(_, i)| i),
            });
            open.push((depth, defs.len() - 1));
        }
    }
    defs
}

/// The header lines of the definitions that hold byte `at` of the text
/// and whose header starts before it, innermost first: the names a
/// passage starting at `at` is nested in (its class, its impl block).
pub fn enclosing(defs: &[Definition], at: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    // The last definition starting at or before `at`, then out through its
    // parents to the first that still holds `at`.
    let mut next = defs.partition_point(|d| d.start <= at).checked_sub(1);
    std::iter::from_fn(move || {
        while let Some(i) = next {
            let d = &defs[i];
            next = d.parent;
            if d.end > at && d.header.start < at {
                return Some(d.header.clone());
            }
        }
        None
    })
}

/// The header lines that lie whole in bytes `within` of the text, in
/// order: the definitions a passage holds.
pub fn headers_in(
    defs: &[Definition],
    within: Range<usize>,
) -> impl Iterator<Item = Range<usize>> + '_ {
    // Headers come in the order of the lines.
    let first = defs.partition_point(|d| d.header.start < within.start);
    defs[first..]
        .iter()
        .take_while(move |d| d.header.start < within.end)
        .filter(move |d| d.header.end <= within.end)
        .map(|d| d.header.clone())
}

/// Headings as the passage index's [`Definition`]s: each `(level, start,
/// header)`, in order, opens a section that runs to the next heading of
/// the same or a higher (smaller) level, or to `text_len`, nested in the
/// last heading of a higher level before it.
pub fn sections_of(
    headings: impl IntoIterator<Item = (usize, usize, Range<usize>)>,
    text_len: usize,
) -> Vec<Definition> {
    let mut defs: Vec<Definition> = Vec::new();
    // The open sections, innermost last: (level, index into `defs`).
    let mut open: Vec<(usize, usize)> = Vec::new();
    for (level, start, header) in headings {
        while let Some(&(l, i)) = open.last() {
            if l < level {
                break;
            }
            defs[i].end = start;
            open.pop();
        }
        defs.push(Definition {
            start,
            header,
            end: text_len,
            parent: open.last().map(|&(_, i)| i),
        });
        open.push((level, defs.len() - 1));
    }
    defs
}

#[cfg(test)]
mod tests {
    use super::html::*;
    use super::markdown::*;
    use super::*;

    /// Each thread searches with a copy of the header patterns of its own,
    /// whose search caches end with the thread (shared patterns kept every
    /// thread's caches for the process's life), and every copy reads alike.
    #[test]
    fn each_thread_searches_with_its_own_header_patterns() {
        let address = || with_header_patterns(|p| std::ptr::from_ref(p) as usize);
        let here = address();
        let there = std::thread::spawn(address).join().expect("the thread ends");
        assert_ne!(here, there, "one copy shared by two threads");
        assert_eq!(here, address(), "a thread keeps its copy");
        let line = "pub fn retry_after(attempt: u32) -> Duration {";
        assert_eq!(header_name(line), Some("retry_after"));
        let elsewhere = std::thread::spawn(move || header_name(line).map(str::to_owned));
        assert_eq!(
            elsewhere.join().expect("the thread ends").as_deref(),
            Some("retry_after")
        );
    }

    /// The unit around the first occurrence of `needle`: (name, first line, last line).
    fn unit(text: &str, needle: &str, syntax: Syntax) -> Option<(String, u64, u64)> {
        let at = text.find(needle).expect("the needle is in the text");
        unit_at(text, at, syntax).map(|u| {
            assert_eq!(
                &text[u.start..u.end].lines().count(),
                &((u.line_end - u.line_start + 1) as usize)
            );
            (u.name, u.line_start, u.line_end)
        })
    }

    fn named(name: &str, a: u64, b: u64) -> Option<(String, u64, u64)> {
        Some((name.to_owned(), a, b))
    }

    const PYTHON: &str = "import os\n\nclass Retry:\n    \"\"\"Retries.\"\"\"\n\n    def delay(self, attempt):\n        if attempt > 3:\n            return BACKOFF * 2\n        return 1\n\n    async def run(\n        self,\n    ):\n        pass\n\nx = compute()\n";

    #[test]
    fn python_methods_classes_and_module_code() {
        assert_eq!(unit(PYTHON, "BACKOFF", Syntax::Code), named("delay", 6, 9));
        assert_eq!(
            unit(PYTHON, "def delay", Syntax::Code),
            named("delay", 6, 9)
        );
        assert_eq!(unit(PYTHON, "Retries", Syntax::Code), named("Retry", 3, 14));
        assert_eq!(
            unit(PYTHON, "pass", Syntax::Code),
            named("run", 11, 14),
            "a header of several lines"
        );
        assert_eq!(unit(PYTHON, "compute", Syntax::Code), None, "module code");
        assert_eq!(unit(PYTHON, "import", Syntax::Code), None);
    }

    const RUST: &str = "use std::fmt;\n\npub struct Backoff {\n    base: u64,\n}\n\nimpl<T: Clone> fmt::Display for Wrapper<T>\nwhere\n    T: fmt::Debug,\n{\n    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {\n        let delay = self.base * 2;\n        write!(f, \"{delay}\")\n    }\n}\n\npub(crate) async fn retry_after(\n    attempt: u32,\n) -> u64 {\n    attempt as u64 * 100\n}\n";

    #[test]
    fn rust_functions_impls_and_structs() {
        assert_eq!(unit(RUST, "let delay", Syntax::Code), named("fmt", 11, 14));
        assert_eq!(
            unit(RUST, "base: u64", Syntax::Code),
            named("Backoff", 3, 5)
        );
        assert_eq!(
            unit(RUST, "attempt as u64", Syntax::Code),
            named("retry_after", 17, 21)
        );
        assert_eq!(
            unit(RUST, "attempt: u32", Syntax::Code),
            named("retry_after", 17, 21)
        );
        let impl_block = unit(RUST, "T: fmt::Debug", Syntax::Code).unwrap();
        assert!(
            impl_block
                .0
                .starts_with("impl<T: Clone> fmt::Display for Wrapper<T>"),
            "{impl_block:?}"
        );
        assert_eq!(unit(RUST, "use std", Syntax::Code), None);
    }

    /// The names a unit around the first `needle` is within, outermost first.
    fn within(text: &str, needle: &str, syntax: Syntax) -> Vec<String> {
        let at = text.find(needle).expect("the needle is in the text");
        unit_at(text, at, syntax).expect("a unit").within
    }

    #[test]
    fn units_name_what_they_are_within() {
        assert_eq!(within(PYTHON, "BACKOFF", Syntax::Code), ["Retry"]);
        assert_eq!(within(PYTHON, "Retries", Syntax::Code), [""; 0]);
        assert_eq!(
            within(RUST, "let delay", Syntax::Code),
            ["impl<T: Clone> fmt::Display for Wrapper<T>"]
        );
        assert_eq!(within(RUST, "attempt as u64", Syntax::Code), [""; 0]);
        // The innermost three, a sibling above and its doc comment skipped.
        let nested = "mod a {\n    mod b {\n        impl C {\n            /// Sets up.\n            fn setup() {\n                one();\n            }\n\n            fn d() {\n                fn e() {\n                    hit();\n                }\n            }\n        }\n    }\n}\n";
        assert_eq!(within(nested, "hit", Syntax::Code), ["b", "impl C", "d"]);
        assert_eq!(within(nested, "fn d", Syntax::Code), ["a", "b", "impl C"]);
        assert_eq!(within(nested, "one", Syntax::Code), ["a", "b", "impl C"]);
        let md = "# Guide\n\n## Install\n\n### Linux\n\nrun it\n\n## Use\n\ncall it\n\n# Other\n\nmore\n";
        assert_eq!(within(md, "run it", Syntax::Markdown), ["Guide", "Install"]);
        assert_eq!(within(md, "call it", Syntax::Markdown), ["Guide"]);
        assert_eq!(within(md, "more", Syntax::Markdown), [""; 0]);
        let page = "<!DOCTYPE html><html><body>\n<h1>Struct Vec</h1>\n<h2>Implementations</h2>\n\
            <h3>impl&lt;T&gt; Vec&lt;T&gt;<div class=\"where\">where T: Clone</div></h3>\n\
            <h4>pub fn push</h4>\n<p>Appends.</p>\n<h5>Examples</h5>\n<p>assert!</p>\n\
            <h4>pub fn pop</h4>\n<p>Removes.</p>\n</body></html>\n";
        assert_eq!(
            within(page, "assert!", Syntax::Html),
            [
                "Implementations",
                "impl<T> Vec<T> where T: Clone",
                "pub fn push"
            ]
        );
        assert_eq!(
            within(page, "Removes", Syntax::Html),
            [
                "Struct Vec",
                "Implementations",
                "impl<T> Vec<T> where T: Clone"
            ]
        );
        assert_eq!(
            within(page, "Implementations</h2>", Syntax::Html),
            ["Struct Vec"]
        );
    }

    const C_LIKE: &str = "#include <stdio.h>\n\nstatic int backoff_ms(int attempt) {\n    if (attempt > 3) {\n        return 800;\n    }\n    return attempt * 200;\n}\n\npublic class Retry {\n    public static void main(String[] args) {\n        System.out.println(backoff(1));\n    }\n}\n";

    #[test]
    fn c_and_java_functions_and_classes() {
        assert_eq!(unit(C_LIKE, "800", Syntax::Code), named("backoff_ms", 3, 8));
        assert_eq!(
            unit(C_LIKE, "System.out", Syntax::Code),
            named("main", 11, 13)
        );
        assert_eq!(
            unit(C_LIKE, "public static", Syntax::Code),
            named("main", 11, 13)
        );
        assert_eq!(unit(C_LIKE, "#include", Syntax::Code), None);
    }

    const JS: &str = "export const delay = (attempt) => {\n  return attempt * 100;\n};\n\nclass Client {\n  async fetch(url) {\n    for (const a of tries) {\n      await sleep(delay(a));\n    }\n  }\n}\n\nfunc (c *Client) Do(req *Request) error {\n\treturn c.send(req)\n}\n";

    #[test]
    fn javascript_and_go() {
        assert_eq!(
            unit(JS, "attempt * 100", Syntax::Code),
            named("delay", 1, 3)
        );
        assert_eq!(unit(JS, "await sleep", Syntax::Code), named("fetch", 6, 10));
        assert_eq!(unit(JS, "c.send", Syntax::Code), named("Do", 13, 15));
    }

    const MARKDOWN: &str = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n```sh\n# not a heading\ncargo install rlm\n```\n\n### From source\n\nBuild it.\n\n## Use\n\nSearch.\n";

    #[test]
    fn markdown_sections_skip_fenced_code() {
        assert_eq!(
            unit(MARKDOWN, "cargo install", Syntax::Markdown),
            named("Install", 5, 16)
        );
        assert_eq!(
            unit(MARKDOWN, "Build it", Syntax::Markdown),
            named("From source", 14, 16)
        );
        assert_eq!(
            unit(MARKDOWN, "Intro", Syntax::Markdown),
            named("Guide", 1, 20)
        );
        assert_eq!(
            unit(MARKDOWN, "Search", Syntax::Markdown),
            named("Use", 18, 20)
        );
        assert_eq!(unit("no heading\nhere\n", "here", Syntax::Markdown), None);
    }

    #[test]
    fn markdown_outlines_nest_headings_and_skip_fenced_code() {
        let text = "Intro line\n# Guide\ntext\n## Install\n```sh\n# not a heading\n```\n### From source\nBuild\n## Use\nSearch\n# Next\n";
        let defs = markdown_outline(text);
        let got: Vec<(&str, Option<&str>, &str)> = defs
            .iter()
            .map(|d| {
                assert!(d.start <= d.header.start && d.header.end <= d.end, "{d:?}");
                let parent = d.parent.map(|i| &text[defs[i].header.clone()]);
                (&text[d.header.clone()], parent, &text[d.start..d.end])
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "# Guide",
                    None,
                    "# Guide\ntext\n## Install\n```sh\n# not a heading\n```\n### From source\nBuild\n## Use\nSearch\n"
                ),
                (
                    "## Install",
                    Some("# Guide"),
                    "## Install\n```sh\n# not a heading\n```\n### From source\nBuild\n"
                ),
                (
                    "### From source",
                    Some("## Install"),
                    "### From source\nBuild\n"
                ),
                ("## Use", Some("# Guide"), "## Use\nSearch\n"),
                ("# Next", None, "# Next\n"),
            ]
        );
        let at = text.find("Build").unwrap();
        let around: Vec<&str> = enclosing(&defs, at).map(|r| &text[r]).collect();
        assert_eq!(around, ["### From source", "## Install", "# Guide"]);
        assert!(markdown_outline("no heading\n#hashtag\n    # indented code\n").is_empty());
    }

    #[test]
    fn html_sections_name_their_heading() {
        let page = "<!DOCTYPE html><html><body>\n<h1>Struct <a href=\"#\">Vec</a></h1>\n<p>About.</p>\n\
            <h4 class=\"code-header\">pub fn <a>push</a>(&amp;mut self, value: T) -&gt; &#x2714;</h4>\n\
            <p>Appends an element.</p>\n  \n<h4>pub fn pop</h4>\n<p>Removes.</p>\n</body></html>\n";
        assert_eq!(
            unit(page, "Appends", Syntax::Html),
            Some((
                "pub fn push(&mut self, value: T) -> \u{2714}".to_owned(),
                4,
                5
            ))
        );
        assert_eq!(unit(page, "About", Syntax::Html), named("Struct Vec", 2, 9));
        assert_eq!(
            unit(page, "<body>", Syntax::Html),
            None,
            "before any heading"
        );
        assert_eq!(
            unit(page, "<h4>pub fn pop", Syntax::Html),
            named("pub fn pop", 7, 9)
        );
        // A section longer than the scan past the match is not named.
        let long = format!("<html><h2>Long</h2><p>here {}</p>", "word ".repeat(60_000));
        assert_eq!(unit(&long, "here", Syntax::Html), None);
        assert_eq!(
            heading_text("a &bogus; b&#99999999;"),
            "a &bogus; b&#99999999;"
        );
        assert_eq!(
            heading_text("<h2>One<br/>two <em>three</em></h2>"),
            "One two three"
        );
        assert_eq!(
            heading_text(
                "<h1>Struct <span>Vec</span><button id=\"copy-path\" title=\"Copy\">Copy item path</BUTTON></h1>"
            ),
            "Struct Vec"
        );
        assert_eq!(heading_text("<h1>A <button>never closed</h1>"), "A");
        // A reference's `;` is looked for within 12 bytes, whatever chars they cut.
        assert_eq!(heading_text("<h1>&amp;\t\t    é</h1>"), "& é");
        assert_eq!(heading_text("&ééééééé;"), "&ééééééé;");
    }

    #[test]
    fn markdown_setext_headings_are_headings() {
        let text = "Guide\n=====\n\nIntro.\n\nInstall\n-------\nRun it.\n\n- a list item\n---\n\n\
                    1. step\n---\n2024 was a year\n---\nso it was.\n\n    indented code\n    ---\n";
        let defs = markdown_outline(text);
        let headers: Vec<(&str, Option<&str>)> = defs
            .iter()
            .map(|d| {
                (
                    &text[d.header.clone()],
                    d.parent.map(|p| &text[defs[p].header.clone()]),
                )
            })
            .collect();
        assert_eq!(
            headers,
            [
                ("Guide", None),
                ("Install", Some("Guide")),
                ("2024 was a year", Some("Guide"))
            ]
        );
        assert_eq!(
            unit(text, "Run it", Syntax::Markdown),
            named("Install", 6, 14)
        );
        assert_eq!(unit(text, "Intro", Syntax::Markdown), named("Guide", 1, 20));
        assert_eq!(
            unit(text, "so it was", Syntax::Markdown),
            named("2024 was a year", 15, 20)
        );
        for not_text in [
            "- item", "* item", "+ item", "12. item", "3) item", "> quote", "| a |", "    code",
            "# h", "===",
        ] {
            assert!(!setext_text(not_text), "{not_text}");
        }
        for text in ["-flag", "*emphasis*", "2024 was", "Title"] {
            assert!(setext_text(text), "{text}");
        }
        assert_eq!(setext_level("==="), Some(1));
        assert_eq!(setext_level("   ---  "), Some(2));
        assert_eq!(setext_level("--"), None);
        assert_eq!(setext_level("    ---"), None);
        assert_eq!(setext_level("-=-"), None);
    }

    const DOCUMENTED: &str = "impl Client {\n    /// Sends the request, retrying\n    /// with backoff.\n    #[inline]\n    pub fn send(&self) {\n        go();\n    }\n\n    // A note on what follows.\n\n    fn other(&self) {}\n}\n\n# Decorated\n@retry(times=3)\ndef fetch(url):\n    return get(url)\n";

    /// The outline of `text`: (header line, parent's header line, first line of the
    /// definition).
    fn outlined(text: &str) -> Vec<(&str, Option<&str>, &str)> {
        let defs = outline(text);
        defs.iter()
            .map(|d| {
                assert!(d.start <= d.header.start && d.header.end <= d.end, "{d:?}");
                let first = text[d.start..].lines().next().unwrap_or("");
                let parent = d.parent.map(|i| &text[defs[i].header.clone()]);
                (&text[d.header.clone()], parent, first)
            })
            .collect()
    }

    /// The enclosing header lines of the position of the first `needle`.
    fn enclosing_of<'t>(text: &'t str, needle: &str) -> Vec<&'t str> {
        let defs = outline(text);
        let at = text.find(needle).expect("the needle is in the text");
        enclosing(&defs, at).map(|r| &text[r]).collect()
    }

    #[test]
    fn outlines_of_python_and_rust() {
        assert_eq!(
            outlined(PYTHON),
            [
                ("class Retry:", None, "class Retry:"),
                (
                    "def delay(self, attempt):",
                    Some("class Retry:"),
                    "    def delay(self, attempt):"
                ),
                ("async def run(", Some("class Retry:"), "    async def run("),
            ]
        );
        // Module code after the class closes it.
        let class = &outline(PYTHON)[0];
        assert_eq!(&PYTHON[class.end..], "x = compute()\n");
        assert_eq!(
            enclosing_of(PYTHON, "if attempt"),
            ["def delay(self, attempt):", "class Retry:"]
        );
        // A passage starting at a method's line is nested in the class only.
        assert_eq!(enclosing_of(PYTHON, "    def delay"), ["class Retry:"]);
        assert!(enclosing_of(PYTHON, "x = compute").is_empty());
        assert!(enclosing_of(PYTHON, "import os").is_empty());

        let fmt = "fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {";
        let display = "impl<T: Clone> fmt::Display for Wrapper<T>";
        assert_eq!(
            outlined(RUST),
            [
                ("pub struct Backoff {", None, "pub struct Backoff {"),
                (display, None, display),
                (fmt, Some(display), &*format!("    {fmt}")),
                (
                    "pub(crate) async fn retry_after(",
                    None,
                    "pub(crate) async fn retry_after("
                ),
            ]
        );
        assert_eq!(enclosing_of(RUST, "let delay"), [fmt, display]);
        assert!(enclosing_of(RUST, "attempt as u64").len() == 1);
    }

    #[test]
    fn headers_in_a_range() {
        let defs = outline(PYTHON);
        let within = |a: &str, b: &str| {
            let range = PYTHON.find(a).unwrap()..PYTHON.find(b).unwrap();
            headers_in(&defs, range)
                .map(|r| &PYTHON[r])
                .collect::<Vec<_>>()
        };
        assert_eq!(
            within("import", "x = "),
            [
                "class Retry:",
                "def delay(self, attempt):",
                "async def run("
            ]
        );
        assert_eq!(
            within("    def delay", "    async"),
            ["def delay(self, attempt):"]
        );
        // A header cut by the range's end is not in it.
        assert!(within("    def delay", "(self, attempt)").is_empty());
        assert!(within("        if attempt", "x = ").len() == 1);
    }

    #[test]
    fn outlines_start_at_preambles() {
        let starts: Vec<_> = outlined(DOCUMENTED)
            .into_iter()
            .map(|(h, _, first)| (h, first))
            .collect();
        assert_eq!(
            starts,
            [
                ("impl Client {", "impl Client {"),
                (
                    "pub fn send(&self) {",
                    "    /// Sends the request, retrying"
                ),
                // A comment and a blank line above it are not its preamble.
                ("fn other(&self) {}", "    fn other(&self) {}"),
                ("def fetch(url):", "# Decorated"),
            ]
        );
    }

    #[test]
    fn outlines_leave_prose_out() {
        let prose = "Histone acetyltransferases (HATs) and remodeling factors (ADCRs) are\n\
                     involved in gene regulation (see the function foo(x) below).\n\
                     type the command below, then\n\
                     class of drugs (statins) that lower\n\
                     Results for the group (n = 77):\n";
        assert!(outline(prose).is_empty(), "{:?}", outlined(prose));
        // Typed functions open their body on their line or the next.
        let c = "int main(int argc, char **argv)\n{\n    return run(argc);\n}\n\n\
                 public static void main(String[] args) {\n    run(args);\n}\n\n\
                 static size_t parse_header(const char *buf,\n    size_t len);\n";
        assert_eq!(
            outlined(c)
                .into_iter()
                .map(|(h, _, _)| h)
                .collect::<Vec<_>>(),
            [
                "int main(int argc, char **argv)",
                "public static void main(String[] args) {",
                "static size_t parse_header(const char *buf,"
            ]
        );
        // A header line longer than code's is prose too.
        let long = format!("def f({}):\n    pass\n", "a, ".repeat(100));
        assert!(outline(&long).is_empty());
    }

    #[test]
    fn doc_comments_attributes_and_decorators_belong_to_what_follows() {
        assert_eq!(
            unit(DOCUMENTED, "retrying", Syntax::Code),
            named("send", 2, 7)
        );
        assert_eq!(
            unit(DOCUMENTED, "with backoff", Syntax::Code),
            named("send", 2, 7)
        );
        assert_eq!(
            unit(DOCUMENTED, "#[inline]", Syntax::Code),
            named("send", 2, 7)
        );
        assert_eq!(unit(DOCUMENTED, "go()", Syntax::Code), named("send", 5, 7));
        let note = unit(DOCUMENTED, "A note", Syntax::Code).unwrap();
        assert_eq!(
            note.0, "impl Client",
            "a comment apart from the next item is the enclosing one's"
        );
        assert_eq!(
            unit(DOCUMENTED, "@retry", Syntax::Code),
            named("fetch", 14, 17)
        );
        assert_eq!(
            unit(DOCUMENTED, "return get", Syntax::Code),
            named("fetch", 16, 17)
        );
    }

    #[test]
    fn units_longer_than_the_scan_are_not_named() {
        let body = "    x = 1\n".repeat(MAX_SCAN_LINES + 5);
        let long = format!("def long():\n{body}    return x\n");
        assert_eq!(
            unit(&long, "def long", Syntax::Code),
            None,
            "its end is past the scan"
        );
        assert_eq!(
            unit(&long, "return x", Syntax::Code),
            None,
            "its header is past the scan"
        );
        let short = format!(
            "def short():\n{}    return x\n",
            "    x = 1\n".repeat(MAX_SCAN_LINES - 5)
        );
        let n = MAX_SCAN_LINES as u64 - 3;
        assert_eq!(unit(&short, "return x", Syntax::Code), named("short", 1, n));
        let section = format!("# Long\n{}", "text\n".repeat(MAX_SCAN_LINES + 5));
        assert_eq!(unit(&section, "Long", Syntax::Markdown), None);
    }

    #[test]
    fn syntax_by_extension() {
        assert_eq!(syntax_of("/src/lib.rs"), Some(Syntax::Code));
        assert_eq!(syntax_of("C:\\x\\Main.JAVA"), Some(Syntax::Code));
        assert_eq!(syntax_of("docs/README.md"), Some(Syntax::Markdown));
        assert_eq!(syntax_of("notes.txt"), None);
        assert_eq!(syntax_of("inline"), None);
        assert_eq!(syntax_of("Makefile"), None);
    }

    #[test]
    fn names_are_cut_and_positions_checked() {
        let long = format!("def {}():\n    pass\n", "a".repeat(300));
        let u = unit_at(&long, long.find("pass").unwrap(), Syntax::Code).unwrap();
        assert_eq!(u.name.chars().count(), MAX_NAME_CHARS + 1);
        assert!(
            unit_at("é", 1, Syntax::Code).is_none(),
            "not a char boundary"
        );
        assert!(unit_at("x", 5, Syntax::Code).is_none(), "past the end");
    }

    proptest::proptest! {
        /// Any position of any text: a unit, when there is one, holds the position and lies in the text.
        #[test]
        fn the_pattern_set_takes_the_lines_the_patterns_do(
            line in "(pub |static |async |export |const |int |void |[a-z]{1,6} ){0,4}(fn |def |class |impl |function )?[a-zA-Z_]{1,8}( ?\\([a-z, *&]{0,12}\\)?)?( =>| \\{| ->| :|;|,|=)?"
        ) {
            let by_one = with_header_patterns(|(one_by_one, _)| one_by_one.iter().position(|re| re.is_match(line.trim())));
            proptest::prop_assert_eq!(header_kind(&line), by_one.filter(|_| header_name(&line).is_some()));
        }

        #[test]
        fn units_hold_their_position(text in "([a-z_]{1,6}|def f\\(\\):|fn g\\(\\) \\{|\\}|# h|```|\\n|    |\\t| |\\(|\\)|é|<h[1-3]>|</h[1-3]>|<p>|&amp;){0,60}", frac in 0.0f64..1.0) {
            let mut at = ((text.len() as f64) * frac) as usize;
            while !text.is_char_boundary(at) { at -= 1; }
            for syntax in [Syntax::Code, Syntax::Markdown, Syntax::Html] {
                if let Some(u) = unit_at(&text, at, syntax) {
                    proptest::prop_assert!(u.start <= u.end && u.end <= text.len());
                    proptest::prop_assert!(text.is_char_boundary(u.start) && text.is_char_boundary(u.end));
                    proptest::prop_assert!(u.line_start <= u.line_end);
                    proptest::prop_assert!(u.within.len() <= MAX_WITHIN);
                    proptest::prop_assert!(u.start <= at, "a unit starts at or before its position");
                    if syntax == Syntax::Code {
                        proptest::prop_assert!(at <= u.end, "a definition holds its position");
                    }
                }
            }
        }
    }
}
