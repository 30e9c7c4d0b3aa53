//! Helpers of the multi-process tests: the built `rlmd` and `rlm-mcp`, a private temp dir per
//! test (socket, data, logs), real daemon and shim processes, a raw MCP driver (JSON-RPC lines
//! on the shim's stdio), a raw IPC client (length-prefixed JSON frames on the socket), process
//! lookups through /proc, and polling with deadlines.

#![allow(dead_code)]

use std::time::Duration;

mod bins;
mod ipc;
mod procs;
mod shim;
mod world;

pub use bins::*;
pub use ipc::*;
pub use procs::*;
pub use shim::*;
pub use world::*;

/// How long any single expected event may take before a test gives up.
pub const WAIT: Duration = Duration::from_secs(30);
