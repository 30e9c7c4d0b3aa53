//! The daemon's server: `run(engine, config, listener, shutdown)` is the whole
//! daemon as a library call. It accepts local-socket connections and hands
//! each to [`connection`], stops on a signal, a client's request or idleness
//! ([`idle`]), and lets the calls in flight finish before it returns.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | `run`, `ServerConfig`, `StopReason`: the accept loop and the drain |
//! | `shared.rs` | what all connections share: the engine, the counters of `status`, the stop request |
//! | `connection.rs` | one connection: the peer check, reading requests, one dispatch over them, writing answers |
//! | `handshake.rs` | the hello: `Welcome`, `Refused` for another protocol version, a skewed client's `shutdown_if_idle` |
//! | `call.rs` | one tool call: in flight on a blocking thread until its result is written, progress, cancel, its log line |
//! | `idle.rs` | whether the daemon may exit for want of work: on a client's request, and after the idle timeout |

mod call;
mod connection;
mod handshake;
mod idle;
mod shared;

pub use connection::MAX_REQUESTS_IN_FLIGHT;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::traits::tokio::Listener as _;

use crate::engine::Engine;
use connection::ConnectionGuard;
use shared::Shared;

/// The daemon's version, as clients see it.
pub const DAEMON_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a graceful shutdown waits for calls in flight by default
/// (`rlmd --drain-timeout`); past it the daemon exits without them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Calls running at once in the whole daemon, each on a blocking thread.
/// The runtime's blocking pool is larger ([`BLOCKING_THREADS`]), so the
/// daemon's own blocking work (status, gc, listing) always finds a thread.
pub const MAX_CALLS_RUNNING: usize = 256;

/// The size of the runtime's blocking pool.
pub const BLOCKING_THREADS: usize = MAX_CALLS_RUNNING + 64;

/// Connections served at once, at most, however high the open-files limit:
/// each holds a descriptor, and a client that leaks connections must not
/// take every descriptor the store and the index need.
pub const MAX_CONNECTIONS: u64 = 4096;

/// The connections a daemon allowed `open_files` descriptors serves at
/// once: half of them (the other half is the store's, the index's and the
/// loads'), at most [`MAX_CONNECTIONS`], at least 8.
pub fn max_connections(open_files: u64) -> u64 {
    (open_files / 2).clamp(8, MAX_CONNECTIONS)
}

/// A request this large or larger counts against the daemon's room for
/// large requests (`ServerConfig::large_requests_bytes`) from the moment its
/// length is read until its call ends: its body is read only once there is
/// room. Smaller ones (every call but inline loads) never wait for it; what
/// they hold is bounded by the connections and each one's requests in
/// flight.
pub const LARGE_REQUEST_BYTES: usize = 1 << 20;

/// How often a failing accept (out of descriptors) is logged, at most.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// What the server needs besides the engine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The socket path clients use (reported in status).
    pub socket: PathBuf,
    /// True when a client started this daemon on demand.
    pub auto_started: bool,
    /// Exit after this long with no connection and no call in flight.
    pub idle_timeout: Option<Duration>,
    /// Drop the caches of a session after this long without a call that
    /// used them, and every cache after this long with no call (None: never;
    /// `release_caches_after_seconds`).
    pub release_caches_after: Option<Duration>,
    /// Peers of another uid are refused (Unix); None accepts any peer.
    pub allowed_uid: Option<u32>,
    /// How long a stop waits for the calls in flight ([`DRAIN_TIMEOUT`]).
    pub drain_timeout: Duration,
    /// Connections served at once; a hello past it is answered with an
    /// error naming the limit ([`max_connections`]).
    pub max_connections: u64,
    /// Bytes of large requests held at once, every connection together
    /// (`max_large_requests_mb`; see [`LARGE_REQUEST_BYTES`]).
    pub large_requests_bytes: usize,
}

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The shutdown future completed (a signal).
    Shutdown,
    /// Idle for the idle timeout.
    Idle,
    /// A client asked (`Shutdown` / `ShutdownIfIdle`).
    Requested,
}

/// Serves `engine` on `listener` until `shutdown` completes, a client asks
/// the daemon to stop, or (when configured) it has been idle long enough.
/// Calls in flight finish before it returns.
pub async fn run(
    engine: Engine,
    config: ServerConfig,
    listener: Listener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<StopReason> {
    let shared = Arc::new(Shared::new(engine, config));
    let idle_watch = idle::watch(shared.clone());
    let trimmer = tokio::spawn(idle::trim_when_quiet(shared.clone()));
    tokio::pin!(shutdown);
    tokio::pin!(idle_watch);
    // Failed accepts since the last warning, and when it was written.
    let (mut failed_accepts, mut warned) = (0u64, None::<Instant>);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                shared.request_stop(StopReason::Shutdown);
                break;
            }
            () = &mut idle_watch => break,
            () = shared.stop.notified() => break,
            accepted = listener.accept() => match accepted {
                Ok(stream) => {
                    // Counted here, not in the task: the idle check must never
                    // see an accepted connection as absent.
                    let guard = ConnectionGuard::enter(&shared);
                    tokio::spawn(connection::serve(shared.clone(), stream, guard));
                }
                Err(e) => {
                    // Out of descriptors, say: once in a while, with the count.
                    failed_accepts += 1;
                    if warned.is_none_or(|t| t.elapsed() >= ACCEPT_WARN_EVERY) {
                        tracing::warn!(error = %e, failed = failed_accepts, connections = shared.connections(), "accepting connections fails");
                        (failed_accepts, warned) = (0, Some(Instant::now()));
                    }
                    // Do not spin on a persistent error (e.g. out of file descriptors).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    shared.mark_stopping();
    trimmer.abort();
    drop(listener);
    // In-flight calls finish; their connections deliver the results. Past
    // the deadline the daemon goes without them: a call stuck on a lock or
    // a disk must not keep it (and its socket's successor) from exiting.
    let deadline = Instant::now() + shared.config.drain_timeout;
    while shared.calls_in_flight() > 0 && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(100), shared.drained.notified()).await;
    }
    let left = shared.calls_in_flight();
    if left > 0 {
        tracing::warn!(
            calls = left,
            drain_timeout_s = shared.config.drain_timeout.as_secs_f64(),
            "stopping with calls still running past the drain deadline; what they had not committed is not stored"
        );
    }
    let reason = shared.stop_reason().unwrap_or(StopReason::Shutdown);
    tracing::info!(?reason, served = shared.served(), "rlmd stopped");
    Ok(reason)
}
