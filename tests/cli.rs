//! The `rlm` CLI and the store's upkeep, with real processes: calls,
//! searches, status and stop; `rlm gc` removes exactly the old garbage; and
//! `rlm sessions rm` / `prune` with gc shrink the store.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use common::{TestDir, WAIT, run_cli, wait_until};

#[test]
fn the_cli_reports_calls_searches_collects_and_stops_the_daemon() {
    let t = TestDir::new();
    let (code, _, err) = run_cli(&t, &["status"]);
    assert_eq!(code, 3, "status with no daemon: {err}");
    assert!(err.starts_with("rlm: "), "{err}");
    // A folder to search: the needle sits in one file among others.
    let folder = t.path().join("corpus");
    common::write_corpus(&folder, 20, 400);
    std::fs::write(
        folder.join("needle.txt"),
        "the flux capacitor needs 1.21 gigawatts\n",
    )
    .unwrap();
    let found = run_cli_json(
        &t,
        &[
            "search",
            folder.to_str().unwrap(),
            "flux capacitor gigawatts",
            "--json",
        ],
    );
    assert_eq!(found["loaded"], 21, "{found}");
    let first = &found["matches"][0];
    assert!(
        first["context"]
            .as_str()
            .unwrap()
            .contains("flux capacitor"),
        "{found}"
    );
    // --json names the file and the line of the hit.
    assert_eq!(
        first["source"],
        folder.join("needle.txt").display().to_string(),
        "{found}"
    );
    assert_eq!(first["line"], 1, "{found}");
    // The text output too, as path:line, with the file's whole lines.
    std::fs::write(
        folder.join("deep.txt"),
        "first line\nsecond line\nthe zanzibarite lode lies here, deep in the third line\nfourth\n",
    )
    .unwrap();
    let top_hit = |query: &str| {
        run_cli(
            &t,
            &["search", folder.to_str().unwrap(), query, "--limit", "1"],
        )
    };
    let (code, out, err) = top_hit("zanzibarite lode");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1. deep.txt:3  (score "), "{out}");
    assert!(
        out.contains("    the zanzibarite lode lies here, deep in the third line\n"),
        "{out}"
    );
    // A hit in code names the definition it is in.
    std::fs::write(
        folder.join("retry.py"),
        "import time\n\ndef backoff_delay(attempt):\n    # quokkas wait longer\n    return 2 ** attempt\n",
    )
    .unwrap();
    let (code, out, err) = top_hit("quokkas");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("1. retry.py:4  (score ")
            && out.contains(")  in backoff_delay, lines 3-5\n"),
        "{out}"
    );
    let status = run_cli_json(&t, &["status", "--json"]);
    assert_eq!(
        status["sessions_total"], 0,
        "a search leaves no session behind: {status}"
    );
    assert_eq!(status["data_dir"], t.data.display().to_string());
    // The daemon's memory, anonymous and file pages apart (a search read
    // and indexed texts: both are there).
    let memory = &status["memory"];
    for key in ["rss_anon_bytes", "rss_file_bytes", "peak_rss_bytes"] {
        assert!(memory[key].as_u64().unwrap_or(0) > 0, "{key}: {status}");
    }
    assert!(
        memory["peak_rss_bytes"].as_u64() >= memory["rss_anon_bytes"].as_u64(),
        "{status}"
    );
    let (code, out, err) = run_cli(&t, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("memory ") && l.contains("MB anonymous (RssAnon)")),
        "{out}"
    );
    // --keep keeps it, closed.
    let (code, _, err) = run_cli(
        &t,
        &[
            "search",
            folder.to_str().unwrap(),
            "flux capacitor",
            "--keep",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("kept as session"), "{err}");
    let sessions = run_cli_json(&t, &["sessions", "--json"]);
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(
        sessions[0]["status"], "completed",
        "the kept session is closed after: {sessions}"
    );
    // A bad --include printed `loaded 0 files ... 1 not loaded`, then `no
    // passage matches`, exit 0: it is refused before anything is loaded now.
    // An empty query too. A folder whose files all fail says so, exit 1.
    let (code, out, err) = run_cli(
        &t,
        &["search", folder.to_str().unwrap(), "flux", "--include", "("],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with("rlm: --include \"(\" is not a valid regex"),
        "{err}"
    );
    let (code, out, err) = run_cli(
        &t,
        &[
            "search",
            folder.to_str().unwrap(),
            "flux",
            "--include",
            "no-such-file",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("nothing was loaded"), "{err}");
    let (code, _, err) = run_cli(&t, &["search", folder.to_str().unwrap(), "  "]);
    assert_ne!(code, 0);
    assert!(err.contains("the query is empty"), "{err}");
    let (_, out, _) = run_cli(&t, &["status", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        status["sessions_total"], 1,
        "failed searches leave nothing: {status}"
    );
    let created = run_cli_json(
        &t,
        &["call", "rlm.session.create", r#"{"name": "by hand"}"#],
    );
    assert!(created["session_id"].is_string());
    let (code, out, err) = run_cli(
        &t,
        &["call", "rlm.session.info", r#"{"session_id": "nope"}"#],
    );
    assert_eq!(code, 2, "a tool error");
    assert!(out.is_empty(), "errors go to stderr only");
    assert!(err.contains("session_not_found"), "{err}");
    // --json: the error as JSON on stdout as well.
    let (code, out, _) = run_cli(
        &t,
        &[
            "call",
            "rlm.session.info",
            r#"{"session_id": "nope"}"#,
            "--json",
        ],
    );
    assert_eq!(code, 2);
    let error: Value = serde_json::from_str(&out).expect("the error as JSON");
    assert_eq!(error["error"]["code"], "session_not_found", "{error}");
    let (code, _, err) = run_cli(&t, &["call", "rlm.session.info", "{not json"]);
    assert_ne!(code, 0);
    assert!(err.contains("not JSON"), "{err}");
    let report = run_cli_json(&t, &["gc", "--json"]);
    // What gc removes and keeps is checked where garbage exists: see
    // `gc_removes_exactly_the_old_garbage_and_keeps_every_pack_the_store_names`.
    assert_eq!(report["grace_seconds"], 3600, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    for sub in ["status", "sessions", "call", "search", "gc", "daemon"] {
        let (code, out, _) = run_cli(&t, &[sub, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Usage"), "{sub} --help: {out}");
    }
    let (_, out, _) = run_cli(&t, &["--help"]);
    assert!(
        out.contains("Exit codes:") && out.contains("3  no daemon answered"),
        "{out}"
    );
    let pid = common::the_rlmd(&t.socket);
    let (code, out, err) = run_cli(&t, &["daemon", "stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stopping"), "{out}");
    wait_until(WAIT, "the daemon to exit after `rlm daemon stop`", || {
        common::is_gone(pid).then_some(())
    });
    let (code, out, err) = run_cli(&t, &["daemon", "start"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("serving on"), "{out}");
    assert_eq!(common::rlmd_pids(&t.socket).len(), 1);
}

/// Sets a file's or folder's modification time two hours back: past gc's one-hour grace.
fn age(path: &Path) {
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::open(path)
        .and_then(|f| f.set_modified(two_hours_ago))
        .unwrap_or_else(|e| panic!("setting the mtime of {}: {e}", path.display()));
}

/// A new session with `folder` loaded into it, through the CLI.
fn session_with_folder(t: &TestDir, folder: &Path) -> String {
    let sid = cli_ok(t, "rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    cli_ok(
        t,
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": folder}]}),
    );
    sid
}

fn cli_ok(t: &TestDir, tool: &str, args: Value) -> Value {
    run_cli_json(t, &["call", tool, &args.to_string()])
}

/// Runs `rlm` with `args`, expects exit 0 (failing with its stderr), and
/// parses what it printed as JSON (`--json`, `call`).
fn run_cli_json(t: &TestDir, args: &[&str]) -> Value {
    let (code, out, err) = run_cli(t, args);
    assert_eq!(code, 0, "rlm {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("rlm {args:?} prints JSON ({e}): {out}"))
}

/// `rlm gc` removes exactly the garbage old enough to collect: an orphan pack, a temporary file
/// of an unfinished load, the index folder and lock file of a session that does not exist, all
/// aged two hours; it keeps their young twins (the grace), every pack SQLite names and the lock
/// file of a live session, however old; and the session's texts read back afterwards through a
/// fresh daemon (which maps the packs anew, so a pack deleted under a live mapping would show).
#[test]
fn gc_removes_exactly_the_old_garbage_and_keeps_every_pack_the_store_names() {
    let t = TestDir::new();
    let (code, _, err) = run_cli(&t, &["daemon", "start"]);
    assert_eq!(code, 0, "{err}");
    let sid = cli_ok(&t, "rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Two loads: two packs the store names.
    for text in [
        "the zebrafinch sings at the quarry gate",
        "the okapi grazes behind the lantern shed",
    ] {
        let loaded = cli_ok(
            &t,
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": text}]}),
        );
        assert_eq!(loaded["loaded_count"], 1, "{loaded}");
    }
    let packs_dir = t.data.join("blobs/packs");
    let tmp_dir = t.data.join("blobs/tmp");
    let db = rusqlite::Connection::open_with_flags(
        t.data.join("store.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the store opens");
    let named: Vec<PathBuf> = db
        .prepare("SELECT DISTINCT pack FROM blobs")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|name| packs_dir.join(format!("{}.pack", name.unwrap())))
        .collect();
    drop(db);
    assert_eq!(named.len(), 2, "one pack per load: {named:?}");
    let session_lock = t.data.join("locks").join(format!("{sid}.lock"));
    assert!(session_lock.is_file(), "the loads took the session's lock");
    // Everything the store names, aged past the grace: only SQLite keeps it.
    for kept in named.iter().chain([&session_lock]) {
        age(kept);
    }

    // Garbage old enough to collect.
    let old_pack = packs_dir.join("0000000000000000orphan.pack");
    std::fs::write(&old_pack, b"a pack no blobs row names").unwrap();
    let old_tmp = tmp_dir.join("unfinished.pack.tmp");
    std::fs::write(&old_tmp, b"a load that never finished").unwrap();
    let old_index = t.data.join("indexes").join("no-such-session");
    std::fs::create_dir_all(&old_index).unwrap();
    std::fs::write(old_index.join("meta.json"), b"{}").unwrap();
    let old_lock = t.data.join("locks").join("no-such-session.lock");
    std::fs::write(&old_lock, b"").unwrap();
    for garbage in [&old_pack, &old_tmp, &old_index, &old_lock] {
        age(garbage);
    }
    // The same garbage, young, while a load in another process is under way
    // (it holds the loads lock shared): within the grace, that load may own it.
    let young_pack = packs_dir.join("0000000000000000young.pack");
    std::fs::write(&young_pack, b"a pack about to be committed").unwrap();
    let young_tmp = tmp_dir.join("in-progress.pack.tmp");
    std::fs::write(&young_tmp, b"a load still writing").unwrap();
    let loads_lock = std::fs::File::create(t.data.join("blobs/loads.lock")).unwrap();
    fs4::FileExt::lock_shared(&loads_lock).unwrap();

    let report = run_cli_json(&t, &["gc", "--json"]);
    assert_eq!(report["no_load_under_way"], false, "{report}");
    assert_eq!(report["packs_removed"], 1, "{report}");
    assert_eq!(report["temp_files_removed"], 1, "{report}");
    assert_eq!(report["index_dirs_removed"], 1, "{report}");
    assert_eq!(report["lock_files_removed"], 1, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    for gone in [&old_pack, &old_tmp, &old_index, &old_lock] {
        assert!(!gone.exists(), "gc left {}", gone.display());
    }
    for kept in named.iter().chain([&session_lock, &young_pack, &young_tmp]) {
        assert!(kept.exists(), "gc removed {}", kept.display());
    }

    // That load gone, no load is under way: the young pack no row names is
    // garbage whatever its age; a temporary file keeps its grace.
    fs4::FileExt::unlock(&loads_lock).unwrap();
    let report = run_cli_json(&t, &["gc", "--json"]);
    assert_eq!(report["no_load_under_way"], true, "{report}");
    assert_eq!(report["packs_removed"], 1, "{report}");
    assert_eq!(report["temp_files_removed"], 0, "{report}");
    assert!(!young_pack.exists(), "gc left {}", young_pack.display());
    for kept in named.iter().chain([&session_lock, &young_tmp]) {
        assert!(kept.exists(), "gc removed {}", kept.display());
    }

    // The texts read back from the packs through a daemon that never mapped them.
    // (SIGTERM, not `rlm daemon stop`: this test is about gc, and the CLI's stop sometimes
    // reports "rlmd closed the connection" before its acknowledgement arrives.)
    let pid = common::the_rlmd(&t.socket);
    common::signal(pid, Signal::SIGTERM);
    wait_until(WAIT, "the daemon to exit after SIGTERM", || {
        common::is_gone(pid).then_some(())
    });
    let (code, _, err) = run_cli(&t, &["daemon", "start"]);
    assert_eq!(code, 0, "{err}");
    for word in ["zebrafinch", "okapi"] {
        let found = cli_ok(
            &t,
            "rlm.search.query",
            json!({"session_id": sid, "query": word, "method": "literal"}),
        );
        assert_eq!(found["total_matches"], 1, "{word}: {found}");
        assert!(
            found["matches"][0]["context"]
                .as_str()
                .unwrap()
                .contains(word),
            "{found}"
        );
    }
}

/// Bytes of every file under `root`.
fn bytes_under(root: &Path) -> u64 {
    common::walk(root)
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// `rlm sessions rm` and `rlm sessions prune` through a real daemon: one
/// line per session, an unknown id named on stderr with exit 1, a prune that
/// deletes only closed sessions, and `rlm gc` then reclaiming their texts so
/// the store shrinks (nothing ever left it before).
#[test]
fn sessions_are_deleted_from_the_cli_and_gc_shrinks_the_store() {
    let t = TestDir::new();
    let _daemon = t.start_daemon(&[]);
    let folder = t.path().join("corpus");
    common::write_corpus(&folder, 30, 20_000);
    let mut sids = Vec::new();
    for _ in 0..3 {
        let sid = session_with_folder(&t, &folder);
        // Each session has a text of its own besides the shared corpus.
        let own = t.path().join(format!("{sid}.txt"));
        std::fs::write(&own, format!("only {sid} ").repeat(5000)).unwrap();
        cli_ok(
            &t,
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "file", "path": own}]}),
        );
        sids.push(sid);
    }
    cli_ok(&t, "rlm.session.close", json!({"session_id": sids[2]}));
    let full = bytes_under(&t.data.join("blobs"));
    let (code, out, err) = run_cli(&t, &["sessions", "rm", &sids[0], "no-such-session"]);
    assert_eq!(code, 1, "one id failed: {out}{err}");
    assert!(out.contains(&sids[0]), "{out}");
    assert!(
        err.starts_with("rlm: no-such-session: ") && err.contains("rlm sessions"),
        "{err}"
    );
    let (code, out, err) = run_cli(&t, &["sessions", "prune", "--closed-before", "0s"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&sids[2]) && !out.contains(&sids[1]), "{out}");
    let left = run_cli_json(&t, &["sessions", "--json"]);
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec![sids[1].as_str()]);
    // gc leaves alone what a load may still be claiming (an hour's grace):
    // age every text and pack past it, as an hour of waiting would.
    let store = rusqlite::Connection::open(t.data.join("store.sqlite")).unwrap();
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    store
        .execute("UPDATE blobs SET created_at = ?1", [&two_hours_ago])
        .unwrap();
    drop(store);
    let packs = t.data.join("blobs/packs");
    for pack in common::walk(&packs).iter().filter(|p| p.is_file()) {
        age(pack);
    }
    let (code, _, err) = run_cli(&t, &["gc"]);
    assert_eq!(code, 0, "{err}");
    // The survivor reads every text back.
    let docs = cli_ok(&t, "rlm.docs.list", json!({"session_id": sids[1]}));
    assert_eq!(docs["total"], 31, "{docs}");
    for d in docs["documents"].as_array().unwrap() {
        cli_ok(
            &t,
            "rlm.docs.peek",
            json!({"session_id": sids[1], "doc_id": d["doc_id"], "end": 10}),
        );
    }
    let after = bytes_under(&t.data.join("blobs"));
    eprintln!("ops: stored texts {full} -> {after} bytes after deleting 2 of 3 sessions and gc");
    // What is left: the shared corpus and the survivor's own text, once.
    let kept: u64 = common::walk(&folder)
        .iter()
        .filter(|p| p.is_file())
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum::<u64>()
        + std::fs::metadata(t.path().join(format!("{}.txt", sids[1])))
            .unwrap()
            .len();
    assert_eq!(after, kept, "{full} -> {after}");
}

/// After every session is deleted, `rlm gc --grace 0` gives the disk back
/// at once: texts, packs, their passages in the search index, and the
/// database's free pages and log; what is left is a few percent of the
/// data folder at its fullest.
#[test]
fn gc_without_grace_after_deleting_every_session_empties_the_store() {
    let t = TestDir::new();
    let _daemon = t.start_daemon(&[]);
    let folder = t.path().join("corpus");
    common::write_corpus(&folder, 120, 60_000);
    let mut sids = Vec::new();
    for _ in 0..2 {
        let sid = session_with_folder(&t, &folder);
        let found = cli_ok(
            &t,
            "rlm.search.query",
            json!({"session_id": sid, "query": "copper lantern"}),
        );
        assert!(!found["matches"].as_array().unwrap().is_empty(), "{found}");
        sids.push(sid);
    }
    let peak = bytes_under(&t.data);
    let mut args = vec!["sessions", "rm"];
    args.extend(sids.iter().map(String::as_str));
    let (code, _, err) = run_cli(&t, &args);
    assert_eq!(code, 0, "{err}");
    let report = run_cli_json(&t, &["gc", "--grace", "0", "--json"]);
    assert_eq!(report["texts_removed"], 120, "{report}");
    assert_eq!(report["index_texts_removed"], 120, "{report}");
    assert!(
        report["database_bytes_freed"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!(report["errors"], json!([]), "{report}");
    let left = bytes_under(&t.data);
    eprintln!("cli: data folder {peak} -> {left} bytes after deleting every session and gc");
    assert!(
        left * 20 <= peak,
        "at most 5% of the peak is left: {left} of {peak} bytes"
    );
    // The store still works: a new session loads, indexes and finds.
    let sid = session_with_folder(&t, &folder);
    let found = cli_ok(
        &t,
        "rlm.search.query",
        json!({"session_id": sid, "query": "copper lantern"}),
    );
    assert_eq!(found["index_built"], true, "{found}");
    assert!(!found["matches"].as_array().unwrap().is_empty(), "{found}");
}

/// `rlm daemon stop` right after a client leaves failed 3 times in 36 with
/// `rlmd closed the connection`, exit 3, though the daemon stopped: a daemon
/// already stopping closes new connections. Played here by a listener that
/// closes the connection it accepts, then goes away: the stop is done.
#[test]
fn daemon_stop_succeeds_when_the_daemon_was_already_stopping() {
    use std::os::unix::net::UnixListener;
    let t = TestDir::new();
    std::fs::create_dir_all(t.socket.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(&t.socket).unwrap();
    let socket = t.socket.clone();
    let stopping = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut hello = [0u8; 4];
        let _ = std::io::Read::read(&mut conn, &mut hello);
        drop(conn);
        drop(listener);
        std::fs::remove_file(&socket).unwrap();
    });
    let (code, out, err) = run_cli(&t, &["daemon", "stop"]);
    stopping.join().unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("already stopping"), "{out}{err}");
    // And with nothing listening at all: exit 3, as before.
    let (code, _, err) = run_cli(&t, &["daemon", "stop"]);
    assert_eq!(code, 3, "{err}");
}

/// `[search] word_forms` in config.toml reaches the daemon: in a session of
/// `.txt` files, `retry` finds the text that says `retries` too by default
/// (`prose`) and with `always` (or the old `true`), and only the text that
/// has it with `never`.
#[test]
fn word_forms_in_config_toml_reach_the_daemon() {
    for (config, want) in [
        ("", 2),
        ("[search]\nword_forms = \"never\"\n", 1),
        ("[search]\nword_forms = \"always\"\n", 2),
        ("[search]\nword_forms = false\n", 1),
    ] {
        let t = TestDir::new();
        std::fs::write(&t.config, config).unwrap();
        let _daemon = t.start_daemon(&[]);
        let folder = t.path().join("texts");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("a.txt"), "The client retries the request.\n").unwrap();
        std::fs::write(folder.join("b.txt"), "A retry policy decides.\n").unwrap();
        std::fs::write(folder.join("c.txt"), "Nothing of the kind here.\n").unwrap();
        let sid = session_with_folder(&t, &folder);
        let found = cli_ok(
            &t,
            "rlm.search.query",
            json!({"session_id": sid, "query": "retry"}),
        );
        let matches = found["matches"].as_array().unwrap();
        assert_eq!(matches.len(), want, "config {config:?}: {found}");
    }
}
