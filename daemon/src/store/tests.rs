//! Tests of the store's typed transactions: the budget charge, exactly-once
//! close, and the multi-step writes that must leave nothing behind when the
//! session was closed under them.

use rlm::tools::SessionConfig;

use super::Store;
use super::artifacts::{ArtifactWrite, NewArtifact};
use super::documents::{LoadCommit, NewDocument};
use super::sessions::{Charge, Close, NewSession, SessionStatus};
use super::spans::{Chunking, NewChunkSpan};
use crate::text::TextShape;

mod indexed;

fn store_with_session(max_tool_calls: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = SessionConfig {
        max_tool_calls,
        ..SessionConfig::default()
    };
    store
        .create_session(&NewSession {
            session_id: "s",
            name: Some("n"),
            created_at: "t0",
            config: &config,
        })
        .unwrap();
    (dir, store)
}

fn doc<'a>(doc_id: &'a str, hash: &'a str, shape: &'a TextShape) -> NewDocument<'a> {
    NewDocument {
        doc_id,
        hash,
        source: "inline",
        length_bytes: shape.length_chars,
        shape,
        tokens_est: 1,
        offset: Some(0),
        file: None,
    }
}

#[test]
fn the_charge_counts_until_the_budget_is_spent() {
    let (_dir, store) = store_with_session(2);
    // Creating the session was its first call.
    match store.charge("s").unwrap() {
        Charge::Charged(row) => {
            assert_eq!(row.tool_calls_used, 2);
            assert_eq!(row.status, SessionStatus::Active);
            assert_eq!(row.name.as_deref(), Some("n"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.charge("s").unwrap(),
        Charge::Spent { used: 2, limit: 2 }
    ));
    assert!(matches!(store.charge("x").unwrap(), Charge::NoSession));
    assert_eq!(store.session("s").unwrap().unwrap().tool_calls_used, 2);
}

#[test]
fn a_session_closes_exactly_once() {
    let (_dir, store) = store_with_session(10);
    assert_eq!(store.session_counts().unwrap(), (1, 1));
    match store
        .close_session(&store.lock_session("s").unwrap(), "s", "t1")
        .unwrap()
    {
        Close::Closed(c) => assert_eq!((c.documents, c.spans, c.artifacts), (0, 0, 0)),
        other => panic!("{other:?}"),
    }
    match store
        .close_session(&store.lock_session("s").unwrap(), "s", "t2")
        .unwrap()
    {
        Close::AlreadyClosed { closed_at } => assert_eq!(closed_at.as_deref(), Some("t1")),
        other => panic!("{other:?}"),
    }
    let row = store.session("s").unwrap().unwrap();
    assert_eq!(row.status, SessionStatus::Completed);
    assert!(!row.is_active());
    assert_eq!(store.session_counts().unwrap(), (0, 1));
    let listed = store.list_sessions().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, SessionStatus::Completed);
}

#[test]
fn a_load_commit_adds_documents_in_order_and_bumps_the_generation() {
    let (_dir, store) = store_with_session(10);
    let (a, b) = (TextShape::of("abc"), TextShape::of("de"));
    let docs = [doc("d1", "h1", &a), doc("d2", "h2", &b)];
    // The commit checks the pack it names is in place.
    let mut w = store.new_pack().unwrap();
    w.append(b"abcde").unwrap();
    let p = w.finish().unwrap().unwrap();
    assert!(matches!(
        store
            .commit_load(
                &store.lock_session("s").unwrap(),
                "s",
                &docs,
                Some(&p),
                None,
                "t"
            )
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    let row = store.session("s").unwrap().unwrap();
    assert_eq!(
        (row.generation, row.document_count, row.total_chars),
        (1, 2, 5)
    );
    let rows = store.documents_of("s").unwrap();
    let seqs: Vec<(String, u64)> = rows.into_iter().map(|d| (d.doc_id, d.seq)).collect();
    assert_eq!(seqs, [("d1".to_string(), 0), ("d2".to_string(), 1)]);
    let known = store
        .known_blobs(["h1", "h2", "h3"].into_iter(), "t", "t")
        .unwrap();
    assert_eq!(known.len(), 2);
}

#[test]
fn writes_to_a_closed_session_leave_nothing() {
    let (_dir, store) = store_with_session(10);
    let a = TextShape::of("abc");
    assert!(matches!(
        store
            .close_session(&store.lock_session("s").unwrap(), "s", "t1")
            .unwrap(),
        Close::Closed(_)
    ));
    match store
        .commit_load(
            &store.lock_session("s").unwrap(),
            "s",
            &[doc("d1", "h1", &a)],
            Some("p"),
            None,
            "t",
        )
        .unwrap()
    {
        LoadCommit::Closed(row) => assert_eq!(row.closed_at.as_deref(), Some("t1")),
        other => panic!("{other:?}"),
    }
    let span = NewChunkSpan {
        start: 0,
        end: 1,
        content_hash: "h",
    };
    assert!(matches!(
        store
            .create_chunking(
                &store.lock_session("s").unwrap(),
                "s",
                "d1",
                "k",
                &[span],
                "t"
            )
            .unwrap(),
        Chunking::Closed(_)
    ));
    let artifact = NewArtifact {
        artifact_id: "a",
        session_id: "s",
        span_id: None,
        kind: "summary",
        content: "{}",
        provenance: None,
        created_at: "t",
    };
    assert!(matches!(
        store.store_artifact(&artifact, None).unwrap(),
        ArtifactWrite::Closed(_)
    ));
    assert!(store.documents_of("s").unwrap().is_empty());
    assert!(
        store
            .known_blobs(["h1"].into_iter(), "t", "t")
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_artifacts("s", None, None, 10, 0).unwrap().1, 0);
    assert_eq!(store.session("s").unwrap().unwrap().generation, 0);
}

#[test]
fn a_text_placed_in_no_pack_is_refused_before_any_row() {
    let (_dir, store) = store_with_session(10);
    let (a, empty) = (TextShape::of("abc"), TextShape::of(""));
    // The empty text needs no pack; the second one does.
    let docs = [doc("d0", "h0", &empty), doc("d1", "h1", &a)];
    assert!(matches!(
        store
            .commit_load(
                &store.lock_session("s").unwrap(),
                "s",
                &docs,
                None,
                None,
                "t"
            )
            .unwrap(),
        LoadCommit::NoPack
    ));
    assert!(store.documents_of("s").unwrap().is_empty());
    assert!(
        store
            .known_blobs(["h0"].into_iter(), "t", "t")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn gc_removes_only_what_nothing_references() {
    let (dir, store) = store_with_session(10);
    let layout = store.layout().clone();
    // A pack the blobs table names, and one it does not.
    let mut kept = store.new_pack().unwrap();
    kept.append(b"abc").unwrap();
    let kept = kept.finish().unwrap().unwrap();
    let mut orphan = store.new_pack().unwrap();
    orphan.append(b"xyz").unwrap();
    let orphan = orphan.finish().unwrap().unwrap();
    let a = TextShape::of("abc");
    let lock = store.lock_session("s").unwrap();
    assert!(matches!(
        store
            .commit_load(&lock, "s", &[doc("d1", "h1", &a)], Some(&kept), None, "t")
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    drop(lock);
    std::fs::write(layout.tmp_dir().join("left.pack.tmp"), b"t").unwrap();
    std::fs::create_dir_all(layout.index_dir("s")).unwrap();
    std::fs::create_dir_all(layout.index_dir("gone")).unwrap();
    drop(store.lock_session("gone").unwrap());

    // Everything is younger than an hour, and a load is under way (it holds
    // the loads lock): nothing goes.
    let under_way =
        super::lock::LoadsLock::shared(&layout.loads_lock(), std::time::Duration::from_secs(5))
            .unwrap();
    let report = store.gc(super::gc::GC_GRACE).unwrap();
    drop(under_way);
    assert_eq!(report.packs_removed + report.temp_files_removed, 0);
    assert_eq!(report.lock_files_removed, 0);
    // Per-session index folders of an earlier version go at once, whoever's.
    assert_eq!(report.index_dirs_removed, 2);
    assert!(!layout.indexes_dir().exists());

    let report = store.gc(std::time::Duration::ZERO).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.packs_removed, 1);
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.lock_files_removed, 1);
    assert!(layout.pack_file(&kept).is_file());
    assert!(!layout.pack_file(&orphan).exists());
    assert!(layout.locks_dir().join("s.lock").is_file());
    assert!(!layout.locks_dir().join("gone.lock").exists());
    assert!(dir.path().join("store.sqlite").is_file());
}

/// The data folder is this user's alone, whatever mode it had: a store made
/// by an older version (0755) is tightened when opened.
#[cfg(unix)]
#[test]
fn the_data_folder_is_private_once_opened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fresh = dir.path().join("a/b/fresh");
    for root in [&loose, &fresh] {
        drop(Store::open(root).unwrap());
        let mode = std::fs::metadata(root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", root.display());
    }
}

/// Timestamps as the engine writes them, long past.
const T0: &str = "2020-01-01T00:00:00.000000Z";
const T1: &str = "2020-01-02T00:00:00.000000Z";

/// A document of `text`, stored at `offset` of this load's pack, or already
/// stored (`None`).
fn text_doc<'a>(
    doc_id: &'a str,
    hash: &'a str,
    shape: &'a TextShape,
    offset: Option<u64>,
) -> NewDocument<'a> {
    NewDocument {
        doc_id,
        hash,
        source: "inline",
        length_bytes: shape.length_chars,
        shape,
        tokens_est: 1,
        offset,
        file: None,
    }
}

fn add_session(store: &Store, id: &str) {
    store
        .create_session(&NewSession {
            session_id: id,
            name: None,
            created_at: T0,
            config: &SessionConfig::default(),
        })
        .unwrap();
}

/// Two texts appended to one finished pack (not yet named by any row).
struct Pair {
    hashes: (String, String),
    shapes: (TextShape, TextShape),
    offsets: (u64, u64),
    pack: String,
}

/// One text appended to a finished pack of its own (not yet named by any
/// row): its hash, shape, offset and pack.
fn stored_one(store: &Store, text: &str) -> (String, TextShape, u64, String) {
    let mut w = store.new_pack().unwrap();
    let at = w.append(text.as_bytes()).unwrap();
    let pack = w.finish().unwrap().unwrap();
    (
        super::sha256_hex(text.as_bytes()),
        TextShape::of(text),
        at,
        pack,
    )
}

fn stored_pair(store: &Store, a: &str, b: &str) -> Pair {
    let mut w = store.new_pack().unwrap();
    let offsets = (
        w.append(a.as_bytes()).unwrap(),
        w.append(b.as_bytes()).unwrap(),
    );
    Pair {
        hashes: (
            super::sha256_hex(a.as_bytes()),
            super::sha256_hex(b.as_bytes()),
        ),
        shapes: (TextShape::of(a), TextShape::of(b)),
        offsets,
        pack: w.finish().unwrap().unwrap(),
    }
}

/// Writes `bytes` over pack `pack` of the store in `dir` at `at`, in place;
/// with `later`, its modification time set a second on, as a write a
/// timestamp tick later moves it.
fn write_in_pack(dir: &std::path::Path, pack: &str, at: u64, bytes: &[u8], later: bool) {
    use std::io::{Seek, SeekFrom, Write};
    let path = super::Layout::new(dir).pack_file(pack);
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
    if later {
        let was = f.metadata().unwrap().modified().unwrap();
        f.set_modified(was + std::time::Duration::from_secs(1))
            .unwrap();
    }
}

/// [`stored_pair`], loaded into session `s` as documents `d1` and `d2`.
fn committed_pair(store: &Store, a: &str, b: &str) -> Pair {
    let pair = stored_pair(store, a, b);
    let lock = store.lock_session("s").unwrap();
    let docs = [
        text_doc("d1", &pair.hashes.0, &pair.shapes.0, Some(pair.offsets.0)),
        text_doc("d2", &pair.hashes.1, &pair.shapes.1, Some(pair.offsets.1)),
    ];
    assert!(matches!(
        store
            .commit_load(&lock, "s", &docs, Some(&pair.pack), None, T0)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    pair
}

#[test]
fn a_deleted_session_leaves_no_row_index_or_lock_and_gc_reclaims_its_texts() {
    let (dir, store) = store_with_session(100);
    let layout = super::Layout::new(dir.path());
    add_session(&store, "t");
    let (alpha, beta) = ("alpha text", "beta text"); // 10 and 9 bytes
    let Pair {
        hashes: (ha, hb),
        shapes: (_, sb),
        pack,
        ..
    } = committed_pair(&store, alpha, beta);
    // Session t holds beta too, found already stored.
    let lock = store.lock_session("t").unwrap();
    let docs = [text_doc("d3", &hb, &sb, None)];
    assert!(matches!(
        store
            .commit_load(&lock, "t", &docs, None, None, T0)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    drop(lock);
    let lock = store.lock_session("s").unwrap();
    let span = NewChunkSpan {
        start: 0,
        end: 3,
        content_hash: "c",
    };
    assert!(matches!(
        store
            .create_chunking(&lock, "s", "d1", "fixed", &[span], T0)
            .unwrap(),
        Chunking::Created(_)
    ));
    drop(lock);
    store
        .store_artifact(
            &NewArtifact {
                artifact_id: "a1",
                session_id: "s",
                span_id: None,
                kind: "note",
                content: "\"x\"",
                provenance: None,
                created_at: T0,
            },
            None,
        )
        .unwrap();

    let deleted = store
        .delete_session(store.lock_session("s").unwrap(), "s")
        .unwrap()
        .unwrap();
    assert_eq!(
        (deleted.documents, deleted.spans, deleted.artifacts),
        (2, 1, 1)
    );
    assert!(store.session("s").unwrap().is_none());
    assert!(store.documents_of("s").unwrap().is_empty());
    assert!(!layout.locks_dir().join("s.lock").exists());
    assert!(
        store
            .delete_session(store.lock_session("s").unwrap(), "s")
            .unwrap()
            .is_none()
    );

    // alpha is named by nothing now; beta by t. The pack is mostly garbage
    // (10 of 19 bytes): beta moves to a new pack and the old one goes.
    let report = store.gc(std::time::Duration::ZERO).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.texts_removed, report.packs_compacted), (1, 1));
    assert!(!layout.pack_file(&pack).exists());
    assert_eq!(store.blobs.pack_names().unwrap().len(), 1);
    assert_eq!(store.text(&hb).unwrap().as_str(), beta);
    assert!(matches!(
        store.text(&ha),
        Err(super::StoreError::MissingBlob { .. })
    ));

    // Delete t too: gc leaves no text and no pack.
    store
        .delete_session(store.lock_session("t").unwrap(), "t")
        .unwrap()
        .unwrap();
    let report = store.gc(std::time::Duration::ZERO).unwrap();
    assert_eq!((report.texts_removed, report.packs_removed), (1, 1));
    assert!(store.blobs.pack_names().unwrap().is_empty());
}

#[test]
fn a_load_commit_finds_what_gc_collected_since_the_load_looked() {
    let (dir, store) = store_with_session(100);
    add_session(&store, "old");
    let (h, shape, at, pack) = stored_one(&store, "shared text");
    let lock = store.lock_session("old").unwrap();
    store
        .commit_load(
            &lock,
            "old",
            &[text_doc("d0", &h, &shape, Some(at))],
            Some(&pack),
            None,
            T0,
        )
        .unwrap();
    drop(lock);
    // A load of s is under way (holding the loads lock, as every load does
    // from its start to its commit, and having read the store's removals
    // before its first lookup); it finds the text stored (claiming it long
    // ago), then gc collects it once "old" is deleted.
    let _under_way = super::lock::LoadsLock::shared(
        &super::Layout::new(dir.path()).loads_lock(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let seen = store.blob_removals().unwrap();
    assert_eq!(
        store
            .known_blobs([h.as_str()].into_iter(), T0, T0)
            .unwrap()
            .len(),
        1
    );
    store
        .delete_session(store.lock_session("old").unwrap(), "old")
        .unwrap();
    // A claim within the grace period keeps the row...
    let now = crate::engine::now();
    assert!(
        !store
            .known_blobs([h.as_str()].into_iter(), &now, &now)
            .unwrap()
            .is_empty()
    );
    // ...and a row claimed since `reclaim_before` is known without a write.
    let claimed = |store: &Store| -> String {
        store
            .db
            .read(|c| {
                c.query_row("SELECT created_at FROM blobs WHERE hash = ?1", [&h], |r| {
                    r.get(0)
                })
                .map_err(crate::store::db::DbError::from)
            })
            .unwrap()
    };
    assert_eq!(claimed(&store), now);
    let later = crate::engine::now();
    assert_eq!(
        store
            .known_blobs([h.as_str()].into_iter(), &later, T0)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(claimed(&store), now, "claimed recently: left as it was");
    assert_eq!(store.gc(super::gc::GC_GRACE).unwrap().texts_removed, 0);
    // ...an older one does not.
    assert_eq!(
        store.gc(std::time::Duration::ZERO).unwrap().texts_removed,
        1
    );
    let lock = store.lock_session("s").unwrap();
    match store
        .commit_load(
            &lock,
            "s",
            &[text_doc("d1", &h, &shape, None)],
            None,
            Some(seen),
            T1,
        )
        .unwrap()
    {
        LoadCommit::Collected(gone) => assert_eq!(gone, vec![h.clone()]),
        other => panic!("{other:?}"),
    }
    // Its own pack removed under it: the same.
    match store
        .commit_load(
            &lock,
            "s",
            &[text_doc("d1", &h, &shape, Some(0))],
            Some("nosuchpack"),
            Some(store.blob_removals().unwrap()),
            T1,
        )
        .unwrap()
    {
        LoadCommit::Collected(gone) => assert_eq!(gone, vec!["pack nosuchpack".to_string()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.session("s").unwrap().unwrap().document_count,
        0,
        "nothing was written"
    );
}

#[test]
fn a_load_commit_finds_a_text_marked_damaged_since_the_load_looked() {
    let (_dir, store) = store_with_session(100);
    add_session(&store, "old");
    let (h, shape, at, pack) = stored_one(&store, "a text that will be found damaged");
    let lock = store.lock_session("old").unwrap();
    let docs = [text_doc("d0", &h, &shape, Some(at))];
    assert!(matches!(
        store
            .commit_load(&lock, "old", &docs, Some(&pack), None, T0)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    drop(lock);
    // A load of s finds the text stored; a reader then finds its copy
    // damaged and marks it.
    let seen = store.blob_removals().unwrap();
    let now = crate::engine::now();
    assert_eq!(
        store
            .known_blobs([h.as_str()].into_iter(), &now, &now)
            .unwrap()
            .len(),
        1
    );
    store.forget_blob(&h, &pack, at as i64).unwrap();
    let lock = store.lock_session("s").unwrap();
    let reused = [text_doc("d1", &h, &shape, None)];
    match store
        .commit_load(&lock, "s", &reused, None, Some(seen), T1)
        .unwrap()
    {
        LoadCommit::Collected(gone) => assert_eq!(gone, vec![h.clone()]),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.session("s").unwrap().unwrap().document_count, 0);
}

#[test]
fn gc_deletes_what_hangs_on_a_text_and_leaves_the_foreign_keys_whole() {
    use super::documents::FileRead;
    use super::files::FileIdentity;
    let (_dir, store) = store_with_session(100);
    add_session(&store, "t");
    let Pair {
        hashes: (ha, hb),
        shapes: (sa, sb),
        offsets: (oa, ob),
        pack,
    } = stored_pair(&store, "alpha text", "beta text");
    let file = |inode| FileRead {
        identity: FileIdentity {
            size: 10,
            mtime_ns: 1,
            ctime_ns: 1,
            inode,
            device: 1,
        },
        read_at_ns: 1_000_000_000_000,
    };
    // Session s holds alpha, t holds beta; each read from a file.
    for (sid, doc, hash, shape, offset, path, inode) in [
        ("s", "d1", &ha, &sa, oa, "/f/alpha.txt", 1),
        ("t", "d2", &hb, &sb, ob, "/f/beta.txt", 2),
    ] {
        let lock = store.lock_session(sid).unwrap();
        let mut d = text_doc(doc, hash, shape, Some(offset));
        d.source = path;
        d.file = Some(file(inode));
        assert!(matches!(
            store
                .commit_load(&lock, sid, &[d], Some(&pack), None, T0)
                .unwrap(),
            LoadCommit::Committed { .. }
        ));
    }
    let claims = store.claim_index_keys("i", &[&ha, &hb]).unwrap();
    let keys: Vec<u64> = claims.iter().map(|c| c.key).collect();
    store.commit_index_keys(&keys).unwrap();

    store
        .delete_session(store.lock_session("s").unwrap(), "s")
        .unwrap()
        .unwrap();
    let report = store.gc(std::time::Duration::ZERO).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.texts_removed, 1);
    // alpha's file identity and index row went with it; beta's stay.
    let recorded = store
        .recorded_files(["/f/alpha.txt", "/f/beta.txt"].into_iter())
        .unwrap();
    assert_eq!(
        recorded.keys().copied().collect::<Vec<_>>(),
        ["/f/beta.txt"]
    );
    let beta_key = claims.iter().find(|c| c.hash == hb).unwrap().key;
    assert_eq!(store.index_keys("i").unwrap(), [(beta_key, true)]);
    let broken: i64 = store
        .db
        .read(|c| {
            c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(super::StoreError::from)
        })
        .unwrap();
    assert_eq!(broken, 0);
    // Foreign keys are enforced again on every pooled connection: a text a
    // document names cannot be deleted.
    for _ in 0..4 {
        let refused = store.db.write(|tx| {
            tx.execute("DELETE FROM blobs WHERE hash = ?1", [&hb])
                .map_err(super::StoreError::from)
        });
        assert!(refused.is_err(), "a named text was deleted");
    }
}

#[test]
fn gc_needs_no_grace_while_no_load_is_under_way() {
    let (dir, store) = store_with_session(100);
    let layout = super::Layout::new(dir.path());
    let (ha, sa, oa, pack) = stored_one(&store, "alpha text, just loaded");
    // Loaded (and so claimed) a moment ago, then its session deleted.
    let now = super::gc::cutoff(std::time::Duration::ZERO);
    let lock = store.lock_session("s").unwrap();
    let docs = [text_doc("d1", &ha, &sa, Some(oa))];
    assert!(matches!(
        store
            .commit_load(&lock, "s", &docs, Some(&pack), None, &now)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    drop(lock);
    store
        .delete_session(store.lock_session("s").unwrap(), "s")
        .unwrap()
        .unwrap();
    // A load under way (in any process) holds the loads lock: the hour's
    // grace keeps what it may have claimed.
    let under_way =
        super::lock::LoadsLock::shared(&layout.loads_lock(), std::time::Duration::from_secs(5))
            .unwrap();
    let report = store.gc(super::gc::GC_GRACE).unwrap();
    assert!(!report.no_load_under_way);
    assert_eq!((report.texts_removed, report.packs_removed), (0, 0));
    assert!(layout.pack_file(&pack).exists());
    // None under way: nothing unnamed can be a load's to commit.
    drop(under_way);
    let report = store.gc(super::gc::GC_GRACE).unwrap();
    assert!(report.no_load_under_way, "{report:?}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.texts_removed, report.packs_removed), (1, 1));
    assert!(!layout.pack_file(&pack).exists());
}

#[test]
fn texts_opened_together_are_those_opened_one_by_one() {
    let (dir, store) = store_with_session(100);
    let (alpha, beta) = ("alpha text", "beta text");
    let Pair {
        hashes: (ha, hb),
        offsets: (_, ob),
        pack,
        ..
    } = committed_pair(&store, alpha, beta);
    // beta's first byte changes in the pack: its bytes no longer hash to its key.
    write_in_pack(dir.path(), &pack, ob, b"B", false);
    // A store opened afresh holds no open text.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let unknown = super::sha256_hex(b"never stored");
    let opened = store
        .texts(&[ha.as_str(), hb.as_str(), unknown.as_str(), ha.as_str()])
        .unwrap();
    assert_eq!(opened.len(), 4);
    assert_eq!(opened[0].as_ref().unwrap().as_str(), alpha);
    assert!(
        matches!(&opened[1], Err(super::StoreError::Corrupt { hash, .. }) if *hash == hb),
        "{:?}",
        opened[1]
    );
    assert!(
        matches!(&opened[2], Err(super::StoreError::MissingBlob { hash }) if *hash == unknown),
        "{:?}",
        opened[2]
    );
    assert_eq!(opened[3].as_ref().unwrap().as_str(), alpha);
    // Opened texts are kept: the next open, alone or together, shares them.
    let again = store.text(&ha).unwrap();
    assert!(std::sync::Arc::ptr_eq(&again, opened[0].as_ref().unwrap()));
    let together = store.texts(&[ha.as_str()]).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &again,
        together[0].as_ref().unwrap()
    ));
    // The damaged text was forgotten, as `text` forgets it.
    assert!(store.text(&hb).is_err());
    assert!(store.texts(&[]).unwrap().is_empty());
}

#[test]
fn a_text_opened_by_several_threads_at_once_is_one_text() {
    let (_dir, store) = store_with_session(100);
    let Pair {
        hashes: (ha, hb), ..
    } = committed_pair(&store, "alpha text", "beta text");
    // Each open below races the others on the rayon pool; the text cache
    // may keep one copy only, and every caller must get that copy.
    for round in 0..20 {
        store.forget_open_texts();
        let asked: Vec<&str> = (0..64)
            .map(|i| if i % 2 == 0 { ha.as_str() } else { hb.as_str() })
            .collect();
        let opened = store.texts(&asked).unwrap();
        let (a, b) = (store.text(&ha).unwrap(), store.text(&hb).unwrap());
        for (i, t) in opened.iter().enumerate() {
            let want = if i % 2 == 0 { &a } else { &b };
            assert!(
                std::sync::Arc::ptr_eq(want, t.as_ref().unwrap()),
                "round {round}: open {i} is a copy of its own"
            );
        }
        assert_eq!(store.open_texts(), 2);
    }
}

#[test]
fn texts_verified_stay_verified_while_their_pack_file_is_the_same() {
    let (dir, store) = store_with_session(100);
    let (alpha, beta) = ("alpha text", "beta text");
    let Pair {
        hashes: (ha, hb),
        offsets: (oa, _),
        pack,
        ..
    } = committed_pair(&store, alpha, beta);
    assert_eq!(store.text(&ha).unwrap().as_str(), alpha);
    assert_eq!(store.text(&hb).unwrap().as_str(), beta);
    assert_eq!(store.texts_hashed_in(&pack), Some(2));
    assert_eq!(store.verified_texts(&pack), 2);
    // The daemon idles: its open texts and their mappings go, what was
    // verified stays; a new mapping of the same file hashes nothing again.
    store.forget_open_texts();
    assert_eq!(store.texts_hashed_in(&pack), None, "mapping dropped");
    assert_eq!(store.verified_texts(&pack), 2);
    assert_eq!(store.text(&ha).unwrap().as_str(), alpha);
    assert_eq!(store.texts_hashed_in(&pack), Some(0));
    // The file written in place (alpha's first byte; its modification time
    // set a second on, as a write a timestamp tick later moves it): another
    // file for the store, whose texts are hashed again as they are opened.
    store.forget_open_texts();
    write_in_pack(dir.path(), &pack, oa, b"A", true);
    assert!(matches!(
        store.text(&ha),
        Err(super::StoreError::Corrupt { hash, .. }) if hash == ha
    ));
    // beta is hashed again too (the failed open's mapping went with it):
    // what the file as it is now has verified is beta alone.
    assert_eq!(store.text(&hb).unwrap().as_str(), beta);
    assert_eq!(store.texts_hashed_in(&pack), Some(1));
    assert_eq!(store.verified_texts(&pack), 1);
    // A pack gone (gc) is forgotten at the next idle.
    drop(store.text(&hb));
    store.forget_open_texts();
    std::fs::remove_file(super::Layout::new(dir.path()).pack_file(&pack)).unwrap();
    store.forget_open_texts();
    assert_eq!(store.verified_texts(&pack), 0);
}

#[test]
fn texts_a_load_wrote_are_vouched_for_until_their_pack_file_changes() {
    let (dir, store) = store_with_session(100);
    let (alpha, beta) = ("alpha text", "beta text");
    let mut w = store.new_pack().unwrap();
    let (oa, ob) = (
        w.append(alpha.as_bytes()).unwrap(),
        w.append(beta.as_bytes()).unwrap(),
    );
    let (pack, id) = w.finish_identified().unwrap().unwrap();
    let id = id.unwrap();
    let path = super::Layout::new(dir.path()).pack_file(&pack);
    assert_eq!(
        id,
        crate::text::PackFile::of(&std::fs::metadata(&path).unwrap()),
        "the identity is the file's as it is in place"
    );
    let (ha, hb) = (
        super::sha256_hex(alpha.as_bytes()),
        super::sha256_hex(beta.as_bytes()),
    );
    let lock = store.lock_session("s").unwrap();
    let shapes = (TextShape::of(alpha), TextShape::of(beta));
    let docs = [
        text_doc("d1", &ha, &shapes.0, Some(oa)),
        text_doc("d2", &hb, &shapes.1, Some(ob)),
    ];
    assert!(matches!(
        store
            .commit_load(&lock, "s", &docs, Some(&pack), None, T0)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    // Only alpha is vouched for (as a load vouches for what it wrote).
    store.vouch_written(&pack, id, [(oa, alpha.len() as u64, ha.as_str())]);
    assert_eq!(store.text(&ha).unwrap().as_str(), alpha);
    assert_eq!(store.texts_hashed_in(&pack), Some(0), "alpha: not hashed");
    assert_eq!(store.text(&hb).unwrap().as_str(), beta);
    assert_eq!(store.texts_hashed_in(&pack), Some(1), "beta: hashed");
    // The pack written in place since (its mtime moved): alpha is hashed
    // again when next opened, and found damaged.
    store.forget_open_texts();
    write_in_pack(dir.path(), &pack, oa, b"A", true);
    assert!(matches!(
        store.text(&ha),
        Err(super::StoreError::Corrupt { hash, .. }) if hash == ha
    ));
}
