//! The real engine's results that `client/tests/schemas.rs` checks the listed
//! output schemas against: one scripted session through every tool, its
//! results recorded in `client/tests/fixtures/engine_results.json`.
//!
//! The shim must not link the engine (no SQLite in `rlm-client`), so the
//! results cross as a file: this test makes them and fails when the file's
//! answers no longer have the shape the engine gives today (keys, JSON types,
//! list lengths; texts and numbers may differ, so a reworded message does not
//! need a new file); `RLM_UPDATE_FIXTURES=1 cargo test -p rlmd --test
//! client_fixtures` writes the file instead. Ids become
//! `00000000-0000-4000-8000-00000000000N` in order of first appearance,
//! times `2026-01-01T00:00:00Z` and the temp folder `/tmp/rlm-fixture`, so a
//! file recorded again differs only where an answer did.

#[allow(unused_imports)]
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use common::Env;

const TIME: &str = "2026-01-01T00:00:00Z";
const FOLDER: &str = "/tmp/rlm-fixture";

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/tests/fixtures/engine_results.json")
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Stable ids, times and paths (see the module doc).
struct Normalizer {
    ids: HashMap<String, String>,
    folder: String,
}

impl Normalizer {
    fn id(&mut self, real: &str) -> String {
        let n = self.ids.len() + 1;
        self.ids
            .entry(real.to_owned())
            .or_insert_with(|| format!("00000000-0000-4000-8000-{n:012}"))
            .clone()
    }

    /// `s` with every id inside it (messages quote them) and the temp folder replaced.
    fn text(&mut self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            let end = i + 36;
            if end <= s.len()
                && s.is_char_boundary(i)
                && s.is_char_boundary(end)
                && is_uuid(&s[i..end])
            {
                let id = self.id(&s[i..end]);
                out.push_str(&id);
                i = end;
                continue;
            }
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
        out.replace(&self.folder, FOLDER)
    }

    fn value(&mut self, key: Option<&str>, v: Value) -> Value {
        match v {
            Value::String(_) if matches!(key, Some("created_at" | "closed_at")) => json!(TIME),
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.value(key, v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = self.value(Some(&k), v);
                        (k, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Runs the script: each step's tool and what the engine answered (a result,
/// or the `{"error": ...}` of a tool error).
fn record() -> Value {
    let env = Env::new();
    let mut steps: Vec<(&str, Value)> = Vec::new();
    let mut run = |tool: &'static str, args: Value| -> Value {
        let answer = match env.try_call(tool, args) {
            Ok(result) => result,
            Err(rlmd::CallError::Tool(e)) => e.to_json(),
            Err(e) => panic!("{tool}: {e:?}"),
        };
        steps.push((tool, answer.clone()));
        answer
    };
    let created = run(
        "rlm.session.create",
        json!({"name": "fixture", "config": {"max_tool_calls": 100,
               "model_hints": {"root_model": "big"}}}),
    );
    let sid = created["session_id"].as_str().unwrap().to_owned();
    std::fs::write(
        env.dir.path().join("notes.txt"),
        "alpha line one\nthe needle sits here\nomega line three\n",
    )
    .unwrap();
    let loaded = run(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "inline", "name": "greeting", "content": "héllo wörld\nsecond line\n"},
            {"type": "file", "path": "notes.txt"},
            {"type": "file", "path": "missing.txt"},
            {"type": "inline", "name": "find.py", "content": "def find_needle(hay):\n    return hay.index('needle')\n"}
        ]}),
    );
    let doc = loaded["loaded"][1]["doc_id"].as_str().unwrap().to_owned();
    run("rlm.session.info", json!({"session_id": sid}));
    run("rlm.docs.list", json!({"session_id": sid, "limit": 1}));
    run(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 6, "end": 20}),
    );
    let chunks = run(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc,
               "strategy": {"type": "lines", "line_count": 1}, "limit": 2}),
    );
    let span_ids: Vec<Value> = chunks["spans"].as_array().unwrap().clone();
    let span_ids: Vec<&Value> = span_ids.iter().map(|s| &s["span_id"]).collect();
    run(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": span_ids}),
    );
    run(
        "rlm.search.query",
        json!({"session_id": sid, "query": "needle"}),
    );
    run(
        "rlm.search.query",
        json!({"session_id": sid, "query": "l+ine", "method": "regex", "context_chars": 10}),
    );
    let stored = run(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "summary", "content": {"text": "a needle"},
               "span": {"doc_id": doc, "start": 0, "end": 5},
               "provenance": {"model": "m", "run": 3}}),
    );
    run(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "note", "content": {"n": 1}}),
    );
    run("rlm.artifact.list", json!({"session_id": sid}));
    run(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": stored["artifact_id"]}),
    );
    run(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": "00000000-0000-4000-8000-000000000000"}),
    );
    run("rlm.session.close", json!({"session_id": sid}));
    run("rlm.session.info", json!({"session_id": sid}));

    let folder = env.dir.path().to_str().unwrap().to_owned();
    let mut normalizer = Normalizer {
        ids: HashMap::new(),
        folder,
    };
    Value::Array(
        steps
            .into_iter()
            .map(|(tool, answer)| json!({"tool": tool, "answer": normalizer.value(None, answer)}))
            .collect(),
    )
}

/// What a schema sees of an answer: each value replaced by its JSON type,
/// keys and list lengths kept. Texts, hashes and scores may change freely;
/// a key added, dropped, renamed or retyped changes the shape.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(n) if n.is_f64() => json!("number"),
        Value::Number(_) => json!("integer"),
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

#[test]
fn the_client_fixtures_have_the_shape_the_engine_answers() {
    let recorded = record();
    let mut text = serde_json::to_string_pretty(&recorded).unwrap();
    text.push('\n');
    let path = fixture_path();
    if std::env::var_os("RLM_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let stored: Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    assert!(
        shape(&stored) == shape(&recorded),
        "the answers in {} no longer have the shape the engine gives; if the change is meant, \
         run `RLM_UPDATE_FIXTURES=1 cargo test -p rlmd --test client_fixtures` and commit the \
         file (client/tests/schemas.rs checks the listed schemas against it).\nengine says:\n{text}",
        path.display()
    );
}
