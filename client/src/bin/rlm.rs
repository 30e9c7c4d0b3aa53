//! `rlm`, the command line for people: the daemon's status, sessions, any
//! tool by hand, a one-line search demo, garbage collection, and starting or
//! stopping the daemon. It talks to `rlmd` like the shim does.
//!
//! Exit codes ([`EXIT_CODES`], in `--help` too): 0 done; 1 failed; 2 the
//! tool refused the call (a tool error, an unknown tool); 3 no daemon
//! answered `status` or `daemon stop`, the commands that never start one.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use rlm::Tool;
use rlm::protocol::CallOutcome;
use rlm_client::autostart::AutoStart;
use rlm_client::daemon::{ClientError, ClientOptions, DaemonClient};

#[path = "rlm/shown.rs"]
mod shown;
use shown::Shown;

/// What `--help` and the README say of the exit codes.
const EXIT_CODES: &str = "Exit codes:
  0  done
  1  failed (bad arguments or configuration, a search that loaded nothing, a daemon that could not be started or reached)
  2  the tool refused the call (`rlm call`: a tool error or an unknown tool)
  3  no daemon answered `rlm status` or `rlm daemon stop` (they never start one)";

/// Command line of rlm: keeps large texts outside an LLM's context, in sessions served by rlmd.
#[derive(Debug, Parser)]
#[command(name = "rlm", version, after_help = EXIT_CODES)]
struct Cli {
    /// Daemon socket (default: $RLM_SOCKET, config, else the user's runtime folder).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon's version, uptime, socket, data folder, sessions, what it keeps in memory (sessions' views of the index and documents) and calls served.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The sessions in the store, newest first; `rm` and `prune` delete sessions.
    Sessions {
        /// Print JSON.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        action: Option<SessionsAction>,
    },
    /// Calls one tool: `rlm call rlm.session.create '{"name": "x"}'`. Prints the result JSON; errors go to stderr with exit 2.
    #[command(after_help = EXIT_CODES)]
    Call {
        /// Tool name (`rlm.docs.load` or `rlm_docs_load`).
        tool: String,
        /// Arguments as a JSON object (default `{}`).
        arguments: Option<String>,
        /// Print a tool error as JSON on stdout too (`{"error": {"code", "message", ...}}`), still with exit 2.
        #[arg(long)]
        json: bool,
    },
    /// Loads a folder into a new session and prints the passages that best match a query, as `path:line`.
    #[command(after_help = EXIT_CODES)]
    Search {
        /// The folder to load (recursively).
        folder: PathBuf,
        /// Words or a question.
        query: String,
        /// Passages to show.
        #[arg(long, default_value_t = 5)]
        limit: u64,
        /// Only files whose path matches this regex (e.g. `\.py$`).
        #[arg(long, value_name = "REGEX")]
        include: Option<String>,
        /// Leave out files whose path matches this regex (e.g. `/tests?/`).
        #[arg(long, value_name = "REGEX")]
        exclude: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Keep the session (closed) afterwards; by default it is deleted.
        #[arg(long)]
        keep: bool,
    },
    /// Removes what no session references: texts, their search index entries, packs (compacting those mostly garbage), crash leftovers; never anything in use.
    Gc {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// While a load is under way (in any process), keep texts a load
        /// claimed, and files, younger than this many seconds (default
        /// 3600); with none under way, texts and packs no session names go
        /// at once whatever this says. 0 reclaims at once even beside a
        /// load: that load may then fail with `busy`, and is retried.
        #[arg(long, value_name = "SECONDS")]
        grace: Option<u64>,
    },
    /// Starts or stops the daemon.
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// Deletes sessions with their documents, chunkings, artifacts, traces and index (`rlm gc` then reclaims their texts).
    Rm {
        /// Session ids (`rlm sessions` lists them).
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Deletes the closed sessions closed before now minus a duration.
    Prune {
        /// How long ago: `30m`, `12h`, `7d` (also `s`, `w`).
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        closed_before: Duration,
    },
}

/// A duration as `30m`, `12h`, `7d`: a whole number and one unit.
fn parse_age(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?} is not a duration: write a number and a unit, as 30m, 12h or 7d (units s, m, h, d, w)"
            ));
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a duration: write a number and a unit, as 30m, 12h or 7d")
    })?;
    n.checked_mul(unit_seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

#[allow(clippy::print_stdout)]
/// Prints one line per outcome (failures on stderr); the exit code is
/// non-zero when any failed.
fn report_deletions(outcomes: &[rlm::protocol::DeleteOutcome], json: bool) -> ExitCode {
    let failed = outcomes.iter().filter(|o| o.status != "deleted").count();
    if json {
        print_json(&outcomes);
    } else {
        for o in outcomes {
            match o.status.as_str() {
                "deleted" => println!("{}: {}", o.session_id, o.message),
                _ => eprintln!("rlm: {}: {}", o.session_id, o.message),
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Debug, Subcommand)]
enum DaemonAction {
    /// Starts a daemon in the background unless one is running.
    Start,
    /// Asks the daemon to stop after the calls in flight.
    Stop,
}

fn main() -> ExitCode {
    // Its log files are the user's alone, as the daemon's are.
    rlm::paths::private_umask();
    let cli = Cli::parse();
    let config = match rlm::config::Config::load() {
        Ok(l) => l.config,
        Err(e) => {
            eprintln!("rlm: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match rlm_client::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rlm: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("rlm: {failure}");
            failure.exit_code()
        }
    }
}

/// Why a command failed, which decides its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// rlmd gave no answer to a command that may start it.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// rlmd gave no answer to `status` or `daemon stop`, which never start one.
    #[error(transparent)]
    NoDaemon(ClientError),
    /// Anything else: arguments, configuration, a call of `search` that failed.
    #[error("{0}")]
    Other(String),
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Other(message)
    }
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            // Whatever kept rlmd from answering (none runs, one of another
            // version refused, the connection broke): there is no daemon
            // this command can talk to.
            Failure::NoDaemon(_) => ExitCode::from(3),
            Failure::Client(_) | Failure::Other(_) => ExitCode::FAILURE,
        }
    }
}

fn client(socket: PathBuf, config: &rlm::config::Config, autostart: bool) -> DaemonClient {
    DaemonClient::new(ClientOptions {
        socket,
        client_name: "rlm".into(),
        client_version: env!("CARGO_PKG_VERSION").into(),
        cwd: std::env::current_dir().ok(),
        autostart: autostart.then(|| AutoStart::from_config(config, None, None)),
    })
}

fn print_json(v: &impl serde::Serialize) {
    // stdout is this command's output.
    #[allow(clippy::print_stdout)]
    {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

#[allow(clippy::print_stdout)]
async fn run(cli: Cli, config: rlm::config::Config) -> Result<ExitCode, Failure> {
    let socket = match cli.socket {
        Some(s) => s,
        None => config.socket().map_err(|e| e.to_string())?,
    };
    match cli.command {
        Command::Status { json } => {
            let c = client(socket.clone(), &config, false);
            let status = c.status().await.map_err(Failure::NoDaemon)?;
            if json {
                print_json(&status);
            } else {
                println!(
                    "rlmd {} (protocol {}), pid {}",
                    status.daemon_version, status.protocol_version, status.pid
                );
                println!(
                    "up {:.0} s since {}{}",
                    status.uptime_seconds,
                    status.started_at,
                    if status.auto_started {
                        ", started on demand"
                    } else {
                        ""
                    }
                );
                println!("socket    {}", status.socket.display());
                println!("data      {}", status.data_dir.display());
                println!(
                    "sessions  {} active, {} in all",
                    status.sessions_active, status.sessions_total
                );
                println!(
                    "cached    {} sessions' views of the index, {} sessions' documents",
                    status.indexes_cached, status.sessions_known
                );
                println!(
                    "calls     {} served, {} in flight, {} connections",
                    status.requests_served, status.calls_in_flight, status.connections
                );
                println!(
                    "large     {:.1} MB of large requests held, room for {:.0} MB, {} waiting for room",
                    status.large_requests_held_bytes as f64 / (1u64 << 20) as f64,
                    status.large_requests_room_bytes as f64 / (1u64 << 20) as f64,
                    status.large_requests_waiting
                );
                if let Some(m) = status.memory {
                    let mb = |b: u64| b as f64 / (1u64 << 20) as f64;
                    println!(
                        "memory    {:.1} MB anonymous (RssAnon), {:.1} MB of files (RssFile), {:.1} MB at the peak",
                        mb(m.rss_anon_bytes),
                        mb(m.rss_file_bytes),
                        mb(m.peak_rss_bytes)
                    );
                }
            }
        }
        Command::Sessions {
            json,
            action: Some(SessionsAction::Rm { ids }),
        } => {
            let outcomes = client(socket, &config, true).delete_sessions(ids).await?;
            return Ok(report_deletions(&outcomes, json));
        }
        Command::Sessions {
            json,
            action: Some(SessionsAction::Prune { closed_before }),
        } => {
            let outcomes = client(socket, &config, true)
                .prune_sessions(closed_before)
                .await?;
            if !json {
                let deleted = outcomes.iter().filter(|o| o.status == "deleted").count();
                println!(
                    "{deleted} closed sessions closed more than {} s ago deleted",
                    closed_before.as_secs()
                );
            }
            return Ok(report_deletions(&outcomes, json));
        }
        Command::Sessions { json, action: None } => {
            let sessions = client(socket, &config, true).list_sessions().await?;
            if json {
                print_json(&sessions);
            } else if sessions.is_empty() {
                println!("no sessions");
            } else {
                println!(
                    "{:<36}  {:<9}  {:>6}  {:>12}  {:>11}  name",
                    "session_id", "status", "docs", "chars", "calls"
                );
                for s in sessions {
                    println!(
                        "{:<36}  {:<9}  {:>6}  {:>12}  {:>5}/{:<5}  {}",
                        s.session_id,
                        s.status,
                        s.document_count,
                        s.total_chars,
                        s.tool_calls_used,
                        s.max_tool_calls,
                        s.name.unwrap_or_default()
                    );
                }
            }
        }
        Command::Call {
            tool,
            arguments,
            json,
        } => {
            let args: Value = match arguments.as_deref() {
                None => json!({}),
                Some(text) => serde_json::from_str(text).map_err(|e| format!("the arguments are not JSON ({e}); give an object such as '{{\"session_id\": \"...\"}}'"))?,
            };
            let c = client(socket, &config, true);
            let outcome = call_with_progress(&c, &tool, args, "working").await?;
            return Ok(match outcome {
                CallOutcome::Ok { result } => {
                    print_json(&result);
                    ExitCode::SUCCESS
                }
                CallOutcome::ToolError { error } => {
                    if json {
                        print_json(&error.to_json());
                    }
                    eprintln!("rlm: {}: {}", error.code.as_str(), error.message);
                    ExitCode::from(2)
                }
                CallOutcome::UnknownTool { name } => {
                    let tools: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
                    eprintln!(
                        "rlm: unknown tool {name:?}; the tools are {}",
                        tools.join(", ")
                    );
                    ExitCode::from(2)
                }
                CallOutcome::Failed { message } => {
                    eprintln!("rlm: {message}");
                    ExitCode::FAILURE
                }
            });
        }
        Command::Search {
            folder,
            query,
            limit,
            include,
            exclude,
            json,
            keep,
        } => {
            if query.trim().is_empty() {
                return Err(Failure::Other(
                    "the query is empty; give words or a question to search for".into(),
                ));
            }
            // Checked here as the daemon would, so nothing is loaded in vain.
            for (flag, pattern) in [("--include", &include), ("--exclude", &exclude)] {
                if let Some(p) = pattern
                    && let Err(e) = regex::Regex::new(p)
                {
                    return Err(Failure::Other(format!(
                        "{flag} {p:?} is not a valid regex: {e}"
                    )));
                }
            }
            let c = client(socket, &config, true);
            let folder =
                std::fs::canonicalize(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            let created = expect_ok(
                call_with_progress(
                    &c,
                    "rlm.session.create",
                    json!({"name": format!("rlm search {}", folder.display())}),
                    "",
                )
                .await?,
            )?;
            let sid = created["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut source = json!({"type": "directory", "path": folder, "recursive": true});
            if let Some(inc) = include {
                source["include_pattern"] = json!(inc);
            }
            if let Some(exc) = exclude {
                source["exclude_pattern"] = json!(exc);
            }
            let loaded = expect_ok(
                call_with_progress(
                    &c,
                    "rlm.docs.load",
                    json!({"session_id": sid, "sources": [source]}),
                    "loading",
                )
                .await?,
            )?;
            // What was not loaded, and why (a bad --include regex, unreadable files).
            for line in loaded["errors"].as_array().into_iter().flatten() {
                eprintln!("rlm: not loaded: {}", line.as_str().unwrap_or_default());
            }
            if loaded["loaded_count"].as_u64() == Some(0) {
                let _ = c.delete_sessions(vec![sid.clone()]).await;
                return Err(Failure::Other(format!(
                    "nothing was loaded from {} ({} not loaded); check the folder and --include / --exclude",
                    folder.display(),
                    loaded["error_count"]
                )));
            }
            let found = expect_ok(
                call_with_progress(&c, "rlm.search.query", json!({"session_id": sid, "query": query, "limit": limit, "context_chars": 300}), "searching").await?,
            )?;
            // The sources of the matched documents: page through the list until all are named.
            let mut wanted: std::collections::HashSet<String> = found["matches"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["doc_id"].as_str().map(str::to_owned))
                .collect();
            let mut sources: std::collections::HashMap<String, (String, u64)> = Default::default();
            let mut offset = 0u64;
            while !wanted.is_empty() {
                let page = expect_ok(
                    call_with_progress(
                        &c,
                        "rlm.docs.list",
                        json!({"session_id": sid, "limit": 1000, "offset": offset}),
                        "",
                    )
                    .await?,
                )?;
                for d in page["documents"].as_array().into_iter().flatten() {
                    let id = d["doc_id"].as_str().unwrap_or_default();
                    if wanted.remove(id) {
                        sources.insert(
                            id.to_owned(),
                            (
                                d["source"].as_str().unwrap_or_default().to_owned(),
                                d["length_chars"].as_u64().unwrap_or(0),
                            ),
                        );
                    }
                }
                match page["next_offset"].as_u64() {
                    Some(next) => offset = next,
                    None => break,
                }
            }
            // A search leaves nothing behind unless asked to (--keep).
            if keep {
                let _ = call_with_progress(&c, "rlm.session.close", json!({"session_id": sid}), "")
                    .await;
            } else if let Err(e) = c.delete_sessions(vec![sid.clone()]).await {
                eprintln!("rlm: deleting session {sid}: {e}");
            }
            let matches: Vec<Shown> = found["matches"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let doc_id = m["doc_id"].as_str().unwrap_or_default();
                    Shown::of(m, sources.get(doc_id))
                })
                .collect();
            if json {
                let listed: Vec<Value> = matches
                    .iter()
                    .map(|shown| {
                        let mut m = shown.m.clone();
                        m["source"] = json!(shown.source);
                        m["line"] = json!(shown.line);
                        m
                    })
                    .collect();
                print_json(
                    &json!({"session_id": sid, "kept": keep, "loaded": loaded["loaded_count"], "errors": loaded["error_count"], "matches": listed}),
                );
                return Ok(ExitCode::SUCCESS);
            }
            let kept = if keep {
                format!(", kept as session {sid}")
            } else {
                String::new()
            };
            eprintln!(
                "rlm: loaded {} files ({} chars, {} not loaded){kept}",
                loaded["loaded_count"], loaded["total_chars"], loaded["error_count"]
            );
            if matches.is_empty() {
                println!("no passage matches {query:?}");
            }
            let prefix = format!("{}/", folder.display());
            for (i, shown) in matches.iter().enumerate() {
                let path = shown.source.strip_prefix(&prefix).unwrap_or(&shown.source);
                let at = shown.line.map(|l| format!(":{l}")).unwrap_or_default();
                // The definition or section the hit is in, when it names one.
                let unit = &shown.m["unit"];
                let within = match (
                    unit["name"].as_str(),
                    unit["line_start"].as_u64(),
                    unit["line_end"].as_u64(),
                ) {
                    (Some(name), Some(a), Some(b)) => {
                        // The units around it first: `impl Stack › push`.
                        let path: Vec<&str> = unit["within"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|n| n.as_str())
                            .chain([name])
                            .collect();
                        format!("  in {}, lines {a}-{b}", path.join(" › "))
                    }
                    _ => String::new(),
                };
                println!(
                    "{}. {path}{at}  (score {:.2}){within}",
                    i + 1,
                    shown.m["score"].as_f64().unwrap_or(0.0)
                );
                for line in &shown.lines {
                    println!("    {line}");
                }
                println!();
            }
        }
        Command::Gc { json, grace } => {
            let report = client(socket, &config, true).gc(grace).await?;
            if json {
                print_json(&report);
            } else {
                let kept = if report.no_load_under_way {
                    format!(
                        "no load was under way, so texts and packs no session names went whatever their age; other files younger than {} s are kept",
                        report.grace_seconds
                    )
                } else {
                    format!(
                        "a load was under way, so texts and files younger than {} s are kept",
                        report.grace_seconds
                    )
                };
                println!(
                    "removed {} texts ({} from the search index), {} packs, compacted {} packs and the database ({} bytes), removed {} temporary files, {} old index folders, {} lock files ({} bytes in all); {kept}",
                    report.texts_removed,
                    report.index_texts_removed,
                    report.packs_removed,
                    report.packs_compacted,
                    report.database_bytes_freed,
                    report.temp_files_removed,
                    report.index_dirs_removed,
                    report.lock_files_removed,
                    report.bytes_freed,
                );
                for e in &report.errors {
                    eprintln!("rlm: gc: {e}");
                }
            }
        }
        Command::Daemon {
            action: DaemonAction::Start,
        } => {
            let c = client(socket.clone(), &config, true);
            let welcome = c.ensure_connected().await?;
            println!(
                "rlmd {} serving on {} (pid {}, data {})",
                welcome.daemon_version,
                welcome.socket.display(),
                welcome.pid,
                welcome.data_dir.display()
            );
        }
        Command::Daemon {
            action: DaemonAction::Stop,
        } => {
            let c = client(socket.clone(), &config, false);
            match c.shutdown().await {
                Ok((true, reason)) => println!("rlmd stopping: {reason}"),
                Ok((false, reason)) => {
                    eprintln!("rlm: rlmd refused to stop: {reason}");
                    return Ok(ExitCode::FAILURE);
                }
                // A daemon already stopping (its last client just left, a
                // signal) closes new connections before answering: what
                // was asked is happening. Done once nothing answers.
                Err(
                    e @ (ClientError::HungUp { .. }
                    | ClientError::Closed(_)
                    | ClientError::NotSent(_)),
                ) => {
                    if !stopped_within(&c, STOP_WAIT).await {
                        return Err(Failure::NoDaemon(e));
                    }
                    println!("rlmd stopped (it was already stopping)");
                }
                Err(e) => return Err(Failure::NoDaemon(e)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long `rlm daemon stop` waits for a daemon that was already stopping.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Whether the daemon behind `c` stops answering within `wait`: polled
/// `status` until it fails to connect; a daemon that still answers is
/// asked once more to stop.
async fn stopped_within(c: &DaemonClient, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut asked_again = false;
    while tokio::time::Instant::now() < deadline {
        match c.status().await {
            Err(ClientError::NotRunning { .. }) => return true,
            Err(ClientError::HungUp { .. }) => {} // still on its way out
            Ok(_) if !asked_again => {
                asked_again = true;
                if let Ok((true, _)) = c.shutdown().await {
                    return true;
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn expect_ok(outcome: CallOutcome) -> Result<Value, String> {
    match outcome {
        CallOutcome::Ok { result } => Ok(result),
        CallOutcome::ToolError { error } => {
            Err(format!("{}: {}", error.code.as_str(), error.message))
        }
        CallOutcome::UnknownTool { name } => Err(format!("unknown tool {name}")),
        CallOutcome::Failed { message } => Err(message),
    }
}

/// Runs a call, showing its progress on a bar when stderr is a terminal.
async fn call_with_progress(
    c: &DaemonClient,
    tool: &str,
    args: Value,
    label: &str,
) -> Result<CallOutcome, ClientError> {
    let show = std::io::stderr().is_terminal() && !label.is_empty();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let bar = show.then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b.set_message(label.to_owned());
        b.enable_steady_tick(Duration::from_millis(100));
        b
    });
    let cancel = CancellationToken::new();
    let call = c.call_tool(tool.to_owned(), args, show.then_some(tx), cancel.clone());
    tokio::pin!(call);
    let outcome = loop {
        tokio::select! {
            o = &mut call => break o,
            Some((done, total, message)) = rx.recv() => {
                if let Some(b) = &bar {
                    if let Some(t) = total {
                        b.set_length(t);
                    }
                    b.set_position(done);
                    b.set_message(message);
                }
            }
            _ = tokio::signal::ctrl_c() => {
                cancel.cancel();
            }
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    outcome
}
