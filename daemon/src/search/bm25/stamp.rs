//! Which stored index this is and how it was analysed: the [`IndexStamp`] kept as the
//! payload of its tantivy commits, and the analysis [`signature`] it carries. A stored index
//! is used only while its signature is this build's (any other means a new index).

use serde::{Deserialize, Serialize};

use super::index::{HEADER_WEIGHT, MAX_ENCLOSING_HEADERS};
use super::passages::{MIN_UNIT_CHARS, PASSAGE_CHARS, PASSAGE_SNAP};
use crate::search::analyzer::AnalyzerOptions;

/// Version of the index layout (schema, passages, analysis); part of [`signature`].
pub const INDEX_FORMAT: &str = "v6";

/// The analysis and passage layout of an index, as recorded in its stamp:
/// e.g. `v6;stop=1;stem=0;p=1500-600-600;h=3-3` (v5 cut Markdown files and HTML
/// pages as any other text, not at their headings; v4 cut windows only, not at
/// definitions, and indexed no headers again; v3 indexed HTML pages'
/// markup too; v2 was passages of 1500 chars every 1200).
pub fn signature(opts: AnalyzerOptions) -> String {
    format!(
        "{INDEX_FORMAT};{};p={PASSAGE_CHARS}-{PASSAGE_SNAP}-{MIN_UNIT_CHARS};h={HEADER_WEIGHT}-{MAX_ENCLOSING_HEADERS}",
        opts.describe()
    )
}

/// The options of a [`signature`] written by this version; None for any other layout.
pub fn parse_signature(sig: &str) -> Option<AnalyzerOptions> {
    let rest = sig.strip_prefix(INDEX_FORMAT)?.strip_prefix(';')?;
    let suffix = format!(
        ";p={PASSAGE_CHARS}-{PASSAGE_SNAP}-{MIN_UNIT_CHARS};h={HEADER_WEIGHT}-{MAX_ENCLOSING_HEADERS}"
    );
    let opts = AnalyzerOptions::parse(rest.strip_suffix(suffix.as_str())?)?;
    (signature(opts) == sig).then_some(opts)
}

/// Which index this is and how it analyses, stored (serde_json) as the payload of every
/// commit. The store records which texts are indexed *in which index* (`index_id`): an
/// index made afresh (its folder damaged or removed) gets a new id, so no record of an
/// earlier one ever vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStamp {
    /// Random, given when the index is created.
    pub index_id: String,
    /// [`signature`] of the analysis and passage layout.
    pub analyzer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let sig = signature(AnalyzerOptions::DEFAULT);
        assert_eq!(sig, "v6;stop=1;stem=0;p=1500-600-600;h=3-3");
        assert_eq!(parse_signature(&sig), Some(AnalyzerOptions::DEFAULT));
        let other = AnalyzerOptions {
            stop_words: false,
            stemming: true,
        };
        assert_eq!(parse_signature(&signature(other)), Some(other));
        // An index of an older layout is not ours: it is made afresh.
        assert_eq!(parse_signature("v2;stop=1;stem=0;p=1500/1200"), None);
        assert_eq!(
            parse_signature("v6;stop=1;stem=0;p=1000-400-600;h=3-3"),
            None
        );
        assert_eq!(
            parse_signature("v6;stop=1;stem=0;p=1500-600-600;h=1-3"),
            None
        );
        assert_eq!(
            parse_signature("v5;stop=1;stem=0;p=1500-600-600;h=3-3"),
            None
        );
        assert_eq!(parse_signature("v4;stop=1;stem=0;p=1500-600"), None);
        assert_eq!(parse_signature("v3;stop=1;stem=0;p=1500-600"), None);
        assert_eq!(parse_signature(""), None);
    }
}
