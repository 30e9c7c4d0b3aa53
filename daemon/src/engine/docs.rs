//! `rlm.docs.list` and `rlm.docs.peek`, and finding a session's documents
//! (`rlm.docs.load` is in `load/`).

use rlm::tools::{DocEntry, DocsListArgs, DocsListResult, DocsPeekArgs, DocsPeekResult, SpanRef};
use rlm::{ErrorCode, ToolError};

use super::integrity::check_read;
use super::response::CutToFit;
use super::{Engine, ResponseBudget, SessionRow};
pub(crate) use crate::store::documents::DocRow;
use crate::store::sha256_hex;

/// Documents per page of `rlm.docs.list` at most.
const MAX_LIST_LIMIT: u64 = 10_000;

impl Engine {
    /// Finds a document of this session, or says why not.
    pub(crate) fn doc(&self, session: &SessionRow, doc_id: &str) -> Result<DocRow, ToolError> {
        let row = self.inner.store.document(doc_id)?;
        match row {
            Some((d, sid)) if sid == session.id => Ok(d),
            Some(_) => Err(ToolError::new(
                ErrorCode::DocumentNotFound,
                format!(
                    "document {doc_id} belongs to another session, not to session {}; use rlm.docs.list on this session to see its documents",
                    session.id
                ),
            )
            .with("doc_id", doc_id.to_owned())),
            None => Err(ToolError::new(
                ErrorCode::DocumentNotFound,
                format!(
                    "session {} has no document {doc_id:?}; use rlm.docs.list to see its doc_ids",
                    session.id
                ),
            )
            .with("doc_id", doc_id.to_owned())),
        }
    }

    /// Every document of a session in load order.
    pub(crate) fn docs_of(&self, session_id: &str) -> Result<Vec<DocRow>, ToolError> {
        Ok(self.inner.store.documents_of(session_id)?)
    }

    pub(crate) fn docs_list(
        &self,
        session: &SessionRow,
        args: DocsListArgs,
    ) -> Result<DocsListResult, ToolError> {
        let limit = args.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(ToolError::invalid(format!(
                "limit {limit} is out of range; use 1 to {MAX_LIST_LIMIT}"
            ))
            .with("field", "limit"));
        }
        let offset = args.offset.unwrap_or(0);
        let rows = self
            .inner
            .store
            .list_documents(&session.id, limit, offset)?;
        let (documents, truncated) = ResponseBudget::for_response(session).take_page(rows);
        let total = session.document_count;
        let next = offset + documents.len() as u64;
        let has_more = next < total;
        Ok(DocsListResult {
            documents,
            total,
            has_more,
            next_offset: has_more.then_some(next),
            truncated,
        })
    }

    pub(crate) fn docs_peek(
        &self,
        session: &SessionRow,
        args: DocsPeekArgs,
    ) -> Result<DocsPeekResult, ToolError> {
        let doc = self.doc(session, &args.doc_id)?;
        let total = doc.length_chars;
        let start = args.start.unwrap_or(0);
        let end = args.end.unwrap_or(-1);
        if start < 0 || start as u64 > total {
            return Err(ToolError::invalid(format!(
                "start {start} is outside document {} (length {total} characters); start must be in 0..={total}",
                doc.doc_id
            ))
            .with("total_length", total)
            .with("field", "start"));
        }
        let end = if end == -1 { total as i64 } else { end };
        if end < start || end as u64 > total {
            return Err(ToolError::invalid(format!(
                "end {end} is outside document {} (length {total} characters); end must be in {start}..={total}, or -1 for the end",
                doc.doc_id
            ))
            .with("total_length", total)
            .with("field", "end"));
        }
        let text = self.text_of(&doc)?;
        let wanted = text.slice(start as u64, end as u64);
        let budget = ResponseBudget::for_response(session);
        let (content, truncated) = budget.cut_text(
            wanted,
            session.config.max_chars_per_peek as usize,
            budget.left(),
        );
        let returned_end = start as u64 + content.chars().count() as u64;
        let content = content.to_owned();
        check_read(&self.inner.store, &doc, &text)?;
        Ok(DocsPeekResult {
            content_hash: sha256_hex(content.as_bytes()),
            content,
            span: SpanRef {
                doc_id: doc.doc_id,
                start: start as u64,
                end: returned_end,
            },
            truncated,
            total_length: total,
        })
    }
}

impl CutToFit for DocEntry {
    /// Cuts `source` (a path or an inline name, the one unbounded field).
    fn cut_to(&mut self, room: usize, budget: &ResponseBudget) {
        let source = std::mem::take(&mut self.source);
        self.truncated = true;
        let rest = budget.cost(self);
        let (kept, _) = budget.cut_text(&source, usize::MAX, room.saturating_sub(rest));
        self.source = kept.to_owned();
    }
}
