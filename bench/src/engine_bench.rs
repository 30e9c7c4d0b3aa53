//! `rlm-engine-bench`: the engine measured in-process on a corpus folder
//! (default: the `.py` files of this machine's CPython standard library),
//! and the needle-in-a-haystack check of retrieval quality.
//!
//! ```text
//! rlm-engine-bench [--corpus DIR] [--runs N] [--json]
//! rlm-engine-bench niah --planted DIR [--limit 5] [--context-chars 200]
//! rlm-engine-bench micro [--corpus DIR] [--include REGEX] [--rounds 20] [--only bm25|regex|literal|info]
//! rlm-engine-bench index-build [--corpus DIR] [--include REGEX] [--bytes 12582912]
//! rlm-engine-bench index-phases [--corpus DIR] [--include REGEX] [--bytes 12582912]
//! rlm-engine-bench scan [--corpus DIR]
//! rlm-engine-bench chunk
//! rlm-engine-bench reload [--corpus DIR] [--runs 3] [--all]
//! rlm-engine-bench scale [--corpus DIR]... [--include REGEX] [--runs 3] [--json]
//! rlm-engine-bench tokens FILE...
//! ```
//!
//! `micro` times only the searches (and `session.info`), each query many times on one
//! loaded session: steadier figures for comparing two builds on a busy machine.
//!
//! `index-build`, `index-phases`, `scan` and `chunk` time the engine's parts
//! alone (the passage index, the scanners, the chunkers), see `parts.rs`.
//!
//! `reload` times a load of the corpus into a fresh data folder, then the
//! same load into a second session on that folder (files the store already
//! holds, unchanged): medians of `--runs` fresh folders. `--all` loads
//! every file of the folder, not only the `.py` files.
//!
//! `scale` is the scale benchmark of issue 10 in-process, on a big corpus
//! (default: the crate sources and the toolchain's docs), see `scale.rs`.
//!
//! `tokens` prints each file's characters and estimated tokens (the estimate
//! the response caps use, `rlm::tokens`), for `bench/answers.py`.
//!
//! `RLM_BENCH_ANALYZER=stop=0;stem=1` measures another text analysis;
//! `RLM_BENCH_WORD_FORMS=1` searches with a query word's forms in every session, `0` in none
//! (`[search] word_forms`; unset: its default, in sessions mostly of prose).
//!
//! malloc is set up as the daemon sets it (`rlmd::alloc::tune`); a
//! `glibc.malloc.` tunable in `GLIBC_TUNABLES` measures glibc as set there.

// The report is this program's output (stdout is kept clean only in the shim).
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod parts;
mod scale;

use rlm::config::WordForms;
use rlmd::search::analyzer::AnalyzerOptions;
use rlmd::{CallContext, Engine, EngineConfig};

/// The queries of `shared/bench/mcp_bench.py`, so figures compare.
const FIRST_QUERY: &str = "open file and read lines";
const BM25_QUERIES: &[&str] = &[
    "parse http header",
    "thread pool executor shutdown",
    "json decode error",
    "socket connection timeout",
    "read configuration file sections",
    "compress data with zlib",
    "temporary directory cleanup",
    "subprocess pipe communicate",
    "email message attachment",
    "base64 encode bytes",
    "unicode normalization",
    "date time format string",
    "regular expression compile flags",
    "asyncio event loop run until complete",
    "ssl certificate verification",
    "url quote unquote",
    "csv reader dialect",
    "logging handler rotating file",
    "pickle protocol persistent id",
    "xml element tree parse",
    "sqlite cursor execute",
    "random seed shuffle",
    "decimal rounding context precision",
    "fraction limit denominator",
    "heap push pop priority queue",
    "ordered dict move to end",
    "lru cache decorator",
    "abstract base class register",
    "dataclass field default factory",
    "enum auto value",
    "argparse add argument subparsers",
    "signal handler interrupt",
    "mmap file memory",
    "shutil copy tree permissions",
    "glob pattern match files",
    "tar archive extract members",
    "zip file write compression",
    "hash digest sha256",
    "hmac compare digest",
    "secrets token bytes",
    "uuid generate random",
    "struct pack unpack format",
    "locale currency format",
    "gettext translation catalog",
    "cookie jar http response",
    "smtp send mail login",
    "ftp retrieve binary",
    "multiprocessing queue process pool",
    "weak reference callback finalize",
    "traceback format exception",
];
const REGEX_QUERIES: &[&str] = &[
    r"def __\w+__\(self",
    r"class \w+Error\(",
    r"raise \w+Error\(",
    r"except \w+ as \w+:",
    r"@(staticmethod|classmethod)",
    r"self\.\w+ = None",
    r"return [A-Z]\w+\(",
    r"\d{4}-\d{2}-\d{2}",
    r"https?://[\w./-]+",
    r"TODO|XXX|FIXME",
    r"async def \w+",
    r"yield from \w+",
    r"lambda \w+: \w+",
    r"os\.environ\.get\(",
    r"[A-Z_]{12,} = \d+",
    r"with open\([^)]*\) as \w+",
    r"isinstance\(\w+, \(\w+, \w+\)\)",
    r"0x[0-9a-f]{8}",
    r"zirconium\d+relay",
    r"def \w+_nonexistent_xyz\(",
];
const LITERAL_QUERIES: &[&str] = &[
    "ThreadPoolExecutor",
    "json.loads",
    "raise NotImplementedError",
    "socket.AF_INET",
    "__all__",
    "import os",
    "if __name__ == '__main__':",
    "encoding='utf-8'",
    "self._lock",
    "DeprecationWarning",
    "sys.platform",
    "struct.pack",
    "return None",
    "bytearray(",
    "os.path.join",
    "functools.wraps",
    "isinstance(",
    "@property",
    "zirconium relay",
    "quuxfrobnicate",
];

/// Folders `shared/bench/prepare_corpora.py` leaves out of the corpus.
pub(crate) const EXCLUDED_DIRS: &str = r"/(site-packages|__pycache__|test|tests|idle_test)/";

fn main() -> ExitCode {
    rlmd::alloc::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("niah") => niah(rest),
        Some("micro") => micro(rest),
        Some("index-build") => corpus_and_bytes(rest)
            .and_then(|(c, b)| Ok((c, b, include(rest)?)))
            .and_then(|(c, b, i)| parts::index_build(&c, &i, b)),
        Some("index-phases") => corpus_and_bytes(rest)
            .and_then(|(c, b)| Ok((c, b, include(rest)?)))
            .and_then(|(c, b, i)| parts::index_phases(&c, &i, b)),
        Some("scan") => corpus_and_bytes(rest).and_then(|(c, _)| parts::scan(&c)),
        Some("units") => corpus_and_bytes(rest)
            .and_then(|(c, b)| Ok((c, b, include(rest)?)))
            .and_then(|(c, b, i)| parts::units(&c, &i, b)),
        Some("chunk") => parts::chunk_100mb(),
        Some("reload") => reload(rest),
        Some("scale") => scale::scale(rest),
        Some("tokens") => tokens(rest),
        _ => bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rlm-engine-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tokens FILE...`: one line per file, `chars<TAB>estimated tokens<TAB>path`.
fn tokens(files: &[String]) -> Result<(), String> {
    if files.is_empty() {
        return Err("tokens: name the files to measure".into());
    }
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{f}: {e}"))?;
        println!(
            "{}\t{}\t{f}",
            text.chars().count(),
            rlm::tokens::estimate(&text)
        );
    }
    Ok(())
}

/// `--corpus DIR` (default: this python3's standard library) and `--bytes N`
/// (default 12 MiB) of the modes that time the engine's parts.
fn corpus_and_bytes(args: &[String]) -> Result<(PathBuf, usize), String> {
    let corpus = match flag(args, "--corpus") {
        Some(c) => PathBuf::from(c),
        None => default_corpus()?,
    };
    let bytes = flag(args, "--bytes").map_or(Ok(12 << 20), |b| {
        b.parse().map_err(|e| format!("--bytes {b}: {e}"))
    })?;
    Ok((corpus, bytes))
}

/// `--include REGEX` (default: `\.py$`), on the whole path.
fn include(args: &[String]) -> Result<regex::Regex, String> {
    let pattern = flag(args, "--include").unwrap_or_else(|| r"\.py$".into());
    regex::Regex::new(&pattern).map_err(|e| format!("--include {pattern}: {e}"))
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn has(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

/// One engine on a fresh data folder, with a session that will not run out of calls.
struct Bench {
    engine: Engine,
    ctx: CallContext,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new(background_index: bool) -> Result<Bench, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
        let mut config = EngineConfig::new(dir.path().join("data"));
        config.background_index = background_index;
        if let Ok(desc) = std::env::var("RLM_BENCH_ANALYZER") {
            config.analyzer = AnalyzerOptions::parse(&desc).ok_or_else(|| {
                format!("RLM_BENCH_ANALYZER={desc:?}: expected e.g. stop=1;stem=0")
            })?;
        }
        if let Ok(v) = std::env::var("RLM_BENCH_WORD_FORMS") {
            config.word_forms = match v.as_str() {
                "1" | "true" | "always" => WordForms::Always,
                "0" | "false" | "never" => WordForms::Never,
                "prose" => WordForms::Prose,
                _ => {
                    return Err(format!(
                        "RLM_BENCH_WORD_FORMS={v:?}: expected 1 (always), 0 (never) or prose"
                    ));
                }
            };
        }
        let engine = Engine::open(config).map_err(|e| format!("opening the engine: {e}"))?;
        Ok(Bench {
            engine,
            ctx: CallContext::default(),
            _dir: dir,
        })
    }

    /// A fresh engine on the same data (a restarted daemon): no text is
    /// open, so the next read of each pays its first open (map and verify).
    fn reopen(&mut self) -> Result<(), String> {
        self.engine = Engine::open(self.engine.config().clone())
            .map_err(|e| format!("reopening the engine: {e}"))?;
        Ok(())
    }

    fn call(&self, tool: &str, args: Value) -> Result<Value, String> {
        self.engine
            .call(tool, args, &self.ctx)
            .map_err(|e| format!("{tool}: {e}"))
    }

    fn timed(&self, tool: &str, args: Value) -> Result<(Value, Duration), String> {
        let t = Instant::now();
        let v = self.call(tool, args)?;
        Ok((v, t.elapsed()))
    }

    /// Every document of the session, paging `rlm.docs.list`.
    fn documents(&self, sid: &str) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let page = self.call(
                "rlm.docs.list",
                json!({"session_id": sid, "limit": 10000, "offset": offset}),
            )?;
            let n = page["documents"].as_array().map_or(0, Vec::len);
            all.extend(page["documents"].as_array().cloned().unwrap_or_default());
            match page["next_offset"].as_u64() {
                Some(next) if n > 0 => offset = next,
                _ => return Ok(all),
            }
        }
    }

    fn session(&self) -> Result<String, String> {
        let v = self.call(
            "rlm.session.create",
            json!({"config": {"max_tool_calls": 1_000_000}}),
        )?;
        Ok(v["session_id"].as_str().unwrap_or_default().to_owned())
    }

    fn load(&self, sid: &str, corpus: &Path) -> Result<(Value, Duration), String> {
        self.load_matching(sid, corpus, r"\.py$")
    }

    /// A load of the files of `corpus` whose path matches `include`.
    fn load_matching(
        &self,
        sid: &str,
        corpus: &Path,
        include: &str,
    ) -> Result<(Value, Duration), String> {
        self.timed(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{
                "type": "directory", "path": corpus, "recursive": true,
                "include_pattern": include, "exclude_pattern": EXCLUDED_DIRS,
            }]}),
        )
    }

    fn search(&self, sid: &str, query: &str, method: &str) -> Result<(Value, Duration), String> {
        self.timed(
            "rlm.search.query",
            json!({"session_id": sid, "query": query, "method": method, "limit": 10, "context_chars": 200}),
        )
    }
}

fn default_corpus() -> Result<PathBuf, String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .map_err(|e| {
            format!("running python3 to find the standard library (or pass --corpus DIR): {e}")
        })?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if path.is_empty() {
        return Err("python3 printed no stdlib path; pass --corpus DIR".into());
    }
    Ok(PathBuf::from(path))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile, as the Python harness computes it.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Latency percentiles of a set of queries.
fn latencies(b: &Bench, sid: &str, queries: &[&str], method: &str) -> Result<(f64, f64), String> {
    let mut lat = Vec::new();
    for q in queries {
        let (_, d) = b.search(sid, q, method)?;
        lat.push(ms(d));
    }
    lat.sort_by(f64::total_cmp);
    Ok((pct(&lat, 50.0), pct(&lat, 95.0)))
}

fn one_run(corpus: &Path) -> Result<Vec<(&'static str, f64)>, String> {
    let mut out = Vec::new();
    // Load, then search at once: the search waits for (or does) the build.
    let mut b = Bench::new(true)?;
    let sid = b.session()?;
    let (loaded, load_t) = b.load(&sid, corpus)?;
    let (_, first_t) = b.search(&sid, FIRST_QUERY, "bm25")?;
    let bytes: u64 = walk_bytes(corpus);
    out.push(("corpus_mb", bytes as f64 / 1e6));
    out.push(("docs", loaded["loaded_count"].as_f64().unwrap_or(0.0)));
    out.push(("load_ms", ms(load_t)));
    out.push(("load_mb_per_s", bytes as f64 / 1e6 / load_t.as_secs_f64()));
    out.push(("first_bm25_ms", ms(first_t)));
    out.push(("load_plus_first_bm25_ms", ms(load_t + first_t)));
    let (p50, p95) = latencies(&b, &sid, BM25_QUERIES, "bm25")?;
    out.push(("bm25_p50_ms", p50));
    out.push(("bm25_p95_ms", p95));
    let (p50, p95) = latencies(&b, &sid, REGEX_QUERIES, "regex")?;
    out.push(("regex_p50_ms", p50));
    out.push(("regex_p95_ms", p95));
    let (p50, p95) = latencies(&b, &sid, LITERAL_QUERIES, "literal")?;
    out.push(("literal_p50_ms", p50));
    out.push(("literal_p95_ms", p95));
    // Chunking and span.get on the largest document.
    let all = b.documents(&sid)?;
    let largest = all
        .iter()
        .max_by_key(|d| d["length_chars"].as_u64().unwrap_or(0))
        .ok_or("the corpus has no documents")?;
    let doc_id = largest["doc_id"].clone();
    let (_, lines_t) = b.timed(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc_id, "strategy": {"type": "lines", "line_count": 100}}),
    )?;
    let (fixed, fixed_t) = b.timed(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc_id, "strategy": {"type": "fixed", "chunk_size": 2000}}),
    )?;
    out.push((
        "largest_doc_chars",
        largest["length_chars"].as_f64().unwrap_or(0.0),
    ));
    out.push(("chunk_lines100_ms", ms(lines_t)));
    out.push(("chunk_fixed2000_ms", ms(fixed_t)));
    let spans = fixed["spans"].as_array().cloned().unwrap_or_default();
    let ids: Vec<Value> = (0..10.min(spans.len()))
        .map(|i| spans[i * spans.len() / 10]["span_id"].clone())
        .collect();
    let mut single = Vec::new();
    for id in &ids {
        let (_, d) = b.timed("rlm.span.get", json!({"session_id": sid, "span_ids": [id]}))?;
        single.push(ms(d));
    }
    single.sort_by(f64::total_cmp);
    let (_, batch_t) = b.timed("rlm.span.get", json!({"session_id": sid, "span_ids": ids}))?;
    out.push(("span_get_one_p50_ms", pct(&single, 50.0)));
    out.push(("span_get_ten_ms", ms(batch_t)));
    // The first read of the largest text after a restart pays its open (the
    // mapping, and the SHA-256 check of the whole text); the next does not.
    b.reopen()?;
    let peek = json!({"session_id": sid, "doc_id": doc_id, "start": 0, "end": 1000});
    let (_, cold) = b.timed("rlm.docs.peek", peek.clone())?;
    let (_, warm) = b.timed("rlm.docs.peek", peek)?;
    out.push(("peek_cold_largest_ms", ms(cold)));
    out.push(("peek_warm_largest_ms", ms(warm)));
    b.reopen()?;
    let one = json!({"session_id": sid, "span_ids": [ids.first().cloned().unwrap_or_default()]});
    let (_, cold) = b.timed("rlm.span.get", one)?;
    out.push(("span_get_cold_largest_ms", ms(cold)));
    let mut info = Vec::new();
    for _ in 0..300 {
        let (_, d) = b.timed("rlm.session.info", json!({"session_id": sid}))?;
        info.push(ms(d));
    }
    info.sort_by(f64::total_cmp);
    out.push(("session_info_p50_ms", pct(&info, 50.0)));
    drop(b);

    // Load, then search a second later: the background build is done by then.
    let b = Bench::new(true)?;
    let sid = b.session()?;
    b.load(&sid, corpus)?;
    std::thread::sleep(Duration::from_secs(1));
    let (r, first_t) = b.search(&sid, FIRST_QUERY, "bm25")?;
    out.push(("first_bm25_after_1s_ms", ms(first_t)));
    out.push((
        "first_bm25_after_1s_built_this_call",
        f64::from(u8::from(r["index_built_this_call"] == true)),
    ));
    drop(b);

    // The index build alone, on demand (no background build).
    let b = Bench::new(false)?;
    let sid = b.session()?;
    b.load(&sid, corpus)?;
    let (_, build_t) = b.search(&sid, FIRST_QUERY, "bm25")?;
    out.push(("first_bm25_no_background_ms", ms(build_t)));
    out.push(("peak_rss_mb", peak_rss_mb()));
    Ok(out)
}

fn walk_bytes(corpus: &Path) -> u64 {
    let exclude = regex::Regex::new(EXCLUDED_DIRS).expect("a valid regex");
    walkdir::WalkDir::new(corpus)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let p = e.path().to_string_lossy();
            p.ends_with(".py") && !exclude.is_match(&p)
        })
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .sum()
}

fn bench(args: &[String]) -> Result<(), String> {
    if has(args, "--help") {
        println!(
            "usage: rlm-engine-bench [--corpus DIR] [--runs N] [--json]\n       rlm-engine-bench niah --planted DIR [--limit N] [--context-chars N]\n       rlm-engine-bench micro [--corpus DIR] [--rounds N] [--only bm25|regex|literal|info]\n       rlm-engine-bench index-build|index-phases [--corpus DIR] [--include REGEX] [--bytes N]\n       rlm-engine-bench scan [--corpus DIR]
       rlm-engine-bench units [--corpus DIR] [--include REGEX] [--bytes N]\n       rlm-engine-bench chunk\n       rlm-engine-bench reload [--corpus DIR] [--runs N] [--all]\n       rlm-engine-bench scale [--corpus DIR]... [--include REGEX] [--runs N] [--json]"
        );
        return Ok(());
    }
    let corpus = match flag(args, "--corpus") {
        Some(c) => PathBuf::from(c),
        None => default_corpus()?,
    };
    let runs: usize = flag(args, "--runs")
        .map_or(Ok(3), |r| r.parse().map_err(|e| format!("--runs {r}: {e}")))?;
    eprintln!(
        "rlm-engine-bench: corpus {} ({runs} runs; release build recommended)",
        corpus.display()
    );
    let mut all: Vec<Vec<(&'static str, f64)>> = Vec::new();
    for i in 0..runs {
        let r = one_run(&corpus)?;
        eprintln!("rlm-engine-bench: run {} done", i + 1);
        all.push(r);
    }
    let keys: Vec<&str> = all[0].iter().map(|(k, _)| *k).collect();
    let mut summary = serde_json::Map::new();
    for k in &keys {
        let vals: Vec<f64> = all
            .iter()
            .filter_map(|r| r.iter().find(|(kk, _)| kk == k).map(|(_, v)| *v))
            .collect();
        summary.insert((*k).to_owned(), json!({"median": round3(median(vals.clone())), "runs": vals.iter().map(|v| round3(*v)).collect::<Vec<_>>()}));
    }
    if has(args, "--json") {
        println!("{}", Value::Object(summary));
    } else {
        println!("{:<40} {:>12}   runs", "figure (median)", "value");
        for k in keys {
            let v = &summary[k];
            println!("{:<40} {:>12}   {}", k, v["median"], v["runs"]);
        }
    }
    Ok(())
}

/// A first load into a fresh data folder, then a second session's load of
/// the same (unchanged) files on that folder, `--runs` times.
fn reload(args: &[String]) -> Result<(), String> {
    let corpus = match flag(args, "--corpus") {
        Some(c) => PathBuf::from(c),
        None => default_corpus()?,
    };
    let runs: usize = flag(args, "--runs")
        .map_or(Ok(3), |r| r.parse().map_err(|e| format!("--runs {r}: {e}")))?;
    let all = has(args, "--all");
    let load = |b: &Bench, sid: &str| {
        if all {
            b.timed(
                "rlm.docs.load",
                json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus, "recursive": true}]}),
            )
        } else {
            b.load(sid, &corpus)
        }
    };
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut docs = 0.0;
    for _ in 0..runs {
        let b = Bench::new(false)?;
        let sid = b.session()?;
        let (loaded, t) = load(&b, &sid)?;
        first.push(ms(t));
        let sid = b.session()?;
        let (again, t) = load(&b, &sid)?;
        second.push(ms(t));
        if again["loaded_count"] != loaded["loaded_count"] {
            return Err(format!(
                "the second load found {} documents, the first {}",
                again["loaded_count"], loaded["loaded_count"]
            ));
        }
        docs = loaded["loaded_count"].as_f64().unwrap_or(0.0);
    }
    println!(
        "{}",
        json!({
            "corpus": corpus,
            "docs": docs,
            "first_load_ms": {"median": round3(median(first.clone())), "runs": first},
            "second_session_load_ms": {"median": round3(median(second.clone())), "runs": second},
        })
    );
    Ok(())
}

/// Search latencies only, many rounds on one loaded session (less noise than
/// the full bench): per method, the p50 over the queries of each query's
/// median and of its minimum over the rounds, and the median of the rounds'
/// p50s.
fn micro(args: &[String]) -> Result<(), String> {
    let corpus = match flag(args, "--corpus") {
        Some(c) => PathBuf::from(c),
        None => default_corpus()?,
    };
    let rounds: usize = flag(args, "--rounds").map_or(Ok(20), |r| {
        r.parse().map_err(|e| format!("--rounds {r}: {e}"))
    })?;
    let only = flag(args, "--only");
    let include = flag(args, "--include").unwrap_or_else(|| r"\.py$".to_owned());
    let b = Bench::new(false)?;
    let sid = b.session()?;
    b.load_matching(&sid, &corpus, &include)?;
    b.search(&sid, FIRST_QUERY, "bm25")?;
    let mut report = serde_json::Map::new();
    for (method, queries) in [
        ("bm25", BM25_QUERIES),
        ("regex", REGEX_QUERIES),
        ("literal", LITERAL_QUERIES),
        ("info", &[""][..]),
    ] {
        if only.as_deref().is_some_and(|o| o != method) {
            continue;
        }
        let mut per_query: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
        let mut round_p50 = Vec::new();
        for _ in 0..rounds {
            let mut lat = Vec::new();
            for (i, q) in queries.iter().enumerate() {
                let d = if method == "info" {
                    b.timed("rlm.session.info", json!({"session_id": sid}))?.1
                } else {
                    b.search(&sid, q, method)?.1
                };
                per_query[i].push(ms(d));
                lat.push(ms(d));
            }
            lat.sort_by(f64::total_cmp);
            round_p50.push(pct(&lat, 50.0));
        }
        let mut mins: Vec<f64> = per_query
            .iter()
            .map(|v| v.iter().copied().fold(f64::INFINITY, f64::min))
            .collect();
        mins.sort_by(f64::total_cmp);
        let mut med: Vec<f64> = per_query.into_iter().map(median).collect();
        med.sort_by(f64::total_cmp);
        report.insert(
            method.to_owned(),
            json!({
                "p50_of_query_medians": round3(pct(&med, 50.0)),
                "p50_of_query_mins": round3(pct(&mins, 50.0)),
                "median_round_p50": round3(median(round_p50)),
            }),
        );
    }
    println!("{}", Value::Object(report));
    Ok(())
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Retrieval quality on a corpus planted by `bench/niah_plant.py`
/// (the needles of `shared/bench/niah.py`), scored as that script scores.
fn niah(args: &[String]) -> Result<(), String> {
    let planted = PathBuf::from(
        flag(args, "--planted").ok_or("niah needs --planted DIR (made by niah_plant.py)")?,
    );
    let limit: u64 =
        flag(args, "--limit").map_or(Ok(5), |v| v.parse().map_err(|e| format!("--limit: {e}")))?;
    let context: u64 = flag(args, "--context-chars").map_or(Ok(200), |v| {
        v.parse().map_err(|e| format!("--context-chars: {e}"))
    })?;
    let needles: Value = serde_json::from_str(
        &std::fs::read_to_string(planted.join("needles.json"))
            .map_err(|e| format!("reading needles.json: {e}"))?,
    )
    .map_err(|e| format!("parsing needles.json: {e}"))?;
    let needles = needles.as_array().ok_or("needles.json is not a list")?;
    let b = Bench::new(true)?;
    let sid = b.session()?;
    let (loaded, _) = b.timed(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": planted.join("corpus"), "recursive": true, "include_pattern": r"\.py$"}]}),
    )?;
    let id2path: std::collections::HashMap<String, String> = b
        .documents(&sid)?
        .iter()
        .map(|d| {
            (
                d["doc_id"].as_str().unwrap_or_default().to_owned(),
                d["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    eprintln!(
        "rlm-engine-bench: niah loaded {} docs",
        loaded["loaded_count"]
    );
    let mut report = serde_json::Map::new();
    // "variants" is ours, not niah.py's: plural forms the needle does not
    // contain, to see what stemming buys.
    for style in ["keywords", "question", "variants"] {
        let (mut h1, mut h5) = (0, 0);
        let mut misses = Vec::new();
        for n in needles {
            let (lead, metal, device) = (
                n["lead"].as_str().unwrap_or(""),
                n["metal"].as_str().unwrap_or(""),
                n["device"].as_str().unwrap_or(""),
            );
            let q = match style {
                "keywords" => format!("{lead} {metal} {device}"),
                "question" => format!("What is the {lead} of the {metal} {device}?"),
                _ => format!("{lead}s of {metal} {device}s"),
            };
            let r = b.call(
                "rlm.search.query",
                json!({"session_id": sid, "query": q, "method": "bm25", "limit": limit, "context_chars": context}),
            )?;
            let want = std::fs::canonicalize(n["file"].as_str().unwrap_or("")).unwrap_or_default();
            let sentence = n["sentence"].as_str().unwrap_or("");
            let rank = r["matches"].as_array().and_then(|ms| {
                ms.iter().position(|m| {
                    let p = id2path
                        .get(m["doc_id"].as_str().unwrap_or(""))
                        .map(PathBuf::from)
                        .unwrap_or_default();
                    p == want && m["context"].as_str().unwrap_or("").contains(sentence)
                })
            });
            match rank {
                Some(0) => {
                    h1 += 1;
                    h5 += 1;
                }
                Some(r) if r < 5 => h5 += 1,
                _ => misses.push(json!({"query": q, "rank": rank.map(|r| r + 1)})),
            }
        }
        let k = needles.len().max(1) as f64;
        report.insert(
            style.to_owned(),
            json!({"hit@1": round3(h1 as f64 / k), "hit@5": round3(h5 as f64 / k), "hits@1": h1, "hits@5": h5, "n": needles.len(), "misses": misses}),
        );
    }
    println!("{}", Value::Object(report));
    Ok(())
}
