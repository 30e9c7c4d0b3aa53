//! Helpers of the multi-process tests: the built `rlmd` and `rlm-mcp`, a private temp dir per
//! test (socket, data, logs), real daemon and shim processes, a raw MCP driver (JSON-RPC lines
//! on the shim's stdio), a raw IPC client (length-prefixed JSON frames on the socket), process
//! lookups through /proc, and polling with deadlines.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// How long any single expected event may take before a test gives up.
pub const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- binaries

/// `target/<profile>`: the test runs as `target/<profile>/deps/<test>-<hash>`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_owned()
}

/// The cargo target directory (`target/`).
pub fn target_dir() -> PathBuf {
    bin_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_owned()
}

/// `<target>/<kind>/<name>`, made by `install` (given the empty folder) the
/// first time it is asked for with this `spec`, and reused while its marker
/// says `spec`; a folder left half made is made again. Under a file lock in
/// `<target>/<kind>`, so parallel tests and test binaries do not race.
pub fn installed_once(kind: &str, name: &str, spec: &str, install: impl FnOnce(&Path)) -> PathBuf {
    let root = target_dir().join(kind);
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".lock"))
        .unwrap();
    fs4::FileExt::lock(&lock).unwrap_or_else(|e| panic!("locking {}: {e}", root.display()));
    let dir = root.join(name);
    let marker = dir.join(".rlm-ready");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(spec) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    install(&dir);
    std::fs::write(&marker, spec).unwrap();
    dir
}

/// Runs an installer's command; panics with its output when it fails.
pub fn run_installer(cmd: &mut Command, what: &str, needs: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); {needs} is required"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// The daemon binary.
pub fn rlmd() -> PathBuf {
    bin("rlmd")
}

/// The MCP shim binary.
pub fn shim_bin() -> PathBuf {
    bin("rlm-mcp")
}

/// The repository root (the parent of this package's folder, `tests/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the rlm-e2e package lives in the repository's tests/")
        .to_owned()
}

// ---------------------------------------------------------------- polling

/// Polls `f` until it returns `Some`, or panics with `what` after `within`. The one place
/// the tests pause: every wait is this poll on an observable event, with a deadline that only
/// bounds a failure (a slow machine makes a test slower, never wrong).
pub fn wait_until<T>(within: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_until_else(within, what, String::new, f)
}

/// [`wait_until`], adding `detail()` (a log, say) to the failure message.
pub fn wait_until_else<T>(
    within: Duration,
    what: &str,
    detail: impl FnOnce() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {within:?} waiting for {what}\n{}",
                detail()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- processes

/// The argv of a live process (None for a zombie, a kernel thread, or a gone process).
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// Every live process (pid, argv) with an argument that contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(i32, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Some(argv) = cmdline(pid)
            && argv.iter().any(|a| a.contains(needle))
        {
            out.push((pid, argv));
        }
    }
    out
}

/// The pids of live `rlmd` processes serving (or trying to serve) `socket`.
pub fn rlmd_pids(socket: &Path) -> Vec<i32> {
    let socket = socket.to_str().expect("a UTF-8 socket path");
    let mut pids: Vec<i32> = processes_mentioning(socket)
        .into_iter()
        .filter(|(_, argv)| {
            Path::new(&argv[0]).file_name().and_then(|n| n.to_str()) == Some("rlmd")
                && argv.iter().any(|a| a == socket)
        })
        .map(|(pid, _)| pid)
        .collect();
    pids.sort_unstable();
    pids
}

/// The one `rlmd` serving `socket`, waiting for it to appear.
pub fn the_rlmd(socket: &Path) -> i32 {
    wait_until(
        WAIT,
        "exactly one rlmd process for the socket",
        || match rlmd_pids(socket).as_slice() {
            [pid] => Some(*pid),
            _ => None,
        },
    )
}

/// Whether the process is gone (or a zombie that has closed all its files).
pub fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            // A zombie leader may still have threads finishing their exit, and the files
            // (sockets) close only when the last one is done: wait for the leader alone.
            zombie
                && std::fs::read_dir(format!("/proc/{pid}/task"))
                    .map(|d| d.count() <= 1)
                    .unwrap_or(true)
        }
    }
}

pub fn signal(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
}

/// `kill -9`, then waits until the process has released its files.
pub fn kill9(pid: i32) {
    signal(pid, Signal::SIGKILL);
    wait_until(WAIT, "the killed process to be gone", || {
        is_gone(pid).then_some(())
    });
}

// ---------------------------------------------------------------- a test's private world

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A private temp dir under /tmp (short: socket paths must stay under 108 bytes) holding the
/// socket, the data dir and the logs. Dropping it kills every process that mentions it.
pub struct TestDir {
    pub tmp: tempfile::TempDir,
    pub socket: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
    /// An empty config.toml (RLM_CONFIG), so that no user's config applies.
    pub config: PathBuf,
}

impl TestDir {
    pub fn new() -> TestDir {
        let tmp = tempfile::Builder::new()
            .prefix("rt")
            .tempdir_in("/tmp")
            .expect("a temp dir under /tmp");
        let socket = tmp.path().join("d.sock");
        let data = tmp.path().join("data");
        let logs = tmp.path().join("logs");
        std::fs::create_dir_all(&logs).expect("the logs dir");
        let config = tmp.path().join("config.toml");
        std::fs::write(&config, "").expect("an empty config.toml");
        TestDir {
            tmp,
            socket,
            data,
            logs,
            config,
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// A command with no RLM_* variable of the outer environment, an empty config, logs under
    /// this dir, and this dir as its working directory.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for key in inherited_vars_to_clear() {
            cmd.env_remove(key);
        }
        for (key, value) in self.env() {
            cmd.env(key, value);
        }
        cmd.current_dir(self.path()).stdin(Stdio::null());
        cmd
    }

    /// The variables every process of this test gets (after the outer RLM_* are removed).
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("RLM_CONFIG", self.config.clone()),
            ("RLM_LOG_DIR", self.logs.clone()),
        ]
    }

    /// How many daemons logged that they started serving (every daemon of this test logs
    /// to the same folder, in JSON files and a stderr file).
    pub fn daemon_starts(&self) -> usize {
        self.rlmd_logs().matches("rlmd serving").count()
    }

    /// Everything the daemons of this test wrote to the log folder.
    pub fn rlmd_logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.logs) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("rlmd") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// A log file for one process of this test.
    pub fn log_file(&self, stem: &str) -> PathBuf {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        self.logs.join(format!("{stem}-{n}.log"))
    }

    /// Starts `rlmd` on this dir's socket and data dir and waits until it answers a hello.
    pub fn start_daemon(&self, extra: &[&str]) -> Daemon {
        self.start_daemon_on(&self.socket, &self.data, extra)
    }

    /// Starts `rlmd` on another socket and/or data dir.
    pub fn start_daemon_on(&self, socket: &Path, data: &Path, extra: &[&str]) -> Daemon {
        self.start_daemon_with(socket, data, extra, &[])
    }

    /// Starts `rlmd` with more environment variables (`RLM_LOG`, say).
    pub fn start_daemon_with(
        &self,
        socket: &Path,
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let cmd = self.command(&rlmd());
        self.start_daemon_cmd(cmd, socket, data, extra, env)
    }

    /// Starts `rlmd` on this dir under an address-space limit of `bytes`
    /// (`RLIMIT_AS`): an allocation past it fails, so a daemon whose memory
    /// grows with what a client sends dies in the test instead of swapping.
    pub fn start_daemon_limited(&self, data: &Path, extra: &[&str], bytes: u64) -> Daemon {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(&rlmd());
        // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, bytes, bytes)
                    .map_err(std::io::Error::from)
            });
        }
        self.start_daemon_cmd(cmd, &self.socket, data, extra, &[])
    }

    fn start_daemon_cmd(
        &self,
        mut cmd: Command,
        socket: &Path,
        data: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let log = self.log_file("daemon");
        cmd.envs(env.iter().copied());
        cmd.arg("--socket")
            .arg(socket)
            .arg("--data-dir")
            .arg(data)
            .arg("--log-stderr")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the daemon's log"));
        let child = cmd.spawn().expect("rlmd starts");
        let mut daemon = Daemon {
            child,
            socket: socket.to_owned(),
            log,
        };
        daemon.wait_ready();
        daemon
    }

    /// Starts `rlm-mcp` on this dir's socket and data dir (it starts a daemon when none answers).
    pub fn shim(&self, extra: &[&str]) -> Shim {
        self.shim_on(&self.socket, extra)
    }

    pub fn shim_on(&self, socket: &Path, extra: &[&str]) -> Shim {
        let mut cmd = self.command(&shim_bin());
        cmd.arg("--socket")
            .arg(socket)
            .arg("--data-dir")
            .arg(&self.data)
            .args(extra);
        Shim::spawn(cmd, self.log_file("rlm-mcp"))
    }

    /// Every log this test wrote (for failure messages).
    pub fn logs_text(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.logs) {
            let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                out.push_str(&format!("--- {}\n{}\n", p.display(), tail(&text, 3000)));
            }
        }
        out
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // Daemons started by shims are detached: find them by the path they were given.
        let needle = self.path().to_string_lossy().into_owned();
        for (pid, _) in processes_mentioning(&needle) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn inherited_vars_to_clear() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("RLM_") || k == "LISTEN_PID" || k == "LISTEN_FDS" || k == "LISTEN_FDNAMES"
        })
        .collect()
}

/// The variables a child of a test must not inherit (the outer RLM_* and systemd's).
pub fn vars_to_clear() -> Vec<OsString> {
    inherited_vars_to_clear()
}

pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut at = text.len() - max;
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

// ---------------------------------------------------------------- a daemon we started

/// An `rlmd` child of the test. Dropping it kills it.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        let log = self.log.clone();
        wait_until(WAIT, "rlmd to answer a hello", || {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "rlmd exited ({status}) before serving {}:\n{}",
                    socket.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let mut c = Ipc::connect(&socket).ok()?;
            (c.hello().get("type") == Some(&json!("welcome"))).then_some(())
        });
    }

    pub fn signal(&self, sig: Signal) {
        signal(self.pid(), sig);
    }

    /// Waits for the daemon to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let pid = self.pid();
        let log = self.log.clone();
        let child = &mut self.child;
        wait_until_else(
            within,
            &format!("rlmd (pid {pid}) to exit"),
            || tail(&std::fs::read_to_string(&log).unwrap_or_default(), 3000).to_owned(),
            || child.try_wait().expect("try_wait"),
        )
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

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

impl Shim {
    pub fn spawn(mut cmd: Command, stderr: PathBuf) -> Shim {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("the shim's stderr file"));
        let mut child = cmd.spawn().expect("rlm-mcp starts");
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

// ---------------------------------------------------------------- corpora

/// Writes `n` small distinct text files under `dir` (returns the dir).
pub fn write_corpus(dir: &Path, n: usize, bytes_each: usize) -> PathBuf {
    std::fs::create_dir_all(dir).expect("the corpus dir");
    let words = [
        "harbour", "ledger", "copper", "lantern", "meadow", "orbit", "parcel", "quarry", "ribbon",
        "saddle", "timber", "velvet", "walnut", "anchor", "bramble", "cinder",
    ];
    for i in 0..n {
        let mut text = format!("file {i} marker{i:05}\n");
        let mut k = i as u64;
        while text.len() < bytes_each {
            k = k
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(words[(k >> 33) as usize % words.len()]);
            text.push(if (k >> 20).is_multiple_of(11) {
                '\n'
            } else {
                ' '
            });
        }
        std::fs::write(dir.join(format!("f{i:05}.txt")), text).expect("a corpus file");
    }
    dir.to_owned()
}

/// Lowercase hex SHA-256, as the contract's `content_hash`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------- holding a load back

/// Takes a session's lock file (`<data>/locks/<session>.lock`) as another daemon would:
/// every change of the session (a load's commit, an index build, a close) waits until the
/// returned file is dropped. A load held this way has read its files and renamed its pack
/// into `blobs/packs/` (see [`wait_for_packs`]) and is in flight by construction.
pub fn hold_session_lock(data: &Path, session_id: &str) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join("locks").join(format!("{session_id}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    fs4::FileExt::lock(&file).expect("the session lock");
    file
}

/// The `rlm` CLI built beside the tests.
pub fn rlm_cli() -> PathBuf {
    let p = bin_dir().join("rlm");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// Runs `rlm` with `args` on this dir's socket and data: exit code, stdout, stderr.
pub fn run_cli(t: &TestDir, args: &[&str]) -> (i32, String, String) {
    let out = t
        .command(&rlm_cli())
        .env("RLM_SOCKET", &t.socket)
        .env("RLM_DATA_DIR", &t.data)
        .args(args)
        .output()
        .expect("rlm runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One figure of `/proc/<pid>/status` (`VmHWM`, `RssAnon`, `RssFile` in kB;
/// `Threads` as a count).
pub fn proc_status(pid: i32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Every path below `root`, `root` included, without following links.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() && !out[i].is_symlink() {
            for e in std::fs::read_dir(&out[i]).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        i += 1;
    }
    out
}

/// The pack files under `<data>/blobs/packs/`.
pub fn pack_files(data: &Path) -> Vec<PathBuf> {
    let mut packs: Vec<PathBuf> = std::fs::read_dir(data.join("blobs/packs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pack"))
                .collect()
        })
        .unwrap_or_default();
    packs.sort();
    packs
}

/// Waits until `<data>/blobs/packs/` holds `n` packs: a load renames its pack there after
/// reading every file and before it takes the session lock to commit.
pub fn wait_for_packs(data: &Path, n: usize) {
    wait_until(WAIT, &format!("{n} pack file(s) under blobs/packs"), || {
        (pack_files(data).len() >= n).then_some(())
    });
}

/// Waits for a child process to exit.
pub fn wait_child(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    wait_until(within, what, || child.try_wait().expect("try_wait"))
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

impl TestDir {
    /// Every JSON line of the daemons' log files (`rlmd.<date>.log`) in this test's log folder.
    pub fn rlmd_json_lines(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.logs) else {
            return out;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rlmd.") && n.ends_with(".log"))
            })
            .collect();
        paths.sort();
        for p in paths {
            for line in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                if let Ok(v) = serde_json::from_str::<Value>(line) {
                    out.push(v);
                }
            }
        }
        out
    }
}
