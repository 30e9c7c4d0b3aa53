//! The first message of a connection, read so that a client of any protocol
//! version gets an answer it can parse: `Welcome` to a hello of this version,
//! `Refused` (saying what to do) to a hello of another, a `ShutdownAck` to a
//! skewed client's `shutdown_if_idle`, and a closing `Error` to anything else.

use std::time::Duration;

use serde_json::Value;

use rlm::protocol::{Envelope, Hello, PROTOCOL_VERSION, Refused, Response, Welcome, read_frame};

use super::DAEMON_VERSION;
use super::connection::{Outbox, Recv};
use super::idle;
use super::shared::Shared;

/// How long a new connection has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest first message read: a hello is a few hundred bytes (its
/// `cwd` a path), and nothing is held for a connection that has not said
/// who it is.
pub const MAX_HELLO_BYTES: usize = 64 << 10;

/// Reads the hello; answers Welcome and returns it, or answers Refused /
/// ShutdownAck / Error (the connection then closes) and returns None.
pub(super) async fn handshake(shared: &Shared, recv: &mut Recv<'_>, out: &Outbox) -> Option<Hello> {
    let closing = |message: String| {
        let _ = out.send(Envelope::connection(Response::Error { message }));
    };
    let first =
        tokio::time::timeout(HELLO_TIMEOUT, read_frame::<_, Value>(recv, MAX_HELLO_BYTES)).await;
    let value = match first {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return None,
        Ok(Err(e)) => {
            closing(format!("rlmd: {e}; closing this connection"));
            return None;
        }
        Err(_) => {
            closing("rlmd: no hello within 10 s; closing".into());
            return None;
        }
    };
    // Read the version before the rest, so any client version gets an answer it can parse.
    let version = value.get("protocol_version").and_then(Value::as_u64);
    match value.get("type").and_then(Value::as_str) {
        Some("hello") => {}
        // A client of another version may ask an idle auto-started daemon to make room.
        Some("shutdown_if_idle") => {
            let id = value.get("id").and_then(Value::as_u64).unwrap_or(0);
            idle::answer_shutdown_if_idle(shared, |answer| {
                out.send(Envelope::new(id, answer)).is_ok()
            });
            return None;
        }
        _ => {
            closing("rlmd: the first message must be a hello; closing".into());
            return None;
        }
    }
    // This connection is counted: past the limit it is told why, and goes.
    let (open, most) = (shared.connections(), shared.config.max_connections);
    if open > most {
        tracing::warn!(
            connections = open,
            max = most,
            "refused a connection: too many open"
        );
        closing(format!(
            "rlmd: serves {most} connections at once, its most, and {} are open; close the clients you no longer use (each MCP client's rlm-mcp holds one), or raise rlmd's open-files limit (it serves half of it: `ulimit -n`, or LimitNOFILE= in its unit)",
            open - 1
        ));
        return None;
    }
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        let _ = out.send(Envelope::connection(Response::Refused(Refused {
            message: format!(
                "rlmd {DAEMON_VERSION} speaks protocol {PROTOCOL_VERSION}, the client speaks {}; stop this daemon (`rlm daemon stop`, or restart its service) so that one of the client's version starts, or use a client of the daemon's version",
                version.map_or("an unknown version".to_owned(), |v| v.to_string())
            ),
            protocol_version: PROTOCOL_VERSION,
            daemon_version: DAEMON_VERSION.to_owned(),
            auto_started: shared.config.auto_started,
        })));
        return None;
    }
    let hello: Hello = match serde_json::from_value(value) {
        Ok(h) => h,
        Err(e) => {
            closing(format!("rlmd: unreadable hello: {e}; closing"));
            return None;
        }
    };
    tracing::debug!(client = %hello.client_name, version = %hello.client_version, cwd = ?hello.cwd, "client connected");
    let _ = out.send(Envelope::connection(Response::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        daemon_version: DAEMON_VERSION.to_owned(),
        pid: std::process::id(),
        started_at: shared.started_at.clone(),
        auto_started: shared.config.auto_started,
        socket: shared.config.socket.clone(),
        data_dir: shared.engine.config().data_dir.clone(),
    })));
    Some(hello)
}
