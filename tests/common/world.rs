//! A test's private world: its temp dir (socket, data, logs), a daemon started in it, the CLI
//! run in it, corpora, and what the store holds on disk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------- a test's private world

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A private temp dir under /tmp (short: socket paths must stay under 108 bytes) holding the
/// socket, the data dir and the logs. Dropping it kills every process that mentions it.
/// The address space a daemon of the hostile suites may use
/// ([`TestDir::start_daemon_limited`]): room for its threads' stacks and
/// its mappings, far below what an unbounded queue reaches.
pub const LIMIT: u64 = 3 << 30;

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
        for key in vars_to_clear() {
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

    /// Starts `rlmd` on this dir with an open-files limit (`RLIMIT_NOFILE`)
    /// of `soft` and `hard` descriptors.
    pub fn start_daemon_with_open_files(&self, soft: u64, hard: u64) -> Daemon {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command(&rlmd());
        // SAFETY: setrlimit is async-signal-safe and touches nothing of the parent.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    soft,
                    hard,
                )
                .map_err(std::io::Error::from)
            });
        }
        self.start_daemon_cmd(cmd, &self.socket, &self.data, &[], &[])
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

/// The variables a child of a test must not inherit (the outer RLM_* and systemd's).
pub fn vars_to_clear() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("RLM_") || k == "LISTEN_PID" || k == "LISTEN_FDS" || k == "LISTEN_FDNAMES"
        })
        .collect()
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

/// A tmpfs mounted for one test (the suites that use it run as root, as
/// CI does), unmounted when dropped.
pub struct Tmpfs(pub std::path::PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        mount_cmd(
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ],
            at,
        );
        Tmpfs(at.to_owned())
    }

    pub fn remount(&self, how: &str) {
        mount_cmd(&["-o", &format!("remount,{how}")], &self.0);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn mount_cmd(args: &[&str], at: &Path) {
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(at)
        .output()
        .expect("running mount");
    assert!(
        out.status.success(),
        "mount {args:?} {} failed (this suite runs as root): {}",
        at.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
