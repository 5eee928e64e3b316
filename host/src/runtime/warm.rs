//! Warm instances, for plugins the operator granted reuse: the instance a
//! trigger's last call ran in, kept for the trigger's next call, so a
//! connector with an interpreter inside does not start it on every call.
//!
//! An instance serves one trigger only and one call at a time (a call takes
//! it out and puts it back when it succeeds), for at most the granted
//! number of calls and seconds; a call that traps or hits a limit drops it.
//! The pool is sized for the warm instances the runtime may hold besides
//! the calls running, so idle warm instances never take a call's slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::state::HostState;
use crate::bindings::Connector;
use crate::capabilities::grant::Reuse;

/// An instance between two calls of its trigger.
pub(crate) struct Warm {
    pub(crate) store: Store<HostState>,
    pub(crate) instance: Connector,
    /// Calls it has served.
    pub(crate) calls: u32,
    /// When it was instantiated.
    pub(crate) born: Instant,
}

impl Warm {
    /// Whether it may serve another call under `reuse`.
    fn may_serve(&self, reuse: Reuse) -> bool {
        self.calls < reuse.max_calls && self.born.elapsed() < Duration::from_secs(u64::from(reuse.max_age_s))
    }
}

/// How many warm instances the whole runtime holds, against how many the
/// pool has room for.
#[derive(Debug)]
pub(crate) struct WarmBudget {
    held: AtomicUsize,
    max: usize,
}

impl WarmBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(WarmBudget { held: AtomicUsize::new(0), max })
    }

    fn try_hold(&self) -> bool {
        self.held.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| (held < self.max).then_some(held + 1)).is_ok()
    }

    fn release(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::SeqCst);
    }

    /// Warm instances held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

/// One plugin's warm instances, one per trigger at most.
pub(crate) struct WarmInstances {
    by_trigger: Mutex<HashMap<String, Warm>>,
    budget: Arc<WarmBudget>,
}

impl WarmInstances {
    pub(crate) fn new(budget: Arc<WarmBudget>) -> Self {
        WarmInstances { by_trigger: Mutex::default(), budget }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Warm>> {
        self.by_trigger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The trigger's warm instance, if it may serve another call; the
    /// caller has it alone until it puts it back.
    pub(crate) fn take(&self, trigger: &str, reuse: Reuse) -> Option<Warm> {
        let warm = self.lock().remove(trigger)?;
        self.budget.release(1);
        warm.may_serve(reuse).then_some(warm)
    }

    /// Keeps `warm` for the trigger's next call, unless it has served its
    /// calls or time, the trigger already has one, or the budget is spent.
    /// Instances past their time are dropped on the way.
    pub(crate) fn put(&self, trigger: &str, warm: Warm, reuse: Reuse) {
        if !warm.may_serve(reuse) {
            return;
        }
        let mut by_trigger = self.lock();
        let before = by_trigger.len();
        by_trigger.retain(|_, kept| kept.may_serve(reuse));
        self.budget.release(before - by_trigger.len());
        if by_trigger.contains_key(trigger) || !self.budget.try_hold() {
            return;
        }
        by_trigger.insert(trigger.to_owned(), warm);
    }
}

impl WarmInstances {
    /// Drops every warm instance: reuse is no longer granted.
    pub(crate) fn clear(&self) {
        // Called on every call of a plugin without reuse: when no plugin
        // keeps any instance, not even the lock is taken.
        if self.budget.held() == 0 {
            return;
        }
        let mut by_trigger = self.lock();
        if !by_trigger.is_empty() {
            self.budget.release(by_trigger.len());
            by_trigger.clear();
        }
    }
}

impl Drop for WarmInstances {
    fn drop(&mut self) {
        let held = self.lock().len();
        self.budget.release(held);
    }
}
