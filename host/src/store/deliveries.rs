//! Delivery jobs (the outbox) and their attempts.

mod record;

use sqlx::AnyConnection;

use super::dialect::{Dialect, Portable};
use super::{Store, StoreError, now_ms};

/// Job states.
pub mod job_status {
    /// Waiting for its next attempt, or being attempted.
    pub const PENDING: &str = "pending";
    /// A 2xx came back in time.
    pub const DELIVERED: &str = "delivered";
    /// Dead-lettered: out of attempts, refused for good, or its destination
    /// was disabled.
    pub const DEAD: &str = "dead";
}

/// A job with what its request is made of.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueJob {
    /// `dlv_<hex>`.
    pub id: String,
    /// The event's position, its order among the destination's jobs.
    pub event_seq: i64,
    /// The event id: the `webhook-id`, the same on every attempt.
    pub event_id: String,
    /// The trigger.
    pub trigger_id: String,
    /// Attempts since the job was queued.
    pub attempts: i64,
    /// When the next attempt is due.
    pub next_attempt_at_ms: i64,
    /// Event type.
    pub event_type: String,
    /// When it happened at the source.
    pub occurred_at_ms: Option<i64>,
    /// When the host received it.
    pub received_at_ms: i64,
    /// JSON payload text.
    pub payload: String,
}

/// A job as listed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct DeliveryRow {
    /// Position, the listing's cursor.
    #[serde(skip)]
    pub seq: i64,
    /// `dlv_<hex>`.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The trigger.
    pub trigger_id: String,
    /// The destination.
    pub destination_id: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    /// Attempts since queued.
    pub attempts: i64,
    /// When the next attempt is due (pending jobs).
    pub next_attempt_at_ms: i64,
    /// The last attempt's response status.
    pub last_status: Option<i64>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Queued.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
    /// When the receiver took it.
    pub delivered_at_ms: Option<i64>,
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AttemptRow {
    /// When it started.
    pub started_at_ms: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's status, if it answered.
    pub status_code: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The first bytes of the response body.
    pub response_excerpt: Option<String>,
}

/// What an attempt leads to for its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Delivered.
    Delivered,
    /// Try again at this time.
    RetryAt(i64),
    /// Dead-lettered.
    Dead,
}

/// One finished attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The job.
    pub delivery_id: String,
    /// Its destination.
    pub destination_id: String,
    /// The attempt.
    pub attempt: AttemptRow,
    /// What follows for the job.
    pub outcome: JobOutcome,
    /// Disable the destination, for this reason, whatever its failing time
    /// (the receiver answered 410 Gone).
    pub disable: Option<String>,
}

/// Which jobs a listing shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Of this trigger.
    pub trigger_id: Option<String>,
    /// To this destination.
    pub destination_id: Option<String>,
    /// In this state.
    pub status: Option<String>,
}

/// Which events a replay queues again.
#[derive(Debug, Clone, Default)]
pub struct ReplayScope {
    /// The trigger.
    pub trigger_id: String,
    /// Only this event.
    pub event_id: Option<String>,
    /// Received at or after.
    pub since_ms: Option<i64>,
    /// Received before.
    pub until_ms: Option<i64>,
    /// Only to this destination (else every enabled or paused one).
    pub destination_id: Option<String>,
}

/// Queues a job for every event stored after `after_seq` and every enabled
/// or paused destination of its trigger that takes its type. Runs inside
/// the transaction that stored the events: the outbox. Job ids start with
/// the time in milliseconds (as `ids::new_time_ordered_id` makes them), so
/// their index grows at its end instead of dirtying a random page each.
pub(super) async fn enqueue_after(
    conn: &mut AnyConnection,
    dialect: Dialect,
    after_seq: i64,
    now: i64,
) -> Result<u64, StoreError> {
    // On PostgreSQL another node's transaction may have committed events
    // past `after_seq` meanwhile, with their jobs: those are not queued twice.
    static ENQUEUE: Portable = Portable::new(
        "INSERT INTO deliveries (id, event_seq, event_id, trigger_id, destination_id, status, attempts,
                                 next_attempt_at_ms, created_at_ms, updated_at_ms)
         SELECT {delivery_id:$1}, e.seq, e.id, e.trigger_id, d.id, 'pending', 0, $1, $1, $1
         FROM events e JOIN destinations d ON d.trigger_id = e.trigger_id
         WHERE e.seq > $2 AND d.status IN ('enabled', 'paused')
           AND (d.event_types IS NULL OR EXISTS (SELECT 1 FROM {json:d.event_types} WHERE value = e.event_type))
           AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.event_seq = e.seq AND p.destination_id = d.id)
         ORDER BY e.seq",
    );
    let queued = sqlx::query(ENQUEUE.sql(dialect)).bind(now).bind(after_seq).execute(&mut *conn).await?;
    Ok(queued.rows_affected())
}

/// The last event position, before a commit adds to it.
pub(super) async fn last_event_seq(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut *conn).await?)
}

impl Store {
    /// A destination's pending jobs due by `now`, those due first, except
    /// those in `skip` (in flight): at most `limit`, and past the first no
    /// more than `max_bytes` of payload, so a read never holds many large
    /// events in memory at once.
    pub async fn due_deliveries(
        &self,
        destination_id: &str,
        now: i64,
        skip: &[&str],
        limit: i64,
        max_bytes: usize,
    ) -> Result<Vec<DueJob>, StoreError> {
        let skip = serde_json::to_string(skip).unwrap_or_else(|_| "[]".into());
        static DUE: Portable = Portable::new(
            "WITH due AS (
                 SELECT d.id, d.event_seq, d.event_id, d.trigger_id, d.attempts, d.next_attempt_at_ms,
                        octet_length(e.payload) AS size
                 FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.destination_id = $1 AND d.status = 'pending' AND d.next_attempt_at_ms <= $2
                   AND d.id NOT IN (SELECT value FROM {json:$3})
                 ORDER BY d.next_attempt_at_ms, d.event_seq LIMIT $4),
             sized AS (
                 SELECT *, SUM(size) OVER (ORDER BY next_attempt_at_ms, event_seq ROWS UNBOUNDED PRECEDING) - size AS before
                 FROM due)
             SELECT s.id, s.event_seq, s.event_id, s.trigger_id, s.attempts, s.next_attempt_at_ms,
                    e.event_type, e.occurred_at_ms, e.received_at_ms, e.payload
             FROM sized s JOIN events e ON e.seq = s.event_seq
             WHERE s.before < $5
             ORDER BY s.next_attempt_at_ms, s.event_seq",
        );
        Ok(sqlx::query_as(DUE.sql(self.dialect))
        .bind(destination_id)
        .bind(now)
        .bind(skip)
        .bind(limit)
        .bind(super::to_i64(max_bytes as u64))
        .fetch_all(self.pool())
        .await?)
    }

    /// A destination's oldest pending job by event order, due or not.
    pub async fn first_pending_delivery(&self, destination_id: &str) -> Result<Option<DueJob>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT d.id, d.event_seq, d.event_id, d.trigger_id, d.attempts, d.next_attempt_at_ms,
                    e.event_type, e.occurred_at_ms, e.received_at_ms, e.payload
             FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.destination_id = $1 AND d.status = 'pending' ORDER BY d.event_seq LIMIT 1",
        )
        .bind(destination_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// When a destination's next pending job falls due after `after`.
    pub async fn next_delivery_due(&self, destination_id: &str, after: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at_ms) FROM deliveries
             WHERE destination_id = $1 AND status = 'pending' AND next_attempt_at_ms > $2",
        )
        .bind(destination_id)
        .bind(after)
        .fetch_one(self.pool())
        .await?)
    }

    /// Jobs matching `filter`, newest first, before the cursor `before_seq`.
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: i64,
        before_seq: Option<i64>,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT rowid AS seq, * FROM deliveries
             WHERE rowid < $1 AND ($2 IS NULL OR trigger_id = $2) AND ($3 IS NULL OR destination_id = $3)
               AND ($4 IS NULL OR status = $4)
             ORDER BY rowid DESC LIMIT $5",
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(&filter.trigger_id)
        .bind(&filter.destination_id)
        .bind(&filter.status)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// One job.
    pub async fn get_delivery(&self, id: &str) -> Result<DeliveryRow, StoreError> {
        Ok(sqlx::query_as("SELECT rowid AS seq, * FROM deliveries WHERE id = $1").bind(id).fetch_one(self.pool()).await?)
    }

    /// A job's attempts, first first, at most `limit`.
    pub async fn list_attempts(&self, delivery_id: &str, limit: i64) -> Result<Vec<AttemptRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT started_at_ms, duration_ms, status_code, error, response_excerpt FROM delivery_attempts
             WHERE delivery_id = $1 ORDER BY seq LIMIT $2",
        )
        .bind(delivery_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Queues dead-lettered jobs again, due now, with a fresh schedule:
    /// one job, or every dead job of a trigger (and destination). Jobs of
    /// a disabled destination stay dead. Returns how many.
    pub async fn retry_dead(
        &self,
        trigger_id: &str,
        delivery_id: Option<&str>,
        destination_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let now = now_ms();
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = $1, updated_at_ms = $1
             WHERE trigger_id = $2 AND status = 'dead' AND ($3 IS NULL OR id = $3) AND ($4 IS NULL OR destination_id = $4)
               AND destination_id IN (SELECT id FROM destinations WHERE status IN ('enabled', 'paused'))",
        )
        .bind(now)
        .bind(trigger_id)
        .bind(delivery_id)
        .bind(destination_id)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Queues new jobs for the events in `scope` (oldest first, at most
    /// `limit`), to its destination or to every enabled or paused one of
    /// the trigger that takes their type, skipping an event and destination
    /// that already have a job pending. Returns how many were queued.
    pub async fn replay(&self, scope: &ReplayScope, limit: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let now = now_ms();
        static REPLAY: Portable = Portable::new(
            "INSERT INTO deliveries (id, event_seq, event_id, trigger_id, destination_id, status, attempts,
                                     next_attempt_at_ms, created_at_ms, updated_at_ms)
             SELECT {delivery_id:$1}, e.seq, e.id, e.trigger_id, d.id, 'pending', 0, $1, $1, $1
             FROM events e JOIN destinations d ON d.trigger_id = e.trigger_id
             WHERE e.trigger_id = $2 AND ($3 IS NULL OR e.id = $3)
               AND ($4 IS NULL OR e.received_at_ms >= $4) AND ($5 IS NULL OR e.received_at_ms < $5)
               AND ($6 IS NULL OR d.id = $6) AND d.status IN ('enabled', 'paused')
               AND (d.event_types IS NULL OR EXISTS (SELECT 1 FROM {json:d.event_types} WHERE value = e.event_type))
               AND NOT EXISTS (SELECT 1 FROM deliveries p
                               WHERE p.event_seq = e.seq AND p.destination_id = d.id AND p.status = 'pending')
             ORDER BY e.seq LIMIT $7",
        );
        Ok(sqlx::query(REPLAY.sql(self.dialect))
        .bind(now)
        .bind(&scope.trigger_id)
        .bind(&scope.event_id)
        .bind(scope.since_ms)
        .bind(scope.until_ms)
        .bind(&scope.destination_id)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected())
    }
}
