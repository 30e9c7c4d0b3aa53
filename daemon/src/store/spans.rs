//! The `chunk_sets` and `spans` tables: a document's chunkings (one set of
//! spans per strategy, reused as a cache) and single spans, and what an id
//! that names no span of a session names instead.

use rusqlite::{OptionalExtension, params};

use super::sessions::{SessionRow, closed_in};
use super::{SessionLock, Store, StoreError};

/// A span row.
#[derive(Debug, Clone)]
pub struct SpanRow {
    pub span_id: String,
    pub session_id: String,
    pub doc_id: String,
    pub start: u64,
    pub end: u64,
}

/// One span of a chunking to create, in order.
#[derive(Debug)]
pub struct NewChunkSpan<'a> {
    pub start: u64,
    pub end: u64,
    pub content_hash: &'a str,
}

/// What creating a chunking found.
#[derive(Debug)]
pub enum Chunking {
    /// Stored as this set, with its spans.
    Created(i64),
    /// The session no longer takes changes (closed while the lock was awaited).
    Closed(Box<SessionRow>),
}

/// A span of a chunking, as a page of `rlm.chunk.create` lists it.
#[derive(Debug)]
pub struct ChunkPageRow {
    pub span_id: String,
    pub index: u64,
    pub start: u64,
    pub end: u64,
    pub content_hash: Option<String>,
}

/// What an id that is not a span of a session is in that session.
#[derive(Debug)]
pub enum IdKind {
    /// A document, with its source.
    Document(String),
    Artifact,
    Unknown,
}

impl Store {
    /// The newest chunking of this document with this strategy (its set id
    /// and span count), if any.
    pub fn find_chunking(
        &self,
        session_id: &str,
        doc_id: &str,
        strategy: &str,
    ) -> Result<Option<(i64, u64)>, StoreError> {
        self.db.read(|c| {
            c.prepare_cached(
                "SELECT set_id, total_spans FROM chunk_sets WHERE session_id = ?1 AND doc_id = ?2 AND strategy = ?3 \
                 ORDER BY set_id DESC LIMIT 1",
            )?
            .query_row(params![session_id, doc_id, strategy], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })
            .optional()
            .map_err(StoreError::from)
        })
    }

    /// Stores a chunking and all its spans (durably) in one transaction, if
    /// the session is still active. Only under the session's lock (`_held`).
    pub fn create_chunking(
        &self,
        _held: &SessionLock,
        session_id: &str,
        doc_id: &str,
        strategy: &str,
        spans: &[NewChunkSpan<'_>],
        created_at: &str,
    ) -> Result<Chunking, StoreError> {
        self.db.write_durable(|tx| {
            if let Some(closed) = closed_in(tx, session_id)? {
                return Ok(Chunking::Closed(Box::new(closed)));
            }
            tx.execute(
                "INSERT INTO chunk_sets (session_id, doc_id, strategy, total_spans, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![session_id, doc_id, strategy, spans.len() as i64, created_at],
            )?;
            let set_id = tx.last_insert_rowid();
            let mut put = tx.prepare_cached(
                "INSERT INTO spans (span_id, session_id, doc_id, set_id, idx, start, \"end\", content_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (i, s) in spans.iter().enumerate() {
                put.execute(params![
                    // Time-ordered, like documents' ids (`load::commit_load`).
                    uuid::Uuid::now_v7().to_string(),
                    session_id,
                    doc_id,
                    set_id,
                    i as i64,
                    s.start as i64,
                    s.end as i64,
                    s.content_hash,
                    created_at
                ])?;
            }
            Ok(Chunking::Created(set_id))
        })
    }

    /// Spans of a chunking from index `offset` on, at most `limit`, in order.
    pub fn chunking_page(
        &self,
        set_id: i64,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<ChunkPageRow>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT span_id, idx, start, \"end\", content_hash FROM spans WHERE set_id = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
            )?;
            let rows = st
                .query_map(
                    params![set_id, offset as i64, limit.min(i64::MAX as u64) as i64],
                    |r| {
                        Ok(ChunkPageRow {
                            span_id: r.get(0)?,
                            index: r.get::<_, i64>(1)? as u64,
                            start: r.get::<_, i64>(2)? as u64,
                            end: r.get::<_, i64>(3)? as u64,
                            content_hash: r.get(4)?,
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// A span by id, whichever session it belongs to.
    pub fn span(&self, span_id: &str) -> Result<Option<SpanRow>, StoreError> {
        self.db.read(|c| {
            c.prepare_cached(
                "SELECT span_id, session_id, doc_id, start, \"end\" FROM spans WHERE span_id = ?1",
            )?
            .query_row([span_id], |r| {
                Ok(SpanRow {
                    span_id: r.get(0)?,
                    session_id: r.get(1)?,
                    doc_id: r.get(2)?,
                    start: r.get::<_, i64>(3)? as u64,
                    end: r.get::<_, i64>(4)? as u64,
                })
            })
            .optional()
            .map_err(StoreError::from)
        })
    }

    /// Whether `id` is a document or an artifact of the session.
    pub fn id_kind(&self, session_id: &str, id: &str) -> Result<IdKind, StoreError> {
        self.db.read(|c| {
            let doc: Option<String> = c
                .prepare_cached(
                    "SELECT source FROM documents WHERE doc_id = ?1 AND session_id = ?2",
                )?
                .query_row([id, session_id], |r| r.get(0))
                .optional()?;
            let artifact = c
                .prepare_cached(
                    "SELECT 1 FROM artifacts WHERE artifact_id = ?1 AND session_id = ?2",
                )?
                .exists([id, session_id])?;
            Ok(match (doc, artifact) {
                (Some(source), _) => IdKind::Document(source),
                (None, true) => IdKind::Artifact,
                _ => IdKind::Unknown,
            })
        })
    }
}
