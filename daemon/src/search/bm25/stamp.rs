//! What a stored index covers and how it was analysed: the [`IndexStamp`] kept as the
//! payload of its tantivy commit, and the analysis [`signature`] it carries. Stored indexes
//! open only while both stay as they are (any other stamp means a rebuild).

use serde::{Deserialize, Serialize};

use super::passages::{PASSAGE_CHARS, PASSAGE_STEP};
use crate::search::analyzer::AnalyzerOptions;

/// Version of the index layout (schema, passages, analysis); part of [`signature`].
pub const INDEX_FORMAT: &str = "v1";

/// The analysis and passage layout of an index, as recorded in its stamp:
/// e.g. `v1;stop=1;stem=0;p=1500/1200`.
pub fn signature(opts: AnalyzerOptions) -> String {
    format!(
        "{INDEX_FORMAT};{};p={PASSAGE_CHARS}/{PASSAGE_STEP}",
        opts.describe()
    )
}

/// The options of a [`signature`] written by this version; None for any other layout.
pub fn parse_signature(sig: &str) -> Option<AnalyzerOptions> {
    let rest = sig.strip_prefix(INDEX_FORMAT)?.strip_prefix(';')?;
    let suffix = format!(";p={PASSAGE_CHARS}/{PASSAGE_STEP}");
    let opts = AnalyzerOptions::parse(rest.strip_suffix(suffix.as_str())?)?;
    (signature(opts) == sig).then_some(opts)
}

/// What an index covers, stored (serde_json) as the payload of its last commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStamp {
    /// The session's document generation the index was built for (the engine's counter).
    pub generation: u64,
    /// How many documents the index holds.
    pub doc_count: u64,
    /// [`signature`] of the analysis and passage layout.
    pub analyzer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let sig = signature(AnalyzerOptions::DEFAULT);
        assert_eq!(sig, "v1;stop=1;stem=0;p=1500/1200");
        assert_eq!(parse_signature(&sig), Some(AnalyzerOptions::DEFAULT));
        let other = AnalyzerOptions {
            stop_words: false,
            stemming: true,
        };
        assert_eq!(parse_signature(&signature(other)), Some(other));
        assert_eq!(parse_signature("v0;stop=1;stem=0;p=1500/1200"), None);
        assert_eq!(parse_signature("v1;stop=1;stem=0;p=1000/800"), None);
        assert_eq!(parse_signature(""), None);
    }
}
