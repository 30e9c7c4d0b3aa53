//! The content-addressed blob store: one file per distinct text, named by the
//! SHA-256 of its bytes, written to a temporary name and renamed into place,
//! and synced once per batch before any SQLite commit refers to it.
//!
//! A blob file counts only once the `blobs` table lists it: a file left by a
//! crash before its commit is rewritten by the next load of the same text.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where blobs live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    pub fn open(dir: &Path) -> io::Result<BlobStore> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp)?;
        Ok(BlobStore {
            dir: dir.to_owned(),
            tmp,
        })
    }

    /// The final path of a blob.
    pub fn path_of(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// Writes a blob under its final name without syncing it: the caller
    /// syncs the batch (`sync`) before committing rows that refer to it.
    pub fn write(&self, hash: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        let final_path = self.path_of(hash);
        let parent = final_path.parent().unwrap_or(&self.dir);
        if !parent.exists() {
            fs::create_dir_all(parent)?;
        }
        let tmp_path = self
            .tmp
            .join(format!("{hash}.{}", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp_path)?;
            f.write_all(bytes)?;
            fs::rename(&tmp_path, &final_path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        result.map(|()| final_path)
    }

    /// Makes every blob written so far durable: one `syncfs` on Linux (a
    /// single flush for the whole batch), else an fsync per file and folder.
    pub fn sync(&self, written: &[PathBuf]) -> io::Result<()> {
        if written.is_empty() {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            let _ = written;
            let dir = File::open(&self.dir)?;
            nix::unistd::syncfs(&dir).map_err(io::Error::from)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut dirs = std::collections::BTreeSet::new();
            for p in written {
                File::open(p)?.sync_all()?;
                if let Some(d) = p.parent() {
                    dirs.insert(d.to_owned());
                }
            }
            for d in dirs {
                // Directories cannot be opened for sync on every platform.
                if let Ok(f) = File::open(&d) {
                    let _ = f.sync_all();
                }
            }
            Ok(())
        }
    }

    /// Removes temporary files older than this process could still be writing
    /// (left by a crash). Only files older than `min_age` are touched.
    pub fn clean_tmp(&self, min_age: std::time::Duration) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if old && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_of_the_utf8_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_blob_appears_whole_under_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let h = sha256_hex(b"abc");
        let p = store.write(&h, b"abc").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"abc");
        assert!(p.ends_with(format!("ba/{h}")));
        // Writing the same blob again replaces it atomically.
        store.write(&h, b"abc").unwrap();
        store.sync(&[p]).unwrap();
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temp file left"
        );
    }
}
