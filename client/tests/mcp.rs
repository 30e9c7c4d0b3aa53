//! Tests of the MCP layer (`rlm_client::mcp`): a real rmcp client, and raw JSON-RPC lines, drive `RlmServer` over in-memory pipes against a fake backend; no daemon.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use rlm::{
    ErrorCode, Tool, ToolError,
    protocol::CallOutcome,
    tools::{
        ArtifactEntry, ArtifactGetResult, ArtifactListResult, ArtifactStoreResult,
        ChunkCreateResult, ChunkSpan, CloseSummary, DocEntry, DocsListResult, DocsLoadResult,
        DocsPeekResult, Highlight, LoadedDoc, ModelHints, Provenance, SearchMatch, SearchResult,
        SessionCloseResult, SessionConfig, SessionCreateResult, SessionInfoResult, SpanContent,
        SpanGetResult, SpanRef,
    },
};
use rlm_client::mcp::{Backend, ProgressSink, RlmServer, ShimOptions, ToolNames, serve_io};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, ClientRequest, ErrorCode as RpcErrorCode, ProgressNotificationParam,
        ProtocolVersion, Request, ServerResult,
    },
    service::{NotificationContext, PeerRequestOptions, RunningService},
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);
const INSTRUCTIONS: &str = "Keep big texts outside your context: create a session, load, search.";

// ---------------------------------------------------------------- the fake backend

/// One call as the backend saw it.
#[derive(Clone, Debug)]
struct Seen {
    tool: String,
    arguments: Value,
    progress: bool,
}

/// Answers by the `fake` argument: `ok` (echoes a result), `tool_error`, `failed`, `unknown`,
/// `unreachable`, `progress` (two updates, then ok) or `wait_cancel` (waits for its token).
#[derive(Default)]
struct Fake {
    seen: Mutex<Vec<Seen>>,
    started: tokio::sync::Notify,
    cancelled: tokio::sync::Notify,
}

/// The backend handed to the server: shares its [`Fake`] with the test.
struct FakeBackend(Arc<Fake>);

impl Fake {
    fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the backend saw a call")
    }
}

fn ok_result(tool: &str) -> Value {
    json!({ "tool": tool, "n": 3, "nested": { "list": [1, 2, "é"] }, "none": null })
}

impl Backend for FakeBackend {
    fn call(
        &self,
        tool: String,
        arguments: Value,
        progress: Option<ProgressSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<CallOutcome, String>> {
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
struct Client {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
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

fn options(tool_names: ToolNames) -> ShimOptions {
    ShimOptions {
        tool_names,
        instructions: INSTRUCTIONS.into(),
        server_name: "rlm-mcp".into(),
        server_version: "9.8.7".into(),
    }
}

/// Serves a fresh shim on an in-memory pipe; returns its far end and the session task.
fn start_server(
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

async fn connect(tool_names: ToolNames) -> (Arc<Fake>, RunningService<RoleClient, Client>) {
    let (fake, client_end, _task) = start_server(tool_names);
    let client = Client::default()
        .serve(client_end)
        .await
        .expect("initialize");
    (fake, client)
}

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    CallToolRequestParams::new(name.to_owned()).with_arguments(arguments)
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    assert_eq!(result.content.len(), 1, "one content item: {result:?}");
    result.content[0]
        .as_text()
        .expect("a text item")
        .text
        .clone()
}

// ---------------------------------------------------------------- initialize and tools/list

#[tokio::test]
async fn initialize_gives_server_info_instructions_and_the_tools_capability() {
    let (_fake, client) = connect(ToolNames::Dotted).await;
    let info = client.peer_info().expect("server info");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "rlm-mcp");
    assert_eq!(server.version, "9.8.7");
    assert_eq!(info.instructions.as_deref(), Some(INSTRUCTIONS));
    let tools = info.capabilities.tools.as_ref().expect("tools capability");
    assert_eq!(tools.list_changed, Some(false));
    assert!(info.capabilities.resources.is_none() && info.capabilities.prompts.is_none());
    client.cancel().await.unwrap();
}

fn assert_no_refs(node: &Value, at: &str) {
    match node {
        Value::Object(map) => {
            for key in ["$ref", "$defs", "definitions", "$schema"] {
                assert!(!map.contains_key(key), "{at}: `{key}` left in the schema");
            }
            for (k, v) in map {
                assert_no_refs(v, &format!("{at}/{k}"));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| assert_no_refs(v, at)),
        _ => {}
    }
}

async fn listed(tool_names: ToolNames) -> Vec<rmcp::model::Tool> {
    let (_fake, client) = connect(tool_names).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    client.cancel().await.unwrap();
    tools
}

#[tokio::test]
async fn tools_list_has_the_twelve_tools_dotted_with_self_contained_schemas() {
    let tools = listed(ToolNames::Dotted).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let expected: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(names, expected);
    for (listed, tool) in tools.iter().zip(Tool::ALL) {
        assert_eq!(listed.description.as_deref(), Some(tool.description()));
        let input = Value::Object(listed.input_schema.as_ref().clone());
        let output = Value::Object(
            listed
                .output_schema
                .as_ref()
                .expect("outputSchema")
                .as_ref()
                .clone(),
        );
        for (what, schema) in [("inputSchema", &input), ("outputSchema", &output)] {
            assert_eq!(schema["type"], "object", "{}: {what}", tool.name());
            // Output schemas declare draft-07 (cheap for clients to check); nothing else may
            // carry `$schema`, and no schema may carry references.
            let mut body = schema.clone();
            if let Some(dialect) = body.as_object_mut().and_then(|m| m.remove("$schema")) {
                assert_eq!(
                    what,
                    "outputSchema",
                    "{}: only output schemas declare a dialect",
                    tool.name()
                );
                assert_eq!(dialect, "http://json-schema.org/draft-07/schema#");
            }
            assert_no_refs(&body, &format!("{} {what}", tool.name()));
            assert!(
                jsonschema::meta::is_valid(schema),
                "{} {what} is not a valid JSON schema: {schema}",
                tool.name()
            );
        }
        // Same properties as the contract's own schemas, plus the error envelope on output.
        let contract_input = tool.input_schema();
        assert_eq!(
            input["properties"]
                .as_object()
                .map(|p| p.keys().collect::<Vec<_>>()),
            contract_input["properties"]
                .as_object()
                .map(|p| p.keys().collect::<Vec<_>>()),
            "{}",
            tool.name()
        );
        assert_eq!(
            input.get("required"),
            contract_input.get("required"),
            "{}",
            tool.name()
        );
        let contract_output = tool.output_schema();
        let listed_keys: Vec<&String> = output["properties"].as_object().unwrap().keys().collect();
        for key in contract_output["properties"].as_object().unwrap().keys() {
            assert!(
                listed_keys.contains(&key),
                "{}: output property {key}",
                tool.name()
            );
        }
        assert!(output["properties"]["error"].is_object(), "{}", tool.name());
    }
}

#[tokio::test]
async fn tools_list_uses_underscore_names_when_asked() {
    let tools = listed(ToolNames::Underscore).await;
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let expected: Vec<String> = Tool::ALL.iter().map(|t| t.underscore_name()).collect();
    assert_eq!(names, expected);
    assert!(names.iter().all(|n| {
        n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }));
    assert!(tools.iter().all(|t| t.output_schema.is_some()));
}

// ---------------------------------------------------------------- tools/call

#[tokio::test]
async fn either_spelling_calls_the_tool_under_its_dotted_name() {
    for (listing, spelled) in [
        (ToolNames::Dotted, "rlm_docs_peek"),
        (ToolNames::Dotted, "rlm.docs.peek"),
        (ToolNames::Underscore, "rlm.docs.peek"),
        (ToolNames::Underscore, "rlm_docs_peek"),
    ] {
        let (fake, client) = connect(listing).await;
        let args = json!({ "session_id": "s", "doc_id": "d", "start": 0 });
        let result = client
            .call_tool(call(spelled, args.clone()))
            .await
            .expect("tools/call");
        assert_ne!(result.is_error, Some(true));
        let seen = fake.last();
        assert_eq!(seen.tool, "rlm.docs.peek", "{listing:?} {spelled}");
        assert_eq!(seen.arguments, args);
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_result_is_structured_content_and_the_same_json_as_text() {
    let (fake, client) = connect(ToolNames::Dotted).await;
    let result = client
        .call_tool(call("rlm.session.create", json!({})))
        .await
        .unwrap();
    let expected = ok_result("rlm.session.create");
    assert_eq!(result.structured_content.as_ref(), Some(&expected));
    assert_ne!(result.is_error, Some(true));
    let text = text_of(&result);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
    assert_eq!(
        text,
        serde_json::to_string(&expected).unwrap(),
        "compact JSON"
    );
    // No arguments at all reach the backend as {}.
    client
        .call_tool(CallToolRequestParams::new("rlm.session.create"))
        .await
        .unwrap();
    assert_eq!(fake.last().arguments, json!({}));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tool_error_is_an_error_result_with_its_code() {
    let (_fake, client) = connect(ToolNames::Dotted).await;
    let result = client
        .call_tool(call(
            "rlm.session.info",
            json!({ "session_id": "s-1", "fake": "tool_error" }),
        ))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let structured = result.structured_content.clone().unwrap();
    assert_eq!(structured["error"]["code"], "session_not_found");
    assert_eq!(
        structured["error"]["message"],
        "no session `s-1`; create one first"
    );
    assert_eq!(structured["error"]["session_id"], "s-1");
    assert_eq!(
        text_of(&result),
        "session_not_found: no session `s-1`; create one first"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn daemon_failures_are_error_results_too() {
    let (_fake, client) = connect(ToolNames::Dotted).await;
    for (fake, code) in [
        ("failed", "internal"),
        ("unreachable", "daemon_unavailable"),
    ] {
        let result = client
            .call_tool(call(
                "rlm.docs.list",
                json!({ "session_id": "s", "fake": fake }),
            ))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(true), "{fake}");
        let structured = result.structured_content.clone().unwrap();
        assert_eq!(structured["error"]["code"], code, "{fake}");
        let message = structured["error"]["message"].as_str().unwrap().to_owned();
        assert!(!message.is_empty());
        assert_eq!(text_of(&result), format!("{code}: {message}"));
    }
    client.cancel().await.unwrap();
}

fn assert_invalid_params(outcome: Result<rmcp::model::CallToolResult, ServiceError>, name: &str) {
    match outcome {
        Err(ServiceError::McpError(error)) => {
            assert_eq!(error.code, RpcErrorCode::INVALID_PARAMS);
            assert_eq!(error.code.0, -32602);
            assert!(error.message.contains(name), "{}", error.message);
            assert!(
                error.message.contains("rlm.session.create"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a -32602 JSON-RPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_invalid_params_error() {
    let (fake, client) = connect(ToolNames::Dotted).await;
    assert_invalid_params(
        client.call_tool(call("rlm.session.nope", json!({}))).await,
        "rlm.session.nope",
    );
    assert!(
        fake.seen.lock().unwrap().is_empty(),
        "an unknown name never reaches the backend"
    );
    // A daemon that does not know a tool (an older one) gives the same error.
    assert_invalid_params(
        client
            .call_tool(call("rlm.artifact.get", json!({ "fake": "unknown" })))
            .await,
        "rlm.artifact.get",
    );
    // The session goes on.
    client
        .call_tool(call("rlm.session.create", json!({})))
        .await
        .unwrap();
    client.cancel().await.unwrap();
}

// ---------------------------------------------------------------- progress and cancellation

#[tokio::test]
async fn progress_reaches_the_client_with_its_token() {
    let (fake, client) = connect(ToolNames::Dotted).await;
    let request = ClientRequest::CallToolRequest(Request::new(call(
        "rlm.docs.load",
        json!({ "session_id": "s", "sources": [], "fake": "progress" }),
    )));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let response = handle.await_response().await.unwrap();
    assert!(
        matches!(response, ServerResult::CallToolResult(_)),
        "{response:?}"
    );
    assert!(fake.last().progress, "the backend got a sink");
    let progress = tokio::time::timeout(WAIT, async {
        loop {
            let got = client.service().progress.lock().unwrap().clone();
            if got.len() >= 2 {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("two progress notifications");
    assert_eq!(progress.len(), 2);
    assert!(progress.iter().all(|p| p.progress_token == token));
    assert_eq!(progress[0].progress, 1.0);
    assert_eq!(progress[0].total, Some(2.0));
    assert_eq!(progress[0].message.as_deref(), Some("1 of 2 files"));
    assert_eq!(progress[1].progress, 2.0);
    assert_eq!(progress[1].message, None);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_call_fires_the_backends_token() {
    let (fake, client) = connect(ToolNames::Dotted).await;
    let request = ClientRequest::CallToolRequest(Request::new(call(
        "rlm.search.query",
        json!({ "session_id": "s", "query": "x", "fake": "wait_cancel" }),
    )));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, fake.started.notified())
        .await
        .expect("the call started");
    handle
        .cancel(Some("the user pressed Esc".into()))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, fake.cancelled.notified())
        .await
        .expect("the backend's cancel token fired");
    // The session goes on.
    client
        .call_tool(call("rlm.session.create", json!({})))
        .await
        .unwrap();
    client.cancel().await.unwrap();
}

// ---------------------------------------------------------------- other lifecycles, the wire

#[tokio::test]
async fn a_2026_client_using_server_discover_works_too() {
    let (fake, client_end, _task) = start_server(ToolNames::Underscore);
    let client = Client::default()
        .serve_with_lifecycle(
            client_end,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 12);
    let result = client
        .call_tool(call("rlm_session_close", json!({ "session_id": "s" })))
        .await
        .unwrap();
    assert_eq!(
        result.structured_content,
        Some(ok_result("rlm.session.close"))
    );
    assert_eq!(fake.last().tool, "rlm.session.close");
    client.cancel().await.unwrap();
}

struct Wire {
    write: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
}

impl Wire {
    async fn send(&mut self, message: Value) {
        let mut line = serde_json::to_vec(&message).unwrap();
        line.push(b'\n');
        self.write.write_all(&line).await.unwrap();
    }

    /// The next message that is a response (skips notifications).
    async fn response(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("the server is still there");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("id").is_some() {
                return message;
            }
        }
    }
}

async fn raw_session(
    version: &str,
) -> (
    Arc<Fake>,
    Wire,
    tokio::task::JoinHandle<Result<(), String>>,
    Value,
) {
    let (fake, client_end, task) = start_server(ToolNames::Dotted);
    let (read, write) = tokio::io::split(client_end);
    let mut wire = Wire {
        write,
        lines: BufReader::new(read).lines(),
    };
    wire.send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": version, "capabilities": {},
                    "clientInfo": { "name": "raw", "version": "0" } }
    }))
    .await;
    let init = wire.response().await;
    wire.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .await;
    (fake, wire, task, init)
}

#[tokio::test]
async fn on_the_wire_old_protocol_versions_work_and_no_token_means_no_sink() {
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let (fake, mut wire, task, init) = raw_session(version).await;
        assert_eq!(init["result"]["protocolVersion"], version, "{init}");
        assert_eq!(init["result"]["serverInfo"]["name"], "rlm-mcp");
        assert_eq!(init["result"]["instructions"], INSTRUCTIONS);

        wire.send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
            .await;
        let list = wire.response().await;
        assert_eq!(
            list["result"]["tools"].as_array().unwrap().len(),
            12,
            "{version}"
        );

        wire.send(json!({
            "jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": { "name": "rlm_docs_list", "arguments": { "session_id": "s" } }
        }))
        .await;
        let answer = wire.response().await;
        assert_eq!(answer["id"], 3);
        assert_eq!(
            answer["result"]["structuredContent"],
            ok_result("rlm.docs.list"),
            "{version}"
        );
        assert_eq!(answer["result"]["content"][0]["type"], "text");
        assert!(!fake.last().progress, "no progressToken, no progress sink");

        wire.send(json!({
            "jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": { "name": "frobnicate", "arguments": {} }
        }))
        .await;
        let answer = wire.response().await;
        assert_eq!(answer["id"], 4);
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("frobnicate")
        );

        // Closing the client's end (stdin) ends the session: serve_io returns.
        drop(wire);
        let ended = tokio::time::timeout(WAIT, task)
            .await
            .expect("the shim stops when its input closes");
        assert_eq!(ended.unwrap(), Ok(()));
    }
}

#[tokio::test]
async fn an_input_that_closes_before_initialize_is_a_normal_end() {
    let (_fake, client_end, task) = start_server(ToolNames::Dotted);
    drop(client_end);
    let ended = tokio::time::timeout(WAIT, task).await.expect("returns");
    assert_eq!(ended.unwrap(), Ok(()));
}

// ---------------------------------------------------------------- output schemas against real results

fn span(doc: &str, start: u64, end: u64) -> SpanRef {
    SpanRef {
        doc_id: doc.into(),
        start,
        end,
    }
}

const ID: &str = "6f1c1e52-8d0e-4a55-9b8a-0f3d2f1f5b11";
const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const TIME: &str = "2026-11-27T07:00:00Z";

fn config() -> SessionConfig {
    SessionConfig {
        model_hints: ModelHints {
            root_model: Some("big".into()),
            subcall_model: None,
            bulk_model: None,
        },
        ..SessionConfig::default()
    }
}

/// One result per tool, built from the contract's types as the engine serializes them.
fn sample_result(tool: Tool) -> Value {
    let value = match tool {
        Tool::SessionCreate => serde_json::to_value(SessionCreateResult {
            session_id: ID.into(),
            created_at: TIME.into(),
            config: config(),
        }),
        Tool::SessionInfo => serde_json::to_value(SessionInfoResult {
            session_id: ID.into(),
            name: None,
            status: "active".into(),
            created_at: TIME.into(),
            closed_at: None,
            document_count: 2,
            total_chars: 120,
            total_tokens_est: 30,
            tool_calls_used: 4,
            tool_calls_remaining: 496,
            index_built: false,
            config: config(),
        }),
        Tool::SessionClose => serde_json::to_value(SessionCloseResult {
            session_id: ID.into(),
            status: "completed".into(),
            closed_at: TIME.into(),
            summary: CloseSummary {
                documents: 2,
                spans: 5,
                artifacts: 1,
                tool_calls: 9,
            },
        }),
        Tool::DocsLoad => serde_json::to_value(DocsLoadResult {
            loaded: vec![LoadedDoc {
                doc_id: ID.into(),
                content_hash: HASH.into(),
                source: "/work/a.txt".into(),
                length_chars: 100,
                length_tokens_est: 25,
            }],
            errors: vec!["/work/b.bin: not UTF-8 text".into()],
            total_chars: 100,
            total_tokens_est: 25,
            loaded_count: 1,
            error_count: 1,
            truncated: false,
        }),
        Tool::DocsList => serde_json::to_value(DocsListResult {
            documents: vec![DocEntry {
                doc_id: ID.into(),
                content_hash: HASH.into(),
                source: "inline".into(),
                length_chars: 10,
                length_tokens_est: 3,
                span_count: 0,
            }],
            total: 1,
            has_more: false,
            next_offset: None,
            truncated: false,
        }),
        Tool::DocsPeek => serde_json::to_value(DocsPeekResult {
            content: "héllo".into(),
            span: span(ID, 0, 5),
            content_hash: HASH.into(),
            truncated: true,
            total_length: 50,
        }),
        Tool::ChunkCreate => serde_json::to_value(ChunkCreateResult {
            spans: vec![ChunkSpan {
                span_id: ID.into(),
                index: 0,
                span: span(ID, 0, 10),
                length_chars: 10,
                content_hash: HASH.into(),
                preview: "0123456789".into(),
            }],
            total_spans: 3,
            cached: false,
            truncated: true,
            next_offset: Some(1),
        }),
        Tool::SpanGet => serde_json::to_value(SpanGetResult {
            spans: vec![SpanContent {
                span_id: ID.into(),
                span: span(ID, 10, 20),
                content: "abcdefghij".into(),
                content_hash: HASH.into(),
                truncated: false,
            }],
            total_chars_returned: 10,
            omitted: vec![ID.into()],
        }),
        Tool::SearchQuery => serde_json::to_value(SearchResult {
            matches: vec![SearchMatch {
                doc_id: ID.into(),
                span: span(ID, 0, 40),
                span_id: None,
                score: 3.25,
                context: "the needle is here".into(),
                highlight_start: 4,
                highlight_end: 10,
                highlights: vec![Highlight {
                    start: 4,
                    end: 10,
                    term: "needle".into(),
                }],
            }],
            total_matches: 1,
            truncated: false,
            index_built: true,
            index_built_this_call: true,
        }),
        Tool::ArtifactStore => serde_json::to_value(ArtifactStoreResult {
            artifact_id: ID.into(),
            span_id: None,
        }),
        Tool::ArtifactList => serde_json::to_value(ArtifactListResult {
            artifacts: vec![ArtifactEntry {
                artifact_id: ID.into(),
                span_id: Some(ID.into()),
                kind: "summary".into(),
                created_at: TIME.into(),
                provenance: Some(Provenance {
                    model: Some("m".into()),
                    extra: Map::from_iter([("run".to_owned(), json!(3))]),
                    ..Provenance::default()
                }),
            }],
            total: 1,
            truncated: false,
            next_offset: None,
        }),
        Tool::ArtifactGet => serde_json::to_value(ArtifactGetResult {
            artifact_id: ID.into(),
            span_id: None,
            span: Some(span(ID, 0, 3)),
            kind: "extraction".into(),
            content: Map::from_iter([("names".to_owned(), json!(["a", "b"]))]),
            provenance: None,
            created_at: TIME.into(),
        }),
    };
    value.unwrap()
}

#[tokio::test]
async fn every_output_schema_accepts_real_results_and_error_envelopes_and_rejects_junk() {
    let tools = listed(ToolNames::Dotted).await;
    for (listed, tool) in tools.iter().zip(Tool::ALL) {
        let schema = Value::Object(listed.output_schema.as_ref().unwrap().as_ref().clone());
        // Unstamped schemas read as 2020-12 (the default); they must read the same as draft-07.
        let validators = [
            (
                "2020-12",
                jsonschema::validator_for(&schema).expect("compiles"),
            ),
            (
                "draft-07",
                jsonschema::draft7::new(&schema).expect("compiles as draft-07"),
            ),
        ];
        let sample = sample_result(tool);
        let error = ToolError::new(ErrorCode::BudgetExceeded, "spent 500 of 500")
            .with("limit", 500)
            .to_json();
        let unavailable = json!({ "error": { "code": "daemon_unavailable", "message": "down" } });
        let mut missing_field = sample.clone();
        let first_required = tool.output_schema()["required"][0]
            .as_str()
            .unwrap()
            .to_owned();
        missing_field
            .as_object_mut()
            .unwrap()
            .remove(&first_required);
        let mut wrong_type = sample.clone();
        let some_key = sample.as_object().unwrap().keys().next().unwrap().clone();
        // Listed output schemas type the top level only: change the key's JSON type.
        wrong_type[&some_key] = if sample[&some_key].is_object() {
            json!("not what the schema says")
        } else {
            json!({ "not": "what the schema says" })
        };
        for (draft, validator) in &validators {
            let what = format!("{} ({draft})", tool.name());
            let errors: Vec<String> = validator
                .iter_errors(&sample)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "{what}: the sample result is rejected: {errors:?}\n{sample}"
            );
            assert!(
                validator.is_valid(&error),
                "{what}: the tool-error envelope is rejected"
            );
            assert!(
                validator.is_valid(&unavailable),
                "{what}: the daemon_unavailable envelope is rejected"
            );
            assert!(
                !validator.is_valid(&missing_field),
                "{what}: accepts a result without {first_required}"
            );
            assert!(
                !validator.is_valid(&wrong_type),
                "{what}: accepts a wrong {some_key}"
            );
            assert!(
                !validator.is_valid(&json!({ "error": "text" })),
                "{what}: accepts a bare error string"
            );
        }
    }
}

#[tokio::test]
async fn input_schemas_accept_contract_arguments() {
    let tools = listed(ToolNames::Dotted).await;
    let schema_of = |tool: Tool| {
        let listed = &tools[Tool::ALL.iter().position(|t| *t == tool).unwrap()];
        jsonschema::validator_for(&Value::Object(listed.input_schema.as_ref().clone())).unwrap()
    };
    let cases = [
        (Tool::SessionCreate, json!({}), true),
        (
            Tool::SessionCreate,
            json!({ "name": "n", "config": { "max_tool_calls": 5, "model_hints": { "root_model": "x" } } }),
            true,
        ),
        (
            Tool::SessionCreate,
            json!({ "config": { "max_tools": 5 } }),
            false,
        ),
        (
            Tool::DocsLoad,
            json!({ "session_id": ID, "sources": [
                { "type": "inline", "content": "x", "name": "n" },
                { "type": "file", "path": "a.txt" },
                { "type": "glob", "path": "src/**/*.rs", "exclude_pattern": "target" },
                { "type": "directory", "path": ".", "recursive": true }
            ] }),
            true,
        ),
        (
            Tool::DocsLoad,
            json!({ "session_id": ID, "sources": [{ "type": "url", "path": "x" }] }),
            false,
        ),
        (
            Tool::DocsPeek,
            json!({ "session_id": ID, "doc_id": ID, "start": 0, "end": -1 }),
            true,
        ),
        (
            Tool::ChunkCreate,
            json!({ "session_id": ID, "doc_id": ID, "strategy": { "type": "lines", "line_count": 10 } }),
            true,
        ),
        (
            Tool::ChunkCreate,
            json!({ "session_id": ID, "doc_id": ID, "strategy": { "type": "delimiter", "delimiter": "\\n## " } }),
            true,
        ),
        (
            Tool::SearchQuery,
            json!({ "session_id": ID, "query": "q", "method": "regex", "doc_ids": [ID] }),
            true,
        ),
        (
            Tool::SearchQuery,
            json!({ "session_id": ID, "query": "q", "method": "fuzzy" }),
            false,
        ),
        (
            Tool::ArtifactStore,
            json!({ "session_id": ID, "type": "summary", "content": { "s": 1 },
                    "span": { "doc_id": ID, "start": 0, "end": 4 }, "provenance": { "model": "m", "run": 2 } }),
            true,
        ),
        (Tool::SessionInfo, json!({}), false),
    ];
    for (tool, arguments, valid) in cases {
        assert_eq!(
            schema_of(tool).is_valid(&arguments),
            valid,
            "{} {arguments}",
            tool.name()
        );
    }
}
