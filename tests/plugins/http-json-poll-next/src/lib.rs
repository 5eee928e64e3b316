//! `plugins/http-json-poll`'s code, built as version 0.2.0: what an
//! operator would upload to replace the active version between polls.

#[path = "../../../../plugins/http-json-poll/src/connector.rs"]
mod connector;

use connector::HttpJsonPoll;

triggerhost_sdk::export_connector!(HttpJsonPoll);
