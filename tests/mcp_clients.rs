//! Real MCP clients end to end through `rlm-mcp` and `rlmd`: the rmcp client (Rust) and the
//! official Python SDK, a 1.x and a 2.x release (tests/python/all_tools.py, run from venvs
//! this file creates under `<target>/py/`), each calling all twelve tools.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ServiceError, ServiceExt};
use serde_json::{Value, json};

use common::{Outcome, Shim, TestDir, outcome_of_response, sha256_hex, shim_bin, vars_to_clear};

const TOOLS: [&str; 12] = [
    "rlm.session.create",
    "rlm.session.info",
    "rlm.session.close",
    "rlm.docs.load",
    "rlm.docs.list",
    "rlm.docs.peek",
    "rlm.chunk.create",
    "rlm.span.get",
    "rlm.search.query",
    "rlm.artifact.store",
    "rlm.artifact.list",
    "rlm.artifact.get",
];

/// The texts every client loads, under `<dir>/work` (the MCP client's working directory).
const ALPHA: &str = "Alpha notes on the harbour.\nThe café serves naïve tourists ✓ every day.\n\
The rare mineral zanzibarite was found near the pier.\nLine four closes the file.\n";
const MEMO: &str = "inline memo über alles";

fn write_work_dir(dir: &TestDir) -> PathBuf {
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("notes")).unwrap();
    std::fs::create_dir_all(work.join("src/sub")).unwrap();
    std::fs::write(work.join("notes/alpha.txt"), ALPHA).unwrap();
    std::fs::write(
        work.join("src/a.py"),
        "def a():\n    return 'first module'\n",
    )
    .unwrap();
    std::fs::write(
        work.join("src/sub/b.py"),
        "def b():\n    return 'second module'\n",
    )
    .unwrap();
    work
}

fn chars(s: &str, start: usize, end: usize) -> String {
    s.chars().skip(start).take(end - start).collect()
}

// ---------------------------------------------------------------- rmcp

type Client = RunningService<RoleClient, ()>;

async fn call(client: &Client, name: &str, args: Value) -> Outcome {
    let Value::Object(args) = args else {
        panic!("arguments are an object")
    };
    match client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args))
        .await
    {
        Ok(result) => {
            let result = serde_json::to_value(&result).unwrap();
            outcome_of_response(&json!({ "result": result }))
        }
        Err(ServiceError::McpError(e)) => Outcome::Rpc(serde_json::to_value(&e).unwrap()),
        Err(e) => panic!("{name}: the MCP session failed: {e}"),
    }
}

async fn ok(client: &Client, name: &str, args: Value) -> Value {
    match call(client, name, args).await {
        Outcome::Ok(v) => v,
        other => panic!("{name} failed: {other:?}"),
    }
}

async fn tool_error(client: &Client, name: &str, args: Value) -> (String, String) {
    match call(client, name, args).await {
        Outcome::ToolError { code, message, .. } => (code, message),
        other => panic!("{name} should fail with a tool error: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rmcp_client_calls_all_twelve_tools_through_the_shim() {
    let dir = TestDir::new();
    let work = write_work_dir(&dir);
    let mut cmd = tokio::process::Command::new(shim_bin());
    for key in vars_to_clear() {
        cmd.env_remove(key);
    }
    for (key, value) in dir.env() {
        cmd.env(key, value);
    }
    cmd.current_dir(&work)
        .arg("--socket")
        .arg(&dir.socket)
        .arg("--data-dir")
        .arg(&dir.data);
    let stderr = std::fs::File::create(dir.logs.join("rlm-mcp-rmcp.log")).unwrap();
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(stderr)
        .spawn()
        .expect("rlm-mcp starts");
    let client: Client = ().serve(transport).await.expect("initialize");
    let server = client.peer_info().expect("the server's initialize answer");
    assert!(
        server.capabilities.tools.is_some(),
        "the tools capability is announced"
    );

    // tools/list: the twelve tools of the contract, in order, each with both schemas.
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOLS);
    for t in &tools {
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
        assert!(t.output_schema.is_some(), "{} has an outputSchema", t.name);
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() > 20),
            "{} has a description",
            t.name
        );
    }

    // rlm.session.create
    let created = ok(
        &client,
        "rlm.session.create",
        json!({"name": "e2e", "config": {"max_tool_calls": 200, "max_chars_per_peek": 500}}),
    )
    .await;
    let sid = created["session_id"].as_str().unwrap().to_owned();
    assert_eq!(sid.len(), 36, "a UUID: {sid}");
    assert_eq!(sid.matches('-').count(), 4, "a UUID: {sid}");
    assert_eq!(created["config"]["max_tool_calls"], 200);
    assert_eq!(created["config"]["max_chars_per_peek"], 500);
    assert!(created["created_at"].as_str().unwrap().contains('T'));
    let mut named = 0u64; // successful calls naming the session

    // rlm.docs.load: a relative file (resolved against the client's cwd), a glob, an inline
    // text, and a missing file that is reported without failing the call.
    let loaded = ok(
        &client,
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "file", "path": "notes/alpha.txt"},
            {"type": "glob", "path": "src/**/*.py"},
            {"type": "inline", "content": MEMO, "name": "memo"},
            {"type": "file", "path": "notes/missing.txt"},
        ]}),
    )
    .await;
    named += 1;
    let docs = loaded["loaded"].as_array().unwrap();
    assert_eq!(docs.len(), 4, "{loaded}");
    let errors = loaded["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{loaded}");
    assert!(
        errors[0].as_str().unwrap().contains("missing.txt"),
        "{errors:?}"
    );
    let alpha_path = work.join("notes/alpha.txt");
    let alpha = docs
        .iter()
        .find(|d| d["source"] == alpha_path.to_str().unwrap())
        .unwrap_or_else(|| panic!("the relative path resolves against the client's cwd: {loaded}"));
    let alpha_chars = ALPHA.chars().count();
    assert_eq!(alpha["length_chars"], alpha_chars, "code points, not bytes");
    assert_eq!(alpha["length_tokens_est"], alpha_chars.div_ceil(4));
    assert_eq!(alpha["content_hash"], sha256_hex(ALPHA.as_bytes()));
    let memo = docs.iter().find(|d| d["source"] == "memo").expect("memo");
    assert_eq!(memo["content_hash"], sha256_hex(MEMO.as_bytes()));
    let py_sources: Vec<&str> = docs
        .iter()
        .filter_map(|d| d["source"].as_str())
        .filter(|s| s.ends_with(".py"))
        .collect();
    assert_eq!(
        py_sources.len(),
        2,
        "the glob crosses folders: {py_sources:?}"
    );
    let total: u64 = docs
        .iter()
        .map(|d| d["length_chars"].as_u64().unwrap())
        .sum();
    assert_eq!(loaded["total_chars"], total);
    let alpha_id = alpha["doc_id"].as_str().unwrap().to_owned();

    // rlm.docs.list: every document, in load order.
    let listed = ok(&client, "rlm.docs.list", json!({"session_id": sid})).await;
    named += 1;
    assert_eq!(listed["total"], 4);
    assert_eq!(listed["has_more"], false);
    let listed_ids: Vec<&Value> = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["doc_id"])
        .collect();
    let loaded_ids: Vec<&Value> = docs.iter().map(|d| &d["doc_id"]).collect();
    assert_eq!(listed_ids, loaded_ids);

    // rlm.docs.peek: offsets in code points; an end past the document is refused.
    let peek = ok(
        &client,
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": alpha_id, "start": 30, "end": 50}),
    )
    .await;
    named += 1;
    let expected = chars(ALPHA, 30, 50);
    assert_eq!(peek["content"], expected.as_str());
    assert_eq!(peek["span"]["end"], 50);
    assert_eq!(peek["total_length"], alpha_chars);
    assert_eq!(peek["truncated"], false);
    assert_eq!(peek["content_hash"], sha256_hex(expected.as_bytes()));
    let (code, message) = tool_error(
        &client,
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": alpha_id, "start": 0, "end": alpha_chars + 5}),
    )
    .await;
    assert_eq!(code, "invalid_argument");
    assert!(
        message.contains(&alpha_chars.to_string()),
        "names the length: {message}"
    );

    // rlm.chunk.create: two lines per span; the same request again is cached.
    let strategy = json!({"type": "lines", "line_count": 2});
    let chunks = ok(
        &client,
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": alpha_id, "strategy": strategy}),
    )
    .await;
    named += 1;
    let spans = chunks["spans"].as_array().unwrap().clone();
    assert_eq!(chunks["total_spans"], 2, "{chunks}");
    assert_eq!(spans.len(), 2);
    assert_eq!(chunks["cached"], false);
    assert_eq!(spans[0]["span"]["start"], 0);
    assert_eq!(spans[1]["span"]["end"], alpha_chars);
    let again = ok(
        &client,
        "rlm.chunk.create",
        json!({"session_id": sid, "doc_id": alpha_id, "strategy": strategy}),
    )
    .await;
    named += 1;
    assert_eq!(again["cached"], true);
    assert_eq!(again["spans"][0]["span_id"], spans[0]["span_id"]);
    let span0 = spans[0]["span_id"].as_str().unwrap().to_owned();
    let span1 = spans[1]["span_id"].as_str().unwrap().to_owned();

    // rlm.span.get: in the order asked, the exact text of each span.
    let got = ok(
        &client,
        "rlm.span.get",
        json!({"session_id": sid, "span_ids": [span1, span0]}),
    )
    .await;
    named += 1;
    let got_spans = got["spans"].as_array().unwrap();
    assert_eq!(got_spans[0]["span_id"], span1.as_str());
    let (s, e) = (
        spans[1]["span"]["start"].as_u64().unwrap() as usize,
        spans[1]["span"]["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(got_spans[0]["content"], chars(ALPHA, s, e).as_str());
    assert_eq!(got["omitted"], json!([]));
    assert!(
        got_spans[0]["content"]
            .as_str()
            .unwrap()
            .contains("zanzibarite")
    );

    // rlm.search.query: bm25 points at the passage; regex and literal find every hit.
    let found = ok(
        &client,
        "rlm.search.query",
        json!({"session_id": sid, "query": "zanzibarite"}),
    )
    .await;
    named += 1;
    let m = &found["matches"][0];
    assert_eq!(m["doc_id"], alpha_id.as_str(), "{found}");
    let context = m["context"].as_str().unwrap();
    let (hs, he) = (
        m["highlight_start"].as_u64().unwrap() as usize,
        m["highlight_end"].as_u64().unwrap() as usize,
    );
    assert_eq!(chars(context, hs, he).to_lowercase(), "zanzibarite", "{m}");
    assert!(m["span_id"].is_null());
    assert_eq!(found["index_built"], true);
    let regex = ok(
        &client,
        "rlm.search.query",
        json!({"session_id": sid, "query": "caf[eé]|MODULE", "method": "regex"}),
    )
    .await;
    named += 1;
    assert_eq!(
        regex["total_matches"], 3,
        "case-insensitive, every match: {regex}"
    );
    assert_eq!(regex["matches"][0]["score"], 1.0);
    let literal = ok(
        &client,
        "rlm.search.query",
        json!({"session_id": sid, "query": "ÜBER", "method": "literal"}),
    )
    .await;
    named += 1;
    assert_eq!(literal["total_matches"], 1, "{literal}");
    assert_eq!(literal["matches"][0]["doc_id"], memo["doc_id"]);

    // rlm.artifact.store / list / get, on a span and at session level.
    let stored = ok(
        &client,
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "summary", "span_id": span0,
               "content": {"text": "harbour notes", "score": 3},
               "provenance": {"model": "test-model", "tool": "rmcp"}}),
    )
    .await;
    named += 1;
    assert_eq!(stored["span_id"], span0.as_str());
    let art = stored["artifact_id"].as_str().unwrap().to_owned();
    let session_level = ok(
        &client,
        "rlm.artifact.store",
        json!({"session_id": sid, "type": "verdict", "content": {"answer": "zanzibarite"}}),
    )
    .await;
    named += 1;
    assert!(session_level["span_id"].is_null());
    let listed = ok(
        &client,
        "rlm.artifact.list",
        json!({"session_id": sid, "span_id": span0}),
    )
    .await;
    named += 1;
    let arts = listed["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 1, "{listed}");
    assert_eq!(arts[0]["artifact_id"], art.as_str());
    assert_eq!(arts[0]["type"], "summary");
    let all = ok(&client, "rlm.artifact.list", json!({"session_id": sid})).await;
    named += 1;
    assert_eq!(all["artifacts"].as_array().unwrap().len(), 2);
    let fetched = ok(
        &client,
        "rlm.artifact.get",
        json!({"session_id": sid, "artifact_id": art}),
    )
    .await;
    named += 1;
    assert_eq!(
        fetched["content"],
        json!({"text": "harbour notes", "score": 3})
    );
    assert_eq!(fetched["span"], spans[0]["span"]);
    assert_eq!(fetched["provenance"]["model"], "test-model");

    // Either spelling of a name works, whatever the listing shows.
    let info = ok(&client, "rlm_session_info", json!({"session_id": sid})).await;
    named += 1;
    assert_eq!(info["document_count"], 4);
    assert_eq!(info["name"], "e2e");
    assert_eq!(info["status"], "active");
    let used = info["tool_calls_used"].as_u64().unwrap();
    assert!(used > named, "create + {named} calls counted, got {used}");
    assert_eq!(used + info["tool_calls_remaining"].as_u64().unwrap(), 200);

    // Tool errors are isError results with a code; an unknown tool is a JSON-RPC error.
    let (code, _) = tool_error(
        &client,
        "rlm.session.info",
        json!({"session_id": "00000000-0000-4000-8000-000000000000"}),
    )
    .await;
    assert_eq!(code, "session_not_found");
    let (code, message) = tool_error(
        &client,
        "rlm.docs.load",
        json!({"session_id": sid, "sources": {"type": "inline"}}),
    )
    .await;
    assert_eq!(code, "invalid_argument", "{message}");
    // A bad source is that source's error, not the call's.
    let loaded = ok(
        &client,
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline"}, {"type": "inline", "content": "fine"}]}),
    )
    .await;
    assert_eq!(loaded["loaded_count"], 1, "{loaded}");
    assert!(
        loaded["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("sources[0]"),
        "{loaded}"
    );
    match call(&client, "rlm.session.frobnicate", json!({})).await {
        Outcome::Rpc(e) => assert_eq!(e["code"], -32602, "{e}"),
        other => panic!("an unknown tool is a JSON-RPC error: {other:?}"),
    }

    // rlm.session.close, then the session is read-only.
    let closed = ok(&client, "rlm.session.close", json!({"session_id": sid})).await;
    assert_eq!(closed["status"], "completed");
    // The four documents above and the good source of the mixed load.
    assert_eq!(closed["summary"]["documents"], 5);
    assert_eq!(closed["summary"]["artifacts"], 2);
    let (code, _) = tool_error(
        &client,
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "inline", "content": "late"}]}),
    )
    .await;
    assert_eq!(code, "session_closed");
    let still = ok(
        &client,
        "rlm.search.query",
        json!({"session_id": sid, "query": "zanzibarite", "method": "literal"}),
    )
    .await;
    assert_eq!(still["total_matches"], 1);

    client.cancel().await.expect("the session ends");
}

// ---------------------------------------------------------------- bad JSON-RPC on the wire

/// How long the shim may take to answer one bad line.
const ANSWER: Duration = Duration::from_secs(10);

/// A shim that starts no daemon (refusing input and listing tools need none), initialized.
fn bare_shim(dir: &TestDir) -> Shim {
    let mut shim = dir.shim(&["--no-autostart"]);
    shim.initialize();
    shim
}

/// Sends `line` (a newline added) and returns the shim's next message, which must be a JSON-RPC
/// error with `code` and `id` (present, `null` when the shim could not read one); then checks
/// that the same shim still answers `tools/list`.
fn refused(shim: &mut Shim, line: &[u8], code: i64, id: Value) -> Value {
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    shim.send_bytes(&bytes);
    let answer = shim.recv(ANSWER);
    let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    assert_eq!(answer["error"]["code"], code, "{shown:?} -> {answer}");
    assert_eq!(answer.get("id"), Some(&id), "{shown:?} -> {answer}");
    assert!(answer.get("result").is_none(), "{answer}");
    still_lists_tools(shim);
    answer
}

fn still_lists_tools(shim: &mut Shim) {
    let list = shim.request("tools/list", json!({}));
    assert_eq!(
        list["result"]["tools"].as_array().map(Vec::len),
        Some(12),
        "the shim still answers tools/list: {list}"
    );
}

#[test]
fn lines_that_are_not_json_are_parse_errors_with_a_null_id() {
    let dir = TestDir::new();
    let mut shim = bare_shim(&dir);
    let nested = "[".repeat(100_000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", br#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#.to_vec()),
        ("not JSON at all", b"hello".to_vec()),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{\"x\":\"\xff\xfe\"}}"
                .to_vec(),
        ),
        (
            "a lone surrogate",
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"x":"\ud800"}}"#.to_vec(),
        ),
        ("100k levels of nesting", nested.into_bytes()),
    ];
    for (what, line) in cases {
        let answer = refused(&mut shim, &line, -32700, Value::Null);
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "{what}: a message says why: {answer}");
    }
    let status = shim.close();
    assert!(status.success(), "the shim ends normally at EOF: {status}");
}

#[test]
fn messages_that_are_not_requests_are_invalid_requests() {
    let dir = TestDir::new();
    let mut shim = bare_shim(&dir);
    for line in [
        &b"42"[..],
        br#""tools/list""#,
        br#"{"jsonrpc":"2.0"}"#,
        br#"{"jsonrpc":"2.0","method":7}"#,
        br#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
        br#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
        b"[]",
        br#"[{"jsonrpc":"2.0","id":4,"method":"tools/list"}]"#,
    ] {
        refused(&mut shim, line, -32600, Value::Null);
    }
    // The id is echoed wherever it can be read.
    refused(
        &mut shim,
        br#"{"jsonrpc":"1.0","id":"v1","method":"tools/list"}"#,
        -32600,
        json!("v1"),
    );
    refused(&mut shim, br#"{"jsonrpc":"2.0","id":8}"#, -32600, json!(8));
}

#[test]
fn tools_call_with_params_of_the_wrong_shape_is_invalid_params() {
    let dir = TestDir::new();
    let mut shim = bare_shim(&dir);
    let call = |id: u64, params: Value| {
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call"});
        if !params.is_null() {
            message["params"] = params;
        }
        serde_json::to_vec(&message).unwrap()
    };
    let bad = [
        json!({"name": "rlm.docs.list", "arguments": "x"}),
        json!({"name": "rlm.docs.list", "arguments": [1]}),
        json!({"name": "rlm.docs.list", "arguments": 3}),
        json!({"name": "rlm.docs.list", "arguments": true}),
        json!({"arguments": {}}),
        json!({"name": 3, "arguments": {}}),
        json!("rlm.docs.list"),
        Value::Null,
    ];
    for (i, params) in bad.into_iter().enumerate() {
        let id = 100 + i as u64;
        let answer = refused(&mut shim, &call(id, params.clone()), -32602, json!(id));
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains("params"), "{params} -> {answer}");
    }
    // Params of another method that do not fit its schema are invalid params too.
    refused(
        &mut shim,
        br#"{"jsonrpc":"2.0","id":"list","method":"tools/list","params":[1]}"#,
        -32602,
        json!("list"),
    );

    // `arguments` may be left out or null: the call goes through (and fails as a tool error
    // here, since no daemon runs).
    for arguments in [None, Some(Value::Null)] {
        let mut params = json!({"name": "rlm.session.info"});
        if let Some(a) = arguments {
            params["arguments"] = a;
        }
        let answer = shim.request("tools/call", params);
        assert_eq!(answer["result"]["isError"], true, "{answer}");
    }

    // A malformed notification gets no answer: the next message is the answer to tools/list.
    shim.send_bytes(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":\"x\"}}\n",
    );
    still_lists_tools(&mut shim);
}

#[test]
fn a_line_past_the_limit_is_discarded_as_it_streams_and_answered_as_a_parse_error() {
    let dir = TestDir::new();
    let mut shim = bare_shim(&dir);
    const LINE: usize = 300_000_000;
    let head = br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"rlm.docs.load","arguments":{"session_id":"s","sources":[{"type":"inline","content":""#;
    let tail = b"\"}]}}}\n";
    shim.send_bytes(head);
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = head.len() + tail.len();
    while sent < LINE {
        let n = chunk.len().min(LINE - sent);
        shim.send_bytes(&chunk[..n]);
        sent += n;
    }
    shim.send_bytes(tail);
    let answer = shim.recv(ANSWER);
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    assert_eq!(answer.get("id"), Some(&Value::Null), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("268435456"),
        "the message names the limit: {answer}"
    );
    let peak = shim.peak_rss_bytes();
    // Held up to the limit (256 MiB) and no further: a line buffered whole would need its 300 MB
    // on top of the shim's own ~20 MiB.
    eprintln!("rlm-mcp peak RSS after a {LINE}-byte line: {peak} bytes");
    assert!(peak < (256 << 20) + (32 << 20), "peak RSS {peak} bytes");
    still_lists_tools(&mut shim);
}

// ---------------------------------------------------------------- the Python SDK

/// A venv under `<target>/py/<name>` with `spec` installed, created once and reused while it
/// was made for `spec`.
fn venv(name: &str, spec: &str) -> PathBuf {
    let dir = common::installed_once("py", name, spec, |dir| {
        let needs = "python3 with venv";
        common::run_installer(
            Command::new("python3").arg("-m").arg("venv").arg(dir),
            "python3 -m venv",
            needs,
        );
        common::run_installer(
            Command::new(dir.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(spec),
            &format!("pip install '{spec}'"),
            needs,
        );
    });
    dir.join("bin/python")
}

fn run_all_tools_py(python: &Path) {
    let dir = TestDir::new();
    let work = write_work_dir(&dir);
    let script = common::repo().join("tests/python/all_tools.py");
    let out_path = dir.logs.join("all_tools.out");
    let mut cmd = Command::new(python);
    for key in vars_to_clear() {
        cmd.env_remove(key);
    }
    cmd.arg(&script)
        .arg("--shim")
        .arg(shim_bin())
        .arg("--socket")
        .arg(&dir.socket)
        .arg("--data-dir")
        .arg(&dir.data)
        .arg("--log-dir")
        .arg(&dir.logs)
        .arg("--config")
        .arg(&dir.config)
        .arg("--work")
        .arg(&work)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(dir.logs.join("all_tools.err")).unwrap());
    let mut child = cmd.spawn().expect("python runs");
    // On a timeout the panic drops `dir`, which kills every process naming it (this one too).
    let status = common::wait_until_else(
        Duration::from_secs(120),
        "all_tools.py to finish",
        || dir.logs_text(),
        || child.try_wait().unwrap(),
    );
    assert!(
        status.success(),
        "all_tools.py failed ({status}):\n{}",
        dir.logs_text()
    );
    let out = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        out.contains("all twelve tools ok"),
        "the script reports success: {out}"
    );
}

#[test]
fn the_python_sdk_1x_calls_all_twelve_tools() {
    let python = venv("mcp1", "mcp>=1.25,<2");
    run_all_tools_py(&python);
}

#[test]
fn the_python_sdk_2x_calls_all_twelve_tools() {
    let python = venv("mcp2", "mcp>=2,<3");
    run_all_tools_py(&python);
}
