//! Integration tests of the triggerhost library, in one binary so the
//! workspace links wasmtime into a single test executable.
//!
//! The components under test are built from source by
//! `cargo xtask build-plugins` (which `cargo xtask test` runs first).

mod multinode;
mod browser;
mod containment;
mod database;
mod fuzz;
mod helpers;
mod host;
mod limits;
mod provider;
mod receiver;
mod load;
mod server;
mod standard_webhooks;
