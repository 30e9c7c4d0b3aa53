//! One client connection: the peer check, the handshake, then a [`Connection`]
//! that reads requests and dispatches each in one `match`; a writer task puts
//! the answers on the socket in order and counts a call as ended once its
//! result is written.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use interprocess::local_socket::tokio::Stream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use rlm::protocol::{
    Envelope, FrameError, MAX_FRAME_BYTES, Request, Response, decode_frame, read_frame_body,
    read_frame_len, write_frame,
};

use super::shared::Shared;
use super::{StopReason, handshake::handshake};
use crate::engine::{Engine, GC_GRACE};

/// Where a connection's answers go: its writer task.
pub(super) type Outbox = mpsc::UnboundedSender<Envelope<Response>>;

/// The reading half of a connection (`&Stream` reads and writes).
pub(super) type Recv<'a> = &'a Stream;

/// The cancel flags of a connection's calls in flight, by request id.
pub(super) type Cancels = Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>;

/// Requests of one connection that may wait for their answer at once (the
/// answer written, or the client gone). Past it the connection's reader
/// stops reading until an answer is written: a client that sends without
/// reading holds at most this many calls, and their answers, in the daemon.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 64;

/// Calls of one connection that run at once, each on a blocking thread; the
/// others of its [`MAX_REQUESTS_IN_FLIGHT`] wait without a thread. So one
/// client never takes the blocking pool, however many of its calls wait for
/// a session lock held elsewhere or read a slow disk.
pub const MAX_CALLS_RUNNING_PER_CONNECTION: usize = 4;

/// Bytes of answers of one connection written by no one yet (a client that
/// does not read), past which its next call waits before it runs: what one
/// connection holds in answers is this plus the answers of the calls already
/// running.
pub const MAX_QUEUED_ANSWER_BYTES: usize = 16 << 20;

/// Progress messages of one connection waiting to be written, past which
/// new ones are dropped (progress is advisory; results never are).
const MAX_QUEUED_PROGRESS: usize = 256;

/// What one connection holds in the daemon: requests waiting for their
/// answer, and progress messages waiting to be written.
#[derive(Clone)]
pub(super) struct Backlog(Arc<BacklogInner>);

struct BacklogInner {
    requests: Semaphore,
    /// Requests that took a permit and whose answer is not written yet.
    waiting: AtomicUsize,
    progress: AtomicUsize,
    /// Calls running now ([`MAX_CALLS_RUNNING_PER_CONNECTION`]).
    running: Arc<Semaphore>,
    /// Bytes of the answers queued for the writer, by request id.
    answers: Mutex<HashMap<u64, usize>>,
    answer_bytes: AtomicUsize,
    /// Wakes calls waiting for the answer queue to shrink.
    room: Notify,
    /// The writer is gone: nothing will shrink the queue any more.
    closed: AtomicBool,
}

impl Backlog {
    fn new() -> Backlog {
        Backlog(Arc::new(BacklogInner {
            requests: Semaphore::new(MAX_REQUESTS_IN_FLIGHT),
            waiting: AtomicUsize::new(0),
            progress: AtomicUsize::new(0),
            running: Arc::new(Semaphore::new(MAX_CALLS_RUNNING_PER_CONNECTION)),
            answers: Mutex::new(HashMap::new()),
            answer_bytes: AtomicUsize::new(0),
            room: Notify::new(),
            closed: AtomicBool::new(false),
        }))
    }

    /// Waits until one more call of this connection may run: its queued
    /// answers under [`MAX_QUEUED_ANSWER_BYTES`] (or its writer gone), a
    /// running slot of the connection, then one of the daemon.
    pub(super) async fn run_permit(&self, shared: &Shared) -> RunPermit {
        loop {
            let room = self.0.room.notified();
            if self.0.answer_bytes.load(Ordering::SeqCst) < MAX_QUEUED_ANSWER_BYTES
                || self.0.closed.load(Ordering::SeqCst)
            {
                break;
            }
            room.await;
        }
        // Neither semaphore is ever closed, so acquiring cannot fail.
        let connection = self.0.running.clone().acquire_owned().await.ok();
        let daemon = shared.running.clone().acquire_owned().await.ok();
        RunPermit {
            _connection: connection,
            _daemon: daemon,
        }
    }

    /// Counts the answer of request `id`, `bytes` long, as queued.
    pub(super) fn queue_answer(&self, id: u64, bytes: usize) {
        self.0
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, bytes);
        self.0.answer_bytes.fetch_add(bytes, Ordering::SeqCst);
    }

    /// The answer of request `id` is written or dropped.
    fn unqueue_answer(&self, id: u64) {
        let bytes = self
            .0
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(bytes) = bytes {
            self.0.answer_bytes.fetch_sub(bytes, Ordering::SeqCst);
            self.0.room.notify_waiters();
        }
    }

    /// The writer is gone: calls waiting for room go on (and find no client).
    fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.requests.close();
        self.0.room.notify_waiters();
    }

    /// Waits for room for one more request.
    async fn admit(&self) {
        if let Ok(permit) = self.0.requests.acquire().await {
            permit.forget();
            self.0.waiting.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An answer was written (or dropped): its request leaves.
    fn answered(&self) {
        let left = self
            .0
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_ok() {
            self.0.requests.add_permits(1);
        }
    }

    /// Whether one more progress message may be queued (and counts it).
    pub(super) fn admit_progress(&self) -> bool {
        self.0
            .progress
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_QUEUED_PROGRESS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts out whatever `message` held once it is written or dropped.
    pub(super) fn release(&self, message: &Envelope<Response>) {
        match (&message.body, message.id) {
            (Response::Progress { .. }, _) => {
                self.0.progress.fetch_sub(1, Ordering::SeqCst);
            }
            (_, Some(id)) => {
                self.unqueue_answer(id);
                self.answered();
            }
            (_, None) => {}
        }
    }
}

/// The right of one call to run: a slot of its connection and one of the
/// daemon, given back when dropped.
pub(super) struct RunPermit {
    _connection: Option<OwnedSemaphorePermit>,
    _daemon: Option<OwnedSemaphorePermit>,
}

/// Numbers connections for correlation ids (`<connection>-<request id>`).
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Counts a connection while it lives.
pub(super) struct ConnectionGuard(Arc<Shared>);

impl ConnectionGuard {
    /// Counts a connection in as it is accepted.
    pub(super) fn enter(shared: &Arc<Shared>) -> ConnectionGuard {
        shared.connection_opened();
        ConnectionGuard(shared.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// A connection past its handshake.
pub(super) struct Connection {
    pub(super) shared: Arc<Shared>,
    /// This connection's number, for correlation ids.
    pub(super) number: u64,
    /// The client's working directory, from its hello.
    pub(super) cwd: Option<PathBuf>,
    pub(super) out: Outbox,
    pub(super) cancels: Cancels,
    pub(super) backlog: Backlog,
}

/// Serves one accepted connection until the client leaves (or must).
pub(super) async fn serve(shared: Arc<Shared>, stream: Stream, _guard: ConnectionGuard) {
    let number = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
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
    let mut recv: Recv<'_> = &stream;
    let (out, rx) = mpsc::unbounded_channel();
    let backlog = Backlog::new();
    let writer = tokio::spawn(write_loop(
        shared.clone(),
        stream.clone(),
        rx,
        backlog.clone(),
    ));
    if let Some(hello) = handshake(&shared, &mut recv, &out).await {
        let connection = Connection {
            shared,
            number,
            cwd: hello.cwd,
            out,
            cancels: Cancels::default(),
            backlog,
        };
        connection.read_loop(&mut recv).await;
    } else {
        drop(out);
    }
    let _ = writer.await;
}

impl Connection {
    /// Reads and dispatches requests until the client leaves or must go; then
    /// the calls it started stop early where they can.
    async fn read_loop(self, recv: &mut Recv<'_>) {
        loop {
            let (message, room) = match self.read_request(recv).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e @ (FrameError::TooLarge { .. } | FrameError::Garbled(_))) => {
                    self.unreadable(e);
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connection ended");
                    break;
                }
            };
            // Every request but a cancel is answered: it waits for room.
            if message.id.is_some() && !matches!(message.body, Request::Cancel | Request::Hello(_))
            {
                self.backlog.admit().await;
            }
            if self.dispatch(message, room).is_break() {
                break;
            }
        }
        for flag in self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Reads the next request. A large one's body is read only once the
    /// daemon has room for it ([`Shared::room_for_request`]); the room comes
    /// back with it, held until its call ends.
    async fn read_request(
        &self,
        recv: &mut Recv<'_>,
    ) -> Result<Option<(Envelope<Request>, Option<OwnedSemaphorePermit>)>, FrameError> {
        let Some(size) = read_frame_len(recv, MAX_FRAME_BYTES).await? else {
            return Ok(None);
        };
        let mut room = self.shared.room_for_request(size).await;
        let body = read_frame_body(recv, size).await?;
        let message = decode_frame(&body)?;
        drop(body);
        if let Some(room) = room.as_mut() {
            self.shared.decoded(room, size);
        }
        Ok(Some((message, room)))
    }

    /// Serves one request; `Break` closes the connection. `room` is what
    /// the request holds of the room for large requests.
    fn dispatch(
        &self,
        message: Envelope<Request>,
        room: Option<OwnedSemaphorePermit>,
    ) -> ControlFlow<()> {
        match (message.body, message.id) {
            (Request::Hello(_), _) => {
                self.close("rlmd: hello sent twice; closing".into());
                return ControlFlow::Break(());
            }
            (_, None) => {
                self.unreadable(FrameError::Garbled("missing field `id`".into()));
                return ControlFlow::Break(());
            }
            (Request::Call(call), Some(id)) => self.start_call(id, call, room),
            (Request::Cancel, Some(id)) => {
                let cancels = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(flag) = cancels.get(&id) {
                    flag.store(true, Ordering::SeqCst);
                    tracing::debug!(
                        correlation_id = %format!("{}-{id}", self.number),
                        "cancel requested; the call stops at its next check"
                    );
                }
            }
            (Request::Status, Some(id)) => {
                let status = self.shared.status();
                self.reply(id, Response::Status { status });
            }
            (Request::Shutdown, Some(id)) => {
                // In flight until written: the daemon drains before it exits,
                // so the asker always reads its acknowledgement.
                self.shared.begin_call();
                let ack = Response::ShutdownAck {
                    accepted: true,
                    reason: "stopping after the calls in flight".into(),
                };
                if !self.reply(id, ack) {
                    self.shared.finish_call();
                }
                self.shared.request_stop(StopReason::Requested);
            }
            (Request::ShutdownIfIdle, Some(id)) => {
                super::idle::answer_shutdown_if_idle(&self.shared, |answer| self.reply(id, answer));
            }
            (Request::ListSessions, Some(id)) => {
                self.answer_blocking(id, "listing sessions", |engine| {
                    engine
                        .list_sessions()
                        .map(|sessions| Response::Sessions { sessions })
                });
            }
            (Request::Gc { grace_seconds }, Some(id)) => {
                self.answer_blocking(id, "gc", move |engine| {
                    let grace = grace_seconds.map_or(GC_GRACE, std::time::Duration::from_secs);
                    engine.gc(grace).map(|report| {
                        tracing::info!(?report, "gc");
                        Response::GcDone { report }
                    })
                })
            }
            (Request::DeleteSessions { session_ids }, Some(id)) => {
                self.answer_blocking(id, "deleting sessions", move |engine| {
                    Ok::<_, std::convert::Infallible>(Response::SessionsDeleted {
                        outcomes: engine.delete_sessions(&session_ids),
                    })
                });
            }
            (
                Request::PruneSessions {
                    closed_before_seconds,
                },
                Some(id),
            ) => self.answer_blocking(id, "pruning sessions", move |engine| {
                engine
                    .prune_closed(std::time::Duration::from_secs(closed_before_seconds))
                    .map(|outcomes| Response::SessionsDeleted { outcomes })
            }),
        }
        ControlFlow::Continue(())
    }

    /// Queues the answer of request `id` for writing; false when the
    /// connection's writer is gone.
    pub(super) fn reply(&self, id: u64, body: Response) -> bool {
        self.out.send(Envelope::new(id, body)).is_ok()
    }

    /// Sends the error after which the connection closes.
    fn close(&self, message: String) {
        let _ = self
            .out
            .send(Envelope::connection(Response::Error { message }));
    }

    fn unreadable(&self, e: FrameError) {
        tracing::warn!(error = %e, "closing a connection that sent an unreadable frame");
        self.close(format!("rlmd: {e}; closing this connection"));
    }

    /// Answers request `id` with what `work` makes of the engine on a
    /// blocking thread, or with an error naming `what` failed.
    fn answer_blocking<E: std::fmt::Display + Send + 'static>(
        &self,
        id: u64,
        what: &'static str,
        work: impl FnOnce(Engine) -> Result<Response, E> + Send + 'static,
    ) {
        let (engine, out) = (self.shared.engine.clone(), self.out.clone());
        tokio::spawn(async move {
            let answer = match tokio::task::spawn_blocking(move || work(engine)).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => Response::Error {
                    message: format!("rlmd: {what}: {e}"),
                },
                Err(e) => Response::Error {
                    message: format!("rlmd: {what}: {e}"),
                },
            };
            let _ = out.send(Envelope::new(id, answer));
        });
    }
}

/// Writes a connection's answers in order. A call, or a shutdown's
/// acknowledgement, ends (stops counting as in flight) once it is written,
/// or once the client is gone.
async fn write_loop(
    shared: Arc<Shared>,
    stream: Arc<Stream>,
    mut rx: mpsc::UnboundedReceiver<Envelope<Response>>,
    backlog: Backlog,
) {
    let mut send = &*stream;
    while let Some(message) = rx.recv().await {
        let close = message.id.is_none()
            && matches!(message.body, Response::Error { .. } | Response::Refused(_));
        let is_result = counts_in_flight(&message.body);
        let written = write_frame(&mut send, &message).await;
        if is_result {
            shared.finish_call();
        }
        backlog.release(&message);
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
    while let Ok(message) = rx.try_recv() {
        if counts_in_flight(&message.body) {
            shared.finish_call();
        }
        backlog.release(&message);
    }
    // Answers can no longer be written: a reader or a call waiting for room
    // goes on (and finds the connection gone).
    backlog.close();
}

/// The answers that count as in flight until written: a call's result and
/// a shutdown's acknowledgement.
fn counts_in_flight(body: &Response) -> bool {
    matches!(body, Response::Result { .. } | Response::ShutdownAck { .. })
}

#[cfg(unix)]
fn peer_uid(stream: &Stream) -> Option<u32> {
    use interprocess::local_socket::traits::StreamCommon as _;
    // uid_t is u32 on the Unix targets we build for.
    stream.peer_creds().ok().and_then(|c| c.euid())
}

#[cfg(not(unix))]
fn peer_uid(_stream: &Stream) -> Option<u32> {
    None
}
