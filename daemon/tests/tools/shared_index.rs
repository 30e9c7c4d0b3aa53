//! One search index for the whole store: a text is indexed once, whichever
//! sessions hold it; each session still finds only its own documents, with
//! its own ids; its scores do not depend on what other sessions hold; gc
//! takes the passages of deleted texts; an addition cut short is redone, not
//! doubled; a load and an index build report their progress; a search
//! waits for the build its load began.

use std::sync::{Arc, Mutex};

use rlm::config::WordForms;
use rlmd::CallContext;
use rlmd::search::bm25::Statistics;
use serde_json::{Value, json};

use super::common::*;

const QUERIES: &[&str] = &[
    "zanzibar quokka",
    "lighthouse keeper",
    "copper kettle whistle",
];

fn texts() -> Vec<String> {
    let mut big = filler_text(31, 300_000);
    big.push_str("\nThe zanzibar quokka lives near the lighthouse.\n");
    big.push_str(&filler_text(32, 100_000));
    vec![
        big,
        "The lighthouse keeper polishes a copper kettle.\n".to_owned(),
        filler_text(33, 80_000),
    ]
}

fn load(env: &Env, sid: &str, texts: &[String]) -> Vec<String> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    env.load_all(sid, &refs)
}

fn search(env: &Env, sid: &str, query: &str) -> Value {
    env.search(sid, json!({"query": query, "limit": 10}))
}

/// A match with its document named by its place in `ids`, and its score.
fn matches_by_place(r: &Value, ids: &[String]) -> Vec<(usize, u64, u64, String, f64)> {
    r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let place = ids
                .iter()
                .position(|d| d == m["doc_id"].as_str().unwrap())
                .unwrap_or_else(|| panic!("a match outside the session's documents: {m}"));
            (
                place,
                u64_of(&m["span"], "start"),
                u64_of(&m["span"], "end"),
                m["context"].as_str().unwrap().to_owned(),
                m["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The same ranking: the same scores, and the same matches for each score
/// but the lowest (ties come in any order, and a tie at the limit may be
/// cut anywhere).
fn assert_same_ranking(got: &Value, got_ids: &[String], want: &Value, want_ids: &[String]) {
    let (g, w) = (
        matches_by_place(got, got_ids),
        matches_by_place(want, want_ids),
    );
    let scores = |m: &[(usize, u64, u64, String, f64)]| m.iter().map(|x| x.4).collect::<Vec<_>>();
    assert_eq!(scores(&g), scores(&w), "{got}\n{want}");
    let lowest = scores(&w).into_iter().fold(f64::INFINITY, f64::min);
    let above = |m: &[(usize, u64, u64, String, f64)]| {
        let mut v: Vec<_> = m
            .iter()
            .filter(|x| x.4 > lowest)
            .map(|x| (x.0, x.1, x.2, x.3.clone(), x.4.to_bits()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(above(&g), above(&w), "{got}\n{want}");
}

/// Two sessions sharing one of their texts: the first two of `texts()`,
/// the last two. Each session's id and its documents' ids.
fn two_sessions(env: &Env) -> ((String, Vec<String>), (String, Vec<String>)) {
    let texts = texts();
    let one = env.session();
    let one_ids = load(env, &one, &texts[..2]);
    let two = env.session();
    let two_ids = load(env, &two, &texts[1..]);
    ((one, one_ids), (two, two_ids))
}

/// Rows of `indexed_texts` (committed or not).
fn indexed_rows(env: &Env) -> i64 {
    env.count("SELECT count(*) FROM indexed_texts", [])
}

#[test]
fn a_second_session_over_the_same_texts_indexes_nothing_and_answers_alike() {
    let env = Env::new();
    let texts = texts();
    let first = env.session();
    let first_ids = load(&env, &first, &texts);
    let answers: Vec<Value> = QUERIES.iter().map(|q| search(&env, &first, q)).collect();
    assert_eq!(answers[0]["index_built_this_call"], true, "{}", answers[0]);
    assert_eq!(indexed_rows(&env), 3);

    let second = env.session();
    let second_ids = load(&env, &second, &texts);
    assert_eq!(
        env.info(&second)["index_built"],
        true,
        "its texts are indexed already"
    );
    for (q, want) in QUERIES.iter().zip(&answers) {
        let got = search(&env, &second, q);
        assert_eq!(got["index_built_this_call"], false, "{q}: {got}");
        // The same places, contexts and scores, under the second session's ids.
        assert_same_ranking(&got, &second_ids, want, &first_ids);
    }
    assert_eq!(indexed_rows(&env), 3, "each text indexed once");
    // A restart (another daemon) reuses the index too.
    let engine = env.reopen();
    let again = ok(
        "search",
        engine.call(
            "rlm.search.query",
            json!({"session_id": second, "query": QUERIES[0], "limit": 10}),
            &env.ctx,
        ),
    );
    assert_eq!(again["index_built_this_call"], false, "{again}");
    assert_same_ranking(&again, &second_ids, &answers[0], &first_ids);
}

#[test]
fn a_session_finds_only_its_own_texts() {
    let env = Env::new();
    let texts = texts();
    let mine = env.session();
    let my_ids = load(&env, &mine, &texts[..1]);
    let theirs = env.session();
    let their_ids = load(&env, &theirs, &texts[1..]);
    let r = search(
        &env,
        &mine,
        "zanzibar quokka lighthouse keeper copper kettle",
    );
    let found: Vec<&str> = r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["doc_id"].as_str().unwrap())
        .collect();
    assert!(!found.is_empty(), "{r}");
    assert!(found.iter().all(|d| my_ids.contains(&d.to_string())), "{r}");
    let r = search(&env, &theirs, "zanzibar quokka");
    assert!(
        r["matches"].as_array().unwrap().is_empty(),
        "another session's text is not found: {r}"
    );
    // Their text ranks first for the words only it holds together (the filler
    // also holds "copper" and "kettle", apart).
    let r = search(&env, &theirs, "lighthouse keeper copper kettle");
    assert_eq!(r["matches"][0]["doc_id"], their_ids[0].as_str(), "{r}");
    // A search restricted to some documents stays inside them.
    let r = env.search(
        &theirs,
        json!({"query": "copper kettle lighthouse", "doc_ids": [their_ids[1]]}),
    );
    assert!(
        r["matches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["doc_id"] == their_ids[1].as_str()),
        "{r}"
    );
}

#[test]
fn one_text_loaded_twice_is_a_match_in_each_document() {
    let env = Env::new();
    let sid = env.session();
    let text = "The lighthouse keeper polishes a copper kettle.\n";
    let ids = env.load_all(&sid, &[text, "something else entirely\n", text]);
    assert_eq!(indexed_rows(&env), 0);
    let r = search(&env, &sid, "copper kettle");
    let mut found: Vec<(String, u64, u64)> = r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["doc_id"].as_str().unwrap().to_owned(),
                u64_of(&m["span"], "start"),
                u64_of(&m["span"], "end"),
            )
        })
        .collect();
    found.sort();
    let mut want = vec![
        (ids[0].clone(), found[0].1, found[0].2),
        (ids[2].clone(), found[0].1, found[0].2),
    ];
    want.sort();
    assert_eq!(found, want, "{r}");
    assert_eq!(indexed_rows(&env), 2, "the repeated text is indexed once");
    // Restricted to one of them, only that one.
    let r = env.search(&sid, json!({"query": "copper kettle", "doc_ids": [ids[2]]}));
    assert_eq!(r["matches"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["matches"][0]["doc_id"], ids[2].as_str());
}

/// The scores of a session's search, query by query.
fn scores(env: &Env, sid: &str) -> Vec<Vec<f64>> {
    QUERIES
        .iter()
        .map(|q| {
            search(env, sid, q)["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["score"].as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// Another session's texts, full of the queries' words.
fn crowd(env: &Env) {
    let sid = env.session();
    let noisy: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "{} copper kettle lighthouse keeper {i}\n",
                filler_text(40 + i, 5_000)
            )
        })
        .collect();
    load(env, &sid, &noisy);
    search(env, &sid, "kettle");
}

#[test]
fn a_sessions_scores_do_not_depend_on_what_other_sessions_hold() {
    let env = Env::new();
    let sid = env.session();
    load(&env, &sid, &texts());
    let before = scores(&env, &sid);
    crowd(&env);
    assert_eq!(
        scores(&env, &sid),
        before,
        "statistics are the session's own"
    );

    // With the store's statistics (`[search] bm25_statistics = "store"`), they do.
    let env = Env::with(|c| c.bm25_statistics = Statistics::Index);
    let sid = env.session();
    load(&env, &sid, &texts());
    let before = scores(&env, &sid);
    crowd(&env);
    assert_ne!(scores(&env, &sid), before, "the store's statistics moved");
}

/// Progress reports as a context received them: (done, total, message).
type Reports = Arc<Mutex<Vec<(u64, Option<u64>, String)>>>;

/// The (done, total) of the reports with this message, in order.
fn reported(seen: &Reports, message: &str) -> Vec<(u64, Option<u64>)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(_, _, m)| m == message)
        .map(|(d, t, _)| (*d, *t))
        .collect()
}

/// A context that records its progress reports.
fn recording(env: &Env) -> (CallContext, Reports) {
    let seen: Reports = Arc::default();
    let sink = seen.clone();
    let mut ctx = env.ctx.clone();
    ctx.progress = Some(Arc::new(move |done, total, message: &str| {
        sink.lock().unwrap().push((done, total, message.to_owned()));
    }));
    (ctx, seen)
}

#[test]
fn a_reload_after_an_edit_indexes_only_the_changed_file() {
    let env = Env::new();
    for i in 0..4 {
        env.write_file(&format!("src/f{i}.txt"), filler_text(50 + i, 20_000));
    }
    let folder = json!([{"type": "directory", "path": "src"}]);
    let first = env.session();
    env.call(
        "rlm.docs.load",
        json!({"session_id": first, "sources": folder}),
    );
    search(&env, &first, "lighthouse");
    let edited = format!(
        "{}\nan edited line about a zanzibar quokka\n",
        filler_text(60, 20_000)
    );
    env.write_file("src/f2.txt", &edited);

    let second = env.session();
    env.call(
        "rlm.docs.load",
        json!({"session_id": second, "sources": folder}),
    );
    let (ctx, seen) = recording(&env);
    let r = ok(
        "search",
        env.engine.call(
            "rlm.search.query",
            json!({"session_id": second, "query": "zanzibar quokka"}),
            &ctx,
        ),
    );
    assert_eq!(r["index_built_this_call"], true, "{r}");
    assert_eq!(r["total_matches"], 1, "{r}");
    let indexing = reported(&seen, "indexing texts");
    assert_eq!(
        indexing.last().copied(),
        Some((char_len(&edited), Some(char_len(&edited)))),
        "only the edited file is indexed: {indexing:?}"
    );
    assert_eq!(indexed_rows(&env), 5);
}

#[test]
fn gc_takes_the_passages_of_deleted_texts_and_keeps_the_others() {
    let env = Env::new();
    let texts = texts();
    let gone = env.session();
    load(&env, &gone, &texts[..2]);
    search(&env, &gone, "kettle");
    let kept = env.session();
    let kept_ids = load(&env, &kept, &texts[1..]);
    search(&env, &kept, "kettle");
    assert_eq!(indexed_rows(&env), 3);

    assert_eq!(env.engine.delete_session(&gone).status, "deleted");
    let report = env
        .engine
        .gc_with(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.texts_removed, 1, "{report:?}");
    assert_eq!(report.index_texts_removed, 1, "{report:?}");
    assert_eq!(indexed_rows(&env), 2);

    // The kept session searches without indexing anything again.
    let r = search(&env, &kept, "lighthouse keeper copper kettle");
    assert_eq!(r["index_built_this_call"], false, "{r}");
    assert_eq!(r["matches"][0]["doc_id"], kept_ids[0].as_str(), "{r}");
    // The deleted text, loaded again, is indexed again and found.
    let back = env.session();
    let back_ids = load(&env, &back, &texts[..1]);
    let r = search(&env, &back, "zanzibar quokka");
    assert_eq!(r["index_built_this_call"], true, "{r}");
    assert_eq!(r["matches"][0]["doc_id"], back_ids[0].as_str(), "{r}");
    // Nothing is left once every session is gone.
    for sid in [&kept, &back] {
        assert_eq!(env.engine.delete_session(sid).status, "deleted");
    }
    let report = env
        .engine
        .gc_with(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .unwrap();
    assert_eq!(report.index_texts_removed, 3, "{report:?}");
    assert_eq!(indexed_rows(&env), 0);
}

#[test]
fn an_addition_cut_short_is_redone_not_doubled() {
    let env = Env::new();
    let texts = texts();
    let sid = env.session();
    let ids = load(&env, &sid, &texts);
    let want = search(&env, &sid, "lighthouse kettle copper");
    // As if the process died between the index's commit and the store's
    // record of it: the passages are there, the rows say nothing of them.
    env.db()
        .execute("UPDATE indexed_texts SET committed = 0", [])
        .unwrap();
    let engine = env.reopen();
    assert_eq!(
        ok(
            "info",
            engine.call("rlm.session.info", json!({"session_id": sid}), &env.ctx)
        )["index_built"],
        false
    );
    let got = ok(
        "search",
        engine.call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "lighthouse kettle copper", "limit": 10}),
            &env.ctx,
        ),
    );
    assert_eq!(got["index_built_this_call"], true, "{got}");
    // The same matches and scores: no passage twice.
    assert_same_ranking(&got, &ids, &want, &ids);
    assert_eq!(indexed_rows(&env), 3);
}

/// A build in many batches (each committed to the index, then recorded;
/// each batch's keys claimed while the batch before it is indexed) holds
/// every text once, whichever batch it fell in.
#[test]
fn a_build_in_many_batches_indexes_every_text_once() {
    let env = Env::with(|c| {
        c.index_batch_chars = 3_000;
        c.background_index = false;
        // Each word finds only its own text (`quokkaas` is a form of `quokkaae`).
        c.word_forms = WordForms::Never;
    });
    let sid = env.session();
    let word = |i: usize| {
        format!(
            "quokka{}{}",
            (b'a' + (i / 26) as u8) as char,
            (b'a' + (i % 26) as u8) as char
        )
    };
    let texts: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "text {i} names the {}\n{}",
                word(i),
                filler_text(200 + i as u64, 1_000)
            )
        })
        .collect();
    let ids = load(&env, &sid, &texts);
    assert_eq!(
        indexed_rows(&env),
        0,
        "nothing indexed before the first search"
    );
    for (i, id) in ids.iter().enumerate() {
        let r = search(&env, &sid, &word(i));
        assert_eq!(r["index_built_this_call"], i == 0, "{r}");
        assert_eq!(r["total_matches"], 1, "{}: {r}", word(i));
        assert_eq!(r["matches"][0]["doc_id"], id.as_str(), "{}: {r}", word(i));
    }
    assert_eq!(indexed_rows(&env), 40);
    assert_eq!(
        env.count("SELECT count(*) FROM indexed_texts WHERE committed = 1", []),
        40
    );
}

#[test]
fn sessions_sharing_a_damaged_index_each_index_their_texts_again() {
    let env = Env::new();
    let ((one, one_ids), (two, two_ids)) = two_sessions(&env);
    let want_one = search(&env, &one, "zanzibar quokka");
    let want_two = search(&env, &two, "copper kettle");
    // The index folder goes under a running engine and a restarted one.
    std::fs::remove_dir_all(env.data().join("search").join("index")).unwrap();
    let engine = env.reopen();
    let call = |sid: &str, q: &str| {
        ok(
            "search",
            engine.call(
                "rlm.search.query",
                json!({"session_id": sid, "query": q, "limit": 10}),
                &env.ctx,
            ),
        )
    };
    let got_one = call(&one, "zanzibar quokka");
    assert_eq!(got_one["index_built_this_call"], true);
    assert_same_ranking(&got_one, &one_ids, &want_one, &one_ids);
    // The records of the old index vouch for nothing: the second session's
    // texts are indexed again at its next search (the shared one is not).
    let got_two = call(&two, "copper kettle");
    assert_eq!(got_two["index_built_this_call"], true);
    assert_same_ranking(&got_two, &two_ids, &want_two, &two_ids);
    assert_eq!(indexed_rows(&env), 3, "{}", indexed_rows(&env));
}

#[test]
fn a_load_and_an_index_build_report_their_progress() {
    let env = Env::new();
    let mut chars = 0;
    for i in 0..130 {
        let text = format!(
            "file {i} about a copper kettle\n{}",
            filler_text(70 + i, 2_000)
        );
        chars += char_len(&text);
        env.write_file(&format!("many/f{i:03}.txt"), text);
    }
    let sid = env.session();
    let (ctx, seen) = recording(&env);
    ok(
        "load",
        env.engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "directory", "path": "many"}]}),
            &ctx,
        ),
    );
    let reading = reported(&seen, "reading files");
    assert!(reading.len() >= 2, "{reading:?}");
    assert!(reading.windows(2).all(|w| w[0].0 < w[1].0), "{reading:?}");
    assert_eq!(reading.last(), Some(&(130, Some(130))), "{reading:?}");

    let (ctx, seen) = recording(&env);
    ok(
        "search",
        env.engine.call(
            "rlm.search.query",
            json!({"session_id": sid, "query": "copper kettle"}),
            &ctx,
        ),
    );
    let indexing = reported(&seen, "indexing texts");
    assert_eq!(indexing.first(), Some(&(0, Some(chars))), "{indexing:?}");
    assert_eq!(indexing.last(), Some(&(chars, Some(chars))), "{indexing:?}");
}

/// One engine remembers the key a text had; another engine's gc takes the
/// text and its passages, and a load there stores it anew. The first
/// engine's next search of that text notices the key is gone and indexes it
/// again, rather than finding nothing.
#[test]
fn a_key_gc_took_under_another_engine_is_noticed_and_the_text_indexed_again() {
    let env = Env::new();
    let other = env.reopen();
    let text = "The zanzibar quokka keeps the lighthouse.\n";
    let first = env.session();
    env.load(&first, text);
    assert_eq!(search(&env, &first, "zanzibar")["total_matches"], 1);

    assert_eq!(other.delete_session(&first).status, "deleted");
    let report = other
        .gc_with(std::time::Duration::ZERO, std::time::Duration::ZERO)
        .unwrap();
    assert_eq!(report.index_texts_removed, 1, "{report:?}");
    let there = session_on(&other, &env.ctx, json!({}));
    ok(
        "load",
        other.call(
            "rlm.docs.load",
            json!({"session_id": there, "sources": [{"type": "inline", "content": text}]}),
            &env.ctx,
        ),
    );

    let here = env.session();
    let id = env.load(&here, text);
    let r = search(&env, &here, "zanzibar");
    assert_eq!(r["total_matches"], 1, "{r}");
    assert_eq!(r["matches"][0]["doc_id"], id.as_str());
    assert_eq!(r["index_built_this_call"], true, "{r}");
}

/// An idle daemon drops its sessions' views, known documents, key hints
/// and open texts (`Engine::release_idle_memory`), but the documents of the
/// session searched last and its texts' hints; the next search of each
/// session takes its view again (from the store, or from what was kept),
/// opens the texts it quotes again, and answers the same.
#[test]
fn views_dropped_while_idle_are_taken_again_and_answer_the_same() {
    let env = Env::new();
    let ((one, one_ids), (two, two_ids)) = two_sessions(&env);
    let want_one = search(&env, &one, "zanzibar quokka lighthouse");
    let want_two = search(&env, &two, "copper kettle");
    assert!(env.engine.indexes_cached() >= 1);
    assert!(env.engine.store().open_texts() >= 1);
    assert_eq!(env.engine.sessions_known(), 2);
    env.engine.release_idle_memory();
    assert_eq!(env.engine.indexes_cached(), 0);
    assert_eq!(env.engine.store().open_texts(), 0);
    assert_eq!(env.engine.sessions_known(), 1, "the session searched last");
    let got_one = search(&env, &one, "zanzibar quokka lighthouse");
    let got_two = search(&env, &two, "copper kettle");
    assert_eq!(got_one["index_built_this_call"], false, "{got_one}");
    assert_same_ranking(&got_one, &one_ids, &want_one, &one_ids);
    assert_same_ranking(&got_two, &two_ids, &want_two, &two_ids);
    assert_eq!(
        got_two["matches"][0]["context"],
        want_two["matches"][0]["context"]
    );
    assert!(env.engine.store().open_texts() >= 1);
    assert_eq!(env.info(&two)["index_built"], true);
}

/// While other sessions keep the daemon busy, what is kept for a session
/// neither searched nor loaded into for a while (its view, its documents,
/// its texts' key hints) is dropped, but never the session searched last;
/// a dropped session's next search answers the same.
#[test]
fn sessions_quiet_while_others_are_served_are_dropped_and_answer_the_same() {
    // No build or merge in the background: each moves the index to a new
    // snapshot, whose first search drops the views of the one before.
    let env = Env::with(|c| {
        c.background_index = false;
        c.compact_index = false;
    });
    let ((one, one_ids), (two, two_ids)) = two_sessions(&env);
    // Each first search indexes its session's new texts; asked again, both
    // views are of the last snapshot, and `one` is the session searched last.
    let want_two = search(&env, &two, "copper kettle");
    search(&env, &one, "zanzibar quokka lighthouse");
    search(&env, &two, "copper kettle");
    let want_one = search(&env, &one, "zanzibar quokka lighthouse");
    assert_eq!(env.engine.indexes_cached(), 2);
    assert_eq!(env.engine.sessions_known(), 2);
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(
        env.engine.release_quiet_sessions(hour),
        0,
        "none quiet that long"
    );
    assert_eq!(env.engine.indexes_cached(), 2);
    // Quiet for no time at all: every session but the last searched.
    let now = std::time::Duration::ZERO;
    assert_eq!(env.engine.release_quiet_sessions(now), 1);
    assert_eq!(env.engine.indexes_cached(), 1);
    assert_eq!(env.engine.sessions_known(), 1);
    let got_two = search(&env, &two, "copper kettle");
    assert_eq!(got_two["index_built_this_call"], false, "{got_two}");
    assert_same_ranking(&got_two, &two_ids, &want_two, &two_ids);
    // Now `two` is the last searched: `one` goes.
    assert_eq!(env.engine.release_quiet_sessions(now), 1);
    assert_eq!(env.engine.indexes_cached(), 1);
    let got_one = search(&env, &one, "zanzibar quokka lighthouse");
    assert_same_ranking(&got_one, &one_ids, &want_one, &one_ids);
    // A session loaded into and never searched is kept as long, then goes.
    let three = env.session();
    let three_ids = load(&env, &three, &texts()[..1]);
    assert_eq!(env.engine.sessions_known(), 3);
    assert_eq!(env.engine.release_quiet_sessions(hour), 0);
    assert_eq!(env.engine.release_quiet_sessions(now), 2, "two and three");
    assert_eq!(env.engine.sessions_known(), 1);
    let got = search(&env, &three, "zanzibar quokka");
    assert_eq!(got["matches"][0]["doc_id"], three_ids[0].as_str(), "{got}");
}

/// A search of a session whose load's background build waits (another
/// process holds the index) waits for that build and then trusts what it
/// indexed: it answers with every text of the session as it was when the
/// search began, and a text loaded while a build ran, after the build
/// found the session's texts, is indexed by the next build that finds it
/// missing, not taken as held.
#[test]
fn a_search_waits_for_the_build_its_load_began_and_misses_no_later_load() {
    let env = Env::with(|c| c.background_index = true);
    let sid = env.session();
    let held = env.index_write_lock();
    let first = env.load(&sid, "the first text is about an ocelot\n");
    let second = env.load(&sid, "the second text is about a narwhal\n");
    let ids = |r: &Value| -> Vec<String> {
        let mut ids: Vec<String> = r["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["doc_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![first.clone(), second];
    both.sort();
    std::thread::scope(|s| {
        let search = s.spawn(|| env.search(&sid, json!({"query": "ocelot narwhal"})));
        // Neither the build nor the search can go on while the lock is held.
        assert!(!search.is_finished());
        drop(held);
        let r = search.join().unwrap();
        assert_eq!(ids(&r), both, "{r}");
    });
    // A build found the session current, and a new load moved it on: the
    // next search's build (after the background one) indexes the new text.
    assert_eq!(env.info(&sid)["index_built"], true);
    let held = env.index_write_lock();
    let third = env.load(&sid, "the third text is about a quokka\n");
    std::thread::scope(|s| {
        let search = s.spawn(|| env.search(&sid, json!({"query": "quokka ocelot"})));
        drop(held);
        let r = search.join().unwrap();
        let mut want = vec![first.clone(), third.clone()];
        want.sort();
        assert_eq!(ids(&r), want, "{r}");
    });
    let r = env.search(&sid, json!({"query": "narwhal quokka ocelot"}));
    assert_eq!(ids(&r).len(), 3, "{r}");
}
