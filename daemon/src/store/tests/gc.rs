//! Tests of gc against the loads (`store/gc.rs`, the load commit's checks
//! in `store/documents.rs`): what gc takes and keeps, and what a load
//! finds gone when it commits.

use super::{
    Pair, T0, T1, add_session, committed_pair, doc, store_with_session, stored_one, stored_pair,
    text_doc,
};
use crate::store::Store;
use crate::store::artifacts::NewArtifact;
use crate::store::documents::LoadCommit;
use crate::store::spans::{Chunking, NewChunkSpan};
use crate::text::TextShape;

/// `text` stored in a pack of its own and loaded into a new session `old`
/// as its document `d0`: as [`stored_one`] gives it.
fn loaded_in_old(store: &Store, text: &str) -> (String, TextShape, u64, String) {
    add_session(store, "old");
    let (h, shape, at, pack) = stored_one(store, text);
    let lock = store.lock_session("old").unwrap();
    let docs = [text_doc("d0", &h, &shape, Some(at))];
    assert!(matches!(
        store
            .commit_load(&lock, "old", &docs, Some(&pack), None, T0)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    (h, shape, at, pack)
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
    let under_way = crate::store::lock::LoadsLock::shared(
        &layout.loads_lock(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let report = store.gc(crate::store::gc::GC_GRACE).unwrap();
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
fn a_deleted_session_leaves_no_row_index_or_lock_and_gc_reclaims_its_texts() {
    let (dir, store) = store_with_session(100);
    let layout = crate::store::Layout::new(dir.path());
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
        Err(crate::store::StoreError::MissingBlob { .. })
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
    let (h, shape, ..) = loaded_in_old(&store, "shared text");
    // A load of s is under way (holding the loads lock, as every load does
    // from its start to its commit, and having read the store's removals
    // before its first lookup); it finds the text stored (claiming it long
    // ago), then gc collects it once "old" is deleted.
    let _under_way = crate::store::lock::LoadsLock::shared(
        &crate::store::Layout::new(dir.path()).loads_lock(),
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
    assert_eq!(
        store.gc(crate::store::gc::GC_GRACE).unwrap().texts_removed,
        0
    );
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
    let (h, shape, at, pack) = loaded_in_old(&store, "a text that will be found damaged");
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
    use crate::store::documents::FileRead;
    use crate::store::files::FileIdentity;
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
        .recorded_files(&["/f/alpha.txt", "/f/beta.txt"])
        .unwrap();
    assert!(recorded[0].is_none(), "{recorded:?}");
    assert_eq!(
        recorded[1].as_ref().map(|r| r.hash.as_str()),
        Some(hb.as_str())
    );
    let beta_key = claims.iter().find(|c| c.hash == hb).unwrap().key;
    assert_eq!(store.index_keys("i").unwrap(), [(beta_key, true)]);
    let broken: i64 = store
        .db
        .read(|c| {
            c.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(crate::store::StoreError::from)
        })
        .unwrap();
    assert_eq!(broken, 0);
    // Foreign keys are enforced again on every pooled connection: a text a
    // document names cannot be deleted.
    for _ in 0..4 {
        let refused = store.db.write(|tx| {
            tx.execute("DELETE FROM blobs WHERE hash = ?1", [&hb])
                .map_err(crate::store::StoreError::from)
        });
        assert!(refused.is_err(), "a named text was deleted");
    }
}

#[test]
fn gc_needs_no_grace_while_no_load_is_under_way() {
    let (dir, store) = store_with_session(100);
    let layout = crate::store::Layout::new(dir.path());
    let (ha, sa, oa, pack) = stored_one(&store, "alpha text, just loaded");
    // Loaded (and so claimed) a moment ago, then its session deleted.
    let now = crate::store::gc::cutoff(std::time::Duration::ZERO);
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
    let under_way = crate::store::lock::LoadsLock::shared(
        &layout.loads_lock(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let report = store.gc(crate::store::gc::GC_GRACE).unwrap();
    assert!(!report.no_load_under_way);
    assert_eq!((report.texts_removed, report.packs_removed), (0, 0));
    assert!(layout.pack_file(&pack).exists());
    // None under way: nothing unnamed can be a load's to commit.
    drop(under_way);
    let report = store.gc(crate::store::gc::GC_GRACE).unwrap();
    assert!(report.no_load_under_way, "{report:?}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.texts_removed, report.packs_removed), (1, 1));
    assert!(!layout.pack_file(&pack).exists());
}
