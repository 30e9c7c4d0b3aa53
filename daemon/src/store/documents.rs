//! The `documents` and `blobs` tables: a session's documents (append-only,
//! numbered by `seq`), where each stored text lies in which pack, and the
//! one durable commit of a load.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use rlm::tools::DocEntry;

use super::files::{FileIdentity, record_file};
use super::sessions::{SessionRow, SessionStatus, session_in};
use super::{SessionLock, Store, StoreError};
use crate::text::TextShape;

/// A document of a session as the tools need it.
#[derive(Debug, Clone)]
pub struct DocRow {
    pub doc_id: String,
    pub seq: u64,
    pub hash: String,
    pub length_chars: u64,
}

impl DocRow {
    pub(super) const COLUMNS: &'static str = "doc_id, seq, hash, length_chars";

    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRow> {
        Ok(DocRow {
            doc_id: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            hash: r.get(2)?,
            length_chars: r.get::<_, i64>(3)? as u64,
        })
    }
}

/// Name extensions of prose: plain text and the lightweight markups.
const PROSE_EXTENSIONS: &[&str] = &[
    "txt", "text", "md", "markdown", "mdx", "rst", "adoc", "asciidoc", "org", "tex", "textile",
];

/// Whether a document loaded under `source` (a path, an inline text's name,
/// or `inline`) is prose: its name has one of [`PROSE_EXTENSIONS`] (any
/// case) or none (`README`, `LICENSE`, an inline text). Code, HTML and data
/// files are not. The store counts each session's prose characters
/// (`SessionRow::prose_chars`).
pub fn is_prose_source(source: &str) -> bool {
    let name = source.rsplit(['/', '\\']).next().unwrap_or(source);
    match name.rsplit_once('.') {
        None => true,
        Some((_, ext)) => PROSE_EXTENSIONS.iter().any(|p| p.eq_ignore_ascii_case(ext)),
    }
}

/// A document a load adds.
#[derive(Debug)]
pub struct NewDocument<'a> {
    pub doc_id: &'a str,
    pub hash: &'a str,
    pub source: &'a str,
    pub length_bytes: u64,
    pub shape: &'a TextShape,
    pub tokens_est: u64,
    /// Where this load's pack holds the text; None when the store already had it.
    pub offset: Option<u64>,
    /// The file as this load read it, recorded so that the next load of
    /// the same unchanged file need not read it (`files.rs`); None for
    /// inline texts and for files whose text was reused without a read.
    pub file: Option<FileRead>,
}

/// A file's identity when a load read it, and the clock when the read began.
#[derive(Debug, Clone, Copy)]
pub struct FileRead {
    pub identity: FileIdentity,
    pub read_at_ns: i64,
}

/// The store's count of changes that can take a stored text from a load
/// (a `blobs` row deleted or marked damaged; kept by triggers, migration
/// 8), as [`Store::blob_removals`] read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRemovals(i64);

impl BlobRemovals {
    fn in_store(c: &Connection) -> rusqlite::Result<BlobRemovals> {
        c.query_row(
            "SELECT generation FROM blob_removals WHERE id = 1",
            [],
            |r| r.get(0).map(BlobRemovals),
        )
    }
}

/// What the commit of a load found.
#[derive(Debug)]
pub enum LoadCommit {
    /// The documents are in, with the next `seq` numbers from `first_seq`,
    /// and the session at `generation` (bumped when any came).
    Committed { first_seq: u64, generation: u64 },
    /// The session no longer takes changes (closed while the files were read).
    Closed(Box<SessionRow>),
    /// A text placed in a pack came without the pack's name: nothing was written.
    NoPack,
    /// gc removed, after the load looked, a text the load found already
    /// stored (these hashes), or the load's own pack: nothing was written.
    Collected(Vec<String>),
}

/// Where a stored text lies.
#[derive(Debug)]
pub(super) struct BlobLocation {
    pub pack: String,
    pub offset: i64,
    pub length_bytes: i64,
    pub length_chars: i64,
    pub checkpoints: Option<Vec<u8>>,
}

/// Where the `blobs` table says the text of `hash` lies.
pub(super) fn blob_in(conn: &Connection, hash: &str) -> rusqlite::Result<Option<BlobLocation>> {
    conn.prepare_cached(
        "SELECT pack, offset, length_bytes, length_chars, checkpoints FROM blobs WHERE hash = ?1",
    )?
    .query_row([hash], |r| {
        Ok(BlobLocation {
            pack: r.get(0)?,
            offset: r.get(1)?,
            length_bytes: r.get(2)?,
            length_chars: r.get(3)?,
            checkpoints: r.get(4)?,
        })
    })
    .optional()
}

impl Store {
    /// A document by id, with the session it belongs to.
    pub fn document(&self, doc_id: &str) -> Result<Option<(DocRow, String)>, StoreError> {
        self.db.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {}, session_id FROM documents WHERE doc_id = ?1",
                DocRow::COLUMNS
            ))?
            .query_row([doc_id], |r| {
                Ok((DocRow::from_row(r)?, r.get::<_, String>(4)?))
            })
            .optional()
            .map_err(StoreError::from)
        })
    }

    /// The source a document was loaded from (its path, or how inline
    /// content is named), to name it in an error.
    pub fn document_source(&self, doc_id: &str) -> Result<Option<String>, StoreError> {
        self.db.read(|c| {
            c.prepare_cached("SELECT source FROM documents WHERE doc_id = ?1")?
                .query_row([doc_id], |r| r.get(0))
                .optional()
                .map_err(StoreError::from)
        })
    }

    /// The documents of a session whose text lies in one of `packs`, or is
    /// known damaged (its blob marked by [`Store::forget_blob`]): `(doc_id,
    /// source)` in load order.
    pub fn documents_in_packs(
        &self,
        session_id: &str,
        packs: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.doc_id, d.source, CASE WHEN b.offset >= 0 THEN b.pack END \
                 FROM documents d LEFT JOIN blobs b ON b.hash = d.hash \
                 WHERE d.session_id = ?1 ORDER BY d.seq",
            )?;
            let rows = st
                .query_map([session_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?
                .filter_map(|row| match row {
                    Ok((_, _, Some(p))) if !packs.contains(&p) => None,
                    Ok((d, s, _)) => Some(Ok((d, s))),
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Marks a stored copy found damaged (only that copy: the row must still
    /// name this pack and offset) by setting its offset to -1 (`DAMAGED`):
    /// the row stays, since documents name its hash, but a load of the same
    /// text no longer finds it "already stored" and stores it afresh in its
    /// own pack (`commit_load` replaces a damaged row). The documents that
    /// name the hash fail as damaged until then, and read it again once it is.
    pub fn forget_blob(&self, hash: &str, pack: &str, offset: i64) -> Result<(), StoreError> {
        self.db.write_durable(|tx| {
            tx.execute(
                "UPDATE blobs SET offset = -1 WHERE hash = ?1 AND pack = ?2 AND offset = ?3",
                params![hash, pack, offset],
            )?;
            Ok(())
        })
    }

    /// Marks damaged every text of a pack that lies past `len` bytes (the
    /// pack was cut short to that size), as [`Store::forget_blob`] does one.
    pub fn forget_blobs_past(&self, pack: &str, len: u64) -> Result<usize, StoreError> {
        self.db.write_durable(|tx| {
            Ok(tx.execute(
                "UPDATE blobs SET offset = -1 \
                 WHERE pack = ?1 AND length_bytes > 0 AND offset >= 0 AND offset + length_bytes > ?2",
                params![pack, len as i64],
            )?)
        })
    }

    /// Every document of a session in load order.
    pub fn documents_of(&self, session_id: &str) -> Result<Vec<DocRow>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {} FROM documents WHERE session_id = ?1 ORDER BY seq",
                DocRow::COLUMNS
            ))?;
            let rows = st
                .query_map([session_id], DocRow::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// The session's documents at these load positions (`seq`), each with
    /// its source, in the order asked; a position with no document is left
    /// out.
    pub fn documents_at(
        &self,
        session_id: &str,
        seqs: &[u64],
    ) -> Result<Vec<(DocRow, String)>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {}, source FROM documents WHERE session_id = ?1 AND seq = ?2",
                DocRow::COLUMNS
            ))?;
            let mut out = Vec::with_capacity(seqs.len());
            for &seq in seqs {
                if let Some(d) = st
                    .query_row(rusqlite::params![session_id, seq as i64], |r| {
                        Ok((DocRow::from_row(r)?, r.get(4)?))
                    })
                    .optional()?
                {
                    out.push(d);
                }
            }
            Ok(out)
        })
    }

    /// A page of a session's documents in load order, with their span counts.
    pub fn list_documents(
        &self,
        session_id: &str,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<DocEntry>, StoreError> {
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT d.doc_id, d.hash, d.source, d.length_chars, d.length_tokens_est, \
                 (SELECT count(*) FROM spans s WHERE s.doc_id = d.doc_id) \
                 FROM documents d WHERE d.session_id = ?1 ORDER BY d.seq LIMIT ?2 OFFSET ?3",
            )?;
            let rows = st
                .query_map(params![session_id, limit as i64, offset as i64], |r| {
                    Ok(DocEntry {
                        doc_id: r.get(0)?,
                        content_hash: r.get(1)?,
                        source: r.get(2)?,
                        length_chars: r.get::<_, i64>(3)? as u64,
                        length_tokens_est: r.get::<_, i64>(4)? as u64,
                        span_count: r.get::<_, i64>(5)? as u64,
                        truncated: false,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Which of these hashes the `blobs` table lists: their texts are known
    /// complete (asked of SQLite, never of the file system). Each one found
    /// is *claimed*: its `created_at` becomes `now`, so gc leaves its row
    /// alone for its grace period while this load runs (gc deletes only
    /// rows claimed before `now - grace`); `commit_load` checks again. A
    /// row claimed after `reclaim_before` (half gc's default grace ago) is
    /// left as it is: it is safe from gc's default grace for longer than
    /// any load, and a lookup costs far less than a write (a re-load of the
    /// same folder claimed every text again).
    pub fn known_blobs<'a>(
        &self,
        hashes: impl Iterator<Item = &'a str>,
        now: &str,
        reclaim_before: &str,
    ) -> Result<HashSet<&'a str>, StoreError> {
        self.db.write(|tx| {
            // A copy marked damaged (offset -1) is not known: it is stored again.
            let mut claim = tx.prepare_cached(
                "UPDATE blobs SET created_at = ?2 WHERE hash = ?1 AND offset >= 0 AND created_at < ?3",
            )?;
            let mut listed =
                tx.prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1 AND offset >= 0")?;
            let mut known = HashSet::new();
            for h in hashes {
                if claim.execute(params![h, now, reclaim_before])? > 0 || listed.exists([h])? {
                    known.insert(h);
                }
            }
            Ok(known)
        })
    }

    /// How many changes that can take a stored text from a load (a `blobs`
    /// row deleted or marked damaged) the store has seen. A load reads it
    /// before it first looks a stored text up, and hands it to
    /// [`Store::commit_load`].
    pub fn blob_removals(&self) -> Result<BlobRemovals, StoreError> {
        self.db.read(|c| Ok(BlobRemovals::in_store(c)?))
    }

    /// The one durable commit of a load, in one `IMMEDIATE` transaction:
    /// checks the session is still active, records the blobs this load's pack
    /// (`pack`, already synced and renamed into place) holds, adds the
    /// documents with the next `seq` numbers, and bumps the session's
    /// generation and counters, and records the identity of each file read
    /// (`file_identities`). Only under the session's lock (`_held`).
    ///
    /// Every text a document names without this load's pack (`offset`
    /// None) is checked to be still stored, unless `seen`, read before the
    /// load first found any of them stored, is still the store's count of
    /// [`BlobRemovals`]: then none was removed since it was found.
    ///
    /// Foreign keys are not enforced in this transaction: the checks here
    /// are the same ones, made once (the session row is read first; every
    /// text a document names is either inserted just before it or checked
    /// present above), where SQLite's would look up the session and the blob
    /// again for every document row (a fifth of a re-load's commit of
    /// 59 358 documents).
    pub fn commit_load(
        &self,
        _held: &SessionLock,
        session_id: &str,
        docs: &[NewDocument<'_>],
        pack: Option<&str>,
        seen: Option<BlobRemovals>,
        created_at: &str,
    ) -> Result<LoadCommit, StoreError> {
        self.db.write_durable_unchecked(|tx| {
            let (status, count): (SessionStatus, i64) = tx.query_row(
                "SELECT status, document_count FROM sessions WHERE session_id = ?1",
                [session_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if status != SessionStatus::Active
                && let Some(current) = session_in(tx, session_id)?
            {
                return Ok(LoadCommit::Closed(Box::new(current)));
            }
            // Checked before any row is written, so returning commits nothing.
            if pack.is_none() && docs.iter().any(|d| d.offset.is_some() && d.length_bytes > 0) {
                return Ok(LoadCommit::NoPack);
            }
            // The gc-vs-load protocol (ARCHITECTURE.md): gc deletes blob rows
            // and removes packs inside write transactions, so here, inside
            // this one, what the load relies on is either still there for
            // the commit or found gone.
            if let Some(name) = pack
                && !self.layout.pack_file(name).exists()
            {
                return Ok(LoadCommit::Collected(vec![format!("pack {name}")]));
            }
            if seen != Some(BlobRemovals::in_store(tx)?) {
                let mut known =
                    tx.prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1 AND offset >= 0")?;
                let mut gone = Vec::new();
                for d in docs.iter().filter(|d| d.offset.is_none()) {
                    if !known.exists([d.hash])? {
                        gone.push(d.hash.to_owned());
                    }
                }
                if !gone.is_empty() {
                    return Ok(LoadCommit::Collected(gone));
                }
            }
            let mut put_blob = tx.prepare_cached(
                "INSERT INTO blobs (hash, pack, offset, length_bytes, length_chars, checkpoints, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (hash) DO UPDATE SET pack = excluded.pack, offset = excluded.offset, \
                 length_bytes = excluded.length_bytes, length_chars = excluded.length_chars, \
                 checkpoints = excluded.checkpoints, created_at = excluded.created_at \
                 WHERE blobs.offset < 0",
            )?;
            let mut put_doc = tx.prepare_cached(
                "INSERT INTO documents (doc_id, session_id, seq, hash, source, length_chars, length_tokens_est, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let (mut chars, mut tokens, mut prose) = (0u64, 0u64, 0u64);
            for (i, d) in docs.iter().enumerate() {
                if let Some(offset) = d.offset {
                    let pack = match d.length_bytes {
                        0 => "",
                        _ => pack.unwrap_or_default(), // Some: checked above
                    };
                    put_blob.execute(params![
                        d.hash,
                        pack,
                        offset as i64,
                        d.length_bytes as i64,
                        d.shape.length_chars as i64,
                        d.shape.checkpoints_blob(),
                        created_at
                    ])?;
                }
                if let Some(f) = &d.file {
                    record_file(tx, d.source, &f.identity, f.read_at_ns, d.hash)?;
                }
                put_doc.execute(params![
                    d.doc_id,
                    session_id,
                    count + i as i64,
                    d.hash,
                    d.source,
                    d.shape.length_chars as i64,
                    d.tokens_est as i64,
                    created_at
                ])?;
                chars += d.shape.length_chars;
                tokens += d.tokens_est;
                if is_prose_source(d.source) {
                    prose += d.shape.length_chars;
                }
            }
            let generation: i64 = if docs.is_empty() {
                tx.query_row(
                    "SELECT generation FROM sessions WHERE session_id = ?1",
                    [session_id],
                    |r| r.get(0),
                )?
            } else {
                tx.query_row(
                    "UPDATE sessions SET generation = generation + 1, document_count = document_count + ?2, \
                     total_chars = total_chars + ?3, total_tokens_est = total_tokens_est + ?4, \
                     prose_chars = prose_chars + ?5 WHERE session_id = ?1 RETURNING generation",
                    params![session_id, docs.len() as i64, chars as i64, tokens as i64, prose as i64],
                    |r| r.get(0),
                )?
            };
            Ok(LoadCommit::Committed {
                first_seq: count as u64,
                generation: generation as u64,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_prose_source;

    #[test]
    fn prose_is_told_by_the_name_s_extension_or_its_absence() {
        for prose in [
            "/a/notes.txt",
            "/a/README",
            "/a/b.c/LICENSE",
            "C:\\docs\\guide.MD",
            "inline",
            "chapter one",
            "/a/paper.tex",
            "/a/x.rst",
        ] {
            assert!(is_prose_source(prose), "{prose}");
        }
        for other in [
            "/a/main.rs",
            "/a/b.txt/main.py",
            "/a/index.html",
            "/a/data.json",
            "/a/.bashrc",
            "/a/archive.txt.gz",
            "report.pdf",
        ] {
            assert!(!is_prose_source(other), "{other}");
        }
    }
}
