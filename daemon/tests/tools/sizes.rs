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
    let sources: Vec<_> = texts
        .iter()
        .map(|t| json!({"type": "inline", "content": t}))
        .collect();
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": sources}),
    );
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
