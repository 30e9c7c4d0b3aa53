//! Memory the daemon gives back: after a large load, and after the index
//! build it starts, the daemon's anonymous memory (`RssAnon`) falls back
//! well below what the work raised it to, instead of staying near its peak
//! while the daemon idles (glibc keeps freed heap; `daemon/src/alloc.rs`
//! trims it). The figures on 300 MB are in docs/BENCHMARKS.md (`bench/memory.py`).

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::{Ipc, TestDir, WAIT, proc_status, wait_until};

/// `files` distinct texts of about 16 KB each, in lines of words.
fn write_corpus(dir: &std::path::Path, files: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for f in 0..files {
        let mut text = format!("file {f}\n");
        while text.len() < 16 << 10 {
            for _ in 0..12 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(words[(x % words.len() as u64) as usize]);
                text.push_str(&format!("{} ", x % 1000));
            }
            text.push('\n');
        }
        std::fs::write(dir.join(format!("f{f:05}.txt")), text).unwrap();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn anonymous_memory_falls_back_after_a_large_load_and_index_build() {
    let dir = TestDir::new();
    let corpus = dir.path().join("corpus");
    write_corpus(&corpus, 2560); // 40 MB, past alloc::LARGE_WORK_BYTES
    let daemon = dir.start_daemon(&[]);
    let pid = daemon.pid();
    let mut c = Ipc::handshake(&dir.socket);
    let sid = c.ok("rlm.session.create", json!({}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (anon0, hwm0) = (proc_status(pid, "RssAnon"), proc_status(pid, "VmHWM"));
    let r = c.ok(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [{"type": "directory", "path": corpus}]}),
    );
    assert_eq!(r["loaded_count"], 2560);
    let grew = proc_status(pid, "VmHWM") - hwm0;
    assert!(
        grew > 30 << 10,
        "the load held its files' bytes in the heap: the peak grew by {grew} kB"
    );
    // Back below half of what the load added (a build started meanwhile
    // in the background may hold some for a moment).
    let bound = anon0 + grew / 2;
    let falls = |what: &str| {
        wait_until(WAIT, what, || {
            let anon = proc_status(pid, "RssAnon");
            (anon < bound).then_some(anon)
        })
    };
    let after_load = falls("RssAnon falls back after the load");
    // The first bm25 waits for the index build (or makes it).
    c.ok(
        "rlm.search.query",
        json!({"session_id": sid, "query": "alpha bravo", "method": "bm25"}),
    );
    let after_build = falls("RssAnon falls back after the index build");
    eprintln!(
        "memory: RssAnon {anon0} kB at start, peak grew {grew} kB, {after_load} kB after the load, {after_build} kB after the build (bound {bound} kB)"
    );
}

/// What the daemon keeps for speed goes on the clock `config.toml` sets
/// (`release_caches_after_seconds`): a session's documents and view of the
/// search index once no call has used them that long, while another
/// session keeps the daemon busy; every session's view once no call comes
/// at all. The quiet session answers the same after.
#[test]
fn caches_of_quiet_sessions_go_while_others_are_served_and_all_go_when_calls_stop() {
    let dir = TestDir::new();
    std::fs::write(&dir.config, "release_caches_after_seconds = 1\n").unwrap();
    let _daemon = dir.start_daemon(&[]);
    let mut c = Ipc::handshake(&dir.socket);
    let session = |c: &mut Ipc, text: &str| {
        let sid = c.ok("rlm.session.create", json!({}))["session_id"]
            .as_str()
            .unwrap()
            .to_owned();
        c.ok(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [{"type": "inline", "content": text}]}),
        );
        sid
    };
    let quiet = session(&mut c, "alpha bravo charlie");
    let busy = session(&mut c, "alpha delta echo");
    let search = |c: &mut Ipc, sid: &str| {
        let found = c.ok(
            "rlm.search.query",
            json!({"session_id": sid, "query": "alpha", "method": "bm25"}),
        );
        found["matches"][0]["context"]
            .as_str()
            .unwrap_or_else(|| panic!("no match in {sid}: {found}"))
            .to_owned()
    };
    // Views go also when the index changes (a view is of one snapshot), so
    // what is counted is the sessions whose documents are kept: only a
    // release drops them.
    let kept = |c: &mut Ipc| {
        let s = c.status();
        (
            s["sessions_known"].as_u64().unwrap(),
            s["indexes_cached"].as_u64().unwrap(),
        )
    };
    let before_quiet = Instant::now();
    let answer = search(&mut c, &quiet);
    assert_eq!(answer, "alpha bravo charlie");
    search(&mut c, &busy);
    assert_eq!(
        kept(&mut c).0,
        2,
        "both sessions' documents are kept at first"
    );
    // Well under the default of 20 s: only the setting can meet it.
    let within = Duration::from_secs(15);
    let views = wait_until(
        within,
        "the quiet session's caches dropped while the other is searched",
        || {
            search(&mut c, &busy);
            let (known, views) = kept(&mut c);
            (known == 1).then_some(views)
        },
    );
    assert!(views <= 1, "{views} views kept");
    // Never before the second the config gives (its last use came after
    // `before_quiet`).
    assert!(
        before_quiet.elapsed() >= Duration::from_secs(1),
        "dropped after {:?}",
        before_quiet.elapsed()
    );
    assert_eq!(search(&mut c, &quiet), answer, "the same answer after");
    // No call at all: every view goes, and every session's documents but
    // those of the session searched last, kept for its next search (a
    // compaction of the index may drop the views before, never the
    // documents).
    wait_until(within, "the caches dropped once no call comes", || {
        let (known, views) = kept(&mut c);
        (known <= 1 && views == 0).then_some(())
    });
}
