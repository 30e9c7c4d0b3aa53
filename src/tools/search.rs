//! Arguments and results of `rlm.search.query`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::docs::SpanRef;

/// Search method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMethod {
    #[default]
    Bm25,
    Regex,
    Literal,
}

impl SearchMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMethod::Bm25 => "bm25",
            SearchMethod::Regex => "regex",
            SearchMethod::Literal => "literal",
        }
    }
}

/// Arguments of `rlm.search.query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    pub session_id: String,
    pub query: String,
    /// `bm25` (default), `regex` or `literal`.
    #[serde(default)]
    pub method: Option<SearchMethod>,
    /// Search only these documents.
    #[serde(default)]
    pub doc_ids: Option<Vec<String>>,
    /// Most matches to return (default 10).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Characters of context around each hit (default 200).
    #[serde(default)]
    pub context_chars: Option<u64>,
}

/// One hit of a query term inside a match's context.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Highlight {
    /// Offsets relative to `context`.
    pub start: u64,
    pub end: u64,
    pub term: String,
}

/// One match of `rlm.search.query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SearchMatch {
    pub doc_id: String,
    /// The context window in the document.
    pub span: SpanRef,
    /// Always null: search does not create spans.
    pub span_id: Option<String>,
    /// BM25 score (higher is better); 1.0 for regex and literal.
    pub score: f64,
    pub context: String,
    /// The first hit, relative to `context`.
    pub highlight_start: u64,
    pub highlight_end: u64,
    /// Every hit inside `context`.
    pub highlights: Vec<Highlight>,
    /// The unit of the document the first hit is in: the definition of
    /// code around it, or its Markdown or HTML section; null for other texts, for
    /// code outside any definition, and before any heading.
    #[serde(default)]
    pub unit: Option<MatchUnit>,
}

/// Where a match is: the definition (a function, method, class, impl
/// block, ...) or the section (under a Markdown or HTML heading) around its first
/// hit, to read whole next (`rlm.docs.peek` with `start` and `end`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct MatchUnit {
    /// `definition` or `section`.
    pub kind: String,
    /// The definition's name (`read_and_pack`, `impl Display for Foo`) or
    /// the heading's text (at most 120 characters, then `…`).
    pub name: String,
    /// The unit's lines in the document, 1-based, inclusive.
    pub line_start: u64,
    pub line_end: u64,
    /// The unit in code points of the document: `[start, end)`, from the
    /// start of its first line (its header's, or the first of the doc
    /// comment, attributes or decorators right above it) to the end of its
    /// last line.
    pub start: u64,
    pub end: u64,
    /// The names of the definitions or sections around this one, outermost
    /// first, at most three (the innermost): a method's impl block or
    /// class, the headings above a section. Left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub within: Vec<String>,
}

/// Result of `rlm.search.query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    /// How many matches were found before the limit and the size cap cut any.
    pub total_matches: u64,
    pub truncated: bool,
    pub index_built: bool,
    pub index_built_this_call: bool,
}
