//! The SQLite side of the store: connections (WAL, busy timeout), the schema
//! and its `PRAGMA user_version` migrations, write transactions that always
//! begin `IMMEDIATE`, and the log's checkpoints on a thread of their own.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// Schema migrations, applied in order; `user_version` counts those applied.
/// Never edit a released step: add a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: sessions, blobs, documents, chunkings and spans, artifacts, traces.
    r#"
    CREATE TABLE sessions (
        session_id       TEXT PRIMARY KEY,
        name             TEXT,
        status           TEXT NOT NULL CHECK (status IN ('active', 'completed')),
        created_at       TEXT NOT NULL,
        closed_at        TEXT,
        config           TEXT NOT NULL,
        max_tool_calls   INTEGER NOT NULL,
        tool_calls_used  INTEGER NOT NULL DEFAULT 0,
        generation       INTEGER NOT NULL DEFAULT 0,
        document_count   INTEGER NOT NULL DEFAULT 0,
        total_chars      INTEGER NOT NULL DEFAULT 0,
        total_tokens_est INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE blobs (
        hash         TEXT PRIMARY KEY,
        pack         TEXT NOT NULL,
        offset       INTEGER NOT NULL,
        length_bytes INTEGER NOT NULL,
        length_chars INTEGER NOT NULL,
        checkpoints  BLOB,
        created_at   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE documents (
        doc_id            TEXT PRIMARY KEY,
        session_id        TEXT NOT NULL REFERENCES sessions (session_id),
        seq               INTEGER NOT NULL,
        hash              TEXT NOT NULL REFERENCES blobs (hash),
        source            TEXT NOT NULL,
        length_chars      INTEGER NOT NULL,
        length_tokens_est INTEGER NOT NULL,
        created_at        TEXT NOT NULL,
        UNIQUE (session_id, seq)
    );
    CREATE TABLE chunk_sets (
        set_id      INTEGER PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions (session_id),
        doc_id      TEXT NOT NULL REFERENCES documents (doc_id),
        strategy    TEXT NOT NULL,
        total_spans INTEGER NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE spans (
        span_id      TEXT PRIMARY KEY,
        session_id   TEXT NOT NULL REFERENCES sessions (session_id),
        doc_id       TEXT NOT NULL REFERENCES documents (doc_id),
        set_id       INTEGER REFERENCES chunk_sets (set_id),
        idx          INTEGER,
        start        INTEGER NOT NULL,
        "end"        INTEGER NOT NULL,
        content_hash TEXT,
        created_at   TEXT NOT NULL
    );
    CREATE TABLE artifacts (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        artifact_id TEXT NOT NULL UNIQUE,
        session_id  TEXT NOT NULL REFERENCES sessions (session_id),
        span_id     TEXT REFERENCES spans (span_id),
        type        TEXT NOT NULL,
        content     TEXT NOT NULL,
        provenance  TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE traces (
        id           INTEGER PRIMARY KEY,
        session_id   TEXT,
        operation    TEXT NOT NULL,
        arguments    TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        error_code   TEXT,
        duration_ms  REAL NOT NULL,
        result_chars INTEGER,
        result_hash  TEXT,
        created_at   TEXT NOT NULL
    );
    "#,
    // 2: the indexes that the per-session reads need once sessions grow.
    r#"
    CREATE INDEX chunk_sets_by_key ON chunk_sets (session_id, doc_id, strategy);
    CREATE INDEX spans_by_set ON spans (set_id, idx);
    CREATE INDEX spans_by_doc ON spans (doc_id);
    CREATE INDEX artifacts_by_session ON artifacts (session_id, seq);
    CREATE INDEX traces_by_session ON traces (session_id, id);
    "#,
    // 3: what each file a load read looked like, and the text it held
    // (`files.rs`); a row leaves with its blob (gc), never outlives it.
    r#"
    CREATE TABLE file_identities (
        path       TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        mtime_ns   INTEGER NOT NULL,
        ctime_ns   INTEGER NOT NULL,
        inode      INTEGER NOT NULL,
        device     INTEGER NOT NULL,
        read_at_ns INTEGER NOT NULL,
        hash       TEXT NOT NULL REFERENCES blobs (hash) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX file_identities_by_hash ON file_identities (hash);
    "#,
    // 4: which texts the shared search index holds, under which key
    // (`indexed.rs`); keys are never given twice, and a row leaves with its
    // blob (gc). The per-session index folders of `indexes/` are gc's.
    r#"
    CREATE TABLE indexed_texts (
        key       INTEGER PRIMARY KEY AUTOINCREMENT,
        index_id  TEXT NOT NULL,
        hash      TEXT NOT NULL REFERENCES blobs (hash) ON DELETE CASCADE,
        committed INTEGER NOT NULL DEFAULT 0,
        UNIQUE (index_id, hash)
    );
    CREATE INDEX indexed_texts_by_hash ON indexed_texts (hash);
    "#,
    // 5: an index on each foreign key's child column that lacked one: with
    // foreign keys on, deleting a parent row looks for its children, and
    // without an index that is a read of the whole child table per row
    // deleted (deleting a session of 100 000 spans beside others' artifacts,
    // or of many documents beside others' chunkings, went quadratic; each
    // session deleted read every span of the store).
    // `documents.hash` stays without one (gc, the only deleter of blob rows,
    // deletes their children itself: `store/gc.rs`); so do
    // `file_identities.hash` and `indexed_texts.hash`, since 6.
    r#"
    CREATE INDEX artifacts_by_span ON artifacts (span_id);
    CREATE INDEX chunk_sets_by_doc ON chunk_sets (doc_id);
    CREATE INDEX spans_by_session ON spans (session_id);
    "#,
    // 6: `file_identities.hash` and `indexed_texts.hash` lose their
    // indexes. Every file a first load reads adds a row, whose hash landed
    // at a random page of the first: 0.4-0.6 s of the commit of 59 358
    // files (1.18-1.41 s with it, 0.78 s without); every text an index
    // build claims did the same in the second. Nothing looks either up by
    // hash alone (claims and views go by index id and hash, which their
    // unique key covers): gc deletes the rows of the texts it takes in one
    // statement each, a scan of the table (`store/gc.rs`), and no other
    // code deletes blob rows.
    r#"
    DROP INDEX file_identities_by_hash;
    DROP INDEX indexed_texts_by_hash;
    "#,
    // 7: the characters of each session's prose documents
    // (`documents::is_prose_source`, the SQL function `rlm_is_prose` that
    // `migrate_to` registers), kept by every load's commit: they decide
    // where bm25 matches a query word's forms (`[search] word_forms`).
    r#"
    ALTER TABLE sessions ADD COLUMN prose_chars INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET prose_chars = (
        SELECT coalesce(sum(d.length_chars), 0) FROM documents d
        WHERE d.session_id = sessions.session_id AND rlm_is_prose(d.source)
    );
    "#,
    // 8: a counter of the changes that can take a stored text from a load:
    // a `blobs` row deleted (gc) or marked damaged (`offset < 0`). A load
    // reads it before it first looks a stored text up; its commit, finding
    // it unchanged, knows every text it found is still there and skips
    // checking each again (`commit_load`: 57 000 lookups, 0.1-0.2 s of a
    // re-load of the 850 MB scale corpus). Triggers keep it, so every
    // writer counts, whatever code or process it is; a row deleted costs
    // gc about 3 µs more.
    r#"
    CREATE TABLE blob_removals (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO blob_removals (id, generation) VALUES (1, 0);
    CREATE TRIGGER blob_deleted AFTER DELETE ON blobs BEGIN
        UPDATE blob_removals SET generation = generation + 1;
    END;
    CREATE TRIGGER blob_taken AFTER UPDATE OF hash, offset ON blobs
    WHEN (new.offset < 0 AND old.offset >= 0) OR new.hash IS NOT old.hash BEGIN
        UPDATE blob_removals SET generation = generation + 1;
    END;
    "#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the store at {path} has schema version {found}, newer than this rlmd understands ({SCHEMA_VERSION}); upgrade rlmd"
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error("starting the store's checkpoint thread: {0}; check the process's thread limit")]
    Thread(std::io::Error),
}

/// A small pool of connections to one database file.
pub struct Db {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Writers of this process take turns here rather than in SQLite: a
    /// writer that finds the database locked sleeps in SQLite's busy handler
    /// (1, 2, 5, 10 ... ms), which under concurrent calls cost more than the
    /// writes themselves. Other processes still meet the busy timeout.
    writer: Mutex<()>,
    checkpoints: Arc<Checkpoints>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

/// Pages the log holds after a commit before the checkpointer copies them
/// into the database: the threshold of SQLite's own automatic checkpoint.
const CHECKPOINT_PAGES: std::ffi::c_int = 1000;

/// The log's checkpoints, made on a thread of their own (`rlm-checkpoint`),
/// one process's. SQLite's automatic checkpoint runs inside the commit
/// that takes the log past [`CHECKPOINT_PAGES`], so the call that
/// committed waited for it: copying the 25 MB of a re-load's document rows
/// into the database took 0.1 s of the load's answer (the 850 MB scale
/// corpus). Every connection's log hook (which replaces the automatic
/// checkpoint) asks for one here instead, and the thread makes it
/// (`PASSIVE`: it waits for no reader or writer) while the caller goes on.
#[derive(Default)]
struct Checkpoints {
    state: Mutex<CheckpointState>,
    wake: Condvar,
    /// Held by the thread while it checkpoints (tests hold it to hold it off).
    gate: Mutex<()>,
}

#[derive(Default)]
struct CheckpointState {
    wanted: bool,
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Checkpoints {
    fn want(&self) {
        lock(&self.state).wanted = true;
        self.wake.notify_one();
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_one();
    }

    /// The checkpointer's loop, until the database is closed. Its
    /// connection is opened at its first checkpoint, and again after one
    /// failed (the next commit past the threshold asks again).
    fn run(&self, path: &Path) {
        let mut conn: Option<Connection> = None;
        loop {
            {
                let mut state = lock(&self.state);
                while !state.wanted && !state.closed {
                    state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                if state.closed {
                    return;
                }
                state.wanted = false;
            }
            let _gate = lock(&self.gate);
            let done = match &conn {
                Some(c) => Ok(c),
                None => Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map(|c| &*conn.insert(c)),
            }
            .and_then(|c| c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())));
            if let Err(e) = done {
                tracing::warn!(error = %e, path = %path.display(), "checkpoint of the store's log failed; the next large commit asks again");
                conn = None;
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.checkpoints.close();
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections kept open for reuse.
const MAX_IDLE: usize = 16;
/// How much of the database file each connection reads through a mapping.
const MMAP_BYTES: i64 = 1 << 30;
/// Each connection's page cache, in KiB (SQLite's default is 2000).
const CACHE_KIB: i64 = 512;
/// The page cache of the connection that writes, in KiB, while it writes
/// (one at a time per process; back to `CACHE_KIB` after, which frees the
/// pages past it). Rows keyed by a hash land at random pages of their
/// indexes, and a small cache writes each such page to the WAL again and
/// again within one transaction: 59 000 rows into `file_identities` (key
/// and hash index) took 0.88-0.93 s with 512 KiB, 0.52-0.57 s with 16 MiB,
/// 0.45 s with 64 MiB (a copy of the schema, Python's sqlite3).
const WRITE_CACHE_KIB: i64 = 16 << 10;
/// How a write transaction runs (`Db::write_with`).
#[derive(Debug, Clone, Copy)]
struct WriteMode {
    /// The commit synced to disk (`synchronous = FULL`).
    durable: bool,
    /// Foreign keys enforced.
    foreign_keys: bool,
    /// The page cache at `WRITE_CACHE_KIB` during the transaction.
    large_cache: bool,
}

impl WriteMode {
    const PLAIN: WriteMode = WriteMode {
        durable: false,
        foreign_keys: true,
        large_cache: true,
    };
}

/// A database with more than this share of free pages is rewritten (VACUUM).
const VACUUM_FREE_SHARE: f64 = 0.25;

impl Db {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let checkpoints = Arc::new(Checkpoints::default());
        let checkpointer = {
            let (checkpoints, path) = (checkpoints.clone(), path.to_owned());
            std::thread::Builder::new()
                .name("rlm-checkpoint".into())
                .spawn(move || checkpoints.run(&path))
                .map_err(DbError::Thread)?
        };
        let db = Db {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(()),
            checkpoints,
            checkpointer: Some(checkpointer),
        };
        let mut conn = db.connect()?;
        migrate(&mut conn, path)?;
        db.put(conn);
        Ok(db)
    }

    fn connect(&self) -> Result<Connection, DbError> {
        let mut conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers run beside the one writer, in any process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: a commit is atomic and survives a process crash; commits
        // that hold user data switch to FULL (see `write_durable`).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Pages read through a mapping count as file pages, not as each
        // connection's heap; the page cache of each connection stays small.
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        conn.set_prepared_statement_cache_capacity(64);
        // In place of SQLite's automatic checkpoint (`Checkpoints`).
        let checkpoints = self.checkpoints.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages| {
            if pages >= CHECKPOINT_PAGES {
                checkpoints.want();
            }
            Ok(())
        }))?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, DbError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => self.connect(),
        }
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Runs reads on a pooled connection.
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.take()?;
        let out = f(&conn);
        self.put(conn);
        out
    }

    /// Runs `f` in one `IMMEDIATE` transaction, committed when `f` succeeds.
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(WriteMode::PLAIN, f)
    }

    /// Like `write`, for a transaction of a row or two (a call's charge and
    /// its trace): the connection keeps its small page cache. Setting the
    /// writer's and back is two statements more than such a write: in a
    /// `perf` profile of bm25 calls in-process on the stdlib, those pragmas
    /// of the charge and the trace were some 7% of the calls' samples.
    pub fn write_small<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(
            WriteMode {
                large_cache: false,
                ..WriteMode::PLAIN
            },
            f,
        )
    }

    /// Like `write`, with the commit synced to disk (`synchronous = FULL`):
    /// for commits that hold what a user gave us (documents, artifacts).
    pub fn write_durable<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(
            WriteMode {
                durable: true,
                ..WriteMode::PLAIN
            },
            f,
        )
    }

    /// Like `write_durable`, with foreign keys not enforced in this one
    /// transaction: for a deletion of parent rows whose children `f`
    /// deletes itself, where SQLite would otherwise look for children in a
    /// column no index covers once per row deleted (gc's blob rows and
    /// `documents.hash`).
    pub fn write_durable_unchecked<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_with(
            WriteMode {
                durable: true,
                foreign_keys: false,
                ..WriteMode::PLAIN
            },
            f,
        )
    }

    fn write_with<T, E: From<DbError>>(
        &self,
        mode: WriteMode,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let WriteMode {
            durable,
            foreign_keys,
            large_cache,
        } = mode;
        let mut conn = self.take()?;
        let _turn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if large_cache {
            conn.pragma_update(None, "cache_size", -WRITE_CACHE_KIB)
                .map_err(DbError::from)?;
        }
        if durable {
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(DbError::from)?;
        }
        if !foreign_keys {
            // Outside any transaction: SQLite ignores the switch inside one.
            conn.pragma_update(None, "foreign_keys", "OFF")
                .map_err(DbError::from)?;
        }
        let out = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let v = f(&tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(v)
        })();
        if durable {
            let restored = conn.pragma_update(None, "synchronous", "NORMAL");
            if restored.is_err() {
                return out; // drop the connection rather than pool it in an unknown mode
            }
        }
        if !foreign_keys {
            let restored = conn.pragma_update(None, "foreign_keys", "ON");
            if restored.is_err() {
                return out; // never pool a connection that does not check foreign keys
            }
        }
        if large_cache && conn.pragma_update(None, "cache_size", -CACHE_KIB).is_err() {
            return out; // dropped, and its pages with it, rather than pooled large
        }
        self.put(conn);
        out
    }

    /// Gives the file system back what large deletions left: rewrites the
    /// database (VACUUM) when over a quarter of its pages are free, and
    /// truncates the write-ahead log after copying it into the database.
    /// Returns the bytes the database and its log shrank by.
    pub fn compact(&self) -> Result<u64, DbError> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let wal = {
            let mut name = self.path.as_os_str().to_owned();
            name.push("-wal");
            std::path::PathBuf::from(name)
        };
        let before = size(&self.path) + size(&wal);
        let conn = self.take()?;
        let _turn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if pages > 0 && free as f64 > pages as f64 * VACUUM_FREE_SHARE {
            conn.execute_batch("VACUUM")?;
        }
        // Busy (another process reading) leaves the log as it is: no error.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.put(conn);
        Ok(before.saturating_sub(size(&self.path) + size(&wal)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Applies the migrations `conn` lacks, each in its own IMMEDIATE
/// transaction with its `user_version` bump, so concurrent openers agree.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Applies migrations up to version `target` (tests replay old versions).
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<(), DbError> {
    // What migration 7 counts; the connection keeps it until it closes.
    conn.create_scalar_function(
        "rlm_is_prose",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(super::documents::is_prose_source(&ctx.get::<String>(0)?)),
    )?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(DbError::TooNew {
                path: path.to_owned(),
                found: version,
            });
        }
        if version >= target {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::layout::SQLITE_FILE;

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The writer's page cache is large while it writes and small again
    /// once pooled: reads never keep a writer's 16 MiB; a small write never
    /// takes it.
    #[test]
    fn the_page_cache_is_large_only_while_writing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join(SQLITE_FILE)).unwrap();
        let cache = |c: &Connection| -> Result<i64, DbError> {
            Ok(c.query_row("PRAGMA cache_size", [], |r| r.get(0))?)
        };
        for durable in [false, true] {
            let during = if durable {
                db.write_durable(|tx| cache(tx))
            } else {
                db.write(|tx| cache(tx))
            };
            assert_eq!(during.unwrap(), -WRITE_CACHE_KIB);
            // Several connections at once, so every pooled one is seen.
            let conns: Vec<Connection> = (0..4).map(|_| db.take().unwrap()).collect();
            for c in &conns {
                assert_eq!(cache(c).unwrap(), -CACHE_KIB);
            }
            for c in conns {
                db.put(c);
            }
        }
        // A write of a row or two keeps the small cache (no pragma each way).
        assert_eq!(db.write_small(|tx| cache(tx)).unwrap(), -CACHE_KIB);
        let failed: Result<(), DbError> =
            db.write(|_| Err(DbError::from(rusqlite::Error::InvalidQuery)));
        assert!(failed.is_err());
        assert_eq!(
            db.read(|c| cache(c)).unwrap(),
            -CACHE_KIB,
            "after a failed write too"
        );
    }

    #[test]
    fn an_empty_file_migrates_to_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let db = Db::open(&path).unwrap();
        db.read(|c| {
            let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            assert_eq!(v, SCHEMA_VERSION);
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            assert_eq!(mode, "wal");
            assert!(table_names(c).contains(&"spans_by_set".to_string()));
            Ok::<_, DbError>(())
        })
        .unwrap();
        // Opening again is a no-op.
        drop(db);
        Db::open(&path).unwrap();
    }

    #[test]
    fn a_store_of_the_previous_version_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, SCHEMA_VERSION - 1).unwrap();
        conn.execute(
            "INSERT INTO sessions (session_id, status, created_at, config, max_tool_calls) VALUES ('s', 'active', 't', '{}', 5)",
            [],
        )
        .unwrap();
        drop(conn);
        let db = Db::open(&path).unwrap();
        db.read(|c| {
            let n: i64 = c.query_row(
                "SELECT max_tool_calls FROM sessions WHERE session_id = 's'",
                [],
                |r| r.get(0),
            )?;
            assert_eq!(n, 5);
            let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            assert_eq!(v, SCHEMA_VERSION);
            Ok::<_, DbError>(())
        })
        .unwrap();
    }

    /// Migration 7 counts the prose characters of the sessions a store
    /// already holds, by the rule the loads count them with.
    #[test]
    fn a_version_6_store_opens_with_its_sessions_prose_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 6).unwrap();
        conn.execute_batch(
            "INSERT INTO sessions (session_id, status, created_at, config, max_tool_calls) VALUES ('s', 'active', 't', '{}', 5), ('empty', 'active', 't', '{}', 5);
             INSERT INTO blobs (hash, pack, offset, length_bytes, length_chars, created_at) VALUES ('h', 'p', 0, 3, 3, 't');
             INSERT INTO documents (doc_id, session_id, seq, hash, source, length_chars, length_tokens_est, created_at) VALUES
               ('d0', 's', 0, 'h', '/repo/README', 100, 1, 't'),
               ('d1', 's', 1, 'h', '/repo/docs/guide.Md', 20, 1, 't'),
               ('d2', 's', 2, 'h', 'inline', 3, 1, 't'),
               ('d3', 's', 3, 'h', '/repo/src/main.rs', 1000, 1, 't'),
               ('d4', 's', 4, 'h', '/repo/site/index.html', 7, 1, 't'),
               ('d5', 's', 5, 'h', '/repo.d/.env', 5, 1, 't');",
        )
        .unwrap();
        drop(conn);
        let db = Db::open(&path).unwrap();
        db.read(|c| {
            let prose = |id: &str| -> rusqlite::Result<i64> {
                c.query_row(
                    "SELECT prose_chars FROM sessions WHERE session_id = ?1",
                    [id],
                    |r| r.get(0),
                )
            };
            assert_eq!(prose("s")?, 123);
            assert_eq!(prose("empty")?, 0);
            Ok::<_, DbError>(())
        })
        .unwrap();
    }

    /// What can take a stored text from a load (a `blobs` row deleted,
    /// marked damaged, or renamed) moves the store's count of removals, one
    /// a row, in any code; a claim, a move to another pack, a damaged text
    /// stored again do not.
    #[test]
    fn blob_removals_count_what_can_take_a_text_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join(SQLITE_FILE)).unwrap();
        let count = |db: &Db| -> i64 {
            db.read(|c| {
                c.query_row("SELECT generation FROM blob_removals", [], |r| r.get(0))
                    .map_err(DbError::from)
            })
            .unwrap()
        };
        let run = |db: &Db, sql: &str| {
            db.write(|tx| tx.execute_batch(sql).map_err(DbError::from))
                .unwrap()
        };
        run(
            &db,
            "INSERT INTO blobs (hash, pack, offset, length_bytes, length_chars, created_at) VALUES \
             ('a', 'p', 0, 3, 3, 't'), ('b', 'p', 3, 3, 3, 't'), ('c', 'p', 6, 3, 3, 't'), ('d', 'p', 9, 3, 3, 't')",
        );
        assert_eq!(count(&db), 0);
        for unchanged in [
            "UPDATE blobs SET created_at = 'u'",
            "UPDATE blobs SET pack = 'q', offset = offset + 100 WHERE hash = 'a'",
            "UPDATE blobs SET offset = offset WHERE hash = 'b'",
        ] {
            run(&db, unchanged);
            assert_eq!(count(&db), 0, "{unchanged}");
        }
        run(&db, "UPDATE blobs SET offset = -1 WHERE hash = 'a'");
        assert_eq!(count(&db), 1, "marked damaged");
        run(&db, "UPDATE blobs SET offset = -1 WHERE hash = 'a'");
        assert_eq!(count(&db), 1, "already damaged");
        run(&db, "UPDATE blobs SET offset = 12 WHERE hash = 'a'");
        assert_eq!(count(&db), 1, "stored again");
        run(&db, "UPDATE blobs SET hash = 'e' WHERE hash = 'd'");
        assert_eq!(count(&db), 2, "renamed");
        run(&db, "DELETE FROM blobs WHERE hash IN ('b', 'c')");
        assert_eq!(count(&db), 4, "two deleted");
    }

    /// A commit that takes the log past the threshold does not copy it into
    /// the database itself: the file stays as it was while the checkpointer
    /// is held off, and takes the pages once it runs.
    #[test]
    fn a_large_commits_checkpoint_is_made_beside_it_not_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let db = Db::open(&path).unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let held = lock(&db.checkpoints.gate);
        let before = size();
        let (rows, bytes) = (2000, 4000);
        db.write(|tx| {
            for _ in 0..rows {
                tx.execute(
                    "INSERT INTO traces (operation, arguments, outcome, duration_ms, created_at) \
                     VALUES ('op', ?1, 'ok', 0, 't')",
                    ["a".repeat(bytes)],
                )?;
            }
            Ok::<_, DbError>(())
        })
        .unwrap();
        assert_eq!(size(), before, "checkpointed inside the commit");
        drop(held);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while size() < before + (rows * bytes) as u64 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint: {} bytes",
                size()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_version_2_store_opens_upgraded_with_the_file_identities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, &path, 2).unwrap();
        assert!(!table_names(&conn).contains(&"file_identities".to_string()));
        conn.execute_batch(
            "INSERT INTO sessions (session_id, status, created_at, config, max_tool_calls) VALUES ('s', 'active', 't', '{}', 5);
             INSERT INTO blobs (hash, pack, offset, length_bytes, length_chars, created_at) VALUES ('h', 'p', 0, 3, 3, 't');
             INSERT INTO documents (doc_id, session_id, seq, hash, source, length_chars, length_tokens_est, created_at) VALUES ('d', 's', 0, 'h', '/f', 3, 1, 't');",
        )
        .unwrap();
        drop(conn);
        let db = Db::open(&path).unwrap();
        db.read(|c| {
            let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            assert_eq!(v, SCHEMA_VERSION);
            assert!(table_names(c).contains(&"file_identities".to_string()));
            let doc: String =
                c.query_row("SELECT hash FROM documents WHERE doc_id = 'd'", [], |r| {
                    r.get(0)
                })?;
            assert_eq!(doc, "h");
            Ok::<_, DbError>(())
        })
        .unwrap();
        // The new table takes rows, and they leave with their blob.
        db.write(|tx| {
            tx.execute(
                "INSERT INTO file_identities (path, size, mtime_ns, ctime_ns, inode, device, read_at_ns, hash) VALUES ('/f', 3, 1, 1, 1, 1, 9, 'h')",
                [],
            )?;
            tx.execute("DELETE FROM documents", [])?;
            tx.execute("DELETE FROM blobs WHERE hash = 'h'", [])?;
            let n: i64 = tx.query_row("SELECT count(*) FROM file_identities", [], |r| r.get(0))?;
            assert_eq!(n, 0);
            Ok::<_, DbError>(())
        })
        .unwrap();
    }

    #[test]
    fn every_foreign_key_but_those_of_blob_rows_has_an_index_on_its_child_column() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join(SQLITE_FILE)).unwrap();
        db.read(|c| {
            let mut unindexed = Vec::new();
            for table in table_names(c) {
                let keys: Vec<String> = c
                    .prepare("SELECT \"from\" FROM pragma_foreign_key_list(?1)")?
                    .query_map([&table], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                // The first column of each index of the table (its primary key included).
                let mut leading: Vec<String> = c
                    .prepare(
                        "SELECT ii.name FROM pragma_index_list(?1) il, pragma_index_info(il.name) ii \
                         WHERE ii.seqno = 0",
                    )?
                    .query_map([&table], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let rowid_key: Option<String> = c
                    .query_row(
                        "SELECT name FROM pragma_table_info(?1) WHERE pk = 1 AND type = 'INTEGER'",
                        [&table],
                        |r| r.get(0),
                    )
                    .ok();
                leading.extend(rowid_key);
                unindexed.extend(
                    keys.into_iter()
                        .filter(|k| !leading.contains(k))
                        .map(|k| format!("{table}.{k}")),
                );
            }
            unindexed.sort();
            // Blob rows are deleted by gc alone, which deletes the rows
            // naming them itself, set-based (an index would cost every load
            // or build: migrations 5 and 6).
            assert_eq!(
                unindexed,
                [
                    "documents.hash",
                    "file_identities.hash",
                    "indexed_texts.hash"
                ]
            );
            Ok::<_, DbError>(())
        })
        .unwrap();
    }

    #[test]
    fn a_newer_store_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SQLITE_FILE);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Db::open(&path).unwrap_err().to_string();
        assert!(err.contains("upgrade rlmd"), "{err}");
    }

    #[test]
    fn a_failed_write_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.sqlite")).unwrap();
        let r: Result<(), DbError> = db.write(|tx| {
            tx.execute(
                "INSERT INTO sessions (session_id, status, created_at, config, max_tool_calls) VALUES ('x', 'active', 't', '{}', 1)",
                [],
            )?;
            Err(DbError::Sqlite(rusqlite::Error::InvalidQuery))
        });
        assert!(r.is_err());
        let n: i64 = db
            .read(|c| {
                Ok::<_, DbError>(c.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 0);
    }
}
