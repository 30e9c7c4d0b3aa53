//! The MCP layer of `rlm-mcp`: serves the twelve tools of the contract over MCP (rmcp) and forwards every call to a [`Backend`] (the daemon connection).
//!
//! What it does, and nothing more:
//! - `initialize` answers the server name, version and instructions of [`ShimOptions`], with the
//!   `tools` capability; rmcp negotiates the protocol version (every version it knows, 2024-11-05
//!   through 2026-07-28, and `server/discover`).
//! - `tools/list` lists [`Tool::ALL`] with their descriptions and schemas, under dotted or
//!   underscore names ([`ToolNames`]). The schemas are rewritten once, at start, into the form
//!   every MCP client accepts (see [`RlmServer::new`]).
//! - `tools/call` accepts both spellings, forwards the canonical dotted name and the arguments to
//!   the backend, passes progress and cancellation through, and maps the [`CallOutcome`] to an MCP
//!   result as the contract says (`structuredContent` plus the same JSON as text; tool errors as
//!   `isError` results; an unknown tool as JSON-RPC error -32602).
//!
//! Nothing here writes to stdout but rmcp's transport.

use std::{borrow::Cow, str::FromStr, sync::Arc};

use futures::future::BoxFuture;
use rlm::{Tool, protocol::CallOutcome};
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
        ProgressToken, ServerCapabilities, ServerConfig, ToolsCapability,
    },
    service::{RequestContext, ServerInitializeError},
    transport::async_rw::AsyncRwTransport,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Receives progress of one call: `(done, total, message)`.
pub type ProgressSink = mpsc::UnboundedSender<(u64, Option<u64>, String)>;

/// The largest MCP message (one JSON-RPC line) the shim reads. rmcp's default (16 MiB) would
/// silently drop a larger `rlm.docs.load` with inline content and leave the client waiting; this
/// matches the largest frame the daemon accepts, so whatever fits one reaches the other.
pub const MAX_MESSAGE_BYTES: usize = rlm::protocol::MAX_FRAME_BYTES;

/// What the MCP layer forwards calls to (the daemon connection implements it; tests use a fake).
pub trait Backend: Send + Sync + 'static {
    /// Runs one tool. `tool` is the canonical dotted name; `arguments` is the JSON object the
    /// client sent (`{}` when it sent none).
    ///
    /// `progress` is `Some` only when the MCP client asked for progress (a `progressToken`): each
    /// `(done, total, message)` sent on it becomes one `notifications/progress`. `done` should
    /// grow with every update. Updates sent after the returned future resolves are dropped.
    ///
    /// `cancel` fires when the client cancels the call (`notifications/cancelled`) and when the
    /// MCP session ends. It may also fire after the call has finished (rmcp cancels a request's
    /// token once its response is sent): ignore it then.
    ///
    /// `Err(message)` means the daemon could not be reached or went away during the call; the
    /// message says so and what to do (the model reads it, under code `daemon_unavailable`).
    fn call(
        &self,
        tool: String,
        arguments: Value,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<CallOutcome, String>>;
}

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
    /// Builds the server info and the tool list once.
    ///
    /// The schemas of [`Tool::input_schema`] and [`Tool::output_schema`] are rewritten into the
    /// form MCP clients accept:
    /// - every `$ref` is inlined and `$defs` / `definitions` dropped (clients built on the
    ///   TypeScript SDK since 1.22, Cursor, Claude Code and the MCP Inspector fail on `#/$defs/`
    ///   references); `$schema` is dropped too (an unstamped schema is 2020-12 for clients that
    ///   follow SEP-2106, and reads the same under draft-07), as are the root `title` and
    ///   `description` (the Rust type's name and doc) and the non-standard numeric `format`s
    ///   (`uint64`, `double`, ...) that strict validators warn about;
    /// - each output schema also admits the error envelope `{"error": {"code", "message", ...}}`
    ///   of `isError` results: the TypeScript SDK validates `structuredContent` against
    ///   `outputSchema` even when `isError` is true, and would otherwise turn every tool error
    ///   into a protocol error. The success shape stays at the root (`properties`), its
    ///   `required` moves into `anyOf: [{required: [...]}, {required: ["error"]}]`.
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
            info = info.with_instructions(options.instructions);
        }
        let tools = Tool::ALL
            .into_iter()
            .map(|tool| listed_tool(tool, options.tool_names))
            .collect();
        RlmServer {
            backend,
            shared: Arc::new(Shared {
                tool_names: options.tool_names,
                info,
                tools,
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
            return self.backend.call(name, arguments, None, cancel).await;
        };
        let (sink, mut updates) = mpsc::unbounded_channel();
        let mut call = self.backend.call(name, arguments, Some(sink), cancel);
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
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.run(tool, arguments, &context).await {
            Ok(CallOutcome::Ok { result }) => CallToolResult::structured(result),
            Ok(CallOutcome::ToolError { error }) => {
                error_result(error.code.as_str(), &error.message, error.to_json())
            }
            Ok(CallOutcome::UnknownTool { name }) => return Err(self.unknown_tool(&name)),
            Ok(CallOutcome::Failed { message }) => {
                let error = rlm::ToolError::internal(message);
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
pub async fn serve_io<B, R, W>(server: RlmServer<B>, reader: R, writer: W) -> Result<(), String>
where
    B: Backend,
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let transport = AsyncRwTransport::<RoleServer, R, W>::new(reader, writer)
        .with_max_line_length(MAX_MESSAGE_BYTES);
    match server.serve(transport).await {
        Ok(running) => match running.waiting().await {
            Ok(_reason) => Ok(()),
            Err(e) => Err(format!("the MCP session task failed: {e}")),
        },
        Err(ServerInitializeError::ConnectionClosed(_)) => Ok(()),
        Err(e) => Err(format!("the MCP session did not start: {e}")),
    }
}

// ---------------------------------------------------------------- schemas

fn listed_tool(tool: Tool, names: ToolNames) -> rmcp::model::Tool {
    let input = client_schema(tool.input_schema());
    let mut output = with_error_envelope(top_level(client_schema(tool.output_schema())));
    // Clients validate every result against this schema. Python's jsonschema
    // checks an unstamped (2020-12) schema against its metaschema in ~10 ms
    // per call, a draft-07 one in ~2 ms; the rewritten schemas use nothing
    // draft-07 lacks, and the TypeScript SDK's Ajv reads draft-07 natively.
    output.insert("$schema".to_owned(), json!(DRAFT_07));
    rmcp::model::Tool::new(
        Cow::Owned(names.name_of(tool)),
        Cow::Borrowed(tool.description()),
        Arc::new(input),
    )
    .with_raw_output_schema(Arc::new(output))
}

/// The JSON Schema dialect output schemas declare.
const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// Keywords whose values are data, not schemas: never searched for `$ref`.
const DATA_KEYWORDS: [&str; 4] = ["const", "enum", "default", "examples"];

/// Keywords that only annotate a schema: beside a `$ref`, they merge into the inlined schema.
const ANNOTATIONS: [&str; 7] = [
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// `format`s schemars writes for Rust number types: not JSON Schema formats, so validators
/// ignore or warn about them.
const NUMERIC_FORMATS: [&str; 14] = [
    "int", "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32",
    "uint64", "uint128", "float", "double",
];

/// A schemars root schema rewritten into the form MCP clients accept: refs inlined, no `$defs`,
/// `$schema`, root `title`/`description` or numeric formats. A schema whose refs cannot all be
/// inlined (a recursive or dangling one; none of the contract's are) keeps its `$defs`.
fn client_schema(schema: Value) -> JsonObject {
    let Value::Object(mut root) = schema else {
        return JsonObject::from_iter([("type".to_owned(), json!("object"))]);
    };
    let defs = match root.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let legacy_defs = match root.remove("definitions") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    root.remove("$schema");
    root.remove("title");
    root.remove("description");
    let node = Value::Object(root);
    let lookup = |reference: &str| -> Option<&Value> {
        if let Some(name) = reference.strip_prefix("#/$defs/") {
            defs.get(&unescape_pointer(name))
        } else if let Some(name) = reference.strip_prefix("#/definitions/") {
            legacy_defs.get(&unescape_pointer(name))
        } else {
            None
        }
    };
    let inlined = inline(&node, &lookup, &mut Vec::new());
    let rewritten = match inlined {
        // A `$ref` left behind (under a keyword taken for data) would dangle without `$defs`.
        Ok(inlined) if !has_ref(&inlined) => inlined,
        _ => {
            // Keep the references resolvable: put the definitions back.
            let mut kept = strip_formats(node);
            if let Value::Object(map) = &mut kept {
                if !defs.is_empty() {
                    map.insert("$defs".into(), strip_formats(Value::Object(defs.clone())));
                }
                if !legacy_defs.is_empty() {
                    map.insert(
                        "definitions".into(),
                        strip_formats(Value::Object(legacy_defs.clone())),
                    );
                }
            }
            kept
        }
    };
    match rewritten {
        Value::Object(map) => map,
        _ => JsonObject::from_iter([("type".to_owned(), json!("object"))]),
    }
}

/// Decodes the `~1` and `~0` escapes of one JSON-pointer segment.
fn unescape_pointer(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Inlines every `$ref` below `node`; `Err` on a recursive or unresolvable one. `stack` holds the
/// references being expanded (to catch recursion).
fn inline<'a>(
    node: &Value,
    lookup: &impl Fn(&str) -> Option<&'a Value>,
    stack: &mut Vec<String>,
) -> Result<Value, String> {
    match node {
        Value::Array(items) => items
            .iter()
            .map(|item| inline(item, lookup, stack))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                if key == "$ref" {
                    continue;
                }
                let value = if DATA_KEYWORDS.contains(&key.as_str()) {
                    value.clone()
                } else {
                    inline(value, lookup, stack)?
                };
                out.insert(key.clone(), value);
            }
            drop_numeric_format(&mut out);
            let Some(reference) = map.get("$ref") else {
                return Ok(Value::Object(out));
            };
            let reference = reference
                .as_str()
                .ok_or_else(|| "a $ref that is not a string".to_owned())?;
            if stack.iter().any(|r| r == reference) {
                return Err(format!("recursive reference {reference}"));
            }
            let target = lookup(reference).ok_or_else(|| format!("unresolvable {reference}"))?;
            stack.push(reference.to_owned());
            let inlined = inline(target, lookup, stack);
            stack.pop();
            let inlined = inlined?;
            if out.is_empty() {
                return Ok(inlined);
            }
            match inlined {
                Value::Object(mut target)
                    if out.keys().all(|k| ANNOTATIONS.contains(&k.as_str())) =>
                {
                    // The annotations beside the reference describe this use: they win.
                    target.extend(out);
                    Ok(Value::Object(target))
                }
                other => {
                    out.insert("allOf".into(), Value::Array(vec![other]));
                    Ok(Value::Object(out))
                }
            }
        }
        other => Ok(other.clone()),
    }
}

fn has_ref(node: &Value) -> bool {
    match node {
        Value::Array(items) => items.iter().any(has_ref),
        Value::Object(map) => map.contains_key("$ref") || map.values().any(has_ref),
        _ => false,
    }
}

/// Removes the numeric `format`s everywhere below `node` (for the fallback that keeps `$defs`).
fn strip_formats(node: Value) -> Value {
    match node {
        Value::Array(items) => Value::Array(items.into_iter().map(strip_formats).collect()),
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| {
                    if DATA_KEYWORDS.contains(&k.as_str()) {
                        (k, v)
                    } else {
                        (k, strip_formats(v))
                    }
                })
                .collect();
            drop_numeric_format(&mut out);
            Value::Object(out)
        }
        other => other,
    }
}

fn drop_numeric_format(schema: &mut Map<String, Value>) {
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMERIC_FORMATS.contains(&f))
    {
        schema.remove("format");
    }
}

/// Lets an output schema also accept the error envelope of `isError` results (see
/// [`RlmServer::new`]).
/// An output schema cut to its top level: every result key with its JSON
/// type and whether it is required, nested objects and arrays typed but not
/// described further. MCP clients validate every result against the output
/// schema; Python's jsonschema took 4.4 ms a call for the full nested schema
/// of a search result and 0.6 ms for this one (measured here), which is most
/// of a call's time. The full schemas stay in `rlm::tools`.
fn top_level(mut schema: JsonObject) -> JsonObject {
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for value in properties.values_mut() {
            *value = type_only(value);
        }
    }
    schema
}

/// `{"type": ...}` of a schema: its own type, or the union of its
/// alternatives' types; `{}` (anything) when none is known.
fn type_only(schema: &Value) -> Value {
    fn collect(schema: &Value, out: &mut Vec<Value>) -> bool {
        match schema.get("type") {
            Some(Value::String(t)) => out.push(json!(t)),
            Some(Value::Array(ts)) => out.extend(ts.iter().cloned()),
            _ => {
                let Some(Value::Array(branches)) =
                    schema.get("anyOf").or_else(|| schema.get("oneOf"))
                else {
                    return false;
                };
                for b in branches {
                    if !collect(b, out) {
                        return false;
                    }
                }
            }
        }
        true
    }
    let mut types = Vec::new();
    if !collect(schema, &mut types) {
        return json!({});
    }
    types.dedup();
    let mut unique: Vec<Value> = Vec::new();
    for t in types {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    match unique.len() {
        1 => json!({ "type": unique[0] }),
        _ => json!({ "type": unique }),
    }
}

fn with_error_envelope(mut schema: JsonObject) -> JsonObject {
    let error = json!({
        "description": "Only in results with isError true: why the call failed. `code` is a \
                        stable snake_case code (session_not_found, invalid_argument, \
                        budget_exceeded, daemon_unavailable, ...); other keys give context.",
        "type": "object",
        "properties": {
            "code": { "type": "string" },
            "message": { "type": "string" }
        },
        "required": ["code", "message"]
    });
    let properties = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(properties) = properties {
        properties.entry("error").or_insert(error);
    }
    let Some(required) = schema.remove("required") else {
        return schema;
    };
    if required.as_array().is_none_or(Vec::is_empty) {
        return schema;
    }
    let alternatives = json!([{ "required": required }, { "required": ["error"] }]);
    if schema.contains_key("anyOf") {
        // Never the case for the contract's results: keep both constraints if it were.
        let all_of = schema.entry("allOf").or_insert_with(|| json!([]));
        if let Value::Array(all_of) = all_of {
            all_of.push(json!({ "anyOf": alternatives }));
        }
    } else {
        schema.insert("anyOf".into(), alternatives);
    }
    schema
}
