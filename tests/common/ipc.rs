//! A raw IPC client: length-prefixed JSON frames on the daemon's socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------- raw IPC

/// The hello a well-behaved client sends.
pub fn hello_frame_value() -> Value {
    json!({
        "type": "hello",
        "protocol_version": 1,
        "client_name": "rlm-system-tests",
        "client_version": "0",
        "cwd": "/tmp",
    })
}

/// Encodes one frame: a 4-byte big-endian length, then the JSON.
pub fn frame(v: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(v).expect("JSON");
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A raw client of the daemon's socket, speaking the frames by hand (not through the
/// shared crate's codec, so that the wire format itself is what is tested).
pub struct Ipc {
    pub stream: UnixStream,
    next_id: u64,
}

/// What reading one frame gave.
#[derive(Debug)]
pub enum Read1 {
    Frame(Value),
    /// The daemon closed the connection (between frames).
    Closed,
    /// Nothing arrived in time.
    TimedOut,
    /// The connection broke, or ended in the middle of a frame.
    Broken(String),
}

impl Ipc {
    pub fn connect(socket: &Path) -> std::io::Result<Ipc> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.set_write_timeout(Some(WAIT))?;
        Ok(Ipc { stream, next_id: 1 })
    }

    /// Connects and completes the handshake (panics unless welcomed).
    pub fn handshake(socket: &Path) -> Ipc {
        let mut c = Ipc::connect(socket)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        let answer = c.hello();
        assert_eq!(answer["type"], "welcome", "hello answered with {answer}");
        c
    }

    /// Sends the hello and returns the first answer (`{}` if the connection closed).
    pub fn hello(&mut self) -> Value {
        if self.send(&hello_frame_value()).is_err() {
            return json!({});
        }
        match self.read_within(WAIT) {
            Read1::Frame(v) => v,
            _ => json!({}),
        }
    }

    pub fn send(&mut self, v: &Value) -> std::io::Result<()> {
        self.stream.write_all(&frame(v))
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one frame within `timeout`.
    pub fn read_within(&mut self, timeout: Duration) -> Read1 {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set_read_timeout");
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.stream.read(&mut len[got..]) {
                Ok(0) if got == 0 => return Read1::Closed,
                Ok(0) => return Read1::Broken("closed inside a length prefix".into()),
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Read1::TimedOut;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Read1::Closed;
                }
                Err(e) => return Read1::Broken(e.to_string()),
            }
        }
        let size = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; size];
        if let Err(e) = self.stream.read_exact(&mut body) {
            return Read1::Broken(format!("reading a {size}-byte body: {e}"));
        }
        match serde_json::from_slice(&body) {
            Ok(v) => Read1::Frame(v),
            Err(e) => Read1::Broken(format!("the daemon sent a frame that is not JSON: {e}")),
        }
    }

    /// Reads frames until the connection closes; returns them. Panics if it stays open.
    pub fn frames_until_closed(&mut self, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the daemon kept the connection open (got {frames:?})"
            );
            match self.read_within(left) {
                Read1::Frame(v) => frames.push(v),
                Read1::Closed => return frames,
                Read1::TimedOut => {
                    panic!("the daemon kept the connection open for {within:?} (got {frames:?})")
                }
                Read1::Broken(e) => panic!("the connection broke instead of closing: {e}"),
            }
        }
    }

    /// Sends a call and returns its id.
    pub fn send_call(&mut self, tool: &str, arguments: Value, progress: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({
            "type": "call", "id": id, "tool": tool, "arguments": arguments, "progress": progress,
        }))
        .unwrap_or_else(|e| panic!("sending {tool}: {e}"));
        id
    }

    /// Waits for the result of call `id` (skipping progress); returns its `outcome`.
    pub fn outcome_of(&mut self, id: u64) -> Value {
        loop {
            match self.read_within(WAIT) {
                Read1::Frame(v) if v["type"] == "result" && v["id"] == id => {
                    return v["outcome"].clone();
                }
                Read1::Frame(v) if v["type"] == "progress" => {}
                Read1::Frame(v) => panic!("unexpected frame while waiting for call {id}: {v}"),
                other => panic!("no result for call {id}: {other:?}"),
            }
        }
    }

    /// Runs a call; returns its outcome (`{"kind": "ok", "result": ..}` or an error kind).
    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let id = self.send_call(tool, arguments, false);
        self.outcome_of(id)
    }

    /// Runs a call that must succeed; returns its result.
    pub fn ok(&mut self, tool: &str, arguments: Value) -> Value {
        let outcome = self.call(tool, arguments);
        assert_eq!(outcome["kind"], "ok", "{tool} failed: {outcome}");
        outcome["result"].clone()
    }
}
impl Ipc {
    /// The daemon's `status` (counters, uptime), asked on this connection.
    pub fn status(&mut self) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"type": "status", "id": id}))
            .expect("sending status");
        loop {
            match self.read_within(WAIT) {
                Read1::Frame(v) if v["type"] == "status" && v["id"] == id => {
                    return v["status"].clone();
                }
                Read1::Frame(v) if v["type"] == "progress" => {}
                other => panic!("no status answer: {other:?}"),
            }
        }
    }
}

/// Creates a session on `c` with these config overrides; returns its id.
pub fn session(c: &mut Ipc, config: Value) -> String {
    c.ok("rlm.session.create", json!({ "config": config }))["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Loads one inline text into session `sid` (must succeed).
pub fn load_inline(c: &mut Ipc, sid: &str, content: &str) {
    c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": content}]}),
    );
}
