//! Operations, with real processes: the systemd units verify and serve
//! through socket activation, `sd_notify` READY once the daemon serves, the
//! daemon's log lines are JSON, `RLM_LOG` sets their filter, logs and traces
//! hold no text, a bad config stops start-up naming the key and the file, and
//! the declared Rust version and install lines hold (the CLI and the store's
//! upkeep are in `cli.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::{TestDir, WAIT, repo, rlmd, wait_until};

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: `apt-get install systemd` (.ci/run does)")
    })
}

/// The units as shipped, with `ExecStart` pointing at the binary just built
/// (verify checks that it exists).
fn units_in(dir: &Path) {
    for unit in ["rlmd.service", "rlmd.socket"] {
        let text =
            std::fs::read_to_string(repo().join("systemd").join(unit)).expect("the unit file");
        let text = text.replace("%h/.cargo/bin/rlmd", &rlmd().display().to_string());
        std::fs::write(dir.join(unit), text).expect("a copy of the unit");
    }
}

#[test]
fn the_systemd_units_verify_as_system_and_user_units() {
    let t = TestDir::new();
    units_in(t.path());
    let runtime = t.path().join("xdg");
    std::fs::create_dir_all(&runtime).unwrap();
    for user in [false, true] {
        let mut cmd = Command::new(tool("systemd-analyze"));
        if user {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
        }
        let out = cmd
            .arg("verify")
            .arg(t.path().join("rlmd.socket"))
            .arg(t.path().join("rlmd.service"))
            .output()
            .expect("systemd-analyze runs");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "verify (user: {user}) failed: {said}");
        assert!(
            !said.contains("rlmd."),
            "verify (user: {user}) warns about our units: {said}"
        );
    }
    let plist = std::fs::read_to_string(repo().join("systemd/com.rlm.rlmd.plist")).unwrap();
    assert!(
        plist.contains("<key>Label</key>") && plist.contains("rlmd"),
        "the launchd agent names rlmd"
    );
}

#[test]
fn a_socket_activated_daemon_serves_the_shim() {
    let t = TestDir::new();
    let socket = t.path().join("act.sock");
    let log = t.log_file("activate");
    let mut activator = t
        .command(&tool("systemd-socket-activate"))
        .arg("-l")
        .arg(&socket)
        .arg("-E")
        .arg(format!("RLM_DATA_DIR={}", t.data.display()))
        .arg("-E")
        .arg(format!("RLM_LOG_DIR={}", t.logs.display()))
        .arg(rlmd())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("systemd-socket-activate starts");
    wait_until(WAIT, "the activation socket", || {
        socket.exists().then_some(())
    });
    // No daemon runs yet: the first connection starts one with the socket as fd 3.
    let mut shim = t.shim_on(&socket, &["--no-autostart"]);
    shim.initialize();
    let created = shim
        .call("rlm.session.create", json!({"name": "activated"}))
        .ok();
    let sid = created["session_id"].as_str().unwrap().to_owned();
    let info = shim
        .call("rlm.session.info", json!({"session_id": sid}))
        .ok();
    assert_eq!(info["name"], "activated");
    let logs = t.logs_text();
    assert!(
        logs.contains("using the socket passed by systemd"),
        "{logs}"
    );
    assert!(
        logs.contains(&socket.display().to_string()),
        "the daemon reports the socket systemd bound: {logs}"
    );
    shim.close();
    let _ = activator.kill();
    let _ = activator.wait();
}

/// Every line of the daemon's log files, parsed.
fn daemon_log_lines(logs: &Path) -> Vec<Value> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(logs).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("rlmd.") && name.ends_with(".log")) {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: a log line that is not JSON ({e}): {line}"));
            lines.push(v);
        }
    }
    lines
}

#[test]
fn the_daemon_logs_one_json_object_per_line_with_a_line_per_call() {
    let t = TestDir::new();
    let mut daemon = t.start_daemon(&[]);
    let mut shim = t.shim(&["--no-autostart"]);
    shim.initialize();
    let sid = shim.call("rlm.session.create", json!({})).ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    shim.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "zebra"}]}),
    )
    .ok();
    let failed = shim.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": "nope"}),
    );
    assert_eq!(failed.code(), Some("document_not_found"));
    shim.close();
    daemon.signal(Signal::SIGTERM);
    assert!(
        daemon.wait_exit(WAIT).success(),
        "SIGTERM stops the daemon cleanly"
    );
    let lines = daemon_log_lines(&t.logs);
    assert!(
        !lines.is_empty(),
        "the daemon wrote log files under RLM_LOG_DIR"
    );
    for l in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(l.get(key).is_some(), "a log line without {key}: {l}");
        }
    }
    let calls: Vec<&Value> = lines.iter().filter(|l| l["message"] == "call").collect();
    let ops: Vec<&str> = calls
        .iter()
        .map(|c| c["operation"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        ops,
        ["rlm.session.create", "rlm.docs.load", "rlm.docs.peek"],
        "{calls:?}"
    );
    for c in &calls {
        assert_eq!(c["session_id"], sid.as_str(), "{c}");
        assert!(c["duration_ms"].as_f64().is_some(), "{c}");
        assert!(
            c["correlation_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{c}"
        );
    }
    assert_eq!(calls[0]["success"], true);
    assert_eq!(calls[2]["success"], false);
    assert_eq!(calls[2]["error_code"], "document_not_found");
    let ids: std::collections::HashSet<&str> = calls
        .iter()
        .map(|c| c["correlation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), calls.len(), "correlation ids are distinct");
}

/// Each binary names the key and the file and exits non-zero (the shim
/// after answering its client, which here sends nothing:
/// `autostart::a_shim_with_a_bad_config_still_answers_and_says_why`).
#[test]
fn a_bad_config_stops_start_up_naming_the_key_and_the_file() {
    let t = TestDir::new();
    let cases = [
        ("[session]\nmax_tool_call = 5\n", "max_tool_call"),
        ("idle_timeout_seconds = \"soon\"\n", "idle_timeout_seconds"),
        (
            "[session]\nmax_chars_per_response = 10\n",
            "session.max_chars_per_response",
        ),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let file = t.path().join(format!("config-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        for program in [rlmd(), common::shim_bin(), common::rlm_cli()] {
            let mut cmd = t.command(&program);
            cmd.env("RLM_CONFIG", &file)
                .env("RLM_SOCKET", &t.socket)
                .env("RLM_DATA_DIR", &t.data);
            if program == common::rlm_cli() {
                cmd.arg("status");
            }
            let out = cmd.output().expect("the binary runs");
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "{} started with a bad config: {said}",
                program.display()
            );
            assert!(
                said.contains(key) && said.contains(&file.display().to_string()),
                "{}: the error names neither {key} nor the file: {said}",
                program.display()
            );
        }
    }
    let missing = t.path().join("nowhere.toml");
    let out = t
        .command(&rlmd())
        .env("RLM_CONFIG", &missing)
        .env("RLM_SOCKET", &t.socket)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("RLM_CONFIG"),
        "a missing RLM_CONFIG file is named"
    );
}

/// `RLM_LOG` is the daemon's log filter: unset, the default `info` shows the per-call line and
/// hides the debug line of a client's hello; `debug` shows both; `warn` hides both. Each daemon
/// is stopped (SIGTERM, exit 0) before its log is read, so every line it logged is written.
#[test]
fn rlm_log_sets_the_daemons_log_filter() {
    for (level, debug_shown, info_shown) in [
        (None, false, true),
        (Some("debug"), true, true),
        (Some("warn"), false, false),
    ] {
        let t = TestDir::new();
        let env: Vec<(&str, &str)> = level.map(|l| ("RLM_LOG", l)).into_iter().collect();
        let mut daemon = t.start_daemon_with(&t.socket, &t.data, &[], &env);
        let mut c = common::Ipc::handshake(&t.socket);
        c.ok("rlm.session.create", json!({}));
        drop(c);
        daemon.signal(Signal::SIGTERM);
        assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log_text());
        let lines = daemon_log_lines(&t.logs);
        let has = |message: &str| lines.iter().any(|l| l["message"] == message);
        assert_eq!(
            has("client connected"),
            debug_shown,
            "RLM_LOG={level:?}: the debug line of a hello: {lines:?}"
        );
        assert_eq!(
            has("call"),
            info_shown,
            "RLM_LOG={level:?}: the info line of a call: {lines:?}"
        );
    }
}

/// Logs hold no text (DESIGN: "Traces and logs never hold text"): a daemon and a shim both
/// logging at `debug` serve an inline text, a file, a search, a peek and an artifact, each
/// with words found nowhere else; no log file (JSON files and stderr) holds any of those words,
/// and the store's traces hold none of the texts (inline and artifact content are recorded by
/// hash and length, results by hash and length).
#[test]
fn the_logs_hold_no_text_of_documents_queries_or_artifacts() {
    const INLINE: &str = "Quixotic marmalade zeppelins drift over Vexbridge harbour";
    const FILE_TEXT: &str = "the obsidian trombone of Wyrmhaven hums at dusk\n";
    const ARTIFACT: &str = "the zeppelin carries jars of quincewhistle jam";
    // Words of the texts, the queries and the artifact, each found nowhere else.
    const WORDS: [&str; 7] = [
        "marmalade",
        "zeppelin",
        "vexbridge",
        "obsidian",
        "wyrmhaven",
        "trombone",
        "quincewhistle",
    ];
    let t = TestDir::new();
    let file = t.path().join("note.txt");
    std::fs::write(&file, FILE_TEXT).unwrap();
    let mut daemon = t.start_daemon_with(&t.socket, &t.data, &[], &[("RLM_LOG", "debug")]);
    let mut cmd = t.command(&common::shim_bin());
    cmd.env("RLM_LOG", "debug")
        .args(["--no-autostart", "--socket"])
        .arg(&t.socket)
        .arg("--data-dir")
        .arg(&t.data);
    let mut shim = common::Shim::spawn(cmd, t.log_file("rlm-mcp"));
    shim.initialize();
    let sid = shim.call("rlm.session.create", json!({})).ok()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let loaded = shim
        .call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [
                {"type": "inline", "content": INLINE},
                {"type": "file", "path": file},
            ]}),
        )
        .ok();
    assert_eq!(loaded["loaded_count"], 2, "{loaded}");
    let found = shim
        .call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "marmalade zeppelins Vexbridge"}),
        )
        .ok();
    assert!(!found["matches"].as_array().unwrap().is_empty(), "{found}");
    let found = shim
        .call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "obsidian trombone", "method": "literal"}),
        )
        .ok();
    assert_eq!(found["total_matches"], 1, "{found}");
    let doc = loaded["loaded"][0]["doc_id"].as_str().unwrap();
    let peeked = shim
        .call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}))
        .ok();
    assert!(peeked.to_string().contains("Vexbridge"), "{peeked}");
    let stored = shim
        .call(
            "rlm.artifact.store",
            json!({"session_id": sid, "type": "summary", "content": {"text": ARTIFACT}}),
        )
        .ok();
    let got = shim
        .call(
            "rlm.artifact.get",
            json!({"session_id": sid, "artifact_id": stored["artifact_id"]}),
        )
        .ok();
    assert!(got.to_string().contains("quincewhistle"), "{got}");
    assert!(shim.close().success());
    daemon.signal(Signal::SIGTERM);
    assert!(daemon.wait_exit(WAIT).success(), "{}", daemon.log_text());

    let mut files = 0;
    for entry in std::fs::read_dir(&t.logs).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path())
            .unwrap_or_default()
            .to_lowercase();
        files += 1;
        for word in WORDS {
            assert!(
                !text.contains(word),
                "{} holds {word:?}:\n{}",
                entry.path().display(),
                common::tail(&text, 3000)
            );
        }
    }
    assert!(
        !daemon_log_lines(&t.logs).is_empty() && files >= 3,
        "the daemon and the shim wrote their logs ({files} files)"
    );
    let db = rusqlite::Connection::open_with_flags(
        t.data.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let traces: Vec<String> = db
        .prepare("SELECT operation || ' ' || COALESCE(arguments, '') || ' ' || COALESCE(outcome, '') FROM traces")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(traces.len() >= 7, "every call left a trace: {traces:?}");
    for trace in &traces {
        for text in [INLINE, FILE_TEXT.trim_end(), ARTIFACT] {
            assert!(!trace.contains(text), "a trace holds a text: {trace}");
        }
    }
}

/// Under systemd (`NOTIFY_SOCKET`), `rlmd` sends `READY=1` once it serves: the moment the test's
/// datagram socket receives it, the daemon's socket answers a hello; SIGTERM sends `STOPPING=1`.
#[test]
fn rlmd_tells_systemd_it_is_ready_once_it_serves() {
    let t = TestDir::new();
    let notify_path = t.path().join("notify.sock");
    let notify =
        std::os::unix::net::UnixDatagram::bind(&notify_path).expect("binding NOTIFY_SOCKET");
    notify.set_read_timeout(Some(WAIT)).unwrap();
    let mut child = t
        .command(&rlmd())
        .env("NOTIFY_SOCKET", &notify_path)
        .arg("--socket")
        .arg(&t.socket)
        .arg("--data-dir")
        .arg(&t.data)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(t.log_file("daemon")).unwrap())
        .spawn()
        .expect("rlmd starts");
    let mut buf = [0u8; 512];
    let n = notify
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification from rlmd: {e}\n{}", t.logs_text()));
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        message.lines().any(|l| l == "READY=1"),
        "the first notification is READY=1: {message:?}"
    );
    // Ready means serving: the first connection is welcomed, no retry.
    let mut c = common::Ipc::connect(&t.socket).expect("the socket answers once READY=1 is sent");
    assert_eq!(c.hello()["type"], "welcome");
    drop(c);
    common::signal(child.id() as i32, Signal::SIGTERM);
    let n = notify.recv(&mut buf).expect("a notification at SIGTERM");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        message.lines().any(|l| l == "STOPPING=1"),
        "rlmd says it is stopping: {message:?}"
    );
    let status = common::wait_child(&mut child, WAIT, "rlmd to exit after SIGTERM");
    assert!(status.success(), "{status}");
}

/// Whatever umask the user has, every file the daemon writes (store, packs,
/// index, locks, logs) is the user's alone, and every folder 0700: another
/// local user can read none of what was loaded.
#[test]
fn every_file_the_daemon_writes_is_the_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let t = TestDir::new();
    let folder = t.path().join("corpus");
    common::write_corpus(&folder, 5, 400);
    // The CLI, and the daemon it starts, run with the usual umask 022.
    let mut cli = t.command(&common::rlm_cli());
    cli.env("RLM_SOCKET", &t.socket)
        .env("RLM_DATA_DIR", &t.data)
        .args(["search", folder.to_str().unwrap(), "word", "--json"]);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cli.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
            Ok(())
        });
    }
    let out = cli.output().expect("rlm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = (0, 0);
    for root in [&t.data, &t.logs] {
        for entry in common::walk(root) {
            let meta = std::fs::symlink_metadata(&entry).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                seen.0 += 1;
                assert_eq!(mode, 0o700, "{}", entry.display());
            } else if meta.is_file() {
                seen.1 += 1;
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", entry.display());
            }
        }
    }
    // The store, its pack, the session's lock and index, and a log file.
    assert!(seen.0 >= 4 && seen.1 >= 5, "{seen:?}");
    let (code, _, err) = common::run_cli(&t, &["daemon", "stop"]);
    assert_eq!(code, 0, "{err}");
}

/// What a caller sends is bounded in the daemon's log: a 100 000-character
/// session id and tool name make log lines of a few hundred characters.
#[test]
fn log_lines_stay_short_whatever_a_caller_sends() {
    let t = TestDir::new();
    let huge = "x".repeat(100_000);
    let args = json!({"session_id": huge}).to_string();
    for tool in ["rlm.session.info", huge.as_str()] {
        let (code, _, _) = common::run_cli(&t, &["call", tool, &args]);
        assert_ne!(code, 0);
    }
    let lines = t.rlmd_json_lines();
    let calls: Vec<&Value> = lines.iter().filter(|l| l["message"] == "call").collect();
    assert_eq!(calls.len(), 2, "{lines:?}");
    for l in &lines {
        let n = l.to_string().chars().count();
        assert!(n < 1000, "a log line of {n} chars");
    }
    let (code, _, err) = common::run_cli(&t, &["daemon", "stop"]);
    assert_eq!(code, 0, "{err}");
}

/// `rust-version` was 1.88 while rusqlite 0.43 needs 1.89, and the README
/// installed without `--locked` (so a fresh install could resolve newer
/// crates than the lock file tested). The declared version now covers every
/// dependency in the lock file, and every install line of the README is
/// locked.
#[test]
fn the_declared_rust_version_covers_every_dependency_and_installs_are_locked() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Not `--offline`: the metadata of every platform's dependencies is
    // read, and a build fetches only the host's (on a fresh machine this
    // test failed for want of `android_system_properties`).
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(repo())
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    // "1.89" and "1.89.0" are the same version: three parts each.
    let version = |v: &Value| -> [u64; 3] {
        let mut parts = v.as_str().unwrap_or("0").split('.');
        [(); 3].map(|()| parts.next().and_then(|n| n.parse().ok()).unwrap_or(0))
    };
    let members: Vec<&Value> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let packages = meta["packages"].as_array().unwrap();
    let (ours, theirs): (Vec<&Value>, Vec<&Value>) =
        packages.iter().partition(|p| members.contains(&&p["id"]));
    let declared = ours
        .iter()
        .map(|p| version(&p["rust_version"]))
        .min()
        .expect("workspace packages");
    let (needed, by) = theirs
        .iter()
        .map(|p| {
            (
                version(&p["rust_version"]),
                p["name"].as_str().unwrap_or("?"),
            )
        })
        .max()
        .expect("dependencies");
    assert!(
        declared >= needed,
        "rust-version {declared:?} is older than {by}'s {needed:?}: raise it in Cargo.toml"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let installs: Vec<&str> = readme
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo install"))
        .collect();
    assert!(
        !installs.is_empty(),
        "the README installs with cargo install"
    );
    for line in installs {
        assert!(line.contains("--locked"), "not locked: {line}");
    }
}
