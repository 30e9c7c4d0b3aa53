//! When the daemon exits for want of work: on a client's `ShutdownIfIdle`
//! (one decision, whether the client said hello or is of another protocol
//! version), and after the idle timeout with no connection and no call; and
//! when it gives its freed heap back, a few seconds after calls stop.

use std::sync::Arc;
use std::time::Duration;

use rlm::protocol::Response;

use super::StopReason;
use super::shared::Shared;

/// Why a daemon asked to exit if idle stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum Stays {
    #[error(
        "this daemon was not started on demand (a service or a person started it); stop it there"
    )]
    NotStartedOnDemand,
    #[error("{0} calls are in flight")]
    CallsInFlight(u64),
}

/// Whether this daemon may exit because a client asked it to if idle. Open
/// connections do not count (the asker holds one); calls in flight do.
fn may_exit_on_request(shared: &Shared) -> Result<(), Stays> {
    let busy = shared.calls_in_flight();
    if !shared.config.auto_started {
        Err(Stays::NotStartedOnDemand)
    } else if busy > 0 {
        Err(Stays::CallsInFlight(busy))
    } else {
        Ok(())
    }
}

/// Answers a `ShutdownIfIdle` through `reply` (which says whether the
/// answer was queued for writing), then stops the server if it accepted.
pub(super) fn answer_shutdown_if_idle(shared: &Shared, reply: impl FnOnce(Response) -> bool) {
    let decision = may_exit_on_request(shared);
    // The answer counts as in flight until it is written, so a daemon that
    // accepted does not exit before the asker reads why.
    shared.begin_call();
    let queued = reply(Response::ShutdownAck {
        accepted: decision.is_ok(),
        reason: match decision {
            Ok(()) => "idle; exiting".to_owned(),
            Err(stays) => stays.to_string(),
        },
    });
    if !queued {
        shared.finish_call();
    }
    if decision.is_ok() {
        shared.request_stop(StopReason::Requested);
    }
}

/// How long the daemon must have had no call before it trims its heap.
const TRIM_AFTER: Duration = Duration::from_secs(5);
/// How often the daemon looks whether to trim or release: half the trim's
/// wait, shorter when caches are released sooner than that.
const TICK: Duration = Duration::from_millis(2500);

/// Gives memory back once calls have stopped, once per spell of calls: the
/// freed heap after a few seconds (`alloc::trim`), what is kept for speed
/// after `release_caches_after` (`Engine::release_idle_memory`), so that
/// `RssAnon` falls back while the daemon idles. While calls go on, what is
/// kept for sessions quiet as long drops on its own
/// (`Engine::release_quiet_sessions`). Runs until aborted.
pub(super) async fn trim_when_quiet(shared: Arc<Shared>) {
    let release_after = shared.config.release_caches_after;
    let tick = release_after.map_or(TICK, |r| (r / 4).clamp(Duration::from_millis(50), TICK));
    let mut trimmed_at = shared.served();
    let mut released_at = shared.served();
    loop {
        tokio::time::sleep(tick).await;
        let served = shared.served();
        let quiet = shared.calls_in_flight() == 0;
        let quiet_for = shared.quiet_for();
        match release_after {
            Some(after) if served != released_at && quiet && quiet_for >= after => {
                released_at = served;
                trimmed_at = served;
                let engine = shared.engine.clone();
                let _ = tokio::task::spawn_blocking(move || engine.release_idle_memory()).await;
            }
            _ if served != trimmed_at && quiet && quiet_for >= TRIM_AFTER => {
                trimmed_at = served;
                let _ = tokio::task::spawn_blocking(crate::alloc::trim).await;
            }
            Some(after) if served != released_at => {
                let engine = shared.engine.clone();
                let _ =
                    tokio::task::spawn_blocking(move || engine.release_quiet_sessions(after)).await;
            }
            _ => {}
        }
    }
}

/// Completes when the daemon has had no connection and no call for the
/// idle timeout (and asks the server to stop); never completes without one.
pub(super) async fn watch(shared: Arc<Shared>) {
    let Some(timeout) = shared.config.idle_timeout else {
        return std::future::pending().await;
    };
    let tick = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
    loop {
        tokio::time::sleep(tick).await;
        let idle = shared.connections() == 0
            && shared.calls_in_flight() == 0
            && shared.quiet_for() >= timeout;
        if idle {
            tracing::info!(
                timeout_s = timeout.as_secs_f64(),
                "idle: no connection and no call; exiting"
            );
            shared.request_stop(StopReason::Idle);
            return;
        }
    }
}
