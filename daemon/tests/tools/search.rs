//! `rlm.search.query`: BM25 passages with centred contexts and highlights,
//! regex and literal scans, filters, limits, caps and index flags (which
//! words a bm25 query word matches: `words.rs`).

use serde_json::{Value, json};

use crate::common::*;

const NEEDLE: &str = "The zanzibar quokka juggles marmalade jars beside the lighthouse.";

/// Whole-word, case-insensitive occurrences of `words` in `text`, in chars.
pub(super) fn word_hits(text: &str, words: &[&str]) -> Vec<(u64, u64, String)> {
    let cs: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if cs[i].is_alphanumeric() || cs[i] == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            let w: String = cs[start..i].iter().collect::<String>().to_lowercase();
            if words.contains(&w.as_str()) {
                out.push((start as u64, i as u64, w));
            }
        } else {
            i += 1;
        }
    }
    out
}

pub(super) fn highlights_of(m: &Value) -> Vec<(u64, u64, String)> {
    m["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                u64_of(h, "start"),
                u64_of(h, "end"),
                h["term"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The documents of a search's matches, in rank order.
pub(super) fn docs_of(r: &Value) -> Vec<String> {
    r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_of(m, "doc_id").to_owned())
        .collect()
}

/// Checks one match against the document text it claims to come from.
pub(super) fn check_match(text: &str, m: &Value) {
    let (a, b) = (u64_of(&m["span"], "start"), u64_of(&m["span"], "end"));
    assert!(a <= b && b <= char_len(text), "span inside the doc: {m}");
    assert_eq!(m["span"]["doc_id"], m["doc_id"]);
    assert!(m["span_id"].is_null());
    let ctx = str_of(m, "context");
    assert_eq!(ctx, chars(text, a, b), "context is the span's text");
    let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
    assert!(
        hs < he && he <= char_len(ctx),
        "highlight inside context: {m}"
    );
}

#[test]
fn bm25_finds_a_needle_in_the_middle_of_a_large_document_with_its_own_surroundings() {
    let env = Env::new();
    let sid = env.session();
    let mut text = filler_text(7, 3 << 20);
    let mid = text.len() / 2;
    let mid = mid + text[mid..].find('\n').unwrap() + 1;
    text.insert_str(mid, &format!("{NEEDLE}\n"));
    let big = env.load(&sid, &text);
    let small = env.load_all(
        &sid,
        &[
            "A short note about river stones and a silver market.",
            "Another note: the lighthouse keeper keeps a garden.",
        ],
    );
    let needle_at = text[..mid].chars().count() as u64;
    let terms = ["zanzibar", "quokka", "marmalade"];

    let r = env.search(&sid, json!({"query": "zanzibar quokka marmalade"}));
    assert_eq!(r["index_built"], true);
    let m = &r["matches"][0];
    assert_eq!(m["doc_id"], big.as_str(), "{r}");
    check_match(&text, m);
    let (a, b) = (u64_of(&m["span"], "start"), u64_of(&m["span"], "end"));
    let ctx = str_of(m, "context");
    assert!(
        a <= needle_at && b > needle_at,
        "the context is at the needle: {m}"
    );
    for t in terms {
        assert!(ctx.contains(t), "{t} in the context: {ctx:?}");
    }
    // About context_chars (default 200) around the hit, the hit near the middle.
    let len = b - a;
    assert!((150..=260).contains(&len), "context of {len} chars");
    let first = needle_at + NEEDLE.find("zanzibar").unwrap() as u64;
    let last_end = needle_at + (NEEDLE.find("marmalade").unwrap() + "marmalade".len()) as u64;
    assert!(first - a >= 30, "room before the hit: {m}");
    assert!(b - last_end >= 30, "room after the hit: {m}");
    // The first highlight is a query term; every term hit in the context is highlighted.
    let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
    assert!(
        terms.contains(&chars(ctx, hs, he).to_lowercase().as_str()),
        "{m}"
    );
    assert_eq!(highlights_of(m), word_hits(ctx, &terms));
    assert_eq!(highlights_of(m).len(), 3);
    assert!(m["score"].as_f64().unwrap() > 0.0);
    // Scores are non-increasing.
    let scores: Vec<f64> = r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Restricted to the small documents, the needle is not found.
    let r = env.search(&sid, json!({"query": "zanzibar quokka", "doc_ids": small}));
    assert_eq!(r["matches"], json!([]), "{r}");
    // A term of both: only the asked document answers.
    let r = env.search(&sid, json!({"query": "lighthouse", "doc_ids": [small[1]]}));
    let ms = r["matches"].as_array().unwrap();
    assert_eq!(ms.len(), 1, "{r}");
    assert_eq!(ms[0]["doc_id"], small[1].as_str());
    // A smaller context is still centred on the hit and holds it.
    let r = env.search(&sid, json!({"query": "quokka", "context_chars": 40}));
    let m = &r["matches"][0];
    check_match(&text, m);
    let ctx = str_of(m, "context");
    assert!(ctx.contains("quokka"), "{m}");
    assert!(char_len(ctx) <= 50, "{m}");
}

#[test]
fn highlights_list_every_query_term_hit_in_the_context() {
    let env = Env::new();
    let sid = env.session();
    let text = "Alpha beta gamma alpha delta. Epsilon ALPHA zeta delta_force alphabet.";
    let doc = env.load(&sid, text);
    let r = env.search(&sid, json!({"query": "alpha delta", "context_chars": 500}));
    let m = &r["matches"][0];
    assert_eq!(m["doc_id"], doc.as_str());
    check_match(text, m);
    assert_eq!(
        m["context"], text,
        "the whole short document is the context"
    );
    let hl = highlights_of(m);
    let want: Vec<(u64, u64, String)> = vec![
        (0, 5, "alpha".into()),
        (17, 22, "alpha".into()),
        (23, 28, "delta".into()),
        (38, 43, "alpha".into()),
        (49, 54, "delta".into()), // the part `delta` of `delta_force`
    ];
    assert_eq!(hl, want, "{m}");
    assert!(
        hl.iter()
            .any(|h| (h.0, h.1) == (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"))),
        "the first hit is one of the highlights: {m}"
    );
}

/// An HTML page is searched for what a reader sees: words only its markup
/// holds (tag and attribute names, attribute values, scripts, styles,
/// character references) find nothing by bm25, while regex still sees them;
/// the context is the page's own text, and the highlights mark the visible
/// words only, at their offsets in it.
#[test]
fn bm25_reads_an_html_page_as_its_reader_does() {
    let env = Env::new();
    let sid = env.session();
    let page = "<!DOCTYPE html>\n<html><head><title>Quokka notes</title>\n\
        <style>.marsupial { color: brown }</style>\n\
        <script>var wombat = 1;</script></head>\n\
        <body><p class=\"quokka\" data-note=\"pademelon\">The quokka smiles &amp; \
        hops &lt;fast&gt;.</p><!-- bilby --></body></html>\n";
    let doc = env.load(&sid, page);
    // The same words as plain text are found: only the page's markup is not.
    let plain = "A note on the pademelon and the wombat, the bilby and the marsupial.";
    let plain_doc = env.load(&sid, plain);
    for hidden in ["pademelon", "wombat", "bilby", "marsupial", "amp", "class"] {
        let r = env.search(&sid, json!({"query": hidden}));
        let docs = docs_of(&r);
        assert!(
            !docs.contains(&doc),
            "{hidden:?} is in the page's markup only: {r}"
        );
        if hidden != "amp" && hidden != "class" {
            assert_eq!(docs, [plain_doc.as_str()], "{hidden:?}: {r}");
        }
        let r = env.search(&sid, json!({"query": hidden, "method": "regex"}));
        assert!(
            docs_of(&r).contains(&doc),
            "regex reads the page's markup: {hidden:?} {r}"
        );
    }
    let r = env.search(&sid, json!({"query": "quokka", "context_chars": 2000}));
    let m = &r["matches"][0];
    assert_eq!(m["doc_id"], doc.as_str(), "{r}");
    check_match(page, m);
    assert_eq!(m["context"], page, "the context is the page's own text");
    // `quokka` is in the title, the class attribute and the paragraph: the
    // attribute's is not highlighted.
    let visible: Vec<(u64, u64, String)> = word_hits(page, &["quokka"])
        .into_iter()
        .filter(|(s, _, _)| !chars(page, 0, *s).ends_with("class=\""))
        .collect();
    assert_eq!(visible.len(), 2);
    assert_eq!(highlights_of(m), visible, "{m}");
}

#[test]
fn regex_search_is_case_insensitive_with_every_match_in_document_order() {
    let env = Env::new();
    let sid = env.session();
    let t1 = "Foo then foo, FOO and fOoO.\nnothing here\n";
    let t2 = "second doc: foo again";
    let ids = env.load_all(&sid, &[t1, t2]);
    let r = env.search(
        &sid,
        json!({"query": "fo+", "method": "regex", "context_chars": 10}),
    );
    let ms = r["matches"].as_array().unwrap();
    let got: Vec<(String, u64)> = ms
        .iter()
        .map(|m| {
            (
                m["doc_id"].as_str().unwrap().to_owned(),
                u64_of(&m["span"], "start") + u64_of(m, "highlight_start"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[0].clone(), 0),
            (ids[0].clone(), 9),
            (ids[0].clone(), 14),
            (ids[0].clone(), 22),
            (ids[1].clone(), 12),
        ],
        "{r}"
    );
    for (m, text) in ms.iter().zip([t1, t1, t1, t1, t2]) {
        check_match(text, m);
        assert_eq!(m["score"].as_f64(), Some(1.0));
        let ctx = str_of(m, "context");
        let hit = chars(
            ctx,
            u64_of(m, "highlight_start"),
            u64_of(m, "highlight_end"),
        );
        assert!(
            hit.eq_ignore_ascii_case("foo") || hit.eq_ignore_ascii_case("fooo"),
            "{m}"
        );
    }
    // The longer match is matched whole.
    let m = &ms[3];
    assert_eq!(
        chars(
            str_of(m, "context"),
            u64_of(m, "highlight_start"),
            u64_of(m, "highlight_end")
        ),
        "fOoO"
    );
    assert_eq!(r["total_matches"], 5);
    assert_eq!(r["truncated"], false);
    assert_eq!(r["index_built_this_call"], false, "a scan builds no index");
    // With a context covering the whole first document, every match in it is highlighted.
    let r = env.search(
        &sid,
        json!({"query": "fo+", "method": "regex", "context_chars": 1000, "doc_ids": [ids[0]]}),
    );
    let m = &r["matches"][0];
    assert_eq!(m["context"], t1);
    let hl: Vec<(u64, u64)> = m["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (u64_of(h, "start"), u64_of(h, "end")))
        .collect();
    assert_eq!(hl, vec![(0, 3), (9, 12), (14, 17), (22, 26)], "{m}");
    for h in m["highlights"].as_array().unwrap() {
        assert_eq!(
            h["term"].as_str().unwrap(),
            chars(t1, u64_of(h, "start"), u64_of(h, "end")),
            "{m}"
        );
    }

    // limit keeps the first matches in document order; total_matches counts all.
    let r = env.search(&sid, json!({"query": "fo+", "method": "regex", "limit": 2}));
    let ms = r["matches"].as_array().unwrap();
    assert_eq!(ms.len(), 2);
    assert_eq!(
        u64_of(&ms[1]["span"], "start") + u64_of(&ms[1], "highlight_start"),
        9
    );
    assert_eq!(r["total_matches"], 5);
    // doc_ids restricts the scan.
    let r = env.search(
        &sid,
        json!({"query": "fo+", "method": "regex", "doc_ids": [ids[1]]}),
    );
    let ms = r["matches"].as_array().unwrap();
    assert_eq!(ms.len(), 1, "{r}");
    assert_eq!(ms[0]["doc_id"], ids[1].as_str());
    // Unicode case folding.
    env.load(&sid, "ΣΊΣΥΦΟΣ and Straße");
    let r = env.search(
        &sid,
        json!({"query": "σίσυφος|STRASSE|straße", "method": "regex"}),
    );
    assert_eq!(r["total_matches"], 2, "{r}");
}

#[test]
fn literal_search_is_case_insensitive_and_takes_metacharacters_literally() {
    let env = Env::new();
    let sid = env.session();
    let text = "a.b A.B axb (a.b) a+b [x] A.b.";
    let doc = env.load(&sid, text);
    let r = env.search(
        &sid,
        json!({"query": "a.b", "method": "literal", "context_chars": 6}),
    );
    let ms = r["matches"].as_array().unwrap();
    let starts: Vec<u64> = ms
        .iter()
        .map(|m| u64_of(&m["span"], "start") + u64_of(m, "highlight_start"))
        .collect();
    assert_eq!(starts, vec![0, 4, 13, 26], "{r}");
    for m in ms {
        check_match(text, m);
        assert_eq!(m["doc_id"], doc.as_str());
        assert_eq!(m["score"].as_f64(), Some(1.0));
        let ctx = str_of(m, "context");
        let hit = chars(
            ctx,
            u64_of(m, "highlight_start"),
            u64_of(m, "highlight_end"),
        );
        assert!(hit.eq_ignore_ascii_case("a.b"), "{m}");
    }
    assert_eq!(r["total_matches"], 4);
    for (q, n) in [
        ("(a.b)", 1u64),
        ("a+b", 1),
        ("[x]", 1),
        ("(", 1),
        ("A.B", 4),
        ("zzz", 0),
    ] {
        let r = env.search(&sid, json!({"query": q, "method": "literal"}));
        assert_eq!(r["total_matches"], n, "{q}: {r}");
        assert_eq!(r["matches"].as_array().unwrap().len() as u64, n, "{q}");
    }
}

/// Every hit of a search answer as (start, end) in chars of the document,
/// with the text hit.
fn hits(text: &str, r: &Value) -> Vec<(u64, u64, String)> {
    r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            check_match(text, m);
            let a = u64_of(&m["span"], "start");
            let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
            (a + hs, a + he, chars(str_of(m, "context"), hs, he))
        })
        .collect()
}

/// A literal search finds what the regex search of the same (escaped)
/// text finds: `text` holds `want` hits of each query.
fn literal_agrees_with_regex(text: &str, queries: &[&str], want: &[&str]) {
    let env = Env::new();
    let sid = env.session();
    env.load(&sid, text);
    for q in queries {
        let search = |method| {
            env.search(
                &sid,
                json!({"query": q, "method": method, "limit": 100, "context_chars": 12}),
            )
        };
        let (lit, re) = (search("literal"), search("regex"));
        let got = hits(text, &lit);
        assert_eq!(got, hits(text, &re), "{q}: literal {lit}, regex {re}");
        let got: Vec<&str> = got.iter().map(|h| h.2.as_str()).collect();
        assert_eq!(got, want, "{q}: {lit}");
        assert_eq!(lit["total_matches"], want.len(), "{q}: {lit}");
    }
}

#[test]
fn literal_kelvin_finds_the_kelvin_sign_as_regex_does() {
    // U+212A KELVIN SIGN is in the simple case fold class of k and K (3
    // bytes for 1); an ASCII needle finds it, as the regex search does.
    literal_agrees_with_regex(
        "Kelvin: \u{212A}elvin and KELVIN, \u{212A}ELVIN; kelvins.",
        &["kelvin", "Kelvin", "KELVIN", "\u{212A}elvin"],
        &[
            "Kelvin",
            "\u{212A}elvin",
            "KELVIN",
            "\u{212A}ELVIN",
            "kelvin",
        ],
    );
}

#[test]
fn literal_stop_finds_the_long_s_as_regex_does() {
    // U+017F LATIN SMALL LETTER LONG S folds with s and S (2 bytes for 1).
    literal_agrees_with_regex(
        "\u{17F}top! Stop, STOP \u{17F}TOP \u{e9}t\u{e9} stops; nonstop",
        &["stop", "STOP", "\u{17F}top"],
        &["\u{17F}top", "Stop", "STOP", "\u{17F}TOP", "stop", "stop"],
    );
}

#[test]
fn a_pathological_regex_gets_its_answer() {
    // A backtracking engine would not finish these on 200 000 chars; the
    // linear one answers at once (its speed is the benchmarks' to measure).
    let env = Env::new();
    let sid = env.session();
    let doc = "a".repeat(200_000);
    env.load(&sid, &doc);
    let r = env.search(&sid, json!({"query": "(a|aa)*(a*)*c", "method": "regex"}));
    assert_eq!(r["total_matches"], 0);
    let r = env.search(
        &sid,
        json!({"query": "(a+)+$", "method": "regex", "limit": 1}),
    );
    let ms = r["matches"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    check_match(&doc, &ms[0]);
}

#[test]
fn limit_and_total_matches() {
    let env = Env::new();
    // 30 matches and their highlights fit the caps (not the default in tokens).
    let sid = env.session_with(json!({"max_tokens_per_response": 100_000}));
    let text: String = (0..30)
        .map(|i| format!("line {i} has the marker word\n"))
        .collect();
    env.load(&sid, &text);
    for method in ["literal", "regex"] {
        let r = env.search(
            &sid,
            json!({"query": "marker", "method": method, "limit": 5}),
        );
        assert_eq!(r["matches"].as_array().unwrap().len(), 5, "{method}");
        assert_eq!(r["total_matches"], 30, "{method}");
        let r = env.search(
            &sid,
            json!({"query": "marker", "method": method, "limit": 100}),
        );
        assert_eq!(r["matches"].as_array().unwrap().len(), 30, "{method}");
    }
    let r = env.search(&sid, json!({"query": "marker", "limit": 3}));
    let ms = r["matches"].as_array().unwrap();
    assert!(!ms.is_empty() && ms.len() <= 3, "{r}");
    assert!(u64_of(&r, "total_matches") >= ms.len() as u64);
    for m in ms {
        check_match(&text, m);
    }
}

#[test]
fn contexts_past_the_response_cap_are_cut_and_say_so() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let text: String = (0..40)
        .map(|i| format!("paragraph {i} talks about the needle once, and then at length about other things entirely, {}\n", "padding ".repeat(20)))
        .collect();
    env.load(&sid, &text);
    // With 100-char contexts one match fits whole under the cap: matches come
    // back, not all of them. With 300-char contexts none fits whole: the
    // first comes back cut (cut, never drop).
    assert!(match_cost_bound(&text, "needle", 100) <= list_room(1000));
    assert!(match_cost_bound(&text, "needle", 300) > list_room(1000));
    for (method, context_chars) in [
        ("bm25", 100),
        ("literal", 100),
        ("regex", 100),
        ("bm25", 300),
        ("literal", 300),
        ("regex", 300),
    ] {
        let r = env.search(
            &sid,
            json!({"query": "needle", "method": method, "context_chars": context_chars, "limit": 20}),
        );
        let n = r["matches"].as_array().unwrap().len() as u64;
        assert_eq!(r["truncated"], true, "{method}: {r}");
        assert!(n < 20, "{method}");
        assert!(n >= 1, "{method} {context_chars}: no match came back: {r}");
        assert!(u64_of(&r, "total_matches") > n, "{method}: {r}");
        assert!(json_len(&r) <= 1500, "{method}: {} chars", json_len(&r));
        let ctx_total: u64 = r["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| char_len(str_of(m, "context")))
            .sum();
        assert!(ctx_total <= 1000, "{method}");
        for m in r["matches"].as_array().unwrap() {
            check_match(&text, m);
            assert!(
                json_len(m) <= match_cost_bound(&text, "needle", context_chars),
                "{m}"
            );
        }
    }
}

#[test]
fn index_flags_say_when_the_index_exists_and_when_this_call_built_it() {
    let env = Env::new();
    let sid = env.session();
    env.load(&sid, "the first document mentions apples\n");
    assert_eq!(env.info(&sid)["index_built"], false);
    // A scan does not build the index.
    let r = env.search(&sid, json!({"query": "apples", "method": "literal"}));
    assert_eq!(r["index_built_this_call"], false);
    assert_eq!(r["index_built"], false);
    let r = env.search(&sid, json!({"query": "apples"}));
    assert_eq!(r["index_built"], true);
    assert_eq!(r["index_built_this_call"], true);
    assert_eq!(r["matches"].as_array().unwrap().len(), 1);
    let r = env.search(&sid, json!({"query": "apples"}));
    assert_eq!(r["index_built_this_call"], false);
    assert_eq!(env.info(&sid)["index_built"], true);
    let r = env.search(&sid, json!({"query": "apples", "method": "regex"}));
    assert_eq!(r["index_built"], true);
    assert_eq!(r["index_built_this_call"], false);
    // A load makes the index stale until the next BM25 search brings it up to date.
    env.load(&sid, "the second document mentions pears\n");
    assert_eq!(env.info(&sid)["index_built"], false);
    let r = env.search(&sid, json!({"query": "pears"}));
    assert_eq!(r["index_built_this_call"], true);
    assert_eq!(r["matches"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(env.info(&sid)["index_built"], true);
    // A failed load (nothing loaded) does not make it stale.
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "file", "path": "nope.txt"}]}),
    );
    assert_eq!(r["loaded_count"], 0);
    assert_eq!(env.info(&sid)["index_built"], true);
    let r = env.search(&sid, json!({"query": "pears"}));
    assert_eq!(r["index_built_this_call"], false);
}

fn search_sees_new_documents(background: bool) {
    let env = Env::with(|c| c.background_index = background);
    let sid = env.session();
    env.load(&sid, "old document about copper kettles\n");
    let r = env.search(&sid, json!({"query": "kettles"}));
    assert_eq!(r["matches"].as_array().unwrap().len(), 1, "{r}");
    let r = env.search(&sid, json!({"query": "xylophone"}));
    assert_eq!(r["matches"], json!([]));
    let new = env.load(&sid, "new document about a xylophone\n");
    let r = env.search(&sid, json!({"query": "xylophone"}));
    let ms = r["matches"].as_array().unwrap();
    assert_eq!(ms.len(), 1, "background {background}: {r}");
    assert_eq!(ms[0]["doc_id"], new.as_str());
    // Another engine on the same store (another daemon) sees them too.
    let more = env.load(&sid, "third document about a zeppelin\n");
    let other = env.reopen();
    let r = ok(
        "search",
        other.call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "zeppelin xylophone kettles"}),
            &env.ctx,
        ),
    );
    assert_eq!(r["matches"].as_array().unwrap().len(), 3, "{r}");
    // And a load through the other engine is seen here.
    let fourth = ok(
        "load",
        other.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": "fourth about a quasar"}]}),
            &env.ctx,
        ),
    );
    let r = env.search(&sid, json!({"query": "quasar"}));
    assert_eq!(
        r["matches"][0]["doc_id"], fourth["loaded"][0]["doc_id"],
        "{r}"
    );
    let r = env.search(&sid, json!({"query": "zeppelin"}));
    assert_eq!(r["matches"][0]["doc_id"], more.as_str());
    // The scans see every document, too.
    let last = env.load(&sid, "fifth about a nebula\n");
    for method in ["literal", "regex"] {
        let r = env.search(&sid, json!({"query": "nebula", "method": method}));
        let ms = r["matches"].as_array().unwrap();
        assert_eq!(ms.len(), 1, "{method} (background {background}): {r}");
        assert_eq!(ms[0]["doc_id"], last.as_str());
    }
}

#[test]
fn a_search_right_after_a_load_sees_the_new_documents() {
    search_sees_new_documents(false);
}

#[test]
fn a_search_right_after_a_load_sees_the_new_documents_with_background_indexing() {
    search_sees_new_documents(true);
}

/// A bm25 query of 100 000 distinct words ran for 24 s and took 400 MB
/// (each word deduplicated against all before it, then looked up with its
/// forms in every segment). A query has at most 1 024 distinct words:
/// past that it is refused at once, naming the count and the limit; at
/// the limit it is searched. Regex and literal queries are not words.
#[test]
fn a_bm25_query_past_1024_words_is_refused_and_one_at_it_searched() {
    let env = Env::new();
    let sid = env.session();
    env.load(&sid, "the zanzibar quokka juggles marmalade jars");
    // Distinct made-up words: letters only, no stop word among them.
    let words: Vec<String> = (0..1025)
        .map(|i: u32| {
            let mut n = i;
            let mut w = String::from("q");
            for _ in 0..3 {
                w.push((b'a' + (n % 26) as u8) as char);
                n /= 26;
            }
            w
        })
        .collect();
    let at_limit = format!("{} zanzibar", words[..1023].join(" "));
    let r = env.search(&sid, json!({"query": at_limit}));
    assert_eq!(r["matches"].as_array().map(Vec::len), Some(1), "{r}");
    let past = format!("{} zanzibar", words.join(" "));
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": past}),
    );
    assert_eq!(e.code.as_str(), "invalid_argument", "{e:?}");
    assert!(
        e.message.contains("1026 distinct words") && e.message.contains("at most 1024"),
        "{}",
        e.message
    );
    assert_eq!(e.context.get("field"), Some(&json!("query")));
    // The same text as a literal or a regex is no bm25 query.
    for method in ["literal", "regex"] {
        env.search(&sid, json!({"query": words.join(" "), "method": method}));
    }
}

#[test]
fn a_query_of_stop_words_only_finds_nothing_without_failing() {
    let env = Env::new();
    let sid = env.session();
    env.load(&sid, "the cat and the hat of the town");
    let r = env.search(&sid, json!({"query": "the and of"}));
    assert_eq!(r["matches"], json!([]));
    assert_eq!(r["total_matches"], 0);
}

/// Each match names the unit it fell in, by the document's kind: the
/// definition of code (name, lines, span to peek next), the section of
/// Markdown; none for plain text or code outside any definition.
#[test]
fn matches_name_the_definition_or_section_they_fell_in() {
    let env = Env::new();
    let sid = env.session();
    // A multi-byte char before the unit: its span is in code points.
    let py = "# café: retries\nimport os\n\nclass Retry:\n    def backoff_delay(self, attempt):\n        if attempt > 3:\n            return zanzibar_factor * 2\n        return 1\n\nloaded = zanzibar_factor\n";
    let md = "# Guide\n\n## Install\n\nRun the zanzibar installer.\n\n## Use\n\nSearch.\n";
    env.write_file("code/retry.py", py);
    env.write_file("code/guide.md", md);
    env.write_file("code/notes.txt", "zanzibar notes\n");
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": "code"}]}),
    );
    let doc_of = |name: &str| {
        r["loaded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| str_of(d, "source").ends_with(name))
            .map(|d| str_of(d, "doc_id").to_owned())
            .unwrap()
    };
    let (py_doc, md_doc, txt_doc) = (doc_of("retry.py"), doc_of("guide.md"), doc_of("notes.txt"));
    for method in ["bm25", "literal", "regex"] {
        let r = env.call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "zanzibar", "method": method, "context_chars": 20}),
        );
        let matches = r["matches"].as_array().unwrap();
        let unit_in = |doc: &str, line: u64| -> Value {
            matches
                .iter()
                .find(|m| {
                    m["doc_id"] == doc && {
                        let at = u64_of(&m["span"], "start") + u64_of(m, "highlight_start");
                        let text = if doc == py_doc {
                            py
                        } else if doc == md_doc {
                            md
                        } else {
                            "zanzibar notes\n"
                        };
                        chars(text, 0, at).matches('\n').count() as u64 + 1 == line
                    }
                })
                .unwrap_or_else(|| panic!("{method}: a match on line {line} of {doc}: {r}"))["unit"]
                .clone()
        };
        let def = unit_in(&py_doc, 7);
        assert_eq!(def["kind"], "definition", "{method}: {def}");
        assert_eq!(def["name"], "backoff_delay", "{method}: {def}");
        assert_eq!(def["within"], json!(["Retry"]), "{method}: {def}");
        assert_eq!(
            (u64_of(&def, "line_start"), u64_of(&def, "line_end")),
            (5, 8),
            "{method}"
        );
        let peek = env.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": py_doc, "start": def["start"], "end": def["end"]}),
        );
        assert_eq!(
            peek["content"],
            "    def backoff_delay(self, attempt):\n        if attempt > 3:\n            return zanzibar_factor * 2\n        return 1",
            "{method}: the unit's span is the definition, header to last line"
        );
        if method != "bm25" {
            // (bm25 makes one match of the passage, at its first hit.)
            assert!(
                unit_in(&py_doc, 10).is_null(),
                "{method}: module code is in no definition"
            );
        }
        let section = unit_in(&md_doc, 5);
        assert_eq!(section["kind"], "section", "{method}: {section}");
        assert_eq!(section["name"], "Install", "{method}: {section}");
        assert_eq!(section["within"], json!(["Guide"]), "{method}: {section}");

        assert_eq!(
            (u64_of(&section, "line_start"), u64_of(&section, "line_end")),
            (3, 5),
            "{method}"
        );
        assert!(
            unit_in(&txt_doc, 1).is_null(),
            "{method}: plain text has no units"
        );
    }
}

/// One text loaded under several names is one passage of the index and a
/// match in each document: each match's unit is read as its own document's
/// name says (found once a reading, not once a text).
#[test]
fn one_text_under_several_names_has_the_unit_each_name_reads() {
    let env = Env::new();
    let sid = env.session();
    let text =
        "# Retry notes\n\ndef backoff_delay(attempt):\n    return zanzibar_factor * attempt\n";
    for name in ["a.py", "b.py", "c.md", "d.txt"] {
        env.write_file(&format!("same/{name}"), text);
    }
    env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": "same"}]}),
    );
    let listed = env.call("rlm.docs.list", json!({"session_id": sid}));
    let name_of = |doc: &Value| -> String {
        let docs = listed["documents"].as_array().unwrap();
        let d = docs.iter().find(|d| d["doc_id"] == *doc).unwrap();
        str_of(d, "source").rsplit('/').next().unwrap().to_owned()
    };
    let r = env.call(
        "rlm.search.query",
        json!({"session_id": sid, "query": "zanzibar factor", "method": "bm25"}),
    );
    let mut seen: Vec<(String, Value)> = r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (name_of(&m["doc_id"]), m["unit"].clone()))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.py", "b.py", "c.md", "d.txt"], "{r}");
    for (name, unit) in &seen[..2] {
        assert_eq!(unit["kind"], "definition", "{name}: {unit}");
        assert_eq!(unit["name"], "backoff_delay", "{name}: {unit}");
    }
    assert_eq!(seen[0].1, seen[1].1, "the same reading, the same unit");
    assert_eq!(seen[2].1["kind"], "section", "c.md: {}", seen[2].1);
    assert_eq!(seen[2].1["name"], "Retry notes", "c.md: {}", seen[2].1);
    assert!(
        seen[3].1.is_null(),
        "d.txt: plain text has no unit: {}",
        seen[3].1
    );
}

/// A match's unit deep in a big file names the lines a count from the
/// file's start gives, on the first search and the next ones (the stored
/// text's line marks, `Text::line_of`, kept between them).
#[test]
fn units_deep_in_a_big_file_name_their_lines() {
    let env = Env::new();
    let mut py = String::new();
    let mut defs = Vec::new(); // (first line, last line) of each def with the word
    for i in 0..400 {
        let first = py.matches('\n').count() as u64 + 1;
        py.push_str(&format!(
            "def step_{i}(x):\n    \"\"\"Étape {i} — ñ\"\"\"\n"
        ));
        for j in 0..(i % 23) {
            py.push_str(&format!("    x = x + {j}  # filler line of some length\n"));
        }
        if i % 50 == 7 {
            py.push_str("    return kumquat(x)\n");
            defs.push((first, py.matches('\n').count() as u64));
        } else {
            py.push_str("    return x\n");
        }
        py.push('\n');
    }
    assert!(py.len() > 200_000, "{}", py.len());
    env.write_file("big.py", &py);
    let sid = env.session();
    env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "file", "path": "big.py"}]}),
    );
    for round in 0..2 {
        let r = env.call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "kumquat", "method": "literal", "limit": 50}),
        );
        let lines: Vec<(u64, u64)> = r["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    u64_of(&m["unit"], "line_start"),
                    u64_of(&m["unit"], "line_end"),
                )
            })
            .collect();
        assert_eq!(lines, defs, "round {round}: {r}");
    }
}
