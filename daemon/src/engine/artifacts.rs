//! `rlm.artifact.store`, `rlm.artifact.list` and `rlm.artifact.get`: what
//! the model derived, attached to a span or to the session, with provenance.

use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value};

use rlm::tools::{
    ArtifactEntry, ArtifactGetArgs, ArtifactGetResult, ArtifactListArgs, ArtifactListResult,
    ArtifactStoreArgs, ArtifactStoreResult, Provenance, SpanRef,
};
use rlm::{ErrorCode, ToolError};

use super::{Engine, ResponseBudget, SessionRow, now};

/// Artifacts per page of `rlm.artifact.list` at most.
const MAX_LIST_LIMIT: u64 = 10_000;
/// Characters of an artifact type name.
const MAX_TYPE_CHARS: usize = 200;

fn parse_provenance(s: Option<String>) -> Option<Provenance> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

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
        let cap = ResponseBudget::for_response(session).left();
        let size = ResponseBudget::cost(&args.content);
        if size > cap {
            return Err(ToolError::new(
                ErrorCode::TooLarge,
                format!(
                    "artifact content is {size} characters of JSON, more than this session's max_chars_per_response allows ({cap}) for reading it back; store it in several artifacts"
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
        self.inner.store.db.write_durable(|tx| {
            let status: String = tx.query_row("SELECT status FROM sessions WHERE session_id = ?1", [&session.id], |r| r.get(0))?;
            if status != "active" {
                self.load_session(&session.id)?.require_active("rlm.artifact.store")?;
            }
            if let (None, Some(range), Some(sid)) = (&args.span_id, &args.span, &span_id) {
                tx.execute(
                    "INSERT INTO spans (span_id, session_id, doc_id, set_id, idx, start, \"end\", content_hash, created_at) \
                     VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5, NULL, ?6)",
                    params![sid, session.id, range.doc_id, range.start as i64, range.end as i64, created],
                )?;
            }
            tx.execute(
                "INSERT INTO artifacts (artifact_id, session_id, span_id, type, content, provenance, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![artifact_id, session.id, span_id, args.kind, content, provenance, created],
            )?;
            Ok::<_, ToolError>(())
        })?;
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
        let (rows, total) = self.inner.store.db.read(|c| {
            let filter = "session_id = ?1 AND (?2 IS NULL OR span_id = ?2) AND (?3 IS NULL OR type = ?3)";
            let total: i64 = c
                .prepare_cached(&format!("SELECT count(*) FROM artifacts WHERE {filter}"))?
                .query_row(params![session.id, args.span_id, args.kind], |r| r.get(0))?;
            let mut st = c.prepare_cached(&format!(
                "SELECT artifact_id, span_id, type, created_at, provenance FROM artifacts WHERE {filter} ORDER BY seq LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = st
                .query_map(params![session.id, args.span_id, args.kind, limit as i64, offset as i64], |r| {
                    Ok(ArtifactEntry {
                        artifact_id: r.get(0)?,
                        span_id: r.get(1)?,
                        kind: r.get(2)?,
                        created_at: r.get(3)?,
                        provenance: parse_provenance(r.get(4)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, ToolError>((rows, total as u64))
        })?;
        let (artifacts, truncated) = ResponseBudget::for_response(session).take_list(rows);
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
        let row = self.inner.store.db.read(|c| {
            c.prepare_cached(
                "SELECT a.session_id, a.span_id, a.type, a.content, a.provenance, a.created_at, s.doc_id, s.start, s.\"end\" \
                 FROM artifacts a LEFT JOIN spans s ON s.span_id = a.span_id WHERE a.artifact_id = ?1",
            )?
            .query_row([&args.artifact_id], |r| {
                let span = match r.get::<_, Option<String>>(6)? {
                    Some(doc_id) => Some(SpanRef {
                        doc_id,
                        start: r.get::<_, i64>(7)? as u64,
                        end: r.get::<_, i64>(8)? as u64,
                    }),
                    None => None,
                };
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    span,
                ))
            })
            .optional()
            .map_err(ToolError::from)
        })?;
        let not_found = |why: String| {
            ToolError::new(ErrorCode::ArtifactNotFound, why)
                .with("artifact_id", args.artifact_id.clone())
        };
        match row {
            Some((sid, span_id, kind, content, provenance, created_at, span))
                if sid == session.id =>
            {
                let content: Map<String, Value> = serde_json::from_str(&content).map_err(|e| {
                    ToolError::internal(format!("stored artifact content unreadable: {e}"))
                })?;
                Ok(ArtifactGetResult {
                    artifact_id: args.artifact_id,
                    span_id,
                    span,
                    kind,
                    content,
                    provenance: parse_provenance(provenance),
                    created_at,
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
