//! The engine's parts measured alone, outside any session: the passage
//! index's build and its phases, the literal and regex scanners, and the
//! chunkers on 100 MB. These were `#[ignore]`d tests; the test suite holds
//! only tests, and the timings live here.

use std::path::Path;
use std::time::Instant;

use rlmd::chunk::{Strategy, chunk};
use rlmd::search::analyzer::{self, AnalyzerOptions};
use rlmd::search::bm25::{IndexStamp, PassageIndex, measure_build_phases, passages, signature};
use rlmd::search::markup;
use rlmd::search::scan::{ScanMethod, Scanner};
use rlmd::text::TextShape;

use crate::EXCLUDED_DIRS;

/// The UTF-8 files below `corpus` whose path `include` matches (not in the
/// folders the corpus leaves out), in path order, until `limit` bytes are
/// taken.
fn texts(corpus: &Path, include: &regex::Regex, limit: usize) -> Result<Vec<String>, String> {
    let exclude = regex::Regex::new(EXCLUDED_DIRS).expect("a valid regex");
    let mut texts = Vec::new();
    let mut total = 0;
    for e in walkdir::WalkDir::new(corpus).sort_by_file_name() {
        let e = e.map_err(|e| format!("reading {}: {e}", corpus.display()))?;
        let p = e.path().to_string_lossy();
        if !e.file_type().is_file() || !include.is_match(&p) || exclude.is_match(&p) {
            continue;
        }
        if total >= limit {
            break;
        }
        if let Ok(t) = std::fs::read_to_string(e.path()) {
            total += t.len();
            texts.push(t);
        }
    }
    if texts.is_empty() {
        return Err(format!(
            "no file below {} matches {}",
            corpus.display(),
            include.as_str()
        ));
    }
    Ok(texts)
}

fn temp_dir() -> Result<tempfile::TempDir, String> {
    tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))
}

/// `index-build`: the passages, the analysis, the build, the open and one
/// search of a passage index over the corpus.
pub fn index_build(corpus: &Path, include: &regex::Regex, limit: usize) -> Result<(), String> {
    let files = texts(corpus, include, limit)?;
    let bytes: usize = files.iter().map(|t| t.len()).sum();
    let tmp = temp_dir()?;
    let err = |e: rlmd::search::bm25::IndexError| e.to_string();
    let t0 = Instant::now();
    // Read with no file name: cut as code or prose by their lines.
    let n_passages: usize = files.iter().map(|t| passages(t, None).len()).sum();
    let t_passages = t0.elapsed();
    // What a load measures of each text (length in chars, checkpoints).
    let t0 = Instant::now();
    let checkpoints: usize = files
        .iter()
        .map(|t| TextShape::of(t).checkpoints.len())
        .sum();
    let t_shape = t0.elapsed();
    // HTML pages as the index reads them: their markup left out, passage by passage.
    let t0 = Instant::now();
    let mut read = String::new();
    let mut pages = 0usize;
    for t in files.iter().filter(|t| markup::is_html(t)) {
        pages += 1;
        for p in passages(t, None) {
            markup::compact_into(&t[p.start_byte..p.end_byte], &mut read);
        }
    }
    let t_markup = t0.elapsed();
    let t0 = Instant::now();
    let mut tokens = 0usize;
    for t in &files {
        analyzer::for_each_token(t, AnalyzerOptions::DEFAULT, |_| tokens += 1);
    }
    let t_analyze = t0.elapsed();
    let t0 = Instant::now();
    let index = PassageIndex::create(&tmp.path().join("i")).map_err(err)?;
    let stamp = IndexStamp {
        index_id: "bench".into(),
        analyzer: signature(AnalyzerOptions::DEFAULT),
    };
    index
        .add_documents(
            files
                .iter()
                .enumerate()
                .map(|(i, t)| (i as u64, t.as_str())),
            &stamp,
        )
        .map_err(err)?;
    let t_build = t0.elapsed();
    let t0 = Instant::now();
    let reopened = PassageIndex::open(&tmp.path().join("i"))
        .map_err(err)?
        .ok_or("the index just built does not open")?;
    let t_open = t0.elapsed();
    let t0 = Instant::now();
    let hits = reopened
        .search("parse the http header of a request", 10, None)
        .map_err(err)?;
    let t_search = t0.elapsed();
    println!(
        "{} docs, {bytes} bytes, {n_passages} passages, {tokens} tokens: passages {t_passages:?}, \
         shape {t_shape:?} ({checkpoints} checkpoints), markup left out {t_markup:?} ({pages} HTML pages, passages again included), analyze {t_analyze:?}, build {t_build:?}, open {t_open:?}, search {t_search:?} ({} hits)",
        files.len(),
        hits.len()
    );
    Ok(())
}

/// `index-phases`: where an index build's time goes, with 1 and 2 writer
/// threads (each twice).
pub fn index_phases(corpus: &Path, include: &regex::Regex, limit: usize) -> Result<(), String> {
    let files = texts(corpus, include, limit)?;
    for threads in [1usize, 2, 2, 1] {
        let tmp = temp_dir()?;
        let [docs, writer, add, commit, wait] =
            measure_build_phases(tmp.path(), &files, threads).map_err(|e| e.to_string())?;
        println!(
            "threads {threads}: docs {docs:?}, writer {writer:?}, add {add:?}, \
             commit {commit:?}, wait {wait:?}"
        );
    }
    Ok(())
}

/// Times `sc` counting over every text of `docs`, 31 times, with the ASCII
/// hint if `hint` (as the engine gives it), window by window where the
/// pattern allows, as the engine scans: matches, p50 and min (ms).
fn time_scan(sc: &Scanner, docs: &[String], hint: bool) -> (usize, f64, f64) {
    let ascii: Vec<bool> = docs.iter().map(|d| hint && d.is_ascii()).collect();
    let mut ts = Vec::new();
    let mut count = 0;
    for _ in 0..31 {
        let t0 = Instant::now();
        count = docs
            .iter()
            .zip(&ascii)
            .map(|(d, &a)| {
                let mut n = 0;
                let _ = sc.for_each_match(d, a, |_| false, |_, _| n += 1);
                n
            })
            .sum::<usize>();
        ts.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    ts.sort_by(f64::total_cmp);
    (count, ts[15], ts[0])
}

/// `text` with `s` put at the start of every 20th line: a text that is not
/// ASCII, with its non-ASCII chars spread out as in prose or comments.
fn sprinkle(text: &str, s: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 200);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i % 20 == 0 {
            out.push_str(s);
        }
        out.push_str(line);
    }
    out
}

/// `scan`: each literal and regex of a fixed list counted over every
/// document of the corpus, 31 times: matches, p50 and min (ms); literals
/// with the ASCII hint as the engine gives it, regexes without and with it.
/// Then literals over two texts made from the corpus that are not ASCII:
/// `é` put in every 20th line, and the same with a Kelvin sign and a long s
/// at the end of each document (chars that fold to `k` and `s`).
pub fn scan(corpus: &Path) -> Result<(), String> {
    let py = regex::Regex::new(r"\.py$").expect("a valid regex");
    let docs = texts(corpus, &py, usize::MAX)?;
    let total: usize = docs.iter().map(|d| d.len()).sum();
    println!("{} docs, {} bytes", docs.len(), total);
    let scanner = |method, p: &str| Scanner::new(method, p).map_err(|e| format!("{p}: {e}"));
    let mut p50s = Vec::new();
    for l in [
        "def ",
        "self",
        "import os",
        "ValueError",
        "__init__",
        "return None",
        "isinstance(",
        "zirconiumrelay",
        "http://",
        "encoding",
        "xyzzy",
        "q",
        "Return the number of",
    ] {
        let (c, p50, min) = time_scan(&scanner(ScanMethod::Literal, l)?, &docs, true);
        p50s.push(p50);
        println!("literal {l:22} {c:7} matches  p50 {p50:6.2} ms  min {min:6.2} ms");
    }
    p50s.sort_by(f64::total_cmp);
    println!(
        "literal p50 of the query p50s: {:.2} ms",
        p50s[p50s.len() / 2]
    );
    let mut p50s = Vec::new();
    for r in [
        r"def __\w+__\(self",
        r"class \w+Error\(",
        r"\d{4}-\d{2}-\d{2}",
        r"[A-Z_]{12,} = \d+",
        r"zirconium\d+relay",
    ] {
        let sc = scanner(ScanMethod::Regex, r)?;
        let (c, p50, min) = time_scan(&sc, &docs, false);
        let (c2, p50h, minh) = time_scan(&sc, &docs, true);
        if c != c2 {
            return Err(format!("{r}: {c} matches, {c2} with the ASCII hint"));
        }
        p50s.push(p50h);
        println!(
            "regex {r:20} {c:6} matches  p50 {p50:6.2} ms (min {min:6.2})  \
             with ASCII hint p50 {p50h:6.2} ms (min {minh:6.2})"
        );
    }
    p50s.sort_by(f64::total_cmp);
    println!(
        "regex p50 of the query p50s (hinted): {:.2} ms",
        p50s[p50s.len() / 2]
    );
    let accented: Vec<String> = docs.iter().map(|d| sprinkle(d, "é")).collect();
    let folding: Vec<String> = accented
        .iter()
        .map(|d| format!("{d}\u{212A} \u{17F}\n"))
        .collect();
    let bytes: usize = accented.iter().map(|d| d.len()).sum();
    println!("not ASCII: {} docs, {bytes} bytes", accented.len());
    for l in [
        "def ",
        "ValueError",
        "encoding",
        "zirconiumrelay",
        "q",
        "self",
        "isinstance(",
        "keyword",
        "k",
    ] {
        let sc = scanner(ScanMethod::Literal, l)?;
        let (c, p50, min) = time_scan(&sc, &accented, true);
        let (c2, p50f, minf) = time_scan(&sc, &folding, true);
        println!(
            "literal {l:14} with é {c:7} matches  p50 {p50:6.2} ms (min {min:6.2})  \
             and K ſ {c2:7} matches  p50 {p50f:6.2} ms (min {minf:6.2})"
        );
    }
    Ok(())
}

/// `chunk`: every strategy over 100 MB of Unicode and of ASCII lines.
pub fn chunk_100mb() -> Result<(), String> {
    let line = "def fünction(self, x):  # ✓ a line of some forty-odd chars\n";
    let text = line.repeat(100_000_000 / line.len());
    let ascii_text = text.replace(['ü', '✓'], "u");
    let fixed = |chunk_size, overlap| Strategy::Fixed {
        chunk_size,
        overlap,
    };
    let lines_of = |line_count, overlap| Strategy::Lines {
        line_count,
        overlap,
    };
    for (name, t) in [("unicode", &text), ("ascii", &ascii_text)] {
        let n = t.chars().count() as u64;
        for s in [
            fixed(50_000, 0),
            fixed(50_000, 5_000),
            fixed(1_000, 100),
            lines_of(100, 0),
            lines_of(100, 50),
            lines_of(1, 0),
            Strategy::Delimiter {
                pattern: r"\ndef ".to_owned(),
            },
        ] {
            let t0 = Instant::now();
            let r = chunk(t, n, &s, None).map_err(|e| format!("{s:?}: {e}"))?;
            println!(
                "{name:8} {s:?}: {} spans in {:.1} ms",
                r.len(),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

/// The unit of a match (`search::units::unit_at`) at a position every 997
/// bytes of each text read as code (as an HTML page when it is one, as the
/// search reads it): calls, the share that found a unit, and
/// the time of a call (mean, p50, p95, max), the cost a search pays per match.
pub(crate) fn units(corpus: &Path, include: &regex::Regex, limit: usize) -> Result<(), String> {
    use rlmd::search::units::{Syntax, unit_at_lined};
    let texts = texts(corpus, include, limit)?;
    let mut times: Vec<f64> = Vec::new();
    let mut found = 0usize;
    for text in &texts {
        // As the engine asks: lines counted from the stored text's marks.
        let stored = rlmd::text::Text::from_string(text.clone());
        let syntax = if markup::is_html(text) {
            Syntax::Html
        } else {
            Syntax::Code
        };
        let mut at = 0;
        while at < text.len() {
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let t = Instant::now();
            let unit = unit_at_lined(text, at, syntax, &|b| stored.line_of(b));
            times.push(t.elapsed().as_secs_f64() * 1e6);
            found += usize::from(std::hint::black_box(unit).is_some());
            at += 997;
        }
    }
    if times.is_empty() {
        return Err(format!("units: no text under {}", corpus.display()));
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{} texts, {} calls, {:.0}% in a unit: mean {mean:.2} µs, p50 {:.2} µs, p95 {:.2} µs, max {:.0} µs",
        texts.len(),
        times.len(),
        100.0 * found as f64 / times.len() as f64,
        at(0.5),
        at(0.95),
        times[times.len() - 1]
    );
    Ok(())
}
