//! The retention sweeper: removes events older than the retention period
//! (30 days unless `[retention] max_age_s` or the trigger's own
//! `retention_s` says otherwise) or beyond a trigger's count cap, failure
//! records older than the period, retired dedupe keys whose window ended,
//! and deleted triggers kept for their events once those are gone. It
//! works in batches of `[retention] batch` rows, each its own short
//! transaction taking its turn with the committer, so a delivery waits for
//! one batch at most. What the store does per batch is in `store::retention`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::{Store, StoreError, now_ms};

/// What is kept, and how the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// How long events and failure records are kept.
    pub max_age: Duration,
    /// How many of a trigger's newest events are kept at most; `None`: no cap.
    pub max_events: Option<u64>,
    /// How long after its event was received a dedupe key still makes a
    /// redelivery a duplicate, even once the event itself was removed. At
    /// least `max_age`: a provider that retries for a week past the
    /// retention of a short-lived event is still deduplicated.
    pub dedupe_window: Duration,
    /// How often the sweep runs.
    pub sweep_every: Duration,
    /// Rows per batch.
    pub batch: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        RetentionSettings {
            max_age: Duration::from_secs(30 * DAY),
            max_events: None,
            dedupe_window: Duration::from_secs(37 * DAY),
            sweep_every: Duration::from_secs(60),
            batch: 1000,
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Rows removed since the host started, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct RetentionCounters {
    events: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl RetentionCounters {
    /// Events removed.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Failure records removed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Starts the sweeper; it runs until the runtime stops.
pub fn start(store: Store, settings: RetentionSettings, cluster: std::sync::Arc<crate::cluster::Cluster>) -> RetentionCounters {
    let counters = RetentionCounters::default();
    let running = counters.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(settings.sweep_every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // One node at a time does this: the holder of the `retention` lease.
            if !cluster.claim("retention").await {
                continue;
            }
            if let Err(error) = sweep(&store, &settings, &running).await {
                tracing::warn!(%error, "retention sweep stopped early; the next one goes on");
            }
        }
    });
    counters
}

/// Runs `next` (one batch: rows removed, and whether there may be more)
/// until it says there are no more.
async fn in_batches<F, Fut>(mut next: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u64, bool), StoreError>>,
{
    let mut total = 0;
    loop {
        let (removed, more) = next().await?;
        total += removed;
        if !more {
            return Ok(total);
        }
        // Let deliveries waiting for the database go first.
        tokio::task::yield_now().await;
    }
}

/// One sweep.
pub async fn sweep(store: &Store, settings: &RetentionSettings, counters: &RetentionCounters) -> Result<(), StoreError> {
    let now = now_ms();
    let (batch, window) = (i64::from(settings.batch.max(1)), millis(settings.dedupe_window));
    let remove = |seqs: Vec<i64>| async move {
        let more = seqs.len() as i64 >= batch;
        Ok::<_, StoreError>((store.remove_events(&seqs, now, window).await?, more))
    };
    let cutoff = now.saturating_sub(millis(settings.max_age));
    let mut events = in_batches(|| async { remove(store.events_received_before(None, cutoff, batch).await?).await }).await?;
    let overrides = store.retention_overrides().await?;
    for own in &overrides {
        if let Some(seconds) = own.retention_s {
            let cutoff = now.saturating_sub(seconds.saturating_mul(1000));
            events += in_batches(|| async { remove(store.events_received_before(Some(&own.id), cutoff, batch).await?).await }).await?;
        }
    }
    let capped: Vec<(String, i64)> = match settings.max_events {
        Some(cap) => {
            let cap = i64::try_from(cap).unwrap_or(i64::MAX);
            let own: std::collections::HashMap<&str, Option<i64>> =
                overrides.iter().map(|o| (o.id.as_str(), o.retention_events)).collect();
            store.list_trigger_ids().await?.into_iter().map(|id| {
                let keep = own.get(id.as_str()).copied().flatten().unwrap_or(cap);
                (id, keep)
            }).collect()
        }
        None => overrides.iter().filter_map(|o| Some((o.id.clone(), o.retention_events?))).collect(),
    };
    for (id, keep) in &capped {
        events += in_batches(|| async { remove(store.events_beyond(id, *keep, batch).await?).await }).await?;
    }
    counters.events.fetch_add(events, Ordering::Relaxed);
    let failures = in_batches(|| async {
        let removed = store.remove_failures_before(cutoff, batch).await?;
        Ok((removed, removed as i64 >= batch))
    })
    .await?;
    counters.failures.fetch_add(failures, Ordering::Relaxed);
    in_batches(|| async {
        let removed = store.expire_retired_keys(now, batch).await?;
        Ok((removed, removed as i64 >= batch))
    })
    .await?;
    for id in store.deleted_triggers_without_events().await? {
        store.delete_trigger(&id).await?;
    }
    if events + failures > 0 {
        tracing::info!(events, failures, "retention removed old rows");
    }
    Ok(())
}
