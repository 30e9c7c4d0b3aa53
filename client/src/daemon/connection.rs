//! One live connection to rlmd, past its handshake: a writer, the requests
//! waiting for answers, and a reader task that routes each answer (and each
//! progress update) to its request by the envelope's id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use interprocess::local_socket::tokio::Stream;
use tokio::sync::oneshot;

use rlm::protocol::{
    Envelope, FrameError, MAX_FRAME_BYTES, Request, Response, Welcome, read_response, write_frame,
};

use crate::ProgressSink;

/// A request's answer, or why the connection ended before it came.
pub(super) type Reply = Result<Response, String>;

/// Why a request could not be written.
#[derive(Debug)]
pub(super) enum SendError {
    /// The request is larger than a frame may be; nothing was sent and the
    /// connection is fine.
    TooLarge { size: usize, max: usize },
    /// The connection broke (or had closed); the request did not go out.
    Broken(String),
}

/// A request waiting for its answer.
pub(super) struct Pending {
    pub(super) reply: oneshot::Sender<Reply>,
    pub(super) progress: Option<ProgressSink>,
}

pub(super) struct Connection {
    stream: Arc<Stream>,
    write: tokio::sync::Mutex<()>,
    pending: Mutex<HashMap<u64, Pending>>,
    alive: AtomicBool,
    pub(super) welcome: Welcome,
}

impl Connection {
    /// Starts routing the answers of a connection whose hello was welcomed.
    pub(super) fn start(stream: Arc<Stream>, welcome: Welcome) -> Arc<Connection> {
        let conn = Arc::new(Connection {
            stream,
            write: tokio::sync::Mutex::new(()),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            welcome,
        });
        tokio::spawn(read_loop(conn.clone()));
        conn
    }

    pub(super) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Waits for the answer of request `id`.
    pub(super) fn expect(&self, id: u64, pending: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, pending);
    }

    /// Stops waiting for request `id` (its send failed).
    pub(super) fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

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

    pub(super) async fn send(&self, req: &Envelope<Request>) -> Result<(), SendError> {
        if !self.is_alive() {
            return Err(SendError::Broken("the connection to rlmd closed".into()));
        }
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

/// Routes every answer of a connection to its caller; on the end of the
/// stream, fails whatever is still pending.
async fn read_loop(conn: Arc<Connection>) {
    let mut r = &*conn.stream;
    let why = loop {
        match read_response(&mut r, MAX_FRAME_BYTES).await {
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
