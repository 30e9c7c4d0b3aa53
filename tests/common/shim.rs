//! A raw MCP driver: JSON-RPC lines on a shim's stdio.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------- raw MCP through the shim

/// What the shim's stdout gave.
enum Line {
    Json(Value),
    NotJson(String),
    Eof,
}

/// One `rlm-mcp` child driven with raw JSON-RPC lines. Every line it writes on stdout must be
/// JSON-RPC; anything else fails the test.
pub struct Shim {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    next_id: u64,
    pub stderr: PathBuf,
    /// Notifications seen while waiting for responses.
    pub notifications: Vec<Value>,
}

/// The outcome of a `tools/call` as an MCP client sees it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `structuredContent` of a successful result.
    Ok(Value),
    /// An `isError` result: the error code and message of its `structuredContent`.
    ToolError {
        code: String,
        message: String,
        result: Value,
    },
    /// A JSON-RPC error.
    Rpc(Value),
}

impl Outcome {
    /// The result of a call that must have succeeded.
    pub fn ok(self) -> Value {
        match self {
            Outcome::Ok(v) => v,
            other => panic!("expected a successful call, got {other:?}"),
        }
    }

    /// The tool error code, if this is a tool error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Outcome::ToolError { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Reads a `tools/call` response into an [`Outcome`], checking the contract's result shape.
pub fn outcome_of_response(response: &Value) -> Outcome {
    if let Some(error) = response.get("error") {
        return Outcome::Rpc(error.clone());
    }
    let result = &response["result"];
    let structured = result["structuredContent"].clone();
    let text = result["content"][0]["text"].as_str().unwrap_or("");
    if result["isError"] == json!(true) {
        return Outcome::ToolError {
            code: structured["error"]["code"]
                .as_str()
                .unwrap_or_else(|| panic!("an isError result without an error code: {result}"))
                .to_owned(),
            message: structured["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            result: result.clone(),
        };
    }
    let same: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the text item of a result is not its JSON ({e}): {result}"));
    assert_eq!(
        same, structured,
        "the text item must carry the same JSON as structuredContent"
    );
    Outcome::Ok(structured)
}

/// Starts `cmd`, again while the kernel says its executable is busy: a copy
/// of a binary a test has just written can be held open for writing, for an
/// instant, by a child that another test's thread forks meanwhile (the
/// descriptor lives in it until its exec), and exec refuses a file open for
/// writing (`ETXTBSY`). Gives up after ten seconds.
fn spawn_retrying_busy(cmd: &mut Command) -> Child {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("rlm-mcp starts: {e}"),
        }
    }
}

impl Shim {
    pub fn spawn(mut cmd: Command, stderr: PathBuf) -> Shim {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("the shim's stderr file"));
        let mut child = spawn_retrying_busy(&mut cmd);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Line::Eof);
                        return;
                    }
                    Ok(_) => {
                        let msg = match serde_json::from_str::<Value>(line.trim_end()) {
                            Ok(v) if v.get("jsonrpc") == Some(&json!("2.0")) => Line::Json(v),
                            _ => Line::NotJson(line),
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Shim {
            child,
            stdin,
            lines: rx,
            next_id: 1,
            stderr,
            notifications: Vec::new(),
        }
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        let mut line = serde_json::to_vec(msg).expect("JSON");
        line.push(b'\n');
        stdin
            .write_all(&line)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to rlm-mcp: {e}\n{}", self.stderr_text()));
    }

    /// Writes raw bytes to the shim's stdin as they are (no newline added): a line that is not
    /// JSON, or one written in pieces.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to rlm-mcp: {e}\n{}", self.stderr_text()));
    }

    /// The shim's peak resident memory so far (`VmHWM` of /proc/<pid>/status), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        proc_status(self.child.id() as i32, "VmHWM") * 1024
    }

    /// The next message from the shim.
    pub fn recv(&mut self, within: Duration) -> Value {
        match self.lines.recv_timeout(within) {
            Ok(Line::Json(v)) => v,
            Ok(Line::NotJson(line)) => panic!("rlm-mcp wrote a non-MCP line on stdout: {line:?}"),
            Ok(Line::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("rlm-mcp closed its stdout:\n{}", self.stderr_text())
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!(
                    "rlm-mcp did not answer within {within:?}:\n{}",
                    self.stderr_text()
                )
            }
        }
    }

    /// Sends a request and returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Waits for the response to `id`, keeping notifications aside.
    pub fn response_to(&mut self, id: u64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.recv(left.max(Duration::from_millis(1)));
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            if msg.get("method").is_some() && msg.get("id").is_none() {
                self.notifications.push(msg);
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response_to(id, WAIT)
    }

    /// `initialize` + `notifications/initialized`.
    pub fn initialize(&mut self) -> Value {
        let init = self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "rlm-system-tests", "version": "0"},
            }),
        );
        assert!(init.get("result").is_some(), "initialize failed: {init}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        init
    }

    /// Sends a `tools/call` and returns its request id.
    pub fn send_call(&mut self, tool: &str, arguments: Value) -> u64 {
        self.send_request("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    pub fn call(&mut self, tool: &str, arguments: Value) -> Outcome {
        let id = self.send_call(tool, arguments);
        let response = self.response_to(id, WAIT);
        outcome_of_response(&response)
    }

    /// Closes stdin (the MCP client went away) and waits for the shim to exit.
    pub fn close(mut self) -> ExitStatus {
        drop(self.stdin.take());
        let child = &mut self.child;
        wait_until(WAIT, "rlm-mcp to exit after its stdin closed", || {
            child.try_wait().expect("try_wait")
        })
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
