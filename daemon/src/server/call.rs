//! One tool call of a connection: it counts as in flight from its request
//! until its result is written, runs on a blocking thread with the client's
//! cwd, progress and cancel flag, and leaves one JSON log line.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rlm::protocol::{Call, CallOutcome, Envelope, Response};
use tokio::sync::OwnedSemaphorePermit;

use super::connection::{Backlog, Cancels, Connection, Outbox};
use super::shared::Shared;
use crate::engine::{CallContext, CallError, ProgressFn, json_bytes};

/// What a call refused while the daemon stops says.
const SHUTTING_DOWN: &str = "rlmd is shutting down and takes no new calls; retry in a moment (a new daemon starts on demand)";

impl Connection {
    /// Starts call `id`; its result goes out under the same id. `room` (of
    /// a large request) is given back when the call has run.
    pub(super) fn start_call(&self, id: u64, call: Call, room: Option<OwnedSemaphorePermit>) {
        if self.shared.is_stopping() {
            // Counted like any call, so its refusal is written before the daemon exits.
            self.shared.begin_call();
            let refused = Response::Result {
                outcome: CallOutcome::Failed {
                    message: SHUTTING_DOWN.into(),
                },
            };
            if self.out.send(Envelope::new(id, refused)).is_err() {
                self.shared.finish_call();
            }
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, cancel.clone());
        self.shared.begin_call();
        self.shared.touch();
        let ctx = CallContext {
            cwd: self.cwd.clone(),
            progress: call
                .progress
                .then(|| progress_to(self.out.clone(), self.backlog.clone(), id)),
            cancel: Some(cancel),
        };
        let in_flight = InFlight {
            shared: self.shared.clone(),
            out: self.out.clone(),
            cancels: self.cancels.clone(),
            backlog: self.backlog.clone(),
            id,
            correlation_id: format!("{}-{id}", self.number),
            room,
        };
        tokio::spawn(in_flight.run(call, ctx));
    }
}

/// What a call needs once it has left the connection's read loop.
struct InFlight {
    shared: Arc<Shared>,
    out: Outbox,
    cancels: Cancels,
    backlog: Backlog,
    id: u64,
    correlation_id: String,
    /// The room its request holds, if large: until it has run.
    room: Option<OwnedSemaphorePermit>,
}

/// Sends a call's progress as `Progress` messages of its id.
fn progress_to(out: Outbox, backlog: Backlog, id: u64) -> Arc<ProgressFn> {
    Arc::new(move |done, total, message: &str| {
        // Dropped, not queued, while the client is far behind in reading.
        if !backlog.admit_progress() {
            return;
        }
        let progress = Envelope::new(
            id,
            Response::Progress {
                done,
                total,
                message: message.to_owned(),
            },
        );
        if let Err(unsent) = out.send(progress) {
            backlog.release(&unsent.0);
        }
    })
}

impl InFlight {
    /// Runs the call on a blocking thread, logs it, and queues its result.
    async fn run(self, call: Call, ctx: CallContext) {
        let InFlight {
            shared,
            out,
            cancels,
            backlog,
            id,
            correlation_id,
            room,
        } = self;
        let engine = shared.engine.clone();
        let started = Instant::now();
        // Logged values are the caller's: bounded, so a 1 MB id is not a 1 MB line.
        let tool = bounded(&call.tool);
        let mut session_id = call
            .arguments
            .get("session_id")
            .and_then(serde_json::Value::as_str)
            .map(bounded);
        // Waits, without a thread, for a running slot and for the client to
        // read what it was already answered.
        let permit = backlog.run_permit(&shared).await;
        let joined = tokio::task::spawn_blocking(move || {
            // Cancelled (or its client gone) while it waited: it never runs.
            ctx.check_cancel().map_err(CallError::Tool)?;
            let result = engine.call(&call.tool, call.arguments, &ctx);
            drop(permit);
            // The call's arguments are gone: so is what they held.
            drop(room);
            result
        })
        .await;
        let outcome = match joined {
            Ok(Ok(result)) => CallOutcome::Ok { result },
            Ok(Err(CallError::Tool(error))) => CallOutcome::ToolError { error },
            Ok(Err(CallError::UnknownTool(name))) => CallOutcome::UnknownTool { name },
            Err(e) => CallOutcome::Failed {
                message: format!("rlmd: the call failed inside the daemon: {e}"),
            },
        };
        // A create names its session only in the result.
        if let (None, CallOutcome::Ok { result }) = (&session_id, &outcome) {
            session_id = result
                .get("session_id")
                .and_then(serde_json::Value::as_str)
                .map(bounded);
        }
        let (success, error_code) = match &outcome {
            CallOutcome::Ok { .. } => (true, ""),
            CallOutcome::ToolError { error } => (false, error.code.as_str()),
            CallOutcome::UnknownTool { .. } => (false, "unknown_tool"),
            CallOutcome::Failed { .. } => (false, "failed"),
        };
        tracing::info!(
            correlation_id = %correlation_id,
            session_id = session_id.as_deref().unwrap_or(""),
            operation = %tool,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            success,
            error_code,
            "call"
        );
        cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        // The call counts as in flight until its result is written (by the
        // writer), so a shutdown never drops it unsent.
        let answer = Response::Result { outcome };
        backlog.queue_answer(id, json_bytes(&answer));
        if let Err(unsent) = out.send(Envelope::new(id, answer)) {
            backlog.release(&unsent.0);
            shared.finish_call();
        }
    }
}

/// Characters of a caller's value a log line keeps.
const MAX_LOGGED_CHARS: usize = 100;

/// `value` as a log line keeps it: whole when short, else its first
/// [`MAX_LOGGED_CHARS`] characters and its length.
fn bounded(value: &str) -> String {
    match value.char_indices().nth(MAX_LOGGED_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}... ({} chars)", &value[..cut], value.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_values_are_bounded() {
        assert_eq!(bounded("rlm.docs.load"), "rlm.docs.load");
        let long = "é".repeat(1_000_000);
        let kept = bounded(&long);
        assert!(
            kept.chars().count() < MAX_LOGGED_CHARS + 30,
            "{}",
            kept.len()
        );
        assert!(kept.ends_with("(1000000 chars)"), "{kept}");
    }
}
