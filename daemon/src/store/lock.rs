//! Per-session advisory lock files (`locks/<session>.lock`), shared by every
//! daemon process that changes a session: exclusive `flock`s through fs4.
//!
//! Lock files are never removed while their session exists, so a process can
//! never lock a file that another process has just unlinked: every holder of a
//! session's lock holds the same inode.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs4::{FileExt, TryLockError};

/// An exclusive lock on one session, released on drop.
#[derive(Debug)]
pub struct SessionLock {
    file: File,
    path: PathBuf,
}

impl SessionLock {
    /// The lock file of a session under `locks_dir`.
    pub fn path_for(locks_dir: &Path, session_id: &str) -> PathBuf {
        locks_dir.join(format!("{session_id}.lock"))
    }

    /// Takes the session's lock, waiting at most `timeout`. Blocks the calling
    /// thread: call it from a blocking thread, never from an async worker.
    /// A lock taken through another `open()` conflicts even inside one process.
    pub fn acquire(
        locks_dir: &Path,
        session_id: &str,
        timeout: Duration,
    ) -> io::Result<SessionLock> {
        let path = Self::path_for(locks_dir, session_id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            match FileExt::try_lock(&file) {
                Ok(()) => return Ok(SessionLock { file, path }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "session lock {} still held by another process after {:?}",
                        path.display(),
                        timeout
                    ),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquire_waits_for_the_first_to_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = SessionLock::acquire(dir.path(), "s1", Duration::from_secs(1)).unwrap();
        let err = SessionLock::acquire(dir.path(), "s1", Duration::from_millis(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let other = SessionLock::acquire(dir.path(), "s2", Duration::from_millis(30));
        assert!(other.is_ok(), "locks of other sessions are independent");
        drop(first);
        SessionLock::acquire(dir.path(), "s1", Duration::from_millis(500)).unwrap();
    }
}
