//! The evolving test connector, version 1.0.0 (see `connector.rs`).

mod connector;

use connector::Evolving;

triggerhost_sdk::export_connector!(Evolving);
