//! The tools as `tools/list` shows them, checked against the contract of `docs/TOOLS.md` written out here: names, descriptions, self-contained and portable input schemas, output schemas that accept the results the real engine gave (`fixtures/engine_results.json`) and reject junk; and arguments a weak client sends as text, converted by those schemas.

mod common;

use rlm::{ErrorCode, ToolError};
use rlm_client::mcp::ToolNames;
use serde_json::{Value, json};

use common::*;

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

// ---------------------------------------------------------------- weak clients

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
