//! Attempts finished together are recorded in one transaction, as events
//! are committed in groups: SQLite takes one writer at a time, and a
//! transaction per attempt would compete with ingest for it. A lane does
//! not send a job again until its record is written, but its next jobs go
//! out meanwhile.

use tokio::sync::{mpsc, oneshot};

use crate::store::{AttemptRecord, Store, StoreError};

/// Records per transaction at most.
const MAX_BATCH: usize = 256;
/// Records waiting at most; past it, attempts wait to be recorded.
const QUEUE: usize = 4096;
/// How long a first record waits for others to share its transaction.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

type Reply = oneshot::Sender<Result<bool, StoreError>>;

/// A handle on the recorder task.
#[derive(Debug, Clone)]
pub struct Recorder {
    records: mpsc::Sender<(AttemptRecord, Reply)>,
}

impl Recorder {
    /// Starts the recorder; a destination failing `disable_after_ms` is disabled.
    pub fn start(store: Store, disable_after_ms: i64) -> Recorder {
        let (records, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, queue, disable_after_ms));
        Recorder { records }
    }

    /// Queues one attempt's record; the answer comes once it is written,
    /// with whether its destination was disabled by it.
    pub async fn submit(&self, record: AttemptRecord) -> Recorded {
        let (reply, recorded) = oneshot::channel();
        let _ = self.records.send((record, reply)).await;
        Recorded(recorded)
    }
}

/// The answer to a submitted record.
#[derive(Debug)]
pub struct Recorded(oneshot::Receiver<Result<bool, StoreError>>);

impl Recorded {
    /// Waits for the record to be written.
    pub async fn written(self) -> Result<bool, StoreError> {
        self.0.await.map_err(|_| StoreError::Database("the delivery recorder dropped an attempt".into()))?
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<(AttemptRecord, Reply)>, disable_after_ms: i64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        // Attempts finish one by one: waiting a moment for more makes one
        // transaction of many.
        let linger = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(linger, queue.recv()).await {
                Ok(Some(next)) => batch.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        let (records, replies): (Vec<AttemptRecord>, Vec<Reply>) = batch.drain(..).unzip();
        match store.record_attempts(&records, disable_after_ms).await {
            Ok(disabled) => {
                for (record, reply) in records.iter().zip(replies) {
                    let _ = reply.send(Ok(disabled.contains(&record.destination_id)));
                }
            }
            Err(error) => {
                tracing::warn!(%error, attempts = records.len(), "recording delivery attempts failed; they are tried again");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
