//! Logging for every binary: one JSON object per line to daily rolling files
//! in the log folder, and, when asked, a human format on stderr with the
//! binary's name in front. Nothing is ever logged to stdout.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Config;

/// Log lines queued for the file writer's thread at most; past this, lines
/// are dropped rather than a call kept waiting on its log. The queue is
/// allocated and touched whole at start: the crate's default of 128 000
/// lines took 4 MB of every process's `RssAnon` (a heap profile of the
/// daemon); 8 192 lines take 256 KiB, and a burst of that many lines
/// between two writes of the file is more than any call logs.
const LOG_LINES_QUEUED: usize = 8192;

/// Keeps the file writer alive; drop it last (it flushes).
#[derive(Debug)]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// Where logs go for one binary.
#[derive(Debug, Clone, Copy)]
pub struct LogTargets {
    /// Write `<log dir>/<name>.<date>.log` as JSON lines.
    pub file: bool,
    /// Write a human format to stderr.
    pub stderr: bool,
}

/// Installs the global subscriber. `name` is the binary (`rlmd`, `rlm-mcp`,
/// `rlm`): the file prefix and the stderr prefix. A log folder that cannot be
/// created is reported on stderr, and logging goes on to stderr.
pub fn init(name: &'static str, config: &Config, targets: LogTargets) -> LogGuard {
    let filter = |level: &str| {
        // Third-party crates stay quiet unless asked for by name.
        let mut f = EnvFilter::try_new(level).unwrap_or_else(|e| {
            eprintln!("{name}: log filter {level:?} is not valid ({e}); using `info`");
            EnvFilter::new("info")
        });
        for quiet in ["tantivy=warn", "rmcp=warn"] {
            let named = level.contains(quiet.split('=').next().unwrap_or(""));
            if let (false, Ok(d)) = (named, quiet.parse()) {
                f = f.add_directive(d);
            }
        }
        f
    };
    let mut guard = None;
    let mut stderr = targets.stderr;
    let file_layer = if targets.file {
        match config
            .log_dir()
            .and_then(|dir| appender(name, &dir, config.log.keep_files))
        {
            Ok(appender) => {
                let (writer, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                    .buffered_lines_limit(LOG_LINES_QUEUED)
                    .lossy(true)
                    .finish(appender);
                guard = Some(g);
                Some(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(false)
                        .with_span_list(false)
                        .with_span_events(FmtSpan::NONE)
                        .with_writer(writer)
                        .with_filter(filter(&config.log.level)),
                )
            }
            Err(e) => {
                eprintln!("{name}: cannot write log files ({e}); logging to stderr instead");
                stderr = true;
                None
            }
        }
    } else {
        None
    };
    let stderr_layer = stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(false)
            .event_format(Prefixed(name))
            .with_filter(filter(&config.log.level))
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LogGuard { _file: guard }
}

use tracing_subscriber::Layer as _;

fn appender(name: &str, dir: &Path, keep: usize) -> std::io::Result<RollingFileAppender> {
    // The logs name files, sessions and queries' sizes: this user's alone.
    // A folder that also holds the user's own files keeps its mode, and only
    // rlm's logs in it are made private.
    crate::paths::ensure_own_dir(dir, &crate::paths::is_log_file, "log folder", "RLM_LOG_DIR")?;
    crate::paths::make_private_tree(dir, &crate::paths::is_log_file)?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(name)
        .filename_suffix("log")
        .max_log_files(keep.max(1))
        .build(dir)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", dir.display())))
}

/// `name: LEVEL message key=value ...`: what people read on stderr.
struct Prefixed(&'static str);

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Prefixed
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "{}: {} ", self.0, event.metadata().level())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
