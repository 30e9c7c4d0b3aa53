//! What the index manager keeps in memory for speed, and how much: a
//! session's view (`SessionIndex`, a few bytes a document), the documents a
//! load committed (`KnownDocs`, as `DocMark`s) and texts' keys as hints
//! (`KeyHints`), each bounded; the manager (`mod.rs`) fills and drops them.

use std::collections::HashMap;
use std::sync::Arc;

use super::DocRow;
use crate::search::bm25::IndexView;

/// A session's view of the shared index, for one generation of its
/// documents: a few bytes a document (the rows of hits are read from the
/// store when a search needs them).
pub(crate) struct SessionIndex {
    pub generation: u64,
    pub view: IndexView,
    /// The key of each document's text, by load position (`seq`).
    pub(super) keys: Vec<u64>,
    /// (key, seq), sorted: the documents holding each text (one text may be
    /// several documents of a session).
    pub(super) holders: Vec<(u64, u64)>,
    /// The reader generation of the snapshot the view was taken in.
    pub(super) searcher: u64,
}

impl SessionIndex {
    /// About what this view keeps in memory.
    pub(super) fn weight(&self) -> usize {
        self.keys.len() * 24 + self.view.heap_bytes()
    }

    /// The keys of the texts of these documents (`only` of a search).
    pub(crate) fn keys_of(&self, docs: &[DocRow]) -> Vec<u64> {
        let mut keys: Vec<u64> = docs
            .iter()
            .filter_map(|d| self.keys.get(d.seq as usize).copied())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The load positions of the documents holding the text of `key`.
    pub(crate) fn holders_of(&self, key: u64) -> impl Iterator<Item = u64> + '_ {
        let from = self.holders.partition_point(|&(k, _)| k < key);
        self.holders[from..]
            .iter()
            .take_while(move |&&(k, _)| k == key)
            .map(|&(_, seq)| seq)
    }
}

#[derive(Default)]
pub(super) struct Cache {
    pub(super) entries: HashMap<String, (Arc<SessionIndex>, u64)>,
    pub(super) tick: u64,
}

/// What the index manager keeps of a document, by load position: its
/// text's hint and whether the text has characters (then it has passages).
#[derive(Debug, Clone, Copy)]
pub(super) struct DocMark {
    pub(super) hint: Option<Hint>,
    pub(super) has_chars: bool,
}

impl DocMark {
    pub(super) fn of(d: &DocRow) -> DocMark {
        DocMark {
            hint: hint_of(&d.hash),
            has_chars: d.length_chars > 0,
        }
    }
}

/// A session's documents as this process last learned them (from its own
/// loads, or read from the store), by load position.
pub(super) struct KnownDocs {
    pub(super) generation: u64,
    pub(super) marks: Arc<Vec<DocMark>>,
}

/// Keys of texts in one index, as this process learned them: hints, used
/// only when the view finds passages under them (gc may since have taken a
/// text, and the same text loaded again been given another key).
#[derive(Default)]
pub(super) struct KeyHints {
    pub(super) index_id: String,
    /// By the first 128 bits of the text's SHA-256.
    pub(super) keys: HashMap<Hint, u64>,
}

/// The first 128 bits of a text's SHA-256, as two words: a `u128` is
/// aligned to 16 bytes, which padded a `DocMark` to 48 bytes and a hint's
/// map entry to 32 (now 32 and 24; `marks_and_hints_stay_small`).
pub(super) type Hint = [u64; 2];

/// The hint of a text: the first 128 bits of its SHA-256 (hex). Two texts
/// alike in those bits are not to be met (one chance in 2^64 among 2^32
/// texts).
pub(super) fn hint_of(hash: &str) -> Option<Hint> {
    let word = |range: std::ops::Range<usize>| u64::from_str_radix(hash.get(range)?, 16).ok();
    Some([word(0..16)?, word(16..32)?])
}

/// A session's documents with their texts' keys in one index (None: not
/// indexed there), and whether the keys came from hints rather than the store.
pub(super) struct Keyed {
    pub(super) marks: Arc<Vec<DocMark>>,
    pub(super) keys: Vec<Option<u64>>,
    pub(super) hinted: bool,
}

/// Hints kept at most (about 40 bytes each); past this they start over.
pub(super) const MAX_KEY_HINTS: usize = 1 << 20;

/// What the views and the known documents kept in memory may weigh, each
/// (estimated: some 24 bytes a document, a bit a passage). The least
/// recently used go first; the one in use always stays.
pub(super) const CACHE_BYTES: usize = 32 << 20;

/// What the documents of the session searched last and their texts' key
/// hints may weigh to be kept when the daemon idles (`forget_all`): some
/// 110 000 documents.
pub(super) const KEEP_IDLE_BYTES: usize = 8 << 20;

/// A document's mark and its text's key hint, about (32 + 40 bytes).
pub(super) const KEPT_BYTES_A_DOCUMENT: usize = 72;

/// Keeps a session's documents, making room first: other sessions' go while
/// there are `capacity` sessions or they weigh more than `CACHE_BYTES`.
pub(super) fn keep_known(
    known: &mut HashMap<String, KnownDocs>,
    session_id: &str,
    generation: u64,
    marks: Arc<Vec<DocMark>>,
    capacity: usize,
) {
    const MARK_BYTES: usize = std::mem::size_of::<DocMark>();
    known.remove(session_id);
    let weight = |k: &HashMap<String, KnownDocs>| {
        k.values()
            .map(|d| d.marks.len() * MARK_BYTES)
            .sum::<usize>()
    };
    while !known.is_empty()
        && (known.len() >= capacity || weight(known) + marks.len() * MARK_BYTES > CACHE_BYTES)
    {
        let Some(other) = known.keys().next().cloned() else {
            break;
        };
        known.remove(&other);
    }
    known.insert(session_id.to_owned(), KnownDocs { generation, marks });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every document of every session cached costs a mark, and every text
    /// loaded a hint: their sizes are what the caches' bounds count.
    #[test]
    fn marks_and_hints_stay_small() {
        assert_eq!(std::mem::size_of::<DocMark>(), 32);
        assert_eq!(std::mem::size_of::<(Hint, u64)>(), 24);
    }

    #[test]
    fn a_hint_is_the_first_128_bits_of_the_hash() {
        let hash = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef";
        assert_eq!(
            hint_of(hash),
            Some([0x0011_2233_4455_6677, 0x8899_aabb_ccdd_eeff])
        );
        // Texts differing only past the first 128 bits share a hint;
        // anything else does not.
        let mut other = hash.to_owned();
        other.replace_range(63..64, "0");
        assert_eq!(hint_of(&other), hint_of(hash));
        other.replace_range(31..32, "0");
        assert_ne!(hint_of(&other), hint_of(hash));
        assert_eq!(hint_of("0011"), None, "too short");
        assert_eq!(hint_of(&"z".repeat(64)), None, "not hex");
    }
}
