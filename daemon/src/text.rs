//! Stored texts as `&str` without copying them: a read-only mapping of a blob
//! plus a char-to-byte checkpoint table, so any slice by code-point offsets
//! costs at most one checkpoint stride of counting, however large the text.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

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
        let mut chars = 0u64;
        for (i, &b) in bytes.iter().enumerate() {
            if !is_continuation(b) {
                if chars.is_multiple_of(CHECKPOINT_STRIDE) {
                    checkpoints.push(i as u64);
                }
                chars += 1;
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

/// Counts the chars of a UTF-8 byte slice.
pub fn count_chars(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| !is_continuation(b)).count() as u64
}

enum Backing {
    Empty,
    /// A range of a mapped pack file.
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        end: usize,
    },
    Owned(String),
}

/// Maps a pack file read-only.
pub fn map_file(path: &Path) -> std::io::Result<Option<Mmap>> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: packs are immutable once renamed into place (the store never
    // writes to an existing pack), so the mapping does not change under us.
    Ok(Some(unsafe { Mmap::map(&file)? }))
}

/// One stored text, readable by code-point offsets.
pub struct Text {
    backing: Backing,
    shape: TextShape,
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
    /// A text stored at `[offset, offset + length_bytes)` of a mapped pack.
    /// The bytes are checked to be inside the pack and valid UTF-8, so a
    /// damaged pack is an error rather than a wrong answer.
    pub fn in_pack(
        map: Arc<Mmap>,
        offset: u64,
        length_bytes: u64,
        shape: TextShape,
        what: &str,
    ) -> std::io::Result<Text> {
        if length_bytes == 0 {
            return Ok(Text {
                backing: Backing::Empty,
                shape,
            });
        }
        let start = offset as usize;
        let end = offset
            .checked_add(length_bytes)
            .map(|e| e as usize)
            .filter(|&e| e <= map.len());
        let Some(end) = end else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{what}: recorded at bytes {offset}..+{length_bytes}, but its pack has only {} bytes",
                    map.len()
                ),
            ));
        };
        if std::str::from_utf8(&map[start..end]).is_err() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{what}: not valid UTF-8"),
            ));
        }
        Ok(Text {
            backing: Backing::Mapped { map, start, end },
            shape,
        })
    }

    /// A text held in memory (tests, inline content before it is stored).
    pub fn from_string(s: String) -> Text {
        let shape = TextShape::of(&s);
        Text {
            backing: Backing::Owned(s),
            shape,
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.backing {
            Backing::Empty => "",
            // SAFETY: validated as UTF-8 in `in_pack`, and the mapping is immutable.
            Backing::Mapped { map, start, end } => unsafe {
                std::str::from_utf8_unchecked(&map[*start..*end])
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
        let map = Arc::new(map_file(&p).unwrap().unwrap());
        let shape = TextShape::of("héllo");
        let t = Text::in_pack(map.clone(), 2, 6, shape.clone(), "t").unwrap();
        assert_eq!(t.slice(1, 3), "él");
        assert!(
            Text::in_pack(map.clone(), 2, 60, shape.clone(), "t").is_err(),
            "past the pack's end"
        );
        assert!(Text::in_pack(map, 3, 6, shape, "t").is_err(), "not UTF-8");
    }

    proptest! {
        #[test]
        fn any_slice_equals_python_slicing(s in "\\PC{0,300}", a in 0usize..400, len in 0usize..400) {
            let t = Text::from_string(s.clone());
            let b = a + len;
            prop_assert_eq!(t.slice(a as u64, b as u64), python_slice(&s, a, b));
        }
    }
}
