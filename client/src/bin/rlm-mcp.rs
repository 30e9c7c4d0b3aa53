//! `rlm-mcp`, the shim an MCP client spawns: MCP over stdio in, requests to
//! the rlm daemon out (started on demand when none answers). Nothing but MCP
//! is written to stdout; diagnostics go to stderr, prefixed `rlm-mcp:`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rlm::config::ClientProfile;

use rlm_client::autostart::AutoStart;
use rlm_client::daemon::{ClientOptions, DaemonClient};
use rlm_client::mcp::{RlmServer, ShimOptions, ToolNames, Unavailable};

/// The instructions every client gets in the `initialize` answer.
const INSTRUCTIONS: &str = include_str!("../instructions.md");

/// MCP server (stdio) for rlm: forwards the twelve rlm.* tools to the rlmd daemon.
#[derive(Debug, Parser)]
#[command(name = "rlm-mcp", version)]
struct Args {
    /// How tools are listed: `dotted` (rlm.session.create) or `underscore`
    /// (rlm_session_create, for clients that accept only [A-Za-z0-9_-]).
    /// Calls accept both spellings either way.
    #[arg(long, value_name = "STYLE", default_value = "dotted")]
    tool_names: ToolNames,
    /// Daemon socket (default: $RLM_SOCKET, else the user's runtime folder).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Data directory for a daemon this shim starts (default: $RLM_DATA_DIR, else the platform's).
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Never start a daemon; fail calls when none answers.
    #[arg(long)]
    no_autostart: bool,
    /// Seconds a daemon this shim starts stays up without clients
    /// (default: config's idle_timeout_seconds, 600).
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<f64>,
}

fn main() -> ExitCode {
    // Its log files are the user's alone, as the daemon's are.
    rlm::paths::private_umask();
    let args = Args::parse();
    let config = match rlm::config::Config::load() {
        Ok(l) => l.config,
        // Still an MCP server: the client shows this on every call instead
        // of a bare disconnect.
        Err(e) => {
            eprintln!("rlm-mcp: {e}");
            let message = format!(
                "rlm-mcp cannot serve: {e}; fix the file (or RLM_CONFIG), then restart this MCP server from your client"
            );
            return serve_unavailable(&args, message);
        }
    };
    // Files and stderr only: stdout carries MCP and nothing else.
    let targets = rlm::logging::LogTargets {
        file: true,
        stderr: config.log.stderr,
    };
    let _log = rlm::logging::init("rlm-mcp", &config, targets);
    let runtime = match rlm_client::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rlm-mcp: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rlm-mcp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves MCP with a backend that fails every call with `message`.
fn serve_unavailable(args: &Args, message: String) -> ExitCode {
    let runtime = match rlm_client::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rlm-mcp: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = RlmServer::new(
        Arc::new(Unavailable(message)),
        shim_options(args, &BTreeMap::new()),
    );
    match runtime.block_on(rlm_client::mcp::serve_stdio(server)) {
        // It answered, but could not do its job: the exit says so.
        Ok(()) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rlm-mcp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn shim_options(args: &Args, clients: &BTreeMap<String, ClientProfile>) -> ShimOptions {
    ShimOptions {
        tool_names: args.tool_names,
        instructions: INSTRUCTIONS.trim().to_owned(),
        server_name: "rlm".into(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        clients: clients.clone(),
    }
}

async fn run(args: Args, config: rlm::config::Config) -> Result<(), String> {
    let options = shim_options(&args, &config.clients);
    let socket = match args.socket {
        Some(s) => s,
        None => config.socket().map_err(|e| e.to_string())?,
    };
    let idle = args
        .idle_timeout
        .map(|s| Duration::from_secs_f64(s.max(0.0)));
    let autostart =
        (!args.no_autostart).then(|| AutoStart::from_config(&config, args.data_dir.clone(), idle));
    let client = DaemonClient::new(ClientOptions {
        socket,
        client_name: "rlm-mcp".into(),
        client_version: env!("CARGO_PKG_VERSION").into(),
        cwd: std::env::current_dir().ok(),
        autostart,
    });
    // Reach (or start) the daemon while the MCP client initializes, so the
    // first call does not wait for it; a failure here is retried at the call.
    let warm = client.clone();
    tokio::spawn(async move {
        if let Err(e) = warm.ensure_connected().await {
            eprintln!("rlm-mcp: {e}");
        }
    });
    let server = RlmServer::new(Arc::new(client), options);
    rlm_client::mcp::serve_stdio(server).await
}
