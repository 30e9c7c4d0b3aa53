//! Integration tests of the engine against the tool contract
//! (`/work/shared/spec/TOOLS.md`): every tool through `Engine::call`, with
//! the store inspected where the contract speaks of what is stored.
//!
//! The happy path of every tool and the argument errors are here; the other
//! areas are in `tests/tools/*.rs`.

mod common;

#[path = "tools/artifacts.rs"]
mod artifacts;
#[path = "tools/chunks.rs"]
mod chunks;
#[path = "tools/compaction.rs"]
mod compaction;
#[path = "tools/docs.rs"]
mod docs;
#[path = "tools/index.rs"]
mod index;
#[path = "tools/integrity.rs"]
mod integrity;
#[path = "tools/passages.rs"]
mod passages;
#[path = "tools/reloads.rs"]
mod reloads;
#[path = "tools/robustness.rs"]
mod robustness;
#[path = "tools/search.rs"]
mod search;
#[path = "tools/sessions.rs"]
mod sessions;
#[path = "tools/shared_index.rs"]
mod shared_index;
#[path = "tools/shrink.rs"]
mod shrink;
#[path = "tools/sizes.rs"]
mod sizes;
#[path = "tools/traces.rs"]
mod traces;
#[path = "tools/walks.rs"]
mod walks;
#[path = "tools/words.rs"]
mod words;

use common::*;
use rlmd::CallError;
use serde_json::{Value, json};

const TEXT: &str =
    "The first line of the report.\nA second line mentions the harbor.\nThe third line ends it.\n";

#[test]
fn every_tool_answers_with_the_contract_keys() {
    let env = Env::new();

    // rlm.session.create
    let created = env.call(
        "rlm.session.create",
        json!({"name": "t", "config": {"max_tool_calls": 100, "model_hints": {"root_model": "big", "bulk_model": "small"}}}),
    );
    assert_keys(&created, &["session_id", "created_at", "config"]);
    let sid = str_of(&created, "session_id").to_owned();
    assert!(is_uuid(&sid), "{sid}");
    assert!(is_utc_rfc3339(str_of(&created, "created_at")), "{created}");
    let config = &created["config"];
    assert_keys(
        config,
        &[
            "max_tool_calls",
            "max_chars_per_response",
            "max_chars_per_peek",
            "chunk_cache_enabled",
            "model_hints",
        ],
    );
    assert_eq!(config["max_tool_calls"], 100);
    assert_eq!(config["max_chars_per_response"], 50_000);
    assert_eq!(config["max_chars_per_peek"], 10_000);
    assert_eq!(config["chunk_cache_enabled"], true);
    assert_eq!(config["model_hints"]["root_model"], "big");
    assert_eq!(config["model_hints"]["bulk_model"], "small");

    // rlm.session.info (the underscore spelling works too)
    let info = env.call("rlm_session_info", json!({"session_id": sid}));
    assert_keys(
        &info,
        &[
            "session_id",
            "name",
            "status",
            "created_at",
            "closed_at",
            "document_count",
            "total_chars",
            "total_tokens_est",
            "tool_calls_used",
            "tool_calls_remaining",
            "index_built",
            "config",
        ],
    );
    assert_eq!(info["session_id"], sid.as_str());
    assert_eq!(info["name"], "t");
    assert_eq!(info["status"], "active");
    assert_eq!(info["created_at"], created["created_at"]);
    assert!(info["closed_at"].is_null());
    assert_eq!(info["document_count"], 0);
    assert_eq!(info["total_chars"], 0);
    assert_eq!(info["tool_calls_used"], 2, "create and this info: {info}");
    assert_eq!(info["tool_calls_remaining"], 98);
    assert_eq!(info["index_built"], false);
    assert_eq!(&info["config"], config, "the effective config is echoed");

    // rlm.docs.load
    let loaded = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": TEXT, "name": "report"}]}),
    );
    assert_keys(
        &loaded,
        &["loaded", "errors", "total_chars", "total_tokens_est"],
    );
    let doc = &loaded["loaded"][0];
    assert_keys(
        doc,
        &[
            "doc_id",
            "content_hash",
            "source",
            "length_chars",
            "length_tokens_est",
        ],
    );
    let doc_id = str_of(doc, "doc_id").to_owned();
    assert!(is_uuid(&doc_id));
    assert_eq!(doc["content_hash"], sha256_hex(TEXT.as_bytes()));
    assert_eq!(doc["source"], "report");
    assert_eq!(doc["length_chars"], char_len(TEXT));
    assert_eq!(doc["length_tokens_est"], char_len(TEXT).div_ceil(4));
    assert_eq!(loaded["errors"], json!([]));
    assert_eq!(loaded["total_chars"], char_len(TEXT));
    assert_eq!(loaded["total_tokens_est"], char_len(TEXT).div_ceil(4));

    // rlm.docs.list
    let list = env.call("rlm.docs.list", json!({"session_id": sid}));
    assert_keys(&list, &["documents", "total", "has_more"]);
    assert_eq!(list["total"], 1);
    assert_eq!(list["has_more"], false);
    let entry = &list["documents"][0];
    assert_keys(
        entry,
        &[
            "doc_id",
            "content_hash",
            "source",
            "length_chars",
            "length_tokens_est",
            "span_count",
        ],
    );
    assert_eq!(entry["doc_id"], doc_id.as_str());
    assert_eq!(entry["span_count"], 0);

    // rlm.docs.peek
    let peek = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc_id, "start": 4, "end": 9}),
    );
    assert_keys(
        &peek,
        &[
            "content",
            "span",
            "content_hash",
            "truncated",
            "total_length",
        ],
    );
    assert_eq!(peek["content"], "first");
    assert_eq!(
        peek["span"],
        json!({"doc_id": doc_id, "start": 4, "end": 9})
    );
    assert_eq!(peek["content_hash"], sha256_hex(b"first"));
    assert_eq!(peek["truncated"], false);
    assert_eq!(peek["total_length"], char_len(TEXT));

    // rlm.chunk.create
    let chunked = env.chunk(&sid, &doc_id, json!({"type": "lines", "line_count": 1}));
    assert_keys(
        &chunked,
        &["spans", "total_spans", "cached", "truncated", "next_offset"],
    );
    assert_eq!(chunked["total_spans"], 3);
    assert_eq!(chunked["cached"], false);
    assert_eq!(chunked["truncated"], false);
    assert!(chunked["next_offset"].is_null());
    let span = &chunked["spans"][1];
    assert_keys(
        span,
        &[
            "span_id",
            "index",
            "span",
            "length_chars",
            "content_hash",
            "preview",
        ],
    );
    let second_line = "A second line mentions the harbor.\n";
    assert_eq!(span["index"], 1);
    assert_eq!(span["span"]["doc_id"], doc_id.as_str());
    assert_eq!(span["span"]["start"], 30);
    assert_eq!(span["span"]["end"], 30 + char_len(second_line));
    assert_eq!(span["length_chars"], char_len(second_line));
    assert_eq!(span["content_hash"], sha256_hex(second_line.as_bytes()));
    assert_eq!(span["preview"], second_line);
    let span_id = str_of(span, "span_id").to_owned();
    assert!(is_uuid(&span_id));

    // rlm.span.get
    let got = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [span_id]}),
    );
    assert_keys(&got, &["spans", "total_chars_returned", "omitted"]);
    let s = &got["spans"][0];
    assert_keys(
        s,
        &["span_id", "span", "content", "content_hash", "truncated"],
    );
    assert_eq!(s["span_id"], span_id.as_str());
    assert_eq!(s["span"], span["span"]);
    assert_eq!(s["content"], second_line);
    assert_eq!(s["content_hash"], sha256_hex(second_line.as_bytes()));
    assert_eq!(s["truncated"], false);
    assert_eq!(got["total_chars_returned"], char_len(second_line));
    assert_eq!(got["omitted"], json!([]));

    // rlm.search.query
    let found = env.search(&sid, json!({"query": "harbor"}));
    assert_keys(
        &found,
        &[
            "matches",
            "total_matches",
            "truncated",
            "index_built",
            "index_built_this_call",
        ],
    );
    assert_eq!(found["matches"].as_array().unwrap().len(), 1, "{found}");
    let m = &found["matches"][0];
    assert_keys(
        m,
        &[
            "doc_id",
            "span",
            "span_id",
            "score",
            "context",
            "highlight_start",
            "highlight_end",
            "highlights",
        ],
    );
    assert_eq!(m["doc_id"], doc_id.as_str());
    assert!(m["span_id"].is_null());
    assert!(m["score"].as_f64().unwrap() > 0.0);
    let context = str_of(m, "context");
    assert_eq!(
        context,
        chars(TEXT, u64_of(&m["span"], "start"), u64_of(&m["span"], "end"))
    );
    let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
    assert_eq!(chars(context, hs, he), "harbor");
    assert_eq!(
        m["highlights"],
        json!([{"start": hs, "end": he, "term": "harbor"}])
    );
    assert_eq!(found["total_matches"], 1);
    assert_eq!(found["truncated"], false);
    assert_eq!(found["index_built"], true);
    assert_eq!(found["index_built_this_call"], true);

    // rlm.artifact.store
    let stored = env.call(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "summary", "content": {"text": "mentions a harbor"},
               "span_id": span_id, "provenance": {"model": "m", "prompt_hash": "p", "tool": "t", "timestamp": "2025-01-01T00:00:00Z"}}),
    );
    assert_keys(&stored, &["artifact_id", "span_id"]);
    let artifact_id = str_of(&stored, "artifact_id").to_owned();
    assert!(is_uuid(&artifact_id));
    assert_eq!(stored["span_id"], span_id.as_str());

    // rlm.artifact.list
    let listed = env.call("rlm.artifact.list", json!({"session_id": sid}));
    assert_keys(&listed, &["artifacts"]);
    let a = &listed["artifacts"][0];
    assert_keys(
        a,
        &["artifact_id", "span_id", "type", "created_at", "provenance"],
    );
    assert_eq!(a["artifact_id"], artifact_id.as_str());
    assert_eq!(a["span_id"], span_id.as_str());
    assert_eq!(a["type"], "summary");
    assert!(is_utc_rfc3339(str_of(a, "created_at")));
    assert_eq!(a["provenance"]["model"], "m");

    // rlm.artifact.get
    let art = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": artifact_id}),
    );
    assert_keys(
        &art,
        &[
            "artifact_id",
            "span_id",
            "span",
            "type",
            "content",
            "provenance",
            "created_at",
        ],
    );
    assert_eq!(art["span"], span["span"]);
    assert_eq!(art["content"], json!({"text": "mentions a harbor"}));
    assert_eq!(
        art["provenance"],
        json!({"model": "m", "prompt_hash": "p", "tool": "t", "timestamp": "2025-01-01T00:00:00Z"})
    );

    // rlm.session.close
    let closed = env.call("rlm.session.close", json!({"session_id": sid}));
    assert_keys(&closed, &["session_id", "status", "closed_at", "summary"]);
    assert_eq!(closed["session_id"], sid.as_str());
    assert_eq!(closed["status"], "completed");
    assert!(is_utc_rfc3339(str_of(&closed, "closed_at")));
    // create, info, load, list, peek, chunk, span.get, search, store, list, get = 11 (close is free)
    assert_eq!(
        closed["summary"],
        json!({"documents": 1, "spans": 3, "artifacts": 1, "tool_calls": 11})
    );
    let info = env.info(&sid);
    assert_eq!(info["status"], "completed");
    assert_eq!(info["closed_at"], closed["closed_at"]);
}

#[test]
fn both_spellings_of_every_tool_name_are_accepted() {
    let env = Env::new();
    let sid = env.session();
    for name in ["rlm.session.info", "rlm_session_info"] {
        assert_eq!(
            env.call(name, json!({"session_id": sid}))["session_id"],
            sid
        );
    }
    for name in ["rlm.docs.list", "rlm_docs_list"] {
        assert_eq!(env.call(name, json!({"session_id": sid}))["total"], 0);
    }
    let r = env.call("rlm_session_create", json!({}));
    assert!(is_uuid(str_of(&r, "session_id")));
}

#[test]
fn an_unknown_tool_is_a_protocol_error_not_a_tool_error() {
    let env = Env::new();
    let sid = env.session();
    for name in [
        "rlm.session.delete",
        "rlm.docs",
        "rlm_docs_nope",
        "docs.load",
        "",
    ] {
        match env.try_call(name, json!({"session_id": sid})) {
            Err(CallError::UnknownTool(n)) => assert_eq!(n, name),
            other => panic!("{name:?}: expected UnknownTool, got {other:?}"),
        }
    }
    // An unknown tool does not count against the session's budget.
    assert_eq!(env.info(&sid)["tool_calls_used"], 2);
}

#[test]
fn an_unknown_session_is_session_not_found_for_every_tool() {
    let env = Env::new();
    let bogus = "00000000-0000-4000-8000-000000000000";
    let calls: Vec<(&str, Value)> = vec![
        ("rlm.session.info", json!({})),
        ("rlm.session.close", json!({})),
        (
            "rlm.docs.load",
            json!({"sources": [{"type": "inline", "content": "x"}]}),
        ),
        ("rlm.docs.list", json!({})),
        ("rlm.docs.peek", json!({"doc_id": bogus})),
        (
            "rlm.chunk.create",
            json!({"doc_id": bogus, "strategy": {"type": "fixed", "chunk_size": 10}}),
        ),
        ("rlm.span.get", json!({"span_ids": []})),
        ("rlm.search.query", json!({"query": "x"})),
        ("rlm.artifact.store", json!({"type": "note", "content": {}})),
        ("rlm.artifact.list", json!({})),
        ("rlm.artifact.get", json!({"artifact_id": bogus})),
    ];
    for (tool, mut args) in calls {
        args["session_id"] = json!(bogus);
        let e = env.fail(tool, args);
        let msg = expect_code(&e, "session_not_found");
        assert!(
            msg.contains(bogus),
            "{tool}: the message names the id: {msg}"
        );
    }
    // Nothing was created for the bogus id.
    assert_eq!(env.count("SELECT count(*) FROM sessions", []), 0);
    assert_eq!(env.count("SELECT count(*) FROM documents", []), 0);
}

#[test]
fn a_field_of_the_wrong_type_is_invalid_argument_naming_the_field() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, TEXT);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "start": "ten"}),
            "start",
        ),
        (
            "rlm.docs.list",
            json!({"session_id": sid, "limit": "many"}),
            "limit",
        ),
        (
            "rlm.search.query",
            json!({"session_id": sid, "query": 42}),
            "query",
        ),
        (
            "rlm.search.query",
            json!({"session_id": sid, "query": "x", "method": "fuzzy"}),
            "method",
        ),
        (
            "rlm.span.get",
            json!({"session_id": sid, "span_ids": "abc"}),
            "span_ids",
        ),
        (
            "rlm.artifact.store",
            json!({"session_id": sid, "type": "note", "content": "not an object"}),
            "content",
        ),
        ("rlm.session.info", json!({"session_id": 7}), "session_id"),
        // Loads whose arguments are wrong around a good source.
        (
            "rlm.docs.load",
            json!({"session_id": sid, "sources": {"type": "inline", "content": "good"}}),
            "sources",
        ),
        (
            "rlm.docs.load",
            json!({"session_id": sid, "sources": "good"}),
            "sources",
        ),
        (
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": "good"}], "recursive": true}),
            "recursive",
        ),
        (
            "rlm.docs.load",
            json!({"session_id": [sid], "sources": [{"type": "inline", "content": "good"}]}),
            "session_id",
        ),
        ("rlm.docs.load", json!({"session_id": sid}), "sources"),
    ];
    let listed = env.call("rlm.docs.list", json!({"session_id": sid}));
    for (tool, args, field) in cases {
        let e = env.fail(tool, args.clone());
        let msg = expect_code(&e, "invalid_argument");
        assert!(
            msg.contains(field),
            "{tool} {args}: the message names the field {field:?}: {msg}"
        );
    }
    assert_eq!(
        env.call("rlm.docs.list", json!({"session_id": sid}))["documents"],
        listed["documents"]
    );
    assert_eq!(env.count("SELECT count(*) FROM documents", []), 1);
    // The bad load stored nothing, not even its good source.
    assert_eq!(env.info(&sid)["document_count"], 1);
}

#[test]
fn a_wrong_type_inside_a_source_or_strategy_names_the_inner_field() {
    // The contract: the error says what was wrong and which value; one
    // source's error is that source's entry in `errors`, never the call's:
    // the other sources still load.
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, TEXT);
    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"type": "file", "path": 5}),
            &["sources[1]", "path", "invalid type"],
        ),
        (json!({"type": "url", "path": "x"}), &["sources[1]", "url"]),
        (
            json!({"type": "inline", "content": "x", "metadata": {"k": 1}}),
            &["sources[1]", "metadata"],
        ),
        (json!({"type": "inline"}), &["sources[1]", "content"]),
    ];
    for (n, (bad, words)) in cases.into_iter().enumerate() {
        let good = format!("the good source number {n} loads beside a bad one");
        let r = env.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": good}, bad]}),
        );
        assert_eq!(r["loaded_count"], 1, "{bad}: {r}");
        assert_eq!(r["loaded"][0]["length_chars"], good.chars().count(), "{r}");
        assert_eq!(r["error_count"], 1, "{bad}: {r}");
        let line = r["errors"][0].as_str().unwrap();
        for w in words {
            assert!(line.contains(w), "{bad}: {w:?} named in: {line}");
        }
    }
    // The first document and one per case above.
    assert_eq!(env.info(&sid)["document_count"], 5);
    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({"type": "fixed", "chunk_size": "big"}),
            &["chunk_size", "big"],
        ),
        (
            json!({"type": "fixed", "chunk_size": 10, "overlap": -1}),
            &["overlap", "-1"],
        ),
        (
            json!({"type": "lines", "line_count": 2.5}),
            &["line_count", "2.5"],
        ),
    ];
    for (strategy, words) in cases {
        let e = env.fail(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc, "strategy": strategy}),
        );
        let msg = expect_code(&e, "invalid_argument");
        for w in words {
            assert!(msg.contains(w), "{strategy}: {w:?} named in: {msg}");
        }
    }
    // The refused chunkings made no spans.
    let listed = env.call("rlm.docs.list", json!({"session_id": sid}));
    assert_eq!(listed["documents"][0]["span_count"], 0, "{listed}");
}

#[test]
fn unknown_argument_and_config_keys_are_invalid_argument() {
    let env = Env::new();
    let e = env.fail(
        "rlm.session.create",
        json!({"config": {"max_tool_call": 5}}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("max_tool_call"), "{msg}");
    let e = env.fail(
        "rlm.session.create",
        json!({"config": {"model_hints": {"fast_model": "x"}}}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("fast_model"), "{msg}");
    let sid = env.session();
    let e = env.fail("rlm.docs.list", json!({"session_id": sid, "page": 2}));
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("page"), "{msg}");
    // No session was made by the failed creates.
    assert_eq!(env.count("SELECT count(*) FROM sessions", []), 1);
}

#[test]
fn out_of_range_config_values_are_invalid_argument_and_bounds_are_accepted() {
    let env = Env::new();
    for (key, bad, good) in [
        ("max_tool_calls", 0u64, 1u64),
        ("max_chars_per_response", 999, 1000),
        ("max_chars_per_peek", 99, 100),
    ] {
        let e = env.fail("rlm.session.create", json!({"config": {key: bad}}));
        let msg = expect_code(&e, "invalid_argument");
        assert!(msg.contains(key), "{msg}");
        assert!(msg.contains(&bad.to_string()), "the value is named: {msg}");
        assert!(msg.contains(&good.to_string()), "the bound is named: {msg}");
        let r = env.call("rlm.session.create", json!({"config": {key: good}}));
        assert_eq!(r["config"][key], good);
    }
    let e = env.fail(
        "rlm.session.create",
        json!({"config": {"max_tool_calls": -1}}),
    );
    expect_code(&e, "invalid_argument");
    let e = env.fail(
        "rlm.session.create",
        json!({"config": {"chunk_cache_enabled": "yes"}}),
    );
    expect_code(&e, "invalid_argument");
    assert_eq!(env.count("SELECT count(*) FROM sessions", []), 3);
}

#[test]
fn session_defaults_come_from_the_server_config() {
    let env = Env::with(|c| {
        c.session_defaults.max_tool_calls = 7;
        c.session_defaults.max_chars_per_peek = 123;
    });
    let r = env.call("rlm.session.create", json!({}));
    assert_eq!(r["config"]["max_tool_calls"], 7);
    assert_eq!(r["config"]["max_chars_per_peek"], 123);
    assert_eq!(r["config"]["max_chars_per_response"], 50_000);
    let r = env.call(
        "rlm.session.create",
        json!({"config": {"max_chars_per_peek": 500}}),
    );
    assert_eq!(r["config"]["max_tool_calls"], 7);
    assert_eq!(r["config"]["max_chars_per_peek"], 500);
}

#[test]
fn bad_regexes_are_invalid_argument_with_the_engines_reason() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, TEXT);
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": "(unclosed", "method": "regex"}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("(unclosed"), "names the pattern: {msg}");
    assert!(msg.contains("unclosed group"), "gives the reason: {msg}");
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": "a{5,2}", "method": "regex"}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.to_lowercase().contains("invalid"), "{msg}");

    // A valid pattern the engine refuses (too big to compile) names its reason too.
    let huge = "(?:\\w{500}){500}";
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": huge, "method": "regex"}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("{500}"), "names the pattern: {msg}");
    assert!(msg.contains("limit"), "gives the reason: {msg}");

    let e = env.fail(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc, "strategy": {"type": "delimiter", "delimiter": "[a-"}}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("[a-"), "{msg}");
    assert!(msg.contains("unclosed character class"), "{msg}");
    // The failed chunking made nothing.
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 0);
}

#[test]
fn unknown_ids_fail_with_their_own_codes() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, TEXT);
    let bogus = "11111111-1111-4111-8111-111111111111";
    let e = env.fail("rlm.docs.peek", json!({"session_id": sid, "doc_id": bogus}));
    assert!(expect_code(&e, "document_not_found").contains(bogus));
    let e = env.fail(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": bogus, "strategy": {"type": "fixed", "chunk_size": 5}}),
    );
    expect_code(&e, "document_not_found");
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": "line", "doc_ids": [doc, bogus]}),
    );
    assert!(expect_code(&e, "document_not_found").contains(bogus));
    let e = env.fail(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [bogus]}),
    );
    assert!(expect_code(&e, "span_not_found").contains(bogus));
    let e = env.fail(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": bogus}),
    );
    assert!(expect_code(&e, "artifact_not_found").contains(bogus));
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "note", "content": {}, "span_id": bogus}),
    );
    expect_code(&e, "span_not_found");
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "note", "content": {}, "span": {"doc_id": bogus, "start": 0, "end": 1}}),
    );
    expect_code(&e, "document_not_found");
    assert_eq!(env.count("SELECT count(*) FROM artifacts", []), 0);
}

#[test]
fn ids_of_another_session_are_never_reachable_and_the_error_says_so() {
    let env = Env::new();
    let a = env.session();
    let b = env.session();
    let doc_a = env.load(&a, TEXT);
    let doc_b = env.load(&b, "other text of session b, with the harbor too\n");
    let span_a =
        env.chunk(&a, &doc_a, json!({"type": "lines", "line_count": 1}))["spans"][0]["span_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let art_a = env.call(
        "rlm.artifact.store",
        json!({"session_id": a, "type": "note", "content": {"k": 1}, "span_id": span_a}),
    )["artifact_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let says_other = |e: &rlm::ToolError, code: &str| {
        let msg = expect_code(e, code);
        assert!(
            msg.contains("another session"),
            "the error says the id belongs to another session: {msg}"
        );
    };
    says_other(
        &env.fail("rlm.docs.peek", json!({"session_id": b, "doc_id": doc_a})),
        "document_not_found",
    );
    says_other(
        &env.fail(
            "rlm.chunk.create",
            json!({"session_id": b, "doc_id": doc_a, "strategy": {"type": "fixed", "chunk_size": 5}}),
        ),
        "document_not_found",
    );
    says_other(
        &env.fail(
            "rlm.search.query",
            json!({"session_id": b, "query": "harbor", "doc_ids": [doc_a]}),
        ),
        "document_not_found",
    );
    says_other(
        &env.fail(
            "rlm.span.get",
            json!({"session_id": b, "span_ids": [span_a]}),
        ),
        "span_not_found",
    );
    says_other(
        &env.fail(
            "rlm.artifact.get",
            json!({"session_id": b, "artifact_id": art_a}),
        ),
        "artifact_not_found",
    );
    says_other(
        &env.fail(
            "rlm.artifact.store",
            json!({"session_id": b, "type": "note", "content": {}, "span_id": span_a}),
        ),
        "span_not_found",
    );
    says_other(
        &env.fail(
            "rlm.artifact.store",
            json!({"session_id": b, "type": "note", "content": {}, "span": {"doc_id": doc_a, "start": 0, "end": 3}}),
        ),
        "document_not_found",
    );

    // Session b's own views never show a's data.
    let list = env.call("rlm.docs.list", json!({"session_id": b}));
    assert_eq!(list["total"], 1);
    assert_ne!(list["documents"][0]["doc_id"], doc_a.as_str());
    assert_eq!(
        env.call("rlm.artifact.list", json!({"session_id": b}))["artifacts"],
        json!([])
    );
    for method in ["bm25", "literal"] {
        let r = env.search(&b, json!({"query": "report", "method": method}));
        assert_eq!(r["matches"], json!([]), "{method}: {r}");
        let r = env.search(&b, json!({"query": "harbor", "method": method}));
        assert_eq!(
            r["matches"].as_array().unwrap().len(),
            1,
            "b's own document has the harbor: {method}: {r}"
        );
        assert_eq!(r["matches"][0]["doc_id"], doc_b.as_str(), "{method}: {r}");
        for m in r["matches"].as_array().unwrap() {
            assert_ne!(m["doc_id"], doc_a.as_str(), "{method}: {r}");
        }
    }
    // Nothing was attached to a's span through b.
    assert_eq!(
        env.count("SELECT count(*) FROM artifacts WHERE session_id = ?1", [&b]),
        0
    );
}

#[test]
fn arguments_that_are_not_an_object_are_invalid_argument() {
    let env = Env::new();
    let e = env.fail("rlm.session.create", json!([1, 2]));
    expect_code(&e, "invalid_argument");
    let e = env.fail("rlm.session.info", json!("abc"));
    expect_code(&e, "invalid_argument");
    // Null arguments are an empty object: create works, info lacks its session_id.
    assert!(is_uuid(str_of(
        &env.call("rlm.session.create", Value::Null),
        "session_id"
    )));
    let e = env.fail("rlm.session.info", Value::Null);
    assert!(expect_code(&e, "invalid_argument").contains("session_id"));
}
