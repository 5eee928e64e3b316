//! The fast path of a group commit: every event of the batch in a few
//! multi-row inserts and one counter update per trigger, instead of a
//! savepoint and three statements per delivery. Each statement is a round
//! trip to SQLite's worker thread, so under load this is most of a commit's
//! cost. Any error fails the whole attempt; the caller then rolls back and
//! commits the batch delivery by delivery, each in its own savepoint.

use std::collections::{BTreeMap, HashSet};

use super::{CommitOutcome, DeliveryCommit, commit_one};
use crate::store::{StoreError, to_i64};

/// Rows per insert: 8 parameters each, well under SQLite's 32,766.
const ROWS_PER_INSERT: usize = 500;

/// Commits `batch` in the open transaction `conn`, or fails as a whole.
pub(super) async fn commit_all(
    conn: &mut sqlx::AnyConnection,
    batch: &[DeliveryCommit],
) -> Result<Vec<CommitOutcome>, StoreError> {
    let mut outcomes = vec![CommitOutcome::default(); batch.len()];
    // Deliveries with kv writes or a poll record keep their own path.
    let (plain, other): (Vec<usize>, Vec<usize>) = super::lock_order(batch, 0..batch.len())
        .into_iter()
        .partition(|&i| batch[i].kv_writes.is_empty() && batch[i].poll.is_none() && batch[i].fence.is_none());
    for i in other {
        outcomes[i] = commit_one(&mut *conn, &batch[i]).await?;
    }
    let rows: Vec<(usize, &super::NewEvent)> =
        plain.iter().flat_map(|&i| batch[i].events.iter().map(move |event| (i, event))).collect();
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        // Keys retention retired are still duplicates within the dedupe window.
        let sql = format!(
            "INSERT INTO events (id, trigger_id, dedupe_key, event_type, occurred_at_ms, payload, plugin_version,
                                 received_at_ms)
             SELECT column1, column2, column3, column4, column5, column6, column7, column8 FROM ({}) AS v
             WHERE NOT EXISTS (SELECT 1 FROM dedupe_keys_retired r WHERE r.trigger_id = column2 AND r.dedupe_key = column3)
             ORDER BY column9
             ON CONFLICT (trigger_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING id",
            crate::store::values_list(chunk.len(), 9)
        );
        // Rows go in in the order given (column9), whatever plan the
        // database picks: the events' order, and the lock order.
        let mut insert = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for (position, &(i, event)) in chunk.iter().enumerate() {
            insert = insert
                .bind(&event.id)
                .bind(&batch[i].trigger_id)
                .bind(&event.dedupe_key)
                .bind(&event.event_type)
                .bind(event.occurred_at_ms)
                .bind(&event.payload)
                .bind(&batch[i].plugin_version)
                .bind(event.received_at_ms)
                .bind(i64::try_from(position).unwrap_or(i64::MAX));
        }
        let ids: Vec<String> = insert.fetch_all(&mut *conn).await?;
        inserted.extend(ids);
    }
    // Counters, summed per trigger: (received and accepted, duplicates, fuel),
    // updated in trigger order so that two nodes committing at once lock
    // the rows in the same order and never deadlock on them.
    let mut counters: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for &i in &plain {
        let delivery = &batch[i];
        let stored = delivery.events.iter().filter(|event| inserted.contains(&event.id)).count();
        outcomes[i] = CommitOutcome { stored, duplicates: delivery.events.len() - stored };
        let counter = counters.entry(&delivery.trigger_id).or_default();
        counter.0 += 1;
        counter.1 += to_i64(outcomes[i].duplicates as u64);
        counter.2 = counter.2.saturating_add(to_i64(delivery.fuel_used));
    }
    for (trigger_id, (delivered, duplicates, fuel)) in counters {
        let updated = sqlx::query(
            "UPDATE trigger_stats SET received = received + $1, accepted = accepted + $1,
                    duplicates = duplicates + $2, fuel_used = fuel_used + $3
             WHERE trigger_id = $4",
        )
        .bind(delivered)
        .bind(duplicates)
        .bind(fuel)
        .bind(trigger_id)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use crate::capabilities::kv::KvWrites;
    use crate::store::test_support::store_with_trigger;
    use crate::store::{CommitOutcome, DeliveryCommit, NewEvent, StoreError};

    fn delivery(trigger: &str, keys: &[&str]) -> DeliveryCommit {
        let events = keys
            .iter()
            .map(|key| NewEvent {
                id: format!("evt_{trigger}_{key}_{}", getrandom::u64().unwrap_or(0)),
                dedupe_key: Some((*key).to_owned()),
                event_type: "t".into(),
                occurred_at_ms: None,
                payload: "{}".into(),
                received_at_ms: 0,
            })
            .collect();
        DeliveryCommit {
            trigger_id: trigger.into(),
            plugin_version: "p@1".into(),
            events,
            fuel_used: 7,
            kv_writes: KvWrites::default(),
            poll: None,
            fence: None,
        }
    }

    /// One batch, all at once: redeliveries within the batch and of
    /// earlier batches are told apart per delivery, and the counters add up.
    #[tokio::test]
    async fn a_batch_commits_at_once_with_duplicates_counted_per_delivery() -> Result<(), StoreError> {
        let (store, _temp) = store_with_trigger("trg_a").await?;
        store.commit_deliveries(&[delivery("trg_a", &["k1"])]).await?;
        let batch = [delivery("trg_a", &["k1", "k2"]), delivery("trg_a", &["k2", "k3"]), delivery("trg_a", &[])];
        let outcomes: Vec<CommitOutcome> = store.commit_deliveries(&batch).await?.into_iter().collect::<Result<_, _>>()?;
        let counted: Vec<(usize, usize)> = outcomes.iter().map(|o| (o.stored, o.duplicates)).collect();
        assert_eq!(counted, [(1, 1), (1, 1), (0, 0)]);
        let stats = store.get_stats("trg_a").await?;
        assert_eq!((stats.received, stats.accepted, stats.duplicates, stats.fuel_used), (4, 4, 2, 28));
        Ok(())
    }

    /// A delivery whose trigger is gone fails alone: the batch falls back
    /// to one savepoint per delivery, and the others are stored.
    #[tokio::test]
    async fn one_failing_delivery_does_not_fail_the_batch() -> Result<(), StoreError> {
        let (store, _temp) = store_with_trigger("trg_a").await?;
        let batch = [delivery("trg_a", &["k1"]), delivery("trg_gone", &["k1"]), delivery("trg_a", &["k2"])];
        let outcomes = store.commit_deliveries(&batch).await?;
        assert!(matches!(outcomes[0], Ok(CommitOutcome { stored: 1, duplicates: 0 })));
        assert!(outcomes[1].is_err(), "{:?}", outcomes[1]);
        assert!(matches!(outcomes[2], Ok(CommitOutcome { stored: 1, duplicates: 0 })));
        assert_eq!(store.get_stats("trg_a").await?.accepted, 2);
        Ok(())
    }
}
