//! What the MCP layer forwards calls to: the [`Backend`] trait, and its implementation over the
//! daemon connection ([`DaemonClient`]); tests implement it with a fake.

use futures::future::BoxFuture;
use rlm::protocol::CallOutcome;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ProgressSink;
use crate::daemon::DaemonClient;

/// One tool call as the MCP layer forwards it.
#[derive(Debug)]
pub struct Forward {
    /// The canonical dotted name of the tool.
    pub tool: String,
    /// The JSON object the client sent (`{}` when it sent none).
    pub arguments: Value,
    /// `Some` only when the MCP client asked for progress (a `progressToken`): each
    /// `(done, total, message)` sent on it becomes one `notifications/progress`. `done` should
    /// grow with every update. Updates sent after the call's future resolves are dropped.
    pub progress: Option<ProgressSink>,
    /// Fires when the client cancels the call (`notifications/cancelled`) and when the MCP
    /// session ends. It may also fire after the call has finished (rmcp cancels a request's
    /// token once its response is sent): ignore it then.
    pub cancel: CancellationToken,
}

/// How a forwarded call ends: `Err(message)` means the daemon could not be reached or went
/// away during the call; the message says so and what to do (the model reads it, under code
/// `daemon_unavailable`).
pub type Forwarded = BoxFuture<'static, Result<CallOutcome, String>>;

/// What the MCP layer forwards calls to (the daemon connection implements it; tests use a fake).
pub trait Backend: Send + Sync + 'static {
    /// Runs one tool.
    fn call(&self, call: Forward) -> Forwarded;
}

/// The backend of a shim that cannot serve (its configuration is wrong):
/// it still answers `initialize` and lists the tools, and every call
/// returns this message, so the client shows why instead of a disconnect.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl Backend for Unavailable {
    fn call(&self, _call: Forward) -> Forwarded {
        let message = self.0.clone();
        Box::pin(async move { Err(message) })
    }
}

impl Backend for DaemonClient {
    /// A [`crate::daemon::ClientError`] reaches the model as its message, under `daemon_unavailable`.
    fn call(&self, call: Forward) -> Forwarded {
        let this = self.clone();
        Box::pin(async move {
            this.call_tool(call.tool, call.arguments, call.progress, call.cancel)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
