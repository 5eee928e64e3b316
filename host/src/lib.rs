//! triggerhost: runs trigger connectors as sandboxed WebAssembly components.
//!
//! - [`contract`]: the host's version-independent view of the WIT contract.
//! - `bindings`: every `bindgen!`, converting into `contract` at the boundary.
//! - [`runtime`]: the engine, per-call limits, loading and calling plugins.
//! - [`capabilities`]: what a connector may import (log, kv, outbound HTTP).
//! - [`secrets`]: secrets sealed at rest, and a type that never prints them.
//! - [`cluster`]: several nodes on one PostgreSQL: leases and propagation.

pub mod api;
pub mod app;
pub(crate) mod bindings;
pub mod call_logs;
pub mod capabilities;
pub mod cluster;
pub mod cli;
pub mod config;
pub mod connections;
pub mod contract;
pub mod delivery;
pub(crate) mod data_dir;
pub mod failures;
pub mod filters;
pub mod ids;
pub mod ingress;
pub mod json;
pub mod metrics;
pub mod pipeline;
pub mod poller;
pub(crate) mod private_file;
pub mod registry;
pub mod renewal;
pub mod retention;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod timestamp;
pub mod token_bucket;
pub mod triggers;
pub mod ui;

pub use runtime::{
    CallError, CallErrorKind, CallOutput, ComponentCaps, ComponentShape, Limits, LoadError, Plugin, Runtime, RuntimeConfig,
};
