//! Poll state per trigger: counters, last poll, last success, the last
//! error and the run of failures the scheduler backs off on. A successful
//! poll's row is written in the transaction that stores its events, a
//! failed poll's in the one that records its failure.

use serde::Serialize;

use super::{Store, StoreError, to_i64};

/// What a successful poll records, with its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollRecord {
    /// When the poll started (Unix ms).
    pub at_ms: i64,
    /// How long it took.
    pub duration_ms: i64,
}

/// A trigger's poll state.
#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow, Serialize)]
pub struct PollState {
    /// Polls run, successful or not.
    pub polls: i64,
    /// Polls that failed.
    pub failures: i64,
    /// Failures since the last success.
    pub consecutive_failures: i64,
    /// Events stored by polls.
    pub events: i64,
    /// When the last poll started.
    pub last_poll_at_ms: Option<i64>,
    /// When the last successful poll started.
    pub last_success_at_ms: Option<i64>,
    /// When a poll last stored an event.
    pub last_event_at_ms: Option<i64>,
    /// The last failure's message (cleared by a success).
    pub last_error: Option<String>,
    /// How long the last poll took.
    pub last_duration_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct KeyedState {
    trigger_id: String,
    #[sqlx(flatten)]
    state: PollState,
}

/// Records a successful poll inside the commit of its events.
pub(super) async fn record_success(
    conn: &mut sqlx::AnyConnection,
    trigger_id: &str,
    poll: PollRecord,
    stored: usize,
) -> Result<(), StoreError> {
    let stored = to_i64(stored as u64);
    sqlx::query(
        "INSERT INTO trigger_polls (trigger_id, polls, events, last_poll_at_ms, last_success_at_ms, last_event_at_ms,
                                    last_duration_ms)
         VALUES ($1, 1, $2, $3, $3, CASE WHEN $2 > 0 THEN $3 END, $4)
         ON CONFLICT (trigger_id) DO UPDATE SET
             polls = trigger_polls.polls + 1, events = trigger_polls.events + $2, consecutive_failures = 0, last_error = NULL,
             last_poll_at_ms = $3, last_success_at_ms = $3, last_duration_ms = $4,
             last_event_at_ms = CASE WHEN $2 > 0 THEN $3 ELSE trigger_polls.last_event_at_ms END",
    )
    .bind(trigger_id)
    .bind(stored)
    .bind(poll.at_ms)
    .bind(poll.duration_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed poll inside the transaction that records its failure.
pub(super) async fn record_failure(
    conn: &mut sqlx::AnyConnection,
    trigger_id: &str,
    poll: PollRecord,
    message: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO trigger_polls (trigger_id, polls, failures, consecutive_failures, last_poll_at_ms, last_error,
                                    last_duration_ms)
         VALUES ($1, 1, 1, 1, $2, $3, $4)
         ON CONFLICT (trigger_id) DO UPDATE SET
             polls = trigger_polls.polls + 1, failures = trigger_polls.failures + 1,
             consecutive_failures = trigger_polls.consecutive_failures + 1,
             last_poll_at_ms = $2, last_error = $3, last_duration_ms = $4",
    )
    .bind(trigger_id)
    .bind(poll.at_ms)
    .bind(message)
    .bind(poll.duration_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Every polling trigger's poll state, by trigger id.
    pub async fn all_poll_states(&self) -> Result<std::collections::HashMap<String, PollState>, StoreError> {
        let rows: Vec<KeyedState> = sqlx::query_as("SELECT * FROM trigger_polls").fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(|row| (row.trigger_id, row.state)).collect())
    }

    /// A trigger's poll state (all zero before its first poll).
    pub async fn poll_state(&self, trigger_id: &str) -> Result<PollState, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM trigger_polls WHERE trigger_id = $1")
            .bind(trigger_id)
            .fetch_optional(self.pool())
            .await?
            .unwrap_or_default())
    }

    /// Forgets where polling stood: the trigger's kv entries (its cursor)
    /// and its last success, so the next poll starts from a new baseline.
    pub async fn reset_poll(&self, trigger_id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        sqlx::query("DELETE FROM kv_entries WHERE trigger_id = $1").bind(trigger_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE trigger_polls SET last_success_at_ms = NULL WHERE trigger_id = $1")
            .bind(trigger_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
