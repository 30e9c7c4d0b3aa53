//! The hostile-input suite: what one client sends, or another process does to
//! the files, must neither hang, crash nor blow up the daemon for everyone.
//! Every daemon here runs under an address-space limit ([`LIMIT`]), so memory
//! that grows with the input ends the test instead of the machine's swap, and
//! every wait has a deadline ([`WAIT`]). Cases that need only the engine live
//! beside it (`daemon/tests/tools/`); this suite drives real processes.

mod common;

use std::path::Path;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::{Ipc, Outcome, TestDir, WAIT, hold_session_lock, proc_status, wait_until};

/// The address space each daemon of this suite may use: room for its threads'
/// stacks and its mappings, far below what an unbounded queue reaches.
const LIMIT: u64 = 3 << 30;

fn session(c: &mut Ipc, config: Value) -> String {
    c.ok("rlm.session.create", json!({ "config": config }))["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Loads one inline text into session `sid` (must succeed).
fn load_inline(c: &mut Ipc, sid: &str, content: &str) {
    c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": content}]}),
    );
}

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

/// The store is the user's alone: a data folder and files another local user
/// could read before (0755, 0644) are repaired when the daemon starts, and
/// everything it writes is created private.
#[test]
fn the_store_is_private_and_modes_are_repaired_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    store_and_search(&dir, &dir.data);
    assert_private(&dir.data);
    // Another tool (or an older rlm) left it readable by everyone.
    for entry in common::walk(&dir.data) {
        let mode = if entry.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let _daemon = dir.start_daemon_limited(&dir.data, &[], LIMIT);
    assert_private(&dir.data);
}

/// A data folder named where the user keeps other files (a home folder
/// given as `RLM_DATA_DIR`): the daemon makes its store private and leaves
/// the folder's mode and the user's own files as they were (a recursive
/// repair once took every file of such a folder to 0600, scripts included).
#[test]
fn a_data_folder_that_holds_the_users_files_keeps_their_modes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::write(home.join("bin/tool.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(home.join("notes.txt"), "mine").unwrap();
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    let theirs = [
        ("", 0o755),
        ("bin", 0o755),
        ("bin/tool.sh", 0o755),
        ("notes.txt", 0o644),
    ];
    for (p, m) in theirs {
        std::fs::set_permissions(home.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    }
    store_and_search(&dir, &home);
    // Started again, the daemon repairs modes: still only the store's.
    let _daemon = dir.start_daemon_limited(&home, &[], LIMIT);
    for (p, m) in theirs {
        assert_eq!(mode(&home.join(p)), m, "{p} was changed");
    }
    let store: Vec<std::path::PathBuf> = common::walk(&home)
        .into_iter()
        .filter(|e| {
            // The entries under the store's own names (the walk lists the root too).
            e.strip_prefix(&home)
                .unwrap()
                .components()
                .next()
                .is_some_and(|first| {
                    let first = first.as_os_str().to_string_lossy();
                    first.starts_with("store.sqlite")
                        || ["blobs", "search", "locks", "indexes"].contains(&first.as_ref())
                })
        })
        .collect();
    assert!(store.len() > 5, "{store:?}");
    for entry in store {
        let want = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&entry), want, "{}", entry.display());
    }
    drop(_daemon);
    // Other users may write in it: they could plant links where the store
    // writes, so the daemon refuses it and changes nothing.
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = refused_start(&dir, &dir.path().join("other.sock"), &home);
    assert!(
        stderr.contains("rlmd: ")
            && stderr.contains("other users")
            && stderr.contains("RLM_DATA_DIR"),
        "{stderr}"
    );
    assert_eq!(mode(&home), 0o777);
}

/// The logs of the shim are the user's alone like the store's, whatever
/// umask the MCP client started it with (here the test's, 022), also when
/// the daemon is already running (a daemon starting repairs the modes of
/// what it finds in the log folder, so it must start first).
#[test]
fn the_logs_of_the_shim_and_the_daemon_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    let _daemon = dir.start_daemon(&[]);
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let created = shim.call("rlm.session.create", json!({}));
    assert!(matches!(created, Outcome::Ok(_)), "{created:?}");
    shim.close();
    // The test's own captures of stderr (`<stem>-<n>.log`) are not the binaries' logs.
    let logs: Vec<std::path::PathBuf> = common::walk(&dir.logs)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("rlm-mcp.") || name.starts_with("rlmd.")
        })
        .collect();
    assert!(
        logs.iter()
            .any(|p| p.to_string_lossy().contains("rlm-mcp.")),
        "the shim wrote no log file: {logs:?}"
    );
    for log in logs {
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", log.display());
    }
}

/// Starts a daemon on `data`, stores a text in a new session and searches
/// it, and stops the daemon.
fn store_and_search(dir: &TestDir, data: &Path) {
    let _daemon = dir.start_daemon_limited(data, &[], LIMIT);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = session(&mut c, json!({}));
    load_inline(&mut c, &sid, "secret text");
    c.ok(
        "rlm.search.query",
        json!({"session_id": sid, "query": "secret"}),
    );
}

fn assert_private(data: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let entries = common::walk(data);
    assert!(entries.len() > 5, "{entries:?}");
    for entry in entries {
        let mode = std::fs::symlink_metadata(&entry)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        let want = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}, not {want:o}", entry.display());
    }
}

/// A tmpfs mounted for one test (the suite runs as root, as CI does),
/// unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        mount_cmd(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ],
            at,
        );
        Tmpfs(at.to_owned())
    }

    fn remount(&self, how: &str) {
        mount_cmd(&["-o", &format!("remount,{how}")], &self.0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn mount_cmd(args: &[&str], at: &Path) {
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .expect("running mount");
    assert!(
        out.status.success(),
        "mount {args:?} {} failed (this suite runs as root): {}",
        at.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `rlmd` on `socket` and `data`, which it must refuse: waits for it
/// to exit unsuccessfully and returns what it said on stderr.
fn refused_start(dir: &TestDir, socket: &Path, data: &Path) -> String {
    let mut child = dir
        .command(&common::rlmd())
        .arg("--socket")
        .arg(socket)
        .arg("--data-dir")
        .arg(data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rlmd starts");
    let status = wait_until(WAIT, "rlmd to refuse to start", || {
        child.try_wait().expect("try_wait")
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
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

/// A read-only data folder: the daemon started, then every call failed
/// with "attempt to write a readonly database... retry it". Now a daemon
/// will not start on a folder it cannot write, and says which and why.
#[test]
fn a_daemon_refuses_a_data_folder_it_cannot_write() {
    let dir = TestDir::new();
    let fs = Tmpfs::mount(&dir.path().join("fs"), "64m");
    let data = fs.0.join("data");
    {
        let mut daemon = dir.start_daemon_limited(&data, &[], LIMIT);
        let mut c = Ipc::handshake(&dir.socket);
        let sid = session(&mut c, json!({}));
        load_inline(&mut c, &sid, "stored before");
        daemon.signal(Signal::SIGTERM);
        daemon.wait_exit(WAIT);
    }
    fs.remount("ro");
    let stderr = refused_start(&dir, &dir.socket, &data);
    assert!(
        stderr.contains("rlmd: ")
            && stderr.contains("cannot be written")
            && stderr.contains(&data.display().to_string()),
        "{stderr}"
    );
    fs.remount("rw");
}

/// A socket path that names something else (`--socket ~/notes.txt`, a
/// link planted in a shared folder): rlmd used to probe it, find no daemon
/// and remove it. It now refuses to start, and the file, the link and what
/// the link points at are left as they were.
#[test]
fn a_socket_path_that_is_not_a_socket_is_never_removed() {
    let dir = TestDir::new();
    let data = dir.path().join("data");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "the user's notes").unwrap();
    let stderr = refused_start(&dir, &notes, &data);
    assert!(
        stderr.contains("rlmd: ")
            && stderr.contains("not a socket")
            && stderr.contains("notes.txt"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "the user's notes");
    let link = dir.path().join("planted.sock");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let stderr = refused_start(&dir, &link, &data);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "the user's notes");
    // A link planted where the daemon's lock goes is not followed either.
    let target = dir.path().join("elsewhere");
    let sock = dir.path().join("rlmd-2.sock");
    std::os::unix::fs::symlink(&target, dir.path().join("rlmd-2.sock.lock")).unwrap();
    let stderr = refused_start(&dir, &sock, &data);
    assert!(stderr.contains("rlmd-2.sock.lock"), "{stderr}");
    assert!(!target.exists(), "the lock was created through the link");
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

/// The socket folder: another user's folder, or a link planted in its place,
/// was used (and the link's target chmod'ed). Now rlmd refuses both, naming
/// the path.
#[test]
fn a_socket_folder_that_is_a_link_is_refused() {
    let dir = TestDir::new();
    let target = dir.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    let link = dir.path().join("run");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let stderr = refused_start(&dir, &link.join("rlmd.sock"), &dir.data);
    assert!(
        stderr.contains("symbolic link") && stderr.contains(&link.display().to_string()),
        "{stderr}"
    );
    assert!(!target.join("rlmd.sock").exists());
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
