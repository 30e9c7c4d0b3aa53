//! Reading one load item on a load thread: an inline text or a file (not a
//! folder), bounded by the size limit, checked to be UTF-8, measured (chars,
//! checkpoints) and hashed.

use super::sources::Item;
use super::{Skip, SkipKind, io_reason};
use crate::engine::CallContext;
use crate::store::sha256_hex;
use crate::text::TextShape;

/// A text read, checked and measured, ready to store.
pub(super) struct Prepared {
    pub(super) source: String,
    pub(super) hash: String,
    pub(super) bytes: Vec<u8>,
    pub(super) shape: TextShape,
    pub(super) hint: Option<u64>,
}

/// Reads, checks and measures one item (runs on a load thread).
pub(super) fn read_item(item: Item, max_bytes: u64, ctx: &CallContext) -> Result<Prepared, Skip> {
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
    let (source, bytes, hint) = match item {
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
            (source, content.into_bytes(), hint)
        }
        Item::File { path, hint } => {
            let shown = path.display().to_string();
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    return Err(Skip::new(
                        SkipKind::Other,
                        format!("{shown}: is a directory; use a directory source"),
                    ));
                }
                Ok(m) if m.len() > max_bytes => return Err(too_large(&shown, m.len())),
                Ok(_) => {}
                Err(e) => {
                    return Err(Skip::new(
                        SkipKind::Unreadable,
                        format!("{shown}: {}", io_reason(&e)),
                    ));
                }
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                Skip::new(SkipKind::Unreadable, format!("{shown}: {}", io_reason(&e)))
            })?;
            if bytes.len() as u64 > max_bytes {
                return Err(too_large(&shown, bytes.len() as u64));
            }
            if let Err(e) = std::str::from_utf8(&bytes) {
                return Err(Skip::new(
                    SkipKind::NotUtf8,
                    format!(
                        "{shown}: not UTF-8 text (invalid byte at offset {}); only UTF-8 text files can be loaded",
                        e.valid_up_to()
                    ),
                ));
            }
            (shown, bytes, hint)
        }
    };
    // Checked above for files; inline content arrived as a String.
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    let shape = TextShape::of(text);
    let hash = sha256_hex(&bytes);
    Ok(Prepared {
        source,
        hash,
        bytes,
        shape,
        hint,
    })
}
