//! The rlm-client library: the MCP layer of `rlm-mcp` (`mcp`) and the connection to the rlmd daemon (`daemon`, started on demand by `autostart`), shared by the `rlm-mcp` and `rlm` binaries.

pub mod autostart;
pub mod daemon;
pub mod mcp;
