//! Integration tests of the triggerhost library, in one binary so the
//! workspace links wasmtime into a single test executable.
//!
//! The components under test are built from source by
//! `cargo xtask build-plugins` (which `cargo xtask test` runs first).

mod helpers;
mod limits;
mod load;
mod standard_webhooks;
