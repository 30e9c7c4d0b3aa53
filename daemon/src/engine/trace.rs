//! The trace row of every call: the arguments with the fields the tool's
//! declaration names redacted to `{sha256, chars}`, the outcome, and the
//! result by length and hash, never by value.

use serde_json::Value;

use rlm::ToolError;
use rlm::tools::Tool;

use super::response::utf8_chars;
use super::{Engine, now};
use crate::store::sha256_hex;
use crate::store::traces::TraceRow;

impl Engine {
    pub(super) fn record_trace(
        &self,
        tool: Tool,
        session_id: Option<&str>,
        arguments: &str,
        result: &Result<Value, ToolError>,
        duration_ms: f64,
    ) {
        let (outcome, code, chars, hash) = match result {
            Ok(v) => {
                let (chars, hash) = json_digest(v);
                ("ok", None, Some(chars as i64), Some(hash))
            }
            Err(e) => ("error", Some(e.code.as_str()), None, None),
        };
        let written = self.inner.store.record_trace(&TraceRow {
            session_id,
            operation: tool.name(),
            arguments,
            outcome,
            error_code: code,
            duration_ms,
            result_chars: chars,
            result_hash: hash.as_deref(),
            created_at: &now(),
        });
        if let Err(e) = written {
            tracing::warn!(operation = tool.name(), error = %e, "could not record the trace of a call");
        }
    }
}

/// The length in chars and the SHA-256 (hex) of the compact JSON text of `v`.
fn json_digest(v: &Value) -> (u64, String) {
    // `serde_json::to_vec`, not `Value::to_string`: the latter writes through a
    // `fmt::Formatter` and takes twice as long on a search result.
    let text = serde_json::to_vec(v).unwrap_or_default();
    (utf8_chars(&text) as u64, sha256_hex(&text))
}

/// Strings of arguments longer than this (in characters) are kept as their
/// SHA-256 and length: a text sent under a key the declaration does not name
/// (a misspelt `contents`) is never copied into a trace.
const MAX_TRACED_STRING: usize = 256;

/// Arguments whose JSON is longer than this (in characters) are kept as one
/// SHA-256 and length: a trace row never grows with what a caller sends.
const MAX_TRACED_ARGUMENTS: usize = 8192;

/// The JSON text of the arguments as traces keep them: the fields the tool's
/// declaration names, and any string longer than [`MAX_TRACED_STRING`], are
/// replaced by their SHA-256 and length, never copied; arguments still
/// longer than [`MAX_TRACED_ARGUMENTS`] are kept as one digest.
pub(super) fn redacted_arguments(tool: Tool, args: &Value) -> String {
    let paths = tool.spec().redact;
    let text = if paths.is_empty() && !has_long_string(args) {
        // Nothing to redact: no copy of the arguments.
        serde_json::to_string(args).unwrap_or_default()
    } else {
        serde_json::to_string(&traced(args, paths)).unwrap_or_default()
    };
    let chars = utf8_chars(text.as_bytes());
    if chars <= MAX_TRACED_ARGUMENTS {
        return text;
    }
    serde_json::json!({"sha256": sha256_hex(text.as_bytes()), "chars": chars, "kept": "digest only"})
        .to_string()
}

/// Whether some string in `v` may be longer than [`MAX_TRACED_STRING`]
/// characters (its bytes are).
fn has_long_string(v: &Value) -> bool {
    match v {
        Value::String(s) => s.len() > MAX_TRACED_STRING,
        Value::Array(items) => items.iter().any(has_long_string),
        Value::Object(map) => map.values().any(has_long_string),
        _ => false,
    }
}

/// A copy of `v` as a trace keeps it: the values at `paths` (`key.key`,
/// `key[]` for every element of a list; a path that names nothing changes
/// nothing) and every string longer than [`MAX_TRACED_STRING`] characters
/// replaced by their digest. What is replaced is never copied: an inline
/// text of 100 MB is read once, for its digest.
fn traced(v: &Value, paths: &[&str]) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, field)| (key.clone(), traced_field(key, field, paths)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| traced(x, &[])).collect()),
        Value::String(s)
            if s.len() > MAX_TRACED_STRING && s.chars().count() > MAX_TRACED_STRING =>
        {
            digest(v)
        }
        other => other.clone(),
    }
}

/// The field `key` of an object, `field`, as [`traced`] keeps it when the
/// object's paths are `paths`.
fn traced_field(key: &str, field: &Value, paths: &[&str]) -> Value {
    let (mut inner, mut elements, mut each_whole) = (Vec::new(), Vec::new(), false);
    for path in paths {
        let (head, rest) = match path.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (*path, None),
        };
        match (head.strip_suffix("[]"), rest) {
            (Some(list), Some(rest)) if list == key => elements.push(rest),
            (Some(list), None) if list == key => each_whole = true,
            (None, Some(rest)) if head == key => inner.push(rest),
            (None, None) if head == key => return digest(field),
            _ => {}
        }
    }
    match field {
        Value::Array(items) if each_whole || !elements.is_empty() => Value::Array(
            items
                .iter()
                .map(|x| {
                    if each_whole {
                        digest(x)
                    } else {
                        traced(x, &elements)
                    }
                })
                .collect(),
        ),
        _ => traced(field, &inner),
    }
}

/// `{sha256, chars}` of a string's text, or of another value's JSON.
fn digest(v: &Value) -> Value {
    let json;
    let text = match v {
        Value::String(s) => s.as_str(),
        other => {
            json = other.to_string();
            json.as_str()
        }
    };
    serde_json::json!({"sha256": sha256_hex(text.as_bytes()), "chars": text.chars().count()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declared_fields_are_replaced_by_their_digest() {
        let args = json!({"session_id": "s", "sources": [
            {"type": "inline", "content": "secret text"},
            {"type": "file", "path": "/x"}
        ]});
        let kept: Value = serde_json::from_str(&redacted_arguments(Tool::DocsLoad, &args)).unwrap();
        assert_eq!(kept["sources"][0]["content"]["chars"], 11);
        // sha256("secret text"), computed by Python's hashlib.
        assert_eq!(
            kept["sources"][0]["content"]["sha256"],
            "486a2d2abec341f9a9513329e29ea386e98b2a280d38d12a0b4a53c92ad8b26b"
        );
        assert!(!kept.to_string().contains("secret"));
        assert_eq!(kept["sources"][1], json!({"type": "file", "path": "/x"}));
        let args = json!({"session_id": "s", "type": "summary", "content": {"k": "private"}});
        let kept = redacted_arguments(Tool::ArtifactStore, &args);
        assert!(!kept.contains("private"), "{kept}");
        let args = json!({"session_id": "s", "query": "visible"});
        assert!(redacted_arguments(Tool::SearchQuery, &args).contains("visible"));
    }

    #[test]
    fn long_strings_under_any_key_are_kept_as_digests() {
        // A misspelt key the declaration does not name.
        let secret = "SECRET ".repeat(100);
        let args = json!({"session_id": "s", "sources": [
            {"type": "inline", "contents": secret}
        ]});
        let kept: Value = serde_json::from_str(&redacted_arguments(Tool::DocsLoad, &args)).unwrap();
        assert!(!kept.to_string().contains("SECRET"), "{kept}");
        assert_eq!(kept["sources"][0]["contents"]["chars"], 700);
        // A long query of a tool with nothing to redact.
        let args = json!({"session_id": "s", "query": "needle ".repeat(50)});
        let kept = redacted_arguments(Tool::SearchQuery, &args);
        assert!(!kept.contains("needle"), "{kept}");
        // Short strings stay readable.
        let args = json!({"session_id": "s", "query": "short query"});
        assert!(redacted_arguments(Tool::SearchQuery, &args).contains("short query"));
    }

    /// Each kind of path: a key, a key inside another, every element of a
    /// list, a key of every element; paths that name nothing change nothing.
    #[test]
    fn every_kind_of_path_is_replaced_and_the_rest_kept() {
        let args = json!({
            "a": "secret-a", "x": {"y": "secret-y", "z": "kept-z"},
            "list": ["secret-1", "secret-2"], "items": [{"k": "secret-k", "v": "kept-v"}, 7],
            "none": "kept-none"
        });
        let kept = traced(
            &args,
            &["a", "x.y", "list[]", "items[].k", "missing.path", "none[]"],
        );
        let text = kept.to_string();
        assert!(!text.contains("secret"), "{text}");
        for k in ["kept-z", "kept-v", "kept-none"] {
            assert!(text.contains(k), "{text}");
        }
        assert_eq!(kept["a"], digest(&json!("secret-a")));
        assert_eq!(kept["list"][1], digest(&json!("secret-2")));
        assert_eq!(kept["items"][1], 7);
        assert_eq!(kept["x"]["y"]["chars"], 8);
    }

    #[test]
    fn arguments_of_any_size_make_a_bounded_trace() {
        let ids: Vec<String> = (0..5000).map(|i| format!("span-{i}")).collect();
        let args = json!({"session_id": "s", "span_ids": ids});
        let kept = redacted_arguments(Tool::SpanGet, &args);
        assert!(kept.chars().count() <= 200, "{} chars", kept.len());
        let kept: Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(kept["chars"], serde_json::to_string(&args).unwrap().len());
    }
}
