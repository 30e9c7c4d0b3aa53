//! What the caller of a tool brings besides its arguments: the client's
//! working directory, a progress sink and a cancel flag.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rlm::{ErrorCode, ToolError};

/// Progress of a long call: (done, total if known, message).
pub type ProgressFn = dyn Fn(u64, Option<u64>, &str) + Send + Sync;

/// What the caller of a tool brings besides its arguments.
#[derive(Clone, Default)]
pub struct CallContext {
    /// The client's working directory: relative paths are resolved against it.
    pub cwd: Option<PathBuf>,
    /// Receives progress of long calls (loads, index builds).
    pub progress: Option<Arc<ProgressFn>>,
    /// Set when the client cancels the call.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl CallContext {
    pub fn with_cwd(cwd: impl Into<PathBuf>) -> CallContext {
        CallContext {
            cwd: Some(cwd.into()),
            ..CallContext::default()
        }
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn check_cancel(&self) -> Result<(), ToolError> {
        if self.cancelled() {
            return Err(ToolError::new(
                ErrorCode::Cancelled,
                "the call was cancelled by the client",
            ));
        }
        Ok(())
    }

    pub(crate) fn progress(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(p) = &self.progress {
            p(done, total, message);
        }
    }
}

/// How often work that takes long tells its client how far it is (a
/// client that asked for progress resets its time-out on each): none for
/// work done sooner, as most is.
pub(crate) const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The progress of work counted in units (bytes) from several threads,
/// told to the client every [`PROGRESS_EVERY`]: a scan, a chunking.
pub(crate) struct TimedProgress {
    started: std::time::Instant,
    total: u64,
    message: &'static str,
    done: std::sync::atomic::AtomicU64,
    /// Milliseconds after `started` when the next report is due.
    next_ms: std::sync::atomic::AtomicU64,
}

impl TimedProgress {
    pub(crate) fn new(total: u64, message: &'static str) -> TimedProgress {
        TimedProgress {
            started: std::time::Instant::now(),
            total,
            message,
            done: Default::default(),
            next_ms: (PROGRESS_EVERY.as_millis() as u64).into(),
        }
    }

    /// Counts `units` more done, and reports when a report is due (one
    /// thread reports it).
    pub(crate) fn advance(&self, units: u64, ctx: &CallContext) {
        let done = self.done.fetch_add(units, Ordering::Relaxed) + units;
        let now = self.started.elapsed().as_millis() as u64;
        let due = self.next_ms.load(Ordering::Relaxed);
        let next = now + PROGRESS_EVERY.as_millis() as u64;
        if now >= due
            && self
                .next_ms
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            ctx.progress(done.min(self.total), Some(self.total), self.message);
        }
    }
}
