//! Compaction of the shared search index (`engine/index/compact.rs`), its
//! one merger: builds merge nothing; the segments a build leaves are merged
//! after it, searches answer the same before and after, nothing is built
//! again; a gc's deletions leave the files; a compaction waits for a writer
//! of its own process, for calls to pause (unless the index is crowded),
//! and leaves the index to a writer of another process.

use std::time::{Duration, Instant};

use rlmd::store::layout::SEARCH_DIR;
use rlmd::{CallContext, Engine, EngineConfig};
use serde_json::{Value, json};

use super::common::*;

const STEP: u64 = rlmd::engine::COMPACTION_STEP_BYTES;

/// The number of segments of the index's last commit on disk.
fn segments(env: &Env) -> usize {
    let meta = std::fs::read(env.data().join(SEARCH_DIR).join("index").join("meta.json"))
        .expect("a committed index");
    let v: Value = serde_json::from_slice(&meta).unwrap();
    v["segments"].as_array().unwrap().len()
}

fn word(i: usize) -> String {
    format!("wombat{}", (b'a' + i as u8) as char)
}

/// An engine whose builds commit every few thousand characters: a build
/// of `texts()` leaves a segment a text at least (a commit's passages are
/// split between the writer's threads).
fn env(compact: bool) -> Env {
    Env::with(|c| {
        c.index_batch_chars = 3_000;
        c.compact_index = compact;
    })
}

fn texts() -> Vec<String> {
    (0..6)
        .map(|i| {
            format!(
                "text {i} tells of the {} and its burrow\n{}",
                word(i),
                filler_text(300 + i as u64, 2_500)
            )
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "wombatc burrow",
    "wombatf",
    "burrow text",
    "wombate wombata",
];

/// Each query's matches (document, span, score bits), in a canonical order:
/// merging changes passages' ids, so equal scores may come in another order.
fn answers(engine: &Engine, ctx: &CallContext, sid: &str) -> Vec<Vec<(String, u64, u64, u64)>> {
    QUERIES
        .iter()
        .map(|q| {
            let r = ok(
                "search",
                engine.call(
                    "rlm.search.query",
                    json!({"session_id": sid, "query": q, "limit": 50}),
                    ctx,
                ),
            );
            assert_eq!(r["index_built_this_call"], false, "{q}: {r}");
            let mut v: Vec<_> = r["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        str_of(m, "doc_id").to_owned(),
                        u64_of(&m["span"], "start"),
                        u64_of(&m["span"], "end"),
                        m["score"].as_f64().unwrap().to_bits(),
                    )
                })
                .collect();
            v.sort();
            v
        })
        .collect()
}

/// A session holding `texts()`, its index built (in many segments).
/// Returns it and the number of segments.
fn built(env: &Env) -> (String, usize) {
    let sid = env.session();
    let refs: Vec<String> = texts();
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    env.load_all(&sid, &refs);
    let r = env.search(&sid, json!({"query": "wombata"}));
    assert_eq!(r["index_built_this_call"], true, "{r}");
    (sid, many_segments(env))
}

/// The segments of the index, which a build of `texts()` left: several.
fn many_segments(env: &Env) -> usize {
    let n = segments(env);
    assert!(n >= 3, "the build left {n} segments");
    n
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_build_is_compacted_after_it_and_answers_the_same() {
    // Built without compaction: the segments stay as the build left them.
    let env = env(false);
    let (sid, before) = built(&env);
    let want = answers(&env.engine, &env.ctx, &sid);
    assert_eq!(segments(&env), before, "no compaction when it is off");
    // Another daemon on the same store, with compaction on: its next build
    // (another session's new text) is followed by a compaction of the lot.
    let mut config: EngineConfig = env.engine.config().clone();
    config.compact_index = true;
    let other = Engine::open(config).unwrap();
    let sid2 = session_on(&other, &env.ctx, json!({}));
    ok(
        "load",
        other.call(
            "rlm.docs.load",
            json!({"session_id": sid2, "sources": [{"type": "inline", "content": "a koala naps"}]}),
            &env.ctx,
        ),
    );
    let r = ok(
        "search",
        other.call(
            "rlm.search.query",
            json!({"session_id": sid2, "query": "koala"}),
            &env.ctx,
        ),
    );
    assert_eq!(r["total_matches"], 1, "{r}");
    wait_for("one segment", || segments(&env) == 1);
    // Both daemons answer as before, and neither builds anything again.
    assert_eq!(answers(&other, &env.ctx, &sid), want);
    assert_eq!(answers(&env.engine, &env.ctx, &sid), want);
    // So does a restart.
    let again = env.reopen();
    assert_eq!(answers(&again, &env.ctx, &sid), want);
}

#[test]
fn a_compaction_leaves_the_index_to_another_process_holding_it() {
    let env = env(false);
    let (sid, before) = built(&env);
    let held = env.index_write_lock();
    let done = env.engine.compact_index(STEP).unwrap();
    assert_eq!(done.steps, 0, "{done:?}");
    assert_eq!(segments(&env), before);
    drop(held);
    let done = env.engine.compact_index(STEP).unwrap();
    assert!(done.steps >= 1, "{done:?}");
    assert_eq!(done.left, Some(1), "{done:?}");
    assert_eq!(segments(&env), 1);
    let want_after = answers(&env.engine, &env.ctx, &sid);
    assert_eq!(answers(&env.reopen(), &env.ctx, &sid), want_after);
}

/// A writer of the compaction's own process that waits for the index goes
/// first (a background build, which is no tool call); the compaction goes
/// on after it.
#[test]
fn a_compaction_waits_for_a_writer_of_its_process() {
    let env = Env::with(|c| {
        c.index_batch_chars = 3_000;
        c.compact_index = false;
        c.background_index = true;
    });
    let sid = env.session();
    let all = texts();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    env.load_all(&sid, &refs);
    // The load's background build, or this search's, builds the index.
    env.search(&sid, json!({"query": "wombata"}));
    wait_for("the background build to end", || {
        env.engine.index_writers() == 0
    });
    let want = answers(&env.engine, &env.ctx, &sid);
    many_segments(&env);
    // Another process holds the index: the next load's background build waits.
    let held = env.index_write_lock();
    let sid2 = env.session();
    env.load_all(&sid2, &["a numbat digs for termites"]);
    let loaded = Instant::now();
    wait_for("the background build waiting for the lock", || {
        env.engine.index_writers() == 1
    });
    let compaction = {
        let engine = env.engine.clone();
        std::thread::spawn(move || engine.compact_index(STEP).unwrap())
    };
    // The compaction waits while the build does: taking the build for
    // another process's, it would end at once, having merged nothing. (The
    // lock is held until calls have paused, so that the compaction is past
    // waiting for them: only the build holds it back then.)
    wait_for("calls to have paused", || {
        loaded.elapsed() > 2 * rlmd::engine::COMPACTION_QUIET
    });
    drop(held);
    let done = compaction.join().unwrap();
    assert!(done.steps >= 1, "{done:?}");
    // One segment: the compaction came after the build's commit (before
    // it, the build's own segment would be left beside the merged one).
    assert_eq!(segments(&env), 1);
    assert_eq!(answers(&env.engine, &env.ctx, &sid), want);
    let r = env.search(&sid2, json!({"query": "numbat"}));
    assert_eq!(
        r["index_built_this_call"], false,
        "the background build did it: {r}"
    );
    assert_eq!(r["total_matches"], 1, "{r}");
}

/// Calls come first: while they keep coming, the compaction merges nothing;
/// once they pause, it does.
#[test]
fn a_compaction_waits_for_calls_to_pause() {
    let env = env(false);
    let (sid, before) = built(&env);
    let compaction = {
        let engine = env.engine.clone();
        std::thread::spawn(move || engine.compact_index(STEP).unwrap())
    };
    // Calls one after the other for three times the pause the compaction
    // waits for: not one merge meanwhile.
    let calling = Instant::now();
    while calling.elapsed() < 3 * rlmd::engine::COMPACTION_QUIET {
        env.info(&sid);
        assert_eq!(segments(&env), before, "a merge while calls came");
    }
    let done = compaction.join().unwrap();
    assert!(done.steps >= 1, "{done:?}");
    assert_eq!(segments(&env), 1);
}

/// Builds merge nothing: the compaction owns every merge (a build that
/// merged would make the search behind it wait for the merge; tantivy's
/// `LogMergePolicy` merged eight segments of one size as the eighth came).
#[test]
fn builds_merge_nothing() {
    let env = env(false);
    for i in 0..10 {
        let sid = env.session();
        env.load_all(&sid, &[&format!("text {i} tells of the {}", word(i))]);
        let r = env.search(&sid, json!({"query": word(i)}));
        assert_eq!(r["index_built_this_call"], true, "{r}");
        assert_eq!(r["total_matches"], 1, "{r}");
        // A text of one passage: a segment a build.
        assert_eq!(segments(&env), i + 1, "after build {i}");
    }
    let done = env.engine.compact_index(STEP).unwrap();
    assert_eq!((done.segments, done.left), (10, Some(1)), "{done:?}");
}

/// The passages of the texts a gc removed are dropped from the index's
/// files by the compaction that follows the gc, even from a segment that
/// nothing else is merged with.
#[test]
fn a_gc_is_followed_by_a_compaction_that_drops_what_it_deleted() {
    let env = env(true);
    let index_dir = env.data().join(SEARCH_DIR).join("index");
    // The passages in the segments' files (deleted ones included), and the
    // segments with deletions.
    let passages = || {
        let meta = std::fs::read(index_dir.join("meta.json")).unwrap();
        let v: Value = serde_json::from_slice(&meta).unwrap();
        let segments = v["segments"].as_array().unwrap().clone();
        let held: u64 = segments.iter().map(|s| u64_of(s, "max_doc")).sum();
        let with_deletes = segments.iter().filter(|s| !s["deletes"].is_null()).count();
        (held, with_deletes)
    };
    // Two texts in one session, and one of them in another.
    let gone = format!("the bilby {}", filler_text(500, 2_500));
    let kept = format!("the quoll {}", filler_text(501, 2_500));
    let one = env.session();
    env.load_all(&one, &[&gone, &kept]);
    assert_eq!(
        env.search(&one, json!({"query": "bilby"}))["total_matches"],
        1
    );
    let two = env.session();
    env.load_all(&two, &[&kept]);
    wait_for("the build's segments merged into one", || {
        segments(&env) == 1
    });
    let (both, _) = passages();
    // The first session goes: the bilby's text with it.
    assert_eq!(env.engine.delete_session(&one).status, "deleted");
    let report = env.engine.gc_with(Duration::ZERO, Duration::ZERO).unwrap();
    assert_eq!(report.index_texts_removed, 1, "{report:?}");
    // Its passages: the index's files held them, and lose them.
    wait_for("the deleted passages dropped", || {
        let (held, with_deletes) = passages();
        held < both && with_deletes == 0 && segments(&env) == 1
    });
    let r = env.search(&two, json!({"query": "quoll"}));
    assert_eq!(r["index_built_this_call"], false, "{r}");
    assert_eq!(r["total_matches"], 1, "{r}");
}

/// A client that never pauses does not hold the compaction back for good:
/// past `COMPACTION_CROWDED` segments it merges while calls keep coming.
#[test]
fn a_crowded_index_is_compacted_while_calls_keep_coming() {
    let env = env(false);
    let crowded = rlmd::engine::COMPACTION_CROWDED;
    let mut sid = String::new();
    for i in 0..=crowded {
        sid = env.session();
        env.load_all(&sid, &[&format!("text {i} tells of the wombat{i}")]);
        let r = env.search(&sid, json!({"query": format!("wombat{i}")}));
        assert_eq!(r["total_matches"], 1, "{r}");
    }
    assert_eq!(segments(&env), crowded + 1);
    let compaction = {
        let engine = env.engine.clone();
        std::thread::spawn(move || engine.compact_index(STEP).unwrap())
    };
    // Calls one after the other, never pausing: the merge comes anyway.
    let deadline = Instant::now() + Duration::from_secs(60);
    while segments(&env) > crowded {
        assert!(Instant::now() < deadline, "no merge while calls came");
        env.info(&sid);
    }
    let done = compaction.join().unwrap();
    assert_eq!(done.left, Some(1), "{done:?}");
    let r = env.search(&sid, json!({"query": format!("wombat{crowded}")}));
    assert_eq!(r["index_built_this_call"], false, "{r}");
    assert_eq!(r["total_matches"], 1, "{r}");
}
