//! Which index words a bm25 query word matches: its English forms (and the
//! sessions where they are matched, by how much of them is prose), and
//! identifiers that run query words together.

use serde_json::json;

use super::search::{check_match, docs_of, highlights_of, word_hits};
use crate::common::*;
use rlm::config::WordForms;

/// With `[search] word_forms` on, a query word finds the other forms of its
/// English stem that the session's texts hold, scored as one term, and the
/// highlights mark every form; a word of another stem that begins alike is
/// not one of them. Off, a word finds only itself.
#[test]
fn bm25_finds_the_forms_of_a_query_word_and_highlights_them() {
    let env = Env::with(|c| c.word_forms = WordForms::Always);
    let sid = env.session();
    let retries = env.load(&sid, "The client retries the request twice.");
    let retried = env.load(&sid, "Each failed call is retried after a pause.");
    let retriever = env.load(&sid, "The retriever fetches passages.");
    let exact = env.load(&sid, "A retry policy: retry, then retry again.");
    let r = env.search(&sid, json!({"query": "retry", "context_chars": 500}));
    let docs = docs_of(&r);
    assert_eq!(docs.len(), 3, "{r}");
    // The exact word three times ranks first; the forms once each follow.
    assert_eq!(docs[0], exact, "{r}");
    assert!(docs.contains(&retries) && docs.contains(&retried), "{r}");
    assert!(!docs.contains(&retriever), "{r}");
    for m in r["matches"].as_array().unwrap() {
        let text = match str_of(m, "doc_id") {
            d if d == retries => "The client retries the request twice.",
            d if d == retried => "Each failed call is retried after a pause.",
            _ => "A retry policy: retry, then retry again.",
        };
        check_match(text, m);
        let want = word_hits(text, &["retry", "retries", "retried"]);
        assert!(!want.is_empty());
        assert_eq!(highlights_of(m), want, "{m}");
    }
    // The other way round: a form finds the word.
    let r = env.search(&sid, json!({"query": "retrying"}));
    assert_eq!(docs_of(&r).len(), 3, "{r}");
    // With forms off, a word finds only itself.
    let off = Env::with(|c| c.word_forms = WordForms::Never);
    let sid_off = off.session();
    off.load(&sid_off, "The client retries the request twice.");
    let exact_off = off.load(&sid_off, "A retry policy: retry, then retry again.");
    let r = off.search(&sid_off, json!({"query": "retry"}));
    assert_eq!(docs_of(&r), [exact_off], "{r}");
    // Regex and literal read the text as written.
    let r = env.search(&sid, json!({"query": "retry", "method": "literal"}));
    assert_eq!(docs_of(&r), vec![exact; 3], "{r}");
}

/// By default (`word_forms = "prose"`) a query word finds its forms in a
/// session whose characters are mostly in prose documents (plain text,
/// markdown, inline texts), and only itself in one mostly of code; the
/// share is counted over the session's documents, load after load.
#[test]
fn word_forms_follow_how_much_of_a_session_is_prose() {
    let env = Env::new();
    let load = |sid: &str, name: &str, content: &str| {
        env.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": content, "name": name}]}),
        )["loaded"][0]["doc_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    const EXACT: &str = "A retry policy: retry, then retry again.";
    const FORM: &str = "The client retries the request twice.";
    let found = |sid: &str| docs_of(&env.search(sid, json!({"query": "retry"}))).len();
    // Prose: an inline text without a name, a README, a `.md` note.
    let prose = env.session();
    env.load(&prose, EXACT);
    load(&prose, "README", FORM);
    load(&prose, "notes.MD", "Retried twice, it gave up.");
    assert_eq!(found(&prose), 3);
    // Code: the same words in `.py` and `.rs` files.
    let code = env.session();
    load(&code, "policy.py", EXACT);
    load(&code, "client.rs", FORM);
    assert_eq!(found(&code), 1);
    // A session turns prose once more than half its characters are:
    // a long text added to the code session.
    let long = format!(
        "{FORM} {}",
        "Nothing else is said here at any length. ".repeat(10)
    );
    load(&code, "story.txt", &long);
    assert_eq!(found(&code), 3);
    // HTML and data files count as code: their forms stay unmatched.
    let pages = env.session();
    load(&pages, "index.html", &format!("<p>{EXACT}</p>"));
    load(&pages, "data.json", &format!("{{\"note\": \"{FORM}\"}}"));
    assert_eq!(found(&pages), 1);
}

/// Two nearby query words also find an identifier that runs them together,
/// whole or cut to their first letters (`read file`: `readfile`; `temporary
/// directory`: `tempdir`), and the highlights mark it; words farther apart
/// do not join.
#[test]
fn bm25_finds_identifiers_that_run_query_words_together() {
    let env = Env::new();
    let sid = env.session();
    const JOINED: &str = "def readfile(name):\n    return open(name).read()\n";
    const SHORT: &str = "def make_tempdir(prefix):\n    return mkdtemp(prefix)\n";
    let joined = env.load(&sid, JOINED);
    let short = env.load(&sid, SHORT);
    env.load(&sid, "Nothing here is about it.");
    let r = env.search(&sid, json!({"query": "read a file", "context_chars": 500}));
    assert_eq!(docs_of(&r), std::slice::from_ref(&joined), "{r}");
    let m = &r["matches"][0];
    check_match(JOINED, m);
    // `read` of `.read()` is a query word; `readfile` is the join.
    assert_eq!(
        highlights_of(m),
        word_hits(JOINED, &["readfile", "read"]),
        "{m}"
    );
    let r = env.search(&sid, json!({"query": "a temporary directory"}));
    assert_eq!(docs_of(&r), [short], "{r}");
    // Too far apart: `read` still finds the text, by itself only.
    let r = env.search(
        &sid,
        json!({"query": "read one two three four file", "context_chars": 500}),
    );
    assert_eq!(docs_of(&r), [joined], "{r}");
    assert_eq!(
        highlights_of(&r["matches"][0]),
        word_hits(JOINED, &["read"]),
        "{r}"
    );
}
