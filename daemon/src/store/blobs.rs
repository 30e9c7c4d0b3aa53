//! The content-addressed blob store: each distinct text is stored once,
//! keyed by the SHA-256 of its bytes, inside an append-once *pack* file
//! (one per load), at an offset the `blobs` table records.
//!
//! A pack is written under a temporary name, synced, renamed into
//! `packs/`, and its folder synced, all before the SQLite commit that
//! refers to it: a crash leaves either no trace in SQLite or a complete
//! pack. A pack is never written again once renamed. One pack per load
//! costs one file creation and one fsync, where a file per blob cost one of
//! each per text (measured in ARCHITECTURE.md).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::layout::{Layout, TMP_PACK_SUFFIX, pack_file_in, pack_name};
use crate::text::PackFile;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where packs live.
#[derive(Debug, Clone)]
pub struct BlobStore {
    packs: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens the blob store of a data directory, creating its folders.
    pub fn open(layout: &Layout) -> io::Result<BlobStore> {
        let packs = layout.packs_dir();
        let tmp = layout.tmp_dir();
        fs::create_dir_all(&packs)?;
        fs::create_dir_all(&tmp)?;
        Ok(BlobStore { packs, tmp })
    }

    /// The path of a pack by name.
    pub fn pack_path(&self, pack: &str) -> PathBuf {
        pack_file_in(&self.packs, pack)
    }

    /// Starts a new pack.
    pub fn new_pack(&self) -> io::Result<PackWriter> {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let tmp_path = self.tmp.join(format!("{name}{TMP_PACK_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        Ok(PackWriter {
            name,
            tmp_path,
            file: BufWriter::with_capacity(1 << 20, file),
            len: 0,
            packs: self.packs.clone(),
        })
    }

    /// Names of every pack on disk.
    pub fn pack_names(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.packs)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(stem) = pack_name(&name) {
                out.push(stem.to_owned());
            }
        }
        Ok(out)
    }

    /// Removes temporary files old enough that no live load can own them
    /// (left by a crash).
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

/// A pack being written: blobs are appended, then `finish` makes it durable
/// and visible under its final name.
#[derive(Debug)]
pub struct PackWriter {
    name: String,
    tmp_path: PathBuf,
    file: BufWriter<File>,
    len: u64,
    packs: PathBuf,
}

impl PackWriter {
    /// Appends a blob; returns its offset in the pack.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let at = self.len;
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(at)
    }

    /// Syncs the pack, renames it into place and syncs the folder. An empty
    /// pack is removed instead. Returns the pack's name when one was kept.
    pub fn finish(self) -> io::Result<Option<String>> {
        Ok(self.finish_identified()?.map(|(name, _)| name))
    }

    /// [`PackWriter::finish`], with the identity of the file as it is in
    /// place (taken on the descriptor written through, after the rename,
    /// which moves its change time): what the store vouches for the texts
    /// it wrote (`Store::vouch_written`). None when it cannot be read: the
    /// pack is in place all the same, and its texts are hashed when opened.
    pub fn finish_identified(self) -> io::Result<Option<(String, Option<PackFile>)>> {
        let PackWriter {
            name,
            tmp_path,
            file,
            len,
            packs,
        } = self;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        if len == 0 {
            drop(file);
            fs::remove_file(&tmp_path)?;
            return Ok(None);
        }
        file.sync_all()?;
        fs::rename(&tmp_path, pack_file_in(&packs, &name))?;
        sync_dir(&packs)?;
        let id = file.metadata().ok().map(|m| PackFile::of(&m));
        Ok(Some((name, id)))
    }

    /// Drops an unfinished pack.
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.tmp_path);
    }
}

/// Makes a rename inside `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_of_the_bytes() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_pack_appears_whole_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&Layout::new(dir.path())).unwrap();
        let mut w = store.new_pack().unwrap();
        assert_eq!(w.append(b"abc").unwrap(), 0);
        assert_eq!(w.append("héllo".as_bytes()).unwrap(), 3);
        let tmp_count = || {
            fs::read_dir(Layout::new(dir.path()).tmp_dir())
                .unwrap()
                .count()
        };
        assert_eq!(tmp_count(), 1, "written under a temporary name first");
        assert!(
            store.pack_names().unwrap().is_empty(),
            "not visible before finish"
        );
        let name = w.finish().unwrap().unwrap();
        assert_eq!(
            fs::read(store.pack_path(&name)).unwrap(),
            "abchéllo".as_bytes()
        );
        assert_eq!(tmp_count(), 0);
        assert_eq!(store.pack_names().unwrap(), vec![name]);
    }

    #[test]
    fn an_empty_pack_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(&Layout::new(dir.path())).unwrap();
        assert_eq!(store.new_pack().unwrap().finish().unwrap(), None);
        assert!(store.pack_names().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(Layout::new(dir.path()).tmp_dir())
                .unwrap()
                .count(),
            0
        );
    }
}
