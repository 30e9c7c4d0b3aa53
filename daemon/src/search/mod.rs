//! Search: the BM25 passage index (tantivy), how it reads HTML (`markup`),
//! the regex / literal scanners, and the unit (definition, section) a
//! match fell in (`units`).

pub mod analyzer;
pub mod bm25;
pub mod markup;
pub mod scan;
pub mod units;
