//! The records of failed calls, as the operator reads them under
//! `/failures`: built the same way for ingress, lifecycle calls and polls.

use crate::contract::ConnectorError;
use crate::runtime::CallError;
use crate::store::{FailureRow, now_ms};

/// The record of a call the sandbox stopped (a trap, a limit hit, overload).
pub fn call_failure(error: &CallError) -> FailureRow {
    FailureRow {
        seq: 0,
        export: error.export.into(),
        code: error.kind.code().into(),
        message: error.kind.to_string(),
        log: error.log.text.clone(),
        at_ms: now_ms(),
    }
}

/// The record of an error a connector returned from `export`.
pub fn connector_failure(export: &str, error: &ConnectorError, log: &str) -> FailureRow {
    FailureRow {
        seq: 0,
        export: export.into(),
        code: error.code.as_str().into(),
        message: error.message.clone(),
        log: log.into(),
        at_ms: now_ms(),
    }
}

/// The record of a call whose output the store refused (its kv writes
/// would pass the trigger's quota).
pub fn commit_failure(export: &str, message: String) -> FailureRow {
    FailureRow { seq: 0, export: export.into(), code: "kv-quota".into(), message, log: String::new(), at_ms: now_ms() }
}
