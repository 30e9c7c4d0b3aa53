//! The hostile-input suite: what one client sends, or another process does to
//! the files, must neither hang, crash nor blow up the daemon for everyone.
//! Every daemon here runs under an address-space limit ([`LIMIT`]), so memory
//! that grows with the input ends the test instead of the machine's swap, and
//! every wait has a deadline ([`WAIT`]). Cases that need only the engine live
//! beside it (`daemon/tests/tools/`); this suite drives real processes. What
//! the daemon's files and folders are to the machine's other users (modes,
//! links, paths that are not its own) is `private_files.rs`.

mod common;

use std::path::Path;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::{
    Ipc, LIMIT, TestDir, Tmpfs, WAIT, hold_session_lock, load_inline, proc_status, session,
    wait_until,
};

/// More calls waiting for a session lock than the runtime has blocking
/// threads (9 connections of 64 loads, against tokio's 512) took every
/// thread: a call of another session, from another client, waited behind
/// them for the lock's 10-minute timeout. Now each connection runs 4 calls
/// at a time and the rest wait without a thread.
#[test]
fn calls_stuck_on_a_lock_leave_threads_for_everyone_else() {
    const CONNECTIONS: usize = 9;
    const CALLS: usize = 64;
    let dir = TestDir::new();
    let daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let held = session(&mut c, json!({"max_tool_calls": 10_000}));
    let other = session(&mut c, json!({}));
    let lock = hold_session_lock(&dir.data, &held);
    let mut hogs = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut h = Ipc::handshake(&dir.socket);
        let ids: Vec<u64> = (0..CALLS)
            .map(|i| {
                h.send_call(
                    "rlm.docs.load",
                    json!({"session_id": held, "sources": [{"type": "inline", "content": format!("text {i}")}]}),
                    false,
                )
            })
            .collect();
        hogs.push((h, ids));
    }
    let all = (CONNECTIONS * CALLS) as u64;
    wait_until(WAIT, "every load to be in flight", || {
        (c.status()["calls_in_flight"].as_u64() == Some(all)).then_some(())
    });
    // Another client's call, on another session, is served now.
    let info = c.ok("rlm.session.info", json!({"session_id": other}));
    assert_eq!(info["session_id"], other.as_str());
    let threads = proc_status(daemon.pid(), "Threads");
    assert!(
        threads < 200,
        "{threads} threads for {all} calls stuck on one lock"
    );
    drop(lock);
    // Answers come as calls end, in any order.
    for (mut h, ids) in hogs {
        let mut left: std::collections::BTreeSet<u64> = ids.into_iter().collect();
        while !left.is_empty() {
            match h.read_within(WAIT) {
                common::Read1::Frame(v) if v["type"] == "result" => {
                    assert_eq!(v["outcome"]["kind"], "ok", "{v}");
                    assert!(left.remove(&v["id"].as_u64().unwrap()), "{v}");
                }
                other => panic!("{} loads unanswered: {other:?}", left.len()),
            }
        }
    }
    let info = c.ok("rlm.session.info", json!({"session_id": held}));
    assert_eq!(info["document_count"], all);
}

/// A call that cannot finish (here: its session's lock is held by another
/// process and never released) kept a stopping daemon alive: the drain
/// waited 120 s, then the runtime waited for the blocking thread for the
/// lock's 10 minutes. Now the process exits at its drain deadline.
#[test]
fn a_stop_exits_at_its_deadline_even_with_a_call_stuck() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon_limited(&dir.data, &["--drain-timeout", "1"], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    let _lock = hold_session_lock(&dir.data, &sid);
    c.send_call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "stuck"}]}),
        false,
    );
    wait_until(WAIT, "the load to be in flight", || {
        let mut probe = Ipc::handshake(&dir.socket);
        (probe.status()["calls_in_flight"] == 1).then_some(())
    });
    daemon.signal(Signal::SIGTERM);
    let status = daemon.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "{}", daemon.log_text());
    assert!(
        daemon
            .log_text()
            .contains("calls still running past the drain deadline"),
        "{}",
        daemon.log_text()
    );
}

/// Hundreds of searches with large answers written at once, by a client
/// that reads nothing until it has sent them all: the daemon holds a bounded
/// number of calls and answer bytes per connection (it took 4.7 GB in 8 s and
/// aborted, before calls in flight were bounded), and every call is answered.
#[test]
fn a_burst_of_large_answers_from_a_client_that_does_not_read_stays_bounded() {
    const CALLS: usize = 200;
    let dir = TestDir::new();
    let daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(
        &mut c,
        json!({"max_tool_calls": 100_000, "max_chars_per_response": 1_000_000, "max_tokens_per_response": 1_000_000}),
    );
    let text = "a needle in the hay, then more hay to fill a line of text\n".repeat(20_000);
    load_inline(&mut c, &sid, &text);
    let before = proc_status(daemon.pid(), "VmHWM");
    // A second thread sends everything; this one reads only once all is sent.
    let mut burst = Ipc::handshake(&dir.socket);
    let mut sender = burst
        .stream
        .try_clone()
        .expect("a second handle on the socket");
    let sid2 = sid;
    let sent = std::thread::spawn(move || {
        (0..CALLS as u64)
            .map(|i| {
                let id = 1_000 + i;
                let call = json!({"type": "call", "id": id, "tool": "rlm.search.query", "progress": false,
                    "arguments": {"session_id": sid2, "query": "needle", "method": "literal", "limit": 1000, "context_chars": 1000}});
                std::io::Write::write_all(&mut sender, &common::frame(&call)).expect("sending a call");
                id
            })
            .collect::<Vec<u64>>()
    });
    // The sender stalls once the daemon stops reading (64 in flight): the
    // daemon's memory is then at its worst.
    wait_until(WAIT, "the daemon to stop reading", || {
        (c.status()["calls_in_flight"].as_u64() >= Some(64)).then_some(())
    });
    let mut answered = 0;
    let mut max_chars = 0;
    while answered < CALLS {
        match burst.read_within(WAIT) {
            common::Read1::Frame(v) if v["type"] == "result" => {
                assert_eq!(v["outcome"]["kind"], "ok", "{}", v["outcome"]);
                max_chars = max_chars.max(v["outcome"]["result"]["matches"].to_string().len());
                answered += 1;
            }
            other => panic!("after {answered} answers: {other:?}"),
        }
    }
    let ids = sent.join().expect("the sender");
    assert_eq!(ids.len(), CALLS);
    assert!(max_chars > 500_000, "answers are large: {max_chars}");
    let peak = proc_status(daemon.pid(), "VmHWM");
    let anon = proc_status(daemon.pid(), "RssAnon");
    let file = proc_status(daemon.pid(), "RssFile");
    eprintln!("hostile: VmHWM {before} -> {peak} kB, RssAnon {anon} kB, RssFile {file} kB");
    assert!(
        peak < before + 1_000_000,
        "the daemon grew from {before} kB to {peak} kB"
    );
}

/// FIFOs, devices and links to them in a load: each is its source's error
/// line, none blocks a load thread, the other sources load, and the daemon
/// still stops promptly on SIGTERM (two FIFOs used to take both load threads
/// forever, and SIGTERM never ended the process).
#[test]
fn fifos_and_devices_fail_their_source_and_block_nothing() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for name in ["fifo0", "fifo1", "fifo2"] {
        nix::unistd::mkfifo(
            &files.join(name),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("/dev/zero", files.join("zero")).unwrap();
    std::fs::write(files.join("ok.txt"), "a regular file").unwrap();
    let source = |p: &Path| json!({"type": "file", "path": p});
    let r = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            source(&files.join("fifo0")), source(&files.join("fifo1")), source(&files.join("fifo2")),
            source(&files.join("zero")), source(Path::new("/dev/zero")), source(&files.join("ok.txt")),
            {"type": "directory", "path": files},
        ]}),
    );
    assert_eq!(r["loaded_count"], 2, "{r}");
    assert_eq!(r["error_count"], 9, "{r}");
    let errors = r["errors"].to_string();
    assert!(errors.contains("not a regular file"), "{errors}");
    daemon.signal(Signal::SIGTERM);
    assert_eq!(daemon.wait_exit(WAIT).code(), Some(0));
}

/// A glob through two links that point at their own folder never returned
/// and grew the daemon by 40 MB/s; one such link loaded 5 files as 205
/// documents. Each file is now loaded once and the loops are reported.
#[test]
fn links_to_their_own_folder_load_each_file_once() {
    let dir = TestDir::new();
    let _daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..5 {
        std::fs::write(tree.join(format!("f{i}.txt")), format!("file {i}")).unwrap();
    }
    std::os::unix::fs::symlink(".", tree.join("self0")).unwrap();
    std::os::unix::fs::symlink(".", tree.join("self1")).unwrap();
    let r = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "glob", "path": format!("{}/**/*.txt", tree.display())},
            {"type": "directory", "path": tree, "recursive": true},
        ]}),
    );
    assert_eq!(r["loaded_count"], 10, "{r}");
    let info = c.ok("rlm.session.info", json!({"session_id": sid}));
    assert_eq!(info["document_count"], 10);
}

/// The tool error of a call that must fail: its code and message.
fn failure(outcome: &Value) -> (String, String) {
    assert_eq!(
        outcome["kind"], "tool_error",
        "expected a tool error: {outcome}"
    );
    let e = &outcome["error"];
    (
        e["code"].as_str().unwrap_or_default().to_owned(),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A client that leaks connections: allowed 128 descriptors, the daemon
/// gave every one to idle connections and could then neither accept a
/// client nor open its store, logging a warning every 50 ms. Now it serves
/// half its descriptors' worth of connections (64); a hello past that is
/// answered with an error that names the limit and what to do, the clients
/// already connected are still served, and closed ones make room.
#[test]
fn connections_past_the_limit_are_told_why_and_the_others_still_served() {
    let dir = TestDir::new();
    // Soft and hard alike: the daemon cannot raise it.
    let _daemon = dir.start_daemon_with_open_files(128, 128);
    let mut first = Ipc::handshake(&dir.socket);
    let sid = session(&mut first, json!({}));
    let mut held = Vec::new();
    let refused = loop {
        let mut c = Ipc::connect(&dir.socket).expect("connect");
        let answer = c.hello();
        if answer["type"] != "welcome" {
            break answer;
        }
        held.push(c);
        assert!(held.len() < 200, "no limit met");
    };
    // 64 in all (a probe of the daemon's start may still be counted).
    assert!(
        (60..=64).contains(&(held.len() + 1)),
        "{} welcomed",
        held.len() + 1
    );
    assert_eq!(refused["type"], "error", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("64 connections") && message.contains("ulimit"),
        "{message}"
    );
    // Those already connected are served, files opened and all.
    load_inline(&mut first, &sid, "still served");
    first.ok(
        "rlm.search.query",
        json!({"session_id": sid, "query": "served"}),
    );
    // Closed connections make room.
    held.truncate(held.len() - 10);
    wait_until(WAIT, "a new connection to be welcomed", || {
        let mut c = Ipc::connect(&dir.socket).ok()?;
        (c.hello()["type"] == "welcome").then_some(())
    });
}

/// Clients that send large inline loads faster than the daemon stores them
/// had each one read into memory as it came: one client's 16 loads of 100
/// MB at once peaked at 455 MB of `RssAnon`, and nothing bounded several
/// clients together. Now large requests (1 MiB and more) share a room
/// (`max_large_requests_mb`, here 4): the body of one that does not fit is
/// read only once a call holding room has run, and smaller requests never
/// wait for it.
#[test]
fn large_requests_wait_for_room_and_small_ones_do_not() {
    let dir = TestDir::new();
    std::fs::write(&dir.config, "max_large_requests_mb = 4\n").unwrap();
    let _daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let held = session(&mut c, json!({}));
    let free = session(&mut c, json!({}));
    // Some 3 MiB of text: one fits the room, two do not.
    let text = |tag: &str| format!("{tag} {}", "lorem ipsum ".repeat((3 << 20) / 12));
    let load = |sid: &str, tag: &str| json!({"session_id": sid, "sources": [{"type": "inline", "content": text(tag)}]});
    let lock = hold_session_lock(&dir.data, &held);
    let mut a = Ipc::handshake(&dir.socket);
    let stuck = a.send_call("rlm.docs.load", load(&held, "first"), false);
    wait_until(WAIT, "the stuck load to hold its room", || {
        (c.status()["large_requests_held_bytes"].as_u64()? >= 3 << 20).then_some(())
    });
    // Another client's large load, into a session nobody holds, waits unread
    // (its sending blocks once the socket's buffer is full: a thread of its own).
    let socket = dir.socket.clone();
    let second = load(&free, "second");
    let waiting = std::thread::spawn(move || {
        let mut b = Ipc::handshake(&socket);
        let id = b.send_call("rlm.docs.load", second, false);
        b.outcome_of(id)
    });
    wait_until(WAIT, "the second load to wait for room", || {
        (c.status()["large_requests_waiting"].as_u64()? == 1).then_some(())
    });
    // Meanwhile small calls, small loads included, are served at once.
    load_inline(&mut c, &free, "a small text");
    let info = c.ok("rlm.session.info", json!({"session_id": free}));
    assert_eq!(info["document_count"], 1, "{info}");
    // The held load runs once its lock goes; then the waiting one is read.
    drop(lock);
    assert_eq!(a.outcome_of(stuck)["kind"], "ok");
    let outcome = waiting.join().expect("the second client");
    assert_eq!(outcome["kind"], "ok", "{outcome}");
    let info = c.ok("rlm.session.info", json!({"session_id": free}));
    assert_eq!(info["document_count"], 2, "{info}");
    let status = c.status();
    assert_eq!(status["large_requests_held_bytes"], 0, "{status}");
    assert_eq!(status["large_requests_waiting"], 0, "{status}");
    assert_eq!(status["large_requests_room_bytes"], 4 << 20, "{status}");
}

/// The first message of a connection was read up to the 256 MiB any frame
/// may have: a client that had not said who it was could make the daemon
/// wait for that much. A hello is a few hundred bytes; a first frame past
/// 64 KiB is refused at its length, unread.
#[test]
fn a_first_message_past_64_kib_is_refused_unread() {
    let dir = TestDir::new();
    let _daemon = dir.start_daemon(&[]);
    let mut c = Ipc::connect(&dir.socket).expect("connect");
    // Only the length of a 100 MB frame: the daemon must not wait for it.
    c.send_bytes(&(100u32 << 20).to_be_bytes()).unwrap();
    let frames = c.frames_until_closed(WAIT);
    let message = frames
        .first()
        .and_then(|f| f["message"].as_str())
        .unwrap_or_default();
    assert!(
        message.contains("104857600 bytes") && message.contains("65536-byte limit"),
        "{frames:?}"
    );
}

/// The soft open-files limit a daemon inherits (often 1024 from the client
/// that started it) is raised to the hard one, so the connections it serves
/// are half the hard limit's worth.
#[test]
fn the_daemon_raises_its_open_files_limit_to_the_hard_one() {
    let dir = TestDir::new();
    let daemon = dir.start_daemon_with_open_files(256, 4096);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
}

/// A full disk: every call failed `internal` with "retry it". Now a write
/// that cannot fit fails `disk_full` naming the folder and what to do; a
/// read is served while its budget charge can still be written (its trace,
/// if it cannot, is skipped with a warning), and fails `disk_full` when the
/// charge cannot: the budget stays exact. Once there is room, the same
/// load succeeds.
#[test]
fn a_full_disk_is_named_and_what_is_stored_stays_readable() {
    let dir = TestDir::new();
    let fs = Tmpfs::mount(&dir.path().join("fs"), "16m");
    let data = fs.0.join("data");
    let _daemon = dir.start_daemon_limited(&data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    let doc = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "a needle in stored text"}]}),
    )["loaded"][0]["doc_id"]
        .clone();
    c.ok(
        "rlm.search.query",
        json!({"session_id": sid, "query": "needle"}),
    );
    // Fill the disk.
    let mut filler = std::fs::File::create(fs.0.join("filler")).unwrap();
    let block = vec![7u8; 1 << 16];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    let (code, message) = failure(&c.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "x".repeat(1 << 20)}]}),
    ));
    assert_eq!(code, "disk_full", "{message}");
    assert!(message.contains(&data.display().to_string()), "{message}");
    // A read is served when its charge still fits in SQLite's log, else it
    // fails the same way: never served uncounted, never `internal`.
    for (tool, args) in [
        ("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc})),
        (
            "rlm.search.query",
            json!({"session_id": sid, "query": "needle"}),
        ),
        ("rlm.session.info", json!({"session_id": sid})),
    ] {
        let outcome = c.call(tool, args);
        if outcome["kind"] != "ok" {
            let (code, message) = failure(&outcome);
            assert_eq!(code, "disk_full", "{tool}: {message}");
            assert!(message.contains(&data.display().to_string()), "{message}");
        }
    }
    // Room again: the same load succeeds.
    std::fs::remove_file(fs.0.join("filler")).unwrap();
    load_inline(&mut c, &sid, &"x".repeat(1 << 20));
}

/// `allowed_roots` could be probed: an error listed the names of a folder
/// outside the roots, and "outside the folders" vs "no such file" told
/// whether a path existed. Now both get the same answer and no name.
#[test]
fn paths_outside_the_allowed_roots_tell_nothing() {
    let dir = TestDir::new();
    let allowed = dir.path().join("allowed");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(outside.join("deep")).unwrap();
    std::fs::write(outside.join("exists.txt"), "outside").unwrap();
    std::fs::write(outside.join("deep/private-name.txt"), "outside").unwrap();
    std::fs::write(
        &dir.config,
        format!("allowed_roots = [{:?}]\n", allowed.display().to_string()),
    )
    .unwrap();
    let _daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    let r = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "file", "path": outside.join("exists.txt")},
            {"type": "file", "path": outside.join("missing.txt")},
            {"type": "directory", "path": outside, "recursive": true},
            {"type": "glob", "path": format!("{}/**/*.txt", outside.display())},
        ]}),
    );
    assert_eq!(r["loaded_count"], 0, "{r}");
    let errors: Vec<String> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(errors.len(), 4, "{r}");
    assert!(!r.to_string().contains("private-name"), "{r}");
    assert_eq!(
        errors[0].replace("exists.txt", "X"),
        errors[1].replace("missing.txt", "X"),
        "an existing and a missing file get the same answer"
    );
}

/// Traces kept arguments redaction did not recognise verbatim (a misspelt
/// `"contents": "SECRET..."`), kept arguments of any size, and a 1 MB
/// session id became a 1 MB log line. Now no text reaches either.
#[test]
fn traces_and_logs_keep_no_text_and_stay_bounded() {
    let dir = TestDir::new();
    let daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    let secret = format!("SECRET-{}", "s".repeat(5000));
    let outcome = c.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "contents": secret}]}),
    );
    assert_eq!(outcome["kind"], "ok", "{outcome}");
    let huge_id = "i".repeat(1 << 20);
    let (code, _) = failure(&c.call("rlm.session.info", json!({"session_id": huge_id})));
    assert_eq!(code, "session_not_found");
    let store = rusqlite::Connection::open(dir.data.join("store.sqlite")).unwrap();
    let (rows, longest, leaked): (i64, i64, i64) = store
        .query_row(
            "SELECT count(*), max(length(arguments)), sum(instr(arguments, 'SECRET') > 0) FROM traces",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(rows >= 3, "{rows} traces");
    assert_eq!(leaked, 0, "a trace holds the misspelt content");
    assert!(longest < 10_000, "a trace of {longest} characters");
    let logs = format!("{}{}", dir.rlmd_logs(), daemon.log_text());
    let widest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(widest < 4096, "a log line of {widest} bytes");
    assert!(!logs.contains("SECRET"));
}

/// Paging never passed an entry larger than the response budget: the page
/// at its offset was empty with `has_more: true`, forever. Now it comes back
/// alone, cut, and the pages go on.
#[test]
fn paging_passes_an_entry_larger_than_a_page() {
    let dir = TestDir::new();
    let _daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({"max_chars_per_response": 1000}));
    c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "inline", "content": "one", "name": "a"},
            {"type": "inline", "content": "two", "name": "n".repeat(5000)},
            {"type": "inline", "content": "three", "name": "c"},
        ]}),
    );
    let mut seen = 0;
    let mut offset = 0;
    for _ in 0..3 {
        let r = c.ok(
            "rlm.docs.list",
            json!({"session_id": sid, "offset": offset}),
        );
        let page = r["documents"].as_array().unwrap().len();
        assert!(page > 0, "{r}");
        seen += page;
        match r["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(seen, 3);
}

/// Literal search missed letters that case-fold to ASCII (`kelvin` did not
/// find "Kelvin" written with U+212A, nor `stop` "ſtop"); regex did. Both
/// agree now.
#[test]
fn literal_and_regex_search_fold_case_alike() {
    let dir = TestDir::new();
    let _daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    load_inline(&mut c, &sid, "\u{212A}elvin and \u{17F}top");
    for query in ["kelvin", "stop"] {
        let mut count = |method: &str| {
            c.ok(
                "rlm.search.query",
                json!({"session_id": sid, "query": query, "method": method}),
            )["total_matches"]
                .clone()
        };
        let (literal, regex) = (count("literal"), count("regex"));
        assert_eq!(literal, 1, "{query}");
        assert_eq!(literal, regex, "{query}");
    }
}

/// A letter changed in a pack came back as the text, and a pack cut short
/// while mapped killed the daemon with SIGBUS. Now the calls that read it
/// fail `corrupt_text` naming the document, and the daemon goes on.
#[test]
fn a_pack_cut_short_while_mapped_fails_its_calls_and_the_daemon_lives() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
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
    let packs = common::pack_files(&dir.data);
    assert_eq!(packs.len(), 1, "{packs:?}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&packs[0])
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

/// A regex that is slow over one large document (2 000 alternated words
/// with `\b`, over text with a non-ASCII char in every line, where the regex
/// crate's lazy DFA gives up: 3 MB/s in a release build) ran to the
/// document's end after its client had cancelled or gone: a core and a
/// thread for half a minute per 100 MB, per call. Now a scan that takes
/// long tells its client how far it is every second, and a cancel stops it
/// at its next window of 256 KiB, inside the document. (Before, no progress
/// came, and the scan of this 8 MB ran for tens of seconds.)
#[test]
fn a_slow_regex_is_stopped_inside_a_document_by_a_cancel() {
    let dir = TestDir::new();
    // `_daemon` bound by name: it lives to the end of the test.
    let SlowCase {
        _daemon,
        mut c,
        sid,
        pattern,
        ..
    } = SlowCase::loaded(&dir);
    let id = c.send_call(
        "rlm.search.query",
        json!({"session_id": sid, "query": pattern, "method": "regex", "limit": 1}),
        true,
    );
    cancel_under_way(&mut c, id, "the scan");
    // The daemon serves the next call.
    let info = c.ok("rlm.session.info", json!({"session_id": sid}));
    assert_eq!(info["document_count"], 1);
}

/// A chunking by a delimiter that is slow to search for (the pattern of the
/// test above, over the same text) is stopped inside its one document by a
/// cancel, stores no span, and leaves the session's lock free: the next
/// chunking of that document, by another strategy, is made at once.
#[test]
fn a_slow_delimiter_chunking_is_stopped_inside_its_document_by_a_cancel() {
    let dir = TestDir::new();
    let SlowCase {
        _daemon,
        mut c,
        sid,
        text,
        pattern,
    } = SlowCase::loaded(&dir);
    let listed = c.ok("rlm.docs.list", json!({"session_id": sid}));
    let doc = listed["documents"][0]["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = c.send_call(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc,
               "strategy": {"type": "delimiter", "delimiter": pattern}}),
        true,
    );
    cancel_under_way(&mut c, id, "the chunking");
    let listed = c.ok("rlm.docs.list", json!({"session_id": sid}));
    assert_eq!(
        listed["documents"][0]["span_count"], 0,
        "a cancelled chunking stores no span: {listed}"
    );
    let fixed = c.ok(
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": doc,
               "strategy": {"type": "fixed", "chunk_size": 1_000_000}}),
    );
    assert_eq!(
        fixed["total_spans"],
        text.chars().count().div_ceil(1_000_000)
    );
}

/// A daemon with a session holding one text over which a pattern is slow
/// to search for ([`slow_pattern_case`]).
struct SlowCase {
    _daemon: common::Daemon,
    c: Ipc,
    sid: String,
    text: String,
    pattern: String,
}

impl SlowCase {
    fn loaded(dir: &TestDir) -> SlowCase {
        let daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
        let mut c = Ipc::handshake(&dir.socket);
        let sid = session(&mut c, json!({}));
        let (text, pattern) = slow_pattern_case();
        load_inline(&mut c, &sid, &text);
        SlowCase {
            _daemon: daemon,
            c,
            sid,
            text,
            pattern,
        }
    }
}

/// About 8 MB of lines of words, an é in each, and a regex of 2 000 of
/// those words alternated, each between `\b`: over such text the regex
/// crate's lazy DFA gives up, and a search runs at some 3 MB/s (release).
fn slow_pattern_case() -> (String, String) {
    let words: Vec<String> = (0..2000).map(|i| format!("w{i:04}q")).collect();
    let mut seed = 7u64;
    let mut text = String::new();
    while text.len() < 8 << 20 {
        for _ in 0..10 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let i = (seed >> 33) as usize % 4000;
            match words.get(i) {
                Some(w) => text.push_str(w),
                None => text.push_str(&format!("v{i:04}z")),
            }
            text.push(' ');
        }
        text.push_str("café\n");
    }
    let pattern = words
        .iter()
        .map(|w| format!(r"\b{w}\b"))
        .collect::<Vec<_>>()
        .join("|");
    (text, pattern)
}

/// Waits for the first progress of call `id` (`what`), which must come from
/// inside its one document, then cancels it: the call must fail with
/// `cancelled` within `WAIT`.
fn cancel_under_way(c: &mut Ipc, id: u64, what: &str) {
    match c.read_within(WAIT) {
        common::Read1::Frame(v) if v["type"] == "progress" && v["id"] == id => assert!(
            v["done"].as_u64() < v["total"].as_u64(),
            "{what} is under way, inside the document: {v}"
        ),
        common::Read1::Frame(v) if v["type"] == "result" => {
            panic!("{what} ended before its first progress: {v}")
        }
        other => panic!("no progress from {what} within {WAIT:?}: {other:?}"),
    }
    c.send(&json!({"type": "cancel", "id": id}))
        .expect("sending the cancel");
    let deadline = std::time::Instant::now() + WAIT;
    let outcome = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} went on for {WAIT:?} after its cancel"
        );
        match c.read_within(WAIT) {
            common::Read1::Frame(v) if v["type"] == "progress" => {}
            common::Read1::Frame(v) if v["type"] == "result" && v["id"] == id => {
                break v["outcome"].clone();
            }
            other => panic!("no answer to the cancelled {what}: {other:?}"),
        }
    };
    let (code, message) = failure(&outcome);
    assert_eq!(code, "cancelled", "{message}");
}

/// A literal search over a text holding a non-ASCII member of the needle's
/// fold classes (the long s, for `s`) mapped the whole text to one byte a
/// char and kept every match before giving the first: 180 MB more for one
/// search of `s` over 95 MB, 590 MB more for four at once. Now it maps
/// 256 Ki chars at a time, a few MB a search whatever the text's size.
#[test]
fn literal_searches_over_a_text_with_fold_members_stay_bounded() {
    let dir = TestDir::new();
    let daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    // 24 MB, a third of its words with an s, and one long s at the end.
    let mut text = "some words with s in them\n".repeat((24 << 20) / 26);
    text.push_str("the \u{17F}ign\n");
    load_inline(&mut c, &sid, &text);
    // A bm25 search waits for the index build the load began (its writer's
    // memory would otherwise peak during the searches measured).
    c.ok(
        "rlm.search.query",
        json!({"session_id": sid, "query": "words", "limit": 1}),
    );
    let expected = text.matches('s').count() + 1;
    let before = proc_status(daemon.pid(), "VmHWM");
    let ids: Vec<u64> = (0..4)
        .map(|_| {
            c.send_call(
                "rlm.search.query",
                json!({"session_id": sid, "query": "s", "method": "literal", "limit": 1}),
                false,
            )
        })
        .collect();
    let mut answered = 0;
    while answered < ids.len() {
        let outcome = match c.read_within(WAIT) {
            common::Read1::Frame(v)
                if v["type"] == "result" && ids.contains(&v["id"].as_u64().unwrap_or(0)) =>
            {
                v["outcome"].clone()
            }
            other => panic!("after {answered} answers: {other:?}"),
        };
        answered += 1;
        assert_eq!(outcome["kind"], "ok", "{outcome}");
        assert_eq!(
            outcome["result"]["total_matches"].as_u64(),
            Some(expected as u64),
            "every s and the long s"
        );
    }
    let peak = proc_status(daemon.pid(), "VmHWM");
    assert!(
        peak < before + 64 * 1024,
        "four searches took the daemon from {before} kB to {peak} kB"
    );
}
