//! The shared crate of rlm: what the daemon, the shim and the CLI must agree
//! on. It stays light (no SQLite, no search engine): the tool contract types,
//! tool errors, the IPC protocol, config, paths, logging and the token
//! estimate every cap in tokens uses.

pub mod config;
pub mod error;
pub mod logging;
pub mod paths;
pub mod protocol;
pub mod small_file;
pub mod tokens;
pub mod tools;

pub use error::{ErrorCode, ToolError};
pub use tools::Tool;
