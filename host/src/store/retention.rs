//! Retention: events and failure records past their time (or a trigger's
//! count cap) removed in bounded batches, each in its own short
//! transaction, so ingress waits at most one batch. The dedupe key of a
//! removed event is retired, not forgotten: it stays a duplicate until the
//! dedupe window ends. An event with a delivery still pending (a paused
//! destination, a long retry) is kept until it is delivered or dead.

use super::dialect::Portable;
use super::{Store, StoreError};

/// A trigger whose retention differs from the defaults.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RetentionOverride {
    /// The trigger.
    pub id: String,
    /// Its retention period, seconds, if set.
    pub retention_s: Option<i64>,
    /// Its count cap, if set.
    pub retention_events: Option<i64>,
}

impl Store {
    /// Triggers with a retention of their own.
    pub async fn retention_overrides(&self) -> Result<Vec<RetentionOverride>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, retention_s, retention_events FROM triggers
             WHERE retention_s IS NOT NULL OR retention_events IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Up to `limit` events received before `cutoff_ms`: of `trigger`, or
    /// of every trigger without a retention period of its own.
    pub async fn events_received_before(
        &self,
        trigger: Option<&str>,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let query = match trigger {
            Some(trigger) => sqlx::query_scalar(
                "SELECT seq FROM events WHERE trigger_id = $1 AND received_at_ms < $2 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq AND d.status = 'pending') ORDER BY seq LIMIT $3",
            )
            .bind(trigger),
            None => sqlx::query_scalar(
                "SELECT seq FROM events
                 WHERE received_at_ms < $1
                   AND trigger_id NOT IN (SELECT id FROM triggers WHERE retention_s IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq AND d.status = 'pending')
                 ORDER BY received_at_ms LIMIT $2",
            ),
        };
        Ok(query.bind(cutoff_ms).bind(limit).fetch_all(self.pool()).await?)
    }

    /// Up to `limit` of `trigger`'s oldest events beyond its newest `keep`.
    pub async fn events_beyond(&self, trigger: &str, keep: i64, limit: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT seq FROM events WHERE trigger_id = $1 AND seq <=
                (SELECT seq FROM events WHERE trigger_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq AND d.status = 'pending')
             ORDER BY seq LIMIT $3",
        )
        .bind(trigger)
        .bind(keep)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Removes the events `seqs`, retiring their dedupe keys until
    /// `received_at + dedupe_window_ms` where that is after `now_ms`.
    pub async fn remove_events(&self, seqs: &[i64], now_ms: i64, dedupe_window_ms: i64) -> Result<u64, StoreError> {
        if seqs.is_empty() {
            return Ok(0);
        }
        let list = super::dialect::json_array(seqs)?;
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        static RETIRE_KEYS: Portable = Portable::new(
            "INSERT INTO dedupe_keys_retired (trigger_id, dedupe_key, until_ms)
             SELECT trigger_id, dedupe_key, received_at_ms + $1 FROM events
             WHERE seq IN (SELECT CAST(value AS BIGINT) FROM {json:$2}) AND dedupe_key IS NOT NULL
               AND received_at_ms + $1 > $3
             ON CONFLICT (trigger_id, dedupe_key) DO UPDATE SET until_ms = excluded.until_ms",
        );
        static REMOVE: Portable = Portable::new(
            "DELETE FROM events WHERE seq IN (SELECT CAST(value AS BIGINT) FROM {json:$1})
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq AND d.status = 'pending')",
        );
        sqlx::query(RETIRE_KEYS.sql(self.dialect))
            .bind(dedupe_window_ms)
            .bind(&list)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query(REMOVE.sql(self.dialect)).bind(&list).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// Removes up to `limit` failure records from before `cutoff_ms`.
    pub async fn remove_failures_before(&self, cutoff_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query(
            "DELETE FROM trigger_failures WHERE seq IN
                (SELECT seq FROM trigger_failures WHERE at_ms < $1 ORDER BY seq LIMIT $2)",
        )
        .bind(cutoff_ms)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Forgets up to `limit` retired dedupe keys whose window ended.
    pub async fn expire_retired_keys(&self, now_ms: i64, limit: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query(
            "DELETE FROM dedupe_keys_retired WHERE (trigger_id, dedupe_key) IN
                (SELECT trigger_id, dedupe_key FROM dedupe_keys_retired WHERE until_ms < $1 LIMIT $2)",
        )
        .bind(now_ms)
        .bind(limit)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Deleted triggers kept for their events, once none is left.
    pub async fn deleted_triggers_without_events(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM triggers WHERE status = 'deleted'
               AND NOT EXISTS (SELECT 1 FROM events WHERE events.trigger_id = triggers.id)",
        )
        .fetch_all(self.pool())
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::capabilities::kv::KvWrites;
    use crate::store::test_support::store_with_trigger;
    use crate::store::{DeliveryCommit, NewEvent, StoreError};

    fn delivery(key: &str, received_at_ms: i64) -> DeliveryCommit {
        DeliveryCommit {
            trigger_id: "trg_a".into(),
            plugin_version: "p@1".into(),
            events: vec![NewEvent {
                id: format!("evt_{key}_{received_at_ms}"),
                dedupe_key: Some(key.into()),
                event_type: "t".into(),
                occurred_at_ms: None,
                payload: "{}".into(),
                received_at_ms,
            }],
            fuel_used: 0,
            kv_writes: KvWrites::default(),
            poll: None,
            fence: None,
        }
    }

    async fn stored(store: &crate::store::Store, commit: DeliveryCommit) -> Result<usize, StoreError> {
        let outcomes = store.commit_deliveries(&[commit]).await?;
        Ok(outcomes.into_iter().next().ok_or(StoreError::NotFound)??.stored)
    }

    /// An old event is removed with its dedupe key retired: within the
    /// window a redelivery is a duplicate (through both insert paths),
    /// after it the key is forgotten.
    #[tokio::test]
    async fn removed_events_keep_their_dedupe_key_for_the_window() -> Result<(), StoreError> {
        let (store, _temp) = store_with_trigger("trg_a").await?;
        assert_eq!(stored(&store, delivery("old", 1_000)).await?, 1);
        assert_eq!(stored(&store, delivery("new", 50_000)).await?, 1);
        let old = store.events_received_before(None, 10_000, 100).await?;
        assert_eq!(old.len(), 1);
        assert_eq!(store.remove_events(&old, 20_000, 60_000).await?, 1);
        assert!(store.events_received_before(None, 10_000, 100).await?.is_empty());
        // The bulk path, then the one-at-a-time path (a kv write takes it).
        assert_eq!(stored(&store, delivery("old", 30_000)).await?, 0, "still a duplicate");
        let mut with_kv = delivery("old", 30_000);
        with_kv.kv_writes = KvWrites { trigger_id: "trg_a".into(), entries: [("k".to_owned(), Some(b"v".to_vec()))].into(), ..KvWrites::default() };
        assert_eq!(stored(&store, with_kv).await?, 0, "still a duplicate");
        assert_eq!(store.expire_retired_keys(61_001, 100).await?, 1);
        assert_eq!(stored(&store, delivery("old", 70_000)).await?, 1, "the window is over");
        Ok(())
    }

    #[tokio::test]
    async fn a_count_cap_keeps_the_newest() -> Result<(), StoreError> {
        let (store, _temp) = store_with_trigger("trg_a").await?;
        for n in 0..5 {
            stored(&store, delivery(&format!("k{n}"), 1_000 + n)).await?;
        }
        let beyond = store.events_beyond("trg_a", 2, 100).await?;
        assert_eq!(beyond.len(), 3);
        store.remove_events(&beyond, 2_000, 0).await?;
        let (left, _) = store.list_events("trg_a", 10, None, 1 << 20).await?;
        let keys: Vec<_> = left.iter().filter_map(|e| e.dedupe_key.clone()).collect();
        assert_eq!(keys, ["k4", "k3"]);
        Ok(())
    }
}
