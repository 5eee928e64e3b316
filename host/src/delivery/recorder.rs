//! Attempts finished together are recorded in one transaction, as events
//! are committed in groups: SQLite takes one writer at a time, and a
//! transaction per attempt would compete with ingest for it.

use tokio::sync::{mpsc, oneshot};

use crate::store::{AttemptRecord, Store, StoreError};

/// Records per transaction at most.
const MAX_BATCH: usize = 256;
/// Records waiting at most; past it, attempts wait to be recorded.
const QUEUE: usize = 4096;

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

    /// Records one attempt; returns once it is durable, with whether its
    /// destination was disabled by it.
    pub async fn record(&self, record: AttemptRecord) -> Result<bool, StoreError> {
        let (reply, recorded) = oneshot::channel();
        self.records
            .send((record, reply))
            .await
            .map_err(|_| StoreError::Database("the delivery recorder has stopped".into()))?;
        recorded.await.map_err(|_| StoreError::Database("the delivery recorder dropped an attempt".into()))?
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<(AttemptRecord, Reply)>, disable_after_ms: i64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
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
