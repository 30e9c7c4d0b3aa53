//! Reading one load item on a load thread: an inline text or a file (not a
//! folder), bounded by the size limit, checked to be UTF-8, measured (chars,
//! checkpoints) and hashed.

use super::sources::Item;
use super::{Skip, SkipKind, io_reason};
use crate::engine::CallContext;
use crate::store::documents::FileRead;
use crate::store::files::{FileIdentity, Recorded, now_ns};
use crate::store::sha256_hex;
use crate::text::TextShape;

/// A text read, checked and measured, ready to store; or the stored text
/// of a file found unchanged (`reused`, without its bytes).
pub(super) struct Prepared {
    pub(super) source: String,
    pub(super) hash: String,
    /// The text's bytes; empty when `reused`.
    pub(super) bytes: Vec<u8>,
    /// The text is the store's, reused without reading the file.
    pub(super) reused: bool,
    length_bytes: u64,
    pub(super) shape: TextShape,
    pub(super) hint: Option<u64>,
    /// The file's identity as read (None for inline texts).
    pub(super) file: Option<FileRead>,
    /// When a load last claimed the stored text (`reused` only).
    pub(super) claimed_at: Option<String>,
}

/// A file's path as its document's `source` names it: as written when it
/// is UTF-8 (a copy, without `Path::display`'s formatting), else with each
/// invalid sequence replaced, as `display` shows it.
pub(super) fn shown_path(path: &std::path::Path) -> String {
    path.to_str()
        .map_or_else(|| path.display().to_string(), str::to_owned)
}

impl Prepared {
    /// The stored text a recorded file identity vouches for.
    pub(super) fn reused(source: String, r: Recorded, hint: Option<u64>) -> Prepared {
        Prepared {
            source,
            hash: r.hash,
            bytes: Vec::new(),
            reused: true,
            length_bytes: r.length_bytes,
            shape: r.shape,
            hint,
            file: None,
            claimed_at: Some(r.claimed_at),
        }
    }

    pub(super) fn length_bytes(&self) -> u64 {
        self.length_bytes
    }
}

/// Why a file was not read.
enum ReadError {
    /// Larger than the limit: its size when the metadata told it, none
    /// when the read itself passed the limit.
    TooLarge(Option<u64>),
    Skip(SkipKind, String),
}

/// Reads a regular file of at most `max_bytes`. The file is opened without
/// blocking (a FIFO opens at once instead of waiting for a writer) and
/// checked on the opened descriptor, so what is read is what was checked:
/// FIFOs, sockets and devices are refused, never read. The read itself is
/// bounded, so a file that grows after its size was looked at (or a size
/// the metadata does not tell) still stops at the limit. Returns the bytes,
/// and the file's identity taken on the opened descriptor before the read,
/// with the clock before the open.
fn read_regular_file(
    path: &std::path::Path,
    max_bytes: u64,
) -> Result<(Vec<u8>, Option<FileRead>), ReadError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| ReadError::Skip(SkipKind::Unreadable, io_reason(&e));
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY).bits());
    }
    let read_at_ns = now_ns();
    let file = options.open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(ReadError::Skip(
            SkipKind::Other,
            "is a directory; use a directory source".into(),
        ));
    }
    if !meta.is_file() {
        return Err(ReadError::Skip(
            SkipKind::Other,
            format!(
                "is not a regular file (it is {}); only regular files are loaded",
                file_kind(&meta)
            ),
        ));
    }
    if meta.len() > max_bytes {
        return Err(ReadError::TooLarge(Some(meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::TooLarge(None));
    }
    // A file that changed while it was read is recorded as it was before:
    // the change moved its times on, so its next load reads it again.
    let identity = FileIdentity::of(&meta).filter(|i| i.size == bytes.len() as u64);
    let file = identity.map(|identity| FileRead {
        identity,
        read_at_ns,
    });
    Ok((bytes, file))
}

/// What kind of file a non-regular, non-directory file is, for people.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    let _ = meta;
    "not a plain file"
}

/// Reads, checks and measures one item (runs on a load thread); `files_read`
/// counts the files read.
pub(super) fn read_item(
    item: Item,
    max_bytes: u64,
    ctx: &CallContext,
    files_read: &std::sync::atomic::AtomicU64,
) -> Result<Prepared, Skip> {
    if ctx.cancelled() {
        return Err(Skip::new(SkipKind::Other, "cancelled".into()));
    }
    let too_large = |what: &str, n: u64| {
        Skip::new(
            SkipKind::TooLarge,
            format!(
                "{what}: {:.1} MB is larger than max_file_size_mb ({} MB); split it or raise the limit in the server's config",
                n as f64 / (1 << 20) as f64,
                max_bytes >> 20
            ),
        )
    };
    let (source, bytes, hint, file) = match item {
        Item::Inline {
            content,
            name,
            hint,
        } => {
            let source = name.unwrap_or_else(|| "inline".to_owned());
            if content.len() as u64 > max_bytes {
                return Err(too_large(
                    &format!("inline source {source:?}"),
                    content.len() as u64,
                ));
            }
            (source, content.into_bytes(), hint, None)
        }
        Item::File { path, hint } => {
            let shown = shown_path(&path);
            let (bytes, file) = read_regular_file(&path, max_bytes).map_err(|e| match e {
                ReadError::TooLarge(Some(n)) => too_large(&shown, n),
                ReadError::TooLarge(None) => Skip::new(
                    SkipKind::TooLarge,
                    format!(
                        "{shown}: grew past max_file_size_mb ({} MB) while it was read; load it once it is complete, or raise the limit in the server's config",
                        max_bytes >> 20
                    ),
                ),
                ReadError::Skip(kind, why) => Skip::new(kind, format!("{shown}: {why}")),
            })?;
            files_read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = std::str::from_utf8(&bytes) {
                return Err(Skip::new(
                    SkipKind::NotUtf8,
                    format!(
                        "{shown}: not UTF-8 text (invalid byte at offset {}); only UTF-8 text files can be loaded",
                        e.valid_up_to()
                    ),
                ));
            }
            (shown, bytes, hint, file)
        }
    };
    // Checked above for files; inline content arrived as a String.
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    let shape = TextShape::of(text);
    let hash = sha256_hex(&bytes);
    Ok(Prepared {
        source,
        hash,
        length_bytes: bytes.len() as u64,
        reused: false,
        bytes,
        shape,
        hint,
        file,
        claimed_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_shown_as_display_shows_it() {
        let plain = std::path::Path::new("/src/ünï/lib.rs");
        assert_eq!(shown_path(plain), "/src/ünï/lib.rs");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let invalid = std::path::Path::new(std::ffi::OsStr::from_bytes(b"/src/a\xffb.rs"));
            assert_eq!(shown_path(invalid), invalid.display().to_string());
            assert_eq!(shown_path(invalid), "/src/a\u{fffd}b.rs");
        }
    }
}
