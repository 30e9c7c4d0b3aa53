//! The daemon's life and death as clients see it: `kill -9` between calls and in the middle
//! of a load (the shim reconnects, the store stays whole, the load is all or nothing), SIGTERM
//! during a long call (the call finishes, then a clean exit), the idle timeout of a daemon
//! started on demand, and a load cancelled by its MCP client.
//!
//! No test here sleeps or hopes a load is still running: a load is held in flight by
//! construction (the test holds the session's lock file, which the load's commit needs, or
//! SQLite's write lock, which the call's budget charge needs) and released once the event under
//! test has been observed (a pack on disk, a log line, the daemon's `status`).

mod common;

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::{
    Ipc, Outcome, TestDir, WAIT, hold_session_lock, is_gone, kill9, outcome_of_response,
    pack_files, rlmd_pids, the_rlmd, wait_for_packs, wait_until, wait_until_else, write_corpus,
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

/// kill -9 while a load is between its pack and its commit (the crash window the store is
/// built for): the call in flight fails with `daemon_unavailable`, the next call starts a new
/// daemon, the store passes `integrity_check` and holds none of the load, and takes it again.
/// The load is held there by construction: the test holds the session's lock file, which the
/// load's commit needs, and kills once the load's pack has appeared under `blobs/packs/`.
#[test]
fn kill_9_during_a_load_fails_only_that_call_and_leaves_all_or_nothing() {
    const FILES: usize = 300;
    let dir = TestDir::new();
    let corpus = write_corpus(&dir.path().join("corpus"), FILES, 2048);
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let sid = session(&mut shim);
    let daemon = the_rlmd(&dir.socket);

    let lock = hold_session_lock(&dir.data, &sid);
    let id = shim.send_call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
    );
    // Every file is read and the pack renamed into place; the commit waits for the lock.
    wait_for_packs(&dir.data, 1);
    kill9(daemon);
    drop(lock);
    let response = shim.response_to(id, WAIT);
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

    // The next call restarts a daemon and sees none of the load: it never committed.
    let info = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    assert_eq!(
        info["document_count"], 0,
        "a load killed before its commit stores nothing: {info}"
    );
    let listed = shim
        .call("rlm.docs.list", json!({"session_id": sid, "limit": 1}))
        .ok();
    assert_eq!(listed["total"], 0, "{listed}");

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
    let blobs: i64 = db
        .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 0, "no blob of the killed load is named by the store");
    drop(db);

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
    assert_eq!(info["document_count"], FILES);
    let hit = shim
        .call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "marker00299", "method": "literal"}),
        )
        .ok();
    assert_eq!(hit["total_matches"], 1, "{hit}");
}

/// SIGTERM while a call is in flight: the call finishes and its result is delivered, then the
/// daemon exits 0, and the load is committed. The load is held in flight by construction (the
/// test holds the session's lock, which its commit needs) until the daemon has logged the
/// signal; only then may it finish.
#[test]
fn sigterm_lets_the_call_in_flight_finish_then_exits_0() {
    const FILES: usize = 300;
    let dir = TestDir::new();
    let corpus = write_corpus(&dir.path().join("corpus"), FILES, 2048);
    let mut daemon = dir.start_daemon(&[]);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lock = hold_session_lock(&dir.data, &sid);
    let id = c.send_call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
        false,
    );
    wait_for_packs(&dir.data, 1);
    daemon.signal(Signal::SIGTERM);
    wait_until(WAIT, "the daemon to log the SIGTERM", || {
        daemon
            .log_text()
            .contains("SIGTERM: finishing the calls in flight")
            .then_some(())
    });
    assert!(
        daemon.is_running(),
        "rlmd exited with a call in flight:\n{}",
        daemon.log_text()
    );
    drop(lock);
    let outcome = c.outcome_of(id);
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

/// The daemon's wall-clock time when it answered `status`: its `started_at` (taken just before
/// the clock its uptime counts from, and cut to the millisecond, so never later) plus its
/// uptime. Never later than the answer itself.
fn daemon_time(status: &Value) -> chrono::DateTime<chrono::Utc> {
    let started = chrono::DateTime::parse_from_rfc3339(status["started_at"].as_str().unwrap())
        .expect("started_at is RFC 3339")
        .with_timezone(&chrono::Utc);
    let uptime = status["uptime_seconds"].as_f64().expect("uptime_seconds");
    started + chrono::Duration::microseconds((uptime * 1e6) as i64)
}

/// Waits, connected, until the daemon's own clock shows `seconds` past `from` (the daemon
/// answering proves it is still up).
fn wait_daemon_clock(c: &mut Ipc, from: chrono::DateTime<chrono::Utc>, seconds: f64) {
    let until = from + chrono::Duration::milliseconds((seconds * 1000.0) as i64);
    wait_until(WAIT, "the daemon's clock to move on", || {
        (daemon_time(&c.status()) >= until).then_some(())
    });
}

/// A daemon started on demand (idle timeout 1 s) stays while a call is in flight and while a
/// client is connected and silent, each for twice the timeout as the daemon's own clock
/// (`status`) measures it; once the last client leaves it exits 0, and not before the timeout:
/// the daemon's log line of the idle exit is at least 1 s after the daemon's time at the last
/// answer the client got. No test clock decides anything: a slow machine only makes the waits
/// longer. The call is held in flight by the session's lock, which the test holds.
#[test]
fn a_daemon_started_on_demand_exits_when_idle_and_not_before() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon(&["--auto-started", "--idle-timeout", "1"]);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let corpus = write_corpus(&dir.path().join("corpus"), 50, 2048);

    // A call that outlasts the idle timeout finishes.
    let lock = hold_session_lock(&dir.data, &sid);
    let id = c.send_call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
        false,
    );
    wait_for_packs(&dir.data, 1);
    let held_at = daemon_time(&c.status());
    wait_daemon_clock(&mut c, held_at, 2.0);
    drop(lock);
    let loaded = c.outcome_of(id);
    assert_eq!(loaded["kind"], "ok", "{loaded}");
    assert_eq!(loaded["result"]["loaded_count"], 50);

    // A connected client that says nothing for twice the timeout keeps the daemon up
    // (`status` is not activity: only connections and calls are).
    let quiet_from = daemon_time(&c.status());
    wait_daemon_clock(&mut c, quiet_from, 2.0);
    c.ok("rlm.session.info", json!({"session_id": sid}));

    let last_answer = daemon_time(&c.status());
    drop(c);
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
    let exit_line = dir
        .rlmd_json_lines()
        .into_iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("idle: no connection and no call"))
        })
        .unwrap_or_else(|| panic!("no idle exit in the log:\n{}", dir.logs_text()));
    let exited_at = chrono::DateTime::parse_from_rfc3339(exit_line["timestamp"].as_str().unwrap())
        .expect("the log's timestamp is RFC 3339")
        .with_timezone(&chrono::Utc);
    let quiet = exited_at - last_answer;
    assert!(
        quiet >= chrono::Duration::milliseconds(999),
        "rlmd exited {quiet} after the last client's last answer, before its 1 s idle timeout"
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

/// Cancellation end to end: an MCP client (raw JSON-RPC on the shim's stdio) starts a load and
/// sends `notifications/cancelled`; the shim passes the cancel to the daemon, the load stops at
/// its first check, and, as docs/TOOLS.md says, fails with `cancelled` (the daemon's log line
/// for the call) and stores nothing: no document, no blob, no pack. The call is held in flight
/// by construction until the daemon has logged the cancel: the test holds SQLite's write lock,
/// so the call's budget charge (a write, before the tool runs) waits for it.
#[test]
fn cancelling_a_load_through_mcp_stops_it_and_it_stores_nothing() {
    const FILES: usize = 200;
    let dir = TestDir::new();
    let corpus = write_corpus(&dir.path().join("corpus"), FILES, 2048);
    let _daemon = dir.start_daemon_with(&dir.socket, &dir.data, &[], &[("RLM_LOG", "debug")]);
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let sid = session(&mut shim);
    let mut observer = Ipc::handshake(&dir.socket);

    let db = rusqlite::Connection::open(dir.data.join("store.sqlite")).expect("the store opens");
    db.execute_batch("BEGIN IMMEDIATE")
        .expect("SQLite's write lock");
    let id = shim.send_call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
    );
    wait_until(WAIT, "the load to be in flight in the daemon", || {
        (observer.status()["calls_in_flight"] == 1).then_some(())
    });
    shim.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                      "params": {"requestId": id, "reason": "the user changed their mind"}}),
    );
    let cancel_line = wait_until_else(
        WAIT,
        "the daemon to log the cancel",
        || dir.logs_text(),
        || {
            dir.rlmd_json_lines()
                .into_iter()
                .find(|l| l["message"] == "cancel requested; the call stops at its next check")
        },
    );
    db.execute_batch("ROLLBACK")
        .expect("releasing the write lock");
    drop(db);

    let call_line = wait_until_else(
        WAIT,
        "the daemon's log line for the load",
        || dir.logs_text(),
        || {
            dir.rlmd_json_lines()
                .into_iter()
                .find(|l| l["message"] == "call" && l["operation"] == "rlm.docs.load")
        },
    );
    assert_eq!(call_line["success"], false, "{call_line}");
    assert_eq!(call_line["error_code"], "cancelled", "{call_line}");
    assert_eq!(
        call_line["correlation_id"], cancel_line["correlation_id"],
        "the cancel named this call: {cancel_line}"
    );

    // Nothing of the load was stored.
    let info = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    assert_eq!(info["document_count"], 0, "{info}");
    let listed = shim
        .call("rlm.docs.list", json!({"session_id": sid, "limit": 1}))
        .ok();
    assert_eq!(listed["total"], 0, "{listed}");
    assert_eq!(pack_files(&dir.data), Vec::<std::path::PathBuf>::new());
    let db = rusqlite::Connection::open_with_flags(
        dir.data.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let blobs: i64 = db
        .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs, 0, "the cancelled load stored no text");
}
