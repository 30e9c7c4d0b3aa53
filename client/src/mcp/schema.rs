//! The schemas `tools/list` shows: [`Tool::input_schema`] and [`Tool::output_schema`] rewritten,
//! once at start, into the form every MCP client accepts.
//!
//! - every `$ref` is inlined and `$defs` / `definitions` dropped (clients built on the TypeScript
//!   SDK since 1.22, Cursor, Claude Code and the MCP Inspector fail on `#/$defs/` references);
//!   `$schema` is dropped too (an unstamped schema is 2020-12 for clients that follow SEP-2106,
//!   and reads the same under draft-07), as are the root `title` and `description` (the Rust
//!   type's name and doc) and the non-standard numeric `format`s (`uint64`, `double`, ...) that
//!   strict validators warn about;
//! - an output schema stops at the top level (each result key with its JSON type), declares
//!   draft-07, and also admits the error envelope `{"error": {"code", "message", ...}}` of
//!   `isError` results: the TypeScript SDK validates `structuredContent` against `outputSchema`
//!   even when `isError` is true, and would otherwise turn every tool error into a protocol
//!   error. The success shape stays at the root (`properties`), its `required` moves into
//!   `anyOf: [{required: [...]}, {required: ["error"]}]`.

use rlm::Tool;
use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

/// The input schema clients see for `tool`.
pub(super) fn input(tool: Tool) -> JsonObject {
    client_schema(tool.input_schema())
}

/// The output schema clients see for `tool`.
pub(super) fn output(tool: Tool) -> JsonObject {
    let mut output = with_error_envelope(top_level(client_schema(tool.output_schema())));
    // Clients validate every result against this schema. Python's jsonschema
    // checks an unstamped (2020-12) schema against its metaschema in ~10 ms
    // per call, a draft-07 one in ~2 ms; the rewritten schemas use nothing
    // draft-07 lacks, and the TypeScript SDK's Ajv reads draft-07 natively.
    output.insert("$schema".to_owned(), json!(DRAFT_07));
    output
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

/// Lets an output schema also accept the error envelope of `isError` results (see the module
/// doc).
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
