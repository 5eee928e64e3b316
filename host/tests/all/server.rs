//! The server over real HTTP: the binary on port 0 with a temp data dir.

mod abuse;
mod activation;
mod bad_input;
mod capabilities;
pub mod connections;
pub mod cli;
mod containment;
mod crash;
mod dashboard;
mod delivery;
mod failures;
mod filters;
mod grants;
mod languages;
mod lifecycle;
mod logs;
mod metrics;
mod openapi;
pub mod polling;
mod providers;
mod precompiled;
mod renewal;
mod retention;
mod reuse;
mod secrets;
mod sources;
mod statuses;
