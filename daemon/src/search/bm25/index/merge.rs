//! One step of the index's compaction, on a [`PassageIndex`]: which
//! committed segments to merge (those mostly deleted first, then the
//! smallest, within a byte budget) and the merge itself. The engine's
//! `engine/index/compact.rs` decides when a step runs.

use tantivy::index::{SegmentComponent, SegmentMeta};
use tantivy::indexer::{IndexWriterOptions, NoMergePolicy};
use tantivy::{Index, TantivyDocument};

use super::{IndexError, PassageIndex, SEGMENT_COMPONENTS};

/// A segment with at least this share of its passages deleted (texts gc
/// removed) is rewritten by the compaction's next step, alone if nothing
/// else fits beside it ([`PassageIndex::merge_smallest`]).
const DELETED_SHARE_BEFORE_MERGE: f32 = 0.3;

/// What one step of compaction ([`PassageIndex::merge_smallest`]) merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    /// Segments merged into one.
    pub segments: usize,
    /// Their files' bytes.
    pub bytes: u64,
    /// Their passages (deleted ones left out).
    pub passages: u64,
    /// Segments the index has after the step.
    pub left: usize,
}

impl PassageIndex {
    /// One step of compaction: merges committed segments into one, as many
    /// as fit in `max_bytes` of segment files, and moves the reader to the
    /// result. First the segments with at least [`DELETED_SHARE_BEFORE_MERGE`]
    /// of their passages deleted (smallest first; merging drops the deleted
    /// passages, so a gc's space comes back), then the smallest others.
    /// `Ok(None)` when nothing is to do: fewer than two segments fit, and no
    /// segment that fits is that much deleted. The caller holds the index's
    /// write lock; a merge keeps the last commit's stamp, and a merge cut
    /// short (a crash) leaves the last commit as it was (tantivy switches
    /// `meta.json` at its end).
    ///
    /// Why: each build leaves segments of a few megabytes (the writer's
    /// memory), and a search pays for each segment (its term dictionaries,
    /// its posting lists' setup, its top-k): on 850 MB, 16 segments answered
    /// bm25 in 1.77 ms, the same merged into 2-4 in 1.13-1.19 ms.
    pub fn merge_smallest(&self, max_bytes: u64) -> Result<Option<Merged>, IndexError> {
        let index = Index::open_in_dir(&self.dir)?;
        let mut sized: Vec<(u64, SegmentMeta)> = index
            .searchable_segment_metas()?
            .into_iter()
            .map(|m| (self.segment_bytes(&m), m))
            .collect();
        let deleted = |m: &SegmentMeta| {
            m.num_deleted_docs() as f32 >= DELETED_SHARE_BEFORE_MERGE * m.max_doc() as f32
                && m.num_deleted_docs() > 0
        };
        // Deleted enough (those that fit) first, then the smallest.
        sized.retain(|(bytes, m)| *bytes <= max_bytes || !deleted(m));
        sized.sort_by_key(|(bytes, m)| (!deleted(m), *bytes, m.id()));
        let mut merged = Merged::default();
        let mut ids = Vec::new();
        let mut purges = false;
        for (bytes, meta) in &sized {
            if merged.bytes + bytes > max_bytes {
                break;
            }
            merged.bytes += bytes;
            merged.passages += u64::from(meta.num_docs());
            purges |= deleted(meta);
            ids.push(meta.id());
        }
        if ids.len() < 2 && !purges {
            return Ok(None);
        }
        merged.segments = ids.len();
        let mut writer = index.writer_with_options::<TantivyDocument>(
            IndexWriterOptions::builder()
                .num_worker_threads(1)
                .num_merge_threads(1)
                .build(),
        )?;
        writer.set_merge_policy(Box::new(NoMergePolicy));
        writer.merge(&ids).wait()?;
        writer.wait_merging_threads()?;
        self.reload()?;
        // (A merge of passages all deleted leaves no segment.)
        merged.left = self.num_segments();
        Ok(Some(merged))
    }

    /// The bytes of a committed segment's files (those that exist).
    pub(super) fn segment_bytes(&self, meta: &SegmentMeta) -> u64 {
        let mut components: Vec<SegmentComponent> = SEGMENT_COMPONENTS.to_vec();
        if meta.has_deletes() {
            components.push(SegmentComponent::Delete);
        }
        components
            .into_iter()
            .filter_map(|c| std::fs::metadata(self.dir.join(meta.relative_path(c))).ok())
            .map(|m| m.len())
            .sum()
    }
}
