//! The IPC protocol between `rlmd` and its clients (the shim, the CLI): one
//! request enum and one response enum are the whole protocol, carried in
//! length-prefixed frames whose size is checked before anything is decoded.
//!
//! A connection opens with `Request::Hello` and `Response::Welcome` (or
//! `Refused`). After that, requests carry ids so one connection has many calls
//! in flight; the daemon answers each with one `Result` and may send
//! `Progress` before it. `Hello`, `Welcome`, `Refused` and `ShutdownIfIdle`
//! keep their shape across protocol versions, so peers of different versions
//! can still tell each other what is wrong.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ToolError;

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts: a load may carry inline texts up
/// to the file size limit (100 MB by default), JSON-escaped.
pub const MAX_FRAME_BYTES: usize = 256 << 20;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message of every connection.
    Hello(Hello),
    /// Runs one tool.
    Call(Call),
    /// Asks to stop a call in flight (its result still comes, as `cancelled`
    /// if it stopped in time).
    Cancel { id: u64 },
    /// Asks for the daemon's status.
    Status { id: u64 },
    /// Asks the daemon to exit if it was started on demand and has no call
    /// in flight: how a client of another version makes room for its own.
    ShutdownIfIdle { id: u64 },
    /// Asks the daemon to exit after the calls in flight finish.
    Shutdown { id: u64 },
    /// Lists the sessions in the store (the CLI's `rlm sessions`).
    ListSessions { id: u64 },
    /// Removes files under the data directory that nothing references.
    Gc { id: u64 },
}

/// The handshake: who the client is and where it works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    /// e.g. `rlm-mcp`, `rlm`.
    pub client_name: String,
    pub client_version: String,
    /// The client's working directory: relative paths in calls resolve against it.
    pub cwd: Option<PathBuf>,
    /// Per-client settings (reserved; unknown keys are ignored).
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// One tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: u64,
    /// Either spelling of a tool name.
    pub tool: String,
    pub arguments: Value,
    /// Whether the caller wants `Progress` messages for this call.
    #[serde(default)]
    pub progress: bool,
}

/// What the daemon sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The handshake succeeded.
    Welcome(Welcome),
    /// The handshake failed (another protocol version); the daemon closes.
    Refused(Refused),
    /// The outcome of a call.
    Result { id: u64, outcome: CallOutcome },
    /// Progress of a call that asked for it.
    Progress {
        id: u64,
        done: u64,
        total: Option<u64>,
        message: String,
    },
    /// The answer to `Status`.
    Status { id: u64, status: DaemonStatus },
    /// The answer to `Shutdown` / `ShutdownIfIdle`.
    ShutdownAck {
        id: u64,
        accepted: bool,
        reason: String,
    },
    /// The answer to `ListSessions`.
    Sessions {
        id: u64,
        sessions: Vec<SessionSummary>,
    },
    /// The answer to `Gc`.
    GcDone { id: u64, report: GcReport },
    /// A request the daemon could not read; when `id` is null the daemon
    /// closes this connection after sending it.
    Error { id: Option<u64>, message: String },
}

/// The daemon's side of the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol_version: u32,
    pub daemon_version: String,
    pub pid: u32,
    pub started_at: String,
    /// True when a client started this daemon on demand (it exits when idle).
    pub auto_started: bool,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
}

/// Why the daemon will not talk to this client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refused {
    pub message: String,
    pub protocol_version: u32,
    pub daemon_version: String,
    pub auto_started: bool,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallOutcome {
    /// The tool's result object.
    Ok { result: Value },
    /// A tool error the model can read and act on.
    ToolError { error: ToolError },
    /// No tool has this name (a JSON-RPC error for MCP clients).
    UnknownTool { name: String },
    /// The daemon failed (crashed task, shutting down); nothing the model did.
    Failed { message: String },
}

/// What `rlm status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub daemon_version: String,
    pub protocol_version: u32,
    pub pid: u32,
    pub started_at: String,
    pub uptime_seconds: f64,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    pub auto_started: bool,
    pub connections: u64,
    pub calls_in_flight: u64,
    pub requests_served: u64,
    pub sessions_active: u64,
    pub sessions_total: u64,
    pub indexes_cached: u64,
}

/// What a daemon started on demand tells its starter, as one JSON line on
/// the file descriptor named by `RLM_READY_FD`, before it closes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StartupReport {
    /// Serving on the socket.
    Ready { pid: u32 },
    /// Another daemon holds the socket: connect to it.
    AlreadyRunning { message: String },
    /// Could not start; the message says why.
    Failed { message: String },
}

/// The environment variable that carries the readiness descriptor.
pub const READY_FD_ENV: &str = "RLM_READY_FD";

/// One session as `rlm sessions` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub name: Option<String>,
    pub status: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub document_count: u64,
    pub total_chars: u64,
    pub tool_calls_used: u64,
    pub max_tool_calls: u64,
}

/// What `rlm gc` removed (or, for errors, could not).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GcReport {
    /// Pack files no stored text refers to (left by a crash or a lost race).
    pub packs_removed: u64,
    pub bytes_freed: u64,
    /// Temporary files of loads that never finished.
    pub temp_files_removed: u64,
    /// Index folders and lock files of sessions the store does not know.
    pub index_dirs_removed: u64,
    pub lock_files_removed: u64,
    /// Files newer than the grace period are kept: a load in another process may still commit them.
    pub grace_seconds: u64,
    pub errors: Vec<String>,
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes is larger than the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("frame is not a valid message: {0}")]
    Garbled(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes one message as a frame: a 4-byte big-endian length, then JSON.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Garbled(e.to_string()))?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            size: body.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame's bytes. `Ok(None)` is a clean end of stream (between
/// frames). The length is checked against `max` before the body is read.
pub async fn read_frame_bytes<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let mut body = vec![0u8; size];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(body))
}

/// Reads and decodes one message.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, FrameError> {
    match read_frame_bytes(r, max).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| FrameError::Garbled(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_through_frames() {
        let msgs = vec![
            Request::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                client_name: "t".into(),
                client_version: "0".into(),
                cwd: Some("/w".into()),
                settings: Map::new(),
            }),
            Request::Call(Call {
                id: 7,
                tool: "rlm.session.info".into(),
                arguments: serde_json::json!({"session_id": "x"}),
                progress: true,
            }),
            Request::Cancel { id: 7 },
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write_frame(&mut buf, m).await.unwrap();
        }
        let mut r = buf.as_slice();
        for m in &msgs {
            let got: Request = read_frame(&mut r, MAX_FRAME_BYTES).await.unwrap().unwrap();
            assert_eq!(&got, m);
        }
        assert!(
            read_frame::<_, Request>(&mut r, MAX_FRAME_BYTES)
                .await
                .unwrap()
                .is_none(),
            "clean end"
        );
    }

    #[tokio::test]
    async fn oversized_truncated_and_garbled_frames_are_errors() {
        let big = (1u32 << 30).to_be_bytes();
        let err = read_frame::<_, Request>(&mut big.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
        let mut cut = 10u32.to_be_bytes().to_vec();
        cut.extend_from_slice(b"{\"ty");
        let err = read_frame::<_, Request>(&mut cut.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
        let mut junk = 3u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"abc");
        let err = read_frame::<_, Request>(&mut junk.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Garbled(_)), "{err}");
        let half_len = [0u8, 0];
        let err = read_frame::<_, Request>(&mut half_len.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }

    #[test]
    fn the_handshake_shape_is_stable() {
        // A daemon of any version must read this and answer with a Refused it can parse.
        let hello = serde_json::to_value(Request::Hello(Hello {
            protocol_version: 9,
            client_name: "c".into(),
            client_version: "1".into(),
            cwd: None,
            settings: Map::new(),
        }))
        .unwrap();
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["protocol_version"], 9);
        let shutdown = serde_json::to_value(Request::ShutdownIfIdle { id: 1 }).unwrap();
        assert_eq!(
            shutdown,
            serde_json::json!({"type": "shutdown_if_idle", "id": 1})
        );
    }
}
