//! What one call may use: which trigger it serves, the plugin's effective
//! grant and the limits. The host imports read a call's capabilities, and
//! those are built from this, per call: nothing is granted by default.

use std::sync::Arc;

use super::limits::Limits;
use crate::capabilities::grant::Grant;

/// The scope of one call.
#[derive(Debug, Clone)]
pub struct CallScope {
    /// The trigger the call serves; its key-value entries are the only ones
    /// the call can reach.
    pub trigger_id: String,
    /// The plugin's request, narrowed to what the operator allows.
    pub grant: Arc<Grant>,
    /// The call's limits, capability quotas included.
    pub limits: Limits,
}

impl CallScope {
    /// A call of `trigger_id` under `grant` and `limits`.
    pub fn new(trigger_id: impl Into<String>, grant: Arc<Grant>, limits: Limits) -> Self {
        CallScope { trigger_id: trigger_id.into(), grant, limits }
    }

    /// A call with nothing granted (such as `describe`).
    pub fn ungranted(trigger_id: impl Into<String>, limits: Limits) -> Self {
        CallScope::new(trigger_id, Arc::new(Grant::default()), limits)
    }
}

/// Limits alone: a call with nothing granted, for no trigger in particular.
impl From<Limits> for CallScope {
    fn from(limits: Limits) -> Self {
        CallScope::ungranted("", limits)
    }
}

impl From<&Limits> for CallScope {
    fn from(limits: &Limits) -> Self {
        CallScope::ungranted("", limits.clone())
    }
}

impl From<&CallScope> for CallScope {
    fn from(scope: &CallScope) -> Self {
        scope.clone()
    }
}
