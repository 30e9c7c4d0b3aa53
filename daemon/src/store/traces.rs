//! The `traces` table: one row per tool call, values by hash and length
//! (the engine redacts before it records).

use rusqlite::params;

use super::{Store, StoreError};

/// One call as its trace row keeps it.
#[derive(Debug)]
pub struct TraceRow<'a> {
    pub session_id: Option<&'a str>,
    pub operation: &'a str,
    /// The arguments' JSON text, already redacted.
    pub arguments: &'a str,
    /// `ok` or `error`.
    pub outcome: &'a str,
    pub error_code: Option<&'a str>,
    pub duration_ms: f64,
    pub result_chars: Option<i64>,
    pub result_hash: Option<&'a str>,
    pub created_at: &'a str,
}

impl Store {
    /// Records a call's trace (a write of its own, `synchronous=NORMAL`: a
    /// power cut may lose the last few).
    pub fn record_trace(&self, t: &TraceRow<'_>) -> Result<(), StoreError> {
        self.db.write_small(|tx| {
            tx.prepare_cached(
                "INSERT INTO traces (session_id, operation, arguments, outcome, error_code, duration_ms, result_chars, result_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                t.session_id,
                t.operation,
                t.arguments,
                t.outcome,
                t.error_code,
                t.duration_ms,
                t.result_chars,
                t.result_hash,
                t.created_at
            ])?;
            Ok(())
        })
    }
}
