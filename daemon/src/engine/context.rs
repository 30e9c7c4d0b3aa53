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
