//! The daemon's socket against clients that are not well-behaved shims: a client of another
//! uid, garbage, oversized and truncated frames, a hello of another protocol version; and the
//! shim against a daemon of another protocol version (a fake one on the socket).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use common::{Ipc, Outcome, TestDir, WAIT, frame, rlmd_pids, the_rlmd};

// ---------------------------------------------------------------- another uid

/// What the child running as `nobody` saw, as its exit code.
const WELCOMED: i32 = 1;
const CLOSED_WITHOUT_WELCOME: i32 = 0;
const CONNECT_DENIED_BY_FILE_MODE: i32 = 3;
const CONNECT_FAILED: i32 = 4;
const LEFT_OPEN: i32 = 5;
const DROP_FAILED: i32 = 10;

/// Runs in the forked child: only raw system calls (no allocation, no locks) until `_exit`.
fn probe_as(
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
    addr: &nix::sys::socket::UnixAddr,
    hello: &[u8],
) -> ! {
    use nix::errno::Errno;
    use nix::sys::socket::{
        AddressFamily, MsgFlags, SockFlag, SockType, connect, recv, send, setsockopt, socket,
        sockopt,
    };
    use std::os::fd::AsRawFd;
    let exit = |code: i32| -> ! {
        // SAFETY: ends the forked child without running the parent's destructors or atexit.
        unsafe { nix::libc::_exit(code) }
    };
    if nix::unistd::setgroups(&[gid]).is_err()
        || nix::unistd::setgid(gid).is_err()
        || nix::unistd::setuid(uid).is_err()
        || nix::unistd::geteuid() != uid
    {
        exit(DROP_FAILED);
    }
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        exit(CONNECT_FAILED)
    };
    let _ = setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(10, 0),
    );
    match connect(fd.as_raw_fd(), addr) {
        Ok(()) => {}
        Err(Errno::EACCES) | Err(Errno::EPERM) => exit(CONNECT_DENIED_BY_FILE_MODE),
        Err(_) => exit(CONNECT_FAILED),
    }
    // The daemon may close before reading: a failed send is fine, the answer is what counts.
    let _ = send(fd.as_raw_fd(), hello, MsgFlags::MSG_NOSIGNAL);
    let mut buf = [0u8; 4096];
    let mut got = 0usize;
    loop {
        match recv(fd.as_raw_fd(), &mut buf[got..], MsgFlags::empty()) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if buf[..got].windows(9).any(|w| w == b"\"welcome\"") {
                    exit(WELCOMED);
                }
                if got == buf.len() {
                    break;
                }
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => exit(LEFT_OPEN),
            Err(_) => break, // reset: closed
        }
    }
    exit(CLOSED_WITHOUT_WELCOME)
}

/// A client sends nothing to a process of another user listening on its
/// socket (another local user who made the fallback socket folder first):
/// not even the hello, which carries the working directory. The CLI says
/// who listens and what to do.
#[test]
fn a_client_sends_nothing_to_a_listener_of_another_user() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root, to listen as `nobody`"
    );
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a `nobody` user");
    let t = TestDir::new();
    // What the attacker does: a folder of its own, open to all, where the
    // victim's socket would go.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let folder = t.path().join("rlm-victim");
    std::fs::create_dir(&folder).unwrap();
    nix::unistd::chown(&folder, Some(nobody.uid), Some(nobody.gid)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = folder.join("rlmd.sock");
    let listener = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(30)
got = b""
while True:
    data = c.recv(65536)
    if not data:
        break
    got += data
print("received", len(got), flush=True)
"#;
    let mut impostor = Command::new("python3")
        .args(["-c", listener])
        .arg(&socket)
        .uid(nobody.uid.as_raw())
        .gid(nobody.gid.as_raw())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs as nobody");
    let mut out = std::io::BufReader::new(impostor.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "listening");
    let cli = t
        .command(&common::bin_dir().join("rlm"))
        .env("RLM_SOCKET", &socket)
        .args(["status"])
        .output()
        .expect("rlm runs");
    let err = String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success(), "{err}");
    assert!(
        err.contains(&format!("runs as uid {}", nobody.uid)) && err.contains("nothing was sent"),
        "{err}"
    );
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "received 0", "the impostor got bytes");
    let _ = impostor.wait();
}

#[test]
fn a_client_of_another_uid_is_refused_and_root_still_served() {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, User, fork};
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root, to drop to `nobody` in a child"
    );
    let dir = TestDir::new();
    let _daemon = dir.start_daemon(&[]);
    // Open the socket to everyone, so that only the daemon's own uid check can refuse.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = User::from_name("nobody").unwrap().expect("a `nobody` user");
    assert_ne!(nobody.uid.as_raw(), 0);
    let addr = nix::sys::socket::UnixAddr::new(&dir.socket).unwrap();
    let hello = frame(&common::hello_frame_value());

    // SAFETY: the child runs only `probe_as`, which makes raw system calls and `_exit`s.
    let code = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => probe_as(nobody.uid, nobody.gid, &addr, &hello),
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("the probe child ended with {other:?}"),
        },
    };
    assert_ne!(code, DROP_FAILED, "the child could not become nobody");
    assert_ne!(
        code, CONNECT_DENIED_BY_FILE_MODE,
        "file permissions refused the connection, so the daemon's check was not reached"
    );
    assert_ne!(code, CONNECT_FAILED, "the child could not connect at all");
    assert_ne!(
        code, LEFT_OPEN,
        "the daemon left the other uid's connection open"
    );
    assert_eq!(
        code, CLOSED_WITHOUT_WELCOME,
        "a client of another uid must not be welcomed"
    );
    // Root (the daemon's own uid) is still served.
    let mut c = Ipc::handshake(&dir.socket);
    let created = c.ok("rlm.session.create", json!({}));
    assert!(created["session_id"].is_string());
}

// ---------------------------------------------------------------- bad frames

/// The one frame a bad connection gets: an error with a null id, saying why.
fn assert_error_then_closed(c: &mut Ipc, what: &str, says: &str) {
    let frames = c.frames_until_closed(WAIT);
    assert_eq!(
        frames.len(),
        1,
        "{what}: one error frame, then close: {frames:?}"
    );
    assert_eq!(frames[0]["type"], "error", "{what}: {frames:?}");
    assert!(frames[0]["id"].is_null(), "{what}: {frames:?}");
    let message = frames[0]["message"].as_str().unwrap_or("");
    assert!(
        message.to_lowercase().contains(says),
        "{what}: the error says {says:?}: {message}"
    );
}

#[test]
fn garbage_oversized_and_truncated_frames_close_only_their_connection() {
    let dir = TestDir::new();
    let mut daemon = dir.start_daemon(&[]);
    let mut good = Ipc::handshake(&dir.socket);
    let sid = good.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut used = 1;
    let mut still_served = |good: &mut Ipc| {
        let info = good.ok("rlm.session.info", json!({"session_id": sid}));
        used += 1;
        assert_eq!(info["tool_calls_used"], used);
    };

    // A client stuck in the middle of a frame, connection left open: it must not hold up others.
    let mut stuck = Ipc::connect(&dir.socket).unwrap();
    stuck.send_bytes(&100u32.to_be_bytes()).unwrap();
    stuck.send_bytes(b"{\"type\":").unwrap();
    still_served(&mut good);

    // (a) random bytes: an HTTP request ("GET " read as a length is over a GiB).
    let mut c = Ipc::connect(&dir.socket).unwrap();
    c.send_bytes(b"GET / HTTP/1.1\r\nHost: rlmd\r\n\r\n")
        .unwrap();
    assert_error_then_closed(&mut c, "an HTTP request", "larger");
    still_served(&mut good);

    // (a') random bytes inside a well-formed frame.
    let mut junk = Vec::with_capacity(300);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        junk.push((x >> 24) as u8);
    }
    let mut c = Ipc::connect(&dir.socket).unwrap();
    c.send_bytes(&(junk.len() as u32).to_be_bytes()).unwrap();
    c.send_bytes(&junk).unwrap();
    assert_error_then_closed(&mut c, "random bytes in a frame", "not a valid message");
    still_served(&mut good);

    // (b) a length prefix of 1 GiB: refused before anything is read or allocated.
    let mut c = Ipc::connect(&dir.socket).unwrap();
    c.send_bytes(&(1u32 << 30).to_be_bytes()).unwrap();
    assert_error_then_closed(&mut c, "a 1 GiB prefix", "larger");
    still_served(&mut good);

    // (c) a valid prefix, then the client closes mid-frame.
    let mut c = Ipc::connect(&dir.socket).unwrap();
    c.send_bytes(&200u32.to_be_bytes()).unwrap();
    c.send_bytes(b"{\"type\":\"hello\",\"proto").unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let frames = c.frames_until_closed(WAIT);
    // The client left: the daemon owes it nothing (today it sends nothing), and at most an
    // error, never a welcome; the connection closes either way.
    assert!(
        frames.len() <= 1 && frames.iter().all(|f| f["type"] == "error"),
        "a truncated hello gets no welcome, at most one error: {frames:?}"
    );
    still_served(&mut good);

    // (d) a first message that is not a hello.
    let mut c = Ipc::connect(&dir.socket).unwrap();
    c.send(&json!({"type": "call", "id": 1, "tool": "rlm.session.create", "arguments": {}}))
        .unwrap();
    assert_error_then_closed(&mut c, "a call before the hello", "hello");
    still_served(&mut good);

    // A hello of another protocol version: refused, with what the daemon speaks and what to do.
    let mut c = Ipc::connect(&dir.socket).unwrap();
    let mut hello = common::hello_frame_value();
    hello["protocol_version"] = json!(99);
    c.send(&hello).unwrap();
    let frames = c.frames_until_closed(WAIT);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "refused", "{frames:?}");
    assert_eq!(frames[0]["protocol_version"], 1);
    assert_eq!(frames[0]["auto_started"], false);
    assert!(frames[0]["daemon_version"].is_string());
    assert!(
        frames[0]["message"].as_str().unwrap().contains("stop"),
        "{frames:?}"
    );
    still_served(&mut good);

    // After a good hello: garbage, an oversized prefix, and a frame cut by a close.
    let mut c = Ipc::handshake(&dir.socket);
    c.send_bytes(&5u32.to_be_bytes()).unwrap();
    c.send_bytes(b"{{{{{").unwrap();
    assert_error_then_closed(&mut c, "garbage after the hello", "not a valid message");
    let mut c = Ipc::handshake(&dir.socket);
    c.send_bytes(&u32::MAX.to_be_bytes()).unwrap();
    assert_error_then_closed(&mut c, "a 4 GiB prefix after the hello", "larger");
    let mut c = Ipc::handshake(&dir.socket);
    c.send_bytes(&1000u32.to_be_bytes()).unwrap();
    c.send_bytes(b"{\"type\":\"call\",\"id\":5,").unwrap();
    drop(c);
    let mut c = Ipc::handshake(&dir.socket);
    c.send(&json!({"type": "no_such_request", "id": 3}))
        .unwrap();
    assert_error_then_closed(&mut c, "an unknown request type", "not a valid message");
    still_served(&mut good);

    // The daemon is alive and welcomes new clients.
    assert!(daemon.is_running(), "{}", daemon.log_text());
    let mut fresh = Ipc::handshake(&dir.socket);
    fresh.ok("rlm.session.info", json!({"session_id": sid}));
    drop(stuck);
}

// ---------------------------------------------------------------- a daemon of another version

/// A fake daemon of protocol 99 on `socket`: refuses every hello; when `auto_started`, it
/// accepts a `shutdown_if_idle`, then removes its socket and stops listening.
struct FakeDaemon {
    stop: Arc<AtomicBool>,
    socket: PathBuf,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

const FAKE_MESSAGE: &str = "unsupported client";

impl FakeDaemon {
    fn start(socket: &Path, auto_started: bool) -> FakeDaemon {
        let listener = UnixListener::bind(socket).expect("binding the fake daemon");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let socket: PathBuf = socket.to_owned();
        let socket_path = socket.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                // Blocks until a client comes; `stop` wakes it with a connection of its own.
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) => panic!("fake daemon accept: {e}"),
                };
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Some(request) = read_one(&stream) else {
                    seen.push("(nothing)".to_owned());
                    continue;
                };
                let kind = request["type"].as_str().unwrap_or("?").to_owned();
                seen.push(kind.clone());
                match kind.as_str() {
                    "hello" => write_one(
                        &stream,
                        &json!({"type": "refused", "message": FAKE_MESSAGE,
                                "protocol_version": 99, "daemon_version": "9.9.9",
                                "auto_started": auto_started}),
                    ),
                    "shutdown_if_idle" => {
                        write_one(
                            &stream,
                            &json!({"type": "shutdown_ack", "id": request["id"],
                                    "accepted": auto_started,
                                    "reason": if auto_started { "idle" } else { "not started on demand" }}),
                        );
                        if auto_started {
                            std::fs::remove_file(&socket).unwrap();
                            return seen;
                        }
                    }
                    _ => {}
                }
            }
            seen
        });
        FakeDaemon {
            stop,
            socket: socket_path,
            thread: Some(thread),
        }
    }

    /// Asks the fake to stop and wakes its accept (it may have stopped by itself).
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.socket);
    }

    /// Stops the fake (if it still runs) and returns the request types it saw.
    fn seen(mut self) -> Vec<String> {
        self.stop();
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

fn read_one(mut stream: &UnixStream) -> Option<Value> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn write_one(mut stream: &UnixStream, v: &Value) {
    let _ = stream.write_all(&frame(v));
}

#[test]
fn a_daemon_of_another_version_is_not_spoken_to_and_the_shim_says_what_to_do() {
    let dir = TestDir::new();
    let fake = FakeDaemon::start(&dir.socket, false);
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let outcome = shim.call("rlm.session.create", json!({}));
    let Outcome::ToolError { code, message, .. } = &outcome else {
        panic!("the call must fail: {outcome:?}");
    };
    assert_eq!(code, "daemon_unavailable", "{message}");
    // What a user needs: which daemon answered, that its version differs, and the way out.
    let lower = message.to_lowercase();
    assert!(
        message.contains("9.9.9") || message.contains("99"),
        "the message names the other daemon's version: {message}"
    );
    assert!(
        lower.contains("version"),
        "the message says the versions differ: {message}"
    );
    assert!(
        lower.contains("stop"),
        "the message says to stop that daemon: {message}"
    );
    assert!(
        !lower.contains("went away during this call"),
        "the call never reached a daemon; the message must not say it went away during it: {message}"
    );
    assert!(
        rlmd_pids(&dir.socket).is_empty(),
        "no daemon is started over one that answers"
    );
    drop(shim);
    let seen = fake.seen();
    // Two connection attempts, each a hello refused, and nothing else (no shutdown request to
    // a daemon that was not started on demand, no call): the shim's warm-up connect at start,
    // and the call's own attempt.
    assert_eq!(seen, vec!["hello".to_owned(); 2], "{seen:?}");
}

#[test]
fn an_idle_auto_started_daemon_of_another_version_makes_room_for_the_shims_own() {
    let dir = TestDir::new();
    let fake = FakeDaemon::start(&dir.socket, true);
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let created = shim.call("rlm.session.create", json!({}));
    assert!(
        matches!(created, Outcome::Ok(_)),
        "the shim asked the old daemon to leave and started its own: {created:?}\n{}",
        dir.logs_text()
    );
    let seen = fake.seen();
    assert_eq!(
        seen.iter().filter(|s| *s == "shutdown_if_idle").count(),
        1,
        "{seen:?}"
    );
    let _pid = the_rlmd(&dir.socket);
    let mut c = Ipc::handshake(&dir.socket);
    let created = created.ok();
    let info = c.ok(
        "rlm.session.info",
        json!({"session_id": created["session_id"]}),
    );
    assert_eq!(info["status"], "active");
    let status = shim.close();
    assert!(status.success());
}

/// A load of `~/notes.txt` failed: `~` was taken as a folder's name. It is
/// the home folder of the daemon's user (here a temporary one), as in a shell.
#[test]
fn a_load_path_starting_with_a_tilde_is_in_the_home_folder() {
    let dir = TestDir::new();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("notes")).unwrap();
    std::fs::write(home.join("notes/today.txt"), "written at home").unwrap();
    let home_var = home.display().to_string();
    let _daemon = dir.start_daemon_with(&dir.socket, &dir.data, &[], &[("HOME", &home_var)]);
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "file", "path": "~/notes/today.txt"},
            {"type": "directory", "path": "~/notes"},
        ]}),
    );
    assert_eq!(r["loaded_count"], 2, "{r}");
    assert_eq!(r["error_count"], 0, "{r}");
}
