//! Search: the BM25 passage index (tantivy), how it reads HTML (`markup`),
//! and the regex / literal scanners.

pub mod analyzer;
pub mod bm25;
pub mod markup;
pub mod scan;
