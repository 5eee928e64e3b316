//! Push delivery in `/metrics`: per destination, attempts, successes,
//! failures, dead letters, the latency from receipt to delivery, and the
//! queue depth (read from the store at scrape time).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the latency histogram, milliseconds.
const LATENCY_BUCKETS_MS: [i64; 14] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000];

#[derive(Debug, Clone, Default)]
struct Counters {
    trigger_id: String,
    attempts: u64,
    delivered: u64,
    failed: u64,
    dead: u64,
    /// Per bucket of [`LATENCY_BUCKETS_MS`], then the overflow.
    latency: [u64; LATENCY_BUCKETS_MS.len() + 1],
    latency_sum_ms: i64,
}

/// A counter series: its name, help and reading.
type Series = (&'static str, &'static str, fn(&Counters) -> u64);

/// Counters since the host started, per destination.
#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    destinations: Mutex<HashMap<String, Counters>>,
}

/// What one attempt came to, for the counters.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    /// Delivered, this long after the event was received.
    Delivered {
        /// Milliseconds from receipt to the receiver's 2xx.
        latency_ms: i64,
    },
    /// Failed, to be retried.
    Failed,
    /// Failed and dead-lettered.
    Dead,
}

impl DeliveryMetrics {
    /// Counts an attempt to `destination_id` of `trigger_id`.
    pub fn count(&self, destination_id: &str, trigger_id: &str, counted: Counted) {
        let mut all = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        let counters = all.entry(destination_id.to_owned()).or_insert_with(|| Counters { trigger_id: trigger_id.to_owned(), ..Counters::default() });
        counters.attempts += 1;
        match counted {
            Counted::Delivered { latency_ms } => {
                counters.delivered += 1;
                let bucket = LATENCY_BUCKETS_MS.iter().position(|&bound| latency_ms <= bound).unwrap_or(LATENCY_BUCKETS_MS.len());
                counters.latency[bucket] += 1;
                counters.latency_sum_ms = counters.latency_sum_ms.saturating_add(latency_ms.max(0));
            }
            Counted::Failed => counters.failed += 1,
            Counted::Dead => {
                counters.failed += 1;
                counters.dead += 1;
            }
        }
    }

    /// Forgets a deleted destination's counters.
    pub fn forget(&self, destination_id: &str) {
        self.destinations.lock().unwrap_or_else(|p| p.into_inner()).remove(destination_id);
    }

    /// Appends the series to `text`; `pending` is the queue depth per
    /// destination and `triggers` each destination's trigger.
    pub fn render(&self, text: &mut String, pending: &HashMap<String, i64>, triggers: &HashMap<String, String>) {
        let all = self.destinations.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let labels = |id: &str, trigger: &str| format!("destination=\"{id}\",trigger=\"{trigger}\"");
        let _ = writeln!(text, "# HELP triggerhost_delivery_queue_depth Delivery jobs waiting or in flight");
        let _ = writeln!(text, "# TYPE triggerhost_delivery_queue_depth gauge");
        for (id, trigger) in triggers {
            let _ = writeln!(text, "triggerhost_delivery_queue_depth{{{}}} {}", labels(id, trigger), pending.get(id).copied().unwrap_or(0));
        }
        let series: [Series; 4] = [
            ("attempts", "Delivery attempts", |c| c.attempts),
            ("delivered", "Events delivered", |c| c.delivered),
            ("failures", "Delivery attempts that failed", |c| c.failed),
            ("dead_letters", "Delivery jobs dead-lettered after an attempt", |c| c.dead),
        ];
        for (name, help, value) in series {
            let _ = writeln!(text, "# HELP triggerhost_delivery_{name}_total {help}\n# TYPE triggerhost_delivery_{name}_total counter");
            for (id, counters) in &all {
                let _ = writeln!(text, "triggerhost_delivery_{name}_total{{{}}} {}", labels(id, &counters.trigger_id), value(counters));
            }
        }
        let name = "triggerhost_delivery_latency_ms";
        let _ = writeln!(text, "# HELP {name} From the event's receipt to the receiver's 2xx\n# TYPE {name} histogram");
        for (id, counters) in &all {
            let buckets = LATENCY_BUCKETS_MS.iter().zip(counters.latency.iter().copied());
            let labels = labels(id, &counters.trigger_id);
            crate::metrics::write_histogram(text, name, &labels, buckets, counters.latency_sum_ms, counters.delivered);
        }
    }
}
