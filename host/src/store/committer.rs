//! Group commit: deliveries that arrive together are committed in one
//! transaction, and each is answered only once that transaction is durable.
//! SQLite takes one writer at a time, so one committer task also means no
//! writer ever waits on another for the events table.

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::{CommitOutcome, DeliveryCommit, Store, StoreError};

/// Deliveries per transaction at most.
const MAX_BATCH: usize = 256;
/// Deliveries waiting for the committer at most; past it, senders wait.
const QUEUE: usize = 4096;

struct Job {
    commit: DeliveryCommit,
    done: oneshot::Sender<Result<CommitOutcome, StoreError>>,
    /// The delivery's share of the ingress budget, returned once the
    /// events are stored, even if the sender has gone away meanwhile.
    held: OwnedSemaphorePermit,
}

/// Told the id of each trigger a commit stored events for, once durable
/// (push delivery wakes the trigger's destinations).
pub type OnStored = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// A handle on the committer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("trigger", &self.commit.trigger_id).finish()
    }
}

impl Committer {
    /// Starts the committer task on the current tokio runtime.
    pub fn start(store: Store, on_stored: OnStored) -> Committer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, queue, on_stored));
        Committer { jobs }
    }

    /// Commits one delivery; returns once it is durable (or failed).
    /// `held` (the bytes the delivery holds of the ingress budget) is
    /// released when the commit is done, not when the caller stops waiting.
    pub async fn commit(&self, commit: DeliveryCommit, held: OwnedSemaphorePermit) -> Result<CommitOutcome, StoreError> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { commit, done, held })
            .await
            .map_err(|_| StoreError::Database("the committer has stopped".into()))?;
        outcome.await.map_err(|_| StoreError::Database("the committer dropped a delivery".into()))?
    }
}

async fn run(store: Store, mut queue: mpsc::Receiver<Job>, on_stored: OnStored) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (mut commits, mut replies, mut held) = (Vec::new(), Vec::new(), Vec::new());
        for job in batch.drain(..) {
            commits.push(job.commit);
            replies.push(job.done);
            held.push(job.held);
        }
        match store.commit_deliveries(&commits).await {
            Ok(outcomes) => {
                let mut stored_for: Vec<&str> = commits
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, outcome)| outcome.as_ref().is_ok_and(|o| o.stored > 0))
                    .map(|(commit, _)| commit.trigger_id.as_str())
                    .collect();
                stored_for.sort_unstable();
                stored_for.dedup();
                for trigger_id in stored_for {
                    on_stored(trigger_id);
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::warn!(%error, deliveries = replies.len(), "group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        drop(held);
    }
}
