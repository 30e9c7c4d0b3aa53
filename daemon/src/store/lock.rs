//! Per-session advisory lock files (`locks/<session>.lock`), shared by every
//! daemon process that changes a session: exclusive `flock`s through fs4.
//! And the store's loads lock (`blobs/loads.lock`, [`LoadsLock`]): shared by
//! loads, exclusive for a gc that finds none under way.
//!
//! Lock files are never removed while their session exists, so every holder of
//! a session's lock holds the same inode. Should a lock file still be replaced
//! between a locker's open and its lock, the locker notices once it holds the
//! lock (the path names another inode) and locks the path again.

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
        Self::acquire_watched(locks_dir, session_id, timeout, &mut |_| {})
    }

    /// [`SessionLock::acquire`], calling `waiting` with the time waited so
    /// far about once a second while another process holds the lock (a
    /// caller reports progress with it).
    pub fn acquire_watched(
        locks_dir: &Path,
        session_id: &str,
        timeout: Duration,
        waiting: &mut dyn FnMut(Duration),
    ) -> io::Result<SessionLock> {
        let path = Self::path_for(locks_dir, session_id);
        let deadline = Instant::now() + timeout;
        let file = open(&path)?;
        Self::lock_opened(path, file, deadline, timeout, waiting)
    }

    /// Locks `file`, opened from `path`, and keeps it only if `path` still
    /// names it once locked: a file unlinked (and maybe recreated) between the
    /// open and the lock excludes no one, so the path is opened and locked
    /// again.
    fn lock_opened(
        path: PathBuf,
        mut file: File,
        deadline: Instant,
        timeout: Duration,
        waiting: &mut dyn FnMut(Duration),
    ) -> io::Result<SessionLock> {
        let mut pause = Duration::from_micros(200);
        let started = Instant::now();
        let mut told = started;
        loop {
            match FileExt::try_lock(&file) {
                Ok(()) => {
                    if names_file(&path, &file)? {
                        return Ok(SessionLock { file, path });
                    }
                    let _ = FileExt::unlock(&file);
                    file = open(&path)?;
                    continue;
                }
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
            if told.elapsed() >= Duration::from_secs(1) {
                told = Instant::now();
                waiting(started.elapsed());
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Whether `path` names the open `file` (same device and inode); false when
/// the path no longer exists.
#[cfg(unix)]
fn names_file(path: &Path, file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Windows refuses to delete a file another handle has open, so the path
/// always names the file locked.
#[cfg(not(unix))]
fn names_file(_path: &Path, _file: &File) -> io::Result<bool> {
    Ok(true)
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

/// A hold on the store's loads lock, released on drop. Every load holds it
/// shared from before it starts its pack or claims a stored text until its
/// commit has ended; gc holds it too, exclusively when it can (then no load
/// is under way in any process: no text is claimed by a commit to come, no
/// pack is on its way to being named, and gc needs no grace), else shared
/// (so that the new packs of its compaction are never another gc's
/// garbage). The file is never removed.
#[derive(Debug)]
pub struct LoadsLock {
    file: File,
    exclusive: bool,
}

impl LoadsLock {
    /// Takes the lock shared, waiting at most `timeout` for a gc that holds
    /// it exclusively. Blocks the calling thread.
    pub fn shared(path: &Path, timeout: Duration) -> io::Result<LoadsLock> {
        let file = open(path)?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        loop {
            match FileExt::try_lock_shared(&file) {
                Ok(()) => {
                    return Ok(LoadsLock {
                        file,
                        exclusive: false,
                    });
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} still held by a gc after {timeout:?}", path.display()),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Takes the lock exclusively if no one holds it; None when a load (or
    /// another gc) does.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<LoadsLock>> {
        let file = open(path)?;
        match FileExt::try_lock(&file) {
            Ok(()) => Ok(Some(LoadsLock {
                file,
                exclusive: true,
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether this hold excludes every load.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

impl Drop for LoadsLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_share_the_loads_lock_and_gc_takes_it_only_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loads.lock");
        let wait = Duration::from_secs(5);
        let one = LoadsLock::shared(&path, wait).unwrap();
        let two = LoadsLock::shared(&path, wait).unwrap();
        assert!(!one.is_exclusive());
        assert!(LoadsLock::try_exclusive(&path).unwrap().is_none());
        drop(one);
        assert!(LoadsLock::try_exclusive(&path).unwrap().is_none());
        drop(two);
        let gc = LoadsLock::try_exclusive(&path)
            .unwrap()
            .expect("no load holds it");
        assert!(gc.is_exclusive());
        // A load waits for that gc, within its deadline.
        let err = LoadsLock::shared(&path, Duration::from_millis(30)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(LoadsLock::try_exclusive(&path).unwrap().is_none());
        drop(gc);
        assert!(LoadsLock::shared(&path, wait).is_ok());
    }

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

    /// A waiter that opened the lock file before it was replaced (unlinked and
    /// created again, now held by someone else) gets the old inode's lock
    /// uncontended: it must notice and wait for the new file's holder.
    #[test]
    fn a_locker_whose_file_was_replaced_locks_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = SessionLock::path_for(dir.path(), "s1");
        // The waiter's open, before the replacement.
        let stale = open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let holder = SessionLock::acquire(dir.path(), "s1", Duration::from_secs(1)).unwrap();
        let wait = Duration::from_millis(50);
        let err = SessionLock::lock_opened(
            path.clone(),
            stale,
            Instant::now() + wait,
            wait,
            &mut |_| {},
        )
        .expect_err("the holder of the file the path names excludes the waiter");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // Once the holder lets go, the waiter gets the file the path names.
        drop(holder);
        let stale = open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let wait = Duration::from_secs(5);
        let lock = SessionLock::lock_opened(
            path.clone(),
            stale,
            Instant::now() + wait,
            wait,
            &mut |_| {},
        )
        .expect("the path's new file is free");
        assert!(
            names_file(&path, &lock.file).unwrap(),
            "the lock held is that of the file the path names"
        );
        let err = SessionLock::acquire(dir.path(), "s1", Duration::from_millis(30)).unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::TimedOut,
            "and it excludes others"
        );
    }
}
