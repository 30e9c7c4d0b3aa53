//! Nothing a client sends crashes the engine or corrupts the store;
//! concurrent loads stay exact; progress is reported; file loads stay
//! inside the allowed folders.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Mutex};

use proptest::prelude::*;
use rlm::tools::Tool;
use rlmd::{CallContext, CallError};
use serde_json::{Map, Value, json};

use crate::common::*;

#[test]
fn loads_report_progress_to_a_client_that_asks() {
    let env = Env::new();
    let sid = env.session();
    type Seen = Mutex<Vec<(u64, Option<u64>)>>;
    let seen: Arc<Seen> = Arc::default();
    let sink = seen.clone();
    let mut ctx = CallContext::with_cwd(env.dir.path());
    ctx.progress = Some(Arc::new(move |done, total, _msg: &str| {
        sink.lock().unwrap().push((done, total));
    }));
    let sources: Vec<Value> = (0..200)
        .map(|i| json!({"type": "inline", "content": format!("progress document {i}")}))
        .collect();
    let r = ok(
        "load",
        env.engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": sources}),
            &ctx,
        ),
    );
    assert_eq!(r["loaded_count"], 200);
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "progress was reported");
    assert!(
        seen.iter().all(|&(d, t)| t == Some(200) && d <= 200),
        "{seen:?}"
    );
    assert_eq!(seen.iter().map(|&(d, _)| d).max(), Some(200), "{seen:?}");
}

#[test]
fn files_outside_the_allowed_folders_are_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(allowed.join("in.txt"), "inside").unwrap();
    std::fs::write(outside.join("secret.txt"), "outside secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("secret.txt"), allowed.join("link.txt")).unwrap();
    let env = Env::with(|c| {
        c.allowed_roots = Some(vec![allowed.clone()]);
    });
    let sid = env.session();
    let ctx = CallContext::with_cwd(&allowed);
    let r = ok(
        "load",
        env.engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [
                {"type": "file", "path": "in.txt"},
                {"type": "file", "path": "../outside/secret.txt"},
                {"type": "file", "path": outside.join("secret.txt").display().to_string()},
                {"type": "directory", "path": "."}
            ]}),
            &ctx,
        ),
    );
    let hashes: BTreeSet<&str> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["content_hash"].as_str().unwrap())
        .collect();
    assert_eq!(
        hashes,
        BTreeSet::from([sha256_hex(b"inside").as_str()]),
        "only the allowed file loads (twice: by name and from the directory): {r}"
    );
    let errors = serde_json::to_string(&r["errors"]).unwrap();
    assert!(errors.contains("secret.txt"), "{errors}");
    assert!(u64_of(&r, "error_count") >= 2, "{r}");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM blobs WHERE hash = ?1",
            [sha256_hex(b"outside secret")]
        ),
        0,
        "the outside text was never stored"
    );
}

/// With allowed_roots set, a path outside them is refused before the file
/// system is asked anything: a file that exists and one that does not get
/// the same answer, and a folder or glob outside lists none of its files.
#[test]
fn paths_outside_the_allowed_folders_tell_nothing_of_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(allowed.join("sub")).unwrap();
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("exists.txt"), "outside").unwrap();
    std::fs::write(outside.join("deep/private-name.txt"), "outside").unwrap();
    let env = Env::with(|c| {
        c.allowed_roots = Some(vec![allowed.clone()]);
    });
    let sid = env.session();
    let ctx = CallContext::with_cwd(allowed.join("sub"));
    let r = ok(
        "load",
        env.engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [
                {"type": "file", "path": "../../outside/exists.txt"},
                {"type": "file", "path": "../../outside/missing.txt"},
                {"type": "directory", "path": "../../outside", "recursive": true},
                {"type": "glob", "path": "../../outside/**/*.txt"}
            ]}),
            &ctx,
        ),
    );
    assert_eq!(r["loaded_count"], 0, "{r}");
    let errors = errors_of(&r);
    assert_eq!(errors.len(), 4, "{r}");
    for e in &errors {
        assert!(
            e.contains("outside the folders this server may read"),
            "{e}"
        );
        assert!(
            !e.contains("private-name"),
            "a name outside was listed: {e}"
        );
    }
    assert_eq!(
        errors[0].replace("exists.txt", "X"),
        errors[1].replace("missing.txt", "X"),
        "an existing and a missing file get the same answer"
    );
}

#[test]
fn concurrent_loads_from_two_engines_are_all_kept_exactly() {
    let env = Env::new();
    // One page lists all 60 documents (ids and hashes weigh many tokens).
    let sid = env.session_with(json!({"max_tokens_per_response": 100_000}));
    let other = env.reopen();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let engine = if t % 2 == 0 {
                env.engine.clone()
            } else {
                other.clone()
            };
            let (barrier, sid) = (barrier.clone(), sid.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut ids = Vec::new();
                for i in 0..5 {
                    let r = ok(
                        "load",
                        engine.call(
                            "rlm.docs.load",
                            json!({"session_id": sid, "sources": [
                                {"type": "inline", "content": format!("thread {t} load {i} ünïcode")},
                                {"type": "inline", "content": "the same text in every load"}
                            ]}),
                            &CallContext::default(),
                        ),
                    );
                    for d in r["loaded"].as_array().unwrap() {
                        ids.push(d["doc_id"].as_str().unwrap().to_owned());
                    }
                }
                ids
            })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for h in handles {
        ids.extend(h.join().expect("no thread panics"));
    }
    assert_eq!(ids.len(), 60);
    let info = env.info(&sid);
    assert_eq!(info["document_count"], 60);
    let expected_chars: u64 = (0..6)
        .flat_map(|t| (0..5).map(move |i| char_len(&format!("thread {t} load {i} ünïcode"))))
        .sum::<u64>()
        + 30 * char_len("the same text in every load");
    assert_eq!(info["total_chars"], expected_chars);
    let list = env.call("rlm.docs.list", json!({"session_id": sid, "limit": 1000}));
    let listed: BTreeSet<String> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(env.count("SELECT count(*) FROM blobs", []), 31);
    // Every document is searchable.
    let r = env.search(
        &sid,
        json!({"query": "same text", "method": "literal", "limit": 100}),
    );
    assert_eq!(r["total_matches"], 30);
}

// ------------------------------------------------------------------ fuzz

const KEYS: &[&str] = &[
    "session_id",
    "doc_id",
    "doc_ids",
    "span_id",
    "span_ids",
    "artifact_id",
    "sources",
    "type",
    "content",
    "path",
    "name",
    "recursive",
    "include_pattern",
    "exclude_pattern",
    "token_count_hint",
    "strategy",
    "chunk_size",
    "overlap",
    "line_count",
    "delimiter",
    "max_chunks",
    "start",
    "end",
    "query",
    "method",
    "limit",
    "offset",
    "context_chars",
    "config",
    "max_tool_calls",
    "max_chars_per_response",
    "max_chars_per_peek",
    "chunk_cache_enabled",
    "model_hints",
    "span",
    "provenance",
    "bogus_key",
];

const STRINGS: &[&str] = &[
    "$SID",
    "$SID",
    "$DOC",
    "$DOC",
    "$SPAN",
    "$ART",
    "inline",
    "file",
    "glob",
    "directory",
    "fixed",
    "lines",
    "delimiter",
    "bm25",
    "regex",
    "literal",
    "summary",
    "a.txt",
    "sub",
    "sub/**/*",
    "*.txt",
    ".",
    "missing.txt",
    "bin.dat",
    "(",
    "[a-",
    "\\n",
    "a|b*",
    ".*",
    "(?i)ü+",
    "x{1000}{1000}",
    "needle",
    "héllo 😀",
    "e\u{301}",
    "\u{0}",
    " ",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..40).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        "\\PC{1,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn call_args() -> impl Strategy<Value = (usize, Value, bool)> {
    (
        0..Tool::ALL.len(),
        prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..7),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(tool, kv, with_session)| {
            let mut args: Map<String, Value> =
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if with_session {
                args.insert("session_id".into(), Value::from("$SID"));
            }
            (tool, Value::Object(args), with_session)
        })
}

/// Replaces the `$` placeholders by real ids.
fn fill(v: &mut Value, ids: &[(&str, &str)]) {
    match v {
        Value::String(s) => {
            for (k, id) in ids {
                if s == k {
                    *s = (*id).to_owned();
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill(x, ids)),
        Value::Object(o) => o.values_mut().for_each(|x| fill(x, ids)),
        _ => {}
    }
}

#[test]
fn nothing_a_client_sends_crashes_the_engine_or_corrupts_the_store() {
    let env = Env::with(|c| c.max_file_size_mb = 1);
    let work = env.dir.path().join("work");
    for (rel, bytes) in [
        ("a.txt", "the needle is here\n".as_bytes()),
        ("sub/b.txt", "héllo 😀 e\u{301}\n".as_bytes()),
        ("sub/deep/c.md", "## one\n## two\n".as_bytes()),
        ("bin.dat", b"\xff\xfe\x00binary"),
    ] {
        let p = work.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let engine = rlmd::Engine::open({
        let mut c = env.engine.config().clone();
        c.allowed_roots = Some(vec![work.clone()]);
        c
    })
    .unwrap();
    let ctx = CallContext::with_cwd(&work);
    let sid = session_on(&engine, &ctx, json!({}));
    let text = "A document with a needle, héllo 😀, and\nseveral lines\n## of text\n";
    let r = ok(
        "load",
        engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": text}]}),
            &ctx,
        ),
    );
    let doc = r["loaded"][0]["doc_id"].as_str().unwrap().to_owned();
    // Longer than a peek (10 000 chars by default): read back in cut pages.
    let long: String = (0..800)
        .map(|i| format!("line {i}: héllo 😀 \"quoted\" text\n"))
        .collect();
    assert!(char_len(&long) > 20_000);
    ok(
        "load",
        engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": long}]}),
            &ctx,
        ),
    );
    let r = ok(
        "chunk",
        engine.call(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc, "strategy": {"type": "lines", "line_count": 1}}),
            &ctx,
        ),
    );
    let span = r["spans"][0]["span_id"].as_str().unwrap().to_owned();
    let r = ok(
        "store",
        engine.call(
            "rlm.artifact.store",
            json!({"session_id": sid, "type": "note", "content": {"a": 1}, "span_id": span}),
            &ctx,
        ),
    );
    let art = r["artifact_id"].as_str().unwrap().to_owned();
    let ids = [
        ("$SID", sid.as_str()),
        ("$DOC", doc.as_str()),
        ("$SPAN", span.as_str()),
        ("$ART", art.as_str()),
    ];

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&call_args(), |(tool, mut args, named)| {
            fill(&mut args, &ids);
            let name = Tool::ALL[tool].name();
            match engine.call(name, args.clone(), &ctx) {
                Ok(v) => {
                    prop_assert!(v.is_object(), "{name} {args}: {v}");
                    if named && name != "rlm.session.create" {
                        // The shared session's cap is the default 50 000.
                        prop_assert!(json_len(&v) <= 50_500, "{name} {args}: too long");
                    }
                }
                Err(CallError::Tool(e)) => {
                    prop_assert!(
                        e.code.as_str() != "internal",
                        "{name} {args}: a client's mistake reported as internal: {}",
                        e.to_json()
                    );
                    prop_assert!(!e.message.is_empty());
                }
                Err(CallError::UnknownTool(n)) => {
                    prop_assert!(false, "a known tool was refused: {n}")
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));

    // The store is sound and the shared session's first document intact.
    let db = env.db();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let fk_violations: i64 = db
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_violations, 0);
    let p = ok(
        "peek",
        engine.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc}),
            &ctx,
        ),
    );
    assert_eq!(p["content"], text);
    // Every document of every session reads back as its hash says.
    let docs: Vec<(String, String, String)> = db
        .prepare("SELECT session_id, doc_id, hash FROM documents")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Each peek's content matches its own content_hash, truncated or not, and
    // the pages of a document put together match the document's hash.
    let (mut shared_doc_whole, mut cut_pages) = (false, 0);
    for (s, d, h) in &docs {
        let mut content = String::new();
        let complete = loop {
            let start = char_len(&content);
            let p = match engine.call(
                "rlm.docs.peek",
                json!({"session_id": s, "doc_id": d, "start": start}),
                &ctx,
            ) {
                Ok(p) => p,
                // Sessions the fuzzer made may have spent their small budgets.
                Err(CallError::Tool(e)) if e.code.as_str() == "budget_exceeded" => break false,
                Err(e) => panic!("peek of {d} in {s}: {e:?}"),
            };
            let page = str_of(&p, "content");
            assert_eq!(p["content_hash"], sha256_hex(page.as_bytes()), "{d}: {p}");
            assert_eq!(u64_of(&p["span"], "start"), start, "{d}: {p}");
            assert_eq!(
                u64_of(&p["span"], "end"),
                start + char_len(page),
                "{d}: {p}"
            );
            content.push_str(page);
            if p["truncated"] == false {
                assert_eq!(u64_of(&p, "total_length"), char_len(&content), "{d}: {p}");
                break true;
            }
            assert!(!page.is_empty(), "a truncated peek returned nothing: {p}");
            cut_pages += 1;
        };
        if complete {
            assert_eq!(&sha256_hex(content.as_bytes()), h, "{d} in {s}");
            shared_doc_whole |= *s == sid && *d == doc;
        }
    }
    assert!(
        shared_doc_whole,
        "the shared session's document was read whole"
    );
    assert!(cut_pages >= 2, "the long document came back in cut pages");
}
