//! The daemon's files and folders, as the machine's other users and the
//! user's own files meet them: the store and the logs are the user's alone
//! (modes repaired at start, never by walking what is not rlm's), a folder
//! that holds the user's files keeps their modes, a data folder the daemon
//! cannot write or others can is refused with a reason, and nothing at the
//! socket path that is not a socket (a file, a planted link) is removed or
//! written through. Daemons run under the hostile suites' address-space
//! limit ([`LIMIT`]); every wait has a deadline.

mod common;

use std::path::Path;

use nix::sys::signal::Signal;
use serde_json::json;

use common::{Ipc, LIMIT, Outcome, TestDir, Tmpfs, WAIT, load_inline, session, wait_until};

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
