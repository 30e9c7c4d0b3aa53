//! How `rlm search` shows a match: the file and the line of its first hit,
//! and the file's whole lines around it (read back from disk when the file
//! still holds the text that was loaded), each cut to a printable width.

use serde_json::Value;

/// Files larger than this are not read back for line numbers (the match's
/// context is shown alone).
const MAX_READ_BACK: u64 = 32 << 20;

/// Characters of one printed line of a snippet (a minified file's line can be huge).
const MAX_LINE_CHARS: usize = 240;

/// A match of `rlm search` as printed: the file, the line of its first hit,
/// and the context as whole lines.
pub(crate) struct Shown {
    pub(crate) m: Value,
    pub(crate) source: String,
    /// 1-based line of the first hit, when the file on disk still holds the
    /// text that was loaded (same length in characters).
    pub(crate) line: Option<u64>,
    pub(crate) lines: Vec<String>,
}

impl Shown {
    pub(crate) fn of(m: &Value, source: Option<&(String, u64)>) -> Shown {
        let (source, length) = source.cloned().unwrap_or_default();
        let context = m["context"].as_str().unwrap_or_default();
        let start = m["span"]["start"].as_u64().unwrap_or(0) as usize;
        let end = m["span"]["end"].as_u64().unwrap_or(0) as usize;
        let hit = m["highlight_start"].as_u64().unwrap_or(0) as usize;
        // The file as it is now, if it is still the text the daemon loaded:
        // its lines, whole, around the hit. Else the context's whole lines.
        let file: Option<Vec<char>> = read_back(&source, MAX_READ_BACK)
            .map(|t| t.chars().collect())
            .filter(|t: &Vec<char>| t.len() as u64 == length);
        let (line, lines) = match file {
            Some(text) if start <= end && end <= text.len() => {
                let (line, lines) = file_lines(&text, start, end, start + hit);
                (Some(line), lines)
            }
            _ => (None, whole_lines(context, hit)),
        };
        Shown {
            m: m.clone(),
            source,
            line,
            lines,
        }
    }
}

/// The text of the file at `path` as it is now, if it is a regular file of
/// at most `max` bytes (`rlm::small_file`: a FIFO put where a loaded file
/// was is never waited on).
fn read_back(path: &str, max: u64) -> Option<String> {
    rlm::small_file::read_small_file(std::path::Path::new(path), max).ok()
}

/// The 1-based line of char `hit` of `text`, and the lines the window
/// `[start, end)` touches, whole: the first and last only when they hold the
/// hit or lie wholly inside the window; each cut to [`MAX_LINE_CHARS`].
fn file_lines(text: &[char], start: usize, end: usize, hit: usize) -> (u64, Vec<String>) {
    let line_of = |at: usize| {
        text[..at.min(text.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count()
    };
    let hit_line = line_of(hit);
    let mut first = line_of(start);
    let mut last = line_of(end.saturating_sub(1).max(start));
    let starts_line = start == 0 || text[start - 1] == '\n';
    let ends_line = end >= text.len() || text[end] == '\n' || (end > 0 && text[end - 1] == '\n');
    if !starts_line && first != hit_line && first < last {
        first += 1;
    }
    if !ends_line && last != hit_line && last > first {
        last -= 1;
    }
    let mut lines: Vec<String> = text
        .split(|&c| c == '\n')
        .skip(first)
        .take(last - first + 1)
        .map(|l| {
            let l: String = l.iter().collect();
            cut_line(&l)
        })
        .collect();
    while lines.len() > 1 && lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    (hit_line as u64 + 1, lines)
}

fn cut_line(l: &str) -> String {
    match l.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}...", &l[..cut]),
        None => l.to_owned(),
    }
}

/// The lines of `context` (when the file is not there to read) without its
/// partial first and last ones, unless that would drop the first hit (at
/// char `hit`); each cut to [`MAX_LINE_CHARS`].
fn whole_lines(context: &str, hit: usize) -> Vec<String> {
    let lines: Vec<&str> = context.split('\n').collect();
    let mut starts = Vec::with_capacity(lines.len());
    let mut at = 0usize;
    for l in &lines {
        starts.push(at);
        at += l.chars().count() + 1;
    }
    let (mut first, mut last) = (0, lines.len());
    if lines.len() > 1 && starts[1] <= hit {
        first = 1;
    }
    if last - first > 1 && starts[last - 1] > hit {
        last -= 1;
    }
    lines[first..last].iter().map(|l| cut_line(l)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What was loaded may have become a FIFO, a folder or a bigger file
    /// since: none is read back (a FIFO hung `rlm search` at its output).
    #[cfg(unix)]
    #[test]
    fn only_a_small_regular_file_is_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
        std::fs::write(path("a.txt"), "one\ntwo\n").unwrap();
        assert_eq!(
            read_back(&path("a.txt"), 100).as_deref(),
            Some("one\ntwo\n")
        );
        assert_eq!(read_back(&path("a.txt"), 3), None, "larger than the bound");
        nix::unistd::mkfifo(
            tmp.path().join("fifo").as_path(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(read_back(&path("fifo"), 100), None);
        assert_eq!(read_back(&tmp.path().to_string_lossy(), 100), None);
        assert_eq!(read_back(&path("missing"), 100), None);
    }

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn a_window_inside_lines_shows_the_whole_line_of_its_hit() {
        let text = chars("first line\nthe hit is here in line two\nthird line\n");
        // The window starts mid line two and ends mid line three.
        let start = 15;
        let (line, lines) = file_lines(&text, start, 45, start + 3);
        assert_eq!(line, 2);
        assert_eq!(lines, ["the hit is here in line two"]);
    }

    #[test]
    fn whole_lines_inside_the_window_are_kept_and_partial_ends_dropped() {
        let text = chars("aaaa\nbbbb\ncccc\ndddd\neeee\n");
        // From the middle of `aaaa` to the middle of `eeee`, hit in `cccc`.
        let (line, lines) = file_lines(&text, 2, 22, 11);
        assert_eq!(line, 3);
        assert_eq!(lines, ["bbbb", "cccc", "dddd"]);
    }

    #[test]
    fn long_lines_are_cut_and_blank_tails_dropped() {
        let long = "x".repeat(1000);
        let text = chars(&format!("{long}\n\n\n"));
        let (line, lines) = file_lines(&text, 0, text.len(), 500);
        assert_eq!(line, 1);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].chars().count(), MAX_LINE_CHARS + 3);
    }

    #[test]
    fn without_the_file_the_context_loses_its_partial_ends_but_not_its_hit() {
        assert_eq!(
            whole_lines("tail of one\nfull two\nhead of thr", 14),
            ["full two"]
        );
        // The hit in the partial first line keeps it.
        assert_eq!(
            whole_lines("tail of one\nfull two\nhead", 2),
            ["tail of one", "full two"]
        );
        assert_eq!(whole_lines("one line only", 3), ["one line only"]);
    }
}
