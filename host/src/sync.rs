//! The sync scheduler: checks every registration at the provider (each
//! enabled webhook trigger's own, and each source's) about once per
//! `[sync] interval_s`, jittered so registrations made together are not
//! checked together, and enables again the triggers whose registration
//! failed, when their retry is due. What one sync does is
//! [`Triggers::sync`]; an operator runs one now with
//! `POST /api/v1/triggers/{id}/sync`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::{Store, now_ms};
use crate::triggers::{SyncOutcome, Triggers};

/// How often registrations are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSettings {
    /// The mean time between two checks of one registration.
    pub interval: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings { interval: Duration::from_secs(3600) }
    }
}

impl SyncSettings {
    /// The wait before a registration's next check: the interval, give or
    /// take a tenth, at random.
    fn next_wait(&self) -> Duration {
        let spread = getrandom::u32().unwrap_or(u32::MAX / 2);
        self.interval.mul_f64(0.9 + 0.2 * f64::from(spread) / f64::from(u32::MAX))
    }
}

/// How often the scheduler looks for due registrations.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Starts the scheduler; it runs until the runtime stops. Checks run one
/// at a time: they are rare, and each is a call to the provider.
pub fn start(triggers: Arc<Triggers>, store: Store, settings: SyncSettings, cluster: Arc<crate::cluster::Cluster>) {
    tokio::spawn(async move {
        let mut due: HashMap<String, Instant> = HashMap::new();
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // One node at a time does this: the holder of the `sync` lease.
            if !cluster.claim("sync").await {
                continue;
            }
            retry_failed_enables(&triggers, &store).await;
            let now = Instant::now();
            let registrations: Vec<String> = triggers
                .all_live()
                .into_iter()
                .filter(|live| !live.is_polling() && live.row.source_id.is_none())
                .map(|live| live.row.id.clone())
                .collect();
            let current: std::collections::HashSet<&String> = registrations.iter().collect();
            due.retain(|id, _| current.contains(id));
            for id in registrations {
                let at = *due.entry(id.clone()).or_insert_with(|| now + settings.next_wait());
                if at > now {
                    continue;
                }
                match triggers.sync(&id).await {
                    Ok(SyncOutcome::Failed(message)) => tracing::warn!(registration = %id, %message, "sync failed"),
                    Ok(outcome) => tracing::debug!(registration = %id, ?outcome, "synced"),
                    Err(error) => tracing::warn!(registration = %id, %error, "sync not run"),
                }
                due.insert(id, Instant::now() + settings.next_wait());
            }
        }
    });
}

/// Triggers whose registration failed, enabled again as their backoff
/// allows.
async fn retry_failed_enables(triggers: &Triggers, store: &Store) {
    let due = match store.due_enable_retries(now_ms(), 16).await {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!(%error, "cannot read due enable retries");
            return;
        }
    };
    for id in due {
        match triggers.retry_enable(&id).await {
            Ok(Some(row)) if row.status == crate::triggers::status::ERROR => {
                tracing::warn!(trigger = %id, failures = row.retry_failures, error = ?row.last_error, "enabling failed again");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(trigger = %id, %error, "enable retry not run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_jittered_within_a_tenth_of_the_interval() {
        let settings = SyncSettings { interval: Duration::from_secs(100) };
        let waits: Vec<Duration> = (0..200).map(|_| settings.next_wait()).collect();
        assert!(waits.iter().all(|w| (Duration::from_secs(90)..=Duration::from_secs(110)).contains(w)), "{waits:?}");
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "not jittered: {} distinct of 200", distinct.len());
    }
}
