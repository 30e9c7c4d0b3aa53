//! Compaction of the shared index, the one merger of its segments: after a
//! build or a gc, its small and its mostly deleted segments are merged on a
//! thread of its own, a bounded step at a time, each step under the index's
//! write lock, giving way to any writer.
//!
//! A build leaves segments of a few megabytes each (the writer's memory),
//! and every search pays for every segment. The build merges none of them:
//! that would delay the answer that waits for it, and a merge once begun
//! cannot be stopped. The compaction owns every merge of the index (builds
//! and gc's deletions write with tantivy's `NoMergePolicy`). It runs after
//! them, a step of at most [`STEP_BYTES`] of segment files at a time (about
//! a second on this machine kind), so that a build that comes meanwhile
//! waits a second at most, and only once tool calls have paused for
//! [`QUIET`] (calls come first: a client asking several at once keeps both
//! cores busy), unless the index has more than [`CROWDED`] segments. A step
//! merges the segments mostly deleted first (what gc frees), then the
//! smallest; segments grow to a step's size at most, so their number grows
//! with the index's bytes over [`STEP_BYTES`] (the 10 segments of the 685
//! MB scale corpus's build become 2; seventy new 100 MB loads, 7 GB of
//! text, left 37), not with its builds.
//!
//! A writer of this process that asks for the lock waits for the step under
//! way, then goes first; the compaction goes on when it is done. When
//! another process holds the lock, the compaction ends (that process
//! compacts after its own build); a writer in another process finds the
//! lock free between steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rlm::ToolError;

use super::{IndexManager, index_err};
use crate::search::bm25::Merged;

/// Segment files merged in one step, at most. Merges run at about 19 MB of
/// segment files a second here (16 segments, 87 MB, of the 850 MB scale
/// corpus merged into one in 4.5 s), so a writer waits about a second at
/// most; segments bigger than this are left as they are.
pub const STEP_BYTES: u64 = 24 << 20;
/// How long the compaction lets this process's writers and calls go first,
/// before one step, before it gives up (the next build starts it again).
const YIELD_AT_MOST: Duration = Duration::from_secs(600);
/// A step starts only when no tool call of this process runs or ended
/// within this long.
pub const QUIET: Duration = Duration::from_millis(500);
/// Past this many segments the compaction no longer waits for calls to
/// pause (it still gives way to writers): a daemon whose clients never
/// pause for [`QUIET`] would otherwise gather a segment or two a build for
/// as long as it runs, and every search pays for every segment. One build
/// of the 685 MB scale corpus leaves 10; seventy 100 MB loads, compacted,
/// 37.
pub const CROWDED: usize = 48;
/// The pause between two steps, and between two looks at the writers
/// waiting: longer than the longest pause of a writer polling for the lock
/// (20 ms, `store::lock`), so that one in another process gets it.
const PAUSE: Duration = Duration::from_millis(50);

/// Whether a compaction runs, how many of this process's writers wait for
/// the index's write lock or hold it, and its tool calls.
#[derive(Debug)]
pub(super) struct Compaction {
    running: AtomicBool,
    /// Set by each request for a compaction; the running one looks again
    /// before it ends, so a build that commits as it ends is not left out.
    again: AtomicBool,
    writers: Arc<AtomicUsize>,
    calls: AtomicUsize,
    since: Instant,
    /// Milliseconds from `since` to the end of the last call.
    called: AtomicU64,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            running: AtomicBool::new(false),
            again: AtomicBool::new(false),
            writers: Arc::default(),
            calls: AtomicUsize::new(0),
            since: Instant::now(),
            called: AtomicU64::new(0),
        }
    }
}

/// A tool call under way, counted while it lives (`IndexManager::call`).
pub(crate) struct Call<'a>(&'a Compaction);

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let ms = self.0.since.elapsed().as_millis() as u64;
        self.0.called.fetch_max(ms, Ordering::AcqRel);
        self.0.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A writer of this process that waits for the index's write lock or holds
/// it, counted while it lives.
#[derive(Debug)]
pub(super) struct Writer(Arc<AtomicUsize>);

impl Drop for Writer {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Clears the running flag when the compaction's thread ends, however it ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        // SeqCst, as every use of `running` and `again`: a thread that
        // ends stores `running` then loads `again`, a request stores
        // `again` then swaps `running`, and one of them must see the other.
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Compaction {
    /// Counts a writer of this process, waiting for the lock or holding
    /// it, until the guard is dropped.
    pub(super) fn writer(&self) -> Writer {
        self.writers.fetch_add(1, Ordering::AcqRel);
        Writer(self.writers.clone())
    }

    fn writers(&self) -> bool {
        self.writers.load(Ordering::Acquire) > 0
    }

    /// Whether a call runs, or ended within [`QUIET`].
    fn calls_lately(&self) -> bool {
        let last = Duration::from_millis(self.called.load(Ordering::Acquire));
        self.calls.load(Ordering::Acquire) > 0 || self.since.elapsed().saturating_sub(last) < QUIET
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Merges made.
    pub steps: usize,
    /// Segments merged, in all.
    pub segments: usize,
    /// Bytes of the segment files merged.
    pub bytes: u64,
    /// Segments the index had when it ended.
    pub left: Option<usize>,
}

impl Compacted {
    fn add(&mut self, step: Merged) {
        self.steps += 1;
        self.segments += step.segments;
        self.bytes += step.bytes;
        self.left = Some(step.left);
    }
}

impl IndexManager {
    /// Writers of this process that wait for the index's write lock or hold it.
    pub(crate) fn writers(&self) -> usize {
        self.shared.compaction.writers.load(Ordering::Acquire)
    }

    /// Counts a tool call of this process while the guard lives: a
    /// compaction waits until calls have paused for [`QUIET`].
    pub(crate) fn call(&self) -> Call<'_> {
        let compaction = &self.shared.compaction;
        compaction.calls.fetch_add(1, Ordering::AcqRel);
        Call(compaction)
    }

    /// Compacts the index on a thread of its own, unless compaction is off
    /// (`EngineConfig::compact_index`); when one runs already, it looks
    /// again before it ends.
    pub(crate) fn compact_in_background(&self) {
        let compaction = &self.shared.compaction;
        if !self.shared.compact {
            return;
        }
        compaction.again.store(true, Ordering::SeqCst);
        if compaction.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let manager = self.clone();
        let spawned = std::thread::Builder::new()
            .name("rlm-compact".into())
            .spawn(move || {
                let compaction = &manager.shared.compaction;
                loop {
                    {
                        let _running = Running(&compaction.running);
                        compaction.again.store(false, Ordering::SeqCst);
                        manager.compact_and_log();
                    }
                    // A request that came while it ran (after its last
                    // look at the segments) is served here, unless a new
                    // thread took it.
                    if !compaction.again.load(Ordering::SeqCst)
                        || compaction.running.swap(true, Ordering::SeqCst)
                    {
                        break;
                    }
                }
            });
        if spawned.is_err() {
            compaction.running.store(false, Ordering::SeqCst);
        }
    }

    /// One compaction ([`IndexManager::compact`]) in the daemon's log.
    fn compact_and_log(&self) {
        let started = Instant::now();
        match self.compact(STEP_BYTES) {
            Ok(done) if done.steps > 0 => tracing::info!(
                steps = done.steps,
                segments = done.segments,
                bytes = done.bytes,
                segments_left = done.left,
                ms = started.elapsed().as_millis() as u64,
                "search index compacted"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "search index compaction failed; the next build tries again")
            }
        }
    }

    /// Whether the index, as this process last read it, has more than
    /// [`CROWDED`] segments.
    fn crowded(&self) -> bool {
        self.open_now()
            .is_some_and(|index| index.num_segments() > CROWDED)
    }

    /// Merges the index's segments, at most `step_bytes` of them at a time
    /// (`PassageIndex::merge_smallest`: the mostly deleted first, then the
    /// smallest), until nothing is left to do. Each step holds the
    /// index's write lock; before each, this process's writers that wait for
    /// the lock or hold it go first, and tool calls until they pause for
    /// [`QUIET`] (for at most [`YIELD_AT_MOST`] before a step) unless the index has
    /// more than [`CROWDED`] segments; when another
    /// process holds the lock the compaction ends (that process's build
    /// starts its own).
    pub(crate) fn compact(&self, step_bytes: u64) -> Result<Compacted, ToolError> {
        let mut done = Compacted::default();
        loop {
            let yielding = Instant::now();
            let compaction = &self.shared.compaction;
            while compaction.writers() || (compaction.calls_lately() && !self.crowded()) {
                if yielding.elapsed() >= YIELD_AT_MOST {
                    return Ok(done);
                }
                std::thread::sleep(PAUSE);
            }
            let Some(lock) = self.store().try_lock_search_index()? else {
                return Ok(done);
            };
            let (index, _) = self.current_locked(&lock)?;
            let step = index.merge_smallest(step_bytes).map_err(index_err)?;
            drop(lock);
            let Some(step) = step else {
                break;
            };
            done.add(step);
            // Views of the snapshot before hold its segments' files open.
            let current = index.reader_generation();
            self.lock_cache()
                .entries
                .retain(|_, (view, _)| view.searcher == current);
            std::thread::sleep(PAUSE);
        }
        if done.steps > 0 {
            // The merges' buffers are freed by now.
            crate::alloc::after_large_work(done.bytes);
        }
        Ok(done)
    }
}
