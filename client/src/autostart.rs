//! Starting `rlmd` on demand: one starter at a time (a spawn lock beside the
//! socket), a detached daemon (new session, no inherited stdio), and a typed
//! start-up report read from a pipe within a deadline.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fs4::{FileExt, TryLockError};
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};

use rlm::protocol::{
    Envelope, MAX_FRAME_BYTES, Request, Response, StartupReport, read_frame, write_frame,
};

/// How a client starts a daemon.
#[derive(Debug, Clone)]
pub struct AutoStart {
    /// The `rlmd` executable.
    pub rlmd: PathBuf,
    /// Passed as `--data-dir` when set (else the daemon's own default).
    pub data_dir: Option<PathBuf>,
    /// The started daemon exits after this long without clients.
    pub idle_timeout: Duration,
    /// Where the started daemon's stderr goes (else nowhere).
    pub log_file: Option<PathBuf>,
}

impl AutoStart {
    /// How a client configured by `config` starts a daemon: `rlmd` found
    /// beside it, the config's idle timeout unless `idle_timeout` overrides it.
    pub fn from_config(
        config: &rlm::config::Config,
        data_dir: Option<PathBuf>,
        idle_timeout: Option<Duration>,
    ) -> AutoStart {
        AutoStart {
            rlmd: AutoStart::find_rlmd(),
            data_dir,
            idle_timeout: idle_timeout
                .or_else(|| config.idle_timeout())
                .unwrap_or(Duration::ZERO),
            // The daemon writes its own log files; this catches what it says before it can.
            log_file: config.log_dir().ok().map(|d| d.join("rlmd.stderr.log")),
        }
    }

    /// `rlmd` beside this executable, else on `PATH`.
    pub fn find_rlmd() -> PathBuf {
        let beside = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(exe_name("rlmd"))));
        match beside {
            Some(p) if p.is_file() => p,
            _ => PathBuf::from(exe_name("rlmd")),
        }
    }
}

/// Why `rlmd` could not be run, with where it was looked for when it was
/// not found (a bare `No such file or directory` named no place).
fn spawn_error(rlmd: &Path, e: &std::io::Error) -> String {
    if e.kind() != std::io::ErrorKind::NotFound {
        return format!("running {}: {e}", rlmd.display());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
        .map_or_else(
            || "this executable's folder".to_owned(),
            |d| d.display().to_string(),
        );
    let path = std::env::var("PATH").unwrap_or_default();
    format!(
        "no {} beside this program (in {beside}) nor on PATH ({path}); install it (`cargo install --locked --path daemon`), put it beside this program, or start one yourself (`rlmd`)",
        exe_name("rlmd")
    )
}

fn exe_name(stem: &str) -> String {
    format!("{stem}{}", std::env::consts::EXE_SUFFIX)
}

async fn connects(socket: &Path) -> bool {
    match socket.to_fs_name::<GenericFilePath>() {
        Ok(name) => matches!(
            tokio::time::timeout(Duration::from_secs(2), Stream::connect(name)).await,
            Ok(Ok(_))
        ),
        Err(_) => false,
    }
}

/// Starts a daemon unless another starter did meanwhile. Returns once a
/// daemon serves the socket, or with the reason none does.
pub async fn start(auto: &AutoStart, socket: &Path, deadline: Instant) -> Result<(), String> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    rlm::paths::ensure_socket_dir(dir)
        .map_err(|e| format!("preparing the socket folder {}: {e}", dir.display()))?;
    let lock_path = PathBuf::from(format!("{}.spawn.lock", socket.display()));
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    // A link planted at the lock's path (in a shared folder such as /tmp) is
    // not followed.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        nix::fcntl::OFlag::O_NOFOLLOW.bits(),
    );
    let lock = options
        .open(&lock_path)
        .map_err(|e| format!("opening the spawn lock {}: {e}", lock_path.display()))?;
    // Only one starter at a time; the others wait here, then find it serving.
    let mut pause = Duration::from_millis(2);
    loop {
        match FileExt::try_lock(&lock) {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(format!("locking {}: {e}", lock_path.display()));
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "another client has been starting rlmd for too long (it holds {})",
                lock_path.display()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    if connects(socket).await {
        return Ok(());
    }
    let auto = auto.clone();
    let socket_owned = socket.to_owned();
    let left = deadline.saturating_duration_since(Instant::now());
    let report = tokio::task::spawn_blocking(move || spawn_and_wait(&auto, &socket_owned, left))
        .await
        .map_err(|e| format!("starting rlmd: {e}"))??;
    drop(lock);
    match report {
        StartupReport::Ready { .. } | StartupReport::AlreadyRunning { .. } => Ok(()),
        StartupReport::Failed { message } => Err(format!("rlmd could not start: {message}")),
    }
}

/// Spawns the daemon detached and reads its one-line start-up report.
#[cfg(unix)]
fn spawn_and_wait(
    auto: &AutoStart,
    socket: &Path,
    within: Duration,
) -> Result<StartupReport, String> {
    use rlm::protocol::READY_FD_ENV;
    use std::io::Read;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;

    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("creating a pipe: {e}"))?;
    let write_fd = write_end.as_raw_fd();
    let stderr = match &auto.log_file {
        Some(path) => {
            // The daemon's stderr lands beside its logs: the user's alone, in
            // a folder no other user can plant a link in (else it is dropped,
            // as the daemon's log files are then), never through a link.
            let own = path.parent().is_some_and(|parent| {
                rlm::paths::ensure_own_dir(
                    parent,
                    &rlm::paths::is_log_file,
                    "log folder",
                    "RLM_LOG_DIR",
                )
                .is_ok()
            });
            use std::os::unix::fs::OpenOptionsExt;
            own.then(|| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                    .open(path)
                    .ok()
            })
            .flatten()
            .map_or_else(Stdio::null, Stdio::from)
        }
        None => Stdio::null(),
    };
    let mut cmd = rlmd_command(auto, socket, stderr);
    cmd.env(READY_FD_ENV, write_fd.to_string());
    // SAFETY: between fork and exec only async-signal-safe calls: setsid and fcntl.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: no terminal, no signals of the client's group.
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            // The report pipe is the one descriptor the daemon inherits.
            let flags = nix::fcntl::fcntl(
                std::os::fd::BorrowedFd::borrow_raw(write_fd),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            );
            flags.map(|_| ()).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| spawn_error(&auto.rlmd, &e))?;
    drop(write_end);
    // Reap the daemon when it exits, so it never lingers as a zombie of ours.
    std::thread::Builder::new()
        .name("rlmd-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(|e| format!("starting a reaper thread: {e}"))?;
    let mut file = std::fs::File::from(read_end);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let r = file.read_to_string(&mut text).map(|_| text);
        let _ = tx.send(r);
    });
    let text = match rx.recv_timeout(within) {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(format!("reading rlmd's start-up report: {e}")),
        Err(_) => {
            return Err(format!(
                "rlmd did not report within {within:?}; see its log"
            ));
        }
    };
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!(
            "rlmd ({}) exited without reporting why{}",
            auto.rlmd.display(),
            auto.log_file
                .as_ref()
                .map(|p| format!("; see {}", p.display()))
                .unwrap_or_default()
        ));
    }
    serde_json::from_str(line)
        .map_err(|e| format!("rlmd's start-up report {line:?} is unreadable: {e}"))
}

#[cfg(not(unix))]
fn spawn_and_wait(
    auto: &AutoStart,
    socket: &Path,
    within: Duration,
) -> Result<StartupReport, String> {
    // Compile-checked for Windows only: never run there.
    rlmd_command(auto, socket, Stdio::null())
        .spawn()
        .map_err(|e| spawn_error(&auto.rlmd, &e))?;
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::fs::metadata(socket).is_ok() {
            return Ok(StartupReport::Ready { pid: 0 });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("rlmd did not start in time".into())
}

/// The command that starts `rlmd` on demand on `socket`: no stdin or
/// stdout, `stderr` where the caller says.
fn rlmd_command(auto: &AutoStart, socket: &Path, stderr: Stdio) -> Command {
    let mut cmd = Command::new(&auto.rlmd);
    cmd.arg("--socket")
        .arg(socket)
        .arg("--auto-started")
        .arg("--idle-timeout")
        .arg(format!("{}", auto.idle_timeout.as_secs_f64()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(d) = &auto.data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    cmd
}

/// Asks a daemon of another version to exit if it is idle and was started
/// on demand, and waits for its socket to go quiet. Returns whether it left.
pub async fn ask_to_exit_if_idle(socket: &Path, deadline: Instant) -> Result<bool, String> {
    let name = socket
        .to_fs_name::<GenericFilePath>()
        .map_err(|e| e.to_string())?;
    let stream = Stream::connect(name).await.map_err(|e| e.to_string())?;
    if let Some((uid, me)) = crate::daemon::peer_of_another_user(&stream) {
        return Err(format!(
            "the process listening on {} runs as uid {uid}, not as this user (uid {me}); nothing was sent to it",
            socket.display()
        ));
    }
    let mut w = &stream;
    write_frame(&mut w, &Envelope::new(1, Request::ShutdownIfIdle))
        .await
        .map_err(|e| e.to_string())?;
    let mut r = &stream;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        read_frame::<_, Envelope<Response>>(&mut r, MAX_FRAME_BYTES),
    )
    .await;
    let accepted = matches!(
        answer,
        Ok(Ok(Some(Envelope {
            body: Response::ShutdownAck { accepted: true, .. },
            ..
        })))
    );
    drop(stream);
    if !accepted {
        return Ok(false);
    }
    while Instant::now() < deadline {
        if !connects(socket).await {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(false)
}
