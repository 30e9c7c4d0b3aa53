//! The MCP Inspector's CLI, the client people reach for first, drives all twelve tools through
//! `rlm-mcp`: release 0.15 (what `npx @modelcontextprotocol/inspector` installed on Node 20 for
//! long) and 2.12 (whose `tools/list --strict` reports every schema portability problem). Every
//! argument goes in as `--tool-arg key=value` text, as a person types it: the Inspector converts
//! it by the tool's input schema (`limit=2` is a number only when `limit` has one `type`), and
//! the shim converts what is left where unambiguous. Each call is one Inspector run, so one
//! shim; the daemon, started first, keeps the session between them.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::{TestDir, shim_bin};

/// The Inspector `version` under `<target>/npm/inspector-<version>`, installed once from the
/// npm registry.
fn inspector(version: &str) -> PathBuf {
    let package = format!("@modelcontextprotocol/inspector@{version}");
    let dir = common::installed_once("npm", &format!("inspector-{version}"), &package, |dir| {
        common::run_installer(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(dir)
                .arg(&package),
            &format!("npm install {package}"),
            "Node.js with npm",
        );
    });
    dir.join("node_modules/.bin/mcp-inspector")
}

/// One Inspector CLI run against a fresh `rlm-mcp` on `dir`'s daemon.
struct Cli<'a> {
    bin: PathBuf,
    dir: &'a TestDir,
    work: PathBuf,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        for key in common::vars_to_clear() {
            cmd.env_remove(key);
        }
        cmd.arg("--cli");
        // The server's environment: the Inspector passes on only a few variables of its own.
        for (key, value) in self.dir.env() {
            cmd.arg("-e").arg(format!("{key}={}", value.display()));
        }
        cmd.arg(shim_bin())
            .arg("--socket")
            .arg(&self.dir.socket)
            .arg("--data-dir")
            .arg(&self.dir.data)
            .arg("--no-autostart")
            .args(args)
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("the Inspector runs");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(out) => out.expect("the Inspector's output"),
            Err(_) => panic!(
                "the Inspector did not finish {args:?} within 120 s:\n{}",
                self.dir.logs_text()
            ),
        }
    }

    /// `tools/call` of `tool` with `key=value` arguments; its `structuredContent`, which must
    /// not be an error.
    fn call(&self, tool: &str, args: &[String]) -> Value {
        let mut argv = vec!["--method", "tools/call", "--tool-name", tool];
        if !args.is_empty() {
            argv.push("--tool-arg");
            argv.extend(args.iter().map(String::as_str));
        }
        let out = self.run(&argv);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{tool} {args:?}: the Inspector exited {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{tool}: not JSON ({e}):\n{stdout}"));
        assert_eq!(result["isError"], false, "{tool} {args:?}: {result}");
        result["structuredContent"].clone()
    }
}

fn arg(key: &str, value: impl std::fmt::Display) -> String {
    format!("{key}={value}")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

/// A realistic session through the Inspector: every tool, numbers and booleans typed as text.
fn all_twelve_tools(version: &str) {
    let bin = inspector(version);
    let dir = TestDir::new();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("harbour.txt"),
        "Harbour notes.\nThe rare mineral zanzibarite was found near the pier.\nThe end.\n",
    )
    .unwrap();
    let _daemon = dir.start_daemon(&[]);
    let cli = Cli {
        bin,
        dir: &dir,
        work,
    };

    let created = cli.call(
        "rlm.session.create",
        &[
            arg("name", "inspector"),
            arg(
                "config",
                r#"{"max_tool_calls": 40, "chunk_cache_enabled": true}"#,
            ),
        ],
    );
    assert_eq!(created["config"]["max_tool_calls"], 40, "{created}");
    let sid = str_at(&created, "/session_id").to_owned();
    let session = arg("session_id", &sid);

    let loaded = cli.call(
        "rlm.docs.load",
        &[
            session.clone(),
            arg(
                "sources",
                r#"[{"type": "file", "path": "harbour.txt"}, {"type": "inline", "content": "memo one\nmemo two\n"}]"#,
            ),
        ],
    );
    assert_eq!(loaded["loaded_count"], 2, "{loaded}");
    let doc = str_at(&loaded, "/loaded/0/doc_id").to_owned();

    let listed = cli.call("rlm.docs.list", &[session.clone(), arg("limit", 1)]);
    assert_eq!(
        listed["documents"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["next_offset"], 1, "{listed}");

    let peek = cli.call(
        "rlm.docs.peek",
        &[
            session.clone(),
            arg("doc_id", &doc),
            arg("start", 0),
            arg("end", 7),
        ],
    );
    assert_eq!(peek["content"], "Harbour", "{peek}");

    let chunks = cli.call(
        "rlm.chunk.create",
        &[
            session.clone(),
            arg("doc_id", &doc),
            arg("strategy", r#"{"type": "lines", "line_count": 1}"#),
            arg("limit", 2),
        ],
    );
    assert_eq!(
        chunks["spans"].as_array().map(Vec::len),
        Some(2),
        "{chunks}"
    );
    let span = str_at(&chunks, "/spans/1/span_id").to_owned();

    let got = cli.call(
        "rlm.span.get",
        &[session.clone(), arg("span_ids", format!(r#"["{span}"]"#))],
    );
    assert!(
        str_at(&got, "/spans/0/content").contains("zanzibarite"),
        "{got}"
    );

    for method in ["bm25", "literal", "regex"] {
        let found = cli.call(
            "rlm.search.query",
            &[
                session.clone(),
                arg("query", "zanzibarite"),
                arg("method", method),
                arg("limit", 2),
                arg("context_chars", 20),
            ],
        );
        assert_eq!(
            found["matches"][0]["doc_id"],
            doc.as_str(),
            "{method}: {found}"
        );
        assert!(str_at(&found, "/matches/0/context").contains("zanzibarite"));
    }

    let stored = cli.call(
        "rlm.artifact.store",
        &[
            session.clone(),
            arg("type", "summary"),
            arg("content", r#"{"text": "a mineral was found"}"#),
            arg("span_id", &span),
        ],
    );
    let artifact = str_at(&stored, "/artifact_id").to_owned();
    let artifacts = cli.call(
        "rlm.artifact.list",
        &[session.clone(), arg("type", "summary")],
    );
    assert_eq!(artifacts["artifacts"][0]["artifact_id"], artifact.as_str());
    let read = cli.call(
        "rlm.artifact.get",
        &[session.clone(), arg("artifact_id", &artifact)],
    );
    assert_eq!(read["content"]["text"], "a mineral was found", "{read}");

    let info = cli.call("rlm.session.info", std::slice::from_ref(&session));
    assert_eq!(info["document_count"], 2, "{info}");
    let closed = cli.call("rlm.session.close", &[session]);
    assert_eq!(closed["status"], "completed", "{closed}");
}

#[test]
fn inspector_0_15_calls_all_twelve_tools() {
    all_twelve_tools("0.15.0");
}

#[test]
fn inspector_2_12_calls_all_twelve_tools() {
    all_twelve_tools("2.12.0");
}

/// Inspector 2's portability check finds nothing to say of any tool's schemas.
#[test]
fn inspector_2_12_strict_finds_no_schema_problem() {
    let bin = inspector("2.12.0");
    let dir = TestDir::new();
    let _daemon = dir.start_daemon(&[]);
    let cli = Cli {
        bin,
        dir: &dir,
        work: dir.path().to_owned(),
    };
    let out = cli.run(&["--method", "tools/list", "--strict"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}: {stderr}", out.status);
    assert!(
        !stderr.contains("Warning") && !stderr.contains("Error") && !stderr.contains("problem"),
        "--strict reported:\n{stderr}"
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("tools/list JSON");
    let tools = listed["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 12);
    for tool in tools {
        let read_only = tool["annotations"]["readOnlyHint"].as_bool();
        assert!(read_only.is_some(), "no readOnlyHint: {tool}");
        assert!(tool["annotations"]["title"].is_string(), "no title: {tool}");
    }
}
