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

/// The input schema clients see for `tool`: self-contained and portable
/// ([`portable_input`]).
pub(super) fn input(tool: Tool) -> JsonObject {
    let mut schema = Value::Object(client_schema(tool.input_schema()));
    portable_input(&mut schema);
    match schema {
        Value::Object(map) => map,
        _ => JsonObject::from_iter([("type".to_owned(), json!("object"))]),
    }
}

/// Rewrites an input schema so that clients that know one `type` per
/// property can use it (MCP Inspector 0.15 sent `limit=2` as the string
/// `"2"` for `"type": ["integer", "null"]`; Gemini's function declarations
/// take one type; Inspector 2's `--strict` warns about every type array):
/// an optional argument is one that is not `required`, so `null` leaves
/// every `type` array, every `anyOf`/`oneOf` (a single branch left is merged
/// into its parent) and every `"default": null`; and a schema of
/// alternatives that all have one type says it at its top (`"type":
/// "object"` on a tagged union). The daemon still accepts `null` for an
/// optional argument.
fn portable_input(node: &mut Value) {
    match node {
        Value::Array(items) => items.iter_mut().for_each(portable_input),
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if !DATA_KEYWORDS.contains(&key.as_str()) {
                    portable_input(value);
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let single = types.remove(0);
                    map.insert("type".into(), single);
                }
            }
            for keyword in ["anyOf", "oneOf"] {
                let Some(Value::Array(branches)) = map.get_mut(keyword) else {
                    continue;
                };
                branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                if branches.len() == 1 {
                    let Some(Value::Object(branch)) = map
                        .remove(keyword)
                        .and_then(|mut b| b.as_array_mut().and_then(|b| b.pop()))
                    else {
                        continue;
                    };
                    // The parent's own annotations (its description) win.
                    for (k, v) in branch {
                        map.entry(k).or_insert(v);
                    }
                    continue;
                }
                let types: Vec<&Value> = branches.iter().filter_map(|b| b.get("type")).collect();
                let common = (types.len() == branches.len()
                    && types.first().is_some_and(|t| t.is_string())
                    && types.iter().all(|t| *t == types[0]))
                .then(|| types[0].clone());
                if let Some(common) = common {
                    map.entry("type").or_insert(common);
                }
            }
        }
        _ => {}
    }
}

/// Converts, in place, the arguments a weak client sent as strings where
/// `schema` (a portable input schema) wants an integer, a number or a
/// boolean, when the string says exactly one (`"2"`, `" 2 "`, `"0.5"`,
/// `"true"`); anything else is left for the daemon to refuse with the field's
/// name. Objects are followed through their `properties` (a tagged union's
/// through the branch its `type` names), arrays through their `items`.
pub(super) fn coerce(schema: &Value, value: &mut Value) {
    match value {
        Value::String(text) => {
            let text = text.trim();
            let converted = match schema.get("type").and_then(Value::as_str) {
                Some("integer") => text
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| text.parse::<u64>().map(Value::from))
                    .ok(),
                Some("number") => text.parse::<i64>().map(Value::from).ok().or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                }),
                Some("boolean") => match text {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => None,
            };
            if let Some(converted) = converted {
                *value = converted;
            }
        }
        Value::Object(fields) => {
            let schema = branch_for(schema, fields).unwrap_or(schema);
            let Some(Value::Object(properties)) = schema.get("properties") else {
                return;
            };
            for (key, field) in fields.iter_mut() {
                if let Some(field_schema) = properties.get(key) {
                    coerce(field_schema, field);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    coerce(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// The one branch of `schema`'s `oneOf`/`anyOf` whose `type` property is the
/// constant `fields` has as its `type` (a tagged union's variant).
fn branch_for<'a>(schema: &'a Value, fields: &Map<String, Value>) -> Option<&'a Value> {
    let tag = fields.get("type")?;
    let branches = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))?
        .as_array()?;
    let mut matching = branches
        .iter()
        .filter(|b| b.pointer("/properties/type/const") == Some(tag));
    let first = matching.next()?;
    matching.next().is_none().then_some(first)
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
    // One type per schema (Inspector 2's `--strict` warns about type
    // arrays): a value that may be null says so with alternatives.
    match unique.len() {
        1 => json!({ "type": unique[0] }),
        _ => json!({ "anyOf": unique.iter().map(|t| json!({ "type": t })).collect::<Vec<_>>() }),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node of `schema` (with its JSON path), for the checks below.
    fn nodes<'a>(path: String, schema: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match schema {
            Value::Object(map) => {
                out.push((path.clone(), schema));
                for (k, v) in map {
                    if !DATA_KEYWORDS.contains(&k.as_str()) {
                        nodes(format!("{path}.{k}"), v, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    nodes(format!("{path}[{i}]"), v, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn input_schemas_have_one_type_per_property_and_no_null() {
        for tool in Tool::ALL {
            let schema = Value::Object(input(tool));
            let mut all = Vec::new();
            nodes(tool.name().to_owned(), &schema, &mut all);
            for (path, node) in all {
                let Value::Object(map) = node else { continue };
                if path.ends_with(".properties") {
                    continue; // a map of names, not a schema
                }
                if let Some(t) = map.get("type") {
                    assert!(t.is_string(), "{path}: type {t}");
                    assert_ne!(t, "null", "{path}");
                }
                assert_ne!(map.get("default"), Some(&Value::Null), "{path}");
                for keyword in ["anyOf", "oneOf"] {
                    if let Some(Value::Array(branches)) = map.get(keyword) {
                        assert!(branches.len() > 1, "{path}.{keyword}: one branch");
                        assert!(
                            map.contains_key("type"),
                            "{path}: alternatives without a type"
                        );
                    }
                }
                if map.contains_key("properties") {
                    assert_eq!(map.get("type"), Some(&json!("object")), "{path}");
                }
            }
        }
    }

    #[test]
    fn optional_arguments_stay_optional_and_required_ones_required() {
        let search = Value::Object(input(Tool::SearchQuery));
        assert_eq!(search["required"], json!(["session_id", "query"]));
        assert_eq!(search["properties"]["limit"]["type"], "integer");
        assert_eq!(search["properties"]["method"]["type"], "string");
        assert_eq!(
            search["properties"]["method"]["enum"],
            json!(["bm25", "regex", "literal"])
        );
        // The parent's description survives the merge of its one branch.
        let create = Value::Object(input(Tool::SessionCreate));
        let config = &create["properties"]["config"];
        assert_eq!(config["type"], "object");
        assert_eq!(
            config["description"],
            "Overrides of the server's session defaults."
        );
        assert_eq!(config["properties"]["max_tool_calls"]["type"], "integer");
        let chunk = Value::Object(input(Tool::ChunkCreate));
        assert_eq!(chunk["properties"]["strategy"]["type"], "object");
        assert_eq!(
            chunk["properties"]["strategy"]["oneOf"]
                .as_array()
                .map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn output_schemas_say_nullable_with_alternatives_of_one_type() {
        let list = Value::Object(output(Tool::DocsList));
        assert_eq!(
            list["properties"]["next_offset"],
            json!({"anyOf": [{"type": "integer"}, {"type": "null"}]})
        );
    }

    #[test]
    fn strings_become_the_numbers_and_booleans_the_schema_wants() {
        let search = Value::Object(input(Tool::SearchQuery));
        let mut args =
            json!({"session_id": "123", "query": "42", "limit": " 2 ", "context_chars": "0"});
        coerce(&search, &mut args);
        // Strings the schema wants stay strings, even when they look like numbers.
        assert_eq!(
            args,
            json!({"session_id": "123", "query": "42", "limit": 2, "context_chars": 0})
        );
        // Not exactly one number: left for the daemon to refuse by name.
        for bad in ["2.5", "two", "", "-"] {
            let mut args = json!({"session_id": "s", "query": "q", "limit": bad});
            coerce(&search, &mut args);
            assert_eq!(args["limit"], bad);
        }
        let create = Value::Object(input(Tool::SessionCreate));
        let mut args = json!({"config": {"max_tool_calls": "7", "chunk_cache_enabled": "false"}});
        coerce(&create, &mut args);
        assert_eq!(
            args,
            json!({"config": {"max_tool_calls": 7, "chunk_cache_enabled": false}})
        );
        let mut args = json!({"config": {"chunk_cache_enabled": "yes"}});
        coerce(&create, &mut args);
        assert_eq!(args["config"]["chunk_cache_enabled"], "yes");
    }

    #[test]
    fn tagged_unions_are_followed_through_the_branch_their_type_names() {
        let chunk = Value::Object(input(Tool::ChunkCreate));
        let mut args = json!({
            "session_id": "s", "doc_id": "d", "offset": "1",
            "strategy": {"type": "lines", "line_count": "10", "overlap": "2"}
        });
        coerce(&chunk, &mut args);
        assert_eq!(args["offset"], 1);
        assert_eq!(
            args["strategy"],
            json!({"type": "lines", "line_count": 10, "overlap": 2})
        );
        // A `delimiter` is a string: never turned into a number.
        let mut args =
            json!({"strategy": {"type": "delimiter", "delimiter": "2", "max_chunks": "3"}});
        coerce(&chunk, &mut args);
        assert_eq!(
            args["strategy"],
            json!({"type": "delimiter", "delimiter": "2", "max_chunks": 3})
        );
        let load = Value::Object(input(Tool::DocsLoad));
        let mut args = json!({"session_id": "s", "sources": [
            {"type": "directory", "path": "1", "recursive": "true"},
            {"type": "inline", "content": "7", "token_count_hint": "12"},
            {"type": "unknown", "recursive": "true"}
        ]});
        coerce(&load, &mut args);
        assert_eq!(args["sources"][0]["recursive"], true);
        assert_eq!(args["sources"][0]["path"], "1");
        assert_eq!(args["sources"][1]["content"], "7");
        assert_eq!(args["sources"][1]["token_count_hint"], 12);
        // No branch named: nothing to go by.
        assert_eq!(args["sources"][2]["recursive"], "true");
    }
}
