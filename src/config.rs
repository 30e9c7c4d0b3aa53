//! Configuration: an optional `config.toml` (in the platform's config folder,
//! or where `RLM_CONFIG` points), every key with a default, overridden by the
//! environment (`RLM_DATA_DIR`, `RLM_SOCKET`, `RLM_LOG_DIR`, `RLM_LOG`).
//! An unknown key, a wrong type or an impossible value is an error that
//! names the key and the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tools::SessionConfig;

/// Everything `config.toml` may set. Field docs are the reference the README
/// repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store lives (default: the platform's data folder, `~/.local/share/rlm`).
    pub data_dir: Option<PathBuf>,
    /// The daemon's socket (default: `$XDG_RUNTIME_DIR/rlm/rlmd.sock`, else `/tmp/rlm-<uid>/rlmd.sock`).
    pub socket: Option<PathBuf>,
    /// Seconds a daemon started on demand stays up with no client (default 600; 0: never exits).
    pub idle_timeout_seconds: u64,
    /// Folders file loads may read (canonicalized; default: no restriction).
    pub allowed_roots: Option<Vec<PathBuf>>,
    /// Seconds after which the daemon drops what it keeps in memory for
    /// speed (default 20; 0: kept up to the caches' bounds): a session's view
    /// of the search index and its documents after this long without a search
    /// or load of it, while other sessions are served; every session's, and
    /// the open texts, after this long with no call at all.
    pub release_caches_after_seconds: u64,
    /// Megabytes of large requests (each over 1 MiB: inline texts) the
    /// daemon holds at once, every client together (default 256): past it a
    /// client's next large request is read once calls holding others end.
    pub max_large_requests_mb: u64,
    pub session: SessionDefaults,
    pub load: LoadConfig,
    pub log: LogConfig,
    pub retention: Retention,
    pub search: SearchConfig,
    /// Caps for the sessions of particular MCP clients, by a part of their
    /// `clientInfo.name` (`[clients.codex]`); see [`ClientProfile`].
    pub clients: BTreeMap<String, ClientProfile>,
}

/// The caps `rlm-mcp` gives the sessions a client creates, when the client's
/// `clientInfo.name` contains the profile's key (case-insensitive) and the
/// client did not set them itself: so that each client gets answers it
/// will not cut. Entries of `config.toml` come first (in key order), then
/// [`BUILTIN_CLIENT_PROFILES`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientProfile {
    pub max_chars_per_response: Option<u64>,
    pub max_tokens_per_response: Option<u64>,
}

/// The profile of the MCP client named `client_name` among `clients` (the
/// `[clients]` of a configuration), else among the built-in ones; see
/// [`Config::client_profile`].
pub fn client_profile(
    clients: &BTreeMap<String, ClientProfile>,
    client_name: &str,
) -> Option<(String, ClientProfile)> {
    let name = client_name.to_lowercase();
    let matches = |key: &str| !key.is_empty() && name.contains(&key.to_lowercase());
    clients
        .iter()
        .find(|(key, _)| matches(key))
        .map(|(key, p)| (key.clone(), p.clone()))
        .or_else(|| {
            BUILTIN_CLIENT_PROFILES
                .iter()
                .find(|(key, _)| matches(key))
                .map(|(key, p)| ((*key).to_owned(), p.clone()))
        })
}

/// What `rlm-mcp` knows of clients without being told: Claude Code and
/// Claude Desktop warn about a tool answer from 10,000 tokens (the default
/// cap in tokens, 8,000 estimated, stays under it even when the server's
/// defaults are raised); Codex keeps about 10 KiB or 256 lines of a tool's
/// output and GitHub Copilot's CLI 10 KB, so theirs are 9,000 characters
/// and 2,500 estimated tokens.
pub const BUILTIN_CLIENT_PROFILES: &[(&str, ClientProfile)] = &[
    (
        "claude",
        ClientProfile {
            max_chars_per_response: None,
            max_tokens_per_response: Some(8_000),
        },
    ),
    (
        "codex",
        ClientProfile {
            max_chars_per_response: Some(9_000),
            max_tokens_per_response: Some(2_500),
        },
    ),
    (
        "copilot",
        ClientProfile {
            max_chars_per_response: Some(9_000),
            max_tokens_per_response: Some(2_500),
        },
    ),
];

/// Search settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Which passages bm25's statistics (passage count, average length,
    /// how many passages hold a term) are taken over (default `session`).
    pub bm25_statistics: Bm25Statistics,
    /// Where a bm25 query word also matches the index's other words of its
    /// English stem (`retry`: `retries`, `retried`), scored as one term
    /// (default `prose`: in sessions mostly of prose; see [`WordForms`]).
    pub word_forms: WordForms,
}

/// `search.word_forms`: in which sessions a bm25 query word also matches its
/// other English forms. They rank prose better (SciFact nDCG@10 0.670 ->
/// 0.700), code no better, and cost search time (docs/BENCHMARKS.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WordForms {
    /// Each word matches only itself.
    Never,
    /// In a session whose documents are more than half prose, by their
    /// characters: texts loaded under a name without a code, HTML or data
    /// extension (`.txt`, `.md`, `.rst`, `README`, inline texts).
    #[default]
    Prose,
    /// In every session.
    Always,
}

impl<'de> Deserialize<'de> for WordForms {
    /// `"never"`, `"prose"`, `"always"`, or `false` / `true` (as `never` /
    /// `always`, the values of before `prose`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WordForms;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"prose\" (the default), \"always\" or \"never\" (or true / false)")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<WordForms, E> {
                Ok(if on {
                    WordForms::Always
                } else {
                    WordForms::Never
                })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WordForms, E> {
                match v {
                    "never" => Ok(WordForms::Never),
                    "prose" => Ok(WordForms::Prose),
                    "always" => Ok(WordForms::Always),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `search.bm25_statistics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bm25Statistics {
    /// The searched session's own passages: its scores do not depend on, and
    /// tell nothing of, what other sessions in the store hold.
    #[default]
    Session,
    /// Every passage of the shared index, every session's.
    Store,
}

/// What the daemon deletes and closes by itself (at start, then hourly).
/// Deleting is final; closing only stops changes. 0 turns a rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Closed sessions are deleted this many days after their close (default 30).
    pub delete_closed_after_days: u64,
    /// Active sessions with no call for this many days are closed (default 0: never).
    pub close_idle_after_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            delete_closed_after_days: 30,
            close_idle_after_days: 0,
        }
    }
}

/// Defaults of new sessions (a client may override them per session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionDefaults {
    /// Tool calls a session may make (default 500).
    pub max_tool_calls: u64,
    /// Characters one response may carry (default 50000).
    pub max_chars_per_response: u64,
    /// Estimated tokens one response may carry (default 8000).
    pub max_tokens_per_response: u64,
    /// Characters one peek may return (default 10000).
    pub max_chars_per_peek: u64,
    /// Whether repeating a chunking returns the same spans (default true).
    pub chunk_cache_enabled: bool,
}

/// Limits of `rlm.docs.load`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Files larger than this many MB are not loaded (default 100).
    pub max_file_size_mb: u64,
    /// Threads that read and hash files (default 0: one per core).
    pub threads: usize,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Log filter, as `RUST_LOG` reads it: `info`, `rlmd=debug` (default `info`; `RLM_LOG` overrides).
    pub level: String,
    /// Log folder (default: the platform's state folder, `~/.local/state/rlm`; `RLM_LOG_DIR` overrides).
    pub dir: Option<PathBuf>,
    /// Also log to stderr in a human format (default false; the daemon's JSON log file is always written).
    pub stderr: bool,
    /// Daily log files kept (default 7).
    pub keep_files: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            socket: None,
            idle_timeout_seconds: 600,
            allowed_roots: None,
            release_caches_after_seconds: 20,
            max_large_requests_mb: 256,
            session: SessionDefaults::default(),
            load: LoadConfig::default(),
            log: LogConfig::default(),
            retention: Retention::default(),
            search: SearchConfig::default(),
            clients: BTreeMap::new(),
        }
    }
}

impl Default for SessionDefaults {
    fn default() -> Self {
        let s = SessionConfig::default();
        SessionDefaults {
            max_tool_calls: s.max_tool_calls,
            max_chars_per_response: s.max_chars_per_response,
            max_tokens_per_response: s.max_tokens_per_response,
            max_chars_per_peek: s.max_chars_per_peek,
            chunk_cache_enabled: s.chunk_cache_enabled,
        }
    }
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            max_file_size_mb: 100,
            threads: 0,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            dir: None,
            stderr: false,
            keep_files: 7,
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The configuration as loaded, with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
}

/// The largest config file read (a config is a few hundred bytes; a path
/// named by mistake can be a log of gigabytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The largest `max_large_requests_mb` (1 TiB): past it the setting bounds
/// nothing a machine has.
pub const MAX_LARGE_REQUESTS_MB: u64 = 1 << 20;

impl Config {
    /// The config file's path: `RLM_CONFIG`, else `config.toml` in the
    /// platform's config folder (`~/.config/rlm/config.toml`).
    pub fn path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("RLM_CONFIG").filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(p));
        }
        directories::ProjectDirs::from("", "", "rlm").map(|d| d.config_dir().join("config.toml"))
    }

    /// Reads the config file (a missing default file is fine; a missing file
    /// named by `RLM_CONFIG` is not), applies the environment, and checks it.
    pub fn load() -> Result<Loaded, ConfigError> {
        let explicit = std::env::var_os("RLM_CONFIG").is_some_and(|v| !v.is_empty());
        let path = Config::path();
        let (mut config, file) = match &path {
            Some(p) if p.exists() => (Config::from_file(p)?, Some(p.clone())),
            Some(p) if explicit => {
                return Err(ConfigError(format!(
                    "RLM_CONFIG names {}, which does not exist; create it or unset RLM_CONFIG",
                    p.display()
                )));
            }
            _ => (Config::default(), None),
        };
        config.apply_env();
        Ok(Loaded { config, file })
    }

    /// Parses and checks one file: a regular file of at most
    /// [`MAX_CONFIG_BYTES`], opened without blocking (`RLM_CONFIG` naming a
    /// FIFO or a device hung every binary at start-up).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        use crate::small_file::{SmallFileError, read_small_file};
        let text = read_small_file(path, MAX_CONFIG_BYTES).map_err(|e| {
            ConfigError(match e {
                SmallFileError::Io(e) => format!("reading config file {}: {e}", path.display()),
                SmallFileError::NotRegular => format!(
                    "config file {} is not a regular file (a folder, FIFO, socket or device); name a TOML file (RLM_CONFIG)",
                    path.display()
                ),
                SmallFileError::TooLarge(size) => format!(
                    "config file {} is {}, more than the {MAX_CONFIG_BYTES} bytes a config file may have; name the right file (RLM_CONFIG)",
                    path.display(),
                    size.map_or("larger".to_owned(), |n| format!("{n} bytes")),
                ),
            })
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            ConfigError(format!(
                "config file {origin}: {}",
                e.to_string().trim_end().replace('\n', "\n  ")
            ))
        })?;
        config.expand_home();
        config.check(origin)?;
        Ok(config)
    }

    /// A leading `~` in a path key is the home folder, as the README's
    /// examples write them (it was taken literally: `./~/.local/...`).
    fn expand_home(&mut self) {
        use crate::paths::expand_home;
        for p in [&mut self.data_dir, &mut self.socket, &mut self.log.dir]
            .into_iter()
            .flatten()
        {
            *p = expand_home(p);
        }
        for r in self.allowed_roots.iter_mut().flatten() {
            *r = expand_home(r);
        }
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, why: &str| {
            Err(ConfigError(format!(
                "config file {origin}: `{key}` = {value} {why}"
            )))
        };
        let s = &self.session;
        if s.max_tool_calls < 1 {
            return bad(
                "session.max_tool_calls",
                s.max_tool_calls.to_string(),
                "must be at least 1",
            );
        }
        if s.max_chars_per_response < 1000 {
            return bad(
                "session.max_chars_per_response",
                s.max_chars_per_response.to_string(),
                "must be at least 1000",
            );
        }
        if s.max_tokens_per_response < 500 {
            return bad(
                "session.max_tokens_per_response",
                s.max_tokens_per_response.to_string(),
                "must be at least 500",
            );
        }
        if s.max_chars_per_peek < 100 {
            return bad(
                "session.max_chars_per_peek",
                s.max_chars_per_peek.to_string(),
                "must be at least 100",
            );
        }
        for (key, p) in &self.clients {
            if key.trim().is_empty() {
                return bad(
                    "clients",
                    format!("{key:?}"),
                    "a profile's key is a part of a client's name and cannot be empty",
                );
            }
            if let Some(v) = p.max_chars_per_response.filter(|v| *v < 1000) {
                return bad(
                    &format!("clients.{key}.max_chars_per_response"),
                    v.to_string(),
                    "must be at least 1000",
                );
            }
            if let Some(v) = p.max_tokens_per_response.filter(|v| *v < 500) {
                return bad(
                    &format!("clients.{key}.max_tokens_per_response"),
                    v.to_string(),
                    "must be at least 500",
                );
            }
        }
        if !(1..=MAX_LARGE_REQUESTS_MB).contains(&self.max_large_requests_mb) {
            return bad(
                "max_large_requests_mb",
                self.max_large_requests_mb.to_string(),
                &format!("must be between 1 and {MAX_LARGE_REQUESTS_MB}"),
            );
        }
        if self.load.max_file_size_mb < 1 {
            return bad(
                "load.max_file_size_mb",
                self.load.max_file_size_mb.to_string(),
                "must be at least 1",
            );
        }
        if self.load.threads > 1024 {
            return bad(
                "load.threads",
                self.load.threads.to_string(),
                "is more threads than makes sense (0 means one per core)",
            );
        }
        if let Some(roots) = &self.allowed_roots {
            for r in roots {
                if !r.is_absolute() {
                    return bad(
                        "allowed_roots",
                        format!("{r:?}"),
                        "must hold absolute paths",
                    );
                }
            }
        }
        if let Some(socket) = &self.socket {
            crate::paths::check_socket_path(socket)
                .map_err(|e| ConfigError(format!("config file {origin}: `socket`: {e}")))?;
        }
        if self.log.keep_files < 1 {
            return bad(
                "log.keep_files",
                self.log.keep_files.to_string(),
                "must be at least 1",
            );
        }
        Ok(())
    }

    /// Environment variables win over the file.
    fn apply_env(&mut self) {
        let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty());
        if let Some(v) = var("RLM_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = var("RLM_SOCKET") {
            self.socket = Some(v.into());
        }
        if let Some(v) = var("RLM_LOG_DIR") {
            self.log.dir = Some(v.into());
        }
        if let Some(v) = std::env::var("RLM_LOG").ok().filter(|v| !v.is_empty()) {
            self.log.level = v;
        }
    }

    /// The data directory in effect.
    pub fn data_dir(&self) -> std::io::Result<PathBuf> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => crate::paths::data_dir(),
        }
    }

    /// The socket in effect.
    pub fn socket(&self) -> std::io::Result<PathBuf> {
        match &self.socket {
            Some(s) => {
                crate::paths::check_socket_path(s)?;
                Ok(s.clone())
            }
            None => crate::paths::socket_path(),
        }
    }

    /// The log folder in effect.
    pub fn log_dir(&self) -> std::io::Result<PathBuf> {
        match &self.log.dir {
            Some(d) => Ok(d.clone()),
            None => crate::paths::log_dir(),
        }
    }

    /// The idle timeout of a daemon started on demand (None: never exits).
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_seconds > 0).then(|| Duration::from_secs(self.idle_timeout_seconds))
    }

    /// Bytes of large requests the daemon may hold at once
    /// (`max_large_requests_mb`).
    pub fn large_requests_bytes(&self) -> usize {
        usize::try_from(self.max_large_requests_mb.min(MAX_LARGE_REQUESTS_MB) << 20)
            .unwrap_or(usize::MAX)
    }

    /// How long the daemon keeps its caches after the last call that used
    /// them (None: up to their bounds); see `release_caches_after_seconds`.
    pub fn release_caches_after(&self) -> Option<Duration> {
        (self.release_caches_after_seconds > 0)
            .then(|| Duration::from_secs(self.release_caches_after_seconds))
    }

    /// The profile of the MCP client named `client_name` (its
    /// `clientInfo.name`), with the key that matched: the first entry of
    /// `[clients]` whose key the name contains, else the first built-in one.
    pub fn client_profile(&self, client_name: &str) -> Option<(String, ClientProfile)> {
        client_profile(&self.clients, client_name)
    }

    /// Session defaults as the engine takes them.
    pub fn session_defaults(&self) -> SessionConfig {
        SessionConfig {
            max_tool_calls: self.session.max_tool_calls,
            max_chars_per_response: self.session.max_chars_per_response,
            max_tokens_per_response: self.session.max_tokens_per_response,
            max_chars_per_peek: self.session.max_chars_per_peek,
            chunk_cache_enabled: self.session.chunk_cache_enabled,
            model_hints: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config path that names a FIFO, a folder or a huge file: refused at
    /// once with what it is (a FIFO blocked every binary's start-up forever).
    #[cfg(unix)]
    #[test]
    fn a_config_path_that_is_not_a_small_regular_file_is_refused_without_waiting() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = Config::from_file(&fifo).unwrap_err().0;
        assert!(
            err.contains("not a regular file") && err.contains("fifo"),
            "{err}"
        );
        let err = Config::from_file(tmp.path()).unwrap_err().0;
        assert!(err.contains("not a regular file"), "{err}");
        let big = tmp.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let err = Config::from_file(&big).unwrap_err().0;
        assert!(
            err.contains("more than") && err.contains("big.toml"),
            "{err}"
        );
        let good = tmp.path().join("config.toml");
        std::fs::write(&good, "release_caches_after_seconds = 5\n").unwrap();
        let c = Config::from_file(&good).unwrap();
        assert_eq!(c.release_caches_after(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.session.max_tool_calls, 500);
        assert_eq!(c.session.max_chars_per_response, 50_000);
        assert_eq!(c.session.max_chars_per_peek, 10_000);
        assert_eq!(c.load.max_file_size_mb, 100);
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(c.release_caches_after(), Some(Duration::from_secs(20)));
        assert_eq!(c.retention.delete_closed_after_days, 30);
        assert_eq!(c.retention.close_idle_after_days, 0);
    }

    #[test]
    fn every_key_is_read() {
        let c = Config::parse(
            r#"
            data_dir = "/d"
            socket = "/s/rlmd.sock"
            idle_timeout_seconds = 0
            allowed_roots = ["/home/me/src"]
            release_caches_after_seconds = 0
            max_large_requests_mb = 64
            [session]
            max_tool_calls = 9
            max_chars_per_response = 2000
            max_tokens_per_response = 700
            max_chars_per_peek = 300
            chunk_cache_enabled = false
            [load]
            max_file_size_mb = 5
            threads = 2
            [log]
            level = "rlmd=debug"
            dir = "/l"
            stderr = true
            keep_files = 3
            [retention]
            delete_closed_after_days = 0
            close_idle_after_days = 14
            [search]
            bm25_statistics = "store"
            word_forms = "always"
            [clients.zed]
            max_chars_per_response = 5000
            max_tokens_per_response = 900
            "#,
            "t.toml",
        )
        .unwrap();
        // Every key, each at a value other than its default: the whole struct
        // is written out (no `..Default::default()`), so a key added to
        // `Config` must be added here, and a key whose read is dropped fails.
        let expected = Config {
            data_dir: Some("/d".into()),
            socket: Some("/s/rlmd.sock".into()),
            idle_timeout_seconds: 0,
            allowed_roots: Some(vec![PathBuf::from("/home/me/src")]),
            release_caches_after_seconds: 0,
            max_large_requests_mb: 64,
            session: SessionDefaults {
                max_tool_calls: 9,
                max_chars_per_response: 2000,
                max_tokens_per_response: 700,
                max_chars_per_peek: 300,
                chunk_cache_enabled: false,
            },
            load: LoadConfig {
                max_file_size_mb: 5,
                threads: 2,
            },
            log: LogConfig {
                level: "rlmd=debug".into(),
                dir: Some("/l".into()),
                stderr: true,
                keep_files: 3,
            },
            retention: Retention {
                delete_closed_after_days: 0,
                close_idle_after_days: 14,
            },
            search: SearchConfig {
                bm25_statistics: Bm25Statistics::Store,
                word_forms: WordForms::Always,
            },
            clients: BTreeMap::from([(
                "zed".to_owned(),
                ClientProfile {
                    max_chars_per_response: Some(5000),
                    max_tokens_per_response: Some(900),
                },
            )]),
        };
        assert_eq!(c, expected);
        // Each value differs from the default, so reading none of them would fail too.
        let d = Config::default();
        let (s, ds) = (&expected.session, &d.session);
        let differs = [
            ("data_dir", expected.data_dir != d.data_dir),
            ("socket", expected.socket != d.socket),
            (
                "idle_timeout_seconds",
                expected.idle_timeout_seconds != d.idle_timeout_seconds,
            ),
            ("allowed_roots", expected.allowed_roots != d.allowed_roots),
            (
                "release_caches_after_seconds",
                expected.release_caches_after_seconds != d.release_caches_after_seconds,
            ),
            (
                "max_large_requests_mb",
                expected.max_large_requests_mb != d.max_large_requests_mb,
            ),
            (
                "session.max_tool_calls",
                s.max_tool_calls != ds.max_tool_calls,
            ),
            (
                "session.max_chars_per_response",
                s.max_chars_per_response != ds.max_chars_per_response,
            ),
            (
                "session.max_tokens_per_response",
                s.max_tokens_per_response != ds.max_tokens_per_response,
            ),
            (
                "session.max_chars_per_peek",
                s.max_chars_per_peek != ds.max_chars_per_peek,
            ),
            ("clients", expected.clients != d.clients),
            (
                "session.chunk_cache_enabled",
                s.chunk_cache_enabled != ds.chunk_cache_enabled,
            ),
            (
                "load.max_file_size_mb",
                expected.load.max_file_size_mb != d.load.max_file_size_mb,
            ),
            ("load.threads", expected.load.threads != d.load.threads),
            ("log.level", expected.log.level != d.log.level),
            ("log.dir", expected.log.dir != d.log.dir),
            ("log.stderr", expected.log.stderr != d.log.stderr),
            (
                "log.keep_files",
                expected.log.keep_files != d.log.keep_files,
            ),
            (
                "retention.delete_closed_after_days",
                expected.retention.delete_closed_after_days != d.retention.delete_closed_after_days,
            ),
            (
                "retention.close_idle_after_days",
                expected.retention.close_idle_after_days != d.retention.close_idle_after_days,
            ),
        ];
        for (key, different) in differs {
            assert!(different, "{key}: the test sets it to its default");
        }
        // And the accessors hand the values on.
        assert_eq!(c.data_dir().unwrap(), PathBuf::from("/d"));
        assert_eq!(c.socket().unwrap(), PathBuf::from("/s/rlmd.sock"));
        assert_eq!(c.log_dir().unwrap(), PathBuf::from("/l"));
        assert_eq!(c.idle_timeout(), None);
        assert_eq!(c.release_caches_after(), None);
        let sd = c.session_defaults();
        assert_eq!(
            (
                sd.max_tool_calls,
                sd.max_chars_per_response,
                sd.max_chars_per_peek,
                sd.chunk_cache_enabled
            ),
            (9, 2000, 300, false)
        );
    }

    /// `~` in a path key was taken literally (`./~/.local/share/rlm`).
    #[test]
    fn a_leading_tilde_in_a_path_is_the_home_folder() {
        let home = directories::BaseDirs::new().unwrap().home_dir().to_owned();
        let c = Config::parse(
            "data_dir = \"~/.local/share/rlm\"\nsocket = \"~/r/rlmd.sock\"\nallowed_roots = [\"~/src\", \"/opt\"]\n[log]\ndir = \"~/logs\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.data_dir().unwrap(), home.join(".local/share/rlm"));
        assert_eq!(c.socket().unwrap(), home.join("r/rlmd.sock"));
        assert_eq!(c.log_dir().unwrap(), home.join("logs"));
        assert_eq!(
            c.allowed_roots.unwrap(),
            vec![home.join("src"), PathBuf::from("/opt")]
        );
    }

    #[test]
    fn unknown_keys_wrong_types_and_impossible_values_name_the_key_and_file() {
        let e = Config::parse("[session]\nmax_tool_call = 5\n", "/etc/x.toml")
            .unwrap_err()
            .0;
        assert!(
            e.contains("/etc/x.toml") && e.contains("max_tool_call"),
            "{e}"
        );
        let e = Config::parse("idle_timeout_seconds = \"ten\"\n", "x.toml")
            .unwrap_err()
            .0;
        assert!(
            e.contains("x.toml") && e.contains("idle_timeout_seconds"),
            "{e}"
        );
        let e = Config::parse("[session]\nmax_chars_per_response = 10\n", "x.toml")
            .unwrap_err()
            .0;
        assert!(
            e.contains("session.max_chars_per_response") && e.contains("1000"),
            "{e}"
        );
        let e = Config::parse("allowed_roots = [\"rel/dir\"]\n", "x.toml")
            .unwrap_err()
            .0;
        assert!(e.contains("allowed_roots") && e.contains("absolute"), "{e}");
        let e = Config::parse("colour = 1\n", "x.toml").unwrap_err().0;
        assert!(e.contains("colour"), "{e}");
        for mb in [0, MAX_LARGE_REQUESTS_MB + 1] {
            let e = Config::parse(&format!("max_large_requests_mb = {mb}\n"), "x.toml")
                .unwrap_err()
                .0;
            assert!(
                e.contains("max_large_requests_mb") && e.contains("between 1 and 1048576"),
                "{e}"
            );
        }
        let c = Config::parse("max_large_requests_mb = 3\n", "x.toml").unwrap();
        assert_eq!(c.large_requests_bytes(), 3 << 20);
    }

    /// `search.word_forms` takes its three names, and the booleans it took
    /// before `prose` existed; anything else names the key and the values.
    #[test]
    fn word_forms_takes_its_names_and_the_old_booleans() {
        assert_eq!(Config::default().search.word_forms, WordForms::Prose);
        for (value, want) in [
            ("\"never\"", WordForms::Never),
            ("\"prose\"", WordForms::Prose),
            ("\"always\"", WordForms::Always),
            ("false", WordForms::Never),
            ("true", WordForms::Always),
        ] {
            let c = Config::parse(&format!("[search]\nword_forms = {value}\n"), "t.toml").unwrap();
            assert_eq!(c.search.word_forms, want, "{value}");
        }
        for bad in ["\"sometimes\"", "1", "\"Prose\""] {
            let e = Config::parse(&format!("[search]\nword_forms = {bad}\n"), "t.toml")
                .unwrap_err()
                .0;
            assert!(
                e.contains("t.toml") && e.contains("word_forms") && e.contains("\"prose\""),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn client_profiles_match_a_part_of_the_name_and_the_file_comes_first() {
        let c = Config::default();
        let (key, p) = c.client_profile("codex-mcp-client").unwrap();
        assert_eq!(
            (key.as_str(), p.max_chars_per_response),
            ("codex", Some(9_000))
        );
        assert_eq!(c.client_profile("Claude Code").unwrap().0, "claude");
        assert_eq!(c.client_profile("GitHub-Copilot-CLI").unwrap().0, "copilot");
        assert!(c.client_profile("mcp-inspector").is_none());
        let c = Config::parse(
            "[clients.codex]\nmax_tokens_per_response = 4000\n",
            "t.toml",
        )
        .unwrap();
        let (_, p) = c.client_profile("codex-mcp-client").unwrap();
        assert_eq!(p.max_tokens_per_response, Some(4_000));
        assert_eq!(
            p.max_chars_per_response, None,
            "the file's entry replaces the built-in one"
        );
        for bad in [
            "[clients.codex]\nmax_tokens_per_response = 10\n",
            "[clients.codex]\nmax_chars_per_response = 10\n",
            "[clients.codex]\nmax_lines = 10\n",
        ] {
            let e = Config::parse(bad, "t.toml").unwrap_err().0;
            assert!(
                e.contains("t.toml") && e.contains("codex") || e.contains("max_lines"),
                "{e}"
            );
        }
    }
}
