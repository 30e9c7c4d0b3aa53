//! [`ClientError`]: why a request to rlmd got no answer, by what happened, so
//! the CLI can pick its exit code and every message says what to do.

use std::path::PathBuf;

use rlm::protocol::{PROTOCOL_VERSION, Refused};

/// Why a request to the daemon got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers on the socket, and this client may not start one.
    #[error(
        "no rlmd answers on {} ({reason}); start one with `rlmd` (or `rlm daemon start`)",
        socket.display()
    )]
    NotRunning { socket: PathBuf, reason: String },
    /// A process accepted the connection on the socket and closed it before
    /// welcoming this client: most likely a daemon that is stopping.
    #[error(
        "rlmd on {} closed the connection before answering ({reason}); it may be stopping: try again in a moment",
        socket.display()
    )]
    HungUp { socket: PathBuf, reason: String },
    /// The process listening on the socket runs as another user: nothing was
    /// sent to it (not even the hello, which carries the working directory).
    #[error(
        "the process listening on {} runs as uid {uid}, not as this user (uid {me}); nothing was sent to it. \
         Someone else may have created that socket or its folder: remove them, or point rlm at a folder of your own \
         (RLM_SOCKET, or XDG_RUNTIME_DIR)",
        socket.display()
    )]
    NotYours { socket: PathBuf, uid: u32, me: u32 },
    /// Starting a daemon (or asking one of another version to make room)
    /// failed, or the daemon started could not be reached; the message says
    /// which.
    #[error("{0}")]
    StartFailed(String),
    /// A daemon of another protocol version answers, and stays.
    #[error(
        "the rlmd serving {} is version {} (protocol {}), and this {client_name} {client_version} speaks protocol {PROTOCOL_VERSION}: \
         stop that daemon (`rlm daemon stop`, or restart its service) so that one of this version starts, \
         or use a {client_name} of version {}. The daemon said: {}",
        socket.display(),
        refused.daemon_version,
        refused.protocol_version,
        refused.daemon_version,
        refused.message
    )]
    Refused {
        socket: PathBuf,
        client_name: String,
        client_version: String,
        refused: Refused,
    },
    /// The request is larger than one frame may carry; nothing was sent.
    #[error("a request of {size} bytes is larger than the {max} a frame may carry")]
    TooLarge { size: usize, max: usize },
    /// The connection broke before the request went out, on a fresh
    /// connection too: no daemon received it.
    #[error("{0}")]
    NotSent(String),
    /// The connection closed or broke after the request was sent: the daemon
    /// may or may not have acted on it.
    #[error("{0}")]
    Closed(String),
    /// The daemon answered with something this client did not expect.
    #[error("{0}")]
    Protocol(String),
    /// The daemon could not do what was asked; its message says why.
    #[error("{0}")]
    Daemon(String),
}
