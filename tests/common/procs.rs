//! Polling with deadlines, and processes: /proc lookups, the daemons of a socket, signals.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::*;

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
/// One figure of `/proc/<pid>/status` (`VmHWM`, `RssAnon`, `RssFile` in kB;
/// `Threads` as a count).
pub fn proc_status(pid: i32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}
/// Waits for a child process to exit.
pub fn wait_child(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    wait_until(within, what, || child.try_wait().expect("try_wait"))
}
