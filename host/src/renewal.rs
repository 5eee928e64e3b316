//! The renewal scheduler: renews provider subscriptions that expire (a
//! Gmail watch after about 7 days, a Microsoft Graph subscription after
//! about 3) ahead of their expiry, retries failures with backoff, and
//! enables a trigger again when the provider says its subscription is gone.
//! A sibling of the poll scheduler over the same triggers; what one renewal
//! does is [`Triggers::renew`].
//!
//! Renewal times live in the store, so a restart picks up where the last
//! run left off, and a renewal missed while the host was down is due at once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::store::{RenewalState, Store, TriggerRow, now_ms};
use crate::triggers::{RenewalOutcome, Triggers};

/// How renewals are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalSettings {
    /// How long before expiry a subscription is renewed; at most half its
    /// remaining lifetime, so a subscription that lives an hour is not
    /// renewed in a loop.
    pub margin: Duration,
    /// The wait after a first failure; doubled per failure.
    pub min_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        RenewalSettings {
            margin: Duration::from_secs(3600),
            min_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(900),
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl RenewalSettings {
    /// When to renew a subscription that expires at `expires_at_ms`, seen
    /// at `now_ms`.
    pub fn renew_at(&self, now_ms: i64, expires_at_ms: i64) -> i64 {
        let lifetime = expires_at_ms.saturating_sub(now_ms).max(0);
        expires_at_ms.saturating_sub(millis(self.margin).min(lifetime / 2))
    }

    /// When to try again after the `failures`-th failure in a row.
    pub fn retry_at(&self, now_ms: i64, failures: i64) -> i64 {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let wait = millis(self.min_backoff).saturating_mul(1 << doublings).min(millis(self.max_backoff));
        now_ms.saturating_add(wait)
    }

    /// The margin in milliseconds.
    pub fn margin_ms(&self) -> i64 {
        millis(self.margin)
    }
}

/// Whether a trigger's subscription is in order: not enabled, nothing to
/// renew, or renewed without failure since and not expired.
pub fn is_healthy(row: &TriggerRow, state: &RenewalState, now_ms: i64) -> bool {
    row.status != crate::triggers::status::ENABLED
        || (state.failures == 0 && row.expires_at_ms.is_none_or(|expires| expires > now_ms))
}

/// Renewal outcomes since the host started, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct RenewalCounters {
    renewed: Arc<AtomicU64>,
    reenabled: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl RenewalCounters {
    /// Renewals that succeeded.
    pub fn renewed(&self) -> u64 {
        self.renewed.load(Ordering::Relaxed)
    }

    /// Subscriptions the provider had dropped, registered again.
    pub fn reenabled(&self) -> u64 {
        self.reenabled.load(Ordering::Relaxed)
    }

    /// Renewals that failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn count(&self, outcome: &RenewalOutcome) {
        let counter = match outcome {
            RenewalOutcome::Renewed => &self.renewed,
            RenewalOutcome::Reenabled => &self.reenabled,
            RenewalOutcome::Failed(_) => &self.failed,
            RenewalOutcome::Skipped => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often the store is asked what is due.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Renewals running at once.
const MAX_CONCURRENT: usize = 8;
/// Due triggers taken per check.
const BATCH: i64 = 64;

/// Starts the scheduler; it runs until the runtime stops.
pub fn start(
    triggers: Arc<Triggers>,
    store: Store,
    settings: RenewalSettings,
    cluster: Arc<crate::cluster::Cluster>,
) -> RenewalCounters {
    let counters = RenewalCounters::default();
    let running = counters.clone();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // One node at a time does this: the holder of the `renewals` lease.
            if !cluster.claim("renewals").await {
                continue;
            }
            let due = match store.due_renewals(now_ms(), settings.margin_ms(), BATCH).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "cannot read due renewals");
                    continue;
                }
            };
            for id in due {
                if !in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone()) {
                    continue;
                }
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
                let (triggers, counters, in_flight) = (Arc::clone(&triggers), running.clone(), Arc::clone(&in_flight));
                tokio::spawn(async move {
                    let _slot = slot;
                    match triggers.renew(&id).await {
                        Ok(outcome) => counters.count(&outcome),
                        Err(error) => tracing::warn!(trigger = %id, %error, "renewal not run"),
                    }
                    in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                });
            }
        }
    });
    counters
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn renews_a_margin_ahead_but_never_more_than_half_the_lifetime() {
        let settings = RenewalSettings::default();
        // A week-long watch: an hour before it expires.
        assert_eq!(settings.renew_at(0, 168 * HOUR), 167 * HOUR);
        // An hour-long subscription: half-way, not at once.
        assert_eq!(settings.renew_at(0, HOUR), HOUR / 2);
        // Already expired: now.
        assert_eq!(settings.renew_at(10 * HOUR, 9 * HOUR), 9 * HOUR);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let settings = RenewalSettings::default();
        let waits: Vec<i64> = (1..=8).map(|n| settings.retry_at(0, n) / 1000).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160, 320, 640, 900]);
        assert_eq!(settings.retry_at(0, i64::MAX) / 1000, 900);
    }
}
