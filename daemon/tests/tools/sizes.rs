//! Every response fits a client: with `max_chars_per_response` at its
//! minimum (1000), no answer serializes to much more, lists are cut with
//! `truncated: true` and full counts, and the rest stays reachable.

use std::collections::BTreeSet;

use serde_json::json;

use crate::common::*;

const CAP: u64 = 1000;
/// The cap plus "a few hundred".
const FITS: usize = 1500;

#[test]
fn a_large_inline_load_answers_within_the_cap_and_lists_every_document_by_pages() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": CAP}));
    let texts: Vec<String> = (0..300)
        .map(|i| format!("inline document number {i}: {}", "word ".repeat(i % 7)))
        .collect();
    let r = env.load_answer(&sid, &texts);
    assert!(json_len(&r) <= FITS, "{} chars", json_len(&r));
    assert_eq!(r["truncated"], true);
    assert_eq!(r["loaded_count"], 300);
    let shown = r["loaded"].as_array().unwrap();
    assert!(shown.len() < 300);
    let total: u64 = texts.iter().map(|t| char_len(t)).sum();
    assert_eq!(r["total_chars"], total, "full counts");
    let tokens: u64 = texts.iter().map(|t| char_len(t).div_ceil(4)).sum();
    assert_eq!(r["total_tokens_est"], tokens);
    assert_eq!(env.info(&sid)["document_count"], 300);

    // docs.list pages reach every document, in load order, each page fitting.
    let mut seen = Vec::new();
    let mut offset = 0u64;
    loop {
        let page = env.call(
            "rlm.docs.list",
            json!({"session_id": sid, "offset": offset}),
        );
        assert!(json_len(&page) <= FITS, "{} chars", json_len(&page));
        assert_eq!(page["total"], 300);
        let docs = page["documents"].as_array().unwrap();
        assert!(!docs.is_empty(), "{page}");
        seen.extend(docs.iter().cloned());
        if page["has_more"] == false {
            assert!(page["next_offset"].is_null());
            break;
        }
        assert_eq!(page["truncated"], true, "a short page says it was cut");
        offset = u64_of(&page, "next_offset");
        assert_eq!(offset, seen.len() as u64);
    }
    assert_eq!(seen.len(), 300);
    let ids: BTreeSet<&str> = seen.iter().map(|d| d["doc_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 300);
    for (d, t) in seen.iter().zip(&texts) {
        assert_eq!(d["content_hash"], sha256_hex(t.as_bytes()), "load order");
        assert_eq!(d["length_chars"], char_len(t));
    }
    // The entries load showed are the first documents.
    for (s, d) in shown.iter().zip(&seen) {
        assert_eq!(s["doc_id"], d["doc_id"]);
    }
}

#[test]
fn a_load_with_hundreds_of_errors_answers_within_the_cap() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": CAP}));
    let mut sources: Vec<_> = (0..300)
        .map(|i| json!({"type": "file", "path": format!("missing/dir/file-{i:04}.txt")}))
        .collect();
    sources.push(json!({"type": "inline", "content": "the one that loads"}));
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": sources}),
    );
    assert!(json_len(&r) <= FITS, "{} chars", json_len(&r));
    assert_eq!(r["error_count"], 300);
    assert_eq!(r["loaded_count"], 1);
    assert_eq!(r["truncated"], true);
    let errors = r["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(errors[0].as_str().unwrap().contains("file-0000.txt"), "{r}");
    assert_eq!(
        r["loaded"][0]["source"], "inline",
        "the loaded one is still shown"
    );
}

#[test]
fn every_tool_answers_within_the_minimum_cap() {
    let env = Env::new();
    let sid =
        env.session_with(json!({"max_chars_per_response": CAP, "max_chars_per_peek": 10_000}));
    let text: String = (0..400)
        .map(|i| {
            format!("line {i}: the quick brown fox jumps over the lazy dog \"quoted\" \\ tab\t\n")
        })
        .collect();
    let doc = env.load(&sid, &text);
    let check = |what: &str, v: &serde_json::Value| {
        assert!(json_len(v) <= FITS, "{what}: {} chars", json_len(v));
    };
    let p = env.call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}));
    check("peek", &p);
    assert_eq!(p["truncated"], true);
    let c = str_of(&p, "content");
    assert_eq!(c, chars(&text, 0, char_len(c)));
    assert_eq!(p["span"]["end"], char_len(c), "the end actually returned");
    let ch = env.chunk(&sid, &doc, json!({"type": "lines", "line_count": 50}));
    check("chunk", &ch);
    let ids: Vec<String> = env
        .chunk_all(&sid, &doc, json!({"type": "lines", "line_count": 50}))
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 8);
    let g = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": ids}));
    check("span.get", &g);
    // Contexts of 500 chars: no match fits whole under this cap, and none
    // comes back (until matches are cut rather than dropped).
    let s = env.search(
        &sid,
        json!({"query": "fox", "limit": 50, "context_chars": 500}),
    );
    check("bm25", &s);
    assert_eq!(s["truncated"], true);
    // Contexts of 100 chars: one match fits whole, so matches come back, not all 50.
    assert!(match_cost_bound(&text, "fox", 100) <= list_room(CAP));
    let s = env.search(
        &sid,
        json!({"query": "fox", "limit": 50, "context_chars": 100}),
    );
    check("bm25 with room for a match", &s);
    assert_eq!(s["truncated"], true);
    let n = s["matches"].as_array().unwrap().len();
    assert!((1..50).contains(&n), "{s}");
    for m in s["matches"].as_array().unwrap() {
        assert!(json_len(m) < match_cost_bound(&text, "fox", 100), "{m}");
    }
    check("info", &env.info(&sid));
    check(
        "list",
        &env.call("rlm.docs.list", json!({"session_id": sid, "limit": 1000})),
    );
    check(
        "artifacts",
        &env.call("rlm.artifact.list", json!({"session_id": sid})),
    );
    for method in ["regex", "literal"] {
        let s = env.search(
            &sid,
            json!({"query": "fox", "method": method, "limit": 50, "context_chars": 500}),
        );
        check(method, &s);
        assert_eq!(s["truncated"], true, "{method}");
        let s = env.search(
            &sid,
            json!({"query": "fox", "method": method, "limit": 50, "context_chars": 100}),
        );
        check(method, &s);
        assert_eq!(s["truncated"], true, "{method}");
        let n = s["matches"].as_array().unwrap().len();
        assert!((1..50).contains(&n), "{method}: {s}");
        for m in s["matches"].as_array().unwrap() {
            assert!(json_len(m) < match_cost_bound(&text, "fox", 100), "{m}");
        }
    }
    check(
        "close",
        &env.call("rlm.session.close", json!({"session_id": sid})),
    );
}

/// Issue 11's case: one match that does not fit whole under the cap comes
/// back cut around its hit, not dropped (`matches: []` before).
#[test]
fn a_match_too_large_for_the_cap_comes_back_cut_around_its_hit() {
    let env = Env::new();
    // The text for the scans; bm25 needs words around its term.
    let joined = format!("{}findme1{}", "a".repeat(500), "b".repeat(500));
    let spaced = format!("{}findme1 {}", "a ".repeat(250), "b ".repeat(250));
    for (method, text) in [("literal", &joined), ("regex", &joined), ("bm25", &spaced)] {
        let sid = env.session_with(json!({"max_chars_per_response": CAP}));
        env.load(&sid, text);
        let query = if method == "bm25" {
            "findme1"
        } else {
            "findme"
        };
        let r = env.search(
            &sid,
            json!({"query": query, "method": method, "context_chars": 400, "limit": 1}),
        );
        let m = &r["matches"][0];
        assert!(m.is_object(), "{method}: no match came back: {r}");
        assert_eq!(r["truncated"], true, "{method}: {r}");
        assert!(json_len(&r) <= FITS, "{method}: {} chars", json_len(&r));
        let ctx = str_of(m, "context");
        assert!(ctx.contains("findme"), "{method}: {m}");
        let (a, b) = (u64_of(&m["span"], "start"), u64_of(&m["span"], "end"));
        assert_eq!(
            ctx,
            chars(text, a, b),
            "{method}: the context is the span's text"
        );
        let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
        assert!(hs < he && he <= char_len(ctx), "{method}: {m}");
        assert!(
            chars(ctx, hs, he).to_lowercase().starts_with("findme"),
            "{method}: the highlight marks the hit: {m}"
        );
        // Cut on both sides of the hit, not only at its end.
        assert!(a > 100 && b < char_len(text) - 100, "{method}: {m}");
    }
}

/// Issue 11's case: a term that occurs every three characters makes a bm25
/// match's highlights outweigh its context; they are bounded (nearest the
/// first hit kept, the answer says it was cut) and the match still comes.
#[test]
fn highlights_never_outweigh_the_context_they_mark() {
    let env = Env::new();
    let sid = env.session();
    let text = "ab ".repeat(20_000);
    env.load(&sid, &text);
    for (method, context_chars) in [("bm25", 2000), ("bm25", 4000), ("literal", 2000)] {
        let r = env.search(
            &sid,
            json!({"query": "ab", "method": method, "context_chars": context_chars, "limit": 1}),
        );
        let m = &r["matches"][0];
        assert!(m.is_object(), "{method} {context_chars}: no match: {r}");
        // A scan marks the hits it kept (a few more than `limit`): nothing to bound.
        if method == "bm25" {
            assert_eq!(r["truncated"], true, "{method} {context_chars}");
        }
        let ctx = str_of(m, "context");
        let marks = json_len(&m["highlights"]);
        assert!(
            marks <= json_len(&m["context"]) + 2,
            "{method} {context_chars}: highlights {marks} chars for a context of {}",
            char_len(ctx)
        );
        let hl = m["highlights"].as_array().unwrap();
        assert!(hl.len() > 10, "{method} {context_chars}: {}", hl.len());
        let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
        assert!(
            hl.iter()
                .any(|h| (u64_of(h, "start"), u64_of(h, "end")) == (hs, he)),
            "{method} {context_chars}: the first hit stays marked"
        );
        for h in hl {
            let (s, e) = (u64_of(h, "start"), u64_of(h, "end"));
            assert_eq!(chars(ctx, s, e), str_of(h, "term"));
        }
        assert!(
            json_len(&r) <= 2 * (context_chars as usize) + 2000,
            "{}",
            json_len(&r)
        );
    }
}

/// The default cap in estimated tokens of one response.
const TOKENS: u64 = 8_000;

/// Estimated tokens of an answer as the client receives it.
fn tokens_of(v: &serde_json::Value) -> u64 {
    rlm::tokens::estimate(&v.to_string())
}

/// Issue 11's cases: text that costs several tokens a character (CJK,
/// emoji) and JSON full of hashes and ids stay under the default cap in
/// estimated tokens (Claude Code warns from 10,000 real ones), cut and
/// saying so, where the cap in characters alone let 62,000 to 123,000
/// tokens through.
#[test]
fn answers_stay_under_the_default_cap_in_tokens() {
    let env = Env::new();
    let sid = env.session();
    let cjk: String = "漢字仮名交じり文".chars().cycle().take(60_000).collect();
    let emoji: String = "😀🎉🚀✨".chars().cycle().take(10_000).collect();
    let doc_cjk = env.load(&sid, &cjk);
    let doc_emoji = env.load(&sid, &emoji);

    let span = env.call(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc_cjk, "strategy": {"type": "fixed", "chunk_size": 60000}}),
    );
    let span_id = span["spans"][0]["span_id"].as_str().unwrap().to_owned();
    let got = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [span_id]}),
    );
    assert_eq!(got["spans"][0]["truncated"], true, "{}", json_len(&got));
    assert!(
        tokens_of(&got) <= TOKENS,
        "span.get: {} tokens",
        tokens_of(&got)
    );
    let kept = char_len(str_of(&got["spans"][0], "content"));
    assert!(kept > 2_000, "span.get kept {kept} characters");

    let peek = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc_emoji}),
    );
    assert_eq!(peek["truncated"], true);
    assert!(
        tokens_of(&peek) <= TOKENS,
        "peek: {} tokens",
        tokens_of(&peek)
    );
    assert_eq!(
        u64_of(&peek["span"], "end"),
        char_len(str_of(&peek, "content")),
        "the span says where the cut content ends"
    );

    let found = env.call(
        "rlm.search.query",
        json!({"session_id": sid, "query": "字", "method": "literal", "limit": 100, "context_chars": 2000}),
    );
    assert_eq!(found["truncated"], true);
    assert!(!found["matches"].as_array().unwrap().is_empty());
    assert!(
        tokens_of(&found) <= TOKENS,
        "search: {} tokens",
        tokens_of(&found)
    );

    // Hashes and ids: 400 documents' entries of `loaded`, then of docs.list.
    let texts: Vec<String> = (0..400).map(|i| format!("document {i}")).collect();
    let sid2 = env.session();
    let loaded = env.load_answer(&sid2, &texts);
    assert_eq!(loaded["loaded_count"], 400);
    assert_eq!(loaded["truncated"], true);
    assert!(
        tokens_of(&loaded) <= TOKENS,
        "load: {} tokens",
        tokens_of(&loaded)
    );
    let listed = env.call("rlm.docs.list", json!({"session_id": sid2, "limit": 1000}));
    assert!(
        tokens_of(&listed) <= TOKENS,
        "list: {} tokens",
        tokens_of(&listed)
    );
    assert!(listed["next_offset"].is_u64(), "the rest is one page away");
}

/// A session's cap in tokens can be raised (and lowered) like its cap in
/// characters, within bounds; sessions stored before it existed get the default.
#[test]
fn the_cap_in_tokens_is_a_session_setting() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_tokens_per_response": 40_000}));
    assert_eq!(env.info(&sid)["config"]["max_tokens_per_response"], 40_000);
    let cjk: String = "漢".repeat(20_000);
    let doc = env.load(&sid, &cjk);
    let peek = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "end": 9000}),
    );
    // 9,000 CJK characters are 27,000 estimated tokens: under 40,000.
    assert_eq!(peek["truncated"], false);
    let err = env.fail(
        "rlm.session.create",
        json!({"config": {"max_tokens_per_response": 10}}),
    );
    assert!(
        err.message.contains("max_tokens_per_response"),
        "{}",
        err.message
    );
    assert_eq!(
        env.info(&env.session())["config"]["max_tokens_per_response"],
        TOKENS
    );
    // Larger answers asked for in characters only: the cap in tokens follows.
    let big = env.session_with(json!({"max_chars_per_response": 2_000_000}));
    assert_eq!(env.info(&big)["config"]["max_tokens_per_response"], 500_000);
    let small = env.session_with(json!({"max_chars_per_response": 2_000}));
    assert_eq!(
        env.info(&small)["config"]["max_tokens_per_response"],
        TOKENS
    );
}

/// Issue 11's case: values a caller sends come back bounded or not at all:
/// a 300,000-character name or model hint is refused by its length (it
/// would come back whole in every session.info), and errors that quote a
/// huge id or pattern keep its start, their advice, and say how much they
/// left out.
#[test]
fn no_value_a_caller_sends_is_echoed_unbounded() {
    let env = Env::new();
    let huge = "n".repeat(300_000);
    for args in [
        json!({"name": huge}),
        json!({"config": {"model_hints": {"root_model": huge}}}),
    ] {
        let err = env.fail("rlm.session.create", args);
        assert!(err.message.len() < 300, "{}", err.message.len());
        assert!(err.message.contains("300000 characters"), "{}", err.message);
    }
    let sid = env.session_with(json!({"model_hints": {"bulk_model": "m".repeat(200)}}));
    let info = env.info(&sid);
    assert!(json_len(&info) < 3_000);
    for (tool, args) in [
        ("rlm.session.info", json!({"session_id": huge})),
        ("rlm.docs.peek", json!({"session_id": sid, "doc_id": huge})),
        (
            "rlm.span.get",
            json!({"session_id": sid, "span_ids": [huge]}),
        ),
        (
            "rlm.artifact.get",
            json!({"session_id": sid, "artifact_id": huge}),
        ),
        (
            "rlm.search.query",
            json!({"session_id": sid, "query": format!("({huge}"), "method": "regex"}),
        ),
    ] {
        let err = env.fail(tool, args);
        let answer = serde_json::to_string(&err).unwrap();
        assert!(answer.len() < 4_000, "{tool}: {} characters", answer.len());
    }
}
