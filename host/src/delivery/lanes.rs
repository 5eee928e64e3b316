//! The dispatcher: one lane (a task) per enabled destination. A lane takes
//! its destination's due jobs from the store, up to its in-flight cap and
//! rate, sends each on the shared worker pool, and sleeps until a commit
//! wakes it, an attempt finishes, or its next job falls due. An ordered
//! lane sends one job at a time, oldest event first, and a failing job
//! holds the ones behind it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use super::metrics::{Counted, DeliveryMetrics};
use super::recorder::{Recorded, Recorder};
use super::schedule::{self, Verdict};
use super::sender::{Endpoint, Sender};
use crate::store::{AttemptRecord, AttemptRow, DueJob, JobOutcome, Store, now_ms};
use crate::token_bucket::TokenBucket;

/// The longest a lane sleeps without being woken: a safety net only.
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// The same on a shared database, where events other nodes commit wake
/// no lane here: how late such an event is pushed at most.
const SHARED_IDLE_RECHECK: Duration = Duration::from_secs(1);
/// The wait after the store failed a lane's read.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Due jobs one read takes at most.
const READ_BATCH: i64 = 256;
/// Payload bytes one read takes at most (past its first job).
const READ_BYTES: usize = 4 << 20;

/// What a lane sends with.
#[derive(Debug, Clone)]
pub struct LaneConfig {
    /// Where, and signed with what.
    pub endpoint: Endpoint,
    /// The trigger whose events it takes.
    pub trigger_id: String,
    /// One at a time, in event order.
    pub ordered: bool,
    /// Attempts in flight at most.
    pub max_in_flight: usize,
    /// Attempts started per second at most.
    pub rate_per_s: Option<u32>,
}

/// How attempts are judged and spread.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Multiplies the retry schedule (tests shrink it).
    pub retry_scale: f64,
}

struct Lane {
    wake: Arc<Notify>,
    config: watch::Sender<Arc<LaneConfig>>,
    /// Tells this lane from an earlier or later one of the same destination.
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

/// What every lane shares.
pub(super) struct Shared {
    pub store: Store,
    pub sender: Sender,
    pub recorder: Recorder,
    pub metrics: Arc<DeliveryMetrics>,
    pub workers: Arc<Semaphore>,
    pub policy: Policy,
    /// Lanes to stop (by destination and lane generation): their
    /// destination was disabled by an attempt, or found gone.
    pub stopped: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
    /// Whose lane runs, when several nodes share the database.
    pub cluster: Arc<crate::cluster::Cluster>,
}

/// The lanes, by destination, and which destinations each trigger feeds.
pub(super) struct Lanes {
    shared: Arc<Shared>,
    lanes: Mutex<HashMap<String, Lane>>,
    by_trigger: Mutex<HashMap<String, HashSet<String>>>,
    /// Stopped lanes still finishing their attempts: a new lane of the same
    /// destination waits for them, so no job is sent by two lanes at once.
    draining: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Lanes {
    pub fn new(shared: Arc<Shared>) -> Self {
        Lanes {
            shared,
            lanes: Mutex::default(),
            by_trigger: Mutex::default(),
            draining: Mutex::default(),
            generations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Starts or updates the lane of a destination, and wakes it.
    pub fn run(&self, config: LaneConfig) {
        let id = config.endpoint.destination_id.clone();
        let trigger = config.trigger_id.clone();
        self.shared.sender.forget(&id);
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        match lanes.get(&id) {
            Some(lane) => {
                lane.config.send_replace(Arc::new(config));
                lane.wake.notify_one();
            }
            None => {
                let (sender, receiver) = watch::channel(Arc::new(config));
                let wake = Arc::new(Notify::new());
                let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let previous = self.draining.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                let lane = LaneRun { shared: Arc::clone(&self.shared), id: id.clone(), generation };
                let woken = Arc::clone(&wake);
                let task = tokio::spawn(async move {
                    if let Some(previous) = previous {
                        let _ = previous.await;
                    }
                    run_lane(lane, receiver, woken).await;
                });
                lanes.insert(id.clone(), Lane { wake, config: sender, generation, task });
            }
        }
        self.by_trigger.lock().unwrap_or_else(|p| p.into_inner()).entry(trigger).or_default().insert(id);
    }

    /// Stops a destination's lane; attempts in flight finish and are recorded.
    pub fn stop(&self, destination_id: &str) {
        self.stop_lane(destination_id, None);
    }

    /// Stops a destination's lane if it is still generation `generation`
    /// (a message from a lane stopped and started again since is stale).
    pub fn stop_generation(&self, destination_id: &str, generation: u64) {
        self.stop_lane(destination_id, Some(generation));
    }

    fn stop_lane(&self, destination_id: &str, generation: Option<u64>) {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if lanes.get(destination_id).is_some_and(|lane| generation.is_some_and(|g| g != lane.generation)) {
            return;
        }
        // Dropping the config sender ends the lane.
        let Some(lane) = lanes.remove(destination_id) else {
            self.shared.sender.forget(destination_id);
            return;
        };
        drop(lanes);
        let trigger = lane.config.borrow().trigger_id.clone();
        self.draining.lock().unwrap_or_else(|p| p.into_inner()).insert(destination_id.to_owned(), lane.task);
        let mut by_trigger = self.by_trigger.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(destinations) = by_trigger.get_mut(&trigger) {
            destinations.remove(destination_id);
            if destinations.is_empty() {
                by_trigger.remove(&trigger);
            }
        }
        drop(by_trigger);
        self.shared.sender.forget(destination_id);
    }

    /// Stops the lanes of every destination of `trigger_id`.
    pub fn stop_trigger(&self, trigger_id: &str) {
        let destinations = self.by_trigger.lock().unwrap_or_else(|p| p.into_inner()).remove(trigger_id).unwrap_or_default();
        for id in destinations {
            self.stop(&id);
        }
    }

    /// Stops the lanes of `trigger_id`'s destinations other than `keep`.
    pub fn stop_trigger_except(&self, trigger_id: &str, keep: &HashSet<&str>) {
        let ids: Vec<String> = self
            .by_trigger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(trigger_id)
            .map(|ids| ids.iter().filter(|id| !keep.contains(id.as_str())).cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.stop(&id);
        }
    }

    /// Wakes the lanes of the destinations `trigger_id` feeds.
    pub fn wake_trigger(&self, trigger_id: &str) {
        let by_trigger = self.by_trigger.lock().unwrap_or_else(|p| p.into_inner());
        let Some(destinations) = by_trigger.get(trigger_id) else { return };
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        for id in destinations {
            if let Some(lane) = lanes.get(id) {
                lane.wake.notify_one();
            }
        }
    }

    /// Wakes one destination's lane.
    pub fn wake(&self, destination_id: &str) {
        if let Some(lane) = self.lanes.lock().unwrap_or_else(|p| p.into_inner()).get(destination_id) {
            lane.wake.notify_one();
        }
    }
}

/// Takes a token for an attempt under a destination's rate (at most
/// `rate` starts a second, in bursts of up to `rate`), or says how long
/// until one is there; no rate, no wait.
fn rate_token(bucket: &mut TokenBucket, rate: Option<u32>) -> Result<(), Duration> {
    match rate.filter(|r| *r > 0) {
        Some(rate) => bucket.take(rate, rate),
        None => Ok(()),
    }
}

/// Who a lane is.
struct LaneRun {
    shared: Arc<Shared>,
    id: String,
    generation: u64,
}

async fn run_lane(lane_run: LaneRun, mut config: watch::Receiver<Arc<LaneConfig>>, wake: Arc<Notify>) {
    let LaneRun { shared, id, generation } = lane_run;
    // Jobs being sent, and jobs sent whose record is not written yet: both
    // are pending in the store and must not be read as due. Each task's
    // job is known by its task id too, so a task that panicked still
    // gives its job back.
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut recording: HashSet<String> = HashSet::new();
    let mut attempts: JoinSet<(String, Recorded)> = JoinSet::new();
    let mut records: JoinSet<String> = JoinSet::new();
    let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
    // Due jobs read and not yet sent: the store is read again only once
    // they are gone, so one read serves many attempts.
    let mut ready: VecDeque<DueJob> = VecDeque::new();
    let mut next_due: Option<i64> = None;
    let mut rate = TokenBucket::holding(1.0);
    // One node delivers a destination's jobs at a time: the holder of its lease.
    let lease = format!("deliver:{id}");
    let idle = if shared.cluster.is_shared() { SHARED_IDLE_RECHECK } else { IDLE_RECHECK };
    loop {
        let lane = Arc::clone(&config.borrow_and_update());
        let cap = if lane.ordered { 1 } else { lane.max_in_flight.max(1) };
        let mut wait = idle;
        if ready.is_empty() && in_flight.len() < cap && !shared.cluster.claim(&lease).await {
            // Another node delivers; this lane looks again in a while.
            wait = shared.cluster.settings().lease / 3;
        } else if ready.is_empty() && in_flight.len() < cap {
            // Only what this read says is due later counts.
            next_due = None;
            let now = now_ms();
            match read_due(&shared.store, &id, &lane, now, &in_flight, &recording).await {
                Ok((jobs, due)) => {
                    ready.extend(jobs);
                    next_due = due;
                }
                Err(error) => {
                    tracing::warn!(destination = %id, %error, "cannot read due deliveries");
                    wait = STORE_RETRY;
                }
            }
        }
        while in_flight.len() < cap && !ready.is_empty() {
            if let Err(until_token) = rate_token(&mut rate, lane.rate_per_s) {
                wait = wait.min(until_token);
                break;
            }
            let Some(job) = ready.pop_front() else { break };
            in_flight.insert(job.id.clone());
            let job_id = job.id.clone();
            let task = attempts.spawn(attempt(Arc::clone(&shared), Arc::clone(&lane), job));
            tasks.insert(task.id(), job_id);
        }
        if let Some(at) = next_due {
            wait = wait.min(Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0)));
        }
        tokio::select! {
            Some(done) = attempts.join_next_with_id(), if !attempts.is_empty() => {
                for done in std::iter::once(done).chain(std::iter::from_fn(|| attempts.try_join_next_with_id())) {
                    let (task, sent) = match done {
                        Ok((task, sent)) => (task, Some(sent)),
                        Err(error) => (error.id(), None),
                    };
                    let Some(job_id) = tasks.remove(&task) else { continue };
                    in_flight.remove(&job_id);
                    if let Some((_, record)) = sent {
                        recording.insert(job_id.clone());
                        let task = records.spawn(recorded(Arc::clone(&shared), (id.clone(), generation), job_id.clone(), record));
                        tasks.insert(task.id(), job_id);
                    }
                }
            }
            Some(done) = records.join_next_with_id(), if !records.is_empty() => {
                for done in std::iter::once(done).chain(std::iter::from_fn(|| records.try_join_next_with_id())) {
                    let task = done.map_or_else(|error| error.id(), |(task, _)| task);
                    if let Some(job_id) = tasks.remove(&task) {
                        recording.remove(&job_id);
                    }
                }
            }
            _ = wake.notified() => {}
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep(wait) => {
                // Idle for long: a destination deleted with its trigger
                // (which the API or retention did) ends its lane.
                if wait == idle
                    && attempts.is_empty()
                    && records.is_empty()
                    && matches!(shared.store.get_destination(&id).await, Err(crate::store::StoreError::NotFound))
                {
                    let _ = shared.stopped.send((id.clone(), generation));
                    break;
                }
            }
        }
    }
    // Stopped: what is in flight finishes and is recorded.
    while let Some(done) = attempts.join_next().await {
        if let Ok((job_id, record)) = done {
            records.spawn(recorded(Arc::clone(&shared), (id.clone(), generation), job_id, record));
        }
    }
    while records.join_next().await.is_some() {}
    shared.cluster.release(&lease).await;
}

/// Due jobs not in flight, and when the next one not yet due falls due
/// (none when the read was cut short: more are due now).
async fn read_due(
    store: &Store,
    id: &str,
    lane: &LaneConfig,
    now: i64,
    in_flight: &HashSet<String>,
    recording: &HashSet<String>,
) -> Result<(Vec<DueJob>, Option<i64>), crate::store::StoreError> {
    if lane.ordered {
        return Ok(match store.first_pending_delivery(id).await? {
            Some(job) if in_flight.contains(&job.id) || recording.contains(&job.id) => (Vec::new(), None),
            Some(job) if job.next_attempt_at_ms <= now => (vec![job], None),
            Some(job) => (Vec::new(), Some(job.next_attempt_at_ms)),
            None => (Vec::new(), None),
        });
    }
    let skip: Vec<&str> = in_flight.iter().chain(recording).map(String::as_str).collect();
    let jobs = store.due_deliveries(id, now, &skip, READ_BATCH, READ_BYTES).await?;
    let next_due = match jobs.is_empty() {
        true => store.next_delivery_due(id, now).await?,
        false => None,
    };
    Ok((jobs, next_due))
}

/// One attempt, judged and counted; returns the job's id and its record,
/// submitted (until the record is written the lane must not send the job
/// again).
async fn attempt(shared: Arc<Shared>, lane: Arc<LaneConfig>, job: DueJob) -> (String, Recorded) {
    let worker = Arc::clone(&shared.workers).acquire_owned().await;
    let started_at_ms = now_ms();
    let clock = Instant::now();
    let answer = shared.sender.send(&lane.endpoint, &job, started_at_ms).await;
    let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    drop(worker);
    let finished = started_at_ms.saturating_add(duration_ms);
    let verdict = match answer.status {
        Some(status) => schedule::verdict(status, answer.retry_after.as_deref()),
        None => Verdict::Failed { retry_after: None },
    };
    let attempts = u32::try_from(job.attempts.saturating_add(1)).unwrap_or(u32::MAX);
    let (outcome, disable) = match verdict {
        Verdict::Delivered => (JobOutcome::Delivered, None),
        Verdict::Gone => (JobOutcome::Dead, Some("the receiver answered 410 Gone".to_owned())),
        Verdict::Failed { retry_after } => match schedule::next_wait(attempts, shared.policy.retry_scale, retry_after) {
            Some(wait) => (JobOutcome::RetryAt(finished.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))), None),
            None => (JobOutcome::Dead, None),
        },
    };
    let counted = match outcome {
        JobOutcome::Delivered => Counted::Delivered { latency_ms: finished.saturating_sub(job.received_at_ms) },
        JobOutcome::RetryAt(_) => Counted::Failed,
        JobOutcome::Dead => Counted::Dead,
    };
    shared.metrics.count(&lane.endpoint.destination_id, &lane.trigger_id, counted);
    let error = answer.error.or_else(|| {
        (outcome != JobOutcome::Delivered).then(|| format!("the receiver answered {}", answer.status.unwrap_or_default()))
    });
    let record = AttemptRecord {
        delivery_id: job.id.clone(),
        destination_id: lane.endpoint.destination_id.clone(),
        attempt: AttemptRow {
            started_at_ms,
            duration_ms,
            status_code: answer.status.map(i64::from),
            error,
            response_excerpt: answer.excerpt,
        },
        outcome,
        disable,
    };
    (job.id, shared.recorder.submit(record).await)
}

/// Waits for an attempt's record; returns the job's id once it is written.
async fn recorded(shared: Arc<Shared>, lane: (String, u64), job_id: String, recorded: Recorded) -> String {
    match recorded.written().await {
        Ok(true) => {
            let _ = shared.stopped.send(lane);
        }
        Ok(false) => {}
        Err(error) => {
            // The job is still pending in the store and will be sent again:
            // not at once, while the store is failing.
            tracing::warn!(delivery = %job_id, %error, "attempt not recorded");
            tokio::time::sleep(STORE_RETRY).await;
        }
    }
    job_id
}
