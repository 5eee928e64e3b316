//! Per-trigger counters and the record of failed calls.

use serde::Serialize;

use super::paging::PageQuery;
use super::{Store, StoreError, now_ms, to_i64};

/// Failures kept per trigger; older ones are pruned.
const FAILURES_KEPT: i64 = 100;

/// A trigger's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow, Serialize)]
pub struct StatsRow {
    /// Deliveries received.
    pub received: i64,
    /// Deliveries verified and committed.
    pub accepted: i64,
    /// Deliveries `verify` rejected.
    pub rejected: i64,
    /// Events dropped as redeliveries.
    pub duplicates: i64,
    /// Calls that failed (limit hit, trap, connector error).
    pub errors: i64,
    /// Fuel consumed by all calls.
    pub fuel_used: i64,
}

/// What the failed call was, for the counters it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedCall {
    /// A webhook delivery: it counts as received.
    Delivery,
    /// A poll: recorded in the trigger's poll state as well.
    Poll(super::PollRecord),
    /// A lifecycle call (`on-enable`, `on-disable`).
    Lifecycle,
}

/// A recorded failure.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct FailureRow {
    /// Position in the store, the cursor of the failures API (0 before it is stored).
    #[sqlx(default)]
    #[serde(skip)]
    pub seq: i64,
    /// Which export failed.
    pub export: String,
    /// `out-of-fuel`, `guest-trap`, a connector error code, ...
    pub code: String,
    /// What happened, without host internals.
    pub message: String,
    /// The guest's log up to the failure.
    pub log: String,
    /// When.
    pub at_ms: i64,
}

/// What a non-committing delivery adds to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// `verify` rejected it.
    Rejected,
    /// `verify` answered it (a handshake).
    Answered,
}

impl Store {
    /// Counts a delivery that stored nothing.
    pub async fn tally(&self, trigger_id: &str, tally: Tally, fuel_used: u64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let rejected = i64::from(tally == Tally::Rejected);
        sqlx::query(
            "UPDATE trigger_stats SET received = received + 1, rejected = rejected + $1, fuel_used = fuel_used + $2
             WHERE trigger_id = $3",
        )
        .bind(rejected)
        .bind(to_i64(fuel_used))
        .bind(trigger_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a failed call: counters, the failure itself, the trigger's
    /// last error and, for a poll, its poll state, in one transaction.
    pub async fn record_failure(
        &self,
        trigger_id: &str,
        failure: &FailureRow,
        fuel_used: u64,
        call: FailedCall,
    ) -> Result<(), StoreError> {
        let message = format!("{}: {}", failure.code, failure.message);
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        sqlx::query(
            "UPDATE trigger_stats SET received = received + $1, errors = errors + 1, fuel_used = fuel_used + $2
             WHERE trigger_id = $3",
        )
        .bind(i64::from(matches!(call, FailedCall::Delivery)))
        .bind(to_i64(fuel_used))
        .bind(trigger_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO trigger_failures (trigger_id, export, code, message, log, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(trigger_id)
        .bind(&failure.export)
        .bind(&failure.code)
        .bind(&failure.message)
        .bind(&failure.log)
        .bind(failure.at_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM trigger_failures WHERE trigger_id = $1 AND seq <=
                (SELECT seq FROM trigger_failures WHERE trigger_id = $2 ORDER BY seq DESC LIMIT 1 OFFSET $3)",
        )
        .bind(trigger_id)
        .bind(trigger_id)
        .bind(FAILURES_KEPT)
        .execute(&mut *tx)
        .await?;
        if let FailedCall::Poll(poll) = call {
            super::polls::record_failure(&mut tx, trigger_id, poll, &message).await?;
        }
        sqlx::query("UPDATE triggers SET last_error = $1, updated_at_ms = $2 WHERE id = $3")
            .bind(&message)
            .bind(now_ms())
            .bind(trigger_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A trigger's counters.
    pub async fn get_stats(&self, trigger_id: &str) -> Result<StatsRow, StoreError> {
        Ok(sqlx::query_as(
            "SELECT received, accepted, rejected, duplicates, errors, fuel_used FROM trigger_stats WHERE trigger_id = $1",
        )
        .bind(trigger_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// Events received per minute over the last `minutes` minutes, oldest
    /// first, for a sparkline: counted from the newest `RECENT_EVENTS`
    /// events at most, so the cost is bounded however busy the trigger is.
    pub async fn events_per_minute(&self, trigger_id: &str, minutes: usize) -> Result<Vec<i64>, StoreError> {
        const RECENT_EVENTS: i64 = 10_000;
        let this_minute = now_ms() / 60_000;
        let first = this_minute - i64::try_from(minutes).unwrap_or(i64::MAX) + 1;
        let counts: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT minute, CAST(COUNT(*) AS BIGINT) FROM (
                 SELECT CAST(received_at_ms / 60000 AS BIGINT) AS minute FROM events
                 WHERE trigger_id = $1 ORDER BY seq DESC LIMIT $2
             ) recent WHERE minute >= $3 GROUP BY minute",
        )
        .bind(trigger_id)
        .bind(RECENT_EVENTS)
        .bind(first)
        .fetch_all(self.pool())
        .await?;
        let mut buckets = vec![0; minutes];
        for (minute, count) in counts {
            if let Some(bucket) = usize::try_from(minute - first).ok().and_then(|i| buckets.get_mut(i)) {
                *bucket = count;
            }
        }
        Ok(buckets)
    }

    /// Counters summed over every trigger.
    pub async fn stats_totals(&self) -> Result<StatsRow, StoreError> {
        Ok(sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(received), 0) AS BIGINT) AS received, CAST(COALESCE(SUM(accepted), 0) AS BIGINT) AS accepted,
                    CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS rejected, CAST(COALESCE(SUM(duplicates), 0) AS BIGINT) AS duplicates,
                    CAST(COALESCE(SUM(errors), 0) AS BIGINT) AS errors, CAST(COALESCE(SUM(fuel_used), 0) AS BIGINT) AS fuel_used
             FROM trigger_stats",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// When a trigger's newest failure of `export` (`deliver`, `poll`,
    /// `sync`, ...) was recorded, if one was (among the kept ones).
    pub async fn newest_failure_at(&self, trigger_id: &str, export: &str) -> Result<Option<i64>, StoreError> {
        let at: Option<(i64,)> = sqlx::query_as(
            "SELECT at_ms FROM trigger_failures WHERE trigger_id = $1 AND export = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(trigger_id)
        .bind(export)
        .fetch_optional(self.pool())
        .await?;
        Ok(at.map(|(at,)| at))
    }

    /// A trigger's failures, newest first, older than `before_seq`: at most
    /// `limit` and, past the first, no more than `max_bytes` of text. The
    /// flag says whether older failures may follow.
    pub async fn list_failures(
        &self,
        trigger_id: &str,
        limit: i64,
        before_seq: Option<i64>,
        max_bytes: usize,
    ) -> Result<(Vec<FailureRow>, bool), StoreError> {
        let query = PageQuery {
            sizes: "SELECT seq, octet_length(message) + octet_length(log) FROM trigger_failures
                    WHERE trigger_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            rows: "SELECT seq, export, code, message, log, at_ms FROM trigger_failures
                   WHERE trigger_id = $1 AND seq <= $2 AND seq >= $3 ORDER BY seq DESC",
        };
        self.page(query, trigger_id, limit, before_seq, max_bytes).await
    }
}
