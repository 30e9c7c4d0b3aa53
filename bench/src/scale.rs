//! `rlm-engine-bench scale`: the scale benchmark of issue 10 in-process (no
//! daemon, no MCP): a load of a big corpus into a fresh data folder, its
//! first bm25 (the index build included), bm25 / regex / literal p50 and p95,
//! the index's compaction (what the daemon does once calls pause; its time
//! includes that pause) and bm25 p50 and p95 after it, then a second
//! session's load of the same files and its first bm25, with
//! the process's `RssAnon`, `RssFile` and `VmHWM`. `bench/scale.py` measures
//! the same through the shim and a real daemon, with the memory over time
//! and the data folder.
//!
//! ```text
//! rlm-engine-bench scale [--corpus DIR]... [--include REGEX] [--runs 3] [--json]
//! ```
//!
//! The default corpus is that of the issue: the crate sources under
//! `~/.cargo/registry/src` (`*.rs`) and the toolchain's HTML docs under
//! `$(rustc --print sysroot)/share/doc` (`*.html`), loaded as two glob
//! sources; `--corpus DIR` (repeatable) loads every file of each folder, or
//! those whose whole path matches `--include`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::{Bench, flag, has, median, ms, pct, round3};

/// The queries of `bench/scale.py`, so the two figures compare.
const FIRST_QUERY: &str = "parse command line arguments";
const BM25_QUERIES: &[&str] = &[
    "parse command line arguments",
    "hash map entry api",
    "async runtime spawn task",
    "read file to string",
    "serialize struct to json",
    "mutex lock poisoned",
    "iterator adapter map filter",
    "thread pool join handle",
    "tcp stream connect timeout",
    "utf8 string validation error",
    "borrow checker lifetime",
    "trait object dynamic dispatch",
    "regex match captures",
    "random number generator seed",
    "channel send receive",
    "error handling result question mark",
    "derive debug clone",
    "unsafe raw pointer dereference",
    "vector capacity reserve",
    "sort by key comparator",
    "http request headers",
    "environment variable config",
    "path join canonicalize",
    "atomic ordering compare exchange",
    "format macro display",
    "buffered writer flush",
    "signal handler terminate process",
    "timestamp duration since epoch",
    "base64 encode decode",
    "sha256 digest bytes",
];
const REGEX_QUERIES: &[&str] = &[
    r"fn \w+<T",
    r"impl<\w+> \w+ for",
    r"#\[derive\([^)]*Debug",
    r"pub struct \w+Error",
    r"unsafe impl \w+ for",
    r"async fn \w+\(",
    r"\.unwrap_or_else\(\|",
    r"Result<\(\), \w+>",
    r"macro_rules! \w+",
    r"0x[0-9a-f]{8}",
    r"https?://[\w./-]+",
    r"TODO|FIXME",
    r"#\[cfg\(test\)\]",
    r"<h[1-3][^>]*>",
    r"zirconium\d+relay",
];
const LITERAL_QUERIES: &[&str] = &[
    "impl Iterator for",
    "Box<dyn Error>",
    "HashMap::new()",
    "#[inline]",
    "tokio::spawn",
    "Arc<Mutex<",
    "println!(",
    "std::io::Result",
    "where T: Clone",
    "pub(crate) fn",
    "serde::Deserialize",
    "PhantomData",
    "class=\"docblock\"",
    "&mut self",
    "quuxfrobnicate",
];

/// A folder of the corpus: the files a load reads, as a load source.
struct Part {
    root: PathBuf,
    /// Regex on the whole path (`--include`), or the extension of a default folder.
    include: Option<regex::Regex>,
    source: Value,
}

/// The corpus of the arguments, or the issue's default.
fn corpus(args: &[String]) -> Result<Vec<Part>, String> {
    let include = flag(args, "--include")
        .map(|r| regex::Regex::new(&r).map_err(|e| format!("--include {r}: {e}")))
        .transpose()?;
    let dirs: Vec<&String> = args
        .iter()
        .zip(args.iter().skip(1))
        .filter(|(f, _)| *f == "--corpus")
        .map(|(_, d)| d)
        .collect();
    if !dirs.is_empty() {
        return Ok(dirs
            .into_iter()
            .map(|d| {
                let root = std::path::absolute(d).unwrap_or_else(|_| PathBuf::from(d));
                let mut source = json!({"type": "directory", "path": root, "recursive": true});
                if let Some(inc) = &include {
                    source["include_pattern"] = json!(inc.as_str());
                }
                Part {
                    root,
                    include: include.clone(),
                    source,
                }
            })
            .collect());
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set; give --corpus DIR")?;
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running rustc --print sysroot (or give --corpus DIR): {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let glob = |root: PathBuf, ext: &str| Part {
        source: json!({"type": "glob", "path": root.join("**").join(format!("*.{ext}"))}),
        include: Some(regex::Regex::new(&format!(r"\.{ext}$")).expect("a valid regex")),
        root,
    };
    Ok(vec![
        glob(PathBuf::from(home).join(".cargo/registry/src"), "rs"),
        glob(PathBuf::from(sysroot).join("share/doc"), "html"),
    ])
}

/// Files and bytes a load of the corpus reads (what `bench/scale.py` counts).
fn corpus_size(parts: &[Part]) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    for p in parts {
        for e in walkdir::WalkDir::new(&p.root)
            .follow_links(true)
            .into_iter()
            .filter_map(Result::ok)
        {
            let path = e.path().to_string_lossy();
            if e.file_type().is_file() && p.include.as_ref().is_none_or(|r| r.is_match(&path)) {
                files += 1;
                bytes += e.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}

/// `RssAnon`, `RssFile` and `VmHWM` of this process, in MB (kB / 1024).
fn memory() -> [(&'static str, f64); 3] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    [
        ("rss_anon_mb", get("RssAnon:")),
        ("rss_file_mb", get("RssFile:")),
        ("vm_hwm_mb", get("VmHWM:")),
    ]
}

/// `{label}_p50_ms` and `{label}_p95_ms` of `queries` searched by `method`.
fn latencies(
    b: &Bench,
    sid: &str,
    queries: &[&str],
    (method, label): (&str, &str),
    out: &mut Vec<(String, f64)>,
) -> Result<(), String> {
    let mut lat = Vec::new();
    for q in queries {
        let (_, d) = b.search(sid, q, method)?;
        lat.push(ms(d));
    }
    lat.sort_by(f64::total_cmp);
    out.push((format!("{label}_p50_ms"), pct(&lat, 50.0)));
    out.push((format!("{label}_p95_ms"), pct(&lat, 95.0)));
    Ok(())
}

fn one_run(parts: &[Part], bytes: u64) -> Result<Vec<(String, f64)>, String> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let sources: Vec<Value> = parts.iter().map(|p| p.source.clone()).collect();
    let b = Bench::new(true)?;
    let sid = b.session()?;
    let (loaded, t) = b.timed(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": sources}),
    )?;
    out.push((
        "docs".into(),
        loaded["loaded_count"].as_f64().unwrap_or(0.0),
    ));
    out.push((
        "load_errors".into(),
        loaded["error_count"].as_f64().unwrap_or(0.0),
    ));
    out.push(("load_ms".into(), ms(t)));
    out.push(("load_mb_per_s".into(), bytes as f64 / 1e6 / t.as_secs_f64()));
    let (_, t) = b.search(&sid, FIRST_QUERY, "bm25")?;
    out.push(("first_bm25_ms".into(), ms(t)));
    for (k, v) in memory() {
        out.push((format!("after_first_bm25_{k}"), v));
    }
    latencies(&b, &sid, BM25_QUERIES, ("bm25", "bm25"), &mut out)?;
    latencies(&b, &sid, REGEX_QUERIES, ("regex", "regex"), &mut out)?;
    latencies(&b, &sid, LITERAL_QUERIES, ("literal", "literal"), &mut out)?;
    // What the daemon does once calls pause (`engine/index/compact.rs`:
    // the build's segments merged), then the bm25 queries again.
    let started = std::time::Instant::now();
    let done = b
        .engine
        .compact_index(rlmd::engine::COMPACTION_STEP_BYTES)
        .map_err(|e| format!("compacting the index: {}", e.message))?;
    out.push(("compaction_ms".into(), ms(started.elapsed())));
    out.push(("segments_merged".into(), done.segments as f64));
    out.push((
        "segments_left".into(),
        done.left.map_or(f64::NAN, |n| n as f64),
    ));
    latencies(&b, &sid, BM25_QUERIES, ("bm25", "bm25_compacted"), &mut out)?;
    let sid = b.session()?;
    let (again, t) = b.timed(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": sources}),
    )?;
    if again["loaded_count"] != loaded["loaded_count"] {
        return Err(format!(
            "the second load found {} documents, the first {}",
            again["loaded_count"], loaded["loaded_count"]
        ));
    }
    out.push(("load_2_ms".into(), ms(t)));
    let (_, t) = b.search(&sid, FIRST_QUERY, "bm25")?;
    out.push(("first_bm25_2_ms".into(), ms(t)));
    for (k, v) in memory() {
        out.push((format!("end_{k}"), v));
    }
    Ok(out)
}

/// `rlm-engine-bench scale`: medians of `--runs` fresh data folders.
pub(crate) fn scale(args: &[String]) -> Result<(), String> {
    let parts = corpus(args)?;
    let runs: usize = flag(args, "--runs")
        .map_or(Ok(3), |r| r.parse().map_err(|e| format!("--runs {r}: {e}")))?;
    let (files, bytes) = corpus_size(&parts);
    if files == 0 {
        return Err("the corpus has no file".into());
    }
    eprintln!(
        "rlm-engine-bench: scale: {files} files, {:.0} MB ({runs} runs)",
        bytes as f64 / 1e6
    );
    let mut all = Vec::new();
    for i in 0..runs {
        all.push(one_run(&parts, bytes)?);
        eprintln!("rlm-engine-bench: scale: run {} done", i + 1);
    }
    let mut summary = serde_json::Map::new();
    summary.insert("files".into(), json!(files));
    summary.insert("corpus_mb".into(), json!(round3(bytes as f64 / 1e6)));
    let keys: Vec<String> = all[0].iter().map(|(k, _)| k.clone()).collect();
    for k in &keys {
        let vals: Vec<f64> = all
            .iter()
            .filter_map(|r| r.iter().find(|(kk, _)| kk == k).map(|(_, v)| *v))
            .collect();
        summary.insert(
            k.clone(),
            json!({"median": round3(median(vals.clone())), "runs": vals.iter().map(|v| round3(*v)).collect::<Vec<_>>()}),
        );
    }
    if has(args, "--json") {
        println!("{}", Value::Object(summary));
    } else {
        println!("{files} files, {:.0} MB", bytes as f64 / 1e6);
        println!("{:<40} {:>12}   runs", "figure (median)", "value");
        for k in &keys {
            let v = &summary[k];
            println!("{:<40} {:>12}   {}", k, v["median"], v["runs"]);
        }
    }
    Ok(())
}
