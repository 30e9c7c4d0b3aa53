//! The daemon's life and death as clients see it: `kill -9` between calls and in the middle
//! of a load (the shim reconnects, the store stays whole, the load is all or nothing), SIGTERM
//! during a long call (the call finishes, then a clean exit), and the idle timeout of a daemon
//! started on demand.

mod common;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::{
    Ipc, Outcome, Read1, TestDir, WAIT, is_gone, kill9, outcome_of_response, rlmd_pids, the_rlmd,
    wait_until, write_corpus,
};

fn session(shim: &mut common::Shim) -> String {
    shim.call("rlm.session.create", json!({})).ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn kill_9_between_calls_the_next_call_through_the_same_shim_succeeds() {
    let dir = TestDir::new();
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let sid = session(&mut shim);
    shim.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "kept across a crash"}]}),
    )
    .ok();
    let first = the_rlmd(&dir.socket);
    // The next call comes as soon as the daemon is dead (its sockets closed): no call was in
    // flight, so none may fail, however soon the client calls again.
    kill9(first);

    let info = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    assert_eq!(info["document_count"], 1, "{info}");
    let second = the_rlmd(&dir.socket);
    assert_ne!(first, second, "a new daemon serves the socket");
    // And again: a shim survives any number of restarts.
    kill9(second);
    let found = shim
        .call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "crash", "method": "literal"}),
        )
        .ok();
    assert_eq!(found["total_matches"], 1, "{found}");
    let status = shim.close();
    assert!(status.success(), "rlm-mcp exited with {status}");
}

#[test]
fn kill_9_during_a_load_fails_only_that_call_and_leaves_all_or_nothing() {
    const FILES: usize = 3000;
    let dir = TestDir::new();
    let corpus = write_corpus(&dir.path().join("corpus"), FILES, 2048);
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let sid = session(&mut shim);
    let daemon = the_rlmd(&dir.socket);

    // Ask for progress: the first progress notification proves the load is under way.
    let id = shim.send_request(
        "tools/call",
        json!({"name": "rlm.docs.load",
               "arguments": {"session_id": sid,
                             "sources": [{"type": "directory", "path": corpus}]},
               "_meta": {"progressToken": "load"}}),
    );
    let response = loop {
        let msg = shim.recv(WAIT);
        if msg["method"] == "notifications/progress" {
            kill9(daemon);
            break shim.response_to(id, WAIT);
        }
        if msg["id"] == json!(id) {
            panic!("the load ended before any progress was reported: {msg}");
        }
    };
    match outcome_of_response(&response) {
        Outcome::ToolError { code, message, .. } => {
            assert_eq!(code, "daemon_unavailable", "{message}");
            assert!(
                message.contains("retry") || message.contains("check"),
                "the error says what to do: {message}"
            );
        }
        other => panic!("the call in flight must fail with daemon_unavailable: {other:?}"),
    }

    // The next call restarts a daemon and sees the load entirely or not at all.
    let info = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    let count = info["document_count"].as_u64().unwrap();
    assert!(
        count == 0 || count == FILES as u64,
        "a load killed mid-way is all or nothing, found {count} of {FILES} documents"
    );
    let listed = shim
        .call("rlm.docs.list", json!({"session_id": sid, "limit": 1}))
        .ok();
    assert_eq!(listed["total"], count);

    let db = rusqlite::Connection::open_with_flags(
        dir.data.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens");
    let check: Vec<String> = db
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(check, vec!["ok".to_owned()], "integrity_check");

    // The store takes the same load again, completely.
    let again = shim
        .call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
        )
        .ok();
    assert_eq!(again["loaded_count"], FILES, "{}", again["errors"]);
    let info = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    assert_eq!(info["document_count"], count + FILES as u64);
    let hit = shim
        .call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "marker02999", "method": "literal"}),
        )
        .ok();
    assert!(hit["total_matches"].as_u64().unwrap() >= 1, "{hit}");
}

#[test]
fn sigterm_lets_the_call_in_flight_finish_then_exits_0() {
    const FILES: usize = 3000;
    let dir = TestDir::new();
    let corpus = write_corpus(&dir.path().join("corpus"), FILES, 2048);
    let mut daemon = dir.start_daemon(&[]);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = c.send_call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
        true,
    );
    let mut signalled = false;
    let outcome = loop {
        match c.read_within(WAIT) {
            Read1::Frame(v) if v["type"] == "progress" && v["id"] == id => {
                if !signalled {
                    daemon.signal(Signal::SIGTERM);
                    signalled = true;
                }
            }
            Read1::Frame(v) if v["type"] == "result" && v["id"] == id => {
                break v["outcome"].clone();
            }
            other => panic!(
                "while waiting for the load's result: {other:?}\n{}",
                daemon.log_text()
            ),
        }
    };
    assert!(signalled, "the load reported progress before its result");
    assert_eq!(
        outcome["kind"], "ok",
        "the call in flight finishes: {outcome}"
    );
    assert_eq!(outcome["result"]["loaded_count"], FILES);
    let status = daemon.wait_exit(WAIT);
    assert_eq!(
        status.code(),
        Some(0),
        "rlmd exits 0 after SIGTERM:\n{}",
        daemon.log_text()
    );
    // The load was committed: a new daemon on the same data dir has it.
    let _again = dir.start_daemon(&[]);
    let mut c = Ipc::handshake(&dir.socket);
    let info = c.ok("rlm.session.info", json!({"session_id": sid}));
    assert_eq!(info["document_count"], FILES);
}

#[test]
fn a_daemon_started_on_demand_exits_when_idle_and_not_before() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon(&["--auto-started", "--idle-timeout", "1"]);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A call that outlasts the idle timeout finishes.
    let corpus = write_corpus(&dir.path().join("corpus"), 2000, 2048);
    assert!(
        daemon.is_running(),
        "rlmd exited while a client was connected:\n{}",
        daemon.log_text()
    );
    let started = Instant::now();
    let loaded = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
    );
    let took = started.elapsed();
    assert_eq!(loaded["loaded_count"], 2000);
    eprintln!("the load took {took:?} (idle timeout 1 s)");
    // A connected client that says nothing for twice the timeout keeps the daemon up.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        daemon.is_running(),
        "rlmd exited while a client was connected:\n{}",
        daemon.log_text()
    );
    c.ok("rlm.session.info", json!({"session_id": sid}));

    drop(c);
    let gone_at = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    if gone_at.elapsed() < Duration::from_millis(800) {
        assert!(
            daemon.is_running(),
            "rlmd exited less than its idle timeout after the last client left"
        );
    }
    let status = daemon.wait_exit(Duration::from_secs(15));
    let after = gone_at.elapsed();
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
    assert!(
        after >= Duration::from_millis(900),
        "rlmd exited {after:?} after the last client left, before its 1 s idle timeout"
    );
}

#[test]
fn a_daemon_a_shim_started_exits_after_the_shim_leaves() {
    let dir = TestDir::new();
    let mut shim = dir.shim(&["--idle-timeout", "1"]);
    shim.initialize();
    let sid = session(&mut shim);
    let pid = the_rlmd(&dir.socket);
    shim.call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    let status = shim.close();
    assert!(
        status.success(),
        "rlm-mcp exits 0 when its stdin closes: {status}"
    );
    wait_until(
        Duration::from_secs(15),
        "the auto-started rlmd to exit after its idle timeout",
        || is_gone(pid).then_some(()),
    );
    assert!(rlmd_pids(&dir.socket).is_empty());
    // The next client starts a fresh one on the same data.
    let mut shim = dir.shim(&["--idle-timeout", "1"]);
    shim.initialize();
    let info: Value = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    assert_eq!(info["session_id"], sid.as_str());
}
