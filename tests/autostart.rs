//! How a shim starts the daemon it needs: it finds `rlmd` on `PATH` when none sits beside it,
//! and the daemon it starts is detached (a session of its own, no stdio of the shim's, alive
//! after the shim is gone).

mod common;

use std::path::{Path, PathBuf};

use serde_json::json;

use common::{Ipc, Shim, TestDir, bin_dir, is_gone, shim_bin, the_rlmd};

/// The session id of a process (field 6 of `/proc/<pid>/stat`).
fn session_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The fields after the command name, which sits in parentheses: state, ppid, pgrp, session.
    let (_, rest) = stat.rsplit_once(')').expect("a stat line");
    rest.split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .expect("the session field")
}

/// What descriptor `fd` of a process is (the target of `/proc/<pid>/fd/<fd>`), or None if closed.
fn fd_target(pid: i32, fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

/// A copy of `rlm-mcp` alone in a folder of its own (no `rlmd` beside it),
/// started with `path` as its `PATH`: the folder, and the shim.
fn lonely_shim(dir: &TestDir, path: &std::ffi::OsStr) -> (PathBuf, Shim) {
    let lonely = dir.path().join("lonely");
    std::fs::create_dir_all(&lonely).unwrap();
    let shim_copy = lonely.join("rlm-mcp");
    std::fs::copy(shim_bin(), &shim_copy).expect("copying rlm-mcp");
    assert!(!lonely.join("rlmd").exists());
    let mut cmd = dir.command(&shim_copy);
    cmd.env("PATH", path)
        .arg("--socket")
        .arg(&dir.socket)
        .arg("--data-dir")
        .arg(&dir.data);
    (lonely, Shim::spawn(cmd, dir.log_file("rlm-mcp")))
}

/// A shim copied alone into a folder of its own (no `rlmd` beside it) finds `rlmd` on `PATH`
/// and starts it: the daemon that serves is the one from the `PATH` folder.
#[test]
fn a_shim_without_rlmd_beside_it_starts_the_one_on_path() {
    let dir = TestDir::new();
    let path = std::env::join_paths([bin_dir(), PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .unwrap();
    let (_, mut shim) = lonely_shim(&dir, &path);
    shim.initialize();
    let created = shim.call("rlm.session.create", json!({})).ok();
    assert!(created["session_id"].is_string(), "{created}");
    let pid = the_rlmd(&dir.socket);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the daemon's executable");
    assert_eq!(
        exe.canonicalize().unwrap(),
        bin_dir().join("rlmd").canonicalize().unwrap(),
        "the daemon is the rlmd found on PATH"
    );
    assert!(shim.close().success());
}

/// The daemon a shim starts is detached: it leads a session of its own (not the shim's), its
/// descriptors 0, 1 and 2 are none of the shim's (stdin and stdout `/dev/null`, stderr
/// `/dev/null` or its log file under the log folder), and it keeps serving after the shim exits.
#[test]
fn the_daemon_a_shim_starts_is_detached_and_outlives_it() {
    let dir = TestDir::new();
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let sid = shim.call("rlm.session.create", json!({})).ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shim_pid = shim.child.id() as i32;
    let daemon = the_rlmd(&dir.socket);

    assert_ne!(
        session_of(daemon),
        session_of(shim_pid),
        "the daemon is in a session of its own"
    );
    assert_eq!(
        session_of(daemon),
        daemon,
        "the daemon leads its session (setsid)"
    );

    let null = Path::new("/dev/null");
    for fd in 0..=2 {
        let Some(target) = fd_target(daemon, fd) else {
            continue; // closed is detached too
        };
        assert_ne!(
            Some(&target),
            fd_target(shim_pid, fd).as_ref(),
            "the daemon's fd {fd} is the shim's"
        );
        let allowed = target == null || (fd == 2 && target.starts_with(&dir.logs));
        assert!(
            allowed,
            "the daemon's fd {fd} is {}, neither /dev/null nor a log file",
            target.display()
        );
    }
    for fd in 0..=1 {
        assert_eq!(fd_target(daemon, fd).as_deref(), Some(null), "fd {fd}");
    }

    let status = shim.close();
    assert!(status.success(), "rlm-mcp exited with {status}");
    assert!(!is_gone(daemon), "the daemon went with the shim");
    let mut c = Ipc::handshake(&dir.socket);
    let info = c.ok("rlm.session.info", json!({"session_id": sid}));
    assert_eq!(info["status"], "active");
    assert_eq!(the_rlmd(&dir.socket), daemon);
}

/// A shim that found no `rlmd` said `running rlmd: No such file or
/// directory`, naming no place. It now says where it looked and what to do.
#[test]
fn a_shim_that_finds_no_rlmd_says_where_it_looked() {
    let dir = TestDir::new();
    let empty = dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let (lonely, mut shim) = lonely_shim(&dir, empty.as_os_str());
    shim.initialize();
    match shim.call("rlm.session.create", json!({})) {
        common::Outcome::ToolError { code, message, .. } => {
            assert_eq!(code, "daemon_unavailable", "{message}");
            assert!(
                message.contains(&lonely.display().to_string())
                    && message.contains(&empty.display().to_string())
                    && message.contains("cargo install"),
                "{message}"
            );
        }
        other => panic!("expected a tool error, got {other:?}"),
    }
    assert!(shim.close().success());
}

/// A shim with a bad config exited before answering `initialize`: the client
/// showed only a disconnect. It now initializes, lists the tools, and every
/// call says what is wrong in which file.
#[test]
fn a_shim_with_a_bad_config_still_answers_and_says_why() {
    let dir = TestDir::new();
    std::fs::write(&dir.config, "[session]\nmax_tool_call = 5\n").unwrap();
    let mut shim = dir.shim(&[]);
    shim.initialize();
    match shim.call("rlm.session.create", json!({})) {
        common::Outcome::ToolError { message, .. } => {
            assert!(
                message.contains("max_tool_call")
                    && message.contains(&dir.config.display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected a tool error, got {other:?}"),
    }
    assert!(
        common::rlmd_pids(&dir.socket).is_empty(),
        "no daemon is started"
    );
    // It answered, but could not do its job: it exits 1.
    assert!(!shim.close().success());
}

/// The official MCP SDKs start a server with only HOME, LOGNAME, PATH,
/// SHELL, TERM and USER when the client's config gives no `env`: no
/// `XDG_RUNTIME_DIR`. Such a shim must reach the daemon the CLI started
/// with the user's usual environment (socket under `/run/user/<uid>`), not
/// start a second one on the same data. Played in a private mount namespace
/// (the suite runs as root, as CI does) whose `/run/user` is a fresh tmpfs,
/// so nothing outside the test sees it; the shim runs with `env -i` plus HOME
/// and PATH, and `--no-autostart`, so a miss fails instead of starting a
/// daemon elsewhere.
#[test]
fn a_shim_with_a_minimal_environment_reaches_the_daemon_the_cli_started() {
    let dir = TestDir::new();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let uid = nix::unistd::getuid().as_raw();
    let rlm = common::rlm_cli();
    let shim = shim_bin();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir().display());
    let requests = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "sdk", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "rlm.session.create", "arguments": {"name": "from the sdk"}}}),
    ];
    let lines: String = requests.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.path().join("requests.jsonl"), lines).unwrap();
    let script = format!(
        r#"set -u
mount -t tmpfs -o mode=0755 tmpfs /run/user || exit 90
mkdir -m 0700 /run/user/{uid}
cli() {{ env -i HOME="$H" PATH="$P" XDG_RUNTIME_DIR=/run/user/{uid} "$RLM" "$@"; }}
trap 'cli daemon stop >/dev/null 2>&1' EXIT
cli daemon start || exit 91
env -i HOME="$H" PATH="$P" "$SHIM" --no-autostart < "$D/requests.jsonl" > "$D/shim.out" 2> "$D/shim.err"
echo "shim exit $?"
cli sessions --json > "$D/sessions.json"
cli status --json > "$D/status.json"
"#
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("H", &home)
        .env("P", &path)
        .env("RLM", &rlm)
        .env("SHIM", &shim)
        .env("D", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("unshare (util-linux) runs");
    let said = format!(
        "{}{}\nshim stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.path().join("shim.err")).unwrap_or_default()
    );
    assert!(
        out.status.success(),
        "the scenario failed ({}): {said}",
        out.status
    );
    let shim_out = std::fs::read_to_string(dir.path().join("shim.out")).unwrap();
    let created = shim_out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["id"] == 2)
        .unwrap_or_else(|| panic!("no answer to session.create: {shim_out}\n{said}"));
    assert_eq!(
        created["result"]["isError"], false,
        "the shim reached no daemon: {created}\n{said}"
    );
    let sid = created["result"]["structuredContent"]["session_id"].clone();
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let sessions = read("sessions.json");
    assert_eq!(
        sessions[0]["session_id"], sid,
        "the CLI's daemon holds the session the shim created: {sessions}"
    );
    let status = read("status.json");
    assert_eq!(
        status["socket"],
        format!("/run/user/{uid}/rlm/rlmd.sock"),
        "{status}"
    );
}

/// A log folder other users can write in (`RLM_LOG_DIR=/tmp`-like) with a
/// link planted at the name of the daemon's stderr log: the starting shim
/// neither writes through the link nor creates what it points at, and the
/// daemon still starts and serves (its logs go nowhere rather than there).
#[test]
fn a_planted_link_in_a_shared_log_folder_is_not_written_through() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new();
    std::fs::write(dir.logs.join("someone-elses.txt"), "x").unwrap();
    std::fs::set_permissions(&dir.logs, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let target = dir.path().join("victim");
    std::os::unix::fs::symlink(&target, dir.logs.join("rlmd.stderr.log")).unwrap();
    let mut shim = dir.shim(&[]);
    shim.initialize();
    let created = shim.call("rlm.session.create", json!({})).ok();
    assert!(created["session_id"].is_string(), "{created}");
    assert!(
        !target.exists(),
        "the daemon's stderr was written through the link"
    );
    assert!(
        std::fs::symlink_metadata(dir.logs.join("rlmd.stderr.log"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::metadata(&dir.logs).unwrap().permissions().mode() & 0o7777,
        0o1777,
        "the shared folder's mode was changed"
    );
    shim.close();
}
