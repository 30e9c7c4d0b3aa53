//! Stored texts are verified: a pack changed or cut short (before its texts
//! are opened, or while they are mapped) fails the calls that read them with
//! `corrupt_text` naming the document, never serves the bytes, and leaves
//! the engine serving everything else.

use std::fs::OpenOptions;
use std::path::PathBuf;

use rlmd::Engine;
use serde_json::{Value, json};

use crate::common::*;

/// Where a document's text lies: its pack file, offset and length in bytes.
fn stored_at(env: &Env, doc_id: &str) -> (PathBuf, u64, u64) {
    let (pack, offset, len): (String, i64, i64) = env
        .db()
        .query_row(
            "SELECT b.pack, b.offset, b.length_bytes FROM documents d JOIN blobs b ON b.hash = d.hash WHERE d.doc_id = ?1",
            [doc_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the document's blob");
    let path = env.data().join("blobs/packs").join(format!("{pack}.pack"));
    (path, offset as u64, len as u64)
}

/// Writes `bytes` over the pack at `at` (same length: the pack keeps its size).
fn overwrite(path: &PathBuf, at: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// The text's first byte, a digit, becomes another digit in the pack.
fn change_first_digit(pack: &PathBuf, offset: u64, text: &str) {
    let first = text.as_bytes()[0];
    overwrite(
        pack,
        offset,
        &[if first == b'9' { b'8' } else { first + 1 }],
    );
}

fn cut(path: &PathBuf, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn call_on(env: &Env, engine: &Engine, tool: &str, args: Value) -> Result<Value, rlmd::CallError> {
    engine.call(tool, args, &env.ctx)
}

/// Asserts `corrupt_text` naming `doc_id` (and `source` when given), with the next step.
fn expect_corrupt(
    r: Result<Value, rlmd::CallError>,
    tool: &str,
    doc_id: &str,
    source: Option<&str>,
) {
    let e = tool_err(tool, r);
    let msg = expect_code(&e, "corrupt_text");
    assert!(
        msg.contains(doc_id),
        "{tool}: the message names the document: {msg}"
    );
    if let Some(s) = source {
        assert!(
            msg.contains(s),
            "{tool}: the message names the source {s}: {msg}"
        );
    }
    assert!(
        msg.contains("rlm.docs.load") && msg.contains("retry does not help"),
        "{tool}: the message says what to do: {msg}"
    );
    assert_eq!(e.context["doc_id"], doc_id, "{tool}: {}", e.to_json());
}

/// Two file documents loaded together (one pack), about 5 pages each.
fn two_docs(env: &Env) -> (String, String, String, String) {
    let a = format!("{}alpha needle here\n", filler_text(1, 20_000));
    let b = format!("{}bravo needle there\n", filler_text(2, 20_000));
    env.write_file("a.txt", &a);
    env.write_file("b.txt", &b);
    let sid = env.session();
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "file", "path": "a.txt"}, {"type": "file", "path": "b.txt"}]}),
    );
    let ids: Vec<String> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap().to_owned())
        .collect();
    (sid, ids[0].clone(), ids[1].clone(), a)
}

#[test]
fn a_letter_changed_in_a_pack_is_corrupt_text_naming_the_document() {
    let env = Env::new();
    let (sid, a, b, a_text) = two_docs(&env);
    let spans = env.chunk(&sid, &a, json!({"type": "fixed", "chunk_size": 1000}));
    let span_id = spans["spans"][0]["span_id"].as_str().unwrap().to_owned();
    let (pack, offset, _) = stored_at(&env, &a);
    change_first_digit(&pack, offset, &a_text);
    // A restarted engine: nothing is open yet.
    let engine = env.reopen();

    let peek = json!({"session_id": sid, "doc_id": a});
    expect_corrupt(
        call_on(&env, &engine, "rlm.docs.peek", peek.clone()),
        "peek",
        &a,
        Some("a.txt"),
    );
    for (tool, args, what) in [
        (
            "rlm.span.get",
            json!({"session_id": sid, "span_ids": [span_id]}),
            "span.get",
        ),
        (
            "rlm.search.query",
            json!({"session_id": sid, "query": "needle"}),
            "search bm25",
        ),
        (
            "rlm.search.query",
            json!({"session_id": sid, "query": "needle", "method": "literal"}),
            "search literal",
        ),
        (
            "rlm.chunk.create",
            json!({"session_id": sid, "doc_id": a, "strategy": {"type": "lines", "line_count": 10}}),
            "chunk.create",
        ),
    ] {
        expect_corrupt(call_on(&env, &engine, tool, args), what, &a, None);
    }
    // The other document, and the session, are still served.
    let other = ok(
        "peek b",
        call_on(
            &env,
            &engine,
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": b, "start": 0, "end": 5}),
        ),
    );
    assert_eq!(other["content"], "00000");
    let found = ok(
        "search b",
        call_on(
            &env,
            &engine,
            "rlm.search.query",
            json!({"session_id": sid, "query": "bravo needle", "method": "literal", "doc_ids": [b]}),
        ),
    );
    assert_eq!(found["total_matches"], 1);
    ok(
        "info",
        call_on(
            &env,
            &engine,
            "rlm.session.info",
            json!({"session_id": sid}),
        ),
    );
    // Still damaged on the next call (never cached), until the text is
    // loaded again from its source: then the old document reads again too.
    expect_corrupt(
        call_on(&env, &engine, "rlm.docs.peek", peek.clone()),
        "peek again",
        &a,
        Some("a.txt"),
    );
    let again = ok(
        "reload",
        call_on(
            &env,
            &engine,
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "file", "path": "a.txt"}]}),
        ),
    );
    let a2 = again["loaded"][0]["doc_id"].as_str().unwrap().to_owned();
    let fresh = ok(
        "peek reloaded",
        call_on(
            &env,
            &engine,
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": a2, "start": 0, "end": 7}),
        ),
    );
    assert_eq!(fresh["content"], chars(&a_text, 0, 7));
    let healed = ok("peek old", call_on(&env, &engine, "rlm.docs.peek", peek));
    assert_eq!(
        healed["content_hash"],
        sha256_hex(chars(&a_text, 0, 10_000).as_bytes())
    );
}

#[test]
fn a_change_of_char_count_at_the_same_byte_length_is_corrupt_text() {
    let env = Env::new();
    let sid = env.session();
    let text = format!("ab{}", "plain ascii text\n".repeat(100));
    let doc = env.load(&sid, &text);
    let (pack, offset, _) = stored_at(&env, &doc);
    // Two ASCII bytes become one two-byte char: valid UTF-8, one char fewer.
    overwrite(&pack, offset, "é".as_bytes());
    let engine = env.reopen();
    expect_corrupt(
        call_on(
            &env,
            &engine,
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "start": 0, "end": 3}),
        ),
        "peek",
        &doc,
        None,
    );
}

#[test]
fn a_pack_cut_short_before_it_is_opened_is_corrupt_text() {
    let env = Env::new();
    let (sid, a, b, a_text) = two_docs(&env);
    let (pack, b_offset, _) = stored_at(&env, &b);
    cut(&pack, b_offset + 10);
    let engine = env.reopen();
    expect_corrupt(
        call_on(
            &env,
            &engine,
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": b}),
        ),
        "peek",
        &b,
        Some("b.txt"),
    );
    expect_corrupt(
        call_on(
            &env,
            &engine,
            "rlm.search.query",
            json!({"session_id": sid, "query": "needle", "method": "literal"}),
        ),
        "search literal",
        &b,
        None,
    );
    // The text before the cut is whole, and read.
    let whole = ok(
        "peek a",
        call_on(
            &env,
            &engine,
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": a, "start": 0, "end": 9}),
        ),
    );
    assert_eq!(whole["content"], chars(&a_text, 0, 9));
    ok(
        "info",
        call_on(
            &env,
            &engine,
            "rlm.session.info",
            json!({"session_id": sid}),
        ),
    );
}

#[cfg(unix)]
#[test]
fn a_pack_cut_short_while_mapped_fails_the_calls_that_read_it() {
    let env = Env::new();
    let (sid, a, b, _) = two_docs(&env);
    // Open and map both texts, build the index, fill the scan cache.
    for d in [&a, &b] {
        env.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": d, "start": 0, "end": 3}),
        );
    }
    env.search(&sid, json!({"query": "needle"}));
    env.search(&sid, json!({"query": "needle", "method": "literal"}));
    let (pack, _, _) = stored_at(&env, &a);
    cut(&pack, 0);

    // Each read of the mapping past the file's end faults: the engine (this
    // test's process) lives, and the call fails instead of serving zeros.
    let e = env.fail("rlm.docs.peek", json!({"session_id": sid, "doc_id": b}));
    let msg = expect_code(&e, "corrupt_text");
    assert!(msg.contains(&b) && msg.contains("b.txt"), "{msg}");
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": "needle", "method": "literal"}),
    );
    expect_code(&e, "corrupt_text");
    let e = env.fail(
        "rlm.search.query",
        json!({"session_id": sid, "query": "needle"}),
    );
    expect_code(&e, "corrupt_text");
    // The next open checks the file's size first, and fails cleanly.
    let e = env.fail("rlm.docs.peek", json!({"session_id": sid, "doc_id": a}));
    expect_code(&e, "corrupt_text");
    env.info(&sid);
    // Other texts are served.
    let other = env.session();
    let c = env.load(&other, "a text in another pack");
    let r = env.call("rlm.docs.peek", json!({"session_id": other, "doc_id": c}));
    assert_eq!(r["content"], "a text in another pack");
}

/// A load vouches for the texts it wrote (it hashed the very bytes): the same
/// engine's first open does not hash them again. A pack written in place
/// since is another file for the store (its modification time moved, as a
/// write a timestamp tick later moves it), and its texts are checked again.
#[test]
fn a_pack_written_after_its_load_is_corrupt_text_to_the_same_engine() {
    let env = Env::new();
    let (sid, a, b, a_text) = two_docs(&env);
    let (pack, offset, _) = stored_at(&env, &a);
    change_first_digit(&pack, offset, &a_text);
    {
        let f = OpenOptions::new().write(true).open(&pack).unwrap();
        let was = f.metadata().unwrap().modified().unwrap();
        f.set_modified(was + std::time::Duration::from_secs(1))
            .unwrap();
    }
    expect_corrupt(
        env.try_call("rlm.docs.peek", json!({"session_id": sid, "doc_id": a})),
        "peek",
        &a,
        Some("a.txt"),
    );
    // The other text of the pack is read, checked against its key.
    let r = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": b, "start": 0, "end": 5}),
    );
    assert_eq!(r["content"].as_str().map(str::len), Some(5), "{r}");
}
