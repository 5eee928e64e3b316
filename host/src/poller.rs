//! The poll scheduler: one task and a heap of due times, not a task per
//! trigger. Each enabled polling trigger is polled at its interval with
//! jitter, at most one poll in flight per trigger, at most
//! `max_concurrent` polls at once; failures back off exponentially; after
//! downtime a trigger gets one catch-up poll, not one per missed tick.
//! Enabling, disabling, patching and deleting reach the scheduler at once
//! through [`Triggers::watch`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::pipeline::{Outcome, Pipeline};
use crate::store::{PollState, Store, TriggerRow, now_ms};
use crate::triggers::Triggers;

/// How the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollerSettings {
    /// Polls running at once, over all triggers.
    pub max_concurrent: usize,
    /// The longest wait after failures.
    pub max_backoff: Duration,
    /// How long a trigger may go without a successful poll before it is
    /// shown as unhealthy.
    pub unhealthy_after: Duration,
}

impl Default for PollerSettings {
    fn default() -> Self {
        PollerSettings {
            max_concurrent: 32,
            max_backoff: Duration::from_secs(3600),
            unhealthy_after: Duration::from_secs(3600),
        }
    }
}

/// How long after another node's lease ends this node claims it.
const LEASE_END_MARGIN: Duration = Duration::from_millis(50);

/// Lateness samples kept at most (the newest).
const LATENESS_SAMPLES: usize = 100_000;

/// What the scheduler shows: when each scheduled trigger polls next (Unix
/// ms, for `/health`) and how late polls started after they were due.
#[derive(Debug, Clone, Default)]
pub struct NextPolls {
    next: Arc<Mutex<HashMap<String, i64>>>,
    lateness: Arc<Mutex<std::collections::VecDeque<Duration>>>,
}

impl NextPolls {
    /// The next poll of `id`, if it is scheduled.
    pub fn get(&self, id: &str) -> Option<i64> {
        self.next.lock().unwrap_or_else(|p| p.into_inner()).get(id).copied()
    }

    /// How late the polls since the last call started, oldest first.
    pub fn take_lateness(&self) -> Vec<Duration> {
        self.lateness.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect()
    }

    fn set(&self, id: &str, at: Instant) {
        let in_ms = i64::try_from(at.saturating_duration_since(Instant::now()).as_millis()).unwrap_or(i64::MAX);
        self.next.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), now_ms().saturating_add(in_ms));
    }

    fn remove(&self, id: &str) {
        self.next.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn late(&self, by: Duration) {
        let mut lateness = self.lateness.lock().unwrap_or_else(|p| p.into_inner());
        if lateness.len() == LATENESS_SAMPLES {
            lateness.pop_front();
        }
        lateness.push_back(by);
    }
}

/// Whether a polling trigger is healthy: one that is not enabled is not
/// failing; an enabled one's last poll did not fail, and it succeeded
/// within `threshold` (or, before its first success, it has not been
/// waiting that long since it last changed).
pub fn is_healthy(row: &TriggerRow, state: &PollState, threshold: Duration, now_ms: i64) -> bool {
    if row.status != crate::triggers::status::ENABLED {
        return true;
    }
    let threshold_ms = i64::try_from(threshold.as_millis()).unwrap_or(i64::MAX);
    let last_good = state.last_success_at_ms.unwrap_or(row.updated_at_ms);
    state.consecutive_failures == 0 && now_ms.saturating_sub(last_good) <= threshold_ms
}

/// One scheduled trigger.
struct Entry {
    interval: Duration,
    /// Bumped when the trigger changes: heap items of older generations
    /// are stale and skipped.
    generation: u64,
    in_flight: bool,
    failures: u32,
}

/// A poll that finished: which trigger, which generation, how it went.
struct Done {
    id: String,
    generation: u64,
    ok: bool,
    /// Another node held the trigger's lease until then (Unix ms): this node
    /// tries again then if that is before its next tick, so a dead node's
    /// trigger is taken over as its lease ends.
    elsewhere_until_ms: Option<i64>,
}

/// Stops the scheduler at shutdown and waits for the polls in flight.
#[derive(Debug, Clone)]
pub struct PollDrain {
    stopping: Arc<AtomicBool>,
    slots: Arc<Semaphore>,
    max_concurrent: u32,
}

impl PollDrain {
    /// Starts no more polls and waits, at most `within`, for those in
    /// flight to commit or fail; returns whether they all finished. A poll
    /// cut off by the timeout commits nothing: its items come again.
    pub async fn drain(&self, within: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        // Every slot free means no poll is running.
        tokio::time::timeout(within, self.slots.acquire_many(self.max_concurrent)).await.is_ok_and(|slots| slots.is_ok())
    }
}

/// Starts the scheduler for every enabled polling trigger, now and later.
pub fn start(triggers: Arc<Triggers>, pipeline: Pipeline, store: Store, settings: PollerSettings) -> (NextPolls, PollDrain) {
    let next = NextPolls::default();
    let changes = triggers.watch();
    let slots = Arc::new(Semaphore::new(settings.max_concurrent));
    let drain = PollDrain {
        stopping: Arc::default(),
        slots: Arc::clone(&slots),
        max_concurrent: u32::try_from(settings.max_concurrent).unwrap_or(u32::MAX),
    };
    let scheduler = Scheduler {
        triggers,
        pipeline,
        store,
        settings,
        next: next.clone(),
        heap: BinaryHeap::new(),
        entries: HashMap::new(),
        slots,
        stopping: Arc::clone(&drain.stopping),
    };
    tokio::spawn(scheduler.run(changes));
    (next, drain)
}

struct Scheduler {
    triggers: Arc<Triggers>,
    pipeline: Pipeline,
    store: Store,
    settings: PollerSettings,
    next: NextPolls,
    heap: BinaryHeap<Reverse<(Instant, u64, String)>>,
    entries: HashMap<String, Entry>,
    slots: Arc<Semaphore>,
    /// Set at shutdown: no poll starts any more.
    stopping: Arc<AtomicBool>,
}

impl Scheduler {
    async fn run(mut self, mut changes: mpsc::UnboundedReceiver<String>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        for live in self.triggers.all_live() {
            self.changed(&live.row.id).await;
        }
        loop {
            let next_due = self.heap.peek().map(|Reverse((at, ..))| *at);
            tokio::select! {
                change = changes.recv() => match change {
                    Some(id) => self.changed(&id).await,
                    None => return,
                },
                Some(done) = done_rx.recv() => self.finished(done),
                () = sleep_until(next_due) => self.start_due(&done_tx),
            }
        }
    }

    /// A trigger went live or dark: (re)schedule or forget it.
    async fn changed(&mut self, id: &str) {
        let live = self.triggers.live(id).filter(|live| live.is_polling());
        let Some(live) = live else {
            self.entries.remove(id);
            self.next.remove(id);
            return;
        };
        let interval = Duration::from_secs(u64::try_from(live.row.poll_interval_s.unwrap_or(60)).unwrap_or(60).max(1));
        let entry = self.entries.entry(id.to_owned()).or_insert(Entry { interval, generation: 0, in_flight: false, failures: 0 });
        entry.interval = interval;
        entry.generation += 1;
        if entry.in_flight {
            // Rescheduled when the poll in flight finishes.
            return;
        }
        // One catch-up poll after downtime: due an interval after the last
        // poll, or now if that is past.
        let last_poll = self.store.poll_state(id).await.ok().and_then(|state| state.last_poll_at_ms);
        let since = last_poll.map(|at| Duration::from_millis(u64::try_from(now_ms().saturating_sub(at)).unwrap_or(0)));
        let wait = since.map_or(Duration::ZERO, |since| interval.saturating_sub(since));
        let generation = entry.generation;
        self.push(id, Instant::now() + wait, generation);
    }

    fn push(&mut self, id: &str, at: Instant, generation: u64) {
        self.next.set(id, at);
        self.heap.push(Reverse((at, generation, id.to_owned())));
    }

    /// Starts every poll that is due.
    fn start_due(&mut self, done: &mpsc::UnboundedSender<Done>) {
        if self.stopping.load(Ordering::SeqCst) {
            self.heap.clear();
            return;
        }
        let now = Instant::now();
        while let Some(Reverse((at, generation, id))) = self.heap.peek().cloned() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(entry) = self.entries.get_mut(&id) else { continue };
            if entry.generation != generation || entry.in_flight {
                continue;
            }
            let Some(live) = self.triggers.live(&id) else { continue };
            entry.in_flight = true;
            let (pipeline, slots, done, next) = (self.pipeline.clone(), Arc::clone(&self.slots), done.clone(), self.next.clone());
            let stopping = Arc::clone(&self.stopping);
            tokio::spawn(async move {
                let (ok, elsewhere_until_ms) = match slots.acquire_owned().await {
                    // Waited for a slot past the start of shutdown: not started.
                    Ok(_slot) if stopping.load(Ordering::SeqCst) => (false, None),
                    Ok(_slot) => {
                        // Late by the scheduler's own delay and the wait for a slot.
                        let late = Instant::now().saturating_duration_since(at);
                        next.late(late);
                        pipeline.poll_started_late(&live.row.plugin, late);
                        match pipeline.poll(&live).await {
                            Outcome::Stored { .. } => (true, None),
                            // Another node's poll is not this node's failure.
                            Outcome::Elsewhere { until_ms } => (true, until_ms),
                            _ => (false, None),
                        }
                    }
                    Err(_) => (false, None),
                };
                let _ = done.send(Done { id, generation, ok, elsewhere_until_ms });
            });
        }
    }

    /// A poll finished: the next one is due an interval later (with
    /// jitter), or later still after failures.
    fn finished(&mut self, done: Done) {
        let Some(entry) = self.entries.get_mut(&done.id) else { return };
        entry.in_flight = false;
        if done.generation == entry.generation {
            entry.failures = if done.ok { 0 } else { entry.failures.saturating_add(1) };
        }
        let wait = if entry.failures == 0 {
            let lease_ends = done.elsewhere_until_ms.map(|until| {
                // A little after the expiry, so the holder's renewal, if it
                // lives, lands first.
                Duration::from_millis(u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0)) + LEASE_END_MARGIN
            });
            let tick = jittered(entry.interval);
            lease_ends.map_or(tick, |ends| ends.min(tick))
        } else {
            let factor = 1u32 << entry.failures.min(16);
            entry.interval.saturating_mul(factor).min(self.settings.max_backoff.max(entry.interval))
        };
        let generation = entry.generation;
        self.push(&done.id, Instant::now() + wait, generation);
    }
}

/// `interval` give or take 10%, so triggers created together spread out.
fn jittered(interval: Duration) -> Duration {
    let spread = interval / 10;
    let random = getrandom::u64().unwrap_or(0);
    let offset = Duration::from_nanos(random % u64::try_from(spread.as_nanos().max(1) * 2).unwrap_or(1));
    (interval - spread) + offset
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
