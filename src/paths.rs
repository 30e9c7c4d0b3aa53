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
/// runtime folder (`$XDG_RUNTIME_DIR/rlm`), else in a private folder of the
/// user's under the temp dir (`/tmp/rlm-<uid>`) when there is no runtime dir.
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

fn fallback_runtime_dir() -> PathBuf {
    #[cfg(unix)]
    let who = nix::unistd::getuid().as_raw().to_string();
    #[cfg(not(unix))]
    let who = std::env::var("USERNAME").unwrap_or_else(|_| "user".into());
    std::env::temp_dir().join(format!("rlm-{who}"))
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
pub fn ensure_socket_dir(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the socket folder {} is a symbolic link, which rlm never follows (someone may have planted it); remove it, or point rlm at a folder of your own (RLM_SOCKET, or XDG_RUNTIME_DIR)",
                dir.display()
            ),
        )),
        _ => ensure_private_dir(dir),
    }
}

/// Creates `dir` (and its parents) with mode 0700 from the first byte, or
/// checks that an existing one belongs to this user and is not open to
/// others: the socket's folder is what keeps other users out.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
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
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
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
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700,
            "tightened"
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
