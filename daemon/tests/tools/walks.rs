//! What a load of a folder or a glob reads: `**` and the include / exclude
//! patterns, flat and recursive directories, bad files reported by path,
//! FIFOs and devices refused without blocking, links followed once and
//! loops stopped.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;

use super::docs::{canon, load, sources_of};
use crate::common::*;

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

/// Sources are expanded side by side: whatever finishes first, the loaded
/// documents and the error lines follow the order of the sources.
#[test]
fn sources_expanded_side_by_side_keep_their_order() {
    let env = Env::new();
    let sid = env.session();
    let root = make_tree(&env);
    let r = load(
        &env,
        &sid,
        json!([
            {"type": "directory", "path": "tree/src/x", "recursive": true},
            {"type": "inline", "content": "between", "name": "inline-1"},
            {"type": "glob", "path": "tree/src/*.py"},
            {"type": "bogus"},
            {"type": "file", "path": "tree/missing.txt"},
            {"type": "file", "path": "tree/top.py"},
            {"type": "glob", "path": "tree/nothing/*.py"},
        ]),
    );
    let sources: Vec<&str> = r["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["source"].as_str().unwrap())
        .collect();
    let at = |rel: &str| root.join(rel).display().to_string();
    assert_eq!(
        sources,
        [
            at("src/x/b.py"),
            at("src/x/e.md"),
            at("src/x/y/c.py"),
            "inline-1".to_owned(),
            at("src/a.py"),
            at("top.py"),
        ],
        "{r}"
    );
    let errors = errors_of(&r);
    assert_eq!(errors.len(), 3, "{r}");
    assert!(errors[0].starts_with("sources[3]: not a source"), "{r}");
    assert!(errors[1].contains("missing.txt"), "{r}");
    assert!(errors[2].starts_with("sources[6] (glob"), "{r}");
}

/// A glob whose folder does not exist says so once, naming the folder.
#[test]
fn a_glob_under_a_missing_folder_is_one_error_naming_it() {
    let env = Env::new();
    let sid = env.session();
    make_tree(&env);
    let r = load(
        &env,
        &sid,
        json!([{"type": "glob", "path": "tree/nothing/**/*.py"}, {"type": "glob", "path": "tree/*.py"}]),
    );
    let errors = errors_of(&r);
    assert_eq!(errors.len(), 1, "{r}");
    let missing = env.dir.path().join("tree/nothing");
    assert!(
        errors[0].starts_with("sources[0] (glob ")
            && errors[0].contains(&format!("{} does not exist", missing.display())),
        "{r}"
    );
    assert_eq!(r["loaded_count"], 1, "the other source still loads: {r}");
}
