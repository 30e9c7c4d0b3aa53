//! A re-load of files the store holds: only the files that changed are
//! read again, and a file changed within the racy window of its read is
//! read again too.

use std::path::Path;

use serde_json::{Value, json};

use super::docs::{canon, load};
use crate::common::*;

/// Sets a file's modification time (its change time moves to now).
fn set_mtime(path: &Path, t: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// `source -> (content_hash, length_chars)` of a load's answer.
fn loaded_by_source(r: &Value) -> std::collections::BTreeMap<String, (String, u64)> {
    r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                str_of(d, "source").to_owned(),
                (
                    str_of(d, "content_hash").to_owned(),
                    u64_of(d, "length_chars"),
                ),
            )
        })
        .collect()
}

/// Loads `sources` into a new session; returns the answer, the session and
/// how many files the engine read for it.
fn load_counting(env: &Env, sources: Value) -> (Value, String, u64) {
    let before = env.engine.files_read();
    let sid = env.session();
    let r = load(env, &sid, sources);
    (r, sid, env.engine.files_read() - before)
}

/// The whole text of the document loaded from `source` in a load's answer.
fn text_of(env: &Env, sid: &str, r: &Value, source: &str) -> String {
    let d = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == source)
        .unwrap_or_else(|| panic!("{source} not in {r}"));
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": d["doc_id"], "start": 0}),
    );
    str_of(&p, "content").to_owned()
}

#[test]
fn a_reload_reads_only_the_files_that_changed() {
    // No racy window: files written just now may vouch for themselves (the
    // window has its own test below).
    let env = Env::with(|c| c.racy_window = std::time::Duration::ZERO);
    let n = 6;
    let paths: Vec<_> = (0..n)
        .map(|i| {
            env.write_file(
                &format!("tree/f{i}.txt"),
                format!("file {i}: {}", "ab".repeat(50 + i)),
            )
        })
        .collect();
    let shown: Vec<String> = paths.iter().map(|p| canon(p)).collect();
    let tree = json!([{"type": "directory", "path": "tree", "recursive": true}]);

    let (first, _, read) = load_counting(&env, tree.clone());
    assert_eq!(read, n as u64, "the first load reads every file");
    let (second, sid, read) = load_counting(&env, tree.clone());
    assert_eq!(read, 0, "nothing changed: nothing is read");
    assert_eq!(loaded_by_source(&second), loaded_by_source(&first));
    assert_eq!(second["total_chars"], first["total_chars"]);
    assert_eq!(second["total_tokens_est"], first["total_tokens_est"]);
    assert_eq!(
        text_of(&env, &sid, &second, &shown[4]),
        std::fs::read_to_string(&paths[4]).unwrap()
    );
    // File and glob sources name the same canonical paths.
    let (r, _, read) = load_counting(
        &env,
        json!([{"type": "file", "path": "tree/f0.txt"}, {"type": "glob", "path": "tree/f5*"}]),
    );
    assert_eq!((r["loaded_count"].as_u64(), read), (Some(2), 0), "{r}");

    // f1: same size, new bytes; f2: another size; f3: touched only. Each
    // gets a modification time of its own, whatever the clock's tick (in
    // the past: a time in the future of a read never vouches).
    let other = |p: &Path| mtime(p) - std::time::Duration::from_secs(5);
    let old1 = std::fs::read(&paths[1]).unwrap();
    let new1 = String::from_utf8(
        old1.iter()
            .map(|b| if *b == b'a' { b'c' } else { *b })
            .collect(),
    )
    .unwrap();
    assert_eq!(new1.len(), old1.len());
    let t1 = other(&paths[1]);
    std::fs::write(&paths[1], &new1).unwrap();
    set_mtime(&paths[1], t1);
    let t2 = other(&paths[2]);
    std::fs::write(&paths[2], "file 2, shorter now").unwrap();
    set_mtime(&paths[2], t2);
    set_mtime(&paths[3], other(&paths[3]));

    let (third, sid, read) = load_counting(&env, tree.clone());
    assert_eq!(read, 3, "the edited and the touched files are read again");
    let (was, now) = (loaded_by_source(&first), loaded_by_source(&third));
    assert_eq!(
        now[&shown[1]],
        (sha256_hex(new1.as_bytes()), new1.len() as u64)
    );
    assert_eq!(now[&shown[2]].0, sha256_hex(b"file 2, shorter now"));
    for i in [0, 3, 4, 5] {
        assert_eq!(now[&shown[i]], was[&shown[i]], "f{i}");
    }
    assert_eq!(text_of(&env, &sid, &third, &shown[1]), new1);
    assert_eq!(
        text_of(&env, &sid, &third, &shown[2]),
        "file 2, shorter now"
    );
    let (_, _, read) = load_counting(&env, tree.clone());
    assert_eq!(read, 0, "what was read again is recorded again");

    // A stored text marked damaged vouches for nothing: the file is read and stored afresh.
    let hash4 = &was[&shown[4]].0;
    env.db()
        .execute("UPDATE blobs SET offset = -1 WHERE hash = ?1", [hash4])
        .unwrap();
    let (fifth, sid, read) = load_counting(&env, tree);
    assert_eq!(read, 1, "the file of the damaged text is read again");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM blobs WHERE hash = ?1 AND offset >= 0",
            [hash4]
        ),
        1
    );
    assert_eq!(
        text_of(&env, &sid, &fifth, &shown[4]),
        std::fs::read_to_string(&paths[4]).unwrap()
    );
}

#[test]
fn a_file_changed_within_the_racy_window_of_its_read_is_read_again() {
    let env = Env::new();
    assert!(env.engine.config().racy_window >= std::time::Duration::from_secs(1));
    let path = env.write_file("racy.txt", "version one of the text");
    let shown = canon(&path);
    // An old modification time; the change time is now, within the window
    // of the read that follows.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    set_mtime(&path, old);
    let source = json!([{"type": "file", "path": "racy.txt"}]);
    let (_, _, read) = load_counting(&env, source.clone());
    assert_eq!(read, 1);
    let (_, _, read) = load_counting(&env, source.clone());
    assert_eq!(
        read, 1,
        "an identity recorded within the window of a change is not trusted"
    );

    // A same-size edit that puts the modification time back: size, mtime,
    // inode and device are all as recorded.
    std::fs::write(&path, "version two of the text").unwrap();
    set_mtime(&path, old);
    assert_eq!(mtime(&path), old);
    let (r, sid, read) = load_counting(&env, source);
    assert_eq!(read, 1);
    assert_eq!(
        r["loaded"][0]["content_hash"],
        sha256_hex(b"version two of the text")
    );
    assert_eq!(text_of(&env, &sid, &r, &shown), "version two of the text");
}
