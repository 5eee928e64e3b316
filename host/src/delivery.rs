//! Push delivery: every event a trigger stores is POSTed to its
//! destinations, signed with Standard Webhooks headers, retried on Svix's
//! schedule, then dead-lettered; attempts are kept and jobs can be replayed.
//!
//! The job for each (event, destination) is written in the transaction that
//! stores the event (`store::deliveries`, the outbox), so an event stored is
//! an event that will be delivered across crashes. A job is marked done
//! only after its receiver answered: a crash in between sends it again,
//! with the same `webhook-id` (the event id).
//!
//! - [`destinations`]: what an operator configures, checked.
//! - `lanes`: one task per enabled destination, on a shared worker pool.
//! - `sender`: the signed request over a checked, kept-alive connection.
//! - `recorder`: attempts recorded in groups.
//! - [`schedule`], [`signing`], [`metrics`].

pub mod destinations;
mod lanes;
pub mod metrics;
mod recorder;
pub mod schedule;
mod sender;
pub mod signing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

pub use destinations::{DestinationPatch, DestinationView, NewDestination};
use lanes::{LaneConfig, Lanes, Policy, Shared};
use metrics::DeliveryMetrics;
use recorder::Recorder;
use sender::{Endpoint, Sender};

use crate::capabilities::http::Outbound;
use crate::secrets::{SecretBox, SecretError};
use crate::store::{DestinationRow, ReplayScope, Store, StoreError, now_ms};

/// `[delivery]` settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliverySettings {
    /// Destinations may be private addresses (and plain `http`).
    pub allow_private: bool,
    /// Multiplies the retry schedule.
    pub retry_scale: f64,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Attempts in flight over all destinations.
    pub workers: usize,
    /// Attempts in flight per destination unless it sets its own.
    pub max_in_flight: usize,
    /// A destination whose every attempt failed this long is disabled.
    pub disable_after: Duration,
    /// How long a rotated-out secret still signs.
    pub rotation_grace: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            allow_private: false,
            retry_scale: 1.0,
            timeout: Duration::from_secs(15),
            workers: 64,
            max_in_flight: 16,
            disable_after: Duration::from_secs(5 * 86_400),
            rotation_grace: Duration::from_secs(86_400),
        }
    }
}

/// Events one replay call queues at most; `more` in its answer says to
/// call again (events already queued are skipped while pending).
pub const REPLAY_BATCH: i64 = 10_000;

/// Why a destination request failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A bad URL, secret, filter or limit.
    #[error("{0}")]
    Invalid(String),
    /// Not possible in the destination's or job's present state.
    #[error("{0}")]
    Conflict(String),
    /// The host cannot do it (no randomness); the message is for logs.
    #[error("{0}")]
    Internal(String),
    /// No such trigger, destination or job.
    #[error("{0}")]
    NotFound(String),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret cannot be sealed or opened.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// Destinations and their lanes.
pub struct Delivery {
    store: Store,
    secrets: SecretBox,
    settings: DeliverySettings,
    lanes: Arc<Lanes>,
    metrics: Arc<DeliveryMetrics>,
    /// Each destination's `updated_at_ms` when its lane was last set up:
    /// a reconcile sets up again only what changed since.
    followed: std::sync::Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Delivery {
    /// Starts a lane for every enabled destination; pending jobs left by a
    /// crash are among their due jobs.
    pub async fn start(
        store: Store,
        secrets: SecretBox,
        outbound: Arc<Outbound>,
        settings: DeliverySettings,
        cluster: Arc<crate::cluster::Cluster>,
    ) -> Result<Arc<Delivery>, DeliveryError> {
        let (stopped, mut stopped_lanes) = tokio::sync::mpsc::unbounded_channel();
        let disable_after_ms = i64::try_from(settings.disable_after.as_millis()).unwrap_or(i64::MAX);
        let metrics = Arc::new(DeliveryMetrics::default());
        let shared = Arc::new(Shared {
            store: store.clone(),
            sender: Sender::new(outbound, settings.allow_private, settings.timeout),
            recorder: Recorder::start(store.clone(), disable_after_ms),
            metrics: Arc::clone(&metrics),
            workers: Arc::new(Semaphore::new(settings.workers.max(1))),
            policy: Policy { retry_scale: settings.retry_scale },
            stopped,
            cluster,
        });
        let delivery = Arc::new(Delivery {
            store,
            secrets,
            settings,
            lanes: Arc::new(Lanes::new(shared)),
            metrics,
            followed: std::sync::Mutex::default(),
        });
        for row in delivery.store.all_destinations().await? {
            delivery.follow_or_disable(&row).await?;
        }
        let lanes = Arc::clone(&delivery.lanes);
        tokio::spawn(async move {
            while let Some((id, generation)) = stopped_lanes.recv().await {
                tracing::info!(destination = %id, "destination stopped (disabled or deleted)");
                lanes.stop_generation(&id, generation);
            }
        });
        Ok(delivery)
    }

    /// Events of `trigger_id` were stored: its destinations' lanes look.
    pub fn events_committed(&self, trigger_id: &str) {
        self.lanes.wake_trigger(trigger_id);
    }

    /// A trigger was deleted: its destinations' lanes stop.
    pub fn trigger_deleted(&self, trigger_id: &str) {
        self.lanes.stop_trigger(trigger_id);
    }

    /// Another node changed `trigger_id`'s destinations: its lanes here
    /// follow the database.
    pub async fn reload(&self, trigger_id: &str) -> Result<(), StoreError> {
        let rows = self.store.list_destinations(trigger_id).await?;
        self.lanes.stop_trigger_except(trigger_id, &rows.iter().map(|row| row.id.as_str()).collect());
        for row in &rows {
            self.follow_or_disable(row).await?;
        }
        Ok(())
    }

    /// Sets up again every destination changed since it was last followed,
    /// and stops the lanes of those gone (announcements missed).
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        let rows = self.store.all_destinations().await?;
        let present: std::collections::HashSet<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        let gone: Vec<String> = {
            let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
            let gone = followed.keys().filter(|id| !present.contains(id.as_str())).cloned().collect();
            followed.retain(|id, _| present.contains(id.as_str()));
            gone
        };
        for id in gone {
            self.lanes.stop(&id);
        }
        for row in &rows {
            let seen = self.followed.lock().unwrap_or_else(|p| p.into_inner()).get(&row.id).copied();
            if seen != Some(row.updated_at_ms) {
                self.follow_or_disable(row).await?;
            }
        }
        Ok(())
    }

    /// Follows `row`. A destination that cannot run (its address no longer
    /// allowed, its secret sealed under another key) must not stop the host:
    /// it is disabled, saying why, its jobs kept as dead letters.
    async fn follow_or_disable(&self, row: &DestinationRow) -> Result<(), StoreError> {
        if let Err(error) = self.follow(row) {
            tracing::warn!(destination = %row.id, %error, "destination cannot run; disabled");
            self.store.disable_destination(&row.id, &format!("cannot run: {error}")).await?;
        }
        Ok(())
    }

    /// The counters, for `/metrics`.
    pub fn metrics(&self) -> &DeliveryMetrics {
        &self.metrics
    }

    /// Runs, updates or stops the lane of `row` to match its status.
    fn follow(&self, row: &DestinationRow) -> Result<(), DeliveryError> {
        self.followed.lock().unwrap_or_else(|p| p.into_inner()).insert(row.id.clone(), row.updated_at_ms);
        if row.status != destinations::status::ENABLED {
            self.lanes.stop(&row.id);
            return Ok(());
        }
        let target = destinations::check_url(&row.url, self.settings.allow_private)?;
        let mut keys = vec![(self.open_key(&row.id, &row.secret)?, None)];
        if let (Some(previous), Some(until)) = (&row.previous_secret, row.previous_secret_until_ms)
            && until > now_ms()
        {
            keys.push((self.open_key(&row.id, previous)?, Some(until)));
        }
        let limit = |value: Option<i64>| value.and_then(|v| usize::try_from(v).ok());
        self.lanes.run(LaneConfig {
            endpoint: Endpoint { destination_id: row.id.clone(), target, keys },
            trigger_id: row.trigger_id.clone(),
            ordered: row.ordered,
            max_in_flight: limit(row.max_in_flight).unwrap_or(self.settings.max_in_flight),
            rate_per_s: row.rate_per_s.and_then(|r| u32::try_from(r).ok()),
        });
        Ok(())
    }

    fn open_key(&self, id: &str, sealed: &str) -> Result<Vec<u8>, DeliveryError> {
        let secret = self.secrets.open(sealed, &destinations::secret_field(id))?;
        signing::key_of(secret.expose()).map_err(|e| DeliveryError::Invalid(e.to_string()))
    }

    /// Queues the events of `scope` again (a replay: at most
    /// [`REPLAY_BATCH`] per call, so one call is one bounded transaction),
    /// or the dead-lettered jobs of a trigger (`dead_letters`), and wakes
    /// the trigger's lanes. Returns how many jobs were queued.
    pub async fn replay(&self, scope: &ReplayScope, dead_letters: bool) -> Result<u64, DeliveryError> {
        self.store.get_trigger(&scope.trigger_id).await.map_err(|e| not_found(e, "trigger", &scope.trigger_id))?;
        if let Some(id) = &scope.destination_id {
            self.destination(&scope.trigger_id, id).await?;
        }
        let queued = if dead_letters {
            self.store.retry_dead(&scope.trigger_id, None, scope.destination_id.as_deref()).await?
        } else {
            self.store.replay(scope, REPLAY_BATCH).await?
        };
        self.lanes.wake_trigger(&scope.trigger_id);
        Ok(queued)
    }

    /// Queues one dead-lettered job again.
    pub async fn retry(&self, delivery_id: &str) -> Result<(), DeliveryError> {
        let job = self.store.get_delivery(delivery_id).await.map_err(|e| not_found(e, "delivery", delivery_id))?;
        if job.status != crate::store::job_status::DEAD {
            return Err(DeliveryError::Conflict(format!("delivery {delivery_id} is {}, not dead-lettered", job.status)));
        }
        if self.store.retry_dead(&job.trigger_id, Some(delivery_id), None).await? == 0 {
            return Err(DeliveryError::Conflict(format!("destination {} is disabled: resume it first", job.destination_id)));
        }
        self.lanes.wake(&job.destination_id);
        Ok(())
    }

    /// A destination was deleted: its counters go too.
    fn forget(&self, id: &str) {
        self.lanes.stop(id);
        self.metrics.forget(id);
    }

    /// Pending jobs and the trigger of every destination, for `/metrics`.
    pub async fn queue_depths(&self) -> Result<(HashMap<String, i64>, HashMap<String, String>), StoreError> {
        let pending = self.store.pending_counts().await?;
        let triggers = self.store.all_destinations().await?.into_iter().map(|row| (row.id, row.trigger_id)).collect();
        Ok((pending, triggers))
    }
}

/// A store's not-found as a named not-found.
pub(crate) fn not_found(error: StoreError, what: &str, id: &str) -> DeliveryError {
    match error {
        StoreError::NotFound => DeliveryError::NotFound(format!("no {what} {id}")),
        other => DeliveryError::Store(other),
    }
}
