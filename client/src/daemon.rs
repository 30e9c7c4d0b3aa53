//! The connection to `rlmd`, shared by the shim and the CLI: handshake,
//! many calls in flight on one connection, progress and cancellation,
//! reconnection (replaying the hello) when the daemon restarts, and starting
//! a daemon on demand when none answers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use rlm::protocol::{
    Call, CallOutcome, DaemonStatus, Envelope, FrameError, Hello, MAX_FRAME_BYTES,
    PROTOCOL_VERSION, Request, Response, Welcome, read_frame, write_frame,
};

use crate::autostart::{self, AutoStart};
use crate::mcp::{Backend, ProgressSink};

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

type Reply = Result<Response, String>;

/// Why a request did not get an answer.
#[derive(Debug)]
enum SendError {
    /// The request is larger than a frame may be; nothing was sent.
    TooLarge { size: usize, max: usize },
    /// No daemon could be reached (or it refused us); nothing was sent.
    Unreachable(String),
    /// The connection broke after the request was sent.
    Broken(String),
}

impl From<SendError> for String {
    fn from(e: SendError) -> String {
        match e {
            SendError::TooLarge { size, max } => {
                format!("a request of {size} bytes is larger than the {max} a frame may carry")
            }
            SendError::Broken(s) | SendError::Unreachable(s) => s,
        }
    }
}

impl From<String> for SendError {
    fn from(s: String) -> Self {
        SendError::Broken(s)
    }
}

struct Pending {
    reply: oneshot::Sender<Reply>,
    progress: Option<ProgressSink>,
}

/// One live connection: a writer, and a reader task that routes answers.
struct Connection {
    stream: Arc<Stream>,
    write: tokio::sync::Mutex<()>,
    pending: Mutex<HashMap<u64, Pending>>,
    alive: AtomicBool,
    welcome: Welcome,
}

impl Connection {
    fn fail_all(&self, why: &str) {
        self.alive.store(false, Ordering::SeqCst);
        let pending: Vec<Pending> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in pending {
            let _ = p.reply.send(Err(why.to_owned()));
        }
    }

    async fn send(&self, req: &Envelope<Request>) -> Result<(), SendError> {
        let _guard = self.write.lock().await;
        let mut w = &*self.stream;
        write_frame(&mut w, req).await.map_err(|e| match e {
            // Nothing was written: the connection is fine, the request is not.
            FrameError::TooLarge { size, max } => SendError::TooLarge { size, max },
            e => {
                self.fail_all(&format!("the connection to rlmd broke: {e}"));
                SendError::Broken(format!("could not send to rlmd: {e}"))
            }
        })
    }
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

    /// The live connection, connecting (and starting a daemon) if needed.
    async fn connection(&self) -> Result<Arc<Connection>, String> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.alive.load(Ordering::SeqCst)) {
            return Ok(c.clone());
        }
        let conn = self.connect().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Connects now (used to warm up before the first call).
    pub async fn ensure_connected(&self) -> Result<Welcome, String> {
        Ok(self.connection().await?.welcome.clone())
    }

    async fn connect(&self) -> Result<Arc<Connection>, String> {
        let deadline = Instant::now() + CONNECT_DEADLINE;
        let mut started = false;
        let mut made_room = false;
        loop {
            match self.try_connect().await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(refused)) => {
                    // A daemon of another protocol version answers.
                    if refused.auto_started && !made_room && self.inner.options.autostart.is_some()
                    {
                        made_room = true;
                        if autostart::ask_to_exit_if_idle(&self.inner.options.socket, deadline)
                            .await?
                        {
                            continue;
                        }
                    }
                    return Err(format!(
                        "the rlmd serving {} is version {} (protocol {}), and this {} {} speaks protocol {PROTOCOL_VERSION}: \
                         stop that daemon (`rlm daemon stop`, or restart its service) so that one of this version starts, \
                         or use a {} of version {}. The daemon said: {}",
                        self.inner.options.socket.display(),
                        refused.daemon_version,
                        refused.protocol_version,
                        self.inner.options.client_name,
                        self.inner.options.client_version,
                        self.inner.options.client_name,
                        refused.daemon_version,
                        refused.message
                    ));
                }
                Err(e) => {
                    let Some(auto) = &self.inner.options.autostart else {
                        return Err(format!(
                            "no rlmd answers on {} ({e}); start one with `rlmd` (or `rlm daemon start`)",
                            self.inner.options.socket.display()
                        ));
                    };
                    if started || Instant::now() >= deadline {
                        return Err(format!(
                            "could not reach rlmd on {} ({e}) even after starting one; see its log",
                            self.inner.options.socket.display()
                        ));
                    }
                    autostart::start(auto, &self.inner.options.socket, deadline).await?;
                    started = true;
                }
            }
        }
    }

    /// One connection attempt: Ok(Ok) connected, Ok(Err) refused by a
    /// daemon of another version, Err nothing usable answered.
    async fn try_connect(&self) -> Result<Result<Arc<Connection>, rlm::protocol::Refused>, String> {
        let name = self
            .inner
            .options
            .socket
            .as_path()
            .to_fs_name::<GenericFilePath>()
            .map_err(|e| e.to_string())?;
        let stream = Stream::connect(name).await.map_err(|e| e.to_string())?;
        let stream = Arc::new(stream);
        let hello = Envelope::connection(Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client_name: self.inner.options.client_name.clone(),
            client_version: self.inner.options.client_version.clone(),
            cwd: self.inner.options.cwd.clone(),
            settings: Default::default(),
        }));
        let mut w = &*stream;
        write_frame(&mut w, &hello)
            .await
            .map_err(|e| e.to_string())?;
        let mut r = &*stream;
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            read_frame::<_, Envelope<Response>>(&mut r, MAX_FRAME_BYTES),
        )
        .await
        .map_err(|_| "rlmd did not answer the hello within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
        let welcome = match first.map(|m| m.body) {
            Some(Response::Welcome(w)) => w,
            Some(Response::Refused(r)) => return Ok(Err(r)),
            Some(Response::Error { message, .. }) => return Err(message),
            Some(other) => return Err(format!("rlmd answered the hello with {other:?}")),
            None => return Err("rlmd closed the connection during the hello".into()),
        };
        let conn = Arc::new(Connection {
            stream,
            write: tokio::sync::Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            welcome,
        });
        tokio::spawn(read_loop(conn.clone()));
        Ok(Ok(conn))
    }

    /// Sends a request and waits for its answer.
    async fn request(
        &self,
        body: Request,
        progress: Option<ProgressSink>,
        cancel: Option<CancellationToken>,
    ) -> Result<Response, SendError> {
        // A connection whose daemon died may not know it yet: a send that
        // fails on it delivered nothing, so one more try on a fresh
        // connection (starting a daemon if needed) is always safe.
        let mut req = Envelope::connection(body);
        let mut tries = 0;
        let (conn, id, rx) = loop {
            tries += 1;
            let conn = self.connection().await.map_err(SendError::Unreachable)?;
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            conn.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    id,
                    Pending {
                        reply: tx,
                        progress: progress.clone(),
                    },
                );
            req.id = Some(id);
            let sent = if conn.alive.load(Ordering::SeqCst) {
                conn.send(&req).await
            } else {
                Err(SendError::Broken("the connection to rlmd closed".into()))
            };
            match sent {
                Ok(()) => break (conn, id, rx),
                Err(e) => {
                    conn.pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    match e {
                        SendError::Broken(_) if tries < 2 => continue,
                        SendError::Broken(why) => return Err(SendError::Unreachable(why)),
                        other => return Err(other),
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
            .map_err(|_| SendError::Broken("the connection to rlmd closed; retry".to_owned()))?
            .map_err(SendError::Broken)
    }

    /// Runs one tool call.
    pub async fn call_tool(
        &self,
        tool: String,
        arguments: serde_json::Value,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> Result<CallOutcome, String> {
        let wants = progress.is_some();
        let sent = self
            .request(
                Request::Call(Call {
                    tool,
                    arguments,
                    progress: wants,
                }),
                progress,
                Some(cancel),
            )
            .await;
        let reply = match sent {
            Ok(r) => r,
            Err(SendError::TooLarge { size, max }) => {
                return Ok(CallOutcome::ToolError {
                    error: rlm::ToolError::new(
                        rlm::ErrorCode::TooLarge,
                        format!(
                            "the call's arguments take {size} bytes, more than the {max} one request may carry; load large texts from files instead of inline, or in several calls"
                        ),
                    ),
                });
            }
            Err(SendError::Unreachable(e)) => return Err(e),
            Err(SendError::Broken(e)) => {
                return Err(format!(
                    "{e}. The rlm daemon went away during this call (it restarted or was stopped); the call may or may not have taken effect: check with rlm.session.info, then retry"
                ));
            }
        };
        match reply {
            Response::Result { outcome, .. } => Ok(outcome),
            other => Err(format!("rlmd answered a call with {other:?}")),
        }
    }

    /// The daemon's status.
    pub async fn status(&self) -> Result<DaemonStatus, String> {
        match self.request(Request::Status, None, None).await? {
            Response::Status { status, .. } => Ok(status),
            other => Err(format!("rlmd answered status with {other:?}")),
        }
    }

    /// Asks the daemon to stop after the calls in flight.
    pub async fn shutdown(&self) -> Result<(bool, String), String> {
        match self.request(Request::Shutdown, None, None).await? {
            Response::ShutdownAck {
                accepted, reason, ..
            } => Ok((accepted, reason)),
            other => Err(format!("rlmd answered shutdown with {other:?}")),
        }
    }
}

impl DaemonClient {
    /// Every session in the store.
    pub async fn list_sessions(&self) -> Result<Vec<rlm::protocol::SessionSummary>, String> {
        match self.request(Request::ListSessions, None, None).await? {
            Response::Sessions { sessions, .. } => Ok(sessions),
            Response::Error { message, .. } => Err(message),
            other => Err(format!("rlmd answered list-sessions with {other:?}")),
        }
    }

    /// Collects unreferenced files under the data directory.
    pub async fn gc(&self) -> Result<rlm::protocol::GcReport, String> {
        match self.request(Request::Gc, None, None).await? {
            Response::GcDone { report, .. } => Ok(report),
            Response::Error { message, .. } => Err(message),
            other => Err(format!("rlmd answered gc with {other:?}")),
        }
    }
}

impl Backend for DaemonClient {
    fn call(
        &self,
        tool: String,
        arguments: serde_json::Value,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<CallOutcome, String>> {
        let this = self.clone();
        Box::pin(async move { this.call_tool(tool, arguments, progress, cancel).await })
    }
}

/// Routes every answer of a connection to its caller; on the end of the
/// stream, fails whatever is still pending.
async fn read_loop(conn: Arc<Connection>) {
    let mut r = &*conn.stream;
    let why = loop {
        match read_frame::<_, Envelope<Response>>(&mut r, MAX_FRAME_BYTES).await {
            Ok(Some(Envelope {
                id: Some(id),
                body:
                    Response::Progress {
                        done,
                        total,
                        message,
                    },
            })) => {
                let pending = conn.pending.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(sink) = pending.get(&id).and_then(|p| p.progress.as_ref()) {
                    let _ = sink.send((done, total, message));
                }
            }
            // Any other message of a request is its answer.
            Ok(Some(Envelope { id: Some(id), body })) => {
                let waiting = conn
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(p) = waiting {
                    let _ = p.reply.send(Ok(body));
                }
            }
            Ok(Some(Envelope {
                id: None,
                body: Response::Error { message },
            })) => {
                break format!("rlmd closed the connection: {message}");
            }
            Ok(Some(Envelope { id: None, .. })) => {}
            Ok(None) => break "rlmd closed the connection".to_owned(),
            Err(e) => break format!("the connection to rlmd broke: {e}"),
        }
    };
    conn.fail_all(&why);
}
