//! Search: the BM25 passage index (tantivy) and the regex / literal scanners.

pub mod analyzer;
pub mod bm25;
pub mod scan;
