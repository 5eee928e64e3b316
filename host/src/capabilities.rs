//! Host capabilities a connector may import, one module each: its per-call
//! state, built from the plugin's effective [`grant::Grant`], and the small
//! trait its backend sits behind (the store for `kv`, the resolver for
//! outbound HTTP), so nothing here knows the database.
//!
//! A capability that is not granted is denied on every call, without
//! touching its backend; every denial is a typed error for the guest and a
//! line in the call's log for the operator.

pub mod grant;
pub mod http;
pub mod kv;
pub mod log;

use std::sync::Arc;

use self::http::{Outbound, OutboundHttp};
use self::kv::{KvBackend, TriggerKv};
use self::log::CallLog;

/// What every call's capabilities are served by, process-wide. `None`
/// means the capability cannot be granted at all in this process.
#[derive(Clone, Default)]
pub struct Backends {
    /// Where key-value entries live.
    pub kv: Option<Arc<dyn KvBackend>>,
    /// The resolver and TLS settings of outbound HTTP.
    pub outbound: Option<Arc<Outbound>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").field("kv", &self.kv.is_some()).field("outbound", &self.outbound.is_some()).finish()
    }
}

/// The capabilities of one call, as the host imports see them.
#[derive(Debug)]
pub struct CallCapabilities {
    /// The call's bounded log.
    pub log: CallLog,
    /// The trigger's key-value entries, if granted.
    pub kv: TriggerKv,
    /// Outbound HTTP to the granted origins, if any.
    pub http: OutboundHttp,
}

impl CallCapabilities {
    /// Notes a failed capability call in the log, where the operator sees
    /// it with the call's record, and passes the result on.
    pub(crate) fn noted<T, E: std::fmt::Display>(&self, capability: &str, result: Result<T, E>) -> Result<T, E> {
        if let Err(error) = &result {
            self.log.host_note(&format!("{capability}: {error}"));
        }
        result
    }
}
