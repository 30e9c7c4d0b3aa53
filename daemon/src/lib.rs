//! The rlm engine: the store, the tools and search, served by `rlmd`.

pub mod alloc;
pub mod chunk;
pub mod engine;
pub mod fault;
pub mod search;
pub mod server;
pub mod store;
pub mod text;

pub use engine::{CallContext, CallError, Engine, EngineConfig};
