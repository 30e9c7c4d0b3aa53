//! Tests of the index keys (`store/indexed.rs`): what a claim gives each
//! text, and that its statements look each listed row up in an index.

use super::{LoadCommit, NewDocument, T0, TextShape, store_with_session, text_doc};
use crate::store::Store;

/// These texts stored in one pack and loaded into session `s`, a document
/// each: their hashes.
fn loaded_texts(store: &Store, texts: &[&str]) -> Vec<String> {
    let mut w = store.new_pack().unwrap();
    let offsets: Vec<u64> = texts
        .iter()
        .map(|t| w.append(t.as_bytes()).unwrap())
        .collect();
    let pack = w.finish().unwrap().unwrap();
    let hashes: Vec<String> = texts
        .iter()
        .map(|t| crate::store::sha256_hex(t.as_bytes()))
        .collect();
    let shapes: Vec<TextShape> = texts.iter().map(|t| TextShape::of(t)).collect();
    let ids: Vec<String> = (0..texts.len()).map(|i| format!("d{i}")).collect();
    let docs: Vec<NewDocument<'_>> = (0..texts.len())
        .map(|i| text_doc(&ids[i], &hashes[i], &shapes[i], Some(offsets[i])))
        .collect();
    let lock = store.lock_session("s").unwrap();
    assert!(matches!(
        store
            .commit_load(&lock, "s", &docs, Some(&pack), None, T0)
            .unwrap(),
        LoadCommit::Committed { .. }
    ));
    hashes
}

#[test]
fn a_claim_keys_new_texts_anew_keeps_an_unfinished_claims_key_and_skips_indexed_texts() {
    let (_dir, store) = store_with_session(100);
    let owned = loaded_texts(&store, &["alpha", "beta", "gamma", "delta", "epsilon"]);
    let h: Vec<&str> = owned.iter().map(String::as_str).collect();
    let hashes_of = |claims: &[crate::store::indexed::KeyClaim]| -> Vec<String> {
        claims.iter().map(|c| c.hash.clone()).collect()
    };
    // alpha and beta claimed; only alpha's addition committed.
    let first = store.claim_index_keys("i", &[h[0], h[1]]).unwrap();
    assert_eq!(hashes_of(&first), [h[0], h[1]]);
    assert!(first.iter().all(|c| !c.replace), "{first:?}");
    assert_ne!(first[0].key, first[1].key);
    store.commit_index_keys(&[first[0].key]).unwrap();

    // In the order asked, each text once; alpha, indexed, left out.
    let asked = [h[4], h[1], h[0], h[2], h[4], h[3]];
    let second = store.claim_index_keys("i", &asked).unwrap();
    assert_eq!(hashes_of(&second), [h[4], h[1], h[2], h[3]]);
    for c in &second {
        if c.hash == h[1] {
            // Claimed before and never committed: its key again, its
            // passages to be replaced.
            assert_eq!(c.key, first[1].key);
            assert!(c.replace);
        } else {
            // A key no text had before (AUTOINCREMENT: never one reused).
            assert!(c.key > first[1].key.max(first[0].key), "{c:?}");
            assert!(!c.replace);
        }
    }
    let mut keys: Vec<u64> = second.iter().map(|c| c.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 4);

    // Another index's claims are its own.
    let other = store.claim_index_keys("j", &[h[0]]).unwrap();
    assert_eq!(hashes_of(&other), [h[0]]);
    assert!(!other[0].replace);
    assert!(!keys.contains(&other[0].key) && other[0].key != first[0].key);

    store.commit_index_keys(&keys).unwrap();
    let held = store.index_keys("i").unwrap();
    assert_eq!(held.len(), 5);
    assert!(held.iter().all(|&(_, committed)| committed), "{held:?}");
    assert!(store.claim_index_keys("i", &h).unwrap().is_empty());
}

/// The claim's statements find each listed row through an index: a plan
/// that reads the table's rows for each listed item took minutes at the
/// scale of a build.
#[test]
fn a_claims_statements_look_each_listed_row_up_in_an_index() {
    let (_dir, store) = store_with_session(100);
    for (sql, lookup) in [
        (
            crate::store::indexed::CLAIMED_ROWS,
            "(index_id=? AND hash=?)",
        ),
        (crate::store::indexed::COMMIT_KEYS, "(rowid=?)"),
    ] {
        let plan: Vec<String> = store
            .db
            .read(|c| {
                let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                let nulls = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
                let lines = st
                    .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, crate::store::StoreError>(lines)
            })
            .unwrap();
        let on_the_table: Vec<&String> = plan
            .iter()
            .filter(|l| l.contains("indexed_texts") || l.contains(" t "))
            .collect();
        assert!(
            !on_the_table.is_empty()
                && on_the_table
                    .iter()
                    .all(|l| l.starts_with("SEARCH") && l.contains(lookup)),
            "{plan:?}"
        );
    }
}
