//! The server over real HTTP: the binary on port 0 with a temp data dir.

mod bad_input;
mod cli;
mod crash;
mod failures;
mod lifecycle;
