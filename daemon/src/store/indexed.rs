//! `indexed_texts`: which stored texts the shared search index holds, and
//! under which key. A row is made (`committed = 0`) before a text's passages
//! are added under its key, and marked committed after the index's commit;
//! only committed rows vouch for a text, and only for the index they name
//! (`index_id`, from the index's stamp). Keys come from `AUTOINCREMENT`, so
//! a key is never given to another text, even after gc: a passage's key
//! always names the text it was cut from.

use rusqlite::OptionalExtension;

use super::documents::DocRow;
use super::{Store, StoreError};

/// A key for a text about to be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub hash: String,
    pub key: u64,
    /// An earlier addition under this key did not commit its row: whatever
    /// it left in the index goes before the text is added again.
    pub replace: bool,
}

impl Store {
    /// The session's documents in load order, each with its text's key in
    /// index `index_id` when that index holds the text (committed).
    pub fn documents_with_keys(
        &self,
        session_id: &str,
        index_id: &str,
    ) -> Result<Vec<(DocRow, Option<u64>)>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.doc_id, d.seq, d.hash, d.length_chars, t.key FROM documents d \
                 LEFT JOIN indexed_texts t \
                   ON t.index_id = ?2 AND t.hash = d.hash AND t.committed = 1 \
                 WHERE d.session_id = ?1 ORDER BY d.seq",
            )?;
            let rows = st
                .query_map([session_id, index_id], |r| {
                    Ok((
                        DocRow::from_row(r)?,
                        r.get::<_, Option<i64>>(4)?.map(|k| k as u64),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// How many of the session's documents hold a text index `index_id`
    /// does not hold (committed).
    pub fn unindexed_documents(&self, session_id: &str, index_id: &str) -> Result<u64, StoreError> {
        self.db.read(|c| {
            let n: i64 = c
                .prepare_cached(
                    "SELECT count(*) FROM documents d WHERE d.session_id = ?1 AND NOT EXISTS \
                     (SELECT 1 FROM indexed_texts t \
                      WHERE t.index_id = ?2 AND t.hash = d.hash AND t.committed = 1)",
                )?
                .query_row([session_id, index_id], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// The session's documents whose text index `index_id` does not hold
    /// (committed), one per text (its first in load order), each with the
    /// source it was loaded from, in load order.
    pub fn unindexed_texts(
        &self,
        session_id: &str,
        index_id: &str,
    ) -> Result<Vec<(DocRow, String)>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.doc_id, d.seq, d.hash, d.length_chars, d.source FROM documents d \
                 WHERE d.session_id = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM indexed_texts t \
                  WHERE t.index_id = ?2 AND t.hash = d.hash AND t.committed = 1) \
                 ORDER BY d.seq",
            )?;
            let rows = st
                .query_map([session_id, index_id], |r| {
                    Ok((DocRow::from_row(r)?, r.get::<_, String>(4)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut seen = std::collections::HashSet::new();
            Ok(rows
                .into_iter()
                .filter(|(d, _)| seen.insert(d.hash.clone()))
                .collect())
        })
    }

    /// Keys in index `index_id` for those of `hashes` it does not hold yet
    /// (a text it holds is left out), in the order given. Called by the one
    /// writer of the index (under its write lock): a row left uncommitted
    /// is an earlier addition that never finished, and keeps its key.
    pub fn claim_index_keys(
        &self,
        index_id: &str,
        hashes: &[&str],
    ) -> Result<Vec<KeyClaim>, StoreError> {
        self.db.write(|tx| {
            let mut find = tx.prepare_cached(
                "SELECT key, committed FROM indexed_texts WHERE index_id = ?1 AND hash = ?2",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO indexed_texts (index_id, hash) VALUES (?1, ?2) RETURNING key",
            )?;
            let mut claims = Vec::new();
            for &hash in hashes {
                let found: Option<(i64, bool)> = find
                    .query_row([index_id, hash], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let claim = match found {
                    Some((_, true)) => continue,
                    Some((key, false)) => KeyClaim {
                        hash: hash.to_owned(),
                        key: key as u64,
                        replace: true,
                    },
                    None => KeyClaim {
                        hash: hash.to_owned(),
                        key: insert.query_row([index_id, hash], |r| r.get::<_, i64>(0))? as u64,
                        replace: false,
                    },
                };
                claims.push(claim);
            }
            Ok(claims)
        })
    }

    /// Marks these keys' texts held by their index (after its commit).
    pub fn commit_index_keys(&self, keys: &[u64]) -> Result<(), StoreError> {
        self.db.write(|tx| {
            let mut st =
                tx.prepare_cached("UPDATE indexed_texts SET committed = 1 WHERE key = ?1")?;
            for &k in keys {
                st.execute([k as i64])?;
            }
            Ok(())
        })
    }

    /// The keys index `index_id` may hold: its rows, with whether each is
    /// committed.
    pub fn index_keys(&self, index_id: &str) -> Result<Vec<(u64, bool)>, StoreError> {
        self.db.read(|c| {
            Ok(
                c.prepare_cached("SELECT key, committed FROM indexed_texts WHERE index_id = ?1")?
                    .query_map([index_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?,
            )
        })
    }

    /// Forgets the rows of every index but `index_id` (indexes made afresh
    /// since, or of another analysis) and this index's rows of `keys` (their
    /// passages were just deleted). Returns how many rows went.
    pub fn forget_index_rows(&self, index_id: &str, keys: &[u64]) -> Result<u64, StoreError> {
        self.db.write(|tx| {
            let mut n = tx.execute("DELETE FROM indexed_texts WHERE index_id <> ?1", [index_id])?;
            let mut st = tx.prepare_cached("DELETE FROM indexed_texts WHERE key = ?1")?;
            for &k in keys {
                n += st.execute([k as i64])?;
            }
            Ok(n as u64)
        })
    }
}
