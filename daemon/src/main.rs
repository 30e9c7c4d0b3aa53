//! `rlmd`, the daemon: takes its socket (bound here, or handed over by
//! systemd), holds the one-daemon-per-socket lock, opens the engine, and
//! serves until a signal, an idle timeout (when started on demand) or a
//! client's request.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fs4::{FileExt, TryLockError};
use interprocess::local_socket::tokio::Listener;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};

use rlm::config::Config;
use rlm::logging::{self, LogTargets};
use rlm::paths;
use rlm::protocol::{READY_FD_ENV, StartupReport};
use rlmd::server::{self, ServerConfig};
use rlmd::{Engine, EngineConfig};

/// The rlm daemon: serves the rlm engine to rlm-mcp shims and the rlm CLI on a local socket.
#[derive(Debug, Parser)]
#[command(name = "rlmd", version)]
struct Args {
    /// Socket path (default: $RLM_SOCKET, else $XDG_RUNTIME_DIR/rlm/rlmd.sock, else /run/user/<uid>/rlm/rlmd.sock when that folder is yours, else /tmp/rlm-<uid>/rlmd.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Data directory (default: $RLM_DATA_DIR, else ~/.local/share/rlm).
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Exit after this many seconds with no connection and no call in flight
    /// (default: never, or config's idle_timeout_seconds when started on demand).
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<f64>,
    /// Seconds a stop (SIGTERM, SIGINT, `rlm daemon stop`) waits for the calls
    /// in flight before the daemon exits without them (default 60).
    #[arg(long, value_name = "SECONDS", value_parser = drain_seconds)]
    drain_timeout: Option<Duration>,
    /// Also log to stderr in a human format (the JSON log file is always written).
    #[arg(long)]
    log_stderr: bool,
    /// Set by a client that starts the daemon on demand.
    #[arg(long, hide = true)]
    auto_started: bool,
}

fn main() -> ExitCode {
    rlmd::alloc::tune();
    name_global_pool();
    rlm::paths::private_umask();
    let args = Args::parse();
    let mut ready = ReadyPipe::from_env();
    let config = match Config::load() {
        Ok(l) => l,
        Err(e) => return fail(&mut ready, e.to_string()),
    };
    let targets = LogTargets {
        file: true,
        stderr: args.log_stderr || config.config.log.stderr,
    };
    let _log = logging::init("rlmd", &config.config, targets);
    if let Some(file) = &config.file {
        tracing::info!(config = %file.display(), "configuration read");
    }
    let open_files = raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rlmd")
        .max_blocking_threads(server::BLOCKING_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&mut ready, format!("starting the async runtime: {e}")),
    };
    let served = runtime.block_on(serve(args, config.config, open_files, &mut ready));
    // Calls abandoned at the drain deadline may still hold blocking threads
    // (a lock wait, a slow disk): the process exits without waiting for them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&mut ready, message),
    }
}

/// Parses `--drain-timeout`: seconds, from 0 to a day.
fn drain_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=86_400.0).contains(&v) => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a number of seconds from 0 to 86400")),
    }
}

/// Rayon's global pool (texts opened and hashed in parallel for a search or
/// an index build) is made on first use, by whichever thread comes first;
/// unnamed, its threads would take that thread's name (`rlm-index`, say)
/// and pass for it in `/proc`. Named here, before any thread exists.
fn name_global_pool() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rlm-work-{i}"))
        .build_global();
}

fn fail(ready: &mut ReadyPipe, message: String) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("rlmd: {message}");
    ready.report(&StartupReport::Failed { message });
    ExitCode::FAILURE
}

async fn serve(
    args: Args,
    config: Config,
    open_files: u64,
    ready: &mut ReadyPipe,
) -> Result<(), String> {
    let socket = match args.socket {
        Some(s) => s,
        None => config.socket().map_err(|e| e.to_string())?,
    };
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => config.data_dir().map_err(|e| e.to_string())?,
    };
    let (listener, _lock, socket) = match systemd_listener()? {
        // Report the path systemd bound, not the one this process would have.
        Some((l, path)) => (l, None, path.unwrap_or(socket)),
        None => match bind(&socket).await? {
            Bound::Listening(l, lock) => (l, Some(lock), socket),
            Bound::AlreadyRunning(message) => {
                eprintln!("rlmd: {message}");
                ready.report(&StartupReport::AlreadyRunning { message });
                return Ok(());
            }
        },
    };
    let mut engine_config = EngineConfig::new(&data_dir);
    engine_config.session_defaults = config.session_defaults();
    engine_config.max_file_size_mb = config.load.max_file_size_mb;
    engine_config.load_threads = config.load.threads;
    engine_config.bm25_statistics = match config.search.bm25_statistics {
        rlm::config::Bm25Statistics::Session => rlmd::search::bm25::Statistics::View,
        rlm::config::Bm25Statistics::Store => rlmd::search::bm25::Statistics::Index,
    };
    engine_config.word_forms = config.search.word_forms;
    engine_config.allowed_roots = config.allowed_roots.clone();
    let engine = Engine::open(engine_config)
        .map_err(|e| format!("opening the data directory {}: {e}", data_dir.display()))?;
    // A daemon started on demand leaves when idle; one a person or a service
    // runs stays unless told otherwise.
    let idle_timeout = match args.idle_timeout {
        Some(s) if s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => None,
        None if args.auto_started => config.idle_timeout(),
        None => None,
    };
    let retention = config.retention.clone();
    let config = ServerConfig {
        socket: socket.clone(),
        auto_started: args.auto_started,
        idle_timeout,
        release_caches_after: config.release_caches_after(),
        allowed_uid: allowed_uid(),
        drain_timeout: args.drain_timeout.unwrap_or(server::DRAIN_TIMEOUT),
        max_connections: server::max_connections(open_files),
        large_requests_bytes: config.large_requests_bytes(),
    };
    // Handlers before READY: a SIGTERM right after it drains, never kills.
    let shutdown = shutdown_signal();
    tracing::info!(socket = %socket.display(), data_dir = %data_dir.display(), pid = std::process::id(), "rlmd serving");
    ready.report(&StartupReport::Ready {
        pid: std::process::id(),
    });
    #[cfg(unix)]
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    spawn_retention(engine.clone(), retention);
    let reason = server::run(engine, config, listener, shutdown)
        .await
        .map_err(|e| format!("serving on {}: {e}", socket.display()))?;
    #[cfg(unix)]
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!(?reason, "rlmd exiting");
    Ok(())
}

#[cfg(unix)]
fn allowed_uid() -> Option<u32> {
    Some(nix::unistd::geteuid().as_raw())
}

#[cfg(not(unix))]
fn allowed_uid() -> Option<u32> {
    None
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: from then on a signal
/// drains the daemon instead of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        );
        async move {
            match handlers {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: finishing the calls in flight"),
                        _ = int.recv() => tracing::info!("SIGINT: finishing the calls in flight"),
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The listening socket systemd passed (socket activation), if any.
fn systemd_listener() -> Result<Option<(Listener, Option<PathBuf>)>, String> {
    let pid_matches = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let fds = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    if !pid_matches || fds == 0 {
        return Ok(None);
    }
    // The variables are for this process only, not for anything it starts.
    unsafe_env_cleanup();
    #[cfg(unix)]
    {
        use std::os::fd::{FromRawFd, OwnedFd};
        // SAFETY: systemd hands the first listening socket over as fd 3
        // (SD_LISTEN_FDS_START) and nothing else in this process owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(3) };
        let path = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
        )
        .ok()
        .and_then(|a| a.path().map(Path::to_owned));
        let uds = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(fd)
            .map_err(|e| format!("using the socket systemd passed (fd 3): {e}"))?;
        tracing::info!(socket = ?path, "using the socket passed by systemd");
        Ok(Some((Listener::from(uds), path)))
    }
    #[cfg(not(unix))]
    {
        Err("socket activation is only supported on Unix".into())
    }
}

fn unsafe_env_cleanup() {
    // SAFETY: called before any other thread of ours reads the environment
    // (the runtime's workers do not), as systemd's sd_listen_fds() does.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
}

enum Bound {
    Listening(Listener, File),
    AlreadyRunning(String),
}

/// Binds the socket: holds `<socket>.lock` (one daemon per socket), probes a
/// leftover socket file before removing it, and creates the socket with mode
/// 0600 inside a 0700 folder.
async fn bind(socket: &Path) -> Result<Bound, String> {
    paths::check_socket_path(socket).map_err(|e| e.to_string())?;
    let dir = socket.parent().unwrap_or(Path::new("."));
    paths::ensure_socket_dir(dir)
        .map_err(|e| format!("preparing the socket folder {}: {e}", dir.display()))?;
    let lock_path = PathBuf::from(format!("{}.lock", socket.display()));
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    // A link planted at the lock's path (in a shared folder such as /tmp) is
    // not followed: the daemon never creates or opens a file elsewhere.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let lock = options
        .open(&lock_path)
        .map_err(|e| format!("opening the daemon lock {}: {e}", lock_path.display()))?;
    match FileExt::try_lock(&lock) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Ok(Bound::AlreadyRunning(format!(
                "another rlmd already serves {} (it holds {}); use it, or stop it with `rlm daemon stop`",
                socket.display(),
                lock_path.display()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(format!("locking {}: {e}", lock_path.display())),
    }
    let name = socket
        .to_fs_name::<GenericFilePath>()
        .map_err(|e| format!("socket name {}: {e}", socket.display()))?;
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        // Only a socket is ever removed: a path given by mistake (`--socket
        // ~/notes.txt`) or a link planted there is left as it is.
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            let kind = meta.file_type();
            if !kind.is_socket() {
                let what = if kind.is_symlink() {
                    "a symbolic link"
                } else if kind.is_dir() {
                    "a folder"
                } else {
                    "a file"
                };
                return Err(format!(
                    "{} exists and is {what}, not a socket; rlmd removes only a socket left by a daemon that died, never anything else: move it, or give rlmd another socket path (--socket, RLM_SOCKET)",
                    socket.display()
                ));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        // A daemon without our lock (another version, another data layout)
        // may still serve it: probe before removing.
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            interprocess::local_socket::tokio::Stream::connect(name.clone()),
        )
        .await;
        if let Ok(Ok(_)) = probe {
            return Ok(Bound::AlreadyRunning(format!(
                "something already answers on {}; use it, or stop it first",
                socket.display()
            )));
        }
        std::fs::remove_file(socket)
            .map_err(|e| format!("removing the stale socket {}: {e}", socket.display()))?;
        tracing::info!(socket = %socket.display(), "removed a stale socket file (nothing answered on it)");
    }
    let listener = with_private_umask(|| ListenerOptions::new().name(name).create_tokio())
        .map_err(|e| format!("binding {}: {e}", socket.display()))?;
    Ok(Bound::Listening(listener, lock))
}

/// Raises the soft open-files limit to the hard one (1 Mi at most): the
/// soft limit a daemon inherits from the client that started it is often
/// 1024, and every connection holds a descriptor. Returns the limit now in
/// force (on failure, the one inherited).
fn raise_open_files_limit() -> u64 {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) => {
                let want = hard.min(1 << 20);
                if want > soft {
                    match setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
                        Ok(()) => return want,
                        Err(e) => {
                            tracing::warn!(error = %e, soft, hard, "could not raise the open-files limit")
                        }
                    }
                }
                soft
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the open-files limit");
                1024
            }
        }
    }
    #[cfg(not(unix))]
    {
        server::MAX_CONNECTIONS * 2
    }
}

/// Runs `f` with umask 0177, so the socket it creates is 0600 from the first
/// byte. The umask is process-wide: this runs before the engine's threads.
fn with_private_umask<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(unix)]
    {
        use nix::sys::stat::{Mode, umask};
        let old = umask(Mode::from_bits_truncate(0o177));
        let out = f();
        umask(old);
        out
    }
    #[cfg(not(unix))]
    {
        f()
    }
}

/// The starter's readiness pipe (`RLM_READY_FD`), when a client started us.
struct ReadyPipe(Option<File>);

impl ReadyPipe {
    fn from_env() -> ReadyPipe {
        let fd = std::env::var(READY_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<i32>().ok());
        let file = fd.filter(|&fd| fd > 2).and_then(ready_pipe);
        // SAFETY: read once at start-up, before other threads exist.
        unsafe { std::env::remove_var(READY_FD_ENV) };
        ReadyPipe(file)
    }

    /// Writes the one report and closes the pipe.
    fn report(&mut self, report: &StartupReport) {
        if let Some(mut f) = self.0.take() {
            let mut line = serde_json::to_string(report).unwrap_or_default();
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// The pipe a starter passed us as descriptor `fd`.
#[cfg(unix)]
fn ready_pipe(fd: i32) -> Option<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: the starter passes this descriptor to us and to nothing else.
    Some(unsafe { File::from_raw_fd(fd) })
}

/// Elsewhere a starter waits for the socket to appear: there is no pipe.
#[cfg(not(unix))]
fn ready_pipe(_fd: i32) -> Option<File> {
    None
}

/// How often the daemon applies `[retention]` (once at start, then this often).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Applies `[retention]` at start and every `RETENTION_EVERY`, on a blocking
/// thread (it takes session locks), logging what it did or why it failed.
fn spawn_retention(engine: rlmd::engine::Engine, retention: rlm::config::Retention) {
    if retention.delete_closed_after_days == 0 && retention.close_idle_after_days == 0 {
        return;
    }
    tokio::spawn(async move {
        loop {
            let (e, r) = (engine.clone(), retention.clone());
            match tokio::task::spawn_blocking(move || e.apply_retention(&r)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "applying [retention] failed; next try in an hour")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "applying [retention] failed; next try in an hour")
                }
            }
            tokio::time::sleep(RETENTION_EVERY).await;
        }
    });
}
