//! Traces: every call naming a session is recorded, failed or not, with its
//! outcome; document text and artifact content are recorded by hash only.

use serde_json::{Value, json};

use crate::common::*;

#[derive(Debug)]
struct Trace {
    operation: String,
    arguments: String,
    outcome: String,
    error_code: Option<String>,
    duration_ms: f64,
    result_hash: Option<String>,
    result_chars: Option<i64>,
}

fn traces_of(env: &Env, sid: &str) -> Vec<Trace> {
    let db = env.db();
    let mut st = db
        .prepare(
            "SELECT operation, arguments, outcome, error_code, duration_ms, result_hash, result_chars \
             FROM traces WHERE session_id = ?1 ORDER BY id",
        )
        .unwrap();
    st.query_map([sid], |r| {
        Ok(Trace {
            operation: r.get(0)?,
            arguments: r.get(1)?,
            outcome: r.get(2)?,
            error_code: r.get(3)?,
            duration_ms: r.get(4)?,
            result_hash: r.get(5)?,
            result_chars: r.get(6)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every text column of every trace row, concatenated.
fn all_trace_text(env: &Env) -> String {
    let db = env.db();
    let mut st = db
        .prepare("SELECT coalesce(session_id, '') || operation || arguments || outcome || coalesce(error_code, '') || coalesce(result_hash, '') FROM traces")
        .unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_call_naming_a_session_is_traced_with_its_outcome() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tool_calls": 8}));
    let doc = env.load(&sid, "a small document\nwith two lines\n");
    env.call("rlm.docs.list", json!({"session_id": sid}));
    env.fail(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": "missing-doc"}),
    );
    env.fail(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 99}),
    );
    env.search(&sid, json!({"query": "lines"}));
    env.fail(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc, "strategy": {"type": "fixed", "chunk_size": 0}}),
    );
    env.info(&sid); // the 8th call: the budget is spent
    env.fail("rlm.docs.list", json!({"session_id": sid}));
    env.call("rlm.session.close", json!({"session_id": sid}));
    env.fail("rlm.session.close", json!({"session_id": sid}));

    let traces = traces_of(&env, &sid);
    let got: Vec<(&str, &str, Option<&str>)> = traces
        .iter()
        .map(|t| {
            (
                t.operation.as_str(),
                t.outcome.as_str(),
                t.error_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("rlm.session.create", "ok", None),
            ("rlm.docs.load", "ok", None),
            ("rlm.docs.list", "ok", None),
            ("rlm.docs.peek", "error", Some("document_not_found")),
            ("rlm.docs.peek", "error", Some("invalid_argument")),
            ("rlm.search.query", "ok", None),
            ("rlm.chunk.create", "error", Some("invalid_argument")),
            ("rlm.session.info", "ok", None),
            ("rlm.docs.list", "error", Some("budget_exceeded")),
            ("rlm.session.close", "ok", None),
            ("rlm.session.close", "error", Some("session_closed")),
        ]
    );
    for t in &traces {
        assert!(t.duration_ms >= 0.0, "{t:?}");
        let args: Value = serde_json::from_str(&t.arguments).expect("arguments are JSON");
        if t.operation != "rlm.session.create" {
            assert_eq!(args["session_id"], sid.as_str(), "{t:?}");
        }
        if t.outcome == "ok" {
            // Returned text is recorded by hash and length only.
            assert!(t.result_hash.as_deref().is_some_and(is_sha256_hex), "{t:?}");
            assert!(t.result_chars.is_some_and(|n| n > 0), "{t:?}");
        }
    }
    // The peek's arguments are kept (they hold no document text).
    let peek: Value = serde_json::from_str(&traces[4].arguments).unwrap();
    assert_eq!(peek["start"], 99);

    // A call naming an unknown session is traced under that id.
    let bogus = "22222222-2222-4222-8222-222222222222";
    env.fail("rlm.session.info", json!({"session_id": bogus}));
    let t = traces_of(&env, bogus);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].error_code.as_deref(), Some("session_not_found"));
}

#[test]
fn traces_never_hold_document_text_or_artifact_content() {
    let env = Env::new();
    let sid = env.session();
    let secret = format!(
        "SECRET-INLINE-TEXT {} the end of the secret",
        "with many distinctive words like xylograph ".repeat(20)
    );
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "inline", "content": secret, "name": "secret-doc"},
            {"type": "inline", "content": "second inline text OTHERSECRET"}
        ]}),
    );
    let doc = str_of(&r["loaded"][0], "doc_id").to_owned();
    env.call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}));
    let spans = env.chunk(&sid, &doc, json!({"type": "fixed", "chunk_size": 100}));
    let ids: Vec<&Value> = spans["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["span_id"])
        .collect();
    env.call("rlm.span.get", json!({"session_id": sid, "span_ids": ids}));
    env.search(&sid, json!({"query": "xylograph", "method": "literal"}));
    env.search(&sid, json!({"query": "xylograph"}));
    let content = json!({"finding": "ARTIFACT-SECRET-CONTENT about xylographs", "n": 3});
    env.call(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "extraction", "content": content}),
    );

    let everything = all_trace_text(&env);
    for needle in [
        "SECRET-INLINE-TEXT",
        "the end of the secret",
        "OTHERSECRET",
        "ARTIFACT-SECRET-CONTENT",
        "distinctive words",
    ] {
        assert!(
            !everything.contains(needle),
            "{needle:?} was copied into the traces"
        );
    }
    // The load is recorded with the hash and length of its inline content.
    let traces = traces_of(&env, &sid);
    let load = traces
        .iter()
        .find(|t| t.operation == "rlm.docs.load")
        .unwrap();
    assert!(
        load.arguments.contains(&sha256_hex(secret.as_bytes())),
        "{}",
        load.arguments
    );
    assert!(load.arguments.contains(&char_len(&secret).to_string()));
    assert!(load.arguments.contains("secret-doc"), "the name is kept");
    let store = traces
        .iter()
        .find(|t| t.operation == "rlm.artifact.store")
        .unwrap();
    assert!(
        store.arguments.contains(&sha256_hex(
            serde_json::to_string(&content).unwrap().as_bytes()
        )),
        "{}",
        store.arguments
    );
    assert!(store.arguments.contains("extraction"), "the type is kept");
}
