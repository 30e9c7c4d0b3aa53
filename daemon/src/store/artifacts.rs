//! The `artifacts` table: what a model derived, attached to a session or a
//! span, with its provenance; storing one (with the span it makes, if any)
//! is one durable transaction.

use rusqlite::{OptionalExtension, params};

use rlm::tools::{ArtifactEntry, Provenance, SpanRef};

use super::sessions::{SessionRow, closed_in};
use super::{Store, StoreError};

/// An artifact to store.
#[derive(Debug)]
pub struct NewArtifact<'a> {
    pub artifact_id: &'a str,
    pub session_id: &'a str,
    pub span_id: Option<&'a str>,
    pub kind: &'a str,
    /// The content's JSON text.
    pub content: &'a str,
    /// The provenance's JSON text.
    pub provenance: Option<&'a str>,
    pub created_at: &'a str,
}

/// A span the artifact's store makes from offsets (`span_id` of the artifact).
#[derive(Debug)]
pub struct NewRangeSpan<'a> {
    pub span_id: &'a str,
    pub doc_id: &'a str,
    pub start: u64,
    pub end: u64,
}

/// What storing an artifact found.
#[derive(Debug)]
pub enum ArtifactWrite {
    Stored,
    /// The session no longer takes changes.
    Closed(Box<SessionRow>),
}

/// An artifact as `rlm.artifact.get` reads it.
#[derive(Debug)]
pub struct ArtifactRow {
    pub session_id: String,
    pub span_id: Option<String>,
    /// The span's range, when the artifact is attached to one.
    pub span: Option<SpanRef>,
    pub kind: String,
    /// The content's JSON text.
    pub content: String,
    pub provenance: Option<Provenance>,
    pub created_at: String,
}

/// A stored provenance, or None when absent or unreadable.
fn parse_provenance(s: Option<String>) -> Option<Provenance> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

impl Store {
    /// Stores an artifact, and first the span it makes (if any), durably in
    /// one transaction, if the session is still active.
    pub fn store_artifact(
        &self,
        artifact: &NewArtifact<'_>,
        new_span: Option<&NewRangeSpan<'_>>,
    ) -> Result<ArtifactWrite, StoreError> {
        let a = artifact;
        self.db.write_durable(|tx| {
            if let Some(closed) = closed_in(tx, a.session_id)? {
                return Ok(ArtifactWrite::Closed(Box::new(closed)));
            }
            if let Some(s) = new_span {
                tx.execute(
                    "INSERT INTO spans (span_id, session_id, doc_id, set_id, idx, start, \"end\", content_hash, created_at) \
                     VALUES (?1, ?2, ?3, NULL, NULL, ?4, ?5, NULL, ?6)",
                    params![s.span_id, a.session_id, s.doc_id, s.start as i64, s.end as i64, a.created_at],
                )?;
            }
            tx.execute(
                "INSERT INTO artifacts (artifact_id, session_id, span_id, type, content, provenance, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![a.artifact_id, a.session_id, a.span_id, a.kind, a.content, a.provenance, a.created_at],
            )?;
            Ok(ArtifactWrite::Stored)
        })
    }

    /// A page of a session's artifacts in store order, optionally only those
    /// of one span and/or one type, and how many match in all.
    pub fn list_artifacts(
        &self,
        session_id: &str,
        span_id: Option<&str>,
        kind: Option<&str>,
        limit: u64,
        offset: u64,
    ) -> Result<(Vec<ArtifactEntry>, u64), StoreError> {
        self.db.read(|c| {
            let filter = "session_id = ?1 AND (?2 IS NULL OR span_id = ?2) AND (?3 IS NULL OR type = ?3)";
            let total: i64 = c
                .prepare_cached(&format!("SELECT count(*) FROM artifacts WHERE {filter}"))?
                .query_row(params![session_id, span_id, kind], |r| r.get(0))?;
            let mut st = c.prepare_cached(&format!(
                "SELECT artifact_id, span_id, type, created_at, provenance FROM artifacts WHERE {filter} ORDER BY seq LIMIT ?4 OFFSET ?5"
            ))?;
            let rows = st
                .query_map(
                    params![session_id, span_id, kind, limit as i64, offset as i64],
                    |r| {
                        Ok(ArtifactEntry {
                            artifact_id: r.get(0)?,
                            span_id: r.get(1)?,
                            kind: r.get(2)?,
                            created_at: r.get(3)?,
                            provenance: parse_provenance(r.get(4)?),
                            truncated: false,
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rows, total as u64))
        })
    }

    /// An artifact by id, whichever session it belongs to, with its span's range.
    pub fn artifact(&self, artifact_id: &str) -> Result<Option<ArtifactRow>, StoreError> {
        self.db.read(|c| {
            c.prepare_cached(
                "SELECT a.session_id, a.span_id, a.type, a.content, a.provenance, a.created_at, s.doc_id, s.start, s.\"end\" \
                 FROM artifacts a LEFT JOIN spans s ON s.span_id = a.span_id WHERE a.artifact_id = ?1",
            )?
            .query_row([artifact_id], |r| {
                let span = match r.get::<_, Option<String>>(6)? {
                    Some(doc_id) => Some(SpanRef {
                        doc_id,
                        start: r.get::<_, i64>(7)? as u64,
                        end: r.get::<_, i64>(8)? as u64,
                    }),
                    None => None,
                };
                Ok(ArtifactRow {
                    session_id: r.get(0)?,
                    span_id: r.get(1)?,
                    kind: r.get(2)?,
                    content: r.get(3)?,
                    provenance: parse_provenance(r.get(4)?),
                    created_at: r.get(5)?,
                    span,
                })
            })
            .optional()
            .map_err(StoreError::from)
        })
    }
}
