//! Budgets (exact, also under concurrency and across engines) and closing
//! (read-only afterwards, exactly one close wins).

use std::sync::{Arc, Barrier};

use rlmd::CallError;
use serde_json::json;

use crate::common::*;

#[test]
fn create_counts_one_every_named_call_counts_one_and_close_is_free() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tool_calls": 4}));
    let info = env.info(&sid); // 2
    assert_eq!(info["tool_calls_used"], 2);
    assert_eq!(info["tool_calls_remaining"], 2);
    // A failed call that names the session counts too.
    let e = env.fail(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": "nope"}),
    ); // 3
    expect_code(&e, "document_not_found");
    let info = env.info(&sid); // 4
    assert_eq!(info["tool_calls_used"], 4);
    assert_eq!(info["tool_calls_remaining"], 0);

    // The call past the budget fails, naming used and limit.
    for tool in ["rlm.session.info", "rlm.docs.list", "rlm.artifact.list"] {
        let e = env.fail(tool, json!({"session_id": sid}));
        let msg = expect_code(&e, "budget_exceeded");
        assert!(msg.contains("used 4"), "{msg}");
        assert!(msg.contains("limit 4"), "{msg}");
        assert_eq!(e.to_json()["error"]["used"], 4);
        assert_eq!(e.to_json()["error"]["limit"], 4);
    }
    let e = env.fail(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "late"}]}),
    );
    expect_code(&e, "budget_exceeded");
    assert_eq!(
        env.count("SELECT count(*) FROM documents", []),
        0,
        "a call refused for its budget changes nothing"
    );
    // Refused calls are not counted past the limit.
    assert_eq!(
        env.count(
            "SELECT tool_calls_used FROM sessions WHERE session_id = ?1",
            [&sid]
        ),
        4
    );

    // Close always goes through, and does not count.
    let closed = env.call("rlm.session.close", json!({"session_id": sid}));
    assert_eq!(closed["status"], "completed");
    assert_eq!(closed["summary"]["tool_calls"], 4);
    assert_eq!(
        env.count(
            "SELECT tool_calls_used FROM sessions WHERE session_id = ?1",
            [&sid]
        ),
        4
    );
}

#[test]
fn a_budget_of_one_is_spent_by_create() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tool_calls": 1}));
    let e = env.fail("rlm.session.info", json!({"session_id": sid}));
    let msg = expect_code(&e, "budget_exceeded");
    assert!(msg.contains("used 1") && msg.contains("limit 1"), "{msg}");
    env.call("rlm.session.close", json!({"session_id": sid}));
}

#[test]
fn close_does_not_count_even_when_it_fails() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tool_calls": 3}));
    env.call("rlm.session.close", json!({"session_id": sid}));
    let e = env.fail("rlm.session.close", json!({"session_id": sid}));
    expect_code(&e, "session_closed");
    let info = env.info(&sid);
    assert_eq!(info["tool_calls_used"], 2, "create and this info: {info}");
}

fn hammer_info(engines: Vec<rlmd::Engine>, sid: &str, threads_per_engine: usize, calls: usize) {
    let total_threads = engines.len() * threads_per_engine;
    let barrier = Arc::new(Barrier::new(total_threads));
    let mut handles = Vec::new();
    for engine in &engines {
        for _ in 0..threads_per_engine {
            let engine = engine.clone();
            let barrier = barrier.clone();
            let sid = sid.to_owned();
            handles.push(std::thread::spawn(move || {
                let ctx = rlmd::CallContext::default();
                barrier.wait();
                let mut ok = 0u64;
                let mut over = 0u64;
                for _ in 0..calls {
                    match engine.call("rlm.session.info", json!({"session_id": sid}), &ctx) {
                        Ok(_) => ok += 1,
                        Err(CallError::Tool(e)) if e.code.as_str() == "budget_exceeded" => {
                            over += 1
                        }
                        Err(e) => panic!("an info call failed otherwise: {e:?}"),
                    }
                }
                (ok, over)
            }));
        }
    }
    let (mut ok, mut over) = (0, 0);
    for h in handles {
        let (o, v) = h.join().expect("no thread panics");
        ok += o;
        over += v;
    }
    assert_eq!(ok, 49, "exactly the budget less create succeeds");
    assert_eq!(over, (total_threads * calls) as u64 - 49);
}

#[test]
fn concurrent_calls_spend_the_budget_exactly() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tool_calls": 50}));
    hammer_info(vec![env.engine.clone()], &sid, 8, 12);
    assert_eq!(
        env.count(
            "SELECT tool_calls_used FROM sessions WHERE session_id = ?1",
            [&sid]
        ),
        50
    );
}

#[test]
fn concurrent_calls_through_two_engines_spend_the_budget_exactly() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tool_calls": 50}));
    let other = env.reopen();
    hammer_info(vec![env.engine.clone(), other], &sid, 4, 12);
    assert_eq!(
        env.count(
            "SELECT tool_calls_used FROM sessions WHERE session_id = ?1",
            [&sid]
        ),
        50
    );
}

#[test]
fn a_closed_session_is_read_only() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "alpha beta gamma\ndelta epsilon\nzeta eta theta\n");
    let chunked = env.chunk(&sid, &doc, json!({"type": "lines", "line_count": 1}));
    let span = chunked["spans"][1]["span_id"].as_str().unwrap().to_owned();
    let art = env.call(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "note", "content": {"n": 1}, "span_id": span}),
    )["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let closed = env.call("rlm.session.close", json!({"session_id": sid}));
    assert_eq!(
        closed["summary"],
        json!({"documents": 1, "spans": 3, "artifacts": 1, "tool_calls": 4})
    );

    // Reads work.
    let info = env.info(&sid);
    assert_eq!(info["status"], "completed");
    assert_eq!(info["closed_at"], closed["closed_at"]);
    assert_eq!(info["document_count"], 1);
    let list = env.call("rlm.docs.list", json!({"session_id": sid}));
    assert_eq!(list["documents"][0]["doc_id"], doc.as_str());
    assert_eq!(list["documents"][0]["span_count"], 3);
    let peek = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 17, "end": 22}),
    );
    assert_eq!(peek["content"], "delta");
    let got = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [span]}),
    );
    assert_eq!(got["spans"][0]["content"], "delta epsilon\n");
    let found = env.search(&sid, json!({"query": "epsilon"}));
    assert_eq!(found["matches"][0]["doc_id"], doc.as_str(), "{found}");
    let arts = env.call("rlm.artifact.list", json!({"session_id": sid}));
    assert_eq!(arts["artifacts"][0]["artifact_id"], art.as_str());
    let a = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": art}),
    );
    assert_eq!(a["content"], json!({"n": 1}));

    // Changes fail with session_closed, and change nothing.
    let e = env.fail(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "more"}]}),
    );
    expect_code(&e, "session_closed");
    for strategy in [
        json!({"type": "lines", "line_count": 1}), // the cached one
        json!({"type": "fixed", "chunk_size": 4}),
    ] {
        let e = env.fail(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc, "strategy": strategy}),
        );
        expect_code(&e, "session_closed");
    }
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "note", "content": {}}),
    );
    expect_code(&e, "session_closed");
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "note", "content": {}, "span": {"doc_id": doc, "start": 0, "end": 5}}),
    );
    expect_code(&e, "session_closed");
    let e = env.fail("rlm.session.close", json!({"session_id": sid}));
    let msg = expect_code(&e, "session_closed");
    assert!(msg.contains(&sid), "{msg}");

    assert_eq!(env.count("SELECT count(*) FROM documents", []), 1);
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 3);
    assert_eq!(env.count("SELECT count(*) FROM artifacts", []), 1);
    assert_eq!(env.count("SELECT count(*) FROM chunk_sets", []), 1);
    // The close time did not move.
    assert_eq!(env.info(&sid)["closed_at"], closed["closed_at"]);
    // The scans work on a closed session too.
    for method in ["literal", "regex"] {
        let found = env.search(&sid, json!({"query": "epsilon", "method": method}));
        assert_eq!(
            found["matches"].as_array().unwrap().len(),
            1,
            "{method}: {found}"
        );
    }
}

#[test]
fn exactly_one_of_concurrent_closes_succeeds() {
    let env = Env::new();
    let sid = env.session();
    env.load(&sid, "some text to close over");
    let other = env.reopen();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            // Half the closes go through a second engine on the same data dir.
            let engine = if i % 2 == 0 {
                env.engine.clone()
            } else {
                other.clone()
            };
            let barrier = barrier.clone();
            let sid = sid.clone();
            std::thread::spawn(move || {
                let ctx = rlmd::CallContext::default();
                barrier.wait();
                engine.call("rlm.session.close", json!({"session_id": sid}), &ctx)
            })
        })
        .collect();
    let mut wins = Vec::new();
    let mut closed = 0;
    for h in handles {
        match h.join().expect("no thread panics") {
            Ok(v) => wins.push(v),
            Err(CallError::Tool(e)) if e.code.as_str() == "session_closed" => closed += 1,
            Err(e) => panic!("a close failed otherwise: {e:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one close wins: {wins:?}");
    assert_eq!(closed, 7);
    let info = env.info(&sid);
    assert_eq!(info["status"], "completed");
    assert_eq!(info["closed_at"], wins[0]["closed_at"]);
    let e = env.fail("rlm.session.close", json!({"session_id": sid}));
    expect_code(&e, "session_closed");
}

#[test]
fn a_session_closed_by_another_engine_is_read_only_here() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "text loaded before the other daemon closed it");
    let other = env.reopen();
    ok(
        "close",
        other.call("rlm.session.close", json!({"session_id": sid}), &env.ctx),
    );
    let e = env.fail(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "x"}]}),
    );
    expect_code(&e, "session_closed");
    let e = env.fail(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc, "strategy": {"type": "fixed", "chunk_size": 5}}),
    );
    expect_code(&e, "session_closed");
    assert_eq!(env.info(&sid)["status"], "completed");
}
