//! The data directory's layout, written once: every path under the data
//! directory is spelled here and nowhere else.
//!
//! ```text
//! <data>/store.sqlite          SQLite (WAL: store.sqlite-wal, store.sqlite-shm)
//! <data>/blobs/packs/<p>.pack  append-once pack files
//! <data>/blobs/tmp/            packs being written (renamed into packs/ when synced)
//! <data>/blobs/loads.lock      held shared by every load, exclusively by a gc that finds none
//! <data>/search/index/         the tantivy passage index every session shares
//! <data>/search/write.lock     held by the one process writing that index
//! <data>/indexes/              per-session indexes of schema 3 and before (gc removes them)
//! <data>/locks/<session>.lock  a session's advisory lock file (never removed while it exists)
//! ```

use std::path::{Path, PathBuf};

/// The SQLite database file.
pub const SQLITE_FILE: &str = "store.sqlite";
/// The blob store's folder, holding `packs/` and `tmp/`.
pub const BLOBS_DIR: &str = "blobs";
/// Finished packs, under `blobs/`.
pub const PACKS_DIR: &str = "packs";
/// Packs being written, under `blobs/`.
pub const TMP_DIR: &str = "tmp";
/// What a finished pack's file name ends with.
pub const PACK_SUFFIX: &str = ".pack";
/// The loads lock's file name, under `blobs/` (`store::lock::LoadsLock`).
pub const LOADS_LOCK: &str = "loads.lock";
/// What a pack being written ends with (under `blobs/tmp/`).
pub const TMP_PACK_SUFFIX: &str = ".pack.tmp";
/// Per-session index folders of schema 3 and before, removed by gc.
pub const INDEXES_DIR: &str = "indexes";
/// The shared search index's folder.
pub const SEARCH_DIR: &str = "search";
/// The tantivy index, under `search/`.
pub const SEARCH_INDEX_DIR: &str = "index";
/// The name of the shared index's write lock (`search/write.lock`).
pub const SEARCH_WRITE_LOCK: &str = "write";
/// Session lock files, one per session.
pub const LOCKS_DIR: &str = "locks";
/// What a session's lock file name ends with (the name `rlm::lock::SessionLock`
/// gives it: `<session>.lock`).
pub const LOCK_SUFFIX: &str = ".lock";

/// Whether `name`, an entry of the data directory, is the store's own: the
/// database and its journal files, and the folders above. The store makes
/// only these private (`Store::open`): a data directory named where the
/// user keeps other files leaves those as they are.
pub fn is_store_entry(name: &str) -> bool {
    [BLOBS_DIR, SEARCH_DIR, LOCKS_DIR, INDEXES_DIR].contains(&name)
        || name
            .strip_prefix(SQLITE_FILE)
            .is_some_and(|rest| ["", "-wal", "-shm", "-journal"].contains(&rest))
}

/// The paths of one data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_owned(),
        }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `store.sqlite`.
    pub fn sqlite(&self) -> PathBuf {
        self.root.join(SQLITE_FILE)
    }

    /// `blobs/packs/`.
    pub fn packs_dir(&self) -> PathBuf {
        self.root.join(BLOBS_DIR).join(PACKS_DIR)
    }

    /// `blobs/tmp/`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(BLOBS_DIR).join(TMP_DIR)
    }

    /// `blobs/loads.lock`.
    pub fn loads_lock(&self) -> PathBuf {
        self.root.join(BLOBS_DIR).join(LOADS_LOCK)
    }

    /// `blobs/packs/<pack>.pack`.
    pub fn pack_file(&self, pack: &str) -> PathBuf {
        pack_file_in(&self.packs_dir(), pack)
    }

    /// `indexes/`.
    pub fn indexes_dir(&self) -> PathBuf {
        self.root.join(INDEXES_DIR)
    }

    /// `indexes/<session>/` (schema 3 and before).
    pub fn index_dir(&self, session_id: &str) -> PathBuf {
        self.indexes_dir().join(session_id)
    }

    /// `search/`.
    pub fn search_dir(&self) -> PathBuf {
        self.root.join(SEARCH_DIR)
    }

    /// `search/index/`.
    pub fn search_index_dir(&self) -> PathBuf {
        self.search_dir().join(SEARCH_INDEX_DIR)
    }

    /// `locks/`.
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join(LOCKS_DIR)
    }
}

/// The file of pack `pack` inside the packs folder `packs`.
pub fn pack_file_in(packs: &Path, pack: &str) -> PathBuf {
    packs.join(format!("{pack}{PACK_SUFFIX}"))
}

/// The pack name of a file name in `blobs/packs/`, if it is a pack.
pub fn pack_name(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(PACK_SUFFIX)
}

/// The session a file name in `locks/` is the lock of, if it is a lock file.
pub fn locked_session(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(LOCK_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_the_root() {
        let l = Layout::new(Path::new("/d"));
        assert_eq!(l.sqlite(), Path::new("/d/store.sqlite"));
        assert_eq!(l.pack_file("p"), Path::new("/d/blobs/packs/p.pack"));
        assert_eq!(l.tmp_dir(), Path::new("/d/blobs/tmp"));
        assert_eq!(l.index_dir("s"), Path::new("/d/indexes/s"));
        assert_eq!(l.locks_dir(), Path::new("/d/locks"));
        assert_eq!(pack_name("p.pack"), Some("p"));
        assert_eq!(locked_session("s.lock"), Some("s"));
        assert_eq!(locked_session("s.lck"), None);
    }

    #[test]
    fn lock_files_are_named_as_the_lock_helper_names_them() {
        let l = Layout::new(Path::new("/d"));
        let path = super::super::SessionLock::path_for(&l.locks_dir(), "s");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(path.parent(), Some(l.locks_dir().as_path()));
        assert_eq!(locked_session(name), Some("s"));
    }
}
