//! `rlm.docs.load`, `rlm.docs.list`, `rlm.docs.peek`: sources, paths, errors,
//! dedupe, token estimates, code-point offsets.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;

/// Emoji (one and several code points), combining marks, CJK, astral letters.
const UNICODE: &str = "héllo wörld 😀 — e\u{301}galite\u{301} 日本語のテキスト 👨\u{200d}👩\u{200d}👧 needle 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ﬁn\r\nend";

fn sources_of(r: &Value) -> BTreeSet<String> {
    r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].as_str().unwrap().to_owned())
        .collect()
}

fn canon(p: &Path) -> String {
    p.canonicalize().unwrap().display().to_string()
}

fn load(env: &Env, sid: &str, sources: Value) -> Value {
    env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": sources}),
    )
}

#[test]
fn offsets_lengths_and_hashes_count_code_points() {
    let env = Env::new();
    let sid = env.session();
    let r = load(&env, &sid, json!([{"type": "inline", "content": UNICODE}]));
    let d = &r["loaded"][0];
    let n = char_len(UNICODE);
    assert!(n < UNICODE.len() as u64, "the text has multi-byte chars");
    assert_eq!(d["length_chars"], n);
    assert_eq!(d["length_tokens_est"], n.div_ceil(4));
    assert_eq!(d["content_hash"], sha256_hex(UNICODE.as_bytes()));
    assert_eq!(d["source"], "inline");
    let doc = str_of(d, "doc_id").to_owned();

    // Every window of up to 6 code points reads back exactly as the chars slice.
    for start in 0..=n {
        for end in [start, (start + 1).min(n), (start + 6).min(n)] {
            let p = env.call(
                "rlm.docs.peek",
                json!({"session_id": sid, "doc_id": doc, "start": start, "end": end}),
            );
            let want = chars(UNICODE, start, end);
            assert_eq!(p["content"], want.as_str(), "[{start}, {end})");
            assert_eq!(p["span"]["start"], start);
            assert_eq!(p["span"]["end"], end);
            assert_eq!(p["content_hash"], sha256_hex(want.as_bytes()));
            assert_eq!(p["total_length"], n);
            assert_eq!(p["truncated"], false);
        }
    }
    // A combining mark is its own code point; an emoji is one, a ZWJ family five.
    let e_at = UNICODE.chars().position(|c| c == '\u{301}').unwrap() as u64 - 1;
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": e_at, "end": e_at + 2}),
    );
    assert_eq!(p["content"], "e\u{301}");
    let smile = UNICODE.chars().position(|c| c == '😀').unwrap() as u64;
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": smile, "end": smile + 1}),
    );
    assert_eq!(p["content"], "😀");
    let family = UNICODE.chars().position(|c| c == '👨').unwrap() as u64;
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": family, "end": family + 5}),
    );
    assert_eq!(p["content"], "👨\u{200d}👩\u{200d}👧");
    // The whole document, by default bounds.
    let p = env.call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}));
    assert_eq!(p["content"], UNICODE);
    assert_eq!(p["span"]["end"], n);

    let info = env.info(&sid);
    assert_eq!(info["total_chars"], n);
    assert_eq!(info["total_tokens_est"], n.div_ceil(4));
}

#[test]
fn chunks_spans_and_search_of_a_unicode_document_use_code_points() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, UNICODE);
    let n = char_len(UNICODE);

    let spans = env.chunk_all(&sid, &doc, json!({"type": "fixed", "chunk_size": 7}));
    assert_eq!(spans.len() as u64, n.div_ceil(7));
    let ids: Vec<&str> = spans
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    let got = env.call("rlm.span.get", json!({"session_id": sid, "span_ids": ids}));
    let mut joined = String::new();
    for (s, g) in spans.iter().zip(got["spans"].as_array().unwrap()) {
        let (a, b) = (u64_of(&s["span"], "start"), u64_of(&s["span"], "end"));
        let want = chars(UNICODE, a, b);
        assert_eq!(s["length_chars"], b - a);
        assert_eq!(s["preview"], want.as_str());
        assert_eq!(s["content_hash"], sha256_hex(want.as_bytes()));
        assert_eq!(g["content"], want.as_str());
        joined.push_str(&want);
    }
    assert_eq!(joined, UNICODE);

    // A word with non-ASCII letters is found and highlighted whole.
    let r = env.search(&sid, json!({"query": "wörld"}));
    let m = &r["matches"][0];
    let ctx = str_of(m, "context");
    let h = &m["highlights"][0];
    assert_eq!(
        chars(ctx, u64_of(h, "start"), u64_of(h, "end")),
        "wörld",
        "{r}"
    );
    assert_eq!(h["term"], "wörld");
    // The scans (regex, literal) after BM25.
    for method in ["bm25", "literal", "regex"] {
        let r = env.search(&sid, json!({"query": "needle", "method": method}));
        let m = &r["matches"][0];
        assert_eq!(m["doc_id"], doc.as_str(), "{method}: {r}");
        let (a, b) = (u64_of(&m["span"], "start"), u64_of(&m["span"], "end"));
        let ctx = str_of(m, "context");
        assert_eq!(
            ctx,
            chars(UNICODE, a, b),
            "{method}: context is the span's chars"
        );
        let (hs, he) = (u64_of(m, "highlight_start"), u64_of(m, "highlight_end"));
        assert_eq!(chars(ctx, hs, he), "needle", "{method}: {r}");
        let needle_at = UNICODE.find("needle").unwrap();
        assert_eq!(
            a + hs,
            UNICODE[..needle_at].chars().count() as u64,
            "{method}: the hit is at its code-point offset"
        );
    }
    let r = env.search(&sid, json!({"query": "WÖRLD", "method": "literal"}));
    let m = &r["matches"][0];
    let ctx = str_of(m, "context");
    assert_eq!(
        chars(
            ctx,
            u64_of(m, "highlight_start"),
            u64_of(m, "highlight_end")
        ),
        "wörld",
        "{r}"
    );
}

#[test]
fn relative_paths_resolve_against_the_clients_working_directory() {
    let env = Env::new();
    let sid = env.session();
    // Two clients with different working directories, the same relative path.
    let one = env.dir.path().join("client-one");
    let two = env.dir.path().join("client-two");
    for (dir, text) in [
        (&one, "first client's notes"),
        (&two, "second client's notes"),
    ] {
        std::fs::create_dir_all(dir.join("notes")).unwrap();
        std::fs::write(dir.join("notes/today.txt"), text).unwrap();
    }
    let mut hashes = Vec::new();
    for (dir, text) in [
        (&one, "first client's notes"),
        (&two, "second client's notes"),
    ] {
        let ctx = rlmd::CallContext::with_cwd(dir);
        let r = ok(
            "load",
            env.engine.call(
                "rlm.docs.load",
                json!({"session_id": sid, "sources": [{"type": "file", "path": "notes/today.txt"}]}),
                &ctx,
            ),
        );
        assert_eq!(r["errors"], json!([]), "{r}");
        let d = &r["loaded"][0];
        assert_eq!(d["content_hash"], sha256_hex(text.as_bytes()));
        assert_eq!(d["source"], canon(&dir.join("notes/today.txt")));
        assert!(Path::new(str_of(d, "source")).is_absolute());
        hashes.push(d["content_hash"].clone());
    }
    assert_ne!(hashes[0], hashes[1]);
    // Neither file exists relative to the process's own working directory.
    assert!(!Path::new("notes/today.txt").exists());

    // A relative glob and directory resolve against it as well.
    let ctx = rlmd::CallContext::with_cwd(&one);
    let r = ok(
        "load",
        env.engine.call(
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [
                {"type": "glob", "path": "notes/*.txt"},
                {"type": "directory", "path": "notes"},
                {"type": "file", "path": "./notes/../notes/today.txt"}
            ]}),
            &ctx,
        ),
    );
    assert_eq!(r["loaded_count"], 3, "{r}");
    assert_eq!(
        sources_of(&r),
        BTreeSet::from([canon(&one.join("notes/today.txt"))])
    );
}

/// A small tree: src/{a.py, d.txt, x/{b.py, y/c.py, e.md}}, top.py.
fn make_tree(env: &Env) -> std::path::PathBuf {
    for (rel, text) in [
        ("tree/src/a.py", "print('a')\n"),
        ("tree/src/d.txt", "plain text d\n"),
        ("tree/src/x/b.py", "print('b')\n"),
        ("tree/src/x/y/c.py", "print('c')\n"),
        ("tree/src/x/e.md", "# e\n"),
        ("tree/top.py", "print('top')\n"),
    ] {
        env.write_file(rel, text);
    }
    env.dir.path().join("tree").canonicalize().unwrap()
}

fn set(root: &Path, rels: &[&str]) -> BTreeSet<String> {
    rels.iter()
        .map(|r| root.join(r).display().to_string())
        .collect()
}

#[test]
fn globs_cross_directories_with_double_star_and_filter_by_patterns() {
    let env = Env::new();
    let sid = env.session();
    let root = make_tree(&env);
    let r = load(
        &env,
        &sid,
        json!([{"type": "glob", "path": "tree/src/**/*.py"}]),
    );
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(
        sources_of(&r),
        set(&root, &["src/a.py", "src/x/b.py", "src/x/y/c.py"])
    );
    let r = load(
        &env,
        &sid,
        json!([{"type": "glob", "path": "tree/src/*.py"}]),
    );
    assert_eq!(sources_of(&r), set(&root, &["src/a.py"]));
    let r = load(
        &env,
        &sid,
        json!([{"type": "glob", "path": "tree/**/*", "exclude_pattern": "\\.py$"}]),
    );
    assert_eq!(sources_of(&r), set(&root, &["src/d.txt", "src/x/e.md"]));
    let r = load(
        &env,
        &sid,
        json!([{"type": "glob", "path": "tree/**/*", "include_pattern": "/x/", "exclude_pattern": "\\.md$"}]),
    );
    assert_eq!(sources_of(&r), set(&root, &["src/x/b.py", "src/x/y/c.py"]));
    // An absolute glob works the same way.
    let abs = format!("{}/src/**/c.py", root.display());
    let r = load(&env, &sid, json!([{"type": "glob", "path": abs}]));
    assert_eq!(sources_of(&r), set(&root, &["src/x/y/c.py"]));
    // A glob that matches nothing says so, naming the pattern.
    let r = load(
        &env,
        &sid,
        json!([{"type": "glob", "path": "tree/**/*.rs"}]),
    );
    assert_eq!(r["loaded_count"], 0);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{r}");
    assert!(errors[0].as_str().unwrap().contains("*.rs"), "{r}");
}

#[test]
fn directories_load_flat_or_recursive_with_patterns() {
    let env = Env::new();
    let sid = env.session();
    let root = make_tree(&env);
    let r = load(
        &env,
        &sid,
        json!([{"type": "directory", "path": "tree/src"}]),
    );
    assert_eq!(
        sources_of(&r),
        set(&root, &["src/a.py", "src/d.txt"]),
        "{r}"
    );
    let r = load(
        &env,
        &sid,
        json!([{"type": "directory", "path": "tree/src", "recursive": false}]),
    );
    assert_eq!(sources_of(&r), set(&root, &["src/a.py", "src/d.txt"]));
    let r = load(
        &env,
        &sid,
        json!([{"type": "directory", "path": "tree", "recursive": true}]),
    );
    assert_eq!(
        sources_of(&r),
        set(
            &root,
            &[
                "src/a.py",
                "src/d.txt",
                "src/x/b.py",
                "src/x/y/c.py",
                "src/x/e.md",
                "top.py"
            ]
        )
    );
    assert_eq!(r["loaded_count"], 6);
    let r = load(
        &env,
        &sid,
        json!([{"type": "directory", "path": "tree", "recursive": true, "include_pattern": "\\.py$", "exclude_pattern": "/y/"}]),
    );
    assert_eq!(
        sources_of(&r),
        set(&root, &["src/a.py", "src/x/b.py", "top.py"])
    );
    // A directory with no file directly inside is reported, not silently empty.
    let r = load(
        &env,
        &sid,
        json!([{"type": "directory", "path": "tree/src/x/y/.."}]),
    );
    assert_eq!(sources_of(&r).len(), 2, "b.py and e.md: {r}");
    env.write_file("empty/sub/f.txt", "f");
    let r = load(&env, &sid, json!([{"type": "directory", "path": "empty"}]));
    assert_eq!(r["loaded_count"], 0);
    assert_eq!(r["errors"].as_array().unwrap().len(), 1, "{r}");
    // A bad include pattern is reported for that source; the others load.
    let r = load(
        &env,
        &sid,
        json!([{"type": "directory", "path": "tree", "include_pattern": "(["},
               {"type": "inline", "content": "still loads"}]),
    );
    assert_eq!(r["loaded_count"], 1);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().contains("(["), "{r}");
}

#[test]
fn bad_files_are_reported_by_path_while_the_rest_load() {
    let env = Env::with(|c| c.max_file_size_mb = 1);
    let sid = env.session();
    let good = env.write_file("in/good.txt", "good text\n");
    let latin1 = env.write_file("in/latin1.txt", b"caf\xe9 cr\xe8me\n");
    let big = env.write_file("in/big.txt", "x".repeat(2 << 20));
    let missing = env.dir.path().join("in/missing.txt");
    let r = load(
        &env,
        &sid,
        json!([
            {"type": "file", "path": "in/latin1.txt"},
            {"type": "file", "path": "in/big.txt"},
            {"type": "file", "path": "in/missing.txt"},
            {"type": "file", "path": "in/good.txt"},
            {"type": "inline", "content": "inline text"}
        ]),
    );
    assert_eq!(r["loaded_count"], 2, "{r}");
    assert_eq!(
        sources_of(&r),
        BTreeSet::from([canon(&good), "inline".to_owned()])
    );
    assert_eq!(r["error_count"], 3);
    let errors: Vec<String> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(errors.len(), 3, "{r}");
    let line_for = |p: &Path| {
        let name = p.file_name().unwrap().to_str().unwrap();
        errors
            .iter()
            .find(|e| e.contains(name))
            .unwrap_or_else(|| panic!("no error names {name}: {errors:?}"))
            .clone()
    };
    let l = line_for(&latin1);
    assert!(l.contains(&canon(&latin1)), "the full path: {l}");
    assert!(l.contains("UTF-8"), "{l}");
    let l = line_for(&big);
    assert!(l.contains(&canon(&big)), "{l}");
    assert!(l.contains("max_file_size_mb"), "{l}");
    let l = line_for(&missing);
    assert!(l.contains("missing.txt"), "{l}");
    assert!(l.contains("no such file"), "{l}");
    assert_eq!(env.info(&sid)["document_count"], 2);
    assert_eq!(
        r["total_chars"],
        char_len("good text\n") + char_len("inline text")
    );
}

/// A FIFO, a device and a link to a device named by file sources are each
/// refused as not a regular file, and at once: the load never waits for a
/// FIFO's writer nor reads a device without end; the good file still loads.
#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let env = Env::new();
    let sid = env.session();
    let good = env.write_file("in/good.txt", "good text\n");
    let fifo = env.dir.path().join("in/pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let link = env.dir.path().join("in/zero-link");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let args = json!({"session_id": sid, "sources": [
        {"type": "file", "path": "in/pipe"},
        {"type": "file", "path": "/dev/zero"},
        {"type": "file", "path": "in/zero-link"},
        {"type": "file", "path": "in/good.txt"}
    ]});
    let r = call_within(
        &env,
        std::time::Duration::from_secs(120),
        "the load answers instead of blocking on the FIFO or reading /dev/zero",
        "rlm.docs.load",
        args,
    );
    assert_eq!(r["loaded_count"], 1, "{r}");
    assert_eq!(sources_of(&r), BTreeSet::from([canon(&good)]));
    let errors = errors_of(&r);
    assert_eq!(errors.len(), 3, "{r}");
    let refused = |name: &str, kind: &str| {
        errors
            .iter()
            .filter(|e| e.contains(name) && e.contains("not a regular file") && e.contains(kind))
            .count()
    };
    assert_eq!(refused("in/pipe", "a FIFO"), 1, "{errors:?}");
    // `/dev/zero` named, and reached through a link.
    assert_eq!(refused("/dev/zero", "a device"), 2, "{errors:?}");
    assert_eq!(env.info(&sid)["document_count"], 1);
}

/// Inside a directory or glob, a FIFO and a link to a device are listed in
/// `errors` as not regular files (never opened), beside the files that load.
#[cfg(unix)]
#[test]
fn walks_report_what_is_not_a_regular_file() {
    let env = Env::new();
    let sid = env.session();
    env.write_file("odd/plain.txt", "plain\n");
    let root = env.dir.path().join("odd");
    nix::unistd::mkfifo(&root.join("pipe.txt"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::os::unix::fs::symlink("/dev/null", root.join("null.txt")).unwrap();
    for source in [
        json!({"type": "directory", "path": "odd"}),
        json!({"type": "glob", "path": "odd/*.txt"}),
    ] {
        let r = load(&env, &sid, json!([source.clone()]));
        assert_eq!(r["loaded_count"], 1, "{source}: {r}");
        let errors = serde_json::to_string(&r["errors"]).unwrap();
        assert_eq!(r["error_count"], 2, "{source}: {r}");
        for name in ["pipe.txt", "null.txt"] {
            assert!(
                errors.contains(name) && errors.contains("not a regular file"),
                "{source}: {name} in {errors}"
            );
        }
    }
}

/// Walks follow links with loop detection: two links back to their own
/// folder (`self0 -> .`, `self1 -> .`) neither hang a glob or a directory
/// walk nor multiply the files; a file reached twice (a link to it beside
/// it) loads once; a link to a folder elsewhere is followed.
#[cfg(unix)]
#[test]
fn walks_follow_links_once_and_stop_at_loops() {
    let env = Env::new();
    let sid = env.session();
    for name in ["a", "b", "c", "d", "e"] {
        env.write_file(&format!("loop/{name}.txt"), format!("file {name}\n"));
    }
    env.write_file("elsewhere/far.txt", "far away\n");
    let root = env.dir.path().join("loop");
    std::os::unix::fs::symlink(".", root.join("self0")).unwrap();
    std::os::unix::fs::symlink(".", root.join("self1")).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink("../elsewhere", root.join("ext")).unwrap();
    let root = root.canonicalize().unwrap();
    let expected: BTreeSet<String> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| root.join(format!("{n}.txt")).display().to_string())
        .chain([canon(&env.dir.path().join("elsewhere/far.txt"))])
        .collect();
    for source in [
        json!({"type": "glob", "path": "loop/**/*.txt"}),
        json!({"type": "directory", "path": "loop", "recursive": true}),
    ] {
        let r = call_within(
            &env,
            std::time::Duration::from_secs(120),
            "the walk ends despite the link loops",
            "rlm.docs.load",
            json!({"session_id": sid, "sources": [source.clone()]}),
        );
        assert_eq!(r["loaded_count"], 6, "{source}: {r}");
        assert_eq!(sources_of(&r), expected, "{source}");
        let errors = errors_of(&r);
        assert_eq!(errors.len(), 1, "{source}: {r}");
        assert!(errors[0].contains("link loop"), "{source}: {r}");
    }
}

/// A file reached first by a path the filters refuse and then by one they
/// keep (a link `b.rs` to `a.txt`, for a glob of `*.rs` or an include of
/// `\.rs$`) is loaded: the refused path claims nothing.
#[test]
fn a_link_kept_by_the_filters_loads_its_target_whatever_the_walk_meets_first() {
    let env = Env::new();
    let sid = env.session();
    env.write_file("linked/a.txt", "the target of a link\n");
    env.write_file("linked/z.rs", "fn plain() {}\n");
    let root = env.dir.path().join("linked");
    std::os::unix::fs::symlink("a.txt", root.join("b.rs")).unwrap();
    let expected = BTreeSet::from([canon(&root.join("a.txt")), canon(&root.join("z.rs"))]);
    for source in [
        json!({"type": "glob", "path": "linked/*.rs"}),
        json!({"type": "directory", "path": "linked", "include_pattern": "\\.rs$"}),
    ] {
        let r = load(&env, &sid, json!([source.clone()]));
        assert_eq!(r["loaded_count"], 2, "{source}: {r}");
        assert_eq!(sources_of(&r), expected, "{source}: {r}");
    }
}

#[test]
fn files_skipped_inside_a_directory_or_glob_are_reported() {
    let env = Env::with(|c| c.max_file_size_mb = 1);
    let sid = env.session();
    env.write_file("dir/a.txt", "alpha\n");
    env.write_file("dir/b.bin", [0xffu8, 0xfe, 0x00, 0x81]);
    env.write_file("dir/sub/c.txt", "gamma\n");
    env.write_file("dir/sub/huge.log", "y".repeat((1 << 20) + 10));
    for source in [
        json!({"type": "directory", "path": "dir", "recursive": true}),
        json!({"type": "glob", "path": "dir/**/*"}),
    ] {
        let r = load(&env, &sid, json!([source]));
        assert_eq!(r["loaded_count"], 2, "{r}");
        assert_eq!(r["error_count"], 2, "{r}");
        let errors = serde_json::to_string(&r["errors"]).unwrap();
        assert!(errors.contains("b.bin"), "{errors}");
        assert!(errors.contains("huge.log"), "{errors}");
    }
}

#[test]
fn the_same_content_is_stored_once_but_each_load_gets_its_own_doc_id() {
    let env = Env::new();
    let a = env.session();
    let b = env.session();
    let text = "shared content, stored once\n".repeat(50);
    let da = env.load(&a, &text);
    let db = env.load(&b, &text);
    let dup = env.load_all(&a, &[&text, &text]);
    env.write_file("same.txt", &text);
    let r = load(&env, &b, json!([{"type": "file", "path": "same.txt"}]));
    let df = str_of(&r["loaded"][0], "doc_id").to_owned();
    let ids = BTreeSet::from([da.clone(), db.clone(), dup[0].clone(), dup[1].clone(), df]);
    assert_eq!(ids.len(), 5, "five loads, five doc_ids");
    let hash = sha256_hex(text.as_bytes());
    assert_eq!(
        env.count("SELECT count(*) FROM blobs WHERE hash = ?1", [&hash]),
        1
    );
    assert_eq!(env.count("SELECT count(*) FROM blobs", []), 1);
    assert_eq!(
        env.count("SELECT count(*) FROM documents WHERE hash = ?1", [&hash]),
        5
    );
    // The text's bytes are in the blob store exactly once, whatever its layout.
    let blob_files = files_below(&env.data().join("blobs"), &["tmp"]);
    let copies: usize = blob_files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).unwrap();
            memchr::memmem::find_iter(&bytes, text.as_bytes()).count()
        })
        .sum();
    assert_eq!(copies, 1, "stored once: {blob_files:?}");
    // Each document reads back through its own session.
    for (sid, doc) in [(&a, &da), (&b, &db)] {
        let p = env.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "end": 28}),
        );
        assert_eq!(p["content"], "shared content, stored once\n");
    }
}

/// Documents' ids sort in load order (time-ordered UUIDs), within a load and
/// across loads: a big load appends to the documents' id index instead of
/// writing at random pages of it.
#[test]
fn doc_ids_follow_load_order() {
    let env = Env::new();
    let sid = env.session();
    let texts: Vec<String> = (0..300).map(|i| format!("text number {i}\n")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut ids = env.load_all(&sid, &refs);
    ids.extend(env.load_all(&sid, &refs[..50]));
    for id in &ids {
        let u = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(u.get_version_num(), 7, "{id} is a time-ordered UUID");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids, "doc_ids in load order");
}

#[test]
fn token_estimates_are_ceil_of_chars_over_four_unless_hinted() {
    let env = Env::new();
    let sid = env.session();
    env.write_file("hinted.txt", "0123456789");
    let r = load(
        &env,
        &sid,
        json!([
            {"type": "inline", "content": "12345678"},
            {"type": "inline", "content": "123456789"},
            {"type": "inline", "content": "é😀€"},
            {"type": "inline", "content": ""},
            {"type": "inline", "content": "abc", "token_count_hint": 999},
            {"type": "file", "path": "hinted.txt", "token_count_hint": 42},
            {"type": "file", "path": "hinted.txt"}
        ]),
    );
    let est: Vec<u64> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "length_tokens_est"))
        .collect();
    assert_eq!(est, vec![2, 3, 1, 0, 999, 42, 3]);
    let lens: Vec<u64> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "length_chars"))
        .collect();
    assert_eq!(lens, vec![8, 9, 3, 0, 3, 10, 10]);
    assert_eq!(r["total_tokens_est"], est.iter().sum::<u64>());
    assert_eq!(r["total_chars"], lens.iter().sum::<u64>());
    let info = env.info(&sid);
    assert_eq!(info["total_tokens_est"], est.iter().sum::<u64>());
    assert_eq!(info["document_count"], 7);
    // docs.list shows the same numbers, in load order.
    let list = env.call("rlm.docs.list", json!({"session_id": sid}));
    let listed: Vec<u64> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| u64_of(d, "length_tokens_est"))
        .collect();
    assert_eq!(listed, est);
    let ids: Vec<&Value> = list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["doc_id"])
        .collect();
    let loaded_ids: Vec<&Value> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["doc_id"])
        .collect();
    assert_eq!(ids, loaded_ids);
}

#[test]
fn peek_bounds_are_checked_against_the_documents_length() {
    let env = Env::new();
    let sid = env.session();
    let doc = env.load(&sid, "0123456789");
    for (start, end) in [(-1i64, -1i64), (11, -1), (0, 11), (5, 3), (0, -2), (11, 12)] {
        let e = env.fail(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "start": start, "end": end}),
        );
        let msg = expect_code(&e, "invalid_argument");
        assert!(
            msg.contains("10"),
            "[{start}, {end}) names the length: {msg}"
        );
        assert_eq!(e.to_json()["error"]["total_length"], 10, "{msg}");
    }
    for (start, end, want) in [
        (0i64, -1i64, "0123456789"),
        (10, -1, ""),
        (10, 10, ""),
        (0, 0, ""),
        (3, 7, "3456"),
        (9, 10, "9"),
    ] {
        let p = env.call(
            "rlm.docs.peek",
            json!({"session_id": sid, "doc_id": doc, "start": start, "end": end}),
        );
        assert_eq!(p["content"], want, "[{start}, {end})");
        assert_eq!(p["span"]["start"], start);
        assert_eq!(p["span"]["end"], start as u64 + want.len() as u64);
        assert_eq!(p["truncated"], false);
    }
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 4}),
    );
    assert_eq!(p["content"], "456789", "end defaults to -1");
}

#[test]
fn peek_is_cut_at_max_chars_per_peek_and_says_where_it_ended() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_peek": 100}));
    let text: String = (0..250)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let text = text.replacen('a', "ä", 3); // some multi-byte chars too
    let doc = env.load(&sid, &text);
    let p = env.call("rlm.docs.peek", json!({"session_id": sid, "doc_id": doc}));
    assert_eq!(p["content"], chars(&text, 0, 100));
    assert_eq!(p["span"]["end"], 100);
    assert_eq!(p["truncated"], true);
    assert_eq!(p["total_length"], 250);
    assert_eq!(
        p["content_hash"],
        sha256_hex(chars(&text, 0, 100).as_bytes())
    );
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 50, "end": 180}),
    );
    assert_eq!(p["content"], chars(&text, 50, 150));
    assert_eq!(p["span"], json!({"doc_id": doc, "start": 50, "end": 150}));
    assert_eq!(p["truncated"], true);
    let p = env.call(
        "rlm.docs.peek",
        json!({"session_id": sid, "doc_id": doc, "start": 150, "end": 250}),
    );
    assert_eq!(p["content"], chars(&text, 150, 250));
    assert_eq!(p["truncated"], false, "exactly the cap is not cut");
}

#[test]
fn docs_list_pages_in_load_order() {
    let env = Env::new();
    let sid = env.session();
    let texts: Vec<String> = (0..25).map(|i| format!("document number {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = env.load_all(&sid, &refs);
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let r = env.call(
            "rlm.docs.list",
            json!({"session_id": sid, "limit": 10, "offset": offset}),
        );
        assert_eq!(r["total"], 25);
        let page = r["documents"].as_array().unwrap();
        assert!(page.len() <= 10);
        seen.extend(
            page.iter()
                .map(|d| d["doc_id"].as_str().unwrap().to_owned()),
        );
        if r["has_more"] == false {
            assert!(r["next_offset"].is_null());
            break;
        }
        offset = u64_of(&r, "next_offset");
    }
    assert_eq!(seen, ids);
    let r = env.call("rlm.docs.list", json!({"session_id": sid, "offset": 100}));
    assert_eq!(r["documents"], json!([]));
    assert_eq!(r["has_more"], false);
}

#[test]
fn paging_passes_a_document_whose_source_fills_the_page() {
    let env = Env::new();
    let sid = env.session_with(json!({"max_chars_per_response": 1000}));
    let long_name = "n".repeat(3000);
    let r = env.call(
        "rlm.docs.load",
        json!({"session_id": sid, "sources": [
            {"type": "inline", "content": "first", "name": "a"},
            {"type": "inline", "content": "second", "name": long_name},
            {"type": "inline", "content": "third", "name": "c"},
        ]}),
    );
    assert_eq!(r["loaded_count"], 3, "{r}");
    let mut sources = Vec::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 3, "paging does not advance: {sources:?}");
        let r = env.call(
            "rlm.docs.list",
            json!({"session_id": sid, "offset": offset}),
        );
        assert!(json_len(&r) <= 1000, "{}", json_len(&r));
        let page = r["documents"].as_array().unwrap();
        assert!(!page.is_empty(), "{r}");
        for d in page {
            let source = d["source"].as_str().unwrap();
            if source.starts_with('n') {
                assert_eq!(r["truncated"], true);
                assert_eq!(d["truncated"], true, "{d}");
                assert!(
                    source.len() > 100 && source.len() < 1000,
                    "{}",
                    source.len()
                );
            } else {
                assert!(d.get("truncated").is_none(), "{d}");
            }
            sources.push(source.chars().next().unwrap());
        }
        match r["next_offset"].as_u64() {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(sources, ['a', 'n', 'c']);
}

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
