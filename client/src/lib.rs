//! The rlm-client library: the MCP layer of `rlm-mcp` (`mcp`) and the connection to the rlmd daemon (`daemon`, started on demand by `autostart`), shared by the `rlm-mcp` and `rlm` binaries.

pub mod autostart;
pub mod daemon;
pub mod mcp;

/// Receives progress of one call: `(done, total, message)`.
pub type ProgressSink = tokio::sync::mpsc::UnboundedSender<(u64, Option<u64>, String)>;

/// The async runtime of the shim and the CLI: two workers are plenty for a
/// client whose work happens in the daemon.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
