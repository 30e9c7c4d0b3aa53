//! `rlm.docs.load`, `rlm.docs.list`, `rlm.docs.peek`: sources, paths,
//! dedupe, ids, token estimates, code-point offsets, peeking and paging
//! (folder and glob walks are `walks.rs`'s, re-loads `reloads.rs`'s).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;

/// Emoji (one and several code points), combining marks, CJK, astral letters.
const UNICODE: &str = "héllo wörld 😀 — e\u{301}galite\u{301} 日本語のテキスト 👨\u{200d}👩\u{200d}👧 needle 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ﬁn\r\nend";

pub(super) fn sources_of(r: &Value) -> BTreeSet<String> {
    r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].as_str().unwrap().to_owned())
        .collect()
}

pub(super) fn canon(p: &Path) -> String {
    p.canonicalize().unwrap().display().to_string()
}

pub(super) fn load(env: &Env, sid: &str, sources: Value) -> Value {
    env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": sources}),
    )
}

#[test]
fn offsets_lengths_and_hashes_count_code_points() {
    let env = Env::new();
    let sid = env.session();
    let r = load(&env, &sid, json!([{"type": "inline", "content": UNICODE}]));
    let d = &r["loaded"][0];
    let n = char_len(UNICODE);
    assert!(n < UNICODE.len() as u64, "the text has multi-byte chars");
    assert_eq!(d["length_chars"], n);
    assert_eq!(d["length_tokens_est"], n.div_ceil(4));
    assert_eq!(d["content_hash"], sha256_hex(UNICODE.as_bytes()));
    assert_eq!(d["source"], "inline");
    let doc = str_of(d, "doc_id").to_owned();

    // Every window of up to 6 code points reads back exactly as the chars slice.
    for start in 0..=n {
        for end in [start, (start + 1).min(n), (start + 6).min(n)] {
            let p = env.call(
                "rlm.docs.peek",
                json!({"session_id": sid, "doc_id": doc, "start": start, "end": end}),
            );
            let want = chars(UNICODE, start, end);
            assert_eq!(p["content"], want.as_str(), "[{start}, {end})");
            assert_eq!(p["span"]["start"], start);
            assert_eq!(p["span"]["end"], end);
            assert_eq!(p["content_hash"], sha256_hex(want.as_bytes()));
            assert_eq!(p["total_length"], n);
            assert_eq!(p["truncated"], false);
        }
    }
    // A combining mark is its own code point; an emoji is one, a ZWJ family five.
    let e_at = UNICODE.chars().position(|c| c == '\u{301}').unwrap() as u64 - 1;
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": e_at, "end": e_at + 2}),
    );
    assert_eq!(p["content"], "e\u{301}");
    let smile = UNICODE.chars().position(|c| c == '😀').unwrap() as u64;
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": smile, "end": smile + 1}),
    );
    assert_eq!(p["content"], "😀");
    let family = UNICODE.chars().position(|c| c == '👨').unwrap() as u64;
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": family, "end": family + 5}),
    );
    assert_eq!(p["content"], "👨\u{200d}👩\u{200d}👧");
    // The whole document, by default bounds.
    let p = env.call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}));
    assert_eq!(p["content"], UNICODE);
    assert_eq!(p["span"]["end"], n);

    let info = env.info(&sid);
    assert_eq!(info["total_chars"], n);
    assert_eq!(info["total_tokens_est"], n.div_ceil(4));
}

#[test]
fn chunks_spans_and_search_of_a_unicode_document_use_code_points() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, UNICODE);
    let n = char_len(UNICODE);

    let spans = env.chunk_all(&sid, &doc, json!({"type": "fixed", "chunk_size": 7}));
    assert_eq!(spans.len() as u64, n.div_ceil(7));
    let ids: Vec<&str> = spans
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    let got = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": ids}));
    let mut joined = String::new();
    for (s, g) in spans.iter().zip(got["spans"].as_array().unwrap()) {
        let (a, b) = (u64_of(&s["span"], "start"), u64_of(&s["span"], "end"));
        let want = chars(UNICODE, a, b);
        assert_eq!(s["length_chars"], b - a);
        assert_eq!(s["preview"], want.as_str());
        assert_eq!(s["content_hash"], sha256_hex(want.as_bytes()));
        assert_eq!(g["content"], want.as_str());
        joined.push_str(&want);
    }
    assert_eq!(joined, UNICODE);

    // A word with non-ASCII letters is found and highlighted whole.
    let r = env.search(&sid, json!({"query": "wörld"}));
    let m = &r["matches"][0];
    let ctx = str_of(m, "context");
    let h = &m["highlights"][0];
    assert_eq!(
        chars(ctx, u64_of(h, "start"), u64_of(h, "end")),
        "wörld",
        "{r}"
    );
    assert_eq!(h["term"], "wörld");
    // The scans (regex, literal) after BM25.
    for method in ["bm25", "literal", "regex"] {
        let r = env.search(&sid, json!({"query": "needle", "method": method}));
        let m = &r["matches"][0];
        assert_eq!(m["doc_id"], doc.as_str(), "{method}: {r}");
        let (a, b) = (u64_of(&m["span"], "start"), u64_of(&m["span"], "end"));
        let ctx = str_of(m, "context");
        assert_eq!(
            ctx,
            chars(UNICODE, a, b),
            "{method}: context is the span's chars"
        );
        let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
        assert_eq!(chars(ctx, hs, he), "needle", "{method}: {r}");
        let needle_at = UNICODE.find("needle").unwrap();
        assert_eq!(
            a + hs,
            UNICODE[..needle_at].chars().count() as u64,
            "{method}: the hit is at its code-point offset"
        );
    }
    let r = env.search(&sid, json!({"query": "WÖRLD", "method": "literal"}));
    let m = &r["matches"][0];
    let ctx = str_of(m, "context");
    assert_eq!(
        chars(
            ctx,
            u64_of(m, "highlight_start"),
            u64_of(m, "highlight_end")
        ),
        "wörld",
        "{r}"
    );
}

#[test]
fn relative_paths_resolve_against_the_clients_working_directory() {
    let env = Env::new();
    let sid = env.session();
    // Two clients with different working directories, the same relative path.
    let one = env.dir.path().join("client-one");
    let two = env.dir.path().join("client-two");
    for (dir, text) in [
        (&one, "first client's notes"),
        (&two, "second client's notes"),
    ] {
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        std::fs::write(dir.join("notes/today.txt"), text).unwrap();
    }
    let mut hashes = Vec::new();
    for (dir, text) in [
        (&one, "first client's notes"),
        (&two, "second client's notes"),
    ] {
        let ctx = rlmd::CallContext::with_cwd(dir);
        let r = ok(
            "load",
            env.engine.call(
                "rlm.docs.load",
                json!({"session_id": sid, "sources": [{"type": "file", "path": "notes/today.txt"}]}),
                &ctx,
            ),
        );
        assert_eq!(r["errors"], json!([]), "{r}");
        let d = &r["loaded"][0];
        assert_eq!(d["content_hash"], sha256_hex(text.as_bytes()));
        assert_eq!(d["source"], canon(&dir.join("notes/today.txt")));
        assert!(Path::new(str_of(d, "source")).is_absolute());
        hashes.push(d["content_hash"].clone());
    }
    assert_ne!(hashes[0], hashes[1]);
    // Neither file exists relative to the process's own working directory.
    assert!(!Path::new("notes/today.txt").exists());

    // A relative glob and directory resolve against it as well.
    let ctx = rlmd::CallContext::with_cwd(&one);
    let r = ok(
        "load",
        env.engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [
                {"type": "glob", "path": "notes/*.txt"},
                {"type": "directory", "path": "notes"},
                {"type": "file", "path": "./notes/../notes/today.txt"}
            ]}),
            &ctx,
        ),
    );
    assert_eq!(r["loaded_count"], 3, "{r}");
    assert_eq!(
        sources_of(&r),
        BTreeSet::from([canon(&one.join("notes/today.txt"))])
    );
}

#[test]
fn the_same_content_is_stored_once_but_each_load_gets_its_own_doc_id() {
    let env = Env::new();
    let a = env.session();
    let b = env.session();
    let text = "shared content, stored once\n".repeat(50);
    let da = env.load(&a, &text);
    let db = env.load(&b, &text);
    let dup = env.load_all(&a, &[&text, &text]);
    env.write_file("same.txt", &text);
    let r = load(&env, &b, json!([{"type": "file", "path": "same.txt"}]));
    let df = str_of(&r["loaded"][0], "doc_id").to_owned();
    let ids = BTreeSet::from([da.clone(), db.clone(), dup[0].clone(), dup[1].clone(), df]);
    assert_eq!(ids.len(), 5, "five loads, five doc_ids");
    let hash = sha256_hex(text.as_bytes());
    assert_eq!(
        env.count("SELECT count(*) FROM blobs WHERE hash = ?1", [&hash]),
        1
    );
    assert_eq!(env.count("SELECT count(*) FROM blobs", []), 1);
    assert_eq!(
        env.count("SELECT count(*) FROM documents WHERE hash = ?1", [&hash]),
        5
    );
    // The text's bytes are in the blob store exactly once, whatever its layout.
    let blob_files = files_below(&env.data().join("blobs"), &["tmp"]);
    let copies: usize = blob_files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            memchr::memmem::find_iter(&bytes, text.as_bytes()).count()
        })
        .sum();
    assert_eq!(copies, 1, "stored once: {blob_files:?}");
    // Each document reads back through its own session.
    for (sid, doc) in [(&a, &da), (&b, &db)] {
        let p = env.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "end": 28}),
        );
        assert_eq!(p["content"], "shared content, stored once\n");
    }
}

/// Documents' ids sort in load order (time-ordered UUIDs), within a load and
/// across loads: a big load appends to the documents' id index instead of
/// writing at random pages of it.
#[test]
fn doc_ids_follow_load_order() {
    let env = Env::new();
    let sid = env.session();
    let texts: Vec<String> = (0..300).map(|i| format!("text number {i}\n")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut ids = env.load_all(&sid, &refs);
    ids.extend(env.load_all(&sid, &refs[..50]));
    for id in &ids {
        let u = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(u.get_version_num(), 7, "{id} is a time-ordered UUID");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "doc_ids in load order");
}

#[test]
fn token_estimates_are_ceil_of_chars_over_four_unless_hinted() {
    let env = Env::new();
    let sid = env.session();
    env.write_file("hinted.txt", "0123456789");
    let r = load(
        &env,
        &sid,
        json!([
            {"type": "inline", "content": "12345678"},
            {"type": "inline", "content": "123456789"},
            {"type": "inline", "content": "é😀€"},
            {"type": "inline", "content": ""},
            {"type": "inline", "content": "abc", "token_count_hint": 999},
            {"type": "file", "path": "hinted.txt", "token_count_hint": 42},
            {"type": "file", "path": "hinted.txt"}
        ]),
    );
    let est: Vec<u64> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "length_tokens_est"))
        .collect();
    assert_eq!(est, vec![2, 3, 1, 0, 999, 42, 3]);
    let lens: Vec<u64> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "length_chars"))
        .collect();
    assert_eq!(lens, vec![8, 9, 3, 0, 3, 10, 10]);
    assert_eq!(r["total_tokens_est"], est.iter().sum::<u64>());
    assert_eq!(r["total_chars"], lens.iter().sum::<u64>());
    let info = env.info(&sid);
    assert_eq!(info["total_tokens_est"], est.iter().sum::<u64>());
    assert_eq!(info["document_count"], 7);
    // docs.list shows the same numbers, in load order.
    let list = env.call("rlm.docs.list", json!({"session_id": sid}));
    let listed: Vec<u64> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "length_tokens_est"))
        .collect();
    assert_eq!(listed, est);
    let ids: Vec<&Value> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["doc_id"])
        .collect();
    let loaded_ids: Vec<&Value> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["doc_id"])
        .collect();
    assert_eq!(ids, loaded_ids);
}

#[test]
fn peek_bounds_are_checked_against_the_documents_length() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "0123456789");
    for (start, end) in [(-1i64, -1i64), (11, -1), (0, 11), (5, 3), (0, -2), (11, 12)] {
        let e = env.fail(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "start": start, "end": end}),
        );
        let msg = expect_code(&e, "invalid_argument");
        assert!(
            msg.contains("10"),
            "[{start}, {end}) names the length: {msg}"
        );
        assert_eq!(e.to_json()["error"]["total_length"], 10, "{msg}");
    }
    for (start, end, want) in [
        (0i64, -1i64, "0123456789"),
        (10, -1, ""),
        (10, 10, ""),
        (0, 0, ""),
        (3, 7, "3456"),
        (9, 10, "9"),
    ] {
        let p = env.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "start": start, "end": end}),
        );
        assert_eq!(p["content"], want, "[{start}, {end})");
        assert_eq!(p["span"]["start"], start);
        assert_eq!(p["span"]["end"], start as u64 + want.len() as u64);
        assert_eq!(p["truncated"], false);
    }
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 4}),
    );
    assert_eq!(p["content"], "456789", "end defaults to -1");
}

#[test]
fn peek_is_cut_at_max_chars_per_peek_and_says_where_it_ended() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_peek": 100}));
    let text: String = (0..250)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let text = text.replacen('a', "ä", 3); // some multi-byte chars too
    let doc = env.load(&sid, &text);
    let p = env.call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}));
    assert_eq!(p["content"], chars(&text, 0, 100));
    assert_eq!(p["span"]["end"], 100);
    assert_eq!(p["truncated"], true);
    assert_eq!(p["total_length"], 250);
    assert_eq!(
        p["content_hash"],
        sha256_hex(chars(&text, 0, 100).as_bytes())
    );
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 50, "end": 180}),
    );
    assert_eq!(p["content"], chars(&text, 50, 150));
    assert_eq!(p["span"], json!({"doc_id": doc, "start": 50, "end": 150}));
    assert_eq!(p["truncated"], true);
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 150, "end": 250}),
    );
    assert_eq!(p["content"], chars(&text, 150, 250));
    assert_eq!(p["truncated"], false, "exactly the cap is not cut");
}

#[test]
fn docs_list_pages_in_load_order() {
    let env = Env::new();
    let sid = env.session();
    let texts: Vec<String> = (0..25).map(|i| format!("document number {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = env.load_all(&sid, &refs);
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let r = env.call(
            "rlm.docs.list",
            json!({"session_id": sid, "limit": 10, "offset": offset}),
        );
        assert_eq!(r["total"], 25);
        let page = r["documents"].as_array().unwrap();
        assert!(page.len() <= 10);
        seen.extend(
            page.iter()
                .map(|d| d["doc_id"].as_str().unwrap().to_owned()),
        );
        if r["has_more"] == false {
            assert!(r["next_offset"].is_null());
            break;
        }
        offset = u64_of(&r, "next_offset");
    }
    assert_eq!(seen, ids);
    let r = env.call("rlm.docs.list", json!({"session_id": sid, "offset": 100}));
    assert_eq!(r["documents"], json!([]));
    assert_eq!(r["has_more"], false);
}

#[test]
fn paging_passes_a_document_whose_source_fills_the_page() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let long_name = "n".repeat(3000);
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "inline", "content": "first", "name": "a"},
            {"type": "inline", "content": "second", "name": long_name},
            {"type": "inline", "content": "third", "name": "c"},
        ]}),
    );
    assert_eq!(r["loaded_count"], 3, "{r}");
    let mut sources = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 3, "paging does not advance: {sources:?}");
        let r = env.call(
            "rlm.docs.list",
            json!({"session_id": sid, "offset": offset}),
        );
        assert!(json_len(&r) <= 1000, "{}", json_len(&r));
        let page = r["documents"].as_array().unwrap();
        assert!(!page.is_empty(), "{r}");
        for d in page {
            let source = d["source"].as_str().unwrap();
            if source.starts_with('n') {
                assert_eq!(r["truncated"], true);
                assert_eq!(d["truncated"], true, "{d}");
                assert!(
                    source.len() > 100 && source.len() < 1000,
                    "{}",
                    source.len()
                );
            } else {
                assert!(d.get("truncated").is_none(), "{d}");
            }
            sources.push(source.chars().next().unwrap());
        }
        match r["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(sources, ['a', 'n', 'c']);
}
