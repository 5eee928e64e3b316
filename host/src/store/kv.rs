//! Key-value entries of triggers: the backend of the `kv` capability, the
//! writes of successful calls (inside the commit of their events), and the
//! operator's view. Every query names its trigger; prefixes are compared
//! as literal text, never as `LIKE` patterns.

use serde::Serialize;

use super::{Store, StoreError, now_ms};
use crate::capabilities::kv::{BoxFuture, KvBackend, KvUsage, KvWrites};

/// One entry as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct KvEntryView {
    /// The key.
    pub key: String,
    /// Bytes of the value.
    pub size_bytes: i64,
    /// The value, only when asked for: as text if it is UTF-8, else `hex:` and its bytes in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Last write (Unix ms).
    pub updated_at_ms: i64,
}

impl KvBackend for Store {
    fn get<'a>(&'a self, trigger: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT value FROM kv_entries WHERE trigger_id = $1 AND key = $2")
                .bind(trigger)
                .bind(key)
                .fetch_optional(self.pool())
                .await
                .map_err(|e| StoreError::from(e).to_string())
        })
    }

    fn list_keys<'a>(&'a self, trigger: &'a str, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            sqlx::query_scalar(
                "SELECT key FROM kv_entries WHERE trigger_id = $1 AND substr(key, 1, length($2)) = $2 ORDER BY key",
            )
            .bind(trigger)
            .bind(prefix)
            .fetch_all(self.pool())
            .await
            .map_err(|e| StoreError::from(e).to_string())
        })
    }

    fn entry_size<'a>(&'a self, trigger: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>> {
        Box::pin(async move {
            let size: Option<i64> = sqlx::query_scalar(
                "SELECT octet_length(key) + octet_length(value) FROM kv_entries WHERE trigger_id = $1 AND key = $2",
            )
            .bind(trigger)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| StoreError::from(e).to_string())?;
            Ok(size.map(|s| usize::try_from(s).unwrap_or(usize::MAX)))
        })
    }

    fn usage<'a>(&'a self, trigger: &'a str) -> BoxFuture<'a, Result<KvUsage, String>> {
        Box::pin(async move { usage(self.pool(), trigger).await.map_err(|e| e.to_string()) })
    }
}

async fn usage<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(executor: E, trigger: &str) -> Result<KvUsage, StoreError> {
    let (keys, bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), CAST(coalesce(sum(octet_length(key) + octet_length(value)), 0) AS BIGINT)
         FROM kv_entries WHERE trigger_id = $1",
    )
    .bind(trigger)
    .fetch_one(executor)
    .await?;
    let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(KvUsage { keys: size(keys), bytes: size(bytes) })
}

/// Applies a call's writes inside the caller's transaction, then checks the
/// quota once more: calls of one trigger that ran at once each checked it
/// alone, so together they could pass it. Over quota fails the commit.
pub(super) async fn apply(conn: &mut sqlx::AnyConnection, writes: &KvWrites) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    for (key, value) in &writes.entries {
        match value {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO kv_entries (trigger_id, key, value, updated_at_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (trigger_id, key) DO UPDATE SET value = excluded.value,
                                                                  updated_at_ms = excluded.updated_at_ms",
                )
                .bind(&writes.trigger_id)
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM kv_entries WHERE trigger_id = $1 AND key = $2")
                    .bind(&writes.trigger_id)
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    let now_held = usage(&mut *conn, &writes.trigger_id).await?;
    if now_held.keys > writes.quota.max_keys || now_held.bytes > writes.quota.max_total_bytes {
        return Err(StoreError::Quota(format!(
            "trigger {} would hold {} kv keys and {} bytes (limits {} and {})",
            writes.trigger_id, now_held.keys, now_held.bytes, writes.quota.max_keys, writes.quota.max_total_bytes
        )));
    }
    Ok(())
}

impl Store {
    /// Commits the writes of a successful call that produced no events
    /// (`on-enable`, `on-disable`, a handshake).
    pub async fn commit_kv(&self, writes: &KvWrites) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        if writes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write(self.pool()).await?;
        apply(&mut tx, writes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A trigger's entries, by key, with values only if `with_values`.
    pub async fn kv_entries(&self, trigger: &str, with_values: bool) -> Result<Vec<KvEntryView>, StoreError> {
        let rows: Vec<(String, Vec<u8>, i64)> =
            sqlx::query_as("SELECT key, value, updated_at_ms FROM kv_entries WHERE trigger_id = $1 ORDER BY key")
                .bind(trigger)
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key, value, updated_at_ms)| KvEntryView {
                key,
                size_bytes: i64::try_from(value.len()).unwrap_or(i64::MAX),
                value: with_values.then(|| match String::from_utf8(value) {
                    Ok(text) => text,
                    Err(bytes) => format!("hex:{}", hex::encode(bytes.as_bytes())),
                }),
                updated_at_ms,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::capabilities::kv::KvQuota;
    use crate::store::test_support::store_with_trigger;

    fn writes(keys: &[&str], quota: KvQuota) -> KvWrites {
        let entries: BTreeMap<String, Option<Vec<u8>>> = keys.iter().map(|k| ((*k).to_owned(), Some(b"v".to_vec()))).collect();
        KvWrites { trigger_id: "trg_a".into(), entries, quota }
    }

    /// Two calls of one trigger that ran at once each checked the quota
    /// alone; the commit that would pass it together fails, whole.
    #[tokio::test]
    async fn the_quota_is_checked_again_at_commit() -> Result<(), StoreError> {
        let (store, _temp) = store_with_trigger("trg_a").await?;
        let quota = KvQuota { max_keys: 3, ..KvQuota::default() };
        store.commit_kv(&writes(&["a", "b"], quota)).await?;
        let over = store.commit_kv(&writes(&["c", "d"], quota)).await;
        assert!(matches!(over, Err(StoreError::Quota(_))), "{over:?}");
        let keys = KvBackend::list_keys(&store, "trg_a", "").await.map_err(StoreError::Database)?;
        assert_eq!(keys, ["a", "b"], "nothing of the refused commit is kept");
        Ok(())
    }
}
