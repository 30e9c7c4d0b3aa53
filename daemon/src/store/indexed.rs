//! `indexed_texts`: which stored texts the shared search index holds, and
//! under which key. A row is made (`committed = 0`) before a text's passages
//! are added under its key, and marked committed after the index's commit;
//! only committed rows vouch for a text, and only for the index they name
//! (`index_id`, from the index's stamp). Keys come from `AUTOINCREMENT`, so
//! a key is never given to another text, even after gc: a passage's key
//! always names the text it was cut from.

use std::collections::HashMap;

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
    /// (a text it holds is left out), in the order given, one claim for a
    /// text named more than once. Called by the one writer of the index
    /// (under its write lock): a row left uncommitted is an earlier addition
    /// that never finished, and keeps its key.
    ///
    /// Two statements whatever the batch's size, the hashes in their sorted
    /// order ([`hash_list`]), where a lookup and an insert of each text in
    /// turn walked the `(index_id, hash)` index at random with a statement's
    /// setting up each time. A build's first batch waits for its claim
    /// (nothing is indexed before it): that wait went from 142-239 ms to
    /// 7-53 ms on the scale corpus's first batch of 27 415 texts. Within a
    /// claim the new keys follow the hashes' order.
    pub fn claim_index_keys(
        &self,
        index_id: &str,
        hashes: &[&str],
    ) -> Result<Vec<KeyClaim>, StoreError> {
        let (sorted, list) = hash_list(hashes.iter().copied())?;
        self.db.write(|tx| {
            // Each text's row in this index, when it has one: its key, and
            // whether it is committed (`Some`) or was made by this claim (`None`).
            let mut rows: HashMap<String, (u64, Option<bool>)> =
                HashMap::with_capacity(sorted.len());
            let mut find = tx.prepare_cached(CLAIMED_ROWS)?;
            for row in find.query_map(rusqlite::params![index_id, list], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
            })? {
                let (hash, key, committed) = row?;
                rows.insert(hash, (key as u64, Some(committed)));
            }
            let new: Vec<&str> = sorted
                .iter()
                .copied()
                .filter(|h| !rows.contains_key(*h))
                .collect();
            if !new.is_empty() {
                let new_list = json_list(&new)?;
                // `ORDER BY key`: inserted in the list's (sorted) order. Every
                // row is made, or the statement fails: each is returned.
                let mut insert = tx.prepare_cached(
                    "INSERT INTO indexed_texts (index_id, hash) \
                     SELECT ?1, value FROM json_each(?2) ORDER BY key RETURNING hash, key",
                )?;
                for row in insert.query_map(rusqlite::params![index_id, new_list], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })? {
                    let (hash, key) = row?;
                    rows.insert(hash, (key as u64, None));
                }
            }
            // Each row taken once: a text named again finds none.
            let claims = hashes
                .iter()
                .filter_map(|&hash| rows.remove_entry(hash))
                .filter(|(_, (_, committed))| *committed != Some(true))
                .map(|(hash, (key, committed))| KeyClaim {
                    hash,
                    key,
                    // Made by an earlier claim, never committed.
                    replace: committed == Some(false),
                })
                .collect();
            Ok(claims)
        })
    }

    /// Marks these keys' texts held by their index (after its commit), in
    /// one statement.
    pub fn commit_index_keys(&self, keys: &[u64]) -> Result<(), StoreError> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        let list = json_list(&sorted)?;
        self.db.write(|tx| {
            tx.execute(COMMIT_KEYS, [list])?;
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

/// The rows of index `?1` of the hashes listed in `?2` (a JSON array). An
/// `IN` list, not a join with `json_each`: SQLite then looks each listed
/// hash up in the `(index_id, hash)` index, where a join let it read the
/// index's every row and the list again for each (100 and 117 s for a
/// batch of 25 720 texts beside 27 415 claimed; a test reads the plan).
pub(super) const CLAIMED_ROWS: &str = "SELECT t.hash, t.key, t.committed FROM indexed_texts t \
     WHERE t.index_id = ?1 AND t.hash IN (SELECT value FROM json_each(?2))";

/// Commits the rows of the keys listed in `?1` (a JSON array), each found
/// by its key.
pub(super) const COMMIT_KEYS: &str =
    "UPDATE indexed_texts SET committed = 1 WHERE key IN (SELECT value FROM json_each(?1))";

/// These hashes sorted, without repeats, and as the JSON array SQL reads
/// with `json_each`: a batch's rows are then found and written in the
/// order of their indexes, and with one statement.
fn hash_list<'h>(
    hashes: impl Iterator<Item = &'h str>,
) -> Result<(Vec<&'h str>, String), StoreError> {
    let mut sorted: Vec<&str> = hashes.collect();
    sorted.sort_unstable();
    sorted.dedup();
    let list = json_list(&sorted)?;
    Ok((sorted, list))
}

/// `items` as a JSON array, for `json_each`.
fn json_list<T: serde::Serialize>(items: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|e| StoreError::Encode {
        what: "a list for SQL",
        message: e.to_string(),
    })
}
