//! Events: committed in groups, read newest first with a cursor.

mod bulk;

use super::paging::PageQuery;
use super::{Store, StoreError, to_i64};

/// An event about to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `evt_<hex>`.
    pub id: String,
    /// Unique per trigger when set.
    pub dedupe_key: Option<String>,
    /// Event type.
    pub event_type: String,
    /// When it happened at the source.
    pub occurred_at_ms: Option<i64>,
    /// JSON payload.
    pub payload: String,
    /// When the host received it.
    pub received_at_ms: i64,
}

/// One accepted delivery's events and cost, to commit atomically.
#[derive(Debug, Clone)]
pub struct DeliveryCommit {
    /// The trigger.
    pub trigger_id: String,
    /// `name@version` of the plugin that produced the events.
    pub plugin_version: String,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// Fuel the delivery used.
    pub fuel_used: u64,
    /// The key-value writes of the call, stored with its events or not at all.
    pub kv_writes: crate::capabilities::kv::KvWrites,
    /// For a poll, what to record of it; `None` for a webhook delivery.
    pub poll: Option<super::polls::PollRecord>,
    /// The lease the commit is made under (a poll on a shared database):
    /// nothing is stored unless this node still holds it.
    pub fence: Option<super::LeaseFence>,
}

/// What committing one delivery stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitOutcome {
    /// New events stored.
    pub stored: usize,
    /// Events dropped because their dedupe key was already stored.
    pub duplicates: usize,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    /// Position in the store, the cursor of the events API.
    pub seq: i64,
    /// Event id.
    pub id: String,
    /// Trigger id.
    pub trigger_id: String,
    /// Dedupe key.
    pub dedupe_key: Option<String>,
    /// Event type.
    pub event_type: String,
    /// When it happened at the source.
    pub occurred_at_ms: Option<i64>,
    /// JSON payload text.
    pub payload: String,
    /// `name@version` that produced it.
    pub plugin_version: String,
    /// When the host received it.
    pub received_at_ms: i64,
}

impl Store {
    /// Commits many deliveries in one transaction: all at once when none
    /// fails, else each inside its own savepoint, so one delivery's failure
    /// (say its trigger was just deleted) does not fail the others. The outer result fails only if the
    /// transaction itself cannot commit.
    pub async fn commit_deliveries(
        &self,
        batch: &[DeliveryCommit],
    ) -> Result<Vec<Result<CommitOutcome, StoreError>>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        // Events this transaction stores come after this position; their
        // delivery jobs are queued in the same transaction (the outbox).
        let mut before = super::deliveries::last_event_seq(&mut tx).await?;
        match bulk::commit_all(&mut tx, batch).await {
            Ok(outcomes) => {
                super::deliveries::enqueue_after(&mut tx, self.dialect, before, super::now_ms()).await?;
                tx.commit().await?;
                return Ok(outcomes.into_iter().map(Ok).collect());
            }
            Err(StoreError::Busy) => return Err(StoreError::Busy),
            Err(error) => {
                tracing::debug!(%error, deliveries = batch.len(), "group commit: one delivery at a time");
                tx.rollback().await?;
                tx = self.begin_write(self.pool()).await?;
                before = super::deliveries::last_event_seq(&mut tx).await?;
            }
        }
        let mut outcomes: Vec<Result<CommitOutcome, StoreError>> = vec![Ok(CommitOutcome::default()); batch.len()];
        for i in lock_order(batch, 0..batch.len()) {
            let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
            match commit_one(&mut savepoint, &batch[i]).await {
                Ok(outcome) => {
                    savepoint.commit().await?;
                    outcomes[i] = Ok(outcome);
                }
                Err(StoreError::Busy) => return Err(StoreError::Busy),
                Err(error) => {
                    savepoint.rollback().await?;
                    outcomes[i] = Err(error);
                }
            }
        }
        super::deliveries::enqueue_after(&mut tx, self.dialect, before, super::now_ms()).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// When a trigger's newest event was received, if it has one (its
    /// payload is not read).
    pub async fn newest_event_at(&self, trigger_id: &str) -> Result<Option<i64>, StoreError> {
        let at: Option<(i64,)> =
            sqlx::query_as("SELECT received_at_ms FROM events WHERE trigger_id = $1 ORDER BY seq DESC LIMIT 1")
                .bind(trigger_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(at.map(|(at,)| at))
    }

    /// Events of a trigger, newest first, older than `before_seq`: at most
    /// `limit` of them and, past the first, no more than `max_bytes` of
    /// payload, so a page of large events is never built whole in memory.
    /// The flag says whether older events may follow.
    pub async fn list_events(
        &self,
        trigger_id: &str,
        limit: i64,
        before_seq: Option<i64>,
        max_bytes: usize,
    ) -> Result<(Vec<EventRow>, bool), StoreError> {
        let query = PageQuery {
            sizes: "SELECT seq, octet_length(payload) FROM events WHERE trigger_id = $1 AND seq < $2
                    ORDER BY seq DESC LIMIT $3",
            rows: "SELECT * FROM events WHERE trigger_id = $1 AND seq <= $2 AND seq >= $3 ORDER BY seq DESC",
        };
        self.page(query, trigger_id, limit, before_seq, max_bytes).await
    }
}

/// The deliveries `indices` of `batch` in the order their rows are locked:
/// by trigger and first dedupe key. Two nodes committing redeliveries of
/// the same events at once then take the events' unique-index entries in
/// the same order, one waiting for the other, instead of each holding what
/// the other needs (a deadlock PostgreSQL ends by failing one commit).
/// Deliveries of one group commit arrived at once, so their order among
/// themselves is free; a delivery's own events keep theirs.
fn lock_order(batch: &[DeliveryCommit], indices: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut ordered: Vec<usize> = indices.collect();
    let key = |i: usize| (&batch[i].trigger_id, batch[i].events.first().and_then(|event| event.dedupe_key.as_deref()));
    ordered.sort_by(|&a, &b| key(a).cmp(&key(b)));
    ordered
}

async fn commit_one(
    conn: &mut sqlx::AnyConnection,
    delivery: &DeliveryCommit,
) -> Result<CommitOutcome, StoreError> {
    let mut outcome = CommitOutcome::default();
    if let Some(fence) = &delivery.fence {
        super::cluster::check_fence(&mut *conn, fence, super::now_ms()).await?;
    }
    super::kv::apply(&mut *conn, &delivery.kv_writes).await?;
    for event in &delivery.events {
        // A key whose event retention removed is still a duplicate within
        // the dedupe window.
        let inserted = sqlx::query(
            "INSERT INTO events (id, trigger_id, dedupe_key, event_type, occurred_at_ms, payload, plugin_version,
                                 received_at_ms)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE NOT EXISTS (SELECT 1 FROM dedupe_keys_retired WHERE trigger_id = $9 AND dedupe_key = $10)
             ON CONFLICT (trigger_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING",
        )
        .bind(&event.id)
        .bind(&delivery.trigger_id)
        .bind(&event.dedupe_key)
        .bind(&event.event_type)
        .bind(event.occurred_at_ms)
        .bind(&event.payload)
        .bind(&delivery.plugin_version)
        .bind(event.received_at_ms)
        .bind(&delivery.trigger_id)
        .bind(&event.dedupe_key)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            outcome.stored += 1;
        } else {
            outcome.duplicates += 1;
        }
    }
    // A poll is not a delivery received: it has its own counters.
    let delivered = i64::from(delivery.poll.is_none());
    let updated = sqlx::query(
        "UPDATE trigger_stats SET received = received + $1, accepted = accepted + $2,
                duplicates = duplicates + $3, fuel_used = fuel_used + $4
         WHERE trigger_id = $5",
    )
    .bind(delivered)
    .bind(delivered)
    .bind(to_i64(outcome.duplicates as u64))
    .bind(to_i64(delivery.fuel_used))
    .bind(&delivery.trigger_id)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    if let Some(poll) = delivery.poll {
        super::polls::record_success(conn, &delivery.trigger_id, poll, outcome.stored).await?;
    }
    Ok(outcome)
}
