//! Arguments and results of the document tools (`rlm.docs.*`) and the load sources.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::Tagged;

/// Arguments of `rlm.docs.load`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsLoadArgs {
    pub session_id: String,
    /// What to load; one source's failure never fails the others.
    pub sources: Vec<SourceArg>,
}

/// One entry of `sources` as the client sent it: the source, or why it is
/// not one (an unknown `type`, an unknown key, a field of the wrong type).
/// That is the source's own error, reported in the load's `errors`, never
/// the call's: the other sources still load.
#[derive(Debug, Clone)]
pub struct SourceArg {
    /// The entry as sent when it is not a source (None when it is: the
    /// source holds all of it).
    pub raw: Option<Value>,
    /// The source it reads as, or the reason (naming the field) it does not.
    pub parsed: Result<Source, String>,
}

impl SourceArg {
    fn read(mut raw: Value) -> SourceArg {
        // An inline text (up to the file size limit, 100 MB by default)
        // moves into its source, never copied: it is taken out while the
        // rest of the entry is parsed by reference, and put back if the
        // entry is no source (no error names a string's value).
        let inline = raw.get("type").and_then(Value::as_str) == Some("inline");
        let content = match raw.get_mut("content") {
            Some(Value::String(s)) if inline => Some(std::mem::take(s)),
            _ => None,
        };
        let parsed = serde_path_to_error::deserialize::<_, Source>(&raw).map_err(|e| {
            let (path, reason) = Source::variant_error(&raw)
                .unwrap_or_else(|| (e.path().to_string(), e.into_inner().to_string()));
            if path == "." {
                reason
            } else {
                format!("`{path}`: {reason}")
            }
        });
        match parsed {
            Ok(mut source) => {
                // An entry of type `inline` that parsed is an inline source.
                if let (Source::Inline(inline), Some(content)) = (&mut source, content) {
                    inline.content = content;
                }
                SourceArg {
                    raw: None,
                    parsed: Ok(source),
                }
            }
            Err(reason) => {
                if let Some(content) = content {
                    raw["content"] = Value::String(content);
                }
                SourceArg {
                    raw: Some(raw),
                    parsed: Err(reason),
                }
            }
        }
    }
}

impl From<Source> for SourceArg {
    fn from(source: Source) -> SourceArg {
        SourceArg {
            raw: None,
            parsed: Ok(source),
        }
    }
}

impl<'de> Deserialize<'de> for SourceArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SourceArg, D::Error> {
        Value::deserialize(d).map(SourceArg::read)
    }
}

/// A source as itself, an entry that is none as it was sent.
impl Serialize for SourceArg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (&self.parsed, &self.raw) {
            (Ok(source), _) => source.serialize(s),
            (Err(_), raw) => raw.serialize(s),
        }
    }
}

/// Clients see the schema of [`Source`]: what a valid entry is.
impl JsonSchema for SourceArg {
    fn schema_name() -> Cow<'static, str> {
        Source::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        Source::schema_id()
    }

    fn inline_schema() -> bool {
        Source::inline_schema()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        Source::json_schema(generator)
    }
}

/// One source of `rlm.docs.load`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    /// Text given in the call.
    Inline(InlineSource),
    /// One file; a relative path is resolved against the client's working directory.
    File(FileSource),
    /// A glob pattern such as `src/**/*.py` (`**` crosses directories).
    Glob(GlobSource),
    /// The files of a directory (its subdirectories too when `recursive`).
    Directory(DirectorySource),
}

/// `{"type": "inline", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InlineSource {
    pub content: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// `{"type": "file", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub path: String,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// `{"type": "glob", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobSource {
    pub path: String,
    /// Regex a file's path must match.
    #[serde(default)]
    pub include_pattern: Option<String>,
    /// Regex that leaves a file out when its path matches.
    #[serde(default)]
    pub exclude_pattern: Option<String>,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// `{"type": "directory", ...}`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectorySource {
    pub path: String,
    /// Descend into subdirectories (default false).
    #[serde(default)]
    pub recursive: bool,
    /// Regex a file's path must match.
    #[serde(default)]
    pub include_pattern: Option<String>,
    /// Regex that leaves a file out when its path matches.
    #[serde(default)]
    pub exclude_pattern: Option<String>,
    #[serde(default)]
    pub token_count_hint: Option<u64>,
}

/// A document as `rlm.docs.load` reports it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct LoadedDoc {
    pub doc_id: String,
    /// Lowercase hex SHA-256 of the UTF-8 bytes.
    pub content_hash: String,
    /// Absolute path, `inline`, or the inline source's name.
    pub source: String,
    pub length_chars: u64,
    pub length_tokens_est: u64,
}

/// Result of `rlm.docs.load`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocsLoadResult {
    /// The documents loaded, cut at the response cap (see `truncated`; `rlm.docs.list` pages all).
    pub loaded: Vec<LoadedDoc>,
    /// One line per source or file that was not loaded, naming it and the reason.
    pub errors: Vec<String>,
    pub total_chars: u64,
    pub total_tokens_est: u64,
    /// How many documents this call loaded, even when `loaded` is cut.
    pub loaded_count: u64,
    /// How many sources or files failed, even when `errors` is cut or summarized.
    pub error_count: u64,
    /// True when `loaded` or `errors` was cut to fit the response cap.
    pub truncated: bool,
}

/// Arguments of `rlm.docs.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsListArgs {
    pub session_id: String,
    /// Documents per page (default 100).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Documents to skip (default 0).
    #[serde(default)]
    pub offset: Option<u64>,
}

/// A document as `rlm.docs.list` reports it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocEntry {
    pub doc_id: String,
    pub content_hash: String,
    pub source: String,
    pub length_chars: u64,
    pub length_tokens_est: u64,
    pub span_count: u64,
    /// Present and true when `source` was cut to fit the response cap (an
    /// entry too large to come back whole comes back alone, cut, so paging
    /// always advances).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Result of `rlm.docs.list`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocsListResult {
    pub documents: Vec<DocEntry>,
    /// All documents of the session.
    pub total: u64,
    pub has_more: bool,
    /// The offset of the next page, or null at the end.
    pub next_offset: Option<u64>,
    /// True when the page was cut short to fit the response cap.
    pub truncated: bool,
}

/// Arguments of `rlm.docs.peek`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocsPeekArgs {
    pub session_id: String,
    pub doc_id: String,
    /// First character (default 0).
    #[serde(default)]
    pub start: Option<i64>,
    /// End character, exclusive; -1 (default) means the end of the document.
    #[serde(default)]
    pub end: Option<i64>,
}

/// A range of a document, in characters, `end` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpanRef {
    pub doc_id: String,
    pub start: u64,
    pub end: u64,
}

/// Result of `rlm.docs.peek`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct DocsPeekResult {
    pub content: String,
    /// What was returned: `end` is the end actually returned.
    pub span: SpanRef,
    /// SHA-256 of the returned text.
    pub content_hash: String,
    pub truncated: bool,
    pub total_length: u64,
}

super::tagged!(Source {
    "inline" => InlineSource,
    "file" => FileSource,
    "glob" => GlobSource,
    "directory" => DirectorySource,
});
