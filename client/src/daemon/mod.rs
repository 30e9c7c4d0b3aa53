//! The connection to `rlmd`, shared by the shim and the CLI: handshake,
//! many calls in flight on one connection, progress and cancellation,
//! reconnection (replaying the hello) when the daemon restarts, and starting
//! a daemon on demand when none answers. Errors are typed ([`ClientError`]).
//!
//! `connection.rs` holds one live connection and routes its answers;
//! `error.rs` says why a request got no answer.

mod connection;
mod error;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use rlm::protocol::{
    Call, CallOutcome, DaemonStatus, DeleteOutcome, Envelope, GcReport, Hello, MAX_FRAME_BYTES,
    PROTOCOL_VERSION, Refused, Request, Response, SessionSummary, Welcome, read_frame, write_frame,
};

use crate::ProgressSink;
use crate::autostart::{self, AutoStart};
use connection::{Connection, Pending, SendError};
pub use error::ClientError;

/// How long one attempt to reach the daemon may take, start-up included.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// Who this client is and how it reaches the daemon.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub socket: PathBuf,
    pub client_name: String,
    pub client_version: String,
    /// Sent in the hello: relative paths in calls resolve against it.
    pub cwd: Option<PathBuf>,
    /// Start a daemon when none answers (None: fail instead).
    pub autostart: Option<AutoStart>,
}

/// A client of the daemon. Cheap to clone (clones share one connection);
/// reconnects by itself.
#[derive(Clone)]
pub struct DaemonClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    options: ClientOptions,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("socket", &self.inner.options.socket)
            .finish()
    }
}

impl DaemonClient {
    pub fn new(options: ClientOptions) -> DaemonClient {
        DaemonClient {
            inner: Arc::new(ClientInner {
                options,
                conn: tokio::sync::Mutex::new(None),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Connects now (used to warm up before the first call).
    pub async fn ensure_connected(&self) -> Result<Welcome, ClientError> {
        Ok(self.connection().await?.welcome.clone())
    }

    /// Runs one tool call. A call too large to send is a tool error the model
    /// can act on, not a `ClientError`.
    pub async fn call_tool(
        &self,
        tool: String,
        arguments: serde_json::Value,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> Result<CallOutcome, ClientError> {
        let wants = progress.is_some();
        let call = Request::Call(Call {
            tool,
            arguments,
            progress: wants,
        });
        match self.request(call, progress, Some(cancel)).await {
            Ok(Response::Result { outcome }) => Ok(outcome),
            Ok(other) => Err(unexpected("a call", other)),
            Err(ClientError::TooLarge { size, max }) => Ok(CallOutcome::ToolError {
                error: rlm::ToolError::new(
                    rlm::ErrorCode::TooLarge,
                    format!(
                        "the call's arguments take {size} bytes, more than the {max} one request may carry; load large texts from files instead of inline, or in several calls"
                    ),
                ),
            }),
            Err(ClientError::Closed(e)) => Err(ClientError::Closed(format!(
                "{e}. The rlm daemon went away during this call (it restarted or was stopped); the call may or may not have taken effect: check with rlm.session.info, then retry"
            ))),
            Err(e) => Err(e),
        }
    }

    /// The daemon's status.
    pub async fn status(&self) -> Result<DaemonStatus, ClientError> {
        match self.request(Request::Status, None, None).await? {
            Response::Status { status } => Ok(status),
            other => Err(unexpected("status", other)),
        }
    }

    /// Asks the daemon to stop after the calls in flight: whether it accepted, and why.
    pub async fn shutdown(&self) -> Result<(bool, String), ClientError> {
        match self.request(Request::Shutdown, None, None).await? {
            Response::ShutdownAck { accepted, reason } => Ok((accepted, reason)),
            other => Err(unexpected("shutdown", other)),
        }
    }

    /// Every session in the store.
    pub async fn list_sessions(&self) -> Result<Vec<SessionSummary>, ClientError> {
        match self.request(Request::ListSessions, None, None).await? {
            Response::Sessions { sessions } => Ok(sessions),
            Response::Error { message } => Err(ClientError::Daemon(message)),
            other => Err(unexpected("list-sessions", other)),
        }
    }

    /// Deletes sessions: one outcome each, in the order given.
    pub async fn delete_sessions(
        &self,
        session_ids: Vec<String>,
    ) -> Result<Vec<DeleteOutcome>, ClientError> {
        let answer = self
            .request(Request::DeleteSessions { session_ids }, None, None)
            .await;
        deletion_answer("sessions rm", answer)
    }

    /// Deletes the sessions closed more than `closed_before` ago.
    pub async fn prune_sessions(
        &self,
        closed_before: Duration,
    ) -> Result<Vec<DeleteOutcome>, ClientError> {
        let request = Request::PruneSessions {
            closed_before_seconds: closed_before.as_secs(),
        };
        deletion_answer("sessions prune", self.request(request, None, None).await)
    }

    /// Collects unreferenced files under the data directory.
    pub async fn gc(&self, grace_seconds: Option<u64>) -> Result<GcReport, ClientError> {
        match self
            .request(Request::Gc { grace_seconds }, None, None)
            .await?
        {
            Response::GcDone { report } => Ok(report),
            Response::Error { message } => Err(ClientError::Daemon(message)),
            other => Err(unexpected("gc", other)),
        }
    }

    /// Sends a request and waits for its answer.
    async fn request(
        &self,
        body: Request,
        progress: Option<ProgressSink>,
        cancel: Option<CancellationToken>,
    ) -> Result<Response, ClientError> {
        // A connection whose daemon died may not know it yet: a send that
        // fails on it delivered nothing, so one more try on a fresh
        // connection (starting a daemon if needed) is always safe.
        let mut req = Envelope::connection(body);
        let mut tries = 0;
        let (conn, id, rx) = loop {
            tries += 1;
            let conn = self.connection().await?;
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            req.id = Some(id);
            let (tx, rx) = oneshot::channel();
            conn.expect(
                id,
                Pending {
                    reply: tx,
                    progress: progress.clone(),
                },
            );
            match conn.send(&req).await {
                Ok(()) => break (conn, id, rx),
                Err(e) => {
                    conn.forget(id);
                    match e {
                        SendError::Broken(_) if tries < 2 => continue,
                        SendError::Broken(why) => return Err(ClientError::NotSent(why)),
                        SendError::TooLarge { size, max } => {
                            return Err(ClientError::TooLarge { size, max });
                        }
                    }
                }
            }
        };
        drop(req); // sent: a large load's text need not stay in memory meanwhile
        let mut rx = rx;
        let reply = match cancel {
            Some(token) => {
                tokio::select! {
                    r = &mut rx => r,
                    () = token.cancelled() => {
                        let _ = conn.send(&Envelope::new(id, Request::Cancel)).await;
                        rx.await
                    }
                }
            }
            None => rx.await,
        };
        reply
            .map_err(|_| ClientError::Closed("the connection to rlmd closed; retry".to_owned()))?
            .map_err(ClientError::Closed)
    }

    /// The live connection, connecting (and starting a daemon) if needed.
    async fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.is_alive()) {
            return Ok(c.clone());
        }
        let conn = self.connect().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn connect(&self) -> Result<Arc<Connection>, ClientError> {
        let options = &self.inner.options;
        let deadline = Instant::now() + CONNECT_DEADLINE;
        let mut started = false;
        let mut made_room = false;
        loop {
            match self.try_connect().await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(Unusable::NotYours { uid, me })) => {
                    return Err(ClientError::NotYours {
                        socket: options.socket.clone(),
                        uid,
                        me,
                    });
                }
                Ok(Err(Unusable::HungUp(reason))) if options.autostart.is_none() => {
                    return Err(ClientError::HungUp {
                        socket: options.socket.clone(),
                        reason,
                    });
                }
                Ok(Err(Unusable::HungUp(reason))) => {
                    // Maybe a daemon on its way out: wait for it, then start one.
                    if Instant::now() >= deadline {
                        return Err(ClientError::StartFailed(format!(
                            "rlmd on {} keeps closing connections ({reason}); see its log",
                            options.socket.display()
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(Err(Unusable::Refused(refused))) => {
                    // A daemon of another protocol version answers.
                    if refused.auto_started && !made_room && options.autostart.is_some() {
                        made_room = true;
                        if autostart::ask_to_exit_if_idle(&options.socket, deadline)
                            .await
                            .map_err(ClientError::StartFailed)?
                        {
                            continue;
                        }
                    }
                    return Err(ClientError::Refused {
                        socket: options.socket.clone(),
                        client_name: options.client_name.clone(),
                        client_version: options.client_version.clone(),
                        refused,
                    });
                }
                Err(reason) => {
                    let Some(auto) = &options.autostart else {
                        return Err(ClientError::NotRunning {
                            socket: options.socket.clone(),
                            reason,
                        });
                    };
                    if started || Instant::now() >= deadline {
                        return Err(ClientError::StartFailed(format!(
                            "could not reach rlmd on {} ({reason}) even after starting one; see its log",
                            options.socket.display()
                        )));
                    }
                    autostart::start(auto, &options.socket, deadline)
                        .await
                        .map_err(ClientError::StartFailed)?;
                    started = true;
                }
            }
        }
    }

    /// One connection attempt: Ok(Ok) connected, Ok(Err) refused by a
    /// daemon of another version or hung up on during the hello, Err why
    /// nothing accepted the connection.
    async fn try_connect(&self) -> Result<Result<Arc<Connection>, Unusable>, String> {
        let options = &self.inner.options;
        let name = options
            .socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .map_err(|e| e.to_string())?;
        let stream = Stream::connect(name).await.map_err(|e| e.to_string())?;
        if let Some((uid, me)) = peer_of_another_user(&stream) {
            return Ok(Err(Unusable::NotYours { uid, me }));
        }
        let stream = Arc::new(stream);
        let hello = Envelope::connection(Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: options.client_name.clone(),
            client_version: options.client_version.clone(),
            cwd: options.cwd.clone(),
            settings: Default::default(),
        }));
        // Something accepted the connection: what goes wrong from here on is
        // that process hanging up (a daemon that is stopping closes new
        // connections), not the absence of a daemon.
        let hung_up = |why: String| Ok(Err(Unusable::HungUp(why)));
        let mut w = &*stream;
        if let Err(e) = write_frame(&mut w, &hello).await {
            return hung_up(e.to_string());
        }
        let mut r = &*stream;
        let first = match tokio::time::timeout(
            Duration::from_secs(10),
            read_frame::<_, Envelope<Response>>(&mut r, MAX_FRAME_BYTES),
        )
        .await
        {
            Err(_) => return Err("rlmd did not answer the hello within 10 s".to_owned()),
            Ok(Err(e)) => return hung_up(e.to_string()),
            Ok(Ok(first)) => first,
        };
        let welcome = match first.map(|m| m.body) {
            Some(Response::Welcome(w)) => w,
            Some(Response::Refused(r)) => return Ok(Err(Unusable::Refused(r))),
            Some(Response::Error { message }) => return hung_up(message),
            Some(other) => return Err(format!("rlmd answered the hello with {other:?}")),
            None => return hung_up("it closed the connection during the hello".into()),
        };
        Ok(Ok(Connection::start(stream, welcome)))
    }
}

/// An answer that does not fit the request `what`.
#[allow(clippy::result_large_err)] // the ClientError every method returns
/// The answer to a deletion request. A daemon older than these requests
/// cannot read them and closes the connection saying "unknown variant":
/// that becomes an error that says to restart it.
fn deletion_answer(
    what: &str,
    answer: Result<Response, ClientError>,
) -> Result<Vec<DeleteOutcome>, ClientError> {
    match answer {
        Ok(Response::SessionsDeleted { outcomes }) => Ok(outcomes),
        Ok(Response::Error { message }) => Err(ClientError::Daemon(message)),
        Ok(other) => Err(unexpected(what, other)),
        Err(ClientError::Closed(why)) if why.contains("unknown variant") => {
            Err(ClientError::Daemon(format!(
                "the running rlmd is older than `rlm {what}` and cannot serve it; restart it (`rlm daemon stop`, then run the command again) so this version's rlmd serves"
            )))
        }
        Err(e) => Err(e),
    }
}

fn unexpected(what: &str, answer: Response) -> ClientError {
    ClientError::Protocol(format!("rlmd answered {what} with {answer:?}"))
}

/// What answered on the socket but cannot be used.
enum Unusable {
    /// A daemon of another protocol version.
    Refused(Refused),
    /// A process of another user: nothing may be sent to it.
    NotYours { uid: u32, me: u32 },
    /// The connection was accepted, then closed or refused before a welcome.
    HungUp(String),
}

/// The peer's uid and ours when the process at the other end of `stream`
/// runs as another user. The daemon checks its clients the same way.
#[cfg(unix)]
pub(crate) fn peer_of_another_user(stream: &Stream) -> Option<(u32, u32)> {
    use interprocess::local_socket::traits::StreamCommon as _;
    let me = nix::unistd::geteuid().as_raw();
    // A peer whose credentials cannot be read is not trusted either.
    let uid = stream
        .peer_creds()
        .ok()
        .and_then(|c| c.euid())
        .unwrap_or(u32::MAX);
    (uid != me).then_some((uid, me))
}

#[cfg(not(unix))]
pub(crate) fn peer_of_another_user(_stream: &Stream) -> Option<(u32, u32)> {
    None
}
