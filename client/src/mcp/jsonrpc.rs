//! What the shim decides about one incoming JSON-RPC line before rmcp sees it: forward it as a typed MCP message, answer it with a JSON-RPC error (parse error, invalid request, invalid params), or drop it (a malformed notification or response, which JSON-RPC says not to answer).
//!
//! The rules, in order:
//! - a line that is not UTF-8 or not JSON (a syntax error, a lone surrogate `\ud800`, nesting
//!   past serde_json's 128 levels) is `-32700` with `"id": null`, always answered;
//! - a value that is not an object (a number, a string, an array: MCP 2025-06-18 dropped
//!   JSON-RPC batches and rmcp serves none) is `-32600` with `"id": null`;
//! - an object that is no request, notification or response (no `method`, `jsonrpc` not
//!   `"2.0"`, `method` not a string, `method` beside `result` or `error`, an `id` that is not a
//!   string or an integer, null included) is `-32600`, with its id when it has a readable one;
//! - a request whose `params` do not fit its method is `-32602` with its id: `params` not an
//!   object, `tools/call` without a string `name` or with `arguments` that are not an object,
//!   or the params of any method rmcp knows that do not fit its schema (rmcp would have
//!   answered `-32601`, method not found). `params: null` counts as absent, and so does
//!   `arguments: null` (MCP makes `arguments` optional);
//! - a notification or response with any of those faults is dropped (logged, never answered).
//!
//! A good line is parsed once, straight into rmcp's typed message (what rmcp's own transport
//! did: the line plus the message in memory, 209 MiB of peak RSS for a 100 MB `rlm.docs.load`);
//! only a line that fails that parse is read again as a `Value` to tell which error it earns.
//!
//! Messages never echo the input: serde's texts that could (an "invalid type: string ..."
//! quoting the value) are cut to [`MAX_DETAIL_CHARS`].

use rmcp::model::{
    CallToolRequestMethod, ClientJsonRpcMessage, ClientNotification, ClientRequest,
    CompleteRequestMethod, ConstString, DiscoverRequestMethod, GetPromptRequestMethod,
    InitializeResultMethod, JsonRpcMessage, ListPromptsRequestMethod,
    ListResourceTemplatesRequestMethod, ListResourcesRequestMethod, ListToolsRequestMethod,
    PingRequestMethod, ReadResourceRequestMethod, RequestId, SetLevelRequestMethod,
    SubscribeRequestMethod, UnsubscribeRequestMethod,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// JSON-RPC 2.0: the line is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0: the params do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;

/// The longest piece of a parser's message an answer quotes.
const MAX_DETAIL_CHARS: usize = 200;

/// The requests rmcp parses into typed params: when one of them arrives with params that do not
/// fit, rmcp falls back to a custom request and answers "method not found".
const TYPED_REQUESTS: [&str; 14] = [
    InitializeResultMethod::VALUE,
    PingRequestMethod::VALUE,
    DiscoverRequestMethod::VALUE,
    ListToolsRequestMethod::VALUE,
    CallToolRequestMethod::VALUE,
    CompleteRequestMethod::VALUE,
    SetLevelRequestMethod::VALUE,
    GetPromptRequestMethod::VALUE,
    ListPromptsRequestMethod::VALUE,
    ListResourcesRequestMethod::VALUE,
    ListResourceTemplatesRequestMethod::VALUE,
    ReadResourceRequestMethod::VALUE,
    SubscribeRequestMethod::VALUE,
    UnsubscribeRequestMethod::VALUE,
];

/// The notifications rmcp parses into typed params (a malformed one is dropped, not handed on).
const TYPED_NOTIFICATIONS: [&str; 4] = [
    "notifications/cancelled",
    "notifications/progress",
    "notifications/initialized",
    "notifications/roots/list_changed",
];

/// What to do with one line.
#[derive(Debug)]
pub enum Verdict {
    /// A message rmcp can serve.
    Forward(Box<ClientJsonRpcMessage>),
    /// Answer this error, and hand nothing to rmcp.
    Answer(ErrorAnswer),
    /// Neither answer nor forward (a malformed notification or response); the reason is logged.
    Drop(String),
    /// An empty line: nothing to do.
    Skip,
}

/// A JSON-RPC error the shim answers itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorAnswer {
    /// The request's id, or `null` when none could be read.
    pub id: Value,
    pub code: i64,
    pub message: String,
}

impl ErrorAnswer {
    fn new(id: Value, code: i64, message: impl Into<String>) -> Self {
        ErrorAnswer {
            id,
            code,
            message: message.into(),
        }
    }

    /// The error response as one line (`jsonrpc`, `id`, `error` in that order), newline included.
    pub fn to_line(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Response<'a> {
            jsonrpc: &'static str,
            id: &'a Value,
            error: Body<'a>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            code: i64,
            message: &'a str,
        }
        let mut line = serde_json::to_vec(&Response {
            jsonrpc: "2.0",
            id: &self.id,
            error: Body {
                code: self.code,
                message: &self.message,
            },
        })
        .expect("an error response serializes");
        line.push(b'\n');
        line
    }

    /// The id as a log line shows it (cut: an id may be long).
    pub fn shown_id(&self) -> String {
        cut(&self.id.to_string())
    }
}

/// The answer to a line longer than `limit` bytes, which was discarded unread.
pub fn too_long(limit: usize) -> ErrorAnswer {
    ErrorAnswer::new(
        Value::Null,
        PARSE_ERROR,
        format!(
            "parse error: the message is longer than the limit of {limit} bytes ({} MiB) and \
             was discarded; load large texts from files rather than inline",
            limit >> 20
        ),
    )
}

/// Decides what to do with one line (without its newline).
///
/// A good line costs what it cost rmcp: one typed parse from the bytes (the line plus the
/// message). Only a line that fails it is parsed again as a [`Value`], to say why and with
/// which id; the line is freed before that value is looked at.
pub fn check_line(line: Vec<u8>) -> Verdict {
    let verdict = {
        let text = trimmed(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Verdict::Skip;
        }
        if let Err(e) = std::str::from_utf8(text) {
            return parse_error(format!(
                "the message is not UTF-8 (invalid bytes at byte {})",
                e.valid_up_to()
            ));
        }
        // serde_json refuses nesting past 128 levels (a syntax error), so nothing built from
        // the line (nor its drop) recurses deeper than that.
        match serde_json::from_slice::<ClientJsonRpcMessage>(text) {
            Ok(message) => Ok(message),
            Err(e) if e.is_syntax() || e.is_eof() => {
                return parse_error(format!("not JSON: {}", cut(&e.to_string())));
            }
            Err(_) => match serde_json::from_slice::<Value>(text) {
                Ok(value) => Err(value),
                Err(e) => return parse_error(format!("not JSON: {}", cut(&e.to_string()))),
            },
        }
    };
    drop(line);
    match verdict {
        Ok(message) => check_message(message),
        Err(value) => check_value(value),
    }
}

/// The line without a trailing `\r` or a leading byte order mark (RFC 8259 lets a parser
/// ignore it).
fn trimmed(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

fn parse_error(why: String) -> Verdict {
    Verdict::Answer(ErrorAnswer::new(
        Value::Null,
        PARSE_ERROR,
        format!("parse error: {why}"),
    ))
}

/// A message rmcp read: refused only where rmcp fell back to a custom request or notification
/// for a method it knows, which means the params did not fit.
fn check_message(message: ClientJsonRpcMessage) -> Verdict {
    match message {
        JsonRpcMessage::Request(request) => match request.request {
            ClientRequest::CustomRequest(custom)
                if TYPED_REQUESTS.contains(&custom.method.as_str()) =>
            {
                let id = request.id.into_json_value();
                let params = custom.params.filter(|p| !p.is_null());
                if custom.method == CallToolRequestMethod::VALUE {
                    let message = match check_call_params(params.as_ref()) {
                        Err(message) => message,
                        Ok(()) => params_fault(&custom.method, None),
                    };
                    return invalid_params(id, message);
                }
                let message = match &params {
                    Some(p) if !p.is_object() => format!(
                        "params of `{}` must be an object, not {}",
                        custom.method,
                        type_name(p)
                    ),
                    _ => params_fault(&custom.method, params),
                };
                invalid_params(id, message)
            }
            other => Verdict::Forward(Box::new(JsonRpcMessage::Request(
                rmcp::model::JsonRpcRequest {
                    request: other,
                    ..request
                },
            ))),
        },
        JsonRpcMessage::Notification(notification) => match &notification.notification {
            ClientNotification::CustomNotification(custom) => {
                match dropped_notification(&custom.method) {
                    Some(reason) => Verdict::Drop(reason),
                    None => Verdict::Forward(Box::new(JsonRpcMessage::Notification(notification))),
                }
            }
            _ => Verdict::Forward(Box::new(JsonRpcMessage::Notification(notification))),
        },
        other => Verdict::Forward(Box::new(other)),
    }
}

/// Why a notification rmcp could only read as a custom one is dropped (`None`: hand it on).
fn dropped_notification(method: &str) -> Option<String> {
    if TYPED_REQUESTS.contains(&method) {
        Some(format!(
            "dropped a `{method}` without an id: a request needs one, and a notification gets \
             no answer"
        ))
    } else if TYPED_NOTIFICATIONS.contains(&method) {
        Some(format!(
            "dropped a `{method}` notification whose params do not fit its schema"
        ))
    } else {
        None
    }
}

/// Says why well-formed JSON is no message rmcp can read (rmcp's own parse failed on it).
fn check_value(value: Value) -> Verdict {
    let mut object = match value {
        Value::Object(o) => o,
        Value::Array(a) if a.is_empty() => {
            return invalid(Value::Null, "an empty array is not a JSON-RPC message");
        }
        Value::Array(_) => {
            return invalid(
                Value::Null,
                "JSON-RPC batches are not supported (MCP 2025-06-18 removed them): send one \
                 message per line",
            );
        }
        other => {
            return invalid(
                Value::Null,
                format!("a JSON-RPC message is an object, not {}", type_name(&other)),
            );
        }
    };
    // The id as the answer carries it: echoed when it is one a request may have.
    let id = match object.get("id") {
        None => None,
        Some(v) if serde_json::from_value::<RequestId>(v.clone()).is_ok() => Some(v.clone()),
        Some(v) => {
            return invalid(
                Value::Null,
                format!(
                    "the id must be a string or an integer, not {}",
                    type_name(v)
                ),
            );
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc") != Some(&json!("2.0")) {
        return invalid(answer_id, "`jsonrpc` must be \"2.0\"");
    }
    let has_result = object.contains_key("result") || object.contains_key("error");
    let method = match object.get("method") {
        None if has_result && id.is_some() => return forward_response(object),
        None => {
            return invalid(
                answer_id,
                "not a request: `method` is missing (and this is no response either)",
            );
        }
        Some(Value::String(m)) => m.clone(),
        Some(other) => {
            return invalid(
                answer_id,
                format!("`method` must be a string, not {}", type_name(other)),
            );
        }
    };
    if has_result {
        return invalid(answer_id, "a request has no `result` or `error`");
    }
    let Some(id) = id else {
        return check_notification(object, &method);
    };

    // rmcp reads params that are not an object as no message at all; an object that does not
    // fit comes back as a custom request, refused by `check_message`.
    if object.get("params") == Some(&Value::Null) {
        object.remove("params");
    }
    if let Some(params) = object.get("params")
        && !params.is_object()
    {
        return invalid_params(
            id,
            format!(
                "params of `{method}` must be an object, not {}",
                type_name(params)
            ),
        );
    }
    match serde_json::from_value::<ClientJsonRpcMessage>(Value::Object(object)) {
        Ok(message) => check_message(message),
        Err(e) => invalid(
            id,
            format!("not a valid MCP request: {}", cut(&e.to_string())),
        ),
    }
}

/// `tools/call` params: an object with a string `name` and an object (or no) `arguments`.
fn check_call_params(params: Option<&Value>) -> Result<(), String> {
    const SHAPE: &str = r#"{"name": "<tool>", "arguments": {...}}"#;
    let Some(Value::Object(params)) = params else {
        return Err(format!("tools/call needs params {SHAPE}"));
    };
    match params.get("name") {
        Some(Value::String(_)) => {}
        None => return Err(format!("params.name is missing: tools/call takes {SHAPE}")),
        Some(other) => {
            return Err(format!(
                "params.name must be a string (the tool's name), not {}",
                type_name(other)
            ));
        }
    }
    match params.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(other) => Err(format!(
            "params.arguments must be an object (the tool's arguments by name), not {}",
            type_name(other)
        )),
    }
}

/// Why params rmcp could not read do not fit `method`, with the parser's reason when cheap.
fn params_fault(method: &str, params: Option<Value>) -> String {
    use rmcp::model::{InitializeRequestParams, PaginatedRequestParams};
    let detail = match (method, params) {
        (InitializeResultMethod::VALUE, Some(p)) => {
            serde_json::from_value::<InitializeRequestParams>(p).err()
        }
        (InitializeResultMethod::VALUE, None) => {
            return "initialize needs params {protocolVersion, capabilities, clientInfo}".into();
        }
        (ListToolsRequestMethod::VALUE, Some(p)) => {
            serde_json::from_value::<PaginatedRequestParams>(p).err()
        }
        _ => None,
    };
    match detail {
        Some(e) => format!(
            "params of `{method}` do not fit its schema: {}",
            cut(&e.to_string())
        ),
        None => format!("params of `{method}` do not fit its schema"),
    }
}

/// A notification rmcp could not read is dropped, unanswered.
fn check_notification(object: Map<String, Value>, method: &str) -> Verdict {
    match serde_json::from_value::<ClientJsonRpcMessage>(Value::Object(object)) {
        Ok(message) => check_message(message),
        Err(e) => Verdict::Drop(format!(
            "dropped a malformed `{method}` notification: {}",
            cut(&e.to_string())
        )),
    }
}

/// A response (to a request of the shim's) is handed on; a malformed one is dropped.
fn forward_response(object: Map<String, Value>) -> Verdict {
    match serde_json::from_value::<ClientJsonRpcMessage>(Value::Object(object)) {
        Ok(message) => Verdict::Forward(Box::new(message)),
        Err(e) => Verdict::Drop(format!(
            "dropped a malformed response: {}",
            cut(&e.to_string())
        )),
    }
}

fn invalid(id: Value, message: impl Into<String>) -> Verdict {
    Verdict::Answer(ErrorAnswer::new(
        id,
        INVALID_REQUEST,
        format!("invalid request: {}", message.into()),
    ))
}

fn invalid_params(id: Value, message: impl Into<String>) -> Verdict {
    Verdict::Answer(ErrorAnswer::new(
        id,
        INVALID_PARAMS,
        format!("invalid params: {}", message.into()),
    ))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `text` cut to [`MAX_DETAIL_CHARS`] characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}...", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &[u8]) -> Verdict {
        check_line(line.to_vec())
    }

    fn answer(line: &[u8]) -> ErrorAnswer {
        match check(line) {
            Verdict::Answer(a) => a,
            other => panic!(
                "{:?}: expected an answer, got {other:?}",
                String::from_utf8_lossy(line)
            ),
        }
    }

    #[test]
    fn parse_errors_have_a_null_id() {
        let deep = "[".repeat(100_000);
        for line in [
            &b"{bad"[..],
            b"\xff\xfe",
            br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\ud800"}}"#,
            deep.as_bytes(),
        ] {
            let a = answer(line);
            assert_eq!((a.code, &a.id), (PARSE_ERROR, &Value::Null), "{a:?}");
        }
        // Deep but within serde_json's limit parses (and drops) fine.
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(answer(ok.as_bytes()).code, INVALID_REQUEST);
    }

    #[test]
    fn ids_are_echoed_when_readable() {
        let a = answer(br#"{"jsonrpc":"2.0","id":"x","method":"tools/list","params":3}"#);
        assert_eq!((a.code, a.id), (INVALID_PARAMS, json!("x")));
        let a = answer(br#"{"jsonrpc":"2.0","id":true,"method":"tools/list"}"#);
        assert_eq!((a.code, a.id), (INVALID_REQUEST, Value::Null));
        let a = answer(br#"{"jsonrpc":"2.0","id":5,"method":"ping","result":{}}"#);
        assert_eq!((a.code, a.id), (INVALID_REQUEST, json!(5)));
    }

    #[test]
    fn tools_call_params_are_checked() {
        for params in [
            json!({"name": "t", "arguments": "x"}),
            json!({"name": "t", "arguments": []}),
            json!({"arguments": {}}),
            json!({"name": null}),
            json!([1]),
        ] {
            let line = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params});
            let a = answer(line.to_string().as_bytes());
            assert_eq!((a.code, a.id), (INVALID_PARAMS, json!(3)), "{params}");
        }
        let a = answer(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call"}"#);
        assert_eq!(a.code, INVALID_PARAMS);
        for line in [
            &br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t"}}"#[..],
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":null}}"#,
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}"#,
        ] {
            assert!(matches!(check(line), Verdict::Forward(_)), "{line:?}");
        }
    }

    #[test]
    fn malformed_notifications_and_responses_are_dropped_and_others_forwarded() {
        for line in [
            &br#"{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":"x"}}"#[..],
            br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":[]}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized","params":3}"#,
        ] {
            assert!(matches!(check(line), Verdict::Drop(_)), "{line:?}");
        }
        for line in [
            &br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"frobnicate"}"#,
            b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r",
        ] {
            assert!(matches!(check(line), Verdict::Forward(_)), "{line:?}");
        }
        assert!(matches!(check(b"  \r"), Verdict::Skip));
    }

    #[test]
    fn messages_never_quote_long_input() {
        let long = "y".repeat(10_000);
        let line = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": long}});
        let a = answer(line.to_string().as_bytes());
        assert_eq!(a.code, INVALID_PARAMS);
        assert!(a.message.len() < 400, "{}", a.message);
    }
}
