//! `rlm.artifact.store`, `rlm.artifact.list`, `rlm.artifact.get`.

use serde_json::{Value, json};

use crate::common::*;

const TEXT: &str = "Chapter one: the storm.\nChapter two: the calm.\nChapter three: the end.\n";

fn store(env: &Env, sid: &str, extra: Value) -> Value {
    let mut args = json!({"session_id": sid, "type": "summary", "content": {"s": "x"}});
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    env.call("rlm.artifact.store", args)
}

/// An artifact made by a test: id, span id, type.
type Made = (String, Option<String>, &'static str);

fn list_ids(r: &Value) -> Vec<String> {
    r["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["artifact_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn artifacts_attach_to_spans_by_id_by_offsets_or_to_the_session() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, TEXT);
    let chunk = env.chunk(&sid, &doc, json!({"type": "lines", "line_count": 1}));
    let line2 = chunk["spans"][1].clone();
    let line2_id = str_of(&line2, "span_id").to_owned();

    // By span id.
    let by_id = store(
        &env,
        &sid,
        json!({"span_id": line2_id, "content": {"mood": "calm", "n": [1, 2]}, "provenance": {"model": "m1", "tool": "rlm", "custom": 7}}),
    );
    assert_eq!(by_id["span_id"], line2_id.as_str());
    let got = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": by_id["artifact_id"]}),
    );
    assert_eq!(got["span_id"], line2_id.as_str());
    assert_eq!(got["span"], line2["span"]);
    assert_eq!(got["type"], "summary");
    assert_eq!(got["content"], json!({"mood": "calm", "n": [1, 2]}));
    assert_eq!(got["provenance"]["model"], "m1");
    assert_eq!(got["provenance"]["tool"], "rlm");
    assert_eq!(
        got["provenance"]["custom"], 7,
        "extra provenance keys are kept"
    );
    assert!(is_utc_rfc3339(str_of(&got, "created_at")));

    // By offsets: a new span is made, readable like any other.
    let by_range = store(
        &env,
        &sid,
        json!({"type": "extraction", "span": {"doc_id": doc, "start": 13, "end": 22}}),
    );
    let new_span = str_of(&by_range, "span_id").to_owned();
    assert!(is_uuid(&new_span));
    assert_ne!(new_span, line2_id);
    let got = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": by_range["artifact_id"]}),
    );
    assert_eq!(got["span"], json!({"doc_id": doc, "start": 13, "end": 22}));
    assert_eq!(got["type"], "extraction");
    assert!(got["provenance"].is_null());
    let read = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [new_span]}),
    );
    assert_eq!(read["spans"][0]["content"], "the storm");
    // The whole document is a valid range, too.
    let whole = store(
        &env,
        &sid,
        json!({"span": {"doc_id": doc, "start": 0, "end": char_len(TEXT)}}),
    );
    assert!(whole["span_id"].is_string());

    // Session-level.
    let session_level = store(&env, &sid, json!({"type": "plan"}));
    assert!(session_level["span_id"].is_null());
    let got = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": session_level["artifact_id"]}),
    );
    assert!(got["span_id"].is_null());
    assert!(got["span"].is_null());
    assert_eq!(got["type"], "plan");
}

#[test]
fn span_offsets_outside_the_document_are_invalid_argument() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "0123456789");
    for (start, end) in [(0u64, 11u64), (11, 12), (7, 3), (10, 100)] {
        let e = env.fail(
            "rlm.artifact.store",
            json!({"session_id": sid, "type": "t", "content": {}, "span": {"doc_id": doc, "start": start, "end": end}}),
        );
        let msg = expect_code(&e, "invalid_argument");
        assert!(msg.contains("10"), "names the length: {msg}");
    }
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "t", "content": {}, "span": {"doc_id": doc, "start": -1, "end": 3}}),
    );
    expect_code(&e, "invalid_argument");
    assert_eq!(env.count("SELECT count(*) FROM artifacts", []), 0);
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 0);
}

#[test]
fn artifact_list_is_oldest_first_and_filters_by_span_and_type() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, TEXT);
    let chunk = env.chunk(&sid, &doc, json!({"type": "lines", "line_count": 1}));
    let s0 = chunk["spans"][0]["span_id"].as_str().unwrap().to_owned();
    let s1 = chunk["spans"][1]["span_id"].as_str().unwrap().to_owned();
    let mut made: Vec<Made> = Vec::new();
    for (span, kind) in [
        (Some(&s0), "summary"),
        (Some(&s1), "summary"),
        (None, "plan"),
        (Some(&s0), "classification"),
        (Some(&s0), "summary"),
        (None, "summary"),
    ] {
        let mut extra = json!({"type": kind});
        if let Some(s) = span {
            extra["span_id"] = json!(s);
        }
        let r = store(&env, &sid, extra);
        made.push((
            r["artifact_id"].as_str().unwrap().to_owned(),
            span.cloned(),
            kind,
        ));
    }
    let all = env.call("rlm.artifact.list", json!({"session_id": sid}));
    assert_eq!(
        list_ids(&all),
        made.iter().map(|m| m.0.clone()).collect::<Vec<_>>(),
        "oldest first"
    );
    let times: Vec<&str> = all["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    for a in all["artifacts"].as_array().unwrap() {
        let m = made.iter().find(|m| m.0 == a["artifact_id"]).unwrap();
        assert_eq!(a["type"], m.2);
        assert_eq!(a["span_id"].as_str(), m.1.as_deref());
    }
    let expect = |f: &dyn Fn(&Made) -> bool| -> Vec<String> {
        made.iter().filter(|m| f(m)).map(|m| m.0.clone()).collect()
    };
    let r = env.call(
        "rlm.artifact.list",
        json!({"session_id": sid, "span_id": s0}),
    );
    assert_eq!(
        list_ids(&r),
        expect(&|m| m.1.as_deref() == Some(s0.as_str()))
    );
    let r = env.call(
        "rlm.artifact.list",
        json!({"session_id": sid, "type": "summary"}),
    );
    assert_eq!(list_ids(&r), expect(&|m| m.2 == "summary"));
    let r = env.call(
        "rlm.artifact.list",
        json!({"session_id": sid, "type": "summary", "span_id": s0}),
    );
    assert_eq!(
        list_ids(&r),
        expect(&|m| m.2 == "summary" && m.1.as_deref() == Some(s0.as_str()))
    );
    let r = env.call(
        "rlm.artifact.list",
        json!({"session_id": sid, "type": "nothing-of-this-type"}),
    );
    assert_eq!(r["artifacts"], json!([]));
}

#[test]
fn artifact_list_pages_through_everything() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let mut made = Vec::new();
    for i in 0..40 {
        let r = store(
            &env,
            &sid,
            json!({"content": {"i": i}, "provenance": {"model": "some-model-name", "prompt_hash": sha256_hex(format!("{i}").as_bytes())}}),
        );
        made.push(r["artifact_id"].as_str().unwrap().to_owned());
    }
    let first = env.call("rlm.artifact.list", json!({"session_id": sid}));
    assert_eq!(
        first["truncated"], true,
        "40 artifacts do not fit 1000 chars"
    );
    assert!(json_len(&first) <= 1500, "{}", json_len(&first));
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let r = env.call(
            "rlm.artifact.list",
            json!({"session_id": sid, "offset": offset}),
        );
        assert!(json_len(&r) <= 1500);
        assert!(!r["artifacts"].as_array().unwrap().is_empty(), "{r}");
        seen.extend(list_ids(&r));
        match r["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(seen, made);
    // An explicit limit pages by it.
    let r = env.call(
        "rlm.artifact.list",
        json!({"session_id": sid, "offset": 10, "limit": 2}),
    );
    assert_eq!(list_ids(&r), made[10..12].to_vec());
    assert_eq!(r["next_offset"], 12);
}

#[test]
fn content_larger_than_the_response_cap_is_too_large() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "summary", "content": {"text": "x".repeat(2000)}}),
    );
    let msg = expect_code(&e, "too_large");
    assert!(msg.contains("max_chars_per_response"), "{msg}");
    assert_eq!(env.count("SELECT count(*) FROM artifacts", []), 0);
    // What fits is stored, and reads back within the cap.
    let r = store(&env, &sid, json!({"content": {"text": "y".repeat(400)}}));
    let got = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": r["artifact_id"]}),
    );
    assert_eq!(got["content"]["text"], "y".repeat(400));
    assert!(json_len(&got) <= 1500);
}

#[test]
fn provenance_counts_toward_what_must_read_back() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let e = env.fail(
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "summary", "content": {"s": "x"},
               "provenance": {"note": "p".repeat(2000)}}),
    );
    let msg = expect_code(&e, "too_large");
    assert!(msg.contains("provenance"), "{msg}");
    assert_eq!(env.count("SELECT count(*) FROM artifacts", []), 0);
}

#[test]
fn paging_passes_an_artifact_whose_provenance_fills_the_page() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let small = store(&env, &sid, json!({}));
    // Content and provenance fit rlm.artifact.get's answer, but a list
    // entry adds ids and a date, more than a page's room.
    let note = "p".repeat(list_room(1000) - 20);
    let big = store(
        &env,
        &sid,
        json!({"content": {}, "provenance": {"note": note}}),
    );
    let last = store(&env, &sid, json!({}));
    let mut seen = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 3, "paging does not advance: {seen:?}");
        let r = env.call(
            "rlm.artifact.list",
            json!({"session_id": sid, "offset": offset}),
        );
        assert!(json_len(&r) <= 1000, "{}", json_len(&r));
        let page = r["artifacts"].as_array().unwrap();
        assert!(!page.is_empty(), "{r}");
        for a in page {
            if a["artifact_id"] == big["artifact_id"] {
                assert_eq!(r["truncated"], true);
                assert_eq!(a["truncated"], true, "{a}");
                assert!(a["provenance"].is_null(), "{a}");
            } else {
                assert!(a.get("truncated").is_none(), "{a}");
            }
        }
        seen.extend(list_ids(&r));
        match r["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    let ids = [&small, &big, &last].map(|r| r["artifact_id"].as_str().unwrap().to_owned());
    assert_eq!(seen, ids);
    // The provenance is whole where it is asked for.
    let got = env.call(
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": big["artifact_id"]}),
    );
    assert_eq!(
        got["provenance"]["note"].as_str().unwrap().len(),
        note.len()
    );
}
