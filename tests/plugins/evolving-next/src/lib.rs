//! The evolving test connector's code, built as version 2.0.0: what an
//! operator would upload to replace 1.0.0, breaking some of its triggers.

#[path = "../../evolving/src/connector.rs"]
mod connector;

use connector::Evolving;

triggerhost_sdk::export_connector!(Evolving);
