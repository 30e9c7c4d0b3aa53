//! The IPC protocol between `rlmd` and its clients (the shim, the CLI): one
//! request enum and one response enum, each message wrapped in an
//! [`Envelope`] that carries its request id, sent in length-prefixed frames
//! whose size is checked before anything is decoded.
//!
//! A connection opens with `Request::Hello` and `Response::Welcome` (or
//! `Refused`). After that, every request has an id so one connection has many
//! calls in flight; the daemon answers each with one message of that id (a
//! call's `Result`, after any `Progress`). `Hello`, `Welcome`, `Refused` and
//! `ShutdownIfIdle` keep their shape across protocol versions, so peers of
//! different versions can still tell each other what is wrong.

use std::marker::PhantomData;
use std::path::PathBuf;

use serde::de::{DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ToolError;

/// Bumped whenever a message changes shape. (The [`Envelope`] did not: every
/// message reads the same to a peer of version 1 as before it.)
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest frame either side accepts: a load may carry inline texts up
/// to the file size limit (100 MB by default), JSON-escaped.
pub const MAX_FRAME_BYTES: usize = 256 << 20;

/// Every message, either way: a body and, when it belongs to a request, that
/// request's id.
///
/// The id ties a request to its answer (and a call to its `Progress`); a
/// `Cancel` carries the id of the call to stop. Messages of the connection
/// itself carry none: `Hello`, `Welcome`, `Refused`, and the `Error` after
/// which the daemon closes. On the wire the id sits beside the body's `type`
/// and fields, `{"type": "call", "tool": ..., "id": 7}`, as it did when each
/// variant carried its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Envelope<T> {
    #[serde(flatten)]
    pub body: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

impl<T> Envelope<T> {
    /// A message of request `id`.
    pub fn new(id: u64, body: T) -> Envelope<T> {
        Envelope { body, id: Some(id) }
    }

    /// A message of the connection itself (no request id).
    pub fn connection(body: T) -> Envelope<T> {
        Envelope { body, id: None }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Envelope<T> {
    /// Decodes the body straight from the input, taking the `id` out on the
    /// way: as fast as a plain enum (a derived `flatten`, or a detour through
    /// a `Value`, buffers the body once more: ~25% slower on a 6 KB result).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(PhantomData))
    }
}

struct EnvelopeVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<T> {
    type Value = Envelope<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Envelope<T>, A::Error> {
        let mut id = None;
        let body = T::deserialize(WithoutId { map, id: &mut id })?;
        Ok(Envelope { body, id })
    }
}

/// A message's fields but its `id`, which goes to `id` as it passes.
struct WithoutId<'a, A> {
    map: A,
    id: &'a mut Option<u64>,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for WithoutId<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutId<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if key == "id" {
                *self.id = self.map.next_value()?;
                continue;
            }
            return seed
                .deserialize(IntoDeserializer::<A::Error>::into_deserializer(key))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// What a client sends (in an [`Envelope`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// First message of every connection (no id).
    Hello(Hello),
    /// Runs one tool.
    Call(Call),
    /// Asks to stop the call of the envelope's id (its result still comes, as
    /// `cancelled` if it stopped in time). Nothing answers it.
    Cancel,
    /// Asks for the daemon's status.
    Status,
    /// Asks the daemon to exit if it was started on demand and has no call
    /// in flight: how a client of another version makes room for its own.
    ShutdownIfIdle,
    /// Asks the daemon to exit after the calls in flight finish.
    Shutdown,
    /// Lists the sessions in the store (the CLI's `rlm sessions`).
    ListSessions,
    /// Removes files under the data directory that nothing references,
    /// keeping what is younger than `grace_seconds` (default an hour).
    Gc {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_seconds: Option<u64>,
    },
    /// Deletes these sessions and all that is only theirs (`rlm sessions
    /// rm`). A daemon older than this request closes the connection with
    /// "unknown variant" (the client words that as "restart rlmd").
    DeleteSessions { session_ids: Vec<String> },
    /// Deletes the closed sessions closed more than `closed_before_seconds`
    /// ago (`rlm sessions prune`).
    PruneSessions { closed_before_seconds: u64 },
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
    /// Either spelling of a tool name.
    pub tool: String,
    pub arguments: Value,
    /// Whether the caller wants `Progress` messages for this call.
    #[serde(default)]
    pub progress: bool,
}

/// What the daemon sends (in an [`Envelope`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The handshake succeeded (no id).
    Welcome(Welcome),
    /// The handshake failed (another protocol version); the daemon closes (no id).
    Refused(Refused),
    /// The outcome of a call.
    Result { outcome: CallOutcome },
    /// Progress of a call that asked for it.
    Progress {
        done: u64,
        total: Option<u64>,
        message: String,
    },
    /// The answer to `Status`.
    Status { status: DaemonStatus },
    /// The answer to `Shutdown` / `ShutdownIfIdle`.
    ShutdownAck { accepted: bool, reason: String },
    /// The answer to `ListSessions`.
    Sessions { sessions: Vec<SessionSummary> },
    /// The answer to `Gc`.
    GcDone { report: GcReport },
    /// The answer to `DeleteSessions` and `PruneSessions`: one outcome per
    /// session, in the order asked (prune: oldest closed first).
    SessionsDeleted { outcomes: Vec<DeleteOutcome> },
    /// A request the daemon could not serve (with its id), or a connection
    /// it could not read (no id: the daemon closes it after sending this).
    Error { message: String },
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
    /// Sessions whose documents the daemon keeps in memory, their views
    /// made from them without the store (0 from a daemon older than the
    /// field).
    #[serde(default)]
    pub sessions_known: u64,
    /// Bytes of large requests (inline texts) held now, and the room for
    /// them (`max_large_requests_mb`); 0 from a daemon older than the fields.
    #[serde(default)]
    pub large_requests_held_bytes: u64,
    #[serde(default)]
    pub large_requests_room_bytes: u64,
    /// Large requests whose reading waits for room.
    #[serde(default)]
    pub large_requests_waiting: u64,
    /// The daemon's memory as the kernel counts it (none where the system
    /// does not say, and from a daemon older than the field).
    #[serde(default)]
    pub memory: Option<ProcessMemory>,
}

/// A process's resident memory in bytes, as Linux's `/proc/<pid>/status`
/// gives it: its anonymous pages (heap, stacks) and its file pages (the
/// texts and index files it maps) apart, and the peak of the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMemory {
    pub rss_anon_bytes: u64,
    pub rss_file_bytes: u64,
    pub peak_rss_bytes: u64,
}

impl ProcessMemory {
    /// The figures of a `/proc/<pid>/status` text (`RssAnon`, `RssFile`,
    /// `VmHWM`, in kB); None when one is missing.
    pub fn from_proc_status(status: &str) -> Option<ProcessMemory> {
        let kb = |key: &str| -> Option<u64> {
            let line = status.lines().find_map(|l| l.strip_prefix(key))?;
            let value = line.strip_prefix(':')?.trim().strip_suffix("kB")?;
            value.trim().parse::<u64>().ok().map(|v| v * 1024)
        };
        Some(ProcessMemory {
            rss_anon_bytes: kb("RssAnon")?,
            rss_file_bytes: kb("RssFile")?,
            peak_rss_bytes: kb("VmHWM")?,
        })
    }
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

/// What became of one session `rlm sessions rm` or `prune` named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteOutcome {
    pub session_id: String,
    /// `deleted`, `not_found` or `failed`.
    pub status: String,
    /// What was deleted, or why it failed.
    pub message: String,
}

/// What `rlm gc` removed (or, for errors, could not).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GcReport {
    /// Stored texts no document names any more (their `blobs` rows).
    #[serde(default)]
    pub texts_removed: u64,
    /// Pack files no stored text refers to (left by a crash or a lost race,
    /// or emptied by deleted sessions).
    pub packs_removed: u64,
    /// Packs mostly garbage whose live texts were copied into a new pack.
    #[serde(default)]
    pub packs_compacted: u64,
    pub bytes_freed: u64,
    /// Temporary files of loads that never finished.
    pub temp_files_removed: u64,
    /// Per-session index folders an earlier version left (every session
    /// now searches one shared index), and lock files of sessions the store
    /// does not know.
    pub index_dirs_removed: u64,
    /// Texts whose passages left the shared search index (gc deleted the
    /// texts, or their indexing never finished).
    #[serde(default)]
    pub index_texts_removed: u64,
    /// Bytes the SQLite database and its log shrank by (compacted after
    /// large deletions); counted in `bytes_freed` too.
    #[serde(default)]
    pub database_bytes_freed: u64,
    pub lock_files_removed: u64,
    /// Files newer than the grace period are kept: a load in another process may still commit them.
    pub grace_seconds: u64,
    /// No load was under way in any process (gc held the store's loads
    /// lock alone), so texts and packs no session names went whatever their
    /// age; when false, those younger than the grace stayed.
    #[serde(default)]
    pub no_load_under_way: bool,
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
    match read_frame_len(r, max).await? {
        None => Ok(None),
        Some(size) => read_frame_body(r, size).await.map(Some),
    }
}

/// Reads a frame's length, checked against `max`; `Ok(None)` is a clean end
/// of stream (between frames). The body follows ([`read_frame_body`]): a
/// reader may first wait for room for it.
pub async fn read_frame_len<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<usize>, FrameError> {
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
    Ok(Some(size))
}

/// Reads the `size` bytes of a frame's body (after [`read_frame_len`]).
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    r: &mut R,
    size: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut body = vec![0u8; size];
    r.read_exact(&mut body).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(body)
}

/// Decodes a frame's body as a message.
pub fn decode_frame<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Garbled(e.to_string()))
}

/// Reads and decodes one message.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, FrameError> {
    match read_frame_bytes(r, max).await? {
        None => Ok(None),
        Some(body) => decode_frame(&body).map(Some),
    }
}

/// Reads and decodes one message of a daemon ([`decode_response`]).
pub async fn read_response<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Envelope<Response>>, FrameError> {
    match read_frame_bytes(r, max).await? {
        None => Ok(None),
        Some(body) => decode_response(&body)
            .map(Some)
            .map_err(|e| FrameError::Garbled(e.to_string())),
    }
}

/// Decodes a daemon's message as `serde_json::from_slice` does. A call's
/// result (`{"type": "result", "outcome": {"kind": "ok", "result": ...},
/// "id": 7}`: the commonest message and the largest) is read straight into
/// its `Value`. The derived decoder of an internally tagged enum first
/// copies the whole message into serde's own buffer, to find its tag, and
/// the result is then made from that copy; for `CallOutcome`, nested, twice:
/// some 28% of the shim's CPU on a 7 KB bm25 answer. Anything else (a tool
/// error, progress, an unknown shape) fails the fast reading at its tag and
/// goes the derived way.
pub fn decode_response(body: &[u8]) -> Result<Envelope<Response>, serde_json::Error> {
    #[derive(Deserialize)]
    struct OkResult {
        #[serde(rename = "type")]
        _type: ResultTag,
        outcome: OkOutcome,
        id: Option<u64>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum ResultTag {
        Result,
    }
    #[derive(Deserialize)]
    struct OkOutcome {
        #[serde(rename = "kind")]
        _kind: OkTag,
        result: Value,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum OkTag {
        Ok,
    }
    if let Ok(m) = serde_json::from_slice::<OkResult>(body) {
        return Ok(Envelope {
            body: Response::Result {
                outcome: CallOutcome::Ok {
                    result: m.outcome.result,
                },
            },
            id: m.id,
        });
    }
    serde_json::from_slice(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn process_memory_is_read_from_procs_status_or_not_at_all() {
        let status = "Name:\trlmd\nVmHWM:\t  230828 kB\nRssAnon:\t   16308 kB\nRssFile:\t  150016 kB\nRssShmem:\t       0 kB\n";
        assert_eq!(
            ProcessMemory::from_proc_status(status),
            Some(ProcessMemory {
                rss_anon_bytes: 16_308 * 1024,
                rss_file_bytes: 150_016 * 1024,
                peak_rss_bytes: 230_828 * 1024,
            })
        );
        let no_file_pages = status.replace("RssFile", "RssFiles");
        assert_eq!(ProcessMemory::from_proc_status(&no_file_pages), None);
        assert_eq!(ProcessMemory::from_proc_status("RssAnon: many kB"), None);
        // A status from a daemon older than the field still parses.
        let mut old = serde_json::to_value(DaemonStatus {
            daemon_version: "0".into(),
            protocol_version: 1,
            pid: 1,
            started_at: "now".into(),
            uptime_seconds: 0.0,
            socket: "s".into(),
            data_dir: "d".into(),
            auto_started: false,
            connections: 0,
            calls_in_flight: 0,
            requests_served: 0,
            sessions_active: 0,
            sessions_total: 0,
            indexes_cached: 0,
            sessions_known: 0,
            large_requests_held_bytes: 0,
            large_requests_room_bytes: 0,
            large_requests_waiting: 0,
            memory: Some(ProcessMemory {
                rss_anon_bytes: 1,
                rss_file_bytes: 2,
                peak_rss_bytes: 3,
            }),
        })
        .unwrap();
        old.as_object_mut().unwrap().remove("memory");
        let read: DaemonStatus = serde_json::from_value(old).unwrap();
        assert_eq!(read.memory, None);
    }

    #[test]
    fn responses_decode_as_the_derived_decoder_decodes_them() {
        let ok = Response::Result {
            outcome: CallOutcome::Ok {
                result: json!({"matches": [{"doc_id": "d", "score": 1.5, "context": "a \"b\" é"}],
                               "total_matches": 1, "nested": {"kind": "x", "type": "y"}}),
            },
        };
        let messages = vec![
            Envelope::new(7, ok.clone()),
            Envelope::connection(ok),
            Envelope::new(
                8,
                Response::Result {
                    outcome: CallOutcome::ToolError {
                        error: ToolError::new(crate::ErrorCode::InvalidArgument, "no"),
                    },
                },
            ),
            Envelope::new(
                9,
                Response::Result {
                    outcome: CallOutcome::Failed {
                        message: "x".into(),
                    },
                },
            ),
            Envelope::new(
                10,
                Response::Progress {
                    done: 1,
                    total: Some(2),
                    message: "m".into(),
                },
            ),
            Envelope::new(
                11,
                Response::Error {
                    message: "e".into(),
                },
            ),
        ];
        for m in messages {
            let bytes = serde_json::to_vec(&m).unwrap();
            assert_eq!(
                decode_response(&bytes).unwrap(),
                m,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // Other orders of the fields, unknown fields, and shapes neither
        // decoder takes, decode (or fail) alike.
        for text in [
            r#"{"id": 3, "outcome": {"result": [1, 2], "kind": "ok"}, "type": "result"}"#,
            r#"{"type": "result", "outcome": {"kind": "ok", "result": null, "extra": 1}, "id": 4, "more": true}"#,
            r#"{"type": "result", "outcome": {"kind": "ok"}, "id": 5}"#,
            r#"{"type": "result", "outcome": {"kind": "okay", "result": 1}, "id": 6}"#,
            r#"{"type": "result", "type": "result", "outcome": {"kind": "ok", "result": 1}}"#,
            r#"{"type": "results", "outcome": {"kind": "ok", "result": 1}}"#,
            r#"{"outcome": {"kind": "ok", "result": 1}, "id": 7}"#,
            r#"[1, 2]"#,
        ] {
            let derived: Result<Envelope<Response>, _> = serde_json::from_str(text);
            let fast = decode_response(text.as_bytes());
            match (derived, fast) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{text}: derived {a:?}, fast {b:?}"),
            }
        }
    }

    fn hello(version: u32) -> Hello {
        Hello {
            protocol_version: version,
            client_name: "t".into(),
            client_version: "0".into(),
            cwd: Some("/w".into()),
            settings: Map::new(),
        }
    }

    #[tokio::test]
    async fn messages_round_trip_through_frames() {
        let msgs = vec![
            Envelope::connection(Request::Hello(hello(PROTOCOL_VERSION))),
            Envelope::new(
                7,
                Request::Call(Call {
                    tool: "rlm.session.info".into(),
                    arguments: json!({"session_id": "x"}),
                    progress: true,
                }),
            ),
            Envelope::new(7, Request::Cancel),
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            write_frame(&mut buf, m).await.unwrap();
        }
        let mut r = buf.as_slice();
        for m in &msgs {
            let got: Envelope<Request> =
                read_frame(&mut r, MAX_FRAME_BYTES).await.unwrap().unwrap();
            assert_eq!(&got, m);
        }
        assert!(
            read_frame::<_, Envelope<Request>>(&mut r, MAX_FRAME_BYTES)
                .await
                .unwrap()
                .is_none(),
            "clean end"
        );
    }

    #[tokio::test]
    async fn oversized_truncated_and_garbled_frames_are_errors() {
        let big = (1u32 << 30).to_be_bytes();
        let err = read_frame::<_, Envelope<Request>>(&mut big.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
        let mut cut = 10u32.to_be_bytes().to_vec();
        cut.extend_from_slice(b"{\"ty");
        let err = read_frame::<_, Envelope<Request>>(&mut cut.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
        let mut junk = 3u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"abc");
        let err = read_frame::<_, Envelope<Request>>(&mut junk.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Garbled(_)), "{err}");
        let half_len = [0u8, 0];
        let err = read_frame::<_, Envelope<Request>>(&mut half_len.as_slice(), MAX_FRAME_BYTES)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Truncated), "{err}");
    }

    #[test]
    fn the_handshake_shape_is_stable() {
        // A daemon of any version must read this and answer with a Refused it can parse.
        let hello = serde_json::to_value(Envelope::connection(Request::Hello(Hello {
            protocol_version: 9,
            client_name: "c".into(),
            client_version: "1".into(),
            cwd: None,
            settings: Map::new(),
        })))
        .unwrap();
        assert_eq!(hello["type"], "hello");
        assert_eq!(hello["protocol_version"], 9);
        let shutdown = serde_json::to_value(Envelope::new(1, Request::ShutdownIfIdle)).unwrap();
        assert_eq!(
            shutdown,
            serde_json::json!({"type": "shutdown_if_idle", "id": 1})
        );
    }

    /// The envelope changed the types, not the wire: each message is the
    /// object protocol 1 always sent, so peers of either build read it alike.
    #[test]
    fn the_envelope_puts_the_id_where_each_variant_had_it() {
        fn wire<T: Serialize>(message: &T) -> Value {
            serde_json::to_value(message).unwrap()
        }
        let call = Envelope::new(
            3,
            Request::Call(Call {
                tool: "rlm.docs.list".into(),
                arguments: json!({}),
                progress: false,
            }),
        );
        assert_eq!(
            wire(&call),
            json!({"type": "call", "id": 3, "tool": "rlm.docs.list", "arguments": {}, "progress": false})
        );
        for (request, tag) in [
            (Request::Cancel, "cancel"),
            (Request::Status, "status"),
            (Request::Shutdown, "shutdown"),
            (Request::ListSessions, "list_sessions"),
            (
                Request::Gc {
                    grace_seconds: None,
                },
                "gc",
            ),
        ] {
            assert_eq!(
                wire(&Envelope::new(4, request)),
                json!({"type": tag, "id": 4})
            );
        }
        let result = Envelope::new(
            3,
            Response::Result {
                outcome: CallOutcome::Ok { result: json!({}) },
            },
        );
        assert_eq!(
            wire(&result),
            json!({"type": "result", "id": 3, "outcome": {"kind": "ok", "result": {}}})
        );
        let progress = Envelope::new(
            3,
            Response::Progress {
                done: 1,
                total: None,
                message: "m".into(),
            },
        );
        assert_eq!(
            wire(&progress),
            json!({"type": "progress", "id": 3, "done": 1, "total": null, "message": "m"})
        );
        let ack = Envelope::new(
            5,
            Response::ShutdownAck {
                accepted: true,
                reason: "r".into(),
            },
        );
        assert_eq!(
            wire(&ack),
            json!({"type": "shutdown_ack", "id": 5, "accepted": true, "reason": "r"})
        );
        // The closing error has no id (protocol 1 wrote `"id": null`; both read as none).
        let closing = Envelope::connection(Response::Error {
            message: "bye".into(),
        });
        assert_eq!(wire(&closing), json!({"type": "error", "message": "bye"}));
        let old: Envelope<Response> =
            serde_json::from_value(json!({"type": "error", "id": null, "message": "bye"})).unwrap();
        assert_eq!(old, closing);
        let old: Envelope<Response> = serde_json::from_value(
            json!({"type": "gc_done", "id": 9, "report": GcReport::default()}),
        )
        .unwrap();
        assert_eq!(old.id, Some(9));
        assert!(matches!(old.body, Response::GcDone { .. }));
    }

    #[test]
    fn a_bad_id_or_body_is_an_error() {
        for bad in [
            json!({"type": "status", "id": "seven"}),
            json!({"type": "no_such_request", "id": 1}),
            json!({"type": "call", "id": 1}),
            json!([1, 2]),
        ] {
            assert!(
                serde_json::from_value::<Envelope<Request>>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    /// The deletion requests a daemon of this build reads, and the gc
    /// report of an older daemon (without the new counts) still reads.
    #[test]
    fn deletion_requests_and_an_older_gc_report_read() {
        let rm: Envelope<Request> = serde_json::from_value(
            json!({"type": "delete_sessions", "id": 5, "session_ids": ["a", "b"]}),
        )
        .unwrap();
        assert_eq!(
            rm.body,
            Request::DeleteSessions {
                session_ids: vec!["a".into(), "b".into()]
            }
        );
        let prune: Envelope<Request> = serde_json::from_value(
            json!({"type": "prune_sessions", "id": 6, "closed_before_seconds": 60}),
        )
        .unwrap();
        assert_eq!(
            prune.body,
            Request::PruneSessions {
                closed_before_seconds: 60
            }
        );
        let old: GcReport = serde_json::from_value(json!({
            "packs_removed": 1, "bytes_freed": 2, "temp_files_removed": 0,
            "index_dirs_removed": 0, "lock_files_removed": 0, "grace_seconds": 3600, "errors": []
        }))
        .unwrap();
        assert_eq!((old.texts_removed, old.packs_compacted), (0, 0));
    }

    #[test]
    fn an_older_daemon_s_status_reads_with_no_sessions_known() {
        let old: DaemonStatus = serde_json::from_value(json!({
            "daemon_version": "0.1.0", "protocol_version": PROTOCOL_VERSION, "pid": 7,
            "started_at": "t", "uptime_seconds": 1.0, "socket": "/s", "data_dir": "/d",
            "auto_started": true, "connections": 1, "calls_in_flight": 0,
            "requests_served": 3, "sessions_active": 1, "sessions_total": 2,
            "indexes_cached": 1
        }))
        .unwrap();
        assert_eq!((old.indexes_cached, old.sessions_known), (1, 0));
    }
}
