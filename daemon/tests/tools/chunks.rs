//! `rlm.chunk.create` (strategies against their definitions, cache, no leaks,
//! paging) and `rlm.span.get` (order, content, the response cap).

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use serde_json::{Value, json};

use crate::common::*;

/// Reference: fixed windows, in code points.
fn fixed_ref(len: u64, size: u64, overlap: u64, max: Option<u64>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if len == 0 {
        return out;
    }
    let mut start = 0;
    loop {
        let end = (start + size).min(len);
        out.push((start, end));
        if end == len || Some(out.len() as u64) == max {
            break;
        }
        start += size - overlap;
    }
    out
}

/// Reference: groups of lines (each with its `\n`), in code points.
fn lines_ref(text: &str, count: u64, overlap: u64, max: Option<u64>) -> Vec<(u64, u64)> {
    // Line starts in code points, and the end.
    let mut bounds = vec![0u64];
    let mut pos = 0u64;
    for c in text.chars() {
        pos += 1;
        if c == '\n' {
            bounds.push(pos);
        }
    }
    if *bounds.last().unwrap() != pos {
        bounds.push(pos); // a last line without `\n`
    }
    let lines = bounds.len() as u64 - 1;
    let mut out = Vec::new();
    if pos == 0 {
        return out;
    }
    let mut first = 0u64;
    loop {
        let last = (first + count).min(lines);
        out.push((bounds[first as usize], bounds[last as usize]));
        if last == lines || Some(out.len() as u64) == max {
            break;
        }
        first += count - overlap;
    }
    out
}

/// Reference: split at every match start of a (non-empty-matching) regex.
fn delimiter_ref(text: &str, pattern: &str) -> Vec<(u64, u64)> {
    let re = regex::Regex::new(pattern).unwrap();
    let to_char = |b: usize| text[..b].chars().count() as u64;
    let len = char_len(text);
    let mut cuts = vec![0u64];
    for m in re.find_iter(text) {
        let c = to_char(m.start());
        if c != *cuts.last().unwrap() {
            cuts.push(c);
        }
    }
    if len == 0 {
        return Vec::new();
    }
    cuts.push(len);
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

fn ranges(spans: &[Value]) -> Vec<(u64, u64)> {
    spans
        .iter()
        .map(|s| (u64_of(&s["span"], "start"), u64_of(&s["span"], "end")))
        .collect()
}

fn ids(spans: &[Value]) -> Vec<String> {
    spans
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks every span of a chunking against the text.
fn check_spans(text: &str, doc: &str, spans: &[Value]) {
    for (i, s) in spans.iter().enumerate() {
        assert_eq!(s["index"], i as u64, "{s}");
        assert_eq!(s["span"]["doc_id"], doc);
        let (a, b) = (u64_of(&s["span"], "start"), u64_of(&s["span"], "end"));
        let want = chars(text, a, b);
        assert_eq!(s["length_chars"], b - a);
        assert_eq!(s["content_hash"], sha256_hex(want.as_bytes()));
        assert_eq!(s["preview"], chars(text, a, (a + 100).min(b)));
        assert!(is_uuid(s["span_id"].as_str().unwrap()));
    }
}

fn sample_text() -> String {
    let mut s = String::new();
    for i in 0..40 {
        s.push_str(&format!("## Part {i}\n"));
        for j in 0..(i % 4) {
            s.push_str(&format!("line {j} of part {i}: naïve café ☕ déjà vu\n"));
        }
        if i % 7 == 3 {
            s.push('\n'); // an empty line
        }
    }
    s.push_str("a last line without newline ✓");
    s
}

#[test]
fn fixed_windows_follow_their_definition() {
    let env = Env::new();
    let sid = env.session();
    let text = sample_text();
    let doc = env.load(&sid, &text);
    let n = char_len(&text);
    for (size, overlap, max) in [
        (100u64, 0u64, None),
        (100, 30, None),
        (7, 6, None),
        (1000, 999, Some(5u64)),
        (n, 0, None),
        (n + 50, 10, None),
        (n - 1, 0, None),
        (64, 16, Some(3)),
    ] {
        let mut strategy = json!({"type": "fixed", "chunk_size": size, "overlap": overlap});
        if let Some(m) = max {
            strategy["max_chunks"] = json!(m);
        }
        let spans = env.chunk_all(&sid, &doc, strategy);
        let want = fixed_ref(n, size, overlap, max);
        assert_eq!(ranges(&spans), want, "fixed {size}/{overlap}/{max:?}");
        check_spans(&text, &doc, &spans);
    }
}

#[test]
fn line_groups_follow_their_definition() {
    let env = Env::new();
    let sid = env.session();
    let text = sample_text();
    let with_final_newline = format!("{text}\n");
    for t in [&text, &with_final_newline] {
        let doc = env.load(&sid, t);
        for (count, overlap, max) in [
            (1u64, 0u64, None),
            (3, 0, None),
            (3, 2, None),
            (10, 4, None),
            (5, 1, Some(4u64)),
            (100_000, 0, None),
        ] {
            let mut strategy = json!({"type": "lines", "line_count": count, "overlap": overlap});
            if let Some(m) = max {
                strategy["max_chunks"] = json!(m);
            }
            let spans = env.chunk_all(&sid, &doc, strategy);
            let want = lines_ref(t, count, overlap, max);
            assert_eq!(ranges(&spans), want, "lines {count}/{overlap}/{max:?}");
            check_spans(t, &doc, &spans);
        }
    }
    // A hand-checked case: newlines belong to their line.
    let doc = env.load(&sid, "a\nbb\nccc\ndddd\ne");
    let spans = env.chunk_all(
        &sid,
        &doc,
        json!({"type": "lines", "line_count": 2, "overlap": 1}),
    );
    let previews: Vec<&str> = spans
        .iter()
        .map(|s| s["preview"].as_str().unwrap())
        .collect();
    assert_eq!(previews, ["a\nbb\n", "bb\nccc\n", "ccc\ndddd\n", "dddd\ne"]);
}

#[test]
fn delimiter_splits_start_at_each_match() {
    let env = Env::new();
    let sid = env.session();
    let text = format!("Preamble before the first part.\n{}", sample_text());
    let doc = env.load(&sid, &text);
    for pattern in ["\n## ", "## Part \\d+", "☕", "é", "café ☕ déjà"] {
        let spans = env.chunk_all(
            &sid,
            &doc,
            json!({"type": "delimiter", "delimiter": pattern}),
        );
        let want = delimiter_ref(&text, pattern);
        assert_eq!(ranges(&spans), want, "delimiter {pattern:?}");
        check_spans(&text, &doc, &spans);
        // Every span but the first starts at a match.
        let re = regex::Regex::new(pattern).unwrap();
        for s in &spans[1..] {
            let rest = chars(&text, u64_of(&s["span"], "start"), char_len(&text));
            assert!(
                re.find(&rest).is_some_and(|m| m.start() == 0),
                "{pattern:?}: {s}"
            );
        }
    }
    // The preamble is its own span; a match at 0 makes no empty span.
    let spans = env.chunk_all(&sid, &doc, json!({"type": "delimiter", "delimiter": "## "}));
    assert_eq!(spans[0]["preview"], "Preamble before the first part.\n");
    let doc2 = env.load(&sid, "## a\n## b\n");
    let spans = env.chunk_all(
        &sid,
        &doc2,
        json!({"type": "delimiter", "delimiter": "## "}),
    );
    assert_eq!(ranges(&spans), vec![(0, 5), (5, 10)]);
    // No match: the whole document is one span.
    let spans = env.chunk_all(
        &sid,
        &doc,
        json!({"type": "delimiter", "delimiter": "NO SUCH TEXT"}),
    );
    assert_eq!(ranges(&spans), vec![(0, char_len(&text))]);
    // max_chunks stops early.
    let spans = env.chunk_all(
        &sid,
        &doc,
        json!({"type": "delimiter", "delimiter": "\n## ", "max_chunks": 3}),
    );
    assert_eq!(ranges(&spans), delimiter_ref(&text, "\n## ")[..3].to_vec());
}

#[test]
fn an_empty_document_has_no_spans() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "");
    for strategy in [
        json!({"type": "fixed", "chunk_size": 10}),
        json!({"type": "lines", "line_count": 1}),
        json!({"type": "delimiter", "delimiter": "x"}),
    ] {
        let r = env.chunk(&sid, &doc, strategy);
        assert_eq!(r["spans"], json!([]), "{r}");
        assert_eq!(r["total_spans"], 0);
        assert!(r["next_offset"].is_null());
        assert_eq!(r["truncated"], false);
    }
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 0);
}

#[test]
fn invalid_strategies_are_invalid_argument_with_a_reason() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "some text\nmore text\n");
    for (strategy, words) in [
        (
            json!({"type": "fixed", "chunk_size": 0}),
            vec!["chunk_size"],
        ),
        (
            json!({"type": "fixed", "chunk_size": 10, "overlap": 10}),
            vec!["overlap", "10"],
        ),
        (
            json!({"type": "lines", "line_count": 0}),
            vec!["line_count"],
        ),
        (
            json!({"type": "lines", "line_count": 3, "overlap": 5}),
            vec!["overlap"],
        ),
        (
            json!({"type": "fixed", "chunk_size": 10, "max_chunks": 0}),
            vec!["max_chunks"],
        ),
        (
            json!({"type": "delimiter", "delimiter": "(a"}),
            vec!["(a", "unclosed group"],
        ),
        (json!({"type": "sentences"}), vec!["sentences"]),
    ] {
        let e = env.fail(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc, "strategy": strategy}),
        );
        let msg = expect_code(&e, "invalid_argument");
        for w in words {
            assert!(msg.contains(w), "{strategy}: {w:?} in {msg}");
        }
    }
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 0);
    assert_eq!(env.count("SELECT count(*) FROM chunk_sets", []), 0);
}

#[test]
fn the_same_strategy_again_returns_the_same_spans_from_the_cache() {
    let env = Env::new();
    let sid = env.session();
    let text = sample_text();
    let doc = env.load(&sid, &text);
    let fixed = json!({"type": "fixed", "chunk_size": 120, "overlap": 20});
    let first = env.chunk(&sid, &doc, fixed.clone());
    assert_eq!(first["cached"], false);
    let again = env.chunk(&sid, &doc, fixed.clone());
    assert_eq!(again["cached"], true);
    assert_eq!(again["spans"], first["spans"]);
    assert_eq!(again["total_spans"], first["total_spans"]);
    // Default values spelled out are the same strategy.
    let spelled = env.chunk(
        &sid,
        &doc,
        json!({"type": "fixed", "chunk_size": 120, "overlap": 20, "max_chunks": null}),
    );
    assert_eq!(spelled["cached"], true, "{spelled}");
    assert_eq!(spelled["spans"], first["spans"]);
    // Through a restarted engine, too.
    let other = env.reopen();
    let r = ok(
        "chunk",
        other.call(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc, "strategy": fixed}),
            &env.ctx,
        ),
    );
    assert_eq!(r["cached"], true);
    assert_eq!(r["spans"], first["spans"]);

    let total = u64_of(&first, "total_spans") as i64;
    assert_eq!(
        env.count("SELECT count(*) FROM spans WHERE doc_id = ?1", [&doc]),
        total
    );
    let list = env.call("rlm.docs.list", json!({"session_id": sid}));
    assert_eq!(list["documents"][0]["span_count"], total);
}

#[test]
fn other_strategies_and_artifact_spans_never_leak_into_an_answer() {
    let env = Env::new();
    let sid = env.session();
    let text = sample_text();
    let doc = env.load(&sid, &text);
    let a = env.chunk_all(&sid, &doc, json!({"type": "fixed", "chunk_size": 200}));
    let a_ids: BTreeSet<String> = ids(&a).into_iter().collect();
    // Artifacts with span offsets make spans, some with the very same ranges.
    let mut art_spans = BTreeSet::new();
    for (s, e) in [(0u64, 200u64), (200, 400), (5, 17)] {
        let r = env.call(
            "rlm.artifact.store",
            json!({"session_id": sid, "type": "note", "content": {}, "span": {"doc_id": doc, "start": s, "end": e}}),
        );
        art_spans.insert(r["span_id"].as_str().unwrap().to_owned());
    }
    for strategy in [
        json!({"type": "fixed", "chunk_size": 200, "overlap": 0, "max_chunks": 2}),
        json!({"type": "fixed", "chunk_size": 201}),
        json!({"type": "lines", "line_count": 4}),
        json!({"type": "delimiter", "delimiter": "## "}),
        json!({"type": "fixed", "chunk_size": 200}), // the first one, from the cache
    ] {
        let spans = env.chunk_all(&sid, &doc, strategy.clone());
        let these: BTreeSet<String> = ids(&spans).into_iter().collect();
        assert!(
            these.is_disjoint(&art_spans),
            "{strategy}: an artifact's span leaked"
        );
        if strategy == json!({"type": "fixed", "chunk_size": 200}) {
            assert_eq!(these, a_ids);
        } else {
            assert!(
                these.is_disjoint(&a_ids),
                "{strategy}: the first strategy's spans leaked"
            );
        }
        // Indexes run 0..n with no gap or duplicate.
        let idx: Vec<u64> = spans.iter().map(|s| u64_of(s, "index")).collect();
        assert_eq!(idx, (0..spans.len() as u64).collect::<Vec<_>>());
    }
    let total = env.chunk(&sid, &doc, json!({"type": "fixed", "chunk_size": 200}));
    assert_eq!(total["total_spans"], a.len() as u64);
    assert_eq!(total["cached"], true);
}

#[test]
fn with_the_cache_off_a_repeat_makes_new_spans() {
    let env = Env::new();
    let sid = env.session_with(json!({"chunk_cache_enabled": false}));
    let doc = env.load(&sid, &sample_text());
    let strategy = json!({"type": "lines", "line_count": 5});
    let first = env.chunk(&sid, &doc, strategy.clone());
    let second = env.chunk(&sid, &doc, strategy);
    assert_eq!(first["cached"], false);
    assert_eq!(second["cached"], false);
    assert_eq!(first["total_spans"], second["total_spans"]);
    assert_eq!(
        ranges(first["spans"].as_array().unwrap()),
        ranges(second["spans"].as_array().unwrap())
    );
    let a: BTreeSet<String> = ids(first["spans"].as_array().unwrap())
        .into_iter()
        .collect();
    let b: BTreeSet<String> = ids(second["spans"].as_array().unwrap())
        .into_iter()
        .collect();
    assert!(a.is_disjoint(&b), "new span ids");
    // Both chunkings' spans stay readable.
    let both: Vec<&String> = a.iter().chain(b.iter()).take(4).collect();
    let got = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": both}));
    assert_eq!(got["spans"].as_array().unwrap().len(), 4);
}

#[test]
fn paging_reaches_every_span_without_creating_any_twice() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let text = "0123456789".repeat(300);
    let doc = env.load(&sid, &text);
    let strategy = json!({"type": "fixed", "chunk_size": 10});
    let first = env.chunk(&sid, &doc, strategy.clone());
    assert_eq!(first["total_spans"], 300);
    assert_eq!(first["truncated"], true, "300 spans do not fit 1000 chars");
    assert!(json_len(&first) <= 1500, "{}", json_len(&first));
    let all = env.chunk_all(&sid, &doc, strategy.clone());
    assert_eq!(all.len(), 300);
    assert_eq!(ranges(&all), fixed_ref(3000, 10, 0, None));
    let idx: Vec<u64> = all.iter().map(|s| u64_of(s, "index")).collect();
    assert_eq!(idx, (0..300).collect::<Vec<_>>());
    let again = env.chunk_all(&sid, &doc, strategy.clone());
    assert_eq!(ids(&again), ids(&all), "span ids are stable across pagings");
    assert_eq!(
        env.count("SELECT count(*) FROM spans", []),
        300,
        "nothing was created twice"
    );
    assert_eq!(env.count("SELECT count(*) FROM chunk_sets", []), 1);
    // An explicit limit pages by it; every page fits.
    let mut offset = 0u64;
    let mut paged = Vec::new();
    loop {
        let r = env.call(
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": doc, "strategy": strategy, "offset": offset, "limit": 3}),
        );
        assert_eq!(r["total_spans"], 300);
        assert_eq!(r["cached"], true);
        let page = r["spans"].as_array().unwrap();
        assert!(page.len() <= 3 && !page.is_empty(), "{r}");
        assert!(json_len(&r) <= 1500);
        paged.extend(page.iter().cloned());
        match r["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(ids(&paged), ids(&all));
    // Paging starting past the end gives an empty page.
    let r = env.call(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc, "strategy": strategy, "offset": 300}),
    );
    assert_eq!(r["spans"], json!([]));
    assert!(r["next_offset"].is_null());
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 300);
}

#[test]
fn paging_a_new_chunking_from_a_later_offset_creates_it_once() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, &"abcdefghij".repeat(100));
    let strategy = json!({"type": "fixed", "chunk_size": 10});
    // The first call asks for a later page directly.
    let r = env.call(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc, "strategy": strategy, "offset": 50, "limit": 5}),
    );
    assert_eq!(r["total_spans"], 100);
    let page = r["spans"].as_array().unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0]["index"], 50);
    assert_eq!(page[0]["span"]["start"], 500);
    let all = env.chunk_all(&sid, &doc, strategy);
    assert_eq!(ids(&all)[50..55], ids(page)[..]);
    assert_eq!(env.count("SELECT count(*) FROM spans", []), 100);
}

#[test]
fn concurrent_identical_chunkings_make_one_set_of_spans() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, &sample_text());
    let other = env.reopen();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let engine = if i % 2 == 0 {
                env.engine.clone()
            } else {
                other.clone()
            };
            let (barrier, sid, doc) = (barrier.clone(), sid.clone(), doc.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ok(
                    "chunk",
                    engine.call(
                        "rlm.chunk.create",
                        json!({"session_id": sid, "doc_id": doc, "strategy": {"type": "lines", "line_count": 3}}),
                        &rlmd::CallContext::default(),
                    ),
                )
            })
        })
        .collect();
    let results: Vec<Value> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for r in &results {
        assert_eq!(r["spans"], results[0]["spans"]);
    }
    assert_eq!(env.count("SELECT count(*) FROM chunk_sets", []), 1);
    let n = u64_of(&results[0], "total_spans") as i64;
    assert_eq!(env.count("SELECT count(*) FROM spans", []), n);
    // Only the call that made the spans may say `cached: false`; the others
    // returned spans an earlier identical call made.
    assert_eq!(
        results.iter().filter(|r| r["cached"] == false).count(),
        1,
        "exactly one call made the spans: {:?}",
        results.iter().map(|r| &r["cached"]).collect::<Vec<_>>()
    );
}

#[test]
fn span_get_returns_spans_in_the_order_asked_with_their_text() {
    let env = Env::new();
    let sid = env.session();
    let text = sample_text();
    let doc = env.load(&sid, &text);
    let spans = env.chunk_all(&sid, &doc, json!({"type": "lines", "line_count": 3}));
    let all = ids(&spans);
    let ask = vec![
        all[3].clone(),
        all[0].clone(),
        all[7].clone(),
        all[0].clone(),
        all[1].clone(),
    ];
    let got = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": ask}));
    let back: Vec<&str> = got["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    assert_eq!(back, ask.iter().map(String::as_str).collect::<Vec<_>>());
    let mut total = 0;
    for g in got["spans"].as_array().unwrap() {
        let (a, b) = (u64_of(&g["span"], "start"), u64_of(&g["span"], "end"));
        let want = chars(&text, a, b);
        assert_eq!(g["content"], want.as_str());
        assert_eq!(g["content_hash"], sha256_hex(want.as_bytes()));
        assert_eq!(g["truncated"], false);
        assert_eq!(g["span"]["doc_id"], doc.as_str());
        total += b - a;
    }
    assert_eq!(got["total_chars_returned"], total);
    assert_eq!(got["omitted"], json!([]));
    // An empty list is an empty answer.
    let got = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": []}));
    assert_eq!(got["spans"], json!([]));
    assert_eq!(got["total_chars_returned"], 0);
}

/// A session with this response cap, a 3000-char document, and its spans
/// of 2000 and of 50 chars.
fn capped(env: &Env, cap: u64) -> (String, String, Vec<String>, Vec<String>) {
    let sid = env.session_with(json!({"max_chars_per_response": cap}));
    let doc = env.load(&sid, &alphabet(3000));
    let big = env.chunk_all(&sid, &doc, json!({"type": "fixed", "chunk_size": 2000}));
    let small = env.chunk_all(&sid, &doc, json!({"type": "fixed", "chunk_size": 50}));
    (sid, doc, ids(&big), ids(&small))
}

fn alphabet(n: u32) -> String {
    (0..n)
        .map(|i| char::from_u32(0x61 + i % 26).unwrap())
        .collect()
}

#[test]
fn span_get_cuts_a_span_larger_than_the_cap() {
    let env = Env::new();
    let text = alphabet(3000);
    let (sid, _doc, big_ids, _) = capped(&env, 1000);
    let got = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [big_ids[0]]}),
    );
    let s = &got["spans"][0];
    assert_eq!(s["truncated"], true, "{got}");
    let content = s["content"].as_str().unwrap();
    assert!(!content.is_empty());
    assert!(char_len(content) < 1000);
    assert_eq!(
        content,
        chars(&text, 0, char_len(content)),
        "a prefix of the span"
    );
    assert_eq!(s["content_hash"], sha256_hex(content.as_bytes()));
    assert_eq!(got["total_chars_returned"], char_len(content));
    assert_eq!(got["omitted"], json!([]));
    assert!(json_len(&got) <= 1500, "{}", json_len(&got));
}

#[test]
fn span_get_cuts_the_span_that_crosses_the_cap_and_lists_the_rest_as_omitted() {
    let env = Env::new();
    let text = alphabet(3000);
    let (sid, _doc, big_ids, small_ids) = capped(&env, 2000);
    // Small spans first, then a big one, then more: in order, cut, omitted.
    let ask = vec![
        small_ids[0].clone(),
        small_ids[1].clone(),
        big_ids[1].clone(),
        small_ids[2].clone(),
        small_ids[3].clone(),
    ];
    let got = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": ask}));
    let spans = got["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "{got}");
    assert_eq!(spans[0]["content"], chars(&text, 0, 50));
    assert_eq!(spans[1]["content"], chars(&text, 50, 100));
    assert_eq!(spans[0]["truncated"], false);
    assert_eq!(spans[1]["truncated"], false);
    assert_eq!(spans[2]["span_id"], ask[2].as_str());
    assert_eq!(spans[2]["span"]["start"], 2000);
    assert_eq!(spans[2]["truncated"], true);
    let cut = spans[2]["content"].as_str().unwrap();
    assert!(!cut.is_empty() && char_len(cut) < 1000, "{got}");
    assert_eq!(cut, chars(&text, 2000, 2000 + char_len(cut)));
    assert_eq!(spans[2]["content_hash"], sha256_hex(cut.as_bytes()));
    assert_eq!(got["omitted"], json!([ask[3], ask[4]]));
    assert_eq!(got["total_chars_returned"], 100 + char_len(cut));
    assert!(json_len(&got) <= 2500, "{}", json_len(&got));
}

#[test]
fn span_get_of_many_spans_returns_a_prefix_and_omits_the_rest_in_order() {
    let env = Env::new();
    let text = alphabet(3000);
    let (sid, _doc, _, all_small) = capped(&env, 1000);
    // More ids than the cap can even list are refused up front, with the number that fits.
    let e = env.fail(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": all_small}),
    );
    let msg = expect_code(&e, "invalid_argument");
    assert!(msg.contains("at most"), "{msg}");
    let small_ids = all_small[..10].to_vec();
    let got = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": small_ids}),
    );
    let spans = got["spans"].as_array().unwrap();
    let omitted: Vec<String> = got["omitted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(!spans.is_empty() && !omitted.is_empty(), "{got}");
    assert_eq!(spans.len() + omitted.len(), small_ids.len());
    assert_eq!(omitted, small_ids[spans.len()..].to_vec());
    for (i, s) in spans.iter().enumerate() {
        assert_eq!(s["span_id"], small_ids[i].as_str());
        let c = s["content"].as_str().unwrap();
        let start = 50 * i as u64;
        assert_eq!(c, chars(&text, start, start + char_len(c)));
        if i + 1 < spans.len() {
            assert_eq!(s["truncated"], false);
        }
    }
    assert!(json_len(&got) <= 1500, "{}", json_len(&got));
    let returned: u64 = spans
        .iter()
        .map(|s| char_len(s["content"].as_str().unwrap()))
        .sum();
    assert_eq!(got["total_chars_returned"], returned);
    assert!(returned <= 1000);
    // Asking again for what was omitted returns it.
    let got = env.call(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [omitted[0]]}),
    );
    assert_eq!(got["spans"][0]["span_id"], omitted[0].as_str());
    assert_eq!(got["spans"][0]["truncated"], false);
}

#[test]
fn an_unknown_span_id_fails_with_a_hint() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "text\nof two lines\n");
    let spans = env.chunk(&sid, &doc, json!({"type": "lines", "line_count": 1}));
    let good = spans["spans"][0]["span_id"].as_str().unwrap().to_owned();
    let e = env.fail(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [good, "not-a-span"]}),
    );
    let msg = expect_code(&e, "span_not_found");
    assert!(msg.contains("not-a-span"), "{msg}");
    assert!(
        msg.contains("rlm.chunk.create"),
        "a hint where span ids come from: {msg}"
    );
    // A doc_id given as a span id: the hint says what it is.
    let e = env.fail(
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [doc]}),
    );
    let msg = expect_code(&e, "span_not_found");
    assert!(msg.contains("doc_id"), "{msg}");
}
