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

mod gc;
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
