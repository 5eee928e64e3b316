//! Recording attempts: the attempt rows, the jobs' new states and the
//! destinations' failing time, for a batch at once.

use sqlx::AnyConnection;

use super::{AttemptRecord, JobOutcome, job_status};
use crate::store::{Store, StoreError, now_ms};

impl Store {
    /// Records finished attempts in one transaction: the attempt rows, the
    /// jobs' new states, the destinations' failing time. A destination
    /// failing for `disable_after_ms` or more, or told to by a record, is
    /// disabled and its pending jobs dead-lettered. Returns the ids of the
    /// destinations disabled.
    ///
    /// The commit does not wait for the disk: a record lost to a crash
    /// means its attempt is made again (with the same `webhook-id`), which
    /// at-least-once allows; nothing recorded here is ever acknowledged to
    /// anyone on the strength of it.
    pub async fn record_attempts(&self, records: &[AttemptRecord], disable_after_ms: i64) -> Result<Vec<String>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(&self.relaxed).await?;
        // A job deleted meanwhile (its destination removed) keeps no record.
        let sql = format!(
            "INSERT INTO delivery_attempts (delivery_id, started_at_ms, duration_ms, status_code, error, response_excerpt)
             SELECT column1, column2, column3, column4, column5, column6 FROM ({}) AS v
             WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = column1)",
            crate::store::values_list(records.len(), 6)
        );
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in records {
            let attempt = &record.attempt;
            insert = insert
                .bind(&record.delivery_id)
                .bind(attempt.started_at_ms)
                .bind(attempt.duration_ms)
                .bind(attempt.status_code)
                .bind(&attempt.error)
                .bind(&attempt.response_excerpt);
        }
        insert.execute(&mut *tx).await?;
        let sql = format!(
            "UPDATE deliveries SET status = r.column2, attempts = attempts + 1, next_attempt_at_ms = r.column3,
                    last_status = r.column4, last_error = r.column5, delivered_at_ms = r.column6, updated_at_ms = r.column7
             FROM ({}) AS r WHERE deliveries.id = r.column1 AND deliveries.status = 'pending'",
            crate::store::values_list(records.len(), 7)
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in records {
            let attempt = &record.attempt;
            let finished = attempt.started_at_ms.saturating_add(attempt.duration_ms);
            let (status, next, delivered_at) = match record.outcome {
                JobOutcome::Delivered => (job_status::DELIVERED, finished, Some(finished)),
                JobOutcome::RetryAt(at) => (job_status::PENDING, at, None),
                JobOutcome::Dead => (job_status::DEAD, finished, None),
            };
            update = update
                .bind(&record.delivery_id)
                .bind(status)
                .bind(next)
                .bind(attempt.status_code)
                .bind(&attempt.error)
                .bind(delivered_at)
                .bind(finished);
        }
        update.execute(&mut *tx).await?;
        let mut disabled = Vec::new();
        for (destination, tally) in tally_by_destination(records) {
            if let Some(reason) = settle_destination(&mut tx, destination, &tally, disable_after_ms).await?
                && disable(&mut tx, destination, &reason, tally.last_finished).await?
            {
                disabled.push(destination.to_owned());
            }
        }
        tx.commit().await?;
        Ok(disabled)
    }

    /// Disables an enabled destination and dead-letters its pending jobs.
    pub async fn disable_destination(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        disable(&mut tx, id, reason, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What a batch of attempts says of one destination.
#[derive(Debug, Default)]
struct Tally<'a> {
    /// Whether the last attempt succeeded.
    last_succeeded: bool,
    /// Whether any attempt succeeded.
    any_succeeded: bool,
    /// When the first failure after the last success started.
    failing_from: Option<i64>,
    /// The last failure's error.
    last_error: Option<&'a str>,
    /// When the last attempt ended.
    last_finished: i64,
    /// A reason to disable it whatever its failing time (410 Gone).
    disable: Option<&'a str>,
}

/// Each destination's tally, in the order they first appear.
fn tally_by_destination(records: &[AttemptRecord]) -> Vec<(&str, Tally<'_>)> {
    let mut tallies: Vec<(&str, Tally<'_>)> = Vec::new();
    for record in records {
        let index = match tallies.iter().position(|(id, _)| *id == record.destination_id) {
            Some(index) => index,
            None => {
                tallies.push((&record.destination_id, Tally::default()));
                tallies.len() - 1
            }
        };
        let tally = &mut tallies[index].1;
        let attempt = &record.attempt;
        tally.last_finished = tally.last_finished.max(attempt.started_at_ms.saturating_add(attempt.duration_ms));
        if record.outcome == JobOutcome::Delivered {
            (tally.last_succeeded, tally.any_succeeded, tally.failing_from) = (true, true, None);
        } else {
            tally.last_succeeded = false;
            tally.failing_from = tally.failing_from.or(Some(attempt.started_at_ms));
            tally.last_error = attempt.error.as_deref().or(tally.last_error);
        }
        tally.disable = tally.disable.or(record.disable.as_deref());
    }
    tallies
}

/// Updates a destination's failing time from its tally; returns why it
/// must be disabled, if it must.
async fn settle_destination(
    conn: &mut AnyConnection,
    id: &str,
    tally: &Tally<'_>,
    disable_after_ms: i64,
) -> Result<Option<String>, StoreError> {
    if tally.last_succeeded {
        sqlx::query("UPDATE destinations SET failing_since_ms = NULL WHERE id = $1 AND failing_since_ms IS NOT NULL")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        return Ok(None);
    }
    // Failing since before this batch, unless a success in it ended that.
    let since: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE destinations SET failing_since_ms = CASE WHEN $1 THEN $2 ELSE COALESCE(failing_since_ms, $2) END,
                last_error = $3
         WHERE id = $4 RETURNING failing_since_ms",
    )
    .bind(tally.any_succeeded)
    .bind(tally.failing_from)
    .bind(tally.last_error)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(since) = since.flatten() else { return Ok(None) };
    let failing_for = tally.last_finished.saturating_sub(since);
    Ok(tally
        .disable
        .map(str::to_owned)
        .or_else(|| (failing_for >= disable_after_ms).then(|| format!("every attempt failed for {} s", failing_for / 1000))))
}

/// Disables a destination that is enabled and dead-letters its pending
/// jobs; returns whether it was enabled (a paused one keeps its jobs, and
/// one disabled already has none).
async fn disable(conn: &mut AnyConnection, id: &str, reason: &str, now: i64) -> Result<bool, StoreError> {
    let disabled = sqlx::query(
        "UPDATE destinations SET status = 'disabled', disabled_reason = $1, updated_at_ms = $2 WHERE id = $3 AND status = 'enabled'",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if disabled.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE deliveries SET status = 'dead', last_error = $1, updated_at_ms = $2
         WHERE destination_id = $3 AND status = 'pending'",
    )
    .bind(format!("destination disabled: {reason}"))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}


#[cfg(test)]
mod tests {
    use crate::capabilities::kv::KvWrites;
    use crate::store::test_support::store_with_trigger;
    use crate::store::{AttemptRecord, AttemptRow, DeliveryCommit, DestinationRow, JobOutcome, NewEvent, Store, StoreError};

    async fn with_destination(store: &Store) -> Result<(), StoreError> {
        let row = DestinationRow {
            id: "dst_a".into(),
            trigger_id: "trg_a".into(),
            url: "https://example.com/".into(),
            secret: "sealed".into(),
            previous_secret: None,
            previous_secret_until_ms: None,
            event_types: None,
            status: "enabled".into(),
            disabled_reason: None,
            ordered: false,
            max_in_flight: None,
            rate_per_s: None,
            failing_since_ms: None,
            last_error: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        store.insert_destination(&row).await
    }

    async fn one_event(store: &Store, key: &str) -> Result<String, StoreError> {
        let event = NewEvent {
            id: format!("evt_{key}"),
            dedupe_key: Some(key.into()),
            event_type: "t".into(),
            occurred_at_ms: None,
            payload: "{}".into(),
            received_at_ms: 0,
        };
        let commit = DeliveryCommit {
            trigger_id: "trg_a".into(),
            plugin_version: "p@1".into(),
            events: vec![event],
            fuel_used: 0,
            kv_writes: KvWrites::default(),
            poll: None,
            fence: None,
        };
        store.commit_deliveries(&[commit]).await?.remove(0)?;
        let due = store.due_deliveries("dst_a", i64::MAX, &[], 10, 1 << 20).await?;
        Ok(due.last().map(|job| job.id.clone()).unwrap_or_default())
    }

    fn attempt(job: &str, started: i64, outcome: JobOutcome) -> AttemptRecord {
        let status = if outcome == JobOutcome::Delivered { 200 } else { 500 };
        AttemptRecord {
            delivery_id: job.into(),
            destination_id: "dst_a".into(),
            attempt: AttemptRow {
                started_at_ms: started,
                duration_ms: 10,
                status_code: Some(status),
                error: (status != 200).then(|| "the receiver answered 500".into()),
                response_excerpt: None,
            },
            outcome,
            disable: None,
        }
    }

    /// The failing time starts at the first failure after a success, a
    /// success ends it, and failing past the limit disables the destination
    /// and dead-letters its pending jobs.
    #[tokio::test]
    async fn a_destination_failing_past_the_limit_is_disabled() -> Result<(), StoreError> {
        let (store, _temp) = store_with_trigger("trg_a").await?;
        with_destination(&store).await?;
        let (first, second) = (one_event(&store, "k1").await?, one_event(&store, "k2").await?);
        let batch = [attempt(&first, 1000, JobOutcome::RetryAt(5000)), attempt(&second, 1500, JobOutcome::RetryAt(5000))];
        assert!(store.record_attempts(&batch, 1000).await?.is_empty(), "failing 510 ms of 1000");
        assert_eq!(store.get_destination("dst_a").await?.failing_since_ms, Some(1000));
        store.record_attempts(&[attempt(&first, 1600, JobOutcome::Delivered)], 1000).await?;
        assert_eq!(store.get_destination("dst_a").await?.failing_since_ms, None, "a success ends it");
        assert!(store.record_attempts(&[attempt(&second, 2000, JobOutcome::RetryAt(5000))], 1000).await?.is_empty());
        let disabled = store.record_attempts(&[attempt(&second, 3000, JobOutcome::RetryAt(5000))], 1000).await?;
        assert_eq!(disabled, ["dst_a"], "failing since 2000, for 1010 ms");
        let row = store.get_destination("dst_a").await?;
        assert_eq!((row.status.as_str(), row.disabled_reason.as_deref()), ("disabled", Some("every attempt failed for 1 s")));
        assert_eq!(store.get_delivery(&second).await?.status, "dead");
        assert_eq!(store.get_delivery(&first).await?.status, "delivered");
        assert_eq!(store.list_attempts(&second, 10).await?.len(), 3);
        Ok(())
    }
}
