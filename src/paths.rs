//! Where things live: the data directory, the daemon's socket, logs. Defaults
//! follow the platform's conventions (`directories`); the environment
//! overrides them (`RLM_DATA_DIR`, `RLM_SOCKET`, `RLM_LOG_DIR`), so tests and
//! several daemons run side by side.

use std::io;
use std::path::{Path, PathBuf};

/// Linux limits a Unix socket path to 108 bytes, the final NUL included.
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "rlm")
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The data directory: `RLM_DATA_DIR`, else the platform's data folder
/// (`~/.local/share/rlm` on Linux).
pub fn data_dir() -> io::Result<PathBuf> {
    if let Some(p) = env_path("RLM_DATA_DIR") {
        return Ok(p);
    }
    project_dirs()
        .map(|d| d.data_dir().to_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no home directory to put the data in; set RLM_DATA_DIR",
            )
        })
}

/// The log directory: `RLM_LOG_DIR`, else the platform's state folder
/// (`~/.local/state/rlm` on Linux), else `<data>/logs`.
pub fn log_dir() -> io::Result<PathBuf> {
    if let Some(p) = env_path("RLM_LOG_DIR") {
        return Ok(p);
    }
    match project_dirs().and_then(|d| d.state_dir().map(Path::to_owned)) {
        Some(p) => Ok(p),
        None => Ok(data_dir()?.join("logs")),
    }
}

/// The daemon's socket: `RLM_SOCKET`, else `rlmd.sock` in the user's
/// runtime folder (`$XDG_RUNTIME_DIR/rlm`), else in `/run/user/<uid>/rlm`
/// when that folder is the user's own, else in a private folder of the
/// user's under the temp dir (`/tmp/rlm-<uid>`).
pub fn socket_path() -> io::Result<PathBuf> {
    let path = match env_path("RLM_SOCKET") {
        Some(p) => p,
        None => match project_dirs().and_then(|d| d.runtime_dir().map(Path::to_owned)) {
            Some(dir) => dir.join("rlmd.sock"),
            None => fallback_runtime_dir().join("rlmd.sock"),
        },
    };
    check_socket_path(&path)?;
    Ok(path)
}

/// Where the socket goes when `XDG_RUNTIME_DIR` is not set (an MCP client
/// that starts its server with a minimal environment, a cron job): the
/// folder systemd-logind makes for the user, `/run/user/<uid>/rlm`, when it
/// exists and is the user's own, so such a client finds the same daemon as
/// the CLI and the systemd socket; else a private folder under the temp dir.
fn fallback_runtime_dir() -> PathBuf {
    #[cfg(unix)]
    {
        let uid = nix::unistd::getuid().as_raw();
        runtime_dir_without_xdg(uid, Path::new("/run/user"), &std::env::temp_dir())
    }
    #[cfg(not(unix))]
    {
        let who = std::env::var("USERNAME").unwrap_or_else(|_| "user".into());
        std::env::temp_dir().join(format!("rlm-{who}"))
    }
}

/// [`fallback_runtime_dir`] with its inputs given: `<run_user>/<uid>/rlm`
/// when `<run_user>/<uid>` is a real folder (not a link) of `uid` that
/// nobody else may enter, else `<tmp>/rlm-<uid>`.
#[cfg(unix)]
pub fn runtime_dir_without_xdg(uid: u32, run_user: &Path, tmp: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let own = run_user.join(uid.to_string());
    match std::fs::symlink_metadata(&own) {
        Ok(m) if m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0 => own.join("rlm"),
        _ => tmp.join(format!("rlm-{uid}")),
    }
}

/// `path` with a leading `~` (alone, or followed by a separator) replaced by
/// the user's home folder, as a shell would: configuration files and load
/// paths written by hand use it. `~other` is left as it is.
pub fn expand_home(path: &Path) -> PathBuf {
    let mut parts = path.components();
    match parts.next() {
        Some(std::path::Component::Normal(first)) if first == "~" => {
            match directories::BaseDirs::new() {
                Some(dirs) => dirs.home_dir().join(parts.as_path()),
                None => path.to_owned(),
            }
        }
        _ => path.to_owned(),
    }
}

/// Refuses socket paths the OS cannot bind.
pub fn check_socket_path(path: &Path) -> io::Result<()> {
    let len = path.as_os_str().len();
    if cfg!(unix) && len > MAX_SOCKET_PATH_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "socket path {} is {len} bytes, longer than the {MAX_SOCKET_PATH_BYTES} a Unix socket allows; set RLM_SOCKET to a shorter path",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// [`ensure_private_dir`] for the socket's folder, which must also not be a
/// symbolic link: a link planted at `/tmp/rlm-<uid>` would make a client
/// and its daemon use (and tighten) whatever folder it points at, until the
/// link is repointed.
///
/// A folder that also holds other files (`RLM_SOCKET=/tmp/rlmd.sock` run as
/// root) keeps its mode: the socket itself is 0600 and both ends check the
/// other's uid. Such a folder is refused only when other users may write in
/// it and it has no sticky bit, since they could then replace the socket.
pub fn ensure_socket_dir(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the socket folder {} is a symbolic link, which rlm never follows (someone may have planted it); remove it, or point rlm at a folder of your own (RLM_SOCKET, or XDG_RUNTIME_DIR)",
                dir.display()
            ),
        )),
        _ => match ensure_private_dir(dir, &is_socket_file)? {
            Privacy::Private => Ok(()),
            Privacy::LeftOpen => match others_may_write(dir)? {
                Some(mode) if mode & 0o1000 == 0 => Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "the socket folder {} (mode {mode:o}) can be written by other users and has no sticky bit, so one of them could replace the socket; point rlm at a folder of your own (RLM_SOCKET, or XDG_RUNTIME_DIR)",
                        dir.display(),
                    ),
                )),
                _ => Ok(()),
            },
        },
    }
}

/// The mode of `dir` when users other than its owner may create files in it
/// (group or others writable), else `None`.
pub fn others_may_write(dir: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(dir)?.mode() & 0o7777;
        Ok((mode & 0o022 != 0).then_some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// [`ensure_private_dir`] for a folder rlm writes files in by names others
/// can guess (the store, the logs): one left open that other users may
/// write in is refused, since they could plant a link where rlm's next file
/// goes. `what` names it and `var` the setting that moves it.
pub fn ensure_own_dir(
    dir: &Path,
    ours: &dyn Fn(&str) -> bool,
    what: &str,
    var: &str,
) -> io::Result<Privacy> {
    let privacy = ensure_private_dir(dir, ours)?;
    if privacy == Privacy::LeftOpen
        && let Some(mode) = others_may_write(dir)?
    {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the {what} {} (mode {mode:o}) holds other files and can be written by other users, who could plant links where rlm writes; give rlm a folder of its own ({var})",
                dir.display()
            ),
        ));
    }
    Ok(privacy)
}

/// The files rlm puts beside its socket: the socket, the daemon's lock and
/// a starter's spawn lock (`rlmd.sock`, `rlmd.sock.lock`,
/// `rlmd.sock.spawn.lock`).
pub fn is_socket_file(name: &str) -> bool {
    name.ends_with(".sock") || name.ends_with(".sock.lock") || name.ends_with(".sock.spawn.lock")
}

/// rlm's log files: `rlmd.2026-12-01.log`, `rlm-mcp.2026-12-01.log`.
pub fn is_log_file(name: &str) -> bool {
    name.starts_with("rlm") && name.ends_with(".log")
}

/// What [`ensure_private_dir`] found, or made, of a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// Closed to other users: made so, found so, or tightened because it
    /// held nothing but rlm's own files.
    Private,
    /// Open to other users and holding files that are not rlm's (a folder
    /// such as `/tmp` or a home folder named as rlm's): left as it was.
    /// What rlm writes in it is still its user's alone (umask 077).
    LeftOpen,
}

/// Creates `dir` (and its parents) with mode 0700 from the first byte, or
/// checks that an existing one belongs to this user. An existing folder
/// open to others is tightened to 0700 only when every entry in it is
/// rlm's (`ours` says so of each name; an empty folder too): a store or a
/// log folder of an older rlm, made with a looser umask. Any other folder
/// keeps its mode ([`Privacy::LeftOpen`]): rlm never changes the mode of a
/// folder that holds the user's own files, such as `/tmp` or a home folder
/// given as `RLM_SOCKET`'s, `RLM_DATA_DIR` or `RLM_LOG_DIR`.
pub fn ensure_private_dir(dir: &Path, ours: &dyn Fn(&str) -> bool) -> io::Result<Privacy> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = std::fs::metadata(dir)?;
        let me = nix::unistd::getuid().as_raw();
        if meta.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to uid {}, not to this user (uid {me}); remove it, or point rlm elsewhere (RLM_SOCKET, RLM_DATA_DIR, RLM_LOG_DIR)",
                    dir.display(),
                    meta.uid()
                ),
            ));
        }
        if meta.mode() & 0o077 == 0 {
            return Ok(Privacy::Private);
        }
        for entry in std::fs::read_dir(dir)? {
            if !entry?.file_name().to_str().is_some_and(ours) {
                return Ok(Privacy::LeftOpen);
            }
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Privacy::Private)
    }
    #[cfg(not(unix))]
    {
        let _ = ours;
        std::fs::create_dir_all(dir).map(|()| Privacy::Private)
    }
}

/// Makes every file and folder this process creates its user's alone (0600
/// and 0700), whatever umask it was started with: the store holds texts the
/// user may have protected, and the logs of every binary name files,
/// sessions and queries. Each binary calls it first, before any thread or
/// file exists.
pub fn private_umask() {
    #[cfg(unix)]
    {
        use nix::sys::stat::{Mode, umask};
        umask(Mode::from_bits_truncate(0o077));
    }
}

/// Makes every folder under `root`'s entries that are rlm's (`ours` says so
/// of each name in `root`) 0700 and every file 0600 where group or others
/// had any right (a store written by an older rlm, or copied in with a
/// looser umask), without following links. Entries of `root` that are not
/// rlm's are never walked nor changed. Returns how many were changed.
pub fn make_private_tree(root: &Path, ours: &dyn Fn(&str) -> bool) -> io::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut changed = 0;
        let mut folders = vec![root.to_path_buf()];
        while let Some(folder) = folders.pop() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                if folder == root && !entry.file_name().to_str().is_some_and(ours) {
                    continue;
                }
                let meta = match std::fs::symlink_metadata(entry.path()) {
                    Ok(m) => m,
                    // Removed by a live process since the listing.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let mode = meta.permissions().mode();
                let private = if meta.is_dir() {
                    folders.push(entry.path());
                    0o700
                } else if meta.is_file() {
                    0o600
                } else {
                    continue;
                };
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(
                        entry.path(),
                        std::fs::Permissions::from_mode(private),
                    )?;
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
    #[cfg(not(unix))]
    {
        let _ = (root, ours);
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_long_socket_paths_are_refused_with_the_variable_to_set() {
        let long = PathBuf::from(format!("/tmp/{}/rlmd.sock", "x".repeat(120)));
        let err = check_socket_path(&long).unwrap_err().to_string();
        assert!(err.contains("RLM_SOCKET"), "{err}");
        check_socket_path(Path::new("/tmp/rlm/rlmd.sock")).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn private_dirs_are_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let dir = tmp.path().join("a/b");
        assert_eq!(
            ensure_private_dir(&dir, &is_log_file).unwrap(),
            Privacy::Private
        );
        assert_eq!(mode(&dir), 0o700);
        // A log folder of an older rlm, made with a looser umask: tightened.
        std::fs::write(dir.join("rlmd.2026-11-30.log"), "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            ensure_private_dir(&dir, &is_log_file).unwrap(),
            Privacy::Private
        );
        assert_eq!(mode(&dir), 0o700, "tightened");
        // A folder that also holds the user's own files keeps its mode.
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            ensure_private_dir(&dir, &is_log_file).unwrap(),
            Privacy::LeftOpen
        );
        assert_eq!(mode(&dir), 0o755, "left as it was");
    }

    /// A socket named in a shared folder (`/tmp` as root): the folder keeps
    /// its mode when others cannot replace the socket in it (sticky, or not
    /// writable by them), and is refused when they can.
    #[cfg(unix)]
    #[test]
    fn a_shared_socket_folder_keeps_its_mode_or_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::write(shared.join("someone-elses.txt"), "x").unwrap();
        set(&shared, 0o1777);
        ensure_socket_dir(&shared).unwrap();
        assert_eq!(
            mode(&shared),
            0o1777,
            "a /tmp-like folder is left as it was"
        );
        set(&shared, 0o755);
        ensure_socket_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o755);
        set(&shared, 0o777);
        let err = ensure_socket_dir(&shared).unwrap_err().to_string();
        assert!(
            err.contains("sticky") && err.contains("RLM_SOCKET"),
            "{err}"
        );
        assert_eq!(mode(&shared), 0o777);
        // Holding only rlm's socket files, it is rlm's own: tightened.
        std::fs::remove_file(shared.join("someone-elses.txt")).unwrap();
        std::fs::write(shared.join("rlmd.sock.lock"), "").unwrap();
        ensure_socket_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o700);
    }

    #[test]
    fn a_leading_tilde_is_the_home_folder() {
        let home = directories::BaseDirs::new().unwrap().home_dir().to_owned();
        assert_eq!(expand_home(Path::new("~")), home);
        assert_eq!(expand_home(Path::new("~/a/b.txt")), home.join("a/b.txt"));
        assert_eq!(expand_home(Path::new("/x/~/y")), PathBuf::from("/x/~/y"));
        assert_eq!(
            expand_home(Path::new("~other/y")),
            PathBuf::from("~other/y")
        );
        assert_eq!(expand_home(Path::new("rel/~")), PathBuf::from("rel/~"));
    }

    /// Without XDG_RUNTIME_DIR the user's own `/run/user/<uid>` is used when
    /// it is theirs alone, so a client with a minimal environment finds the
    /// daemon the CLI and systemd use; anything else falls back to the
    /// private temp folder.
    #[cfg(unix)]
    #[test]
    fn without_xdg_the_users_run_folder_comes_before_the_temp_folder() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let run_user = tmp.path().join("run-user");
        let temp = tmp.path().join("tmp");
        let me = nix::unistd::getuid().as_raw();
        let fallback = temp.join(format!("rlm-{me}"));
        assert_eq!(
            runtime_dir_without_xdg(me, &run_user, &temp),
            fallback,
            "none"
        );
        let own = run_user.join(me.to_string());
        std::fs::create_dir_all(&own).unwrap();
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            runtime_dir_without_xdg(me, &run_user, &temp),
            own.join("rlm")
        );
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            runtime_dir_without_xdg(me, &run_user, &temp),
            fallback,
            "open to others"
        );
        // Another uid's folder is not this user's.
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o700)).unwrap();
        let other = me + 1;
        std::fs::create_dir_all(run_user.join(other.to_string())).unwrap();
        assert_eq!(
            runtime_dir_without_xdg(other, &run_user, &temp),
            temp.join(format!("rlm-{other}")),
            "owned by someone else"
        );
        // A link in its place is not followed.
        let linked = me + 2;
        std::os::unix::fs::symlink(&own, run_user.join(linked.to_string())).unwrap();
        assert_eq!(
            runtime_dir_without_xdg(linked, &run_user, &temp),
            temp.join(format!("rlm-{linked}"))
        );
    }

    /// Files and folders others could read are tightened; links are not
    /// followed (what they point at is not the store's to change).
    #[cfg(unix)]
    #[test]
    fn a_tree_is_made_private_without_following_links() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        std::fs::write(root.join("g"), "x").unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        set(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        for (p, m) in [("a", 0o755), ("a/b", 0o775), ("a/b/f", 0o644), ("g", 0o600)] {
            set(&root.join(p), m);
        }
        std::fs::write(root.join("mine.sh"), "x").unwrap();
        set(&root.join("mine.sh"), 0o755);
        // Only the entries of the root that are rlm's are walked.
        let ours = |name: &str| name != "mine.sh";
        assert_eq!(make_private_tree(&root, &ours).unwrap(), 3);
        for (p, m) in [("a", 0o700), ("a/b", 0o700), ("a/b/f", 0o600), ("g", 0o600)] {
            assert_eq!(mode(&root.join(p)), m, "{p}");
        }
        assert_eq!(mode(&outside), 0o644, "a link's target is left alone");
        assert_eq!(mode(&root.join("mine.sh")), 0o755, "not rlm's: left alone");
        assert_eq!(
            make_private_tree(&root, &ours).unwrap(),
            0,
            "nothing left to do"
        );
    }

    /// A link planted where the socket folder goes is refused, and the
    /// folder it points at is left as it was (not tightened, not used).
    #[cfg(unix)]
    #[test]
    fn a_socket_folder_that_is_a_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("somewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("rlm-1000");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_socket_dir(&link).unwrap_err().to_string();
        assert!(
            err.contains("symbolic link") && err.contains("rlm-1000"),
            "{err}"
        );
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let own = tmp.path().join("own");
        ensure_socket_dir(&own).unwrap();
        assert!(own.is_dir());
    }
}
