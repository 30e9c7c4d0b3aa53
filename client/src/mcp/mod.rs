//! The MCP layer of `rlm-mcp`: serves the twelve tools of the contract over MCP (rmcp) and forwards every call to a [`Backend`] (the daemon connection).
//!
//! What it does, and nothing more:
//! - `initialize` answers the server name, version and instructions of [`ShimOptions`], with the
//!   `tools` capability; rmcp negotiates the protocol version (every version it knows, 2024-11-05
//!   through 2026-07-28, and `server/discover`).
//! - `tools/list` lists [`Tool::ALL`] with their descriptions and schemas, under dotted or
//!   underscore names ([`ToolNames`]). The schemas are rewritten once, at start, into the form
//!   every MCP client accepts (`schema.rs`).
//! - `tools/call` accepts both spellings, forwards the canonical dotted name and the arguments to
//!   the backend, passes progress and cancellation through, and maps the [`CallOutcome`] to an MCP
//!   result as the contract says (`structuredContent` plus the same JSON as text; tool errors as
//!   `isError` results; an unknown tool as JSON-RPC error -32602).
//!
//! Nothing here writes to stdout but the one writer of `stdio.rs`.
//!
//! `backend.rs` holds the [`Backend`] trait and its implementation over the daemon connection;
//! `schema.rs` rewrites the contract's schemas for clients; `stdio.rs` owns the byte streams
//! (bounded lines in, one writer out) and `jsonrpc.rs` the checks that answer bad input as
//! JSON-RPC says (-32700, -32600, -32602) before rmcp sees it.

mod backend;
mod jsonrpc;
mod schema;
mod stdio;

use std::{borrow::Cow, collections::BTreeMap, str::FromStr, sync::Arc};

use rlm::config::ClientProfile;
use rlm::{Tool, protocol::CallOutcome};
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
        ServerCapabilities, ServerConfig, ToolsCapability,
    },
    service::{RequestContext, ServerInitializeError},
};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use crate::ProgressSink;
pub use backend::{Backend, Forward, Forwarded, Unavailable};

/// The largest MCP message (one JSON-RPC line, newline excluded) the shim reads: the largest
/// frame the daemon accepts, so whatever fits one reaches the other. A longer line is discarded
/// as it streams (never held whole) and answered -32700.
pub const MAX_MESSAGE_BYTES: usize = rlm::protocol::MAX_FRAME_BYTES;

/// How `tools/list` spells the tool names; `tools/call` accepts both either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ToolNames {
    /// `rlm.session.create`: the names of the contract.
    #[default]
    Dotted,
    /// `rlm_session_create`: for clients that accept only `[A-Za-z0-9_-]` names.
    Underscore,
}

impl ToolNames {
    /// The name `tools/list` shows for `tool`.
    pub fn name_of(self, tool: Tool) -> String {
        match self {
            ToolNames::Dotted => tool.name().to_owned(),
            ToolNames::Underscore => tool.underscore_name(),
        }
    }

    /// `text` with every tool name spelled as this listing spells it: the
    /// instructions, descriptions and error hints name tools the way the
    /// client can call them (`use rlm_docs_list`), not only the way the
    /// contract writes them.
    pub fn respell(self, text: &str) -> String {
        match self {
            ToolNames::Dotted => text.to_owned(),
            ToolNames::Underscore => {
                // Longest first, so no name is rewritten inside a longer one.
                let mut tools = Tool::ALL.to_vec();
                tools.sort_by_key(|t| std::cmp::Reverse(t.name().len()));
                tools.into_iter().fold(text.to_owned(), |text, tool| {
                    text.replace(tool.name(), &tool.underscore_name())
                })
            }
        }
    }
}

impl FromStr for ToolNames {
    type Err = String;

    /// Reads `dotted` or `underscore` (any case), as a command-line flag or setting would give it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "dotted" | "dots" | "dot" => Ok(ToolNames::Dotted),
            "underscore" | "underscores" => Ok(ToolNames::Underscore),
            other => Err(format!(
                "unknown tool-name style `{other}`: use `dotted` (rlm.session.create) or \
                 `underscore` (rlm_session_create)"
            )),
        }
    }
}

/// What the shim tells clients about itself.
#[derive(Clone, Debug)]
pub struct ShimOptions {
    pub tool_names: ToolNames,
    /// Sent as `instructions` in the `initialize` result (left out when empty).
    pub instructions: String,
    pub server_name: String,
    pub server_version: String,
    /// `[clients]` of the configuration: the caps given to the sessions a
    /// client creates, by its `clientInfo.name` (built-in profiles besides).
    pub clients: BTreeMap<String, ClientProfile>,
}

/// The MCP server of `rlm-mcp`: an rmcp [`ServerHandler`] that forwards tool calls to `B`.
pub struct RlmServer<B: Backend> {
    backend: Arc<B>,
    shared: Arc<Shared>,
}

/// What is built once and read by every request.
struct Shared {
    tool_names: ToolNames,
    info: ServerConfig,
    /// The `tools/list` entries, in [`Tool::ALL`] order.
    tools: Vec<rmcp::model::Tool>,
    /// Their input schemas as JSON, in the same order: what weak clients'
    /// string arguments are read against ([`schema::coerce`]).
    inputs: Vec<Value>,
    clients: BTreeMap<String, ClientProfile>,
}

impl<B: Backend> Clone for RlmServer<B> {
    fn clone(&self) -> Self {
        RlmServer {
            backend: self.backend.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<B: Backend> RlmServer<B> {
    /// Builds the server info and the tool list once, with the schemas rewritten into the form
    /// MCP clients accept (see `schema.rs`).
    pub fn new(backend: Arc<B>, options: ShimOptions) -> Self {
        let mut tools_capability = ToolsCapability::default();
        tools_capability.list_changed = Some(false);
        let mut capabilities = ServerCapabilities::builder().enable_tools().build();
        capabilities.tools = Some(tools_capability);
        let mut info = ServerConfig::new(capabilities).with_server_info(Implementation::new(
            options.server_name,
            options.server_version,
        ));
        if !options.instructions.trim().is_empty() {
            info = info.with_instructions(options.tool_names.respell(&options.instructions));
        }
        let tools: Vec<rmcp::model::Tool> = Tool::ALL
            .into_iter()
            .map(|tool| listed_tool(tool, options.tool_names))
            .collect();
        // The listed schemas (respelling touches descriptions only).
        let inputs = tools
            .iter()
            .map(|t| Value::Object(t.input_schema.as_ref().clone()))
            .collect();
        RlmServer {
            backend,
            shared: Arc::new(Shared {
                tool_names: options.tool_names,
                info,
                tools,
                inputs,
                clients: options.clients,
            }),
        }
    }

    /// The `tools/list` entries, as clients see them.
    pub fn tools(&self) -> &[rmcp::model::Tool] {
        &self.shared.tools
    }

    fn unknown_tool(&self, name: &str) -> McpError {
        let valid: Vec<String> = Tool::ALL
            .into_iter()
            .map(|t| self.shared.tool_names.name_of(t))
            .collect();
        McpError::invalid_params(
            format!(
                "unknown tool `{name}`: this server has {} (dots or underscores both work)",
                valid.join(", ")
            ),
            Some(json!({ "tool": name, "valid_tools": valid })),
        )
    }

    /// Runs the call on the backend, forwarding its progress while it runs.
    async fn run(
        &self,
        tool: Tool,
        arguments: Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallOutcome, String> {
        let name = tool.name().to_owned();
        let cancel = context.ct.clone();
        let Some(token) = context.meta.get_progress_token() else {
            return self
                .backend
                .call(Forward {
                    tool: name,
                    arguments,
                    progress: None,
                    cancel,
                })
                .await;
        };
        let (sink, mut updates) = mpsc::unbounded_channel();
        let mut call = self.backend.call(Forward {
            tool: name,
            arguments,
            progress: Some(sink),
            cancel,
        });
        let mut open = true;
        // Progress is sent from this task (not a spawned one) so that rmcp associates it with
        // the request it belongs to.
        let outcome = loop {
            tokio::select! {
                biased;
                update = updates.recv(), if open => match update {
                    Some(update) => notify_progress(&context.peer, &token, update).await,
                    None => open = false,
                },
                outcome = &mut call => break outcome,
            }
        };
        // Updates sent just before the call ended still go out before its result.
        while let Ok(update) = updates.try_recv() {
            notify_progress(&context.peer, &token, update).await;
        }
        outcome
    }
}

impl<B: Backend> ServerHandler for RlmServer<B> {
    fn get_info(&self) -> ServerConfig {
        self.shared.info.clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.shared.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        let tool = Tool::from_name(name)?;
        let index = Tool::ALL.iter().position(|t| *t == tool)?;
        self.shared.tools.get(index).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(tool) = Tool::from_name(&request.name) else {
            return Err(self.unknown_tool(&request.name));
        };
        let mut arguments = Value::Object(request.arguments.unwrap_or_default());
        // `"limit": "2"` from a client that sends every argument as text.
        if let Some(input) = Tool::ALL
            .iter()
            .position(|t| *t == tool)
            .and_then(|i| self.shared.inputs.get(i))
        {
            schema::coerce(input, &mut arguments);
        }
        if tool == Tool::SessionCreate {
            let client = context.peer.peer_info();
            let name = client.as_ref().map_or("", |i| i.client_info.name.as_str());
            apply_client_profile(&self.shared.clients, name, &mut arguments);
        }
        let names = self.shared.tool_names;
        let result = match self.run(tool, arguments, &context).await {
            Ok(CallOutcome::Ok { result }) => CallToolResult::structured(result),
            Ok(CallOutcome::ToolError { mut error }) => {
                error.message = names.respell(&error.message);
                error_result(error.code.as_str(), &error.message, error.to_json())
            }
            Ok(CallOutcome::UnknownTool { name }) => return Err(self.unknown_tool(&name)),
            Ok(CallOutcome::Failed { message }) => {
                let error = rlm::ToolError::internal(names.respell(&message));
                error_result("internal", &error.message, error.to_json())
            }
            Err(message) => error_result(
                DAEMON_UNAVAILABLE,
                &message,
                json!({ "error": { "code": DAEMON_UNAVAILABLE, "message": message } }),
            ),
        };
        Ok(CallToolResponse::Complete(result))
    }
}

/// Gives a new session of the client named `client_name` the caps of its
/// profile ([`rlm::config::client_profile`]) when its `config` sets neither
/// cap itself, so that answers fit what the client accepts (Codex keeps
/// about 10 KiB of a tool's output).
fn apply_client_profile(
    clients: &BTreeMap<String, ClientProfile>,
    client_name: &str,
    arguments: &mut Value,
) {
    let Some((_, profile)) = rlm::config::client_profile(clients, client_name) else {
        return;
    };
    let Value::Object(args) = arguments else {
        return;
    };
    let config = args
        .entry("config")
        .or_insert_with(|| Value::Object(Default::default()));
    if config.is_null() {
        *config = Value::Object(Default::default());
    }
    let Value::Object(config) = config else {
        return; // not an object: the daemon says so
    };
    // A client that sets a cap itself knows what it takes.
    if config.contains_key("max_chars_per_response")
        || config.contains_key("max_tokens_per_response")
    {
        return;
    }
    for (field, value) in [
        ("max_chars_per_response", profile.max_chars_per_response),
        ("max_tokens_per_response", profile.max_tokens_per_response),
    ] {
        if let Some(value) = value {
            config.entry(field).or_insert(json!(value));
        }
    }
}

/// The error code of a call the daemon could not take or finish.
const DAEMON_UNAVAILABLE: &str = "daemon_unavailable";

/// An `isError` result: `code: message` as text, the envelope as `structuredContent`.
fn error_result(code: &str, message: &str, envelope: Value) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(format!("{code}: {message}"))]);
    result.structured_content = Some(envelope);
    result
}

async fn notify_progress(
    peer: &Peer<RoleServer>,
    token: &ProgressToken,
    (done, total, message): (u64, Option<u64>, String),
) {
    let mut param = ProgressNotificationParam::new(token.clone(), done as f64);
    if let Some(total) = total {
        param = param.with_total(total as f64);
    }
    if !message.is_empty() {
        param = param.with_message(message);
    }
    // A client that went away misses its progress; the call itself still ends normally.
    let _ = peer.notify_progress(param).await;
}

/// Serves MCP on stdin/stdout until stdin closes (returns then). Nothing but MCP is ever written
/// to stdout. Calls still running when stdin closes get up to rmcp's drain time (5 s) to answer,
/// then their cancel tokens fire.
pub async fn serve_stdio<B: Backend>(server: RlmServer<B>) -> Result<(), String> {
    // Non-blocking pipes when the client gave us pipes (the usual case), so no blocking stdin
    // read keeps the runtime alive after the session ends; plain stdio otherwise.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    serve_io(server, stdin, stdout).await
}

/// Serves MCP over any byte streams until `reader` reaches its end (what [`serve_stdio`] does with
/// stdin/stdout; tests use in-memory pipes). A stream that ends before `initialize` is a normal end.
/// Lines are read and checked by `stdio.rs`: bad JSON-RPC is answered there, the rest goes to rmcp.
pub async fn serve_io<B, R, W>(server: RlmServer<B>, reader: R, writer: W) -> Result<(), String>
where
    B: Backend,
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let (transport, pumps) = stdio::Pumps::start(reader, writer, MAX_MESSAGE_BYTES);
    let ended = match server.serve(transport).await {
        Ok(running) => match running.waiting().await {
            Ok(_reason) => Ok(()),
            Err(e) => Err(format!("the MCP session task failed: {e}")),
        },
        Err(ServerInitializeError::ConnectionClosed(_)) => Ok(()),
        Err(e) => Err(format!("the MCP session did not start: {e}")),
    };
    pumps.finish().await;
    ended
}

fn listed_tool(tool: Tool, names: ToolNames) -> rmcp::model::Tool {
    // The schemas' descriptions name tools too (`read it with
    // rlm.artifact.get`); names hold only `[a-z._]`, so the JSON text can be
    // respelled as it is.
    let respelled = |schema: rmcp::model::JsonObject| -> rmcp::model::JsonObject {
        if names == ToolNames::Dotted {
            return schema;
        }
        let text = names.respell(&Value::Object(schema.clone()).to_string());
        serde_json::from_str(&text).unwrap_or(schema)
    };
    rmcp::model::Tool::new(
        Cow::Owned(names.name_of(tool)),
        Cow::Owned(names.respell(tool.description())),
        Arc::new(respelled(schema::input(tool))),
    )
    .with_raw_output_schema(Arc::new(respelled(schema::output(tool))))
    .with_annotations(annotations(tool))
}

/// What a client may assume of a tool before calling it (MCP tool
/// annotations): a title for people, and whether it changes anything. The
/// tools that only read (they still count one call of the session's budget)
/// are `readOnlyHint`; the others only add (a session, documents, spans, an
/// artifact) or close, never delete: not destructive. Only `docs.load`
/// reaches past the server's own store (the files the model names).
fn annotations(tool: Tool) -> rmcp::model::ToolAnnotations {
    let (title, read_only, idempotent) = match tool {
        Tool::SessionCreate => ("Create a session", false, false),
        Tool::SessionInfo => ("Session info", true, true),
        Tool::SessionClose => ("Close a session", false, true),
        Tool::DocsLoad => ("Load documents", false, false),
        Tool::DocsList => ("List documents", true, true),
        Tool::DocsPeek => ("Peek at a document", true, true),
        Tool::ChunkCreate => ("Cut a document into spans", false, false),
        Tool::SpanGet => ("Read spans", true, true),
        Tool::SearchQuery => ("Search documents", true, true),
        Tool::ArtifactStore => ("Store an artifact", false, false),
        Tool::ArtifactList => ("List artifacts", true, true),
        Tool::ArtifactGet => ("Read an artifact", true, true),
    };
    let mut annotations = rmcp::model::ToolAnnotations::with_title(title)
        .read_only(read_only)
        .open_world(tool == Tool::DocsLoad);
    if !read_only {
        annotations = annotations.destructive(false).idempotent(idempotent);
    }
    annotations
}
