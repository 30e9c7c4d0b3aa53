//! The daemon's server: accepts local-socket connections, checks the peer,
//! runs the handshake, and serves tool calls (many in flight per connection,
//! each on a blocking thread), progress, cancellation, status and shutdown.
//! `run(config, listener, shutdown)` is the whole daemon as a library call.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::traits::StreamCommon as _;
use interprocess::local_socket::traits::tokio::Listener as _;
use tokio::sync::{Notify, mpsc};

use rlm::protocol::{
    CallOutcome, DaemonStatus, FrameError, MAX_FRAME_BYTES, PROTOCOL_VERSION, Refused, Request,
    Response, Welcome, read_frame, write_frame,
};

use crate::engine::{CallContext, CallError, Engine};

/// The daemon's version, as clients see it.
pub const DAEMON_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful shutdown waits for calls in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What the server needs besides the engine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The socket path clients use (reported in status).
    pub socket: PathBuf,
    /// True when a client started this daemon on demand.
    pub auto_started: bool,
    /// Exit after this long with no connection and no call in flight.
    pub idle_timeout: Option<Duration>,
    /// Peers of another uid are refused (Unix); None accepts any peer.
    pub allowed_uid: Option<u32>,
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

struct Shared {
    engine: Engine,
    config: ServerConfig,
    started_at: String,
    started: Instant,
    connections: AtomicU64,
    in_flight: AtomicU64,
    served: AtomicU64,
    last_activity: Mutex<Instant>,
    stop: Notify,
    stopping: AtomicBool,
    stop_reason: Mutex<Option<StopReason>>,
    drained: Notify,
}

impl Shared {
    fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn request_stop(&self, reason: StopReason) {
        let mut r = self.stop_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_waiters();
        self.stop.notify_one();
    }

    /// A call's result was delivered (or its client is gone).
    fn finish_call(&self) {
        self.served.fetch_add(1, Ordering::SeqCst);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.touch();
        self.drained.notify_waiters();
    }

    fn status(&self) -> DaemonStatus {
        let (active, total) = self.engine.session_counts().unwrap_or((0, 0));
        DaemonStatus {
            daemon_version: DAEMON_VERSION.to_owned(),
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            socket: self.config.socket.clone(),
            data_dir: self.engine.config().data_dir.clone(),
            auto_started: self.config.auto_started,
            connections: self.connections.load(Ordering::SeqCst),
            calls_in_flight: self.in_flight.load(Ordering::SeqCst),
            requests_served: self.served.load(Ordering::SeqCst),
            sessions_active: active,
            sessions_total: total,
            indexes_cached: self.engine.indexes_cached() as u64,
        }
    }
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
    let shared = Arc::new(Shared {
        engine,
        config,
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        started: Instant::now(),
        connections: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        served: AtomicU64::new(0),
        last_activity: Mutex::new(Instant::now()),
        stop: Notify::new(),
        stopping: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        drained: Notify::new(),
    });
    let idle_watch = idle_watcher(shared.clone());
    tokio::pin!(shutdown);
    tokio::pin!(idle_watch);
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
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    shared.touch();
                    let guard = ConnectionGuard(shared.clone());
                    let shared = shared.clone();
                    tokio::spawn(async move { serve_connection(shared, stream, guard).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    // Do not spin on a persistent error (e.g. out of file descriptors).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    shared.stopping.store(true, Ordering::SeqCst);
    drop(listener);
    // In-flight calls finish; their connections deliver the results.
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while shared.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(100), shared.drained.notified()).await;
    }
    let reason = shared
        .stop_reason
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or(StopReason::Shutdown);
    tracing::info!(
        ?reason,
        served = shared.served.load(Ordering::SeqCst),
        "rlmd stopped"
    );
    Ok(reason)
}

/// Completes when the daemon has had no connection and no call for the
/// idle timeout; never completes without one.
async fn idle_watcher(shared: Arc<Shared>) {
    let Some(timeout) = shared.config.idle_timeout else {
        return std::future::pending().await;
    };
    let tick = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
    loop {
        tokio::time::sleep(tick).await;
        let idle = shared.connections.load(Ordering::SeqCst) == 0
            && shared.in_flight.load(Ordering::SeqCst) == 0
            && shared
                .last_activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                >= timeout;
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

/// Counts a connection while it lives (the accept loop counts it in).
struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// Numbers connections for correlation ids (`<connection>-<request id>`).
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

async fn serve_connection(shared: Arc<Shared>, stream: Stream, _guard: ConnectionGuard) {
    let conn_id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    if let Some(uid) = shared.config.allowed_uid {
        match peer_uid(&stream) {
            Some(peer) if peer == uid => {}
            other => {
                tracing::warn!(peer_uid = ?other, daemon_uid = uid, "refused a connection from another user");
                return;
            }
        }
    }
    // `&Stream` reads and writes: the reader here, the writer in its task.
    let stream = Arc::new(stream);
    let mut recv = &*stream;
    let (tx, rx) = mpsc::unbounded_channel::<Response>();
    let writer = tokio::spawn(write_loop(shared.clone(), stream.clone(), rx));
    let cwd = match handshake(&shared, &mut recv, &tx).await {
        Some(cwd) => cwd,
        None => {
            drop(tx);
            let _ = writer.await;
            return;
        }
    };
    let cancels: Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>> = Arc::default();
    loop {
        let msg = match read_frame::<_, Request>(&mut recv, MAX_FRAME_BYTES).await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Garbled(_))) => {
                tracing::warn!(error = %e, "closing a connection that sent an unreadable frame");
                let _ = tx.send(Response::Error {
                    id: None,
                    message: format!("rlmd: {e}; closing this connection"),
                });
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "connection ended");
                break;
            }
        };
        match msg {
            Request::Hello(_) => {
                let _ = tx.send(Response::Error {
                    id: None,
                    message: "rlmd: hello sent twice; closing".into(),
                });
                break;
            }
            Request::Call(call) => {
                if shared.stopping.load(Ordering::SeqCst) {
                    // Counted like any call, so its refusal is written before the daemon exits.
                    shared.in_flight.fetch_add(1, Ordering::SeqCst);
                    let refused = Response::Result {
                        id: call.id,
                        outcome: CallOutcome::Failed {
                            message: "rlmd is shutting down and takes no new calls; retry in a moment (a new daemon starts on demand)".into(),
                        },
                    };
                    if tx.send(refused).is_err() {
                        shared.finish_call();
                    }
                    continue;
                }
                let flag = Arc::new(AtomicBool::new(false));
                cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(call.id, flag.clone());
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                shared.touch();
                let (shared, tx, cancels, cwd) =
                    (shared.clone(), tx.clone(), cancels.clone(), cwd.clone());
                tokio::spawn(async move {
                    let id = call.id;
                    let progress_tx = tx.clone();
                    let ctx = CallContext {
                        cwd,
                        progress: call.progress.then(|| {
                            let f: Arc<crate::engine::ProgressFn> =
                                Arc::new(move |done, total, message: &str| {
                                    let _ = progress_tx.send(Response::Progress {
                                        id,
                                        done,
                                        total,
                                        message: message.to_owned(),
                                    });
                                });
                            f
                        }),
                        cancel: Some(flag),
                    };
                    let engine = shared.engine.clone();
                    let started = Instant::now();
                    let tool = call.tool.clone();
                    let mut session_id = call
                        .arguments
                        .get("session_id")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned);
                    let joined = tokio::task::spawn_blocking(move || {
                        engine.call(&call.tool, call.arguments, &ctx)
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
                            .map(str::to_owned);
                    }
                    let (success, error_code) = match &outcome {
                        CallOutcome::Ok { .. } => (true, ""),
                        CallOutcome::ToolError { error } => (false, error.code.as_str()),
                        CallOutcome::UnknownTool { .. } => (false, "unknown_tool"),
                        CallOutcome::Failed { .. } => (false, "failed"),
                    };
                    tracing::info!(
                        correlation_id = %format!("{conn_id}-{id}"),
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
                    // The call counts as in flight until its result is written
                    // (by the writer), so a shutdown never drops it unsent.
                    if tx.send(Response::Result { id, outcome }).is_err() {
                        shared.finish_call();
                    }
                });
            }
            Request::ListSessions { id } => {
                let (engine, tx) = (shared.engine.clone(), tx.clone());
                tokio::spawn(async move {
                    let listed = tokio::task::spawn_blocking(move || engine.list_sessions()).await;
                    let _ = tx.send(match listed {
                        Ok(Ok(sessions)) => Response::Sessions { id, sessions },
                        Ok(Err(e)) => Response::Error {
                            id: Some(id),
                            message: format!("rlmd: listing sessions: {e}"),
                        },
                        Err(e) => Response::Error {
                            id: Some(id),
                            message: format!("rlmd: listing sessions: {e}"),
                        },
                    });
                });
            }
            Request::Gc { id } => {
                let (engine, tx) = (shared.engine.clone(), tx.clone());
                tokio::spawn(async move {
                    let done =
                        tokio::task::spawn_blocking(move || engine.gc(crate::engine::GC_GRACE))
                            .await;
                    let _ = tx.send(match done {
                        Ok(Ok(report)) => {
                            tracing::info!(?report, "gc");
                            Response::GcDone { id, report }
                        }
                        Ok(Err(e)) => Response::Error {
                            id: Some(id),
                            message: format!("rlmd: gc: {e}"),
                        },
                        Err(e) => Response::Error {
                            id: Some(id),
                            message: format!("rlmd: gc: {e}"),
                        },
                    });
                });
            }
            Request::Cancel { id } => {
                if let Some(flag) = cancels.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            Request::Status { id } => {
                let _ = tx.send(Response::Status {
                    id,
                    status: shared.status(),
                });
            }
            Request::Shutdown { id } => {
                let _ = tx.send(Response::ShutdownAck {
                    id,
                    accepted: true,
                    reason: "stopping after the calls in flight".into(),
                });
                shared.request_stop(StopReason::Requested);
            }
            Request::ShutdownIfIdle { id } => {
                // This connection's own calls do not count: it asks from outside.
                let busy = shared.in_flight.load(Ordering::SeqCst);
                let (accepted, reason) = if !shared.config.auto_started {
                    (false, "this daemon was not started on demand (a service or a person started it); stop it there".to_owned())
                } else if busy > 0 {
                    (false, format!("{busy} calls are in flight"))
                } else {
                    (true, "idle; exiting".to_owned())
                };
                let _ = tx.send(Response::ShutdownAck {
                    id,
                    accepted,
                    reason,
                });
                if accepted {
                    shared.request_stop(StopReason::Requested);
                }
            }
        }
    }
    // The client is gone: calls it started stop early where they can.
    for flag in cancels.lock().unwrap_or_else(|p| p.into_inner()).values() {
        flag.store(true, Ordering::SeqCst);
    }
    drop(tx);
    let _ = writer.await;
}

/// Reads the hello; answers Welcome and returns the client's cwd, or
/// answers Refused / Error and returns None.
async fn handshake(
    shared: &Shared,
    recv: &mut &Stream,
    tx: &mpsc::UnboundedSender<Response>,
) -> Option<Option<PathBuf>> {
    let first = tokio::time::timeout(
        HELLO_TIMEOUT,
        read_frame::<_, serde_json::Value>(recv, MAX_FRAME_BYTES),
    )
    .await;
    let value = match first {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            let _ = tx.send(Response::Error {
                id: None,
                message: format!("rlmd: {e}; closing this connection"),
            });
            return None;
        }
        Err(_) => {
            let _ = tx.send(Response::Error {
                id: None,
                message: "rlmd: no hello within 10 s; closing".into(),
            });
            return None;
        }
    };
    // Read the version before the rest, so any client version gets an answer it can parse.
    let version = value
        .get("protocol_version")
        .and_then(serde_json::Value::as_u64);
    if value.get("type").and_then(serde_json::Value::as_str) != Some("hello") {
        // A client of another version may ask an idle auto-started daemon to make room.
        if value.get("type").and_then(serde_json::Value::as_str) == Some("shutdown_if_idle") {
            let id = value
                .get("id")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let accepted =
                shared.config.auto_started && shared.in_flight.load(Ordering::SeqCst) == 0;
            let _ = tx.send(Response::ShutdownAck {
                id,
                accepted,
                reason: if accepted {
                    "idle; exiting".into()
                } else {
                    "busy or not started on demand".into()
                },
            });
            if accepted {
                shared.request_stop(StopReason::Requested);
            }
            return None;
        }
        let _ = tx.send(Response::Error {
            id: None,
            message: "rlmd: the first message must be a hello; closing".into(),
        });
        return None;
    }
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        let _ = tx.send(Response::Refused(Refused {
            message: format!(
                "rlmd {DAEMON_VERSION} speaks protocol {PROTOCOL_VERSION}, the client speaks {}; stop this daemon (`rlm daemon stop`, or restart its service) so that one of the client's version starts, or use a client of the daemon's version",
                version.map_or("an unknown version".to_owned(), |v| v.to_string())
            ),
            protocol_version: PROTOCOL_VERSION,
            daemon_version: DAEMON_VERSION.to_owned(),
            auto_started: shared.config.auto_started,
        }));
        return None;
    }
    let hello: rlm::protocol::Hello = match serde_json::from_value(value) {
        Ok(h) => h,
        Err(e) => {
            let _ = tx.send(Response::Error {
                id: None,
                message: format!("rlmd: unreadable hello: {e}; closing"),
            });
            return None;
        }
    };
    tracing::debug!(client = %hello.client_name, version = %hello.client_version, cwd = ?hello.cwd, "client connected");
    let _ = tx.send(Response::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        daemon_version: DAEMON_VERSION.to_owned(),
        pid: std::process::id(),
        started_at: shared.started_at.clone(),
        auto_started: shared.config.auto_started,
        socket: shared.config.socket.clone(),
        data_dir: shared.engine.config().data_dir.clone(),
    }));
    Some(hello.cwd)
}

/// Writes a connection's answers in order. A call ends (stops counting as
/// in flight) once its result is written, or once the client is gone.
async fn write_loop(
    shared: Arc<Shared>,
    stream: Arc<Stream>,
    mut rx: mpsc::UnboundedReceiver<Response>,
) {
    let mut send = &*stream;
    while let Some(msg) = rx.recv().await {
        let close = matches!(msg, Response::Error { id: None, .. } | Response::Refused(_));
        let is_result = matches!(msg, Response::Result { .. });
        let written = write_frame(&mut send, &msg).await;
        if is_result {
            shared.finish_call();
        }
        if let Err(e) = written {
            tracing::debug!(error = %e, "writing to a client failed; it is gone");
            break;
        }
        if close {
            break;
        }
    }
    // Results queued for a client that is gone end here; later ones fail to
    // send and end in their call task.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if matches!(msg, Response::Result { .. }) {
            shared.finish_call();
        }
    }
}

#[cfg(unix)]
fn peer_uid(stream: &Stream) -> Option<u32> {
    // uid_t is u32 on the Unix targets we build for.
    stream.peer_creds().ok().and_then(|c| c.euid())
}

#[cfg(not(unix))]
fn peer_uid(_stream: &Stream) -> Option<u32> {
    None
}
