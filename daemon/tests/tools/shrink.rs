//! A store that shrinks: sessions deleted, gc racing loads and searches of
//! the same texts in another engine on the same data folder, retention.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rlm::config::Retention;
use serde_json::json;

use super::common::*;

/// Every document row names a blob row whose pack holds its whole range.
fn assert_no_dangling_text(env: &Env) {
    let db = env.db();
    let missing: i64 = db
        .query_row(
            "SELECT count(*) FROM documents d LEFT JOIN blobs b ON b.hash = d.hash \
             WHERE b.hash IS NULL OR b.offset < 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0, "documents name texts gc removed");
    let mut st = db
        .prepare(
            "SELECT DISTINCT b.pack, b.offset + b.length_bytes FROM documents d \
             JOIN blobs b ON b.hash = d.hash WHERE b.length_bytes > 0",
        )
        .unwrap();
    let ranges: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let layout = rlmd::store::Layout::new(&env.data());
    for (pack, end) in ranges {
        let len = std::fs::metadata(layout.pack_file(&pack))
            .map(|m| m.len() as i64)
            .unwrap_or(-1);
        assert!(
            len >= end,
            "pack {pack} is {len} bytes, a document needs {end}"
        );
    }
}

#[test]
fn gc_in_one_engine_never_takes_a_text_a_load_in_another_commits() {
    let env = Env::new();
    let other = Arc::new(env.reopen());
    let texts: Vec<String> = (0..6)
        .map(|i| format!("text number {i} {}\n", "padding ".repeat(200 * (i + 1))))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    // The other engine collects as hard as it can: no grace at all.
    let collector = {
        let (other, stop) = (other.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut passes = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let report = other.gc_with(Duration::ZERO, Duration::ZERO).unwrap();
                assert!(report.errors.is_empty(), "{:?}", report.errors);
                passes += 1;
            }
            passes
        })
    };
    let (mut loaded, mut refused) = (0, 0);
    let mut previous: Option<String> = None;
    for round in 0..60 {
        let sid = env.session();
        // Half the texts each round, so texts come and go and packs mix.
        let sources: Vec<_> = texts
            .iter()
            .skip(round % 2)
            .step_by(2)
            .map(|t| json!({"type": "inline", "content": t}))
            .collect();
        match env.try_call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": sources}),
        ) {
            Ok(r) => {
                loaded += 1;
                // Every text is found through the shared index, whatever gc
                // takes meanwhile in the other engine.
                let found = env.search(&sid, json!({"query": "text number", "limit": 20}));
                let mut ids: Vec<&str> = found["matches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["doc_id"].as_str().unwrap())
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), sources.len(), "{found}");
                assert_eq!(
                    env.count(
                        "SELECT count(*) FROM documents d WHERE d.session_id = ?1 AND NOT EXISTS \
                         (SELECT 1 FROM indexed_texts t WHERE t.hash = d.hash AND t.committed = 1)",
                        [&sid],
                    ),
                    0,
                    "a document whose text has no index entry"
                );
                for d in r["loaded"].as_array().unwrap() {
                    let p = env.call(
                        "rlm.docs.peek",
                        json!({"session_id": sid, "doc_id": d["doc_id"], "start": 0, "end": 30}),
                    );
                    assert!(
                        p["content"].as_str().unwrap().starts_with("text number"),
                        "{p}"
                    );
                }
            }
            Err(e) => {
                // Only the clean refusal: nothing was loaded, retry.
                let e = tool_err("rlm.docs.load", Err(e));
                assert!(
                    e.code.as_str() == "busy" || e.message.contains("syncing stored texts"),
                    "{e:?}"
                );
                refused += 1;
            }
        }
        // The previous round's session goes: its texts become garbage
        // unless this round's load holds them.
        if let Some(old) = previous.replace(sid) {
            assert_eq!(env.engine.delete_session(&old).status, "deleted");
        }
        assert_no_dangling_text(&env);
    }
    stop.store(true, Ordering::SeqCst);
    let passes = collector.join().unwrap();
    assert!(
        passes > 0 && loaded > 0,
        "gc passes {passes}, loads {loaded}, refused {refused}"
    );
    // What is left reads whole, in either engine.
    let sid = previous.unwrap();
    for row in env.call("rlm.docs.list", json!({"session_id": sid}))["documents"]
        .as_array()
        .unwrap()
    {
        let n = row["length_chars"].as_u64().unwrap();
        let p = ok(
            "rlm.docs.peek",
            other.call(
                "rlm.docs.peek",
                json!({"session_id": sid, "doc_id": row["doc_id"], "start": 0, "end": n}),
                &env.ctx,
            ),
        );
        assert_eq!(p["content_hash"], row["content_hash"]);
    }
    assert_no_dangling_text(&env);
    eprintln!("gc passes {passes}, loads {loaded}, refused {refused}");
}

#[test]
fn deleting_every_session_and_gc_empties_the_store() {
    let env = Env::new();
    let a = env.session();
    let b = env.session();
    let big = "x".repeat(100_000);
    env.load(&a, &big);
    env.load(&b, &big);
    env.load(&b, "only b");
    let packs = || {
        std::fs::read_dir(env.data().join("blobs/packs"))
            .unwrap()
            .count()
    };
    assert!(packs() > 0);
    let outcomes = env.engine.delete_sessions(&[a.clone(), "nope".into(), b]);
    let statuses: Vec<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
    assert_eq!(statuses, ["deleted", "not_found", "deleted"]);
    assert!(outcomes[1].message.contains("nope"), "{:?}", outcomes[1]);
    let report = env.engine.gc_with(Duration::ZERO, Duration::ZERO).unwrap();
    assert_eq!(report.texts_removed, 2, "{report:?}");
    assert_eq!(packs(), 0);
    assert_eq!(env.count("SELECT count(*) FROM blobs", []), 0);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM traces WHERE session_id IS NOT NULL",
            []
        ),
        0
    );
    let e = env.fail("rlm.session.info", json!({"session_id": a}));
    expect_code(&e, "session_not_found");
}

#[test]
fn retention_closes_idle_sessions_and_deletes_long_closed_ones() {
    let env = Env::new();
    let idle = env.session();
    let busy = env.session();
    let closed_long_ago = env.session();
    let closed_lately = env.session();
    env.call("rlm.session.close", json!({"session_id": closed_long_ago}));
    env.call("rlm.session.close", json!({"session_id": closed_lately}));
    // Age them in the store instead of waiting.
    let db = env.db();
    let old = "2020-01-01T00:00:00.000000Z";
    db.execute(
        "UPDATE sessions SET created_at = ?1 WHERE session_id IN (?2, ?3)",
        rusqlite::params![old, idle, busy],
    )
    .unwrap();
    db.execute(
        "UPDATE traces SET created_at = ?1 WHERE session_id = ?2",
        rusqlite::params![old, idle],
    )
    .unwrap();
    db.execute(
        "UPDATE sessions SET closed_at = ?1 WHERE session_id = ?2",
        rusqlite::params![old, closed_long_ago],
    )
    .unwrap();
    // `busy` was created long ago but called just now.
    env.info(&busy);
    let off = Retention {
        delete_closed_after_days: 0,
        close_idle_after_days: 0,
    };
    assert_eq!(
        env.engine.apply_retention(&off).unwrap(),
        Default::default()
    );
    let pass = env
        .engine
        .apply_retention(&Retention {
            delete_closed_after_days: 30,
            close_idle_after_days: 30,
        })
        .unwrap();
    assert_eq!(pass.closed, vec![idle.clone()]);
    assert_eq!(pass.deleted, vec![closed_long_ago.clone()]);
    assert!(pass.failed.is_empty(), "{:?}", pass.failed);
    assert_eq!(env.info(&idle)["status"], "completed");
    assert_eq!(env.info(&busy)["status"], "active");
    assert_eq!(env.info(&closed_lately)["status"], "completed");
    expect_code(
        &env.fail("rlm.session.info", json!({"session_id": closed_long_ago})),
        "session_not_found",
    );
}
