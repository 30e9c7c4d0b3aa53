//! The built binaries (`rlmd`, `rlm-mcp`, `rlm`) and what the tests install once (virtualenvs, npm packages).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// ---------------------------------------------------------------- binaries

/// `target/<profile>`: the test runs as `target/<profile>/deps/<test>-<hash>`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps")
        .to_owned()
}

/// The cargo target directory (`target/`).
pub fn target_dir() -> PathBuf {
    bin_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_owned()
}

/// `<target>/<kind>/<name>`, made by `install` (given the empty folder) the
/// first time it is asked for with this `spec`, and reused while its marker
/// says `spec`; a folder left half made is made again. Under a file lock in
/// `<target>/<kind>`, so parallel tests and test binaries do not race.
pub fn installed_once(kind: &str, name: &str, spec: &str, install: impl FnOnce(&Path)) -> PathBuf {
    let root = target_dir().join(kind);
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(".lock"))
        .unwrap();
    fs4::FileExt::lock(&lock).unwrap_or_else(|e| panic!("locking {}: {e}", root.display()));
    let dir = root.join(name);
    let marker = dir.join(".rlm-ready");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(spec) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    install(&dir);
    std::fs::write(&marker, spec).unwrap();
    dir
}

/// Runs an installer's command; panics with its output when it fails.
pub fn run_installer(cmd: &mut Command, what: &str, needs: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); {needs} is required"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// The daemon binary.
pub fn rlmd() -> PathBuf {
    bin("rlmd")
}

/// The MCP shim binary.
pub fn shim_bin() -> PathBuf {
    bin("rlm-mcp")
}

/// The repository root (the parent of this package's folder, `tests/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the rlm-e2e package lives in the repository's tests/")
        .to_owned()
}
/// The `rlm` CLI built beside the tests.
pub fn rlm_cli() -> PathBuf {
    let p = bin_dir().join("rlm");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}
