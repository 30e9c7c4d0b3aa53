//! The search index: persisted, reused after a restart, built once under
//! concurrency, and rebuilt (never served, never a panic) when damaged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use rlmd::{CallContext, Engine};
use serde_json::{Value, json};

use crate::common::*;

/// The first two are of words found once; the others of filler words.
const RARE_QUERIES: usize = 2;
const QUERIES: &[&str] = &[
    "zanzibar quokka",
    "lighthouse keeper",
    "copper kettle whistle",
    "ninety velvet",
];

/// A session with a few documents (some needles among filler), searched once
/// so that its index is built. Returns the session id and the answers.
fn indexed_session(env: &Env) -> (String, Vec<Value>) {
    let sid = env.session();
    let mut big = filler_text(11, 400_000);
    big.push_str("The zanzibar quokka lives near the lighthouse.\n");
    big.push_str(&filler_text(12, 200_000));
    env.load_all(
        &sid,
        &[
            &big,
            "The lighthouse keeper polishes a copper kettle.",
            &filler_text(13, 100_000),
        ],
    );
    let answers = search_all(&env.engine, &env.ctx, &sid);
    assert!(
        answers
            .iter()
            .all(|r| !r["matches"].as_array().unwrap().is_empty())
    );
    (sid, answers)
}

fn search_all(engine: &Engine, ctx: &CallContext, sid: &str) -> Vec<Value> {
    QUERIES
        .iter()
        .map(|q| {
            ok(
                "search",
                engine.call(
                    "rlm.search.query",
                    json!({"session_id": sid, "query": q, "limit": 5}),
                    ctx,
                ),
            )
        })
        .collect()
}

/// The matches without their scores, and the scores apart.
fn shape(r: &Value) -> (Vec<Value>, Vec<f64>) {
    let ms = r["matches"].as_array().unwrap();
    let scores = ms.iter().map(|m| m["score"].as_f64().unwrap()).collect();
    let stripped = ms
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut().unwrap().remove("score");
            m
        })
        .collect();
    (stripped, scores)
}

/// The same answers: the same scores for every query, and the same matches
/// for the queries of rare terms (common terms tie, and ties may come in
/// any order).
fn assert_same_answers(got: &[Value], want: &[Value]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (gm, gs) = shape(g);
        let (wm, ws) = shape(w);
        assert_eq!(gs.len(), ws.len(), "{}: {g} vs {w}", QUERIES[i]);
        if i < RARE_QUERIES {
            assert_eq!(gm, wm, "same matches for {}", QUERIES[i]);
        }
        for (a, b) in gs.iter().zip(&ws) {
            assert!(
                (a - b).abs() <= 1e-3 * b.abs().max(1.0),
                "scores {gs:?} vs {ws:?}"
            );
        }
    }
}

/// The search index every session of the store shares.
fn index_dir(env: &Env) -> PathBuf {
    env.data().join("search").join("index")
}

fn largest_file(dir: &Path) -> PathBuf {
    files_below(dir, &[])
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("the index has files")
}

/// Opens a fresh engine (a restart) on the env's data dir after dropping the env's.
fn restart(env: Env) -> (tempfile::TempDir, Engine, CallContext) {
    let Env { dir, engine, ctx } = env;
    let config = engine.config().clone();
    drop(engine);
    (dir, Engine::open(config).expect("reopens"), ctx)
}

#[test]
fn the_index_is_persisted_and_reused_after_a_restart() {
    let env = Env::new();
    let (sid, answers) = indexed_session(&env);
    assert!(index_dir(&env).join("meta.json").is_file());
    let (_dir, engine, ctx) = restart(env);
    let info = ok(
        "info",
        engine.call("rlm.session.info", json!({"session_id": sid}), &ctx),
    );
    assert_eq!(info["index_built"], true, "{info}");
    let again = search_all(&engine, &ctx, &sid);
    for r in &again {
        assert_eq!(r["index_built_this_call"], false, "not rebuilt: {r}");
        assert_eq!(r["index_built"], true);
    }
    assert_same_answers(&again, &answers);
}

#[test]
fn a_closed_sessions_index_is_reused_after_a_restart() {
    let env = Env::new();
    let (sid, answers) = indexed_session(&env);
    env.call("rlm.session.close", json!({"session_id": sid}));
    let (_dir, engine, ctx) = restart(env);
    let info = ok(
        "info",
        engine.call("rlm.session.info", json!({"session_id": sid}), &ctx),
    );
    assert_eq!(info["index_built"], true);
    let again = search_all(&engine, &ctx, &sid);
    assert_eq!(again[0]["index_built_this_call"], false);
    assert_same_answers(&again, &answers);
}

fn damaged_index_is_rebuilt(damage: impl FnOnce(&Path)) {
    let env = Env::new();
    let (sid, answers) = indexed_session(&env);
    let dir = index_dir(&env);
    let (_tmp, engine, ctx) = restart(env);
    damage(&dir);
    let again = search_all(&engine, &ctx, &sid);
    assert_eq!(
        again[0]["index_built_this_call"], true,
        "the damaged index was rebuilt: {}",
        again[0]
    );
    for r in &again[1..] {
        assert_eq!(r["index_built_this_call"], false);
    }
    assert_same_answers(&again, &answers);
    // The rebuilt index is sound: a further restart reuses it.
    let config = engine.config().clone();
    drop(engine);
    let engine = Engine::open(config).unwrap();
    let third = search_all(&engine, &ctx, &sid);
    assert_eq!(third[0]["index_built_this_call"], false, "{}", third[0]);
    assert_same_answers(&third, &answers);
}

#[test]
fn an_index_with_overwritten_bytes_is_rebuilt() {
    damaged_index_is_rebuilt(|dir| {
        let victim = largest_file(dir);
        let mut bytes = std::fs::read(&victim).unwrap();
        assert!(bytes.len() > 64, "{victim:?}");
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 32] {
            *b ^= 0xA5;
        }
        std::fs::write(&victim, bytes).unwrap();
    });
}

#[test]
fn an_index_missing_a_segment_file_is_rebuilt() {
    damaged_index_is_rebuilt(|dir| {
        let victim = files_below(dir, &[])
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "term"))
            .expect("a .term segment file");
        std::fs::remove_file(victim).unwrap();
    });
}

#[test]
fn an_index_with_every_segment_file_truncated_is_rebuilt() {
    damaged_index_is_rebuilt(|dir| {
        for p in files_below(dir, &[]) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".json") && !name.starts_with('.') {
                let len = std::fs::metadata(&p).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                f.set_len(len / 3).unwrap();
            }
        }
    });
}

#[test]
fn an_index_with_a_garbled_meta_file_is_rebuilt() {
    damaged_index_is_rebuilt(|dir| {
        std::fs::write(dir.join("meta.json"), b"{ not json at all").unwrap();
    });
}

/// A file in the index folder's place: every search said "retry... a
/// damaged index is rebuilt", and it never was.
#[test]
fn an_index_folder_replaced_by_a_file_is_rebuilt() {
    damaged_index_is_rebuilt(|dir| {
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::write(dir, b"not a folder").unwrap();
    });
}

#[test]
fn a_deleted_index_is_rebuilt() {
    damaged_index_is_rebuilt(|dir| {
        std::fs::remove_dir_all(dir).unwrap();
    });
}

#[test]
fn concurrent_first_searches_build_the_index_once() {
    let env = Env::new();
    let sid = env.session();
    env.load_all(
        &sid,
        &[
            &filler_text(21, 300_000),
            "the lighthouse keeper keeps a copper kettle",
        ],
    );
    let other = env.reopen();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let engine = if i % 2 == 0 {
                env.engine.clone()
            } else {
                other.clone()
            };
            let (barrier, sid) = (barrier.clone(), sid.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ok(
                    "search",
                    engine.call(
                        "rlm.search.query",
                        json!({"session_id": sid, "query": "lighthouse kettle"}),
                        &CallContext::default(),
                    ),
                )
            })
        })
        .collect();
    let results: Vec<Value> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let built = results
        .iter()
        .filter(|r| r["index_built_this_call"] == true)
        .count();
    assert_eq!(built, 1, "one build, the others wait and reuse it");
    for r in &results {
        assert_eq!(shape(r).0, shape(&results[0]).0);
        assert!(!r["matches"].as_array().unwrap().is_empty());
    }
}
