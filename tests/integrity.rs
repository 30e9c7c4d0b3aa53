//! A pack cut short under a running `rlmd` while its texts are mapped: the
//! reads past the file's new end raise SIGBUS, which would kill the process;
//! the daemon instead fails the calls that read them with `corrupt_text`
//! naming the document, and goes on answering.

mod common;

use std::path::PathBuf;

use serde_json::json;

use common::{Ipc, TestDir};

/// The one pack of a data dir.
fn only_pack(data: &std::path::Path) -> PathBuf {
    let packs: Vec<PathBuf> = std::fs::read_dir(data.join("blobs/packs"))
        .expect("the packs folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    packs[0].clone()
}

#[test]
fn a_pack_cut_short_while_mapped_fails_its_calls_and_the_daemon_lives() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon(&[]);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Several pages, so that reads past the cut touch pages the file no longer has.
    let body: String = (0..4000)
        .map(|i| format!("line {i:05} of the report, with a needle now and then\n"))
        .collect();
    let file = dir.path().join("report.txt");
    std::fs::write(&file, &body).unwrap();
    let loaded = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "file", "path": file}]}),
    );
    let doc = loaded["loaded"][0]["doc_id"].as_str().unwrap().to_owned();
    let peek = json!({"session_id": sid, "doc_id": doc, "start": 100_000, "end": 100_050});
    // Open (map and verify) the text, and fill the scan cache.
    let first = c.ok("rlm.docs.peek", peek.clone());
    assert_eq!(first["content"].as_str().unwrap().len(), 50);
    let literal = json!({"session_id": sid, "query": "needle", "method": "literal"});
    c.ok("rlm.search.query", literal.clone());

    std::fs::OpenOptions::new()
        .write(true)
        .open(only_pack(&dir.data))
        .unwrap()
        .set_len(4096)
        .unwrap();

    for (what, args) in [
        ("rlm.docs.peek", peek.clone()),
        ("rlm.search.query", literal),
        ("rlm.docs.peek", peek),
    ] {
        let outcome = c.call(what, args);
        assert_eq!(outcome["kind"], "tool_error", "{what}: {outcome}");
        let error = &outcome["error"];
        assert_eq!(error["code"], "corrupt_text", "{what}: {outcome}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(&doc) && message.contains("report.txt"),
            "{what}: the message names the document: {message}"
        );
        assert!(daemon.is_running(), "{what}: rlmd died");
    }
    // The daemon still answers, on this connection and on a new one.
    c.ok("rlm.session.info", json!({"session_id": sid}));
    let mut other = Ipc::handshake(&dir.socket);
    other.ok("rlm.session.info", json!({"session_id": sid}));
    assert!(daemon.is_running(), "rlmd died");
}
