//! Stored texts as `&str` without copying them: a read-only mapping of a blob
//! plus a char-to-byte checkpoint table, so any slice by code-point offsets
//! costs at most one checkpoint stride of counting, however large the text.

use std::collections::VecDeque;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::Mmap;
use rustc_hash::FxHashSet;

use crate::fault;
use crate::store::sha256_hex;

/// A checkpoint records the byte offset of every `CHECKPOINT_STRIDE`-th char.
pub const CHECKPOINT_STRIDE: u64 = 4096;

/// Char count and checkpoints of a text, computed once when it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextShape {
    pub length_chars: u64,
    /// `checkpoints[i]` is the byte offset of char `i * CHECKPOINT_STRIDE`;
    /// empty for ASCII text, where chars and bytes coincide.
    pub checkpoints: Vec<u64>,
}

impl TextShape {
    /// Measures a text in one pass.
    pub fn of(text: &str) -> TextShape {
        let bytes = text.as_bytes();
        if bytes.is_ascii() {
            return TextShape {
                length_chars: bytes.len() as u64,
                checkpoints: Vec::new(),
            };
        }
        let mut checkpoints = Vec::with_capacity(bytes.len() / CHECKPOINT_STRIDE as usize + 1);
        // Char starts are counted a block at a time (a count the compiler
        // vectorizes); only a block where the next checkpoint's char starts
        // is walked byte by byte (one in 64 at most).
        const BLOCK: usize = 64;
        let mut chars = 0u64;
        let mut next = 0u64; // the char index of the next checkpoint
        for (n, block) in bytes.chunks(BLOCK).enumerate() {
            let starts = count_chars(block);
            if next < chars + starts {
                for (j, &b) in block.iter().enumerate() {
                    if !is_continuation(b) {
                        if chars == next {
                            checkpoints.push((n * BLOCK + j) as u64);
                            next += CHECKPOINT_STRIDE;
                        }
                        chars += 1;
                    }
                }
            } else {
                chars += starts;
            }
        }
        TextShape {
            length_chars: chars,
            checkpoints,
        }
    }

    /// The checkpoints as stored in SQLite (u64 little-endian), None for ASCII.
    pub fn checkpoints_blob(&self) -> Option<Vec<u8>> {
        if self.checkpoints.is_empty() {
            return None;
        }
        Some(
            self.checkpoints
                .iter()
                .flat_map(|c| c.to_le_bytes())
                .collect(),
        )
    }

    /// Reads checkpoints back from their stored form.
    pub fn from_stored(length_chars: u64, blob: Option<&[u8]>) -> TextShape {
        let checkpoints = blob
            .map(|b| {
                b.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            })
            .unwrap_or_default();
        TextShape {
            length_chars,
            checkpoints,
        }
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Counts the chars of a UTF-8 byte slice (the bytes that do not continue
/// a char). Summed 64 bytes at a time into a byte, which the compiler
/// turns into vector compares: `filter().count()` over the bytes stayed a
/// loop of a byte at a time, and counting chars was a tenth of the
/// instructions of laying out an HTML page's passages.
pub fn count_chars(bytes: &[u8]) -> u64 {
    let starts = |chunk: &[u8]| {
        chunk
            .iter()
            .fold(0u8, |n, &b| n + u8::from(!is_continuation(b)))
    };
    let mut chunks = bytes.chunks_exact(64);
    let mut n: u64 = (&mut chunks).map(|c| u64::from(starts(c))).sum();
    n += u64::from(starts(chunks.remainder()));
    n
}

enum Backing {
    Empty,
    /// A range of a mapped pack file.
    Mapped {
        pack: Arc<Pack>,
        start: usize,
        end: usize,
    },
    Owned(String),
}

/// A pack file mapped read-only, watched for truncation (`fault`), with its
/// file kept open so that its current size can be checked before a text of
/// it is first read.
pub struct Pack {
    // Declared first so it is dropped first: the range is unwatched before
    // it is unmapped (see `fault`).
    watch: fault::Watch,
    map: Mmap,
    file: File,
    /// The pack's name, and where its damage is recorded once found.
    name: String,
    log: Arc<DamageLog>,
    recorded: AtomicBool,
    /// The texts of this pack file found to hash to their keys
    /// ([`VerifiedTexts`]), shared with the other mappings of the same file
    /// (`Store` keeps it by the file's [`PackFile`] identity).
    verified: Arc<VerifiedTexts>,
    /// The file as opened: device, inode, size, times.
    file_id: PackFile,
    /// Texts of this mapping hashed (`Text::in_pack`), for tests.
    hashed: AtomicU64,
}

/// The texts of one pack file found to hash to their keys, each as a digest
/// of (offset, length, key) (`verified_digest`): a text opened again once the
/// store's cache let it go (8 192 kept, a search's hits among 60 000 texts),
/// or once the daemon idled and dropped its mappings, is not hashed again
/// while the file is the one verified ([`PackFile`]). At most
/// [`MAX_VERIFIED`] (about 9 bytes each); past that they start over.
#[derive(Debug, Default)]
pub struct VerifiedTexts {
    set: Mutex<FxHashSet<u64>>,
}

impl VerifiedTexts {
    /// Texts remembered.
    pub fn len(&self) -> usize {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn contains(&self, digest: u64) -> bool {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&digest)
    }

    /// Remembers the text at `[offset, offset + length_bytes)` under key
    /// `hash` as verified: for the texts a load hashed from the very bytes
    /// it wrote there (`Store::vouch_written`).
    pub fn vouch(&self, offset: u64, length_bytes: u64, hash: &str) {
        self.insert(verified_digest(offset, length_bytes, hash));
    }

    fn insert(&self, digest: u64) {
        let mut set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX_VERIFIED {
            *set = FxHashSet::default();
        }
        set.insert(digest);
    }
}

/// What tells a pack file from another put at its path, or from itself
/// written since: its device and inode, size, and modification and change
/// times (ns). Packs are never written once in place; a file whose identity
/// moved is hashed again, text by text, as it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackFile {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl PackFile {
    pub fn of(meta: &std::fs::Metadata) -> PackFile {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
            PackFile {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let ns = |t: std::io::Result<std::time::SystemTime>| {
                t.ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128)
            };
            PackFile {
                dev: 0,
                ino: 0,
                len: meta.len(),
                mtime_ns: ns(meta.modified()),
                ctime_ns: ns(meta.created()),
            }
        }
    }
}

/// Texts remembered as verified in one pack file, at most: some 2.4 MB.
pub const MAX_VERIFIED: usize = 1 << 17;

/// What a pack remembers of a text it verified: a 64-bit digest (SipHash)
/// of the text's place and key. Two texts alike in it are not to be met
/// (one chance in 2^47 among the 2^17 kept), and one would only be served
/// unhashed, as it would be while the store's cache held it.
fn verified_digest(offset: u64, length_bytes: u64, hash: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    (offset, length_bytes, hash).hash(&mut h);
    h.finish()
}

/// The packs found cut short while mapped, each with the fault count when it
/// was recorded, most recent last (a bounded list: damage is rare). A call
/// that saw the fault count move while it ran asks which packs were recorded
/// since it started.
#[derive(Debug, Default)]
pub struct DamageLog {
    entries: Mutex<VecDeque<(u64, String)>>,
}

/// Damaged packs remembered.
const DAMAGE_LOG_ENTRIES: usize = 1024;

impl DamageLog {
    fn record(&self, name: &str) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.push_back((fault::faults(), name.to_owned()));
        while e.len() > DAMAGE_LOG_ENTRIES {
            e.pop_front();
        }
    }

    /// Names of the packs recorded damaged at a fault count past `faults`.
    pub fn since(&self, faults: u64) -> Vec<String> {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<String> = Vec::new();
        for (at, name) in e.iter() {
            if *at > faults && !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }
}

impl Drop for Pack {
    fn drop(&mut self) {
        self.record_damage();
    }
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack")
            .field("len", &self.map.len())
            .field("damaged", &self.damaged())
            .finish()
    }
}

impl Pack {
    /// Maps a pack file, refusing one shorter than `at_least` bytes (a range
    /// the store recorded in it) or empty. Never maps past the file's end.
    pub fn open(
        path: &Path,
        at_least: u64,
        name: &str,
        log: Arc<DamageLog>,
    ) -> std::io::Result<Pack> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let len = meta.len();
        if len == 0 || len < at_least {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} has {len} bytes, fewer than the {at_least} its stored texts need",
                    path.display()
                ),
            ));
        }
        // SAFETY: packs are never written once renamed into place. If one is
        // truncated from outside while mapped, a read past its new end faults;
        // `fault` catches that (zeros are read, the mapping is marked
        // damaged) and the calls that read it fail instead of serving it.
        let map = unsafe { Mmap::map(&file)? };
        let watch = fault::watch(map.as_ptr(), map.len());
        Ok(Pack {
            watch,
            map,
            file,
            name: name.to_owned(),
            log,
            recorded: AtomicBool::new(false),
            verified: Arc::default(),
            file_id: PackFile::of(&meta),
            hashed: AtomicU64::new(0),
        })
    }

    /// This mapping with the texts already verified in its file (by an
    /// earlier mapping of it: `Store` keeps them by [`Pack::file_id`]).
    pub fn with_verified(mut self, verified: Arc<VerifiedTexts>) -> Pack {
        self.verified = verified;
        self
    }

    /// The texts of this mapping's file found to hash to their keys.
    pub fn verified(&self) -> &Arc<VerifiedTexts> {
        &self.verified
    }

    /// The file as it was when mapped.
    pub fn file_id(&self) -> PackFile {
        self.file_id
    }

    /// How many texts of this mapping `Text::in_pack` has hashed.
    pub fn texts_hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    fn was_verified(&self, digest: u64) -> bool {
        self.verified.contains(digest)
    }

    fn mark_verified(&self, digest: u64) {
        self.verified.insert(digest);
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The file's size now (smaller than the mapping once it was cut short).
    pub fn file_len(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Whether a read of this mapping faulted: the file was cut short.
    pub fn damaged(&self) -> bool {
        self.watch.damaged()
    }

    /// Records this pack in its damage log if it is damaged (once); true
    /// when it is. Called by whoever stops using a mapping: the store when it
    /// drops it from its caches, and the last holder (`Drop`).
    pub fn record_damage(&self) -> bool {
        if !self.damaged() {
            return false;
        }
        if !self.recorded.swap(true, Ordering::SeqCst) {
            self.log.record(&self.name);
        }
        true
    }

    fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Drops the pages of bytes `[start, end)` (widened to whole pages) from
    /// this process's resident set; a later read maps them again from the
    /// page cache or the file. Sound because the mapping is shared and read
    /// only, and packs are never written once in place: the bytes read again
    /// are the bytes read before (a pack cut short meanwhile faults, as any
    /// first read of it would: `fault`). A no-op where `madvise` is missing.
    fn release(&self, start: usize, end: usize) {
        let end = end.min(self.map.len());
        if start >= end {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: as above: no byte of this shared, read-only mapping
            // changes when its pages are dropped and read in again.
            let done = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
            if let Err(e) = done {
                tracing::debug!(pack = %self.name, error = %e, "could not drop a pack's pages");
            }
        }
    }
}

/// Bytes of texts read once (the index build's) kept mapped in this process
/// before their pages are dropped ([`Releaser`]).
pub const RELEASE_BYTES: usize = 1 << 20;

/// Drops the pages of texts a reader is done with, a run of neighbouring
/// texts of one pack at a time (one `madvise` for every [`RELEASE_BYTES`]
/// or so, not one a text): the index build reads each text once, so a
/// gigabyte indexed does not stay in the daemon's resident set as mapped
/// file pages (`RssFile`), which count in its peak memory beside the build's
/// heap. What remains pending is dropped when the releaser is.
#[derive(Default)]
pub struct Releaser {
    pending: Option<(Arc<Pack>, usize, usize)>,
}

impl Releaser {
    /// `text` has been read: its pages go with the run they extend, or start
    /// a new run (the last one's dropped first).
    pub fn done(&mut self, text: &Text) {
        let Backing::Mapped { pack, start, end } = &text.backing else {
            return;
        };
        match &mut self.pending {
            // The next text of the same pack, at most a page past the run:
            // a load appends its texts one after the other.
            Some((p, s, e)) if Arc::ptr_eq(p, pack) && *start >= *s && *start <= *e + 4096 => {
                *e = (*e).max(*end);
            }
            _ => {
                self.flush();
                self.pending = Some((pack.clone(), *start, *end));
            }
        }
        if let Some((_, s, e)) = &self.pending
            && e - s >= RELEASE_BYTES
        {
            self.flush();
        }
    }

    /// Drops the pending run's pages now.
    pub fn flush(&mut self) {
        if let Some((pack, start, end)) = self.pending.take() {
            pack.release(start, end);
        }
    }
}

impl Drop for Releaser {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Bytes between two of a text's line marks ([`Text::line_of`]).
const LINE_BLOCK: usize = 8 << 10;

/// One stored text, readable by code-point offsets.
pub struct Text {
    backing: Backing,
    shape: TextShape,
    /// Newlines before each [`LINE_BLOCK`]-th byte, as far as one was asked
    /// for ([`Text::line_of`]): a few bytes for each 64 KiB of the text.
    lines: std::sync::Mutex<Vec<u64>>,
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Text")
            .field("bytes", &self.as_str().len())
            .field("chars", &self.shape.length_chars)
            .finish()
    }
}

impl Text {
    /// A text stored at `[offset, offset + length_bytes)` of a mapped pack,
    /// verified: the range lies inside the mapping and inside the file as it
    /// is now, its bytes hash to `hash` (the key it is stored under, so the
    /// char count and checkpoints recorded with it hold too), no read of them
    /// faulted, and they are UTF-8. Otherwise the reason, for `corrupt_text`:
    /// a damaged text is never returned. The hash and the UTF-8 check are
    /// made once a pack file (`Pack::verified`; `Pack::texts_hashed` counts
    /// them); the range and the damage are checked at every open.
    pub fn in_pack(
        pack: Arc<Pack>,
        offset: u64,
        length_bytes: u64,
        shape: TextShape,
        hash: &str,
    ) -> Result<Text, String> {
        if length_bytes == 0 {
            return if sha256_hex(b"") == hash {
                Ok(Text {
                    backing: Backing::Empty,
                    shape,
                    lines: Default::default(),
                })
            } else {
                Err("recorded as empty, but its hash is not that of an empty text".into())
            };
        }
        let end = offset.checked_add(length_bytes);
        let file_len = pack
            .file_len()
            .map_err(|e| format!("its pack cannot be read: {e}"))?;
        let Some(end) = end.filter(|&e| e <= pack.len() as u64 && e <= file_len) else {
            return Err(format!(
                "recorded at bytes {offset}..+{length_bytes}, but its pack has only {file_len} bytes"
            ));
        };
        let (start, end) = (offset as usize, end as usize);
        let bytes = &pack.bytes()[start..end];
        // Hashed once a pack file: its bytes do not change while it is the
        // same file (packs are never written once in place; one cut short is
        // caught by the size check above and by `damaged`, one written or
        // replaced has another `PackFile`), as a text the store's cache
        // keeps is not hashed again either.
        let digest = verified_digest(offset, length_bytes, hash);
        if !pack.was_verified(digest) {
            pack.hashed.fetch_add(1, Ordering::Relaxed);
            let actual = sha256_hex(bytes);
            if pack.damaged() {
                return Err("its pack was cut short while it was read".into());
            }
            if actual != hash {
                return Err(format!(
                    "its bytes hash to {actual}, not to the {hash} it was stored under"
                ));
            }
            if std::str::from_utf8(bytes).is_err() {
                return Err("not valid UTF-8".into());
            }
            pack.mark_verified(digest);
        } else if pack.damaged() {
            return Err("its pack was cut short while it was read".into());
        }
        Ok(Text {
            backing: Backing::Mapped { pack, start, end },
            shape,
            lines: Default::default(),
        })
    }

    /// Whether the pack this text lies in was found cut short (a read of it
    /// faulted): what was read of it may be zeros, not the text.
    pub fn damaged(&self) -> bool {
        match &self.backing {
            Backing::Mapped { pack, .. } => pack.damaged(),
            _ => false,
        }
    }

    /// A text held in memory (tests, inline content before it is stored).
    pub fn from_string(s: String) -> Text {
        let shape = TextShape::of(&s);
        Text {
            backing: Backing::Owned(s),
            shape,
            lines: Default::default(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.backing {
            Backing::Empty => "",
            // SAFETY: validated as UTF-8 in `in_pack`, and packs are never
            // written. A pack cut short from outside reads as zeros from then
            // on (`fault`): still one-byte chars, and the call that read them
            // fails.
            Backing::Mapped { pack, start, end } => unsafe {
                std::str::from_utf8_unchecked(&pack.bytes()[*start..*end])
            },
            Backing::Owned(s) => s,
        }
    }

    pub fn len_chars(&self) -> u64 {
        self.shape.length_chars
    }

    /// Whether every char is one byte (no checkpoints needed).
    pub fn is_ascii(&self) -> bool {
        self.shape.checkpoints.is_empty()
    }

    /// Byte offset of char `ch` (`ch` may equal the length: the end).
    pub fn byte_of(&self, ch: u64) -> usize {
        let s = self.as_str();
        if self.is_ascii() {
            return ch.min(s.len() as u64) as usize;
        }
        if ch >= self.shape.length_chars {
            return s.len();
        }
        let cp = (ch / CHECKPOINT_STRIDE) as usize;
        let mut byte = self.shape.checkpoints[cp] as usize;
        let mut left = ch % CHECKPOINT_STRIDE;
        let bytes = s.as_bytes();
        while left > 0 {
            byte += 1;
            while byte < bytes.len() && is_continuation(bytes[byte]) {
                byte += 1;
            }
            left -= 1;
        }
        byte
    }

    /// Char offset of byte `byte`, which must lie on a char boundary.
    pub fn char_of(&self, byte: usize) -> u64 {
        if self.is_ascii() {
            return byte as u64;
        }
        let cps = &self.shape.checkpoints;
        let i = cps
            .partition_point(|&b| b as usize <= byte)
            .saturating_sub(1);
        let from = cps[i] as usize;
        i as u64 * CHECKPOINT_STRIDE + count_chars(&self.as_str().as_bytes()[from..byte])
    }

    /// The number (from 1) of the line that holds byte `at` (clamped to the
    /// text): one more than the newlines before it. Counted from the last
    /// mark at or before it; the marks up to it are counted once and kept,
    /// so a text's first call reads up to `at` and the next ones at most
    /// 8 KiB (a match's unit in a page of megabytes took a count from its
    /// first byte each time: 90% of a unit's time on rustdoc pages). The
    /// marks cost 8 bytes per 8 KiB of the text read so far, a thousandth.
    pub fn line_of(&self, at: usize) -> u64 {
        let bytes = self.as_str().as_bytes();
        let at = at.min(bytes.len());
        let block = at / LINE_BLOCK;
        let newlines =
            |from: usize, to: usize| memchr::memchr_iter(b'\n', &bytes[from..to]).count() as u64;
        let before = {
            let mut marks = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            if marks.is_empty() {
                marks.push(0);
            }
            while marks.len() <= block {
                let i = marks.len();
                let next = marks[i - 1] + newlines((i - 1) * LINE_BLOCK, i * LINE_BLOCK);
                marks.push(next);
            }
            marks[block]
        };
        1 + before + newlines(block * LINE_BLOCK, at)
    }

    /// The text of chars `[start, end)`, clamped to the text.
    pub fn slice(&self, start: u64, end: u64) -> &str {
        let (b0, b1) = self.byte_range(start, end);
        &self.as_str()[b0..b1]
    }

    /// Byte range of chars `[start, end)`, clamped to the text.
    pub fn byte_range(&self, start: u64, end: u64) -> (usize, usize) {
        let end = end.min(self.shape.length_chars);
        let start = start.min(end);
        let b0 = self.byte_of(start);
        // Walk from b0 when the range is short rather than from a checkpoint.
        let b1 = if end - start <= CHECKPOINT_STRIDE {
            advance_chars(self.as_str(), b0, end - start)
        } else {
            self.byte_of(end)
        };
        (b0, b1)
    }
}

/// The byte offset `n` chars after byte `from` (or the end of `s`).
pub fn advance_chars(s: &str, from: usize, n: u64) -> usize {
    let bytes = s.as_bytes();
    let mut byte = from;
    let mut left = n;
    while left > 0 && byte < bytes.len() {
        byte += 1;
        while byte < bytes.len() && is_continuation(bytes[byte]) {
            byte += 1;
        }
        left -= 1;
    }
    byte
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn python_slice(s: &str, a: usize, b: usize) -> String {
        s.chars().skip(a).take(b.saturating_sub(a)).collect()
    }

    /// The line of a byte, counted from the start each time.
    fn counted_line(s: &str, at: usize) -> u64 {
        1 + s.as_bytes()[..at.min(s.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count() as u64
    }

    #[test]
    fn lines_are_counted_from_marks_kept_as_they_are_asked() {
        // Lines of uneven lengths over several marks' blocks, some none at
        // all (a 100 KiB line spans a mark), multi-byte chars among them.
        let mut s = String::new();
        for i in 0..3000 {
            s.push_str(&"añ".repeat(i % 37));
            s.push('\n');
            if i == 1500 {
                s.push_str(&"x".repeat(100 << 10));
            }
        }
        assert!(s.len() > 4 * LINE_BLOCK, "{}", s.len());
        let t = Text::from_string(s.clone());
        // Far first, then back, then past the end (clamped).
        let mut at: Vec<usize> = vec![
            s.len() - 1,
            3,
            LINE_BLOCK,
            LINE_BLOCK - 1,
            s.len(),
            s.len() + 9,
        ];
        at.extend((0..s.len()).step_by(4099));
        for a in at {
            let b = (0..=a.min(s.len()))
                .rev()
                .find(|&b| s.is_char_boundary(b))
                .unwrap();
            assert_eq!(t.line_of(b), counted_line(&s, b), "byte {b}");
        }
        assert_eq!(t.line_of(0), 1);
        assert_eq!(Text::from_string(String::new()).line_of(5), 1);
    }

    #[test]
    fn ascii_text_has_no_checkpoints() {
        let shape = TextShape::of("plain ascii");
        assert_eq!(shape.length_chars, 11);
        assert!(shape.checkpoints.is_empty());
        assert!(shape.checkpoints_blob().is_none());
    }

    #[test]
    fn slices_count_code_points_across_checkpoints() {
        let unit = "añ😀b";
        let s: String = unit.repeat(5000);
        let t = Text::from_string(s.clone());
        assert_eq!(t.len_chars(), 20_000);
        for (a, b) in [
            (0, 1),
            (1, 2),
            (4095, 4097),
            (8191, 12_300),
            (19_999, 20_000),
            (5, 5),
        ] {
            assert_eq!(
                t.slice(a, b),
                python_slice(&s, a as usize, b as usize),
                "{a}..{b}"
            );
        }
        assert_eq!(t.slice(19_990, 99_999).chars().count(), 10);
        for ch in [0u64, 1, 2, 3, 4096, 4097, 16_383, 19_999, 20_000] {
            assert_eq!(t.char_of(t.byte_of(ch)), ch);
        }
    }

    #[test]
    fn stored_checkpoints_round_trip() {
        let shape = TextShape::of(&"é".repeat(10_000));
        let blob = shape.checkpoints_blob().unwrap();
        assert_eq!(
            TextShape::from_stored(shape.length_chars, Some(&blob)),
            shape
        );
    }

    #[test]
    fn a_text_in_a_pack_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, b"xxh\xc3\xa9llo\xff").unwrap();
        let log = Arc::new(DamageLog::default());
        let pack = Arc::new(Pack::open(&p, 9, "b", log.clone()).unwrap());
        let shape = TextShape::of("héllo");
        let hash = sha256_hex("héllo".as_bytes());
        let t = Text::in_pack(pack.clone(), 2, 6, shape.clone(), &hash).unwrap();
        assert_eq!(t.slice(1, 3), "él");
        assert!(!t.damaged());
        let e = Text::in_pack(pack.clone(), 2, 60, shape.clone(), &hash).unwrap_err();
        assert!(e.contains("only 9 bytes"), "{e}");
        let e = Text::in_pack(pack.clone(), 3, 6, shape.clone(), &hash).unwrap_err();
        assert!(e.contains("hash to"), "{e}");
        let bad = sha256_hex(b"\xc3\xa9llo\xff");
        let e = Text::in_pack(pack, 3, 6, shape, &bad).unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        assert!(
            Pack::open(&p, 10, "b", log.clone()).is_err(),
            "shorter than a recorded range"
        );
        assert!(log.since(0).is_empty());
    }

    #[test]
    fn a_text_is_hashed_once_a_mapping_and_its_range_checked_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, b"xxh\xc3\xa9llo, world").unwrap();
        let log = Arc::new(DamageLog::default());
        let pack = Arc::new(Pack::open(&p, 15, "b", log.clone()).unwrap());
        let shape = TextShape::of("héllo");
        let hash = sha256_hex("héllo".as_bytes());
        let open = |pack: &Arc<Pack>, key: &str| {
            Text::in_pack(pack.clone(), 2, 6, shape.clone(), key).map(|t| t.as_str().to_owned())
        };
        assert_eq!(open(&pack, &hash).unwrap(), "héllo");
        assert_eq!(open(&pack, &hash).unwrap(), "héllo");
        assert_eq!(pack.texts_hashed(), 1, "opened again: not hashed again");
        // The same bytes under another key are hashed, and refused.
        let other = sha256_hex(b"hello");
        let e = open(&pack, &other).unwrap_err();
        assert!(e.contains("hash to"), "{e}");
        assert_eq!(pack.texts_hashed(), 2);
        // Another range of the same mapping is hashed on its own.
        let world = sha256_hex(b"world");
        let t = Text::in_pack(pack.clone(), 10, 5, TextShape::of("world"), &world).unwrap();
        assert_eq!(t.as_str(), "world");
        assert_eq!(pack.texts_hashed(), 3);
        // A new mapping of the file hashes again, unless it is given what
        // was verified in the file (the store does while the file is the same).
        let again = Arc::new(Pack::open(&p, 15, "b", log.clone()).unwrap());
        assert_eq!(again.file_id(), pack.file_id());
        assert_eq!(open(&again, &hash).unwrap(), "héllo");
        assert_eq!(again.texts_hashed(), 1);
        let shared = Arc::new(
            Pack::open(&p, 15, "b", log)
                .unwrap()
                .with_verified(pack.verified().clone()),
        );
        assert_eq!(open(&shared, &hash).unwrap(), "héllo");
        assert_eq!(shared.texts_hashed(), 0);
        // A file cut short after the text was verified: its range is
        // checked against the file's size at every open.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(5)
            .unwrap();
        let e = open(&pack, &hash).unwrap_err();
        assert!(e.contains("only 5 bytes"), "{e}");
        assert_eq!(pack.texts_hashed(), 3);
    }

    #[test]
    fn verified_texts_remembered_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, b"abc").unwrap();
        let pack = Pack::open(&p, 3, "b", Arc::new(DamageLog::default())).unwrap();
        for i in 0..(MAX_VERIFIED as u64 + 10) {
            pack.mark_verified(verified_digest(i, 1, "k"));
        }
        let kept = pack.verified().len();
        assert!((10..=MAX_VERIFIED).contains(&kept), "{kept}");
        assert!(pack.was_verified(verified_digest(MAX_VERIFIED as u64 + 9, 1, "k")));
        assert!(
            !pack.was_verified(verified_digest(0, 1, "k")),
            "started over"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_pack_cut_short_while_mapped_reads_zeros_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        let body = "x".repeat(3 * 65_536);
        std::fs::write(&p, &body).unwrap();
        let log = Arc::new(DamageLog::default());
        let pack = Arc::new(Pack::open(&p, body.len() as u64, "b", log.clone()).unwrap());
        let hash = sha256_hex(body.as_bytes());
        let shape = TextShape::of(&body);
        let t = Text::in_pack(pack.clone(), 0, body.len() as u64, shape, &hash).unwrap();
        assert_eq!(&t.as_str()[100_000..100_003], "xxx");
        let before = fault::faults();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        // A SIGBUS without the handler: the test process would die here.
        assert_eq!(&t.as_str().as_bytes()[100_000..100_003], b"\0\0\0");
        assert!(t.damaged() && pack.damaged());
        assert!(fault::faults() > before);
        drop(t);
        drop(pack);
        assert_eq!(log.since(before), vec!["b".to_owned()]);
    }

    /// Kilobytes of this process's resident set in the mapping that holds
    /// `addr` (`/proc/self/smaps`).
    #[cfg(target_os = "linux")]
    fn resident_kb_at(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = range.split_once('-')
                && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                inside = a <= addr && addr < b;
            } else if inside && let Some(kb) = line.strip_prefix("Rss:") {
                return kb.trim().trim_end_matches("kB").trim().parse().unwrap();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    /// Texts read once give their pages back, a run of neighbours at a time:
    /// the mapping's resident set falls, and the texts read the same after.
    #[cfg(target_os = "linux")]
    #[test]
    fn texts_done_with_leave_the_resident_set_and_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        let parts: Vec<String> = (0..8)
            .map(|i| format!("{i}").repeat(RELEASE_BYTES / 2 + 1000))
            .collect();
        std::fs::write(&p, parts.concat()).unwrap();
        let len = parts.iter().map(String::len).sum::<usize>();
        let log = Arc::new(DamageLog::default());
        let pack = Arc::new(Pack::open(&p, len as u64, "b", log).unwrap());
        let mut at = 0u64;
        let texts: Vec<Text> = parts
            .iter()
            .map(|s| {
                let t = Text::in_pack(
                    pack.clone(),
                    at,
                    s.len() as u64,
                    TextShape::of(s),
                    &sha256_hex(s.as_bytes()),
                )
                .unwrap();
                at += s.len() as u64;
                t
            })
            .collect();
        let addr = pack.bytes().as_ptr() as usize;
        // Opening hashed every byte: all of it is resident.
        let all_kb = (len / 1024) as u64;
        assert!(
            resident_kb_at(addr) >= all_kb - 8,
            "{}",
            resident_kb_at(addr)
        );
        let mut releaser = Releaser::default();
        for t in &texts[..3] {
            releaser.done(t);
        }
        // A run of RELEASE_BYTES went at once; the third text is pending.
        let kb = resident_kb_at(addr);
        assert!(kb <= all_kb - (RELEASE_BYTES / 1024) as u64 + 8, "{kb}");
        for t in &texts[3..] {
            releaser.done(t);
        }
        drop(releaser);
        assert!(resident_kb_at(addr) <= 8, "{}", resident_kb_at(addr));
        for (t, s) in texts.iter().zip(&parts) {
            assert_eq!(t.as_str(), s.as_str());
        }
        assert!(resident_kb_at(addr) >= all_kb - 8);
        assert!(!pack.damaged());
        // A text held in memory has no pages: skipped. A text of another
        // pack ends the run: its pages go at once.
        let q = dir.path().join("c");
        std::fs::write(&q, "other").unwrap();
        let other = Pack::open(&q, 5, "c", Arc::new(DamageLog::default())).unwrap();
        let other = Text::in_pack(
            Arc::new(other),
            0,
            5,
            TextShape::of("other"),
            &sha256_hex(b"other"),
        )
        .unwrap();
        let mut releaser = Releaser::default();
        releaser.done(&texts[0]);
        releaser.done(&Text::from_string("in memory".into()));
        assert!(resident_kb_at(addr) >= all_kb - 8, "still pending");
        releaser.done(&other);
        let kb = resident_kb_at(addr);
        assert!(kb <= all_kb - parts[0].len() as u64 / 1024 + 8, "{kb}");
    }

    /// The checkpoints by their definition: the byte offset of every
    /// `CHECKPOINT_STRIDE`-th char.
    fn reference_shape(s: &str) -> TextShape {
        let checkpoints = if s.is_ascii() {
            Vec::new()
        } else {
            s.char_indices()
                .step_by(CHECKPOINT_STRIDE as usize)
                .map(|(i, _)| i as u64)
                .collect()
        };
        TextShape {
            length_chars: s.chars().count() as u64,
            checkpoints,
        }
    }

    proptest! {
        #[test]
        fn shapes_match_their_definition(
            units in prop::collection::vec(prop::sample::select(vec!["a", "é", "日", "😀", "ab\n", "\u{301}"]), 0..14_000)
        ) {
            let s: String = units.concat();
            prop_assert_eq!(TextShape::of(&s), reference_shape(&s));
        }

        #[test]
        fn chars_are_counted_as_str_counts_them(s in "\\PC{0,300}", from in 0usize..300) {
            let from = (0..=from.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            prop_assert_eq!(count_chars(&s.as_bytes()[from..]), s[from..].chars().count() as u64);
        }

        #[test]
        fn any_slice_equals_python_slicing(s in "\\PC{0,300}", a in 0usize..400, len in 0usize..400) {
            let t = Text::from_string(s.clone());
            let b = a + len;
            prop_assert_eq!(t.slice(a as u64, b as u64), python_slice(&s, a, b));
        }
    }
}
