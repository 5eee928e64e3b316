//! Keeps what connectors write (the `log` import, stdout, stderr) on every
//! call, per trigger, for `GET /api/v1/triggers/{id}/logs`.
//!
//! Bounded three ways, so a chatty or hostile connector cannot bloat the
//! host: each call's text is already capped by its `max_log_bytes`; each
//! trigger keeps at most `per_trigger_per_s` calls' logs a second (the
//! calls skipped are counted on the next one kept) and its newest
//! `keep_per_trigger` in the store; the queue to the writer holds at most
//! `QUEUE` logs, past which logs are dropped and counted. The call path
//! never waits on the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::capabilities::log::LogOutput;
use crate::store::{NewLog, Store, now_ms};
use crate::token_bucket::TokenBucket;

/// Logs waiting for the writer at most.
const QUEUE: usize = 256;
/// Logs written per transaction at most.
const BATCH: usize = 64;
/// Triggers whose rate is tracked at once; past it the idle ones are forgotten.
const TRACKED_TRIGGERS: usize = 10_000;

/// `[logs]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Each trigger's newest calls' logs kept (default 200).
    pub keep_per_trigger: u32,
    /// Calls' logs kept per trigger a second at most, in bursts of twice
    /// that (default 10).
    pub per_trigger_per_s: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { keep_per_trigger: 200, per_trigger_per_s: 10 }
    }
}

/// One call's log and where it came from.
#[derive(Debug)]
pub struct CallRecord<'a> {
    /// The trigger (or source) called.
    pub trigger_id: &'a str,
    /// The version that ran.
    pub plugin_version: &'a str,
    /// `deliver` or `poll`.
    pub export: &'static str,
    /// `accepted`, `rejected`, `responded`, `polled`, or a failure's code.
    pub outcome: &'a str,
    /// What it wrote.
    pub log: &'a LogOutput,
}

/// Per trigger: its rate and the calls skipped since the last kept.
#[derive(Debug)]
struct Allowance {
    bucket: TokenBucket,
    skipped: i64,
}

/// The keeper of connector logs.
#[derive(Debug)]
pub struct CallLogs {
    sender: mpsc::Sender<NewLog>,
    allowances: Mutex<HashMap<String, Allowance>>,
    settings: LogSettings,
    node: String,
    dropped: AtomicU64,
}

impl CallLogs {
    /// Starts the writer; logs go to `store` as this node's.
    pub fn start(store: Store, settings: LogSettings, node: String) -> CallLogs {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, receiver, i64::from(settings.keep_per_trigger)));
        CallLogs { sender, allowances: Mutex::default(), settings, node, dropped: AtomicU64::new(0) }
    }

    /// Keeps a call's log, if it wrote anything and its trigger is within
    /// its rate; never waits.
    pub fn keep(&self, call: CallRecord<'_>) {
        if call.log.text.is_empty() && call.log.dropped_bytes == 0 {
            return;
        }
        let Some(skipped_calls) = self.admit(call.trigger_id) else { return };
        let log = NewLog {
            trigger_id: call.trigger_id.to_owned(),
            at_ms: now_ms(),
            export: call.export,
            outcome: call.outcome.to_owned(),
            plugin_version: call.plugin_version.to_owned(),
            node: self.node.clone(),
            text: call.log.text.clone(),
            dropped_bytes: i64::try_from(call.log.dropped_bytes).unwrap_or(i64::MAX),
            skipped_calls,
        };
        if self.sender.try_send(log).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Logs dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The calls skipped before this one, if this one is within the rate.
    fn admit(&self, trigger_id: &str) -> Option<i64> {
        let mut allowances = self.allowances.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if allowances.len() >= TRACKED_TRIGGERS && !allowances.contains_key(trigger_id) {
            allowances.clear();
        }
        let rate = self.settings.per_trigger_per_s;
        let burst = rate.saturating_mul(2);
        let allowance = allowances
            .entry(trigger_id.to_owned())
            .or_insert_with(|| Allowance { bucket: TokenBucket::holding(f64::from(burst)), skipped: 0 });
        match allowance.bucket.take(rate, burst) {
            Ok(()) => Some(std::mem::take(&mut allowance.skipped)),
            Err(_) => {
                allowance.skipped = allowance.skipped.saturating_add(1);
                None
            }
        }
    }
}

/// Writes queued logs in batches until the keeper is dropped.
async fn write(store: Store, mut receiver: mpsc::Receiver<NewLog>, keep: i64) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(error) = store.append_logs(&batch, keep).await {
            tracing::warn!(%error, logs = batch.len(), "connector logs not kept");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_over_its_rate_has_its_skipped_calls_counted_on_the_next_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, std::time::Duration::from_secs(1)).await.expect("store");
        let logs = CallLogs::start(store, LogSettings { keep_per_trigger: 10, per_trigger_per_s: 1 }, "n".into());
        let admitted: Vec<_> = (0..4).map(|_| logs.admit("trg_a")).collect();
        assert_eq!(admitted, vec![Some(0), Some(0), None, None], "a burst of twice the rate, then nothing");
        assert_eq!(logs.admit("trg_b"), Some(0), "each trigger has its own rate");
    }
}
