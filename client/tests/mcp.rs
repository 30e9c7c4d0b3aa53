//! Tests of the MCP layer (`rlm_client::mcp`): a real rmcp client, and raw JSON-RPC lines, drive `RlmServer` over in-memory pipes against a fake backend (no daemon); the listing is checked against the contract of `docs/TOOLS.md` written out here, and its output schemas against results the real engine gave (`fixtures/engine_results.json`).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rlm::{ErrorCode, ToolError, protocol::CallOutcome};
use rlm_client::mcp::{Backend, Forward, Forwarded, RlmServer, ShimOptions, ToolNames, serve_io};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequestParams, ClientRequest, ErrorCode as RpcErrorCode, ProgressNotificationParam,
        ProtocolVersion, Request, ServerResult,
    },
    service::{NotificationContext, PeerRequestOptions, RunningService},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(10);
const INSTRUCTIONS: &str =
    "Keep big texts outside your context: rlm.session.create, then load, search.";

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
        clients: Default::default(),
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

/// One tool as `docs/TOOLS.md` documents it, written out here by hand so that the listing is
/// checked against the contract rather than against the code that makes it.
struct Documented {
    name: &'static str,
    /// Every argument the section names.
    arguments: &'static [&'static str],
    /// The arguments the section does not call optional or give a default.
    required: &'static [&'static str],
    /// Every result key the section's "Result:" names, with its JSON type; `null` where the
    /// section says it may be null. Keys that are never null are required in a success.
    result: &'static [(&'static str, &'static [&'static str])],
}

const S: &[&str] = &["string"];
const N: &[&str] = &["integer"];
const B: &[&str] = &["boolean"];
const O: &[&str] = &["object"];
const A: &[&str] = &["array"];
const S_OR_NULL: &[&str] = &["string", "null"];
const N_OR_NULL: &[&str] = &["integer", "null"];
const O_OR_NULL: &[&str] = &["object", "null"];

/// The twelve tools of `docs/TOOLS.md`, in its order.
const CONTRACT: [Documented; 12] = [
    Documented {
        name: "rlm.session.create",
        arguments: &["name", "config"],
        required: &[],
        result: &[("session_id", S), ("created_at", S), ("config", O)],
    },
    Documented {
        name: "rlm.session.info",
        arguments: &["session_id"],
        required: &["session_id"],
        result: &[
            ("session_id", S),
            ("name", S_OR_NULL),
            ("status", S),
            ("created_at", S),
            ("closed_at", S_OR_NULL),
            ("document_count", N),
            ("total_chars", N),
            ("total_tokens_est", N),
            ("tool_calls_used", N),
            ("tool_calls_remaining", N),
            ("index_built", B),
            ("config", O),
        ],
    },
    Documented {
        name: "rlm.session.close",
        arguments: &["session_id"],
        required: &["session_id"],
        result: &[
            ("session_id", S),
            ("status", S),
            ("closed_at", S),
            ("summary", O),
        ],
    },
    Documented {
        name: "rlm.docs.load",
        arguments: &["session_id", "sources"],
        required: &["session_id", "sources"],
        result: &[
            ("loaded", A),
            ("errors", A),
            ("total_chars", N),
            ("total_tokens_est", N),
            ("loaded_count", N),
            ("error_count", N),
            ("truncated", B),
        ],
    },
    Documented {
        name: "rlm.docs.list",
        arguments: &["session_id", "limit", "offset"],
        required: &["session_id"],
        result: &[
            ("documents", A),
            ("total", N),
            ("has_more", B),
            ("next_offset", N_OR_NULL),
            ("truncated", B),
        ],
    },
    Documented {
        name: "rlm.docs.peek",
        arguments: &["session_id", "doc_id", "start", "end"],
        required: &["session_id", "doc_id"],
        result: &[
            ("content", S),
            ("span", O),
            ("content_hash", S),
            ("truncated", B),
            ("total_length", N),
        ],
    },
    Documented {
        name: "rlm.chunk.create",
        arguments: &["session_id", "doc_id", "strategy", "offset", "limit"],
        required: &["session_id", "doc_id", "strategy"],
        result: &[
            ("spans", A),
            ("total_spans", N),
            ("cached", B),
            ("truncated", B),
            ("next_offset", N_OR_NULL),
        ],
    },
    Documented {
        name: "rlm.span.get",
        arguments: &["session_id", "span_ids"],
        required: &["session_id", "span_ids"],
        result: &[("spans", A), ("total_chars_returned", N), ("omitted", A)],
    },
    Documented {
        name: "rlm.search.query",
        arguments: &[
            "session_id",
            "query",
            "method",
            "doc_ids",
            "limit",
            "context_chars",
        ],
        required: &["session_id", "query"],
        result: &[
            ("matches", A),
            ("total_matches", N),
            ("truncated", B),
            ("index_built", B),
            ("index_built_this_call", B),
        ],
    },
    Documented {
        name: "rlm.artifact.store",
        arguments: &[
            "session_id",
            "type",
            "content",
            "span_id",
            "span",
            "provenance",
        ],
        required: &["session_id", "type", "content"],
        result: &[("artifact_id", S), ("span_id", S_OR_NULL)],
    },
    Documented {
        name: "rlm.artifact.list",
        arguments: &["session_id", "span_id", "type", "offset", "limit"],
        required: &["session_id"],
        result: &[
            ("artifacts", A),
            ("total", N),
            ("truncated", B),
            ("next_offset", N_OR_NULL),
        ],
    },
    Documented {
        name: "rlm.artifact.get",
        arguments: &["session_id", "artifact_id"],
        required: &["session_id", "artifact_id"],
        result: &[
            ("artifact_id", S),
            ("span_id", S_OR_NULL),
            ("span", O_OR_NULL),
            ("type", S),
            ("content", O),
            ("provenance", O_OR_NULL),
            ("created_at", S),
        ],
    },
];

fn sorted<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = keys.into_iter().collect();
    keys.sort_unstable();
    keys
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A JSON type as a schema gives it (`"string"`, or alternatives of one type
/// each: `{"anyOf": [{"type": "string"}, {"type": "null"}]}`), as a list. A
/// type array (`["string", "null"]`) is not portable (Inspector 2's
/// `--strict` warns): none is listed.
fn types_of(schema: &Value) -> Vec<&str> {
    match (&schema["type"], &schema["anyOf"]) {
        (Value::String(t), _) => vec![t.as_str()],
        (Value::Null, Value::Array(alternatives)) => alternatives
            .iter()
            .map(|a| a["type"].as_str().expect("one type per alternative"))
            .collect(),
        (other, _) => panic!("not one type per schema: {other} in {schema}"),
    }
}

#[tokio::test]
async fn tools_list_has_the_documented_tools_dotted_with_self_contained_schemas() {
    let tools = listed(ToolNames::Dotted).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let documented: Vec<&str> = CONTRACT.iter().map(|d| d.name).collect();
    assert_eq!(names, documented, "the names and order of docs/TOOLS.md");
    let mut descriptions = std::collections::HashSet::new();
    for (listed, doc) in tools.iter().zip(&CONTRACT) {
        let name = doc.name;
        let description = listed.description.as_deref().unwrap_or("");
        assert!(!description.trim().is_empty(), "{name}: a description");
        assert!(
            descriptions.insert(description),
            "{name}: its own description"
        );
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
            assert_eq!(schema["type"], "object", "{name}: {what}");
            // Output schemas declare draft-07 (cheap for clients to check); nothing else may
            // carry `$schema`, and no schema may carry references.
            let mut body = schema.clone();
            if let Some(dialect) = body.as_object_mut().and_then(|m| m.remove("$schema")) {
                assert_eq!(
                    what, "outputSchema",
                    "{name}: only output schemas declare a dialect"
                );
                assert_eq!(dialect, "http://json-schema.org/draft-07/schema#");
            }
            assert_no_refs(&body, &format!("{name} {what}"));
            assert!(
                jsonschema::meta::is_valid(schema),
                "{name} {what} is not a valid JSON schema: {schema}"
            );
        }
        assert!(output.get("$schema").is_some(), "{name}: draft-07 declared");

        // Arguments: the documented names, the documented required ones.
        let arguments = input["properties"].as_object().expect("input properties");
        assert_eq!(
            sorted(arguments.keys().map(String::as_str)),
            sorted(doc.arguments.iter().copied()),
            "{name}: argument names"
        );
        assert_eq!(
            sorted(strings(&input["required"])),
            sorted(doc.required.iter().copied()),
            "{name}: required arguments"
        );

        // Results: every documented key with its JSON type, and the error envelope.
        let properties = output["properties"].as_object().expect("output properties");
        let mut expected_keys: Vec<&str> = doc.result.iter().map(|(k, _)| *k).collect();
        expected_keys.push("error");
        assert_eq!(
            sorted(properties.keys().map(String::as_str)),
            sorted(expected_keys),
            "{name}: result keys"
        );
        for (key, types) in doc.result {
            assert_eq!(
                sorted(types_of(&properties[*key])),
                sorted(types.iter().copied()),
                "{name}: the type of {key}"
            );
        }
        let error = &properties["error"];
        assert_eq!(types_of(error), ["object"], "{name}: error");
        assert_eq!(sorted(strings(&error["required"])), ["code", "message"]);
        // A success needs its never-null keys; an error needs only `error`.
        let never_null = sorted(
            doc.result
                .iter()
                .filter(|(_, t)| !t.contains(&"null"))
                .map(|(k, _)| *k),
        );
        let alternatives = output["anyOf"].as_array().expect("anyOf: result or error");
        assert_eq!(alternatives.len(), 2, "{name}");
        assert_eq!(
            sorted(strings(&alternatives[0]["required"])),
            never_null,
            "{name}: required result keys"
        );
        assert_eq!(strings(&alternatives[1]["required"]), ["error"], "{name}");
    }
}

#[tokio::test]
async fn tools_list_uses_underscore_names_when_asked() {
    let tools = listed(ToolNames::Underscore).await;
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    let expected = [
        "rlm_session_create",
        "rlm_session_info",
        "rlm_session_close",
        "rlm_docs_load",
        "rlm_docs_list",
        "rlm_docs_peek",
        "rlm_chunk_create",
        "rlm_span_get",
        "rlm_search_query",
        "rlm_artifact_store",
        "rlm_artifact_list",
        "rlm_artifact_get",
    ];
    assert_eq!(names, expected);
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

/// `--tool-names underscore` listed underscore names, but the instructions,
/// descriptions, schemas and error hints still said `rlm.docs.list`, a
/// name such a client cannot call. Every name shown is spelled as listed.
#[tokio::test]
async fn underscore_names_are_used_everywhere_a_name_is_shown() {
    let dotted = dotted_names;
    let (_fake, client) = connect(ToolNames::Underscore).await;
    let info = client.peer_info().expect("server info");
    let instructions = info.instructions.as_deref().unwrap_or_default();
    assert!(
        instructions.contains("rlm_session_create"),
        "{instructions}"
    );
    assert_eq!(dotted(instructions), Vec::<String>::new());
    for tool in client.list_all_tools().await.unwrap() {
        let shown = serde_json::to_string(&tool).unwrap();
        assert_eq!(dotted(&shown), Vec::<String>::new(), "{}", tool.name);
    }
    let result = client
        .call_tool(call("rlm_docs_peek", json!({ "fake": "hint" })))
        .await
        .unwrap();
    let message = result.structured_content.clone().unwrap()["error"]["message"].clone();
    assert_eq!(
        message,
        "session s-1 has no document \"d\"; use rlm_docs_list to see its doc_ids, or rlm_docs_load"
    );
    assert!(text_of(&result).contains("use rlm_docs_list"));
    client.cancel().await.unwrap();
    // The dotted listing keeps the contract's spelling.
    let (_fake, client) = connect(ToolNames::Dotted).await;
    let result = client
        .call_tool(call("rlm.docs.peek", json!({ "fake": "hint" })))
        .await
        .unwrap();
    assert!(text_of(&result).contains("use rlm.docs.list"));
    client.cancel().await.unwrap();
}

/// The dotted tool names (`rlm.x.y`) in `text`.
fn dotted_names(text: &str) -> Vec<String> {
    rlm::tools::Tool::ALL
        .into_iter()
        .map(|t| t.name())
        .filter(|name| text.contains(name))
        .map(str::to_owned)
        .collect()
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

/// What the real engine answered in one scripted session through every tool, recorded by
/// `daemon/tests/client_fixtures.rs` (which fails when the engine answers anything else; run
/// it with `RLM_UPDATE_FIXTURES=1` to record again): `[{"tool": ..., "answer": ...}]`, an
/// answer being a result or a tool error's `{"error": ...}`.
const ENGINE_RESULTS: &str = include_str!("fixtures/engine_results.json");

const ID: &str = "6f1c1e52-8d0e-4a55-9b8a-0f3d2f1f5b11";

/// The recorded answers of `tool`.
fn engine_answers(tool: &str) -> Vec<Value> {
    let steps: Vec<Value> = serde_json::from_str(ENGINE_RESULTS).expect("the fixture is JSON");
    steps
        .into_iter()
        .filter(|step| step["tool"] == tool)
        .map(|step| step["answer"].clone())
        .collect()
}

#[tokio::test]
async fn every_output_schema_accepts_the_engines_real_results_and_rejects_junk() {
    let tools = listed(ToolNames::Dotted).await;
    let mut engine_errors = 0;
    for (listed, doc) in tools.iter().zip(&CONTRACT) {
        let name = doc.name;
        assert_eq!(listed.name, name);
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
        let answers = engine_answers(name);
        let results: Vec<&Value> = answers
            .iter()
            .filter(|a| a.get("error").is_none())
            .collect();
        assert!(!results.is_empty(), "{name}: the fixture has a real result");
        let error = ToolError::new(ErrorCode::BudgetExceeded, "spent 500 of 500")
            .with("limit", 500)
            .to_json();
        let unavailable = json!({ "error": { "code": "daemon_unavailable", "message": "down" } });
        for (draft, validator) in &validators {
            let what = format!("{name} ({draft})");
            for answer in &answers {
                let errors: Vec<String> = validator
                    .iter_errors(answer)
                    .map(|e| e.to_string())
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{what}: the engine's answer is rejected: {errors:?}\n{answer}"
                );
            }
            for result in &results {
                // Each documented never-null key is required, each key's JSON type checked.
                for (key, types) in doc.result {
                    let mut without = (*result).clone();
                    without.as_object_mut().unwrap().remove(*key);
                    assert_eq!(
                        validator.is_valid(&without),
                        types.contains(&"null"),
                        "{what}: a result without {key}"
                    );
                    let mut wrong = (*result).clone();
                    wrong[*key] = if types.contains(&"object") {
                        json!(["not what the schema says"])
                    } else {
                        json!({ "not": "what the schema says" })
                    };
                    assert!(!validator.is_valid(&wrong), "{what}: accepts a wrong {key}");
                }
            }
            assert!(
                validator.is_valid(&error),
                "{what}: the tool-error envelope is rejected"
            );
            assert!(
                validator.is_valid(&unavailable),
                "{what}: the daemon_unavailable envelope is rejected"
            );
            assert!(
                !validator.is_valid(&json!({ "error": "text" })),
                "{what}: accepts a bare error string"
            );
            assert!(
                !validator.is_valid(&json!({})),
                "{what}: accepts an empty object"
            );
        }
        engine_errors += answers.len() - results.len();
    }
    assert!(engine_errors > 0, "the fixture holds a real tool error too");
}

#[tokio::test]
async fn input_schemas_accept_contract_arguments() {
    let tools = listed(ToolNames::Dotted).await;
    let schema_of = |tool: &str| {
        let listed = tools.iter().find(|t| t.name == tool).expect("listed");
        jsonschema::validator_for(&Value::Object(listed.input_schema.as_ref().clone())).unwrap()
    };
    let cases = [
        ("rlm.session.create", json!({}), true),
        (
            "rlm.session.create",
            json!({ "name": "n", "config": { "max_tool_calls": 5, "model_hints": { "root_model": "x" } } }),
            true,
        ),
        (
            "rlm.session.create",
            json!({ "config": { "max_tools": 5 } }),
            false,
        ),
        (
            "rlm.docs.load",
            json!({ "session_id": ID, "sources": [
                { "type": "inline", "content": "x", "name": "n" },
                { "type": "file", "path": "a.txt" },
                { "type": "glob", "path": "src/**/*.rs", "exclude_pattern": "target" },
                { "type": "directory", "path": ".", "recursive": true }
            ] }),
            true,
        ),
        (
            "rlm.docs.load",
            json!({ "session_id": ID, "sources": [{ "type": "url", "path": "x" }] }),
            false,
        ),
        (
            "rlm.docs.peek",
            json!({ "session_id": ID, "doc_id": ID, "start": 0, "end": -1 }),
            true,
        ),
        (
            "rlm.chunk.create",
            json!({ "session_id": ID, "doc_id": ID, "strategy": { "type": "lines", "line_count": 10 } }),
            true,
        ),
        (
            "rlm.chunk.create",
            json!({ "session_id": ID, "doc_id": ID, "strategy": { "type": "delimiter", "delimiter": "\\n## " } }),
            true,
        ),
        (
            "rlm.search.query",
            json!({ "session_id": ID, "query": "q", "method": "regex", "doc_ids": [ID] }),
            true,
        ),
        (
            "rlm.search.query",
            json!({ "session_id": ID, "query": "q", "method": "fuzzy" }),
            false,
        ),
        (
            "rlm.artifact.store",
            json!({ "session_id": ID, "type": "summary", "content": { "s": 1 },
                    "span": { "doc_id": ID, "start": 0, "end": 4 }, "provenance": { "model": "m", "run": 2 } }),
            true,
        ),
        ("rlm.session.info", json!({}), false),
    ];
    for (tool, arguments, valid) in cases {
        assert_eq!(
            schema_of(tool).is_valid(&arguments),
            valid,
            "{tool} {arguments}"
        );
    }
}

// ---------------------------------------------------------------- client profiles and weak clients

/// A client that names itself `name` in `initialize`, served by a fresh shim.
async fn connect_as(
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

#[tokio::test]
async fn a_clients_profile_gives_its_sessions_the_caps_it_can_take() {
    let cases = [
        // Codex keeps about 10 KiB of an answer.
        (
            "codex-mcp-client",
            json!({}),
            json!({"max_chars_per_response": 9000, "max_tokens_per_response": 2500}),
        ),
        // A client that sets a cap itself knows what it takes: nothing added.
        (
            "codex-mcp-client",
            json!({"config": {"max_chars_per_response": 20000, "max_tool_calls": 5}}),
            json!({"max_chars_per_response": 20000, "max_tool_calls": 5}),
        ),
        (
            "codex-mcp-client",
            json!({"config": {"max_tool_calls": 5}}),
            json!({"max_chars_per_response": 9000, "max_tokens_per_response": 2500, "max_tool_calls": 5}),
        ),
        (
            "claude-code",
            json!({"config": null}),
            json!({"max_tokens_per_response": 8000}),
        ),
        // No profile: the server's defaults, nothing added.
        ("mcp-inspector", json!({"name": "x"}), Value::Null),
    ];
    for (client_name, arguments, config) in cases {
        let (fake, client) = connect_as(client_name).await;
        client
            .call_tool(call("rlm.session.create", arguments.clone()))
            .await
            .expect("session.create");
        let seen = fake
            .seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("forwarded");
        assert_eq!(
            seen.arguments["config"], config,
            "{client_name} {arguments}"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn arguments_sent_as_text_reach_the_daemon_as_the_schema_types_them() {
    let (fake, client) = connect_as("weak-client").await;
    client
        .call_tool(call(
            "rlm.search.query",
            json!({"session_id": "s", "query": "7", "limit": "2", "context_chars": " 40 ", "method": "literal"}),
        ))
        .await
        .expect("search.query");
    client
        .call_tool(call(
            "rlm.chunk.create",
            json!({"session_id": "s", "doc_id": "d", "strategy": {"type": "lines", "line_count": "50"}, "limit": "two"}),
        ))
        .await
        .expect("chunk.create");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].arguments,
        json!({"session_id": "s", "query": "7", "limit": 2, "context_chars": 40, "method": "literal"})
    );
    // Only what says exactly one number changes; `two` is the daemon's to refuse.
    assert_eq!(
        seen[1].arguments,
        json!({"session_id": "s", "doc_id": "d", "strategy": {"type": "lines", "line_count": 50}, "limit": "two"})
    );
    client.cancel().await.unwrap();
}
