//! Tests of the MCP layer (`rlm_client::mcp`): a real rmcp client, and raw JSON-RPC lines, drive `RlmServer` over in-memory pipes against a fake backend (no daemon): initialize, tools/call, progress and cancellation, other lifecycles and the wire, and the caps a client's profile gives its sessions. The listing and the schemas are `schemas.rs`'s.

mod common;

use std::{sync::Arc, time::Duration};

use rlm_client::mcp::ToolNames;
use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ServiceError,
    model::{
        CallToolRequestParams, ClientRequest, ErrorCode as RpcErrorCode, ProtocolVersion, Request,
        ServerResult,
    },
    service::PeerRequestOptions,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use common::*;

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

// ---------------------------------------------------------------- client profiles

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
