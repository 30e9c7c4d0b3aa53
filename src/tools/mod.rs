//! The tool contract, declared once: each tool's name, description, how it
//! uses a session, its argument and result types (from which the input and
//! output schemas are derived), which argument fields traces redact, and
//! how argument errors name the failing field.
//!
//! Both sides use it: the engine parses arguments with [`parse_args_owned`] and
//! serializes results from the `Output` types; the shim lists the tools from
//! [`Tool::ALL`]; the CLI names them from it.
//!
//! Adding a tool: its argument and result types in the module of its family,
//! one entry in the [`tools!`] table below, its handler in the engine and
//! one registration line there.

mod artifacts;
mod chunks;
mod docs;
mod search;
mod sessions;

pub use artifacts::*;
pub use chunks::*;
pub use docs::*;
pub use search::*;
pub use sessions::*;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ToolError;

/// How a tool uses the session it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionUse {
    /// Names no session: it makes one (`rlm.session.create`).
    Creates,
    /// Names a session and counts one call against its budget.
    Charged,
    /// Names a session and always goes through, budget or not (`rlm.session.close`).
    Uncharged,
}

/// Everything the contract says about one tool, as data.
#[derive(Debug)]
pub struct ToolSpec {
    /// The dotted name, e.g. `rlm.session.create`.
    pub name: &'static str,
    /// The description an LLM reads in `tools/list`.
    pub description: &'static str,
    pub session: SessionUse,
    /// Argument fields that traces keep as `{sha256, chars}` instead of their
    /// value: a path of keys, where `key[]` means every element of the list
    /// under `key` (`sources[].content`).
    pub redact: &'static [&'static str],
    /// Argument fields that hold an internally tagged enum (`{"type": ...}`),
    /// with the function that names the failing field inside the variant
    /// (`key[]` means every element of the list under `key`).
    pub tagged: &'static [(&'static str, RefineFn)],
    input_schema: fn() -> Value,
    output_schema: fn() -> Value,
}

/// Reads a tagged value again as the variant its `type` names, and returns
/// the path and reason of the first error inside it.
pub type RefineFn = fn(&Value) -> Option<(String, String)>;

/// A tool as a type, for code that wants its argument and result types.
pub trait ToolDef {
    const TOOL: Tool;
    type Args: DeserializeOwned + JsonSchema;
    type Output: Serialize + JsonSchema;
}

/// An internally tagged enum of the arguments (`{"type": "file", ...}`):
/// serde reads the variant whole, so it names only the variant when a field
/// inside it is wrong; reading the variant's own type again names the field.
pub trait Tagged {
    /// The error inside `value` read as the variant its `type` names, if any.
    fn variant_error(value: &Value) -> Option<(String, String)>;
}

/// Implements [`Tagged`] for an enum from its tags and variant types.
macro_rules! tagged {
    ($enum:ty { $($tag:literal => $variant:ty),* $(,)? }) => {
        impl $crate::tools::Tagged for $enum {
            fn variant_error(value: &serde_json::Value) -> Option<(String, String)> {
                match value.get("type")?.as_str()? {
                    $($tag => $crate::tools::field_error::<$variant>(value),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use tagged;

/// The first error reading `value`, less its `type` tag, as `T`.
pub(crate) fn field_error<T: DeserializeOwned>(value: &Value) -> Option<(String, String)> {
    let mut value = value.clone();
    value.as_object_mut()?.remove("type");
    serde_path_to_error::deserialize::<_, T>(&value)
        .err()
        .map(|e| (e.path().to_string(), e.into_inner().to_string()))
}

fn refine<T: Tagged>(value: &Value) -> Option<(String, String)> {
    T::variant_error(value)
}

fn schema<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
}

/// Declares the tools: the [`Tool`] enum, [`Tool::ALL`], one [`ToolSpec`]
/// each, and one marker type each in [`tool`] implementing [`ToolDef`].
macro_rules! tools {
    ($(
        $variant:ident {
            name: $name:literal,
            session: $session:ident,
            args: $args:ty,
            output: $output:ty,
            redact: [$($redact:literal),* $(,)?],
            tagged: [$($tpath:literal => $ttype:ty),* $(,)?],
            description: $description:literal $(,)?
        }
    ),* $(,)?) => {
        /// The tools of the contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Tool {
            $($variant,)*
        }

        /// One type per tool, carrying its argument and result types.
        pub mod tool {
            use super::*;
            $(
                #[doc = concat!("`", $name, "`")]
                #[derive(Debug, Clone, Copy)]
                pub struct $variant;

                impl ToolDef for $variant {
                    const TOOL: Tool = Tool::$variant;
                    type Args = $args;
                    type Output = $output;
                }
            )*
        }

        static SPECS: [ToolSpec; [$(stringify!($variant)),*].len()] = [$(
            ToolSpec {
                name: $name,
                description: $description,
                session: SessionUse::$session,
                redact: &[$($redact),*],
                tagged: &[$(($tpath, refine::<$ttype> as RefineFn)),*],
                input_schema: schema::<$args>,
                output_schema: schema::<$output>,
            },
        )*];

        impl Tool {
            /// Every tool, in the order `tools/list` presents them.
            pub const ALL: [Tool; [$(stringify!($variant)),*].len()] = [$(Tool::$variant),*];
        }
    };
}

tools! {
    SessionCreate {
        name: "rlm.session.create",
        session: Creates,
        args: SessionCreateArgs,
        output: SessionCreateResult,
        redact: [],
        tagged: [],
        description: "Create a session: a workspace that holds loaded documents, spans and artifacts \
                 outside your context. Returns session_id and the effective config (budget of tool \
                 calls, response and peek size caps). Every later call names the session.",
    },
    SessionInfo {
        name: "rlm.session.info",
        session: Charged,
        args: SessionArgs,
        output: SessionInfoResult,
        redact: [],
        tagged: [],
        description: "Show a session: status, document count, total characters, tool calls used and \
                 remaining, whether a search index is built, and its config.",
    },
    SessionClose {
        name: "rlm.session.close",
        session: Uncharged,
        args: SessionArgs,
        output: SessionCloseResult,
        redact: [],
        tagged: [],
        description: "Close a session when done. It becomes read-only (info, list, peek, span.get, \
                 search and artifact reads still work; load, chunk and artifact.store fail) and \
                 returns a summary. Does not count against the budget.",
    },
    DocsLoad {
        name: "rlm.docs.load",
        session: Charged,
        args: DocsLoadArgs,
        output: DocsLoadResult,
        redact: ["sources[].content"],
        tagged: [],
        description: "Load text into the session from sources: inline content, a file, a glob \
                 (`src/**/*.py`) or a directory (recursive optional; include_pattern / \
                 exclude_pattern regexes filter paths). Relative paths are resolved against your \
                 working directory. Files that are not UTF-8, too large or unreadable are reported \
                 in `errors`; the rest still load. Returns doc_ids, hashes and lengths in \
                 characters.",
    },
    DocsList {
        name: "rlm.docs.list",
        session: Charged,
        args: DocsListArgs,
        output: DocsListResult,
        redact: [],
        tagged: [],
        description: "List the session's documents in load order (doc_id, source, length in \
                 characters, span count), a page at a time (limit, offset; has_more / next_offset).",
    },
    DocsPeek {
        name: "rlm.docs.peek",
        session: Charged,
        args: DocsPeekArgs,
        output: DocsPeekResult,
        redact: [],
        tagged: [],
        description: "Read part of a document by character offsets [start, end) (end -1 = end of the \
                 document). Capped at max_chars_per_peek; `truncated` says when cut. Use it to \
                 see a document's shape before chunking or searching.",
    },
    ChunkCreate {
        name: "rlm.chunk.create",
        session: Charged,
        args: ChunkCreateArgs,
        output: ChunkCreateResult,
        redact: [],
        tagged: ["strategy" => ChunkStrategy],
        description: "Cut a document into spans: `fixed` (chunk_size characters, optional overlap), \
                 `lines` (line_count lines, optional overlap) or `delimiter` (a regex; each span \
                 starts at a match). Returns span ids with offsets and previews, a page at a time \
                 (offset / limit, next_offset). The same strategy again returns the same spans \
                 (`cached`).",
    },
    SpanGet {
        name: "rlm.span.get",
        session: Charged,
        args: SpanGetArgs,
        output: SpanGetResult,
        redact: [],
        tagged: [],
        description: "Read spans by id, in the order asked. The total is capped at \
                 max_chars_per_response: the span that crosses the cap is cut (`truncated`) and \
                 ids not returned are listed in `omitted`; ask for them again.",
    },
    SearchQuery {
        name: "rlm.search.query",
        session: Charged,
        args: SearchArgs,
        output: SearchResult,
        redact: [],
        tagged: [],
        description: "Search the session's documents. `bm25` (default): ranked keyword search that \
                 returns the passages that match, with context centred on the matched terms and \
                 every term highlighted; nearby words also find identifiers that join them (`read \
                 file`: readfile, `temporary directory`: tempdir). `regex` (case-insensitive) and `literal` \
                 (case-insensitive substring): every match in document order. Each match gives \
                 doc_id, the context's offsets (span), the context and highlight offsets inside \
                 it, and for code, Markdown and HTML its unit: the definition or section it is in \
                 (name, the names it is within, lines, offsets to peek it whole). Optional \
                 doc_ids restricts the search.",
    },
    ArtifactStore {
        name: "rlm.artifact.store",
        session: Charged,
        args: ArtifactStoreArgs,
        output: ArtifactStoreResult,
        redact: ["content"],
        tagged: [],
        description: "Store what you derived (a JSON object: summary, extraction, classification, \
                 ...) with provenance, attached to a span (span_id, or span offsets that make a \
                 new span) or to the session.",
    },
    ArtifactList {
        name: "rlm.artifact.list",
        session: Charged,
        args: ArtifactListArgs,
        output: ArtifactListResult,
        redact: [],
        tagged: [],
        description: "List the session's artifacts, oldest first, optionally filtered by span_id or \
                 type, a page at a time (offset / limit, next_offset).",
    },
    ArtifactGet {
        name: "rlm.artifact.get",
        session: Charged,
        args: ArtifactGetArgs,
        output: ArtifactGetResult,
        redact: [],
        tagged: [],
        description: "Read one artifact: its content, span and provenance.",
    },
}

impl Tool {
    /// Everything the contract says about this tool.
    pub fn spec(self) -> &'static ToolSpec {
        &SPECS[self as usize]
    }

    /// The dotted name of the contract, e.g. `rlm.session.create`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The same name with underscores, for clients that accept only `[A-Za-z0-9_-]`.
    pub fn underscore_name(self) -> String {
        self.name().replace('.', "_")
    }

    /// Finds a tool by either spelling (`rlm.docs.load` or `rlm_docs_load`).
    pub fn from_name(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| {
            let dotted = t.name();
            dotted == name
                || (dotted.len() == name.len()
                    && dotted
                        .bytes()
                        .zip(name.bytes())
                        .all(|(d, n)| d == n || (d == b'.' && n == b'_')))
        })
    }

    /// Whether the call needs and names a session (all but `rlm.session.create`).
    pub fn names_session(self) -> bool {
        self.spec().session != SessionUse::Creates
    }

    /// The description an LLM reads in `tools/list`.
    pub fn description(self) -> &'static str {
        self.spec().description
    }

    /// JSON schema of the arguments.
    pub fn input_schema(self) -> Value {
        (self.spec().input_schema)()
    }

    /// JSON schema of a successful result.
    pub fn output_schema(self) -> Value {
        (self.spec().output_schema)()
    }
}

/// Deserializes the arguments of `tool`, naming the offending field in the
/// error (`sources[1].path`, `strategy.overlap`).
pub fn parse_args<T: DeserializeOwned>(tool: Tool, args: &Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize::<_, T>(args).map_err(|e| {
        let (path, inner) = refine_error(tool, args, e.path().to_string())
            .unwrap_or_else(|| (e.path().to_string(), e.into_inner().to_string()));
        invalid_args(tool, path, inner)
    })
}

/// [`parse_args`] from the arguments themselves: their strings move into
/// the parsed arguments instead of being copied (a load's inline text may
/// be 100 MB). The errors are the same: a tool with tagged fields, whose
/// errors are refined from the arguments, parses them by reference.
pub fn parse_args_owned<T: DeserializeOwned>(tool: Tool, args: Value) -> Result<T, ToolError> {
    if !tool.spec().tagged.is_empty() {
        return parse_args(tool, &args);
    }
    serde_path_to_error::deserialize::<_, T>(args)
        .map_err(|e| invalid_args(tool, e.path().to_string(), e.into_inner().to_string()))
}

fn invalid_args(tool: Tool, path: String, inner: String) -> ToolError {
    let at = if path == "." {
        String::new()
    } else {
        format!(" at `{path}`")
    };
    ToolError::invalid(format!(
        "invalid arguments for {}{at}: {inner}. See the tool's inputSchema.",
        tool.name()
    ))
    .with("field", path)
}

/// When the failing path is a tagged field of the tool's declaration, the
/// path and reason inside its variant.
fn refine_error(tool: Tool, args: &Value, path: String) -> Option<(String, String)> {
    tool.spec().tagged.iter().find_map(|(field, refine)| {
        let value = match field.strip_suffix("[]") {
            Some(list) => {
                let i: usize = path
                    .strip_prefix(list)?
                    .strip_prefix('[')?
                    .strip_suffix(']')?
                    .parse()
                    .ok()?;
                args.get(list)?.get(i)?
            }
            None if path == *field => args.get(field)?,
            None => return None,
        };
        refine(value).map(|(p, m)| (format!("{path}.{p}"), m))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_name_the_same_tool() {
        for t in Tool::ALL {
            assert_eq!(Tool::from_name(t.name()), Some(t));
            assert_eq!(Tool::from_name(&t.underscore_name()), Some(t));
        }
        assert_eq!(Tool::from_name("rlm.nope"), None);
    }

    #[test]
    fn every_schema_is_an_object_schema() {
        for t in Tool::ALL {
            for s in [t.input_schema(), t.output_schema()] {
                assert_eq!(s["type"], "object", "{}: {s}", t.name());
            }
        }
    }

    #[test]
    fn every_tool_has_its_own_name_and_a_description() {
        let names: std::collections::HashSet<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), Tool::ALL.len());
        for t in Tool::ALL {
            assert!(t.name().starts_with("rlm."), "{}", t.name());
            assert!(!t.description().is_empty(), "{}", t.name());
            assert_eq!(t.spec().session == SessionUse::Creates, !t.names_session());
        }
    }

    #[test]
    fn marker_types_name_their_tool() {
        assert_eq!(<tool::DocsLoad as ToolDef>::TOOL, Tool::DocsLoad);
        assert_eq!(
            <tool::ArtifactGet as ToolDef>::TOOL.name(),
            "rlm.artifact.get"
        );
    }

    #[test]
    fn a_wrong_field_inside_a_tagged_argument_is_named() {
        let args = serde_json::json!({"session_id": "s", "doc_id": "d",
            "strategy": {"type": "fixed", "overlap": "x"}});
        let e = parse_args::<ChunkCreateArgs>(Tool::ChunkCreate, &args).unwrap_err();
        assert_eq!(
            e.context.get("field"),
            Some(&Value::from("strategy.overlap")),
            "{e:?}"
        );
    }

    #[test]
    fn a_bad_source_is_that_sources_error_not_the_calls() {
        let args = serde_json::json!({"session_id": "s", "sources": [
            {"type": "inline", "content": "ok"},
            {"type": "file", "path": 3},
            {"type": "invalid_type", "content": "x"},
            {"type": "inline", "content": "y", "metadata": {"k": 1}},
            "not an object"
        ]});
        let a = parse_args::<DocsLoadArgs>(Tool::DocsLoad, &args).unwrap();
        assert!(matches!(a.sources[0].parsed, Ok(Source::Inline(_))));
        let reasons: Vec<&str> = a.sources[1..]
            .iter()
            .map(|s| s.parsed.as_ref().unwrap_err().as_str())
            .collect();
        assert!(
            reasons[0].starts_with("`path`: invalid type"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("unknown variant `invalid_type`"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].contains("unknown field `metadata`"),
            "{reasons:?}"
        );
        assert!(reasons[3].contains("invalid type"), "{reasons:?}");
        // An entry that is no source reads back as sent (its content put
        // back after the parse), a source as itself, its text whole.
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(
            back["sources"].as_array().unwrap()[1..],
            args["sources"].as_array().unwrap()[1..]
        );
        assert_eq!(back["sources"][0]["type"], "inline");
        assert_eq!(back["sources"][0]["content"], "ok");
        // The same from the arguments themselves (their strings moved).
        let owned = parse_args_owned::<DocsLoadArgs>(Tool::DocsLoad, args).unwrap();
        assert_eq!(serde_json::to_value(&owned).unwrap(), back);
        match &owned.sources[0].parsed {
            Ok(Source::Inline(inline)) => assert_eq!(inline.content, "ok"),
            other => panic!("{other:?}"),
        }
    }

    /// Arguments parsed from themselves fail as those parsed by reference
    /// do, naming the same field.
    #[test]
    fn arguments_parsed_from_themselves_fail_alike() {
        let cases = [
            (
                Tool::DocsLoad,
                serde_json::json!({"session_id": 3, "sources": []}),
            ),
            (Tool::DocsLoad, serde_json::json!({"session_id": "s"})),
            (
                Tool::DocsLoad,
                serde_json::json!({"session_id": "s", "sources": {}}),
            ),
            (
                Tool::SearchQuery,
                serde_json::json!({"session_id": "s", "query": "q", "limit": "ten"}),
            ),
            (
                Tool::ChunkCreate,
                serde_json::json!({"session_id": "s", "doc_id": "d",
                "strategy": {"type": "fixed", "overlap": "x"}}),
            ),
        ];
        for (tool, args) in cases {
            let by_reference = match tool {
                Tool::DocsLoad => parse_args::<DocsLoadArgs>(tool, &args).map(|_| ()),
                Tool::SearchQuery => parse_args::<SearchArgs>(tool, &args).map(|_| ()),
                _ => parse_args::<ChunkCreateArgs>(tool, &args).map(|_| ()),
            };
            let owned = match tool {
                Tool::DocsLoad => parse_args_owned::<DocsLoadArgs>(tool, args.clone()).map(|_| ()),
                Tool::SearchQuery => parse_args_owned::<SearchArgs>(tool, args.clone()).map(|_| ()),
                _ => parse_args_owned::<ChunkCreateArgs>(tool, args.clone()).map(|_| ()),
            };
            let (a, b) = (by_reference.unwrap_err(), owned.unwrap_err());
            assert_eq!(a.message, b.message, "{args}");
            assert_eq!(a.context, b.context, "{args}");
        }
    }

    #[test]
    fn the_sources_schema_is_that_of_a_source() {
        let schema = Tool::DocsLoad.input_schema().to_string();
        for tag in ["inline", "file", "glob", "directory"] {
            assert!(schema.contains(&format!("\"{tag}\"")), "{tag}: {schema}");
        }
    }

    #[test]
    fn sources_reject_unknown_fields_and_types() {
        let ok: Source =
            serde_json::from_value(serde_json::json!({"type": "directory", "path": "x"})).unwrap();
        assert!(matches!(
            ok,
            Source::Directory(DirectorySource {
                recursive: false,
                ..
            })
        ));
        let bad = serde_json::from_value::<Source>(
            serde_json::json!({"type": "file", "path": "x", "recurse": true}),
        );
        assert!(bad.unwrap_err().to_string().contains("recurse"));
        let bad = serde_json::from_value::<Source>(serde_json::json!({"type": "url", "path": "x"}));
        assert!(bad.is_err());
    }

    /// A unit at the top (within nothing) leaves `within` out, and one
    /// without it reads back as within nothing (answers of daemons that
    /// name none).
    #[test]
    fn a_unit_within_nothing_leaves_within_out() {
        let unit = MatchUnit {
            kind: "section".into(),
            name: "Guide".into(),
            line_start: 1,
            line_end: 3,
            start: 0,
            end: 20,
            within: Vec::new(),
        };
        let json = serde_json::to_value(&unit).expect("a unit serializes");
        assert!(json.get("within").is_none(), "{json}");
        let back: MatchUnit = serde_json::from_value(json).expect("and reads back");
        assert_eq!(back, unit);
        let inner = MatchUnit {
            within: vec!["Guide".into()],
            name: "Install".into(),
            ..unit
        };
        let json = serde_json::to_value(&inner).expect("a unit serializes");
        assert_eq!(json["within"], serde_json::json!(["Guide"]));
    }
}
