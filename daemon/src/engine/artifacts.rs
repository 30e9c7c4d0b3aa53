//! `rlm.artifact.store`, `rlm.artifact.list` and `rlm.artifact.get`: what
//! the model derived, attached to a span or to the session, with provenance.

use serde_json::{Map, Value};

use rlm::tools::{
    ArtifactEntry, ArtifactGetArgs, ArtifactGetResult, ArtifactListArgs, ArtifactListResult,
    ArtifactStoreArgs, ArtifactStoreResult, SpanRef,
};
use rlm::{ErrorCode, ToolError};

use super::response::CutToFit;
use super::{Engine, ResponseBudget, SessionRow, now};
use crate::store::artifacts::{ArtifactWrite, NewArtifact, NewRangeSpan};

/// Artifacts per page of `rlm.artifact.list` at most.
const MAX_LIST_LIMIT: u64 = 10_000;
/// Characters of an artifact type name.
const MAX_TYPE_CHARS: usize = 200;

impl Engine {
    pub(crate) fn artifact_store(
        &self,
        session: &SessionRow,
        args: ArtifactStoreArgs,
    ) -> Result<ArtifactStoreResult, ToolError> {
        session.require_active("rlm.artifact.store")?;
        if args.kind.trim().is_empty() || args.kind.chars().count() > MAX_TYPE_CHARS {
            return Err(ToolError::invalid(format!(
                "type must be a non-empty name of at most {MAX_TYPE_CHARS} characters (e.g. summary, extraction)"
            ))
            .with("field", "type"));
        }
        let content =
            serde_json::to_string(&args.content).map_err(|e| ToolError::internal(e.to_string()))?;
        let budget = ResponseBudget::for_response(session);
        let cap = budget.left();
        // Both come back in rlm.artifact.get, so both must fit its answer.
        let size =
            budget.cost(&args.content) + args.provenance.as_ref().map_or(0, |p| budget.cost(p));
        if size > cap {
            return Err(ToolError::new(
                ErrorCode::TooLarge,
                format!(
                    "artifact content and provenance weigh {size} characters of JSON (or their estimated tokens' worth), more than this session's max_chars_per_response ({}) and max_tokens_per_response ({}) allow ({cap}) for reading them back; store it in several artifacts or keep less in provenance",
                    session.config.max_chars_per_response,
                    session.config.max_tokens_per_response
                ),
            )
            .with("chars", size as u64)
            .with("limit", cap as u64));
        }
        let provenance = args
            .provenance
            .as_ref()
            .map(|p| serde_json::to_string(p).unwrap_or_default());
        // Checked before the write so the error names what was wrong.
        let span_id = match (&args.span_id, &args.span) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "give either span_id (an existing span) or span (offsets that make a new one), not both",
                )
                .with("field", "span"));
            }
            (Some(id), None) => Some(self.span(session, id)?.span_id),
            (None, Some(range)) => Some(self.span_for_range(session, range)?),
            (None, None) => None,
        };
        let artifact_id = uuid::Uuid::new_v4().to_string();
        let created = now();
        let new_span = match (&args.span_id, &args.span, &span_id) {
            (None, Some(range), Some(sid)) => Some(NewRangeSpan {
                span_id: sid,
                doc_id: &range.doc_id,
                start: range.start,
                end: range.end,
            }),
            _ => None,
        };
        let written = self.inner.store.store_artifact(
            &NewArtifact {
                artifact_id: &artifact_id,
                session_id: &session.id,
                span_id: span_id.as_deref(),
                kind: &args.kind,
                content: &content,
                provenance: provenance.as_deref(),
                created_at: &created,
            },
            new_span.as_ref(),
        )?;
        if let ArtifactWrite::Closed(current) = written {
            return Err(current.closed_error("rlm.artifact.store"));
        }
        Ok(ArtifactStoreResult {
            artifact_id,
            span_id,
        })
    }

    /// Checks a range for a new span and returns the id it will have.
    fn span_for_range(&self, session: &SessionRow, range: &SpanRef) -> Result<String, ToolError> {
        let doc = self.doc(session, &range.doc_id)?;
        if range.start > range.end || range.end > doc.length_chars {
            return Err(ToolError::invalid(format!(
                "span [{}, {}) is not inside document {} (length {} characters); use 0 <= start <= end <= {}",
                range.start, range.end, doc.doc_id, doc.length_chars, doc.length_chars
            ))
            .with("field", "span")
            .with("total_length", doc.length_chars));
        }
        Ok(uuid::Uuid::new_v4().to_string())
    }

    pub(crate) fn artifact_list(
        &self,
        session: &SessionRow,
        args: ArtifactListArgs,
    ) -> Result<ArtifactListResult, ToolError> {
        let limit = args.limit.unwrap_or(MAX_LIST_LIMIT);
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(ToolError::invalid(format!(
                "limit {limit} is out of range; use 1 to {MAX_LIST_LIMIT}"
            ))
            .with("field", "limit"));
        }
        let offset = args.offset.unwrap_or(0);
        if let Some(id) = &args.span_id {
            self.span(session, id)?;
        }
        let (rows, total) = self.inner.store.list_artifacts(
            &session.id,
            args.span_id.as_deref(),
            args.kind.as_deref(),
            limit,
            offset,
        )?;
        let (artifacts, truncated) = ResponseBudget::for_response(session).take_page(rows);
        let next = offset + artifacts.len() as u64;
        Ok(ArtifactListResult {
            artifacts,
            total,
            truncated,
            next_offset: (next < total).then_some(next),
        })
    }

    pub(crate) fn artifact_get(
        &self,
        session: &SessionRow,
        args: ArtifactGetArgs,
    ) -> Result<ArtifactGetResult, ToolError> {
        let row = self.inner.store.artifact(&args.artifact_id)?;
        let not_found = |why: String| {
            ToolError::new(ErrorCode::ArtifactNotFound, why)
                .with("artifact_id", args.artifact_id.clone())
        };
        match row {
            Some(row) if row.session_id == session.id => {
                let content: Map<String, Value> =
                    serde_json::from_str(&row.content).map_err(|e| {
                        ToolError::internal(format!("stored artifact content unreadable: {e}"))
                    })?;
                Ok(ArtifactGetResult {
                    artifact_id: args.artifact_id,
                    span_id: row.span_id,
                    span: row.span,
                    kind: row.kind,
                    content,
                    provenance: row.provenance,
                    created_at: row.created_at,
                })
            }
            Some(_) => Err(not_found(format!(
                "artifact {} belongs to another session, not to session {}; an artifact is reachable only through its own session",
                args.artifact_id, session.id
            ))),
            None => Err(not_found(format!(
                "session {} has no artifact {:?}; use rlm.artifact.list to see its artifact ids",
                session.id, args.artifact_id
            ))),
        }
    }
}

impl CutToFit for ArtifactEntry {
    /// Leaves out `provenance` (the one unbounded field; `rlm.artifact.get`
    /// returns it).
    fn cut_to(&mut self, _room: usize, _budget: &ResponseBudget) {
        self.provenance = None;
        self.truncated = true;
    }
}
