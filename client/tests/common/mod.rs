//! What the MCP-layer tests share: a fake backend that records the calls
//! the shim forwards and answers by their `fake` argument, an rmcp client,
//! and a shim served on in-memory pipes.

#![allow(dead_code)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rlm::{ErrorCode, ToolError, protocol::CallOutcome};
use rlm_client::mcp::{Backend, Forward, Forwarded, RlmServer, ShimOptions, ToolNames, serve_io};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolRequestParams, ProgressNotificationParam},
    service::{NotificationContext, RunningService},
};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(10);
pub const INSTRUCTIONS: &str =
    "Keep big texts outside your context: rlm.session.create, then load, search.";

// ---------------------------------------------------------------- the fake backend

/// One call as the backend saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub tool: String,
    pub arguments: Value,
    pub progress: bool,
}

/// Answers by the `fake` argument: `ok` (echoes a result), `tool_error`, `failed`, `unknown`,
/// `unreachable`, `progress` (two updates, then ok) or `wait_cancel` (waits for its token).
#[derive(Default)]
pub struct Fake {
    pub seen: Mutex<Vec<Seen>>,
    pub started: tokio::sync::Notify,
    pub cancelled: tokio::sync::Notify,
}

/// The backend handed to the server: shares its [`Fake`] with the test.
pub struct FakeBackend(pub Arc<Fake>);

impl Fake {
    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the backend saw a call")
    }
}

pub fn ok_result(tool: &str) -> Value {
    json!({ "tool": tool, "n": 3, "nested": { "list": [1, 2, "é"] }, "none": null })
}

impl Backend for FakeBackend {
    fn call(&self, call: Forward) -> Forwarded {
        let Forward {
            tool,
            arguments,
            progress,
            cancel,
        } = call;
        self.0.seen.lock().unwrap().push(Seen {
            tool: tool.clone(),
            arguments: arguments.clone(),
            progress: progress.is_some(),
        });
        let me = self.0.clone();
        Box::pin(async move {
            match arguments
                .get("fake")
                .and_then(Value::as_str)
                .unwrap_or("ok")
            {
                "tool_error" => Ok(CallOutcome::ToolError {
                    error: ToolError::new(
                        ErrorCode::SessionNotFound,
                        "no session `s-1`; create one first",
                    )
                    .with("session_id", "s-1"),
                }),
                "hint" => Ok(CallOutcome::ToolError {
                    error: ToolError::new(
                        ErrorCode::DocumentNotFound,
                        "session s-1 has no document \"d\"; use rlm.docs.list to see its doc_ids, or rlm.docs.load",
                    ),
                }),
                "failed" => Ok(CallOutcome::Failed {
                    message: "the engine task panicked".into(),
                }),
                "unknown" => Ok(CallOutcome::UnknownTool { name: tool }),
                "unreachable" => Err("the rlm daemon is not running and could not be started; \
                                      see the shim's log"
                    .into()),
                "progress" => {
                    let sink = progress.expect("progress asked for");
                    sink.send((1, Some(2), "1 of 2 files".into())).unwrap();
                    sink.send((2, Some(2), String::new())).unwrap();
                    Ok(CallOutcome::Ok {
                        result: ok_result(&tool),
                    })
                }
                "wait_cancel" => {
                    me.started.notify_one();
                    cancel.cancelled().await;
                    me.cancelled.notify_one();
                    Ok(CallOutcome::ToolError {
                        error: ToolError::new(ErrorCode::Cancelled, "cancelled"),
                    })
                }
                _ => Ok(CallOutcome::Ok {
                    result: ok_result(&tool),
                }),
            }
        })
    }
}

// ---------------------------------------------------------------- the rmcp client

#[derive(Clone, Default)]
pub struct Client {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

pub fn options(tool_names: ToolNames) -> ShimOptions {
    ShimOptions {
        tool_names,
        instructions: INSTRUCTIONS.into(),
        server_name: "rlm-mcp".into(),
        server_version: "9.8.7".into(),
        clients: Default::default(),
    }
}

/// Serves a fresh shim on an in-memory pipe; returns its far end and the session task.
pub fn start_server(
    tool_names: ToolNames,
) -> (
    Arc<Fake>,
    tokio::io::DuplexStream,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let fake = Arc::new(Fake::default());
    let server = RlmServer::new(Arc::new(FakeBackend(fake.clone())), options(tool_names));
    let (server_end, client_end) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(server_end);
    let task = tokio::spawn(serve_io(server, read, write));
    (fake, client_end, task)
}

pub async fn connect(tool_names: ToolNames) -> (Arc<Fake>, RunningService<RoleClient, Client>) {
    let (fake, client_end, _task) = start_server(tool_names);
    let client = Client::default()
        .serve(client_end)
        .await
        .expect("initialize");
    (fake, client)
}

pub fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(name.to_owned()).with_arguments(arguments)
}

pub fn text_of(result: &rmcp::model::CallToolResult) -> String {
    assert_eq!(result.content.len(), 1, "one content item: {result:?}");
    result.content[0]
        .as_text()
        .expect("a text item")
        .text
        .clone()
}

// ---------------------------------------------------------------- clients that name themselves

/// A client that names itself `name` in `initialize`, served by a fresh shim.
pub async fn connect_as(
    name: &str,
) -> (
    Arc<Fake>,
    RunningService<RoleClient, rmcp::model::ClientConfig>,
) {
    let (fake, client_end, _task) = start_server(ToolNames::Dotted);
    let mut info = rmcp::model::ClientConfig::default();
    info.client_info = rmcp::model::Implementation::new(name, "1.0");
    let client = info.serve(client_end).await.expect("initialize");
    (fake, client)
}
