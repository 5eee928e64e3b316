//! Triggers: a plugin's trigger with an integrator's config and secret.

use super::{Store, StoreError, now_ms};

/// A stored trigger.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TriggerRow {
    /// Unguessable id, also the webhook path.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Pinned version; `None` follows the active one.
    pub plugin_version: Option<String>,
    /// Which of the manifest's triggers.
    pub trigger_name: String,
    /// Config JSON, validated against the trigger's schema.
    pub config: String,
    /// Signing secret.
    pub secret: Option<String>,
    /// Poll interval for polling triggers.
    pub poll_interval_s: Option<i64>,
    /// `created`, `enabled`, `disabled` or `error`.
    pub status: String,
    /// The connector's message when enabling failed, or the last failure.
    pub last_error: Option<String>,
    /// When a provider subscription expires.
    pub expires_at_ms: Option<i64>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
    /// Secrets the provider issued at registration: sealed JSON
    /// `[[name, value], ...]` (the last column, added by migration 0005).
    pub issued_secrets: Option<String>,
    /// The connection it uses (migration 0006).
    pub connection_id: Option<String>,
    /// The source whose registration it shares (migration 0007).
    pub source_id: Option<String>,
    /// When `sync` last checked its own registration.
    pub synced_at_ms: Option<i64>,
    /// What the last `sync` failed with.
    pub sync_error: Option<String>,
    /// Host-side filters, a JSON list of rules.
    pub filters: Option<String>,
    /// Its retention period, seconds (migration 0008); `None` follows `[retention]`.
    pub retention_s: Option<i64>,
    /// Its count cap; `None` follows `[retention]`.
    pub retention_events: Option<i64>,
    /// When enabling is tried again after a failure (migration 0009).
    pub retry_at_ms: Option<i64>,
    /// Failed enables in a row.
    pub retry_failures: i64,
}

/// Fields a PATCH may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TriggerPatch {
    /// New config (already validated).
    pub config: Option<String>,
    /// New secret (`Some(None)` clears it).
    pub secret: Option<Option<String>>,
    /// New pin (`Some(None)` follows the active version).
    pub plugin_version: Option<Option<String>>,
    /// New poll interval.
    pub poll_interval_s: Option<Option<i64>>,
    /// New connection (`Some(None)` uses none).
    pub connection_id: Option<Option<String>>,
    /// New filters, JSON (`Some(None)` removes them).
    pub filters: Option<Option<String>>,
    /// New retention period (`Some(None)` follows the defaults).
    pub retention_s: Option<Option<i64>>,
    /// New count cap (`Some(None)` follows the defaults).
    pub retention_events: Option<Option<i64>>,
}

impl Store {
    /// Stores a new trigger with its zeroed stats, in one transaction.
    pub async fn insert_trigger(&self, row: &TriggerRow) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        sqlx::query(
            "INSERT INTO triggers (id, plugin, plugin_version, trigger_name, config, secret, poll_interval_s,
                                   status, last_error, expires_at_ms, created_at_ms, updated_at_ms, connection_id,
                                   source_id, filters, retention_s, retention_events)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&row.id)
        .bind(&row.plugin)
        .bind(&row.plugin_version)
        .bind(&row.trigger_name)
        .bind(&row.config)
        .bind(&row.secret)
        .bind(row.poll_interval_s)
        .bind(&row.status)
        .bind(&row.last_error)
        .bind(row.expires_at_ms)
        .bind(row.created_at_ms)
        .bind(row.updated_at_ms)
        .bind(&row.connection_id)
        .bind(&row.source_id)
        .bind(&row.filters)
        .bind(row.retention_s)
        .bind(row.retention_events)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO trigger_stats (trigger_id) VALUES ($1)").bind(&row.id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One trigger.
    pub async fn get_trigger(&self, id: &str) -> Result<TriggerRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM triggers WHERE id = $1").bind(id).fetch_one(self.pool()).await?)
    }

    /// Every trigger's id.
    pub async fn list_trigger_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM triggers ORDER BY created_at_ms, id").fetch_all(self.pool()).await?)
    }

    /// Every trigger, oldest first.
    pub async fn list_triggers(&self) -> Result<Vec<TriggerRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM triggers ORDER BY created_at_ms, id").fetch_all(self.pool()).await?)
    }

    /// Applies a patch and returns the updated trigger.
    pub async fn patch_trigger(&self, id: &str, patch: &TriggerPatch) -> Result<TriggerRow, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        let mut row: TriggerRow =
            sqlx::query_as("SELECT * FROM triggers WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
        if let Some(config) = &patch.config {
            row.config = config.clone();
        }
        if let Some(secret) = &patch.secret {
            row.secret = secret.clone();
        }
        if let Some(version) = &patch.plugin_version {
            row.plugin_version = version.clone();
        }
        if let Some(interval) = patch.poll_interval_s {
            row.poll_interval_s = interval;
        }
        if let Some(connection) = &patch.connection_id {
            row.connection_id = connection.clone();
        }
        if let Some(filters) = &patch.filters {
            row.filters = filters.clone();
        }
        if let Some(retention) = patch.retention_s {
            row.retention_s = retention;
        }
        if let Some(cap) = patch.retention_events {
            row.retention_events = cap;
        }
        row.updated_at_ms = now_ms();
        sqlx::query(
            "UPDATE triggers SET config = $1, secret = $2, plugin_version = $3, poll_interval_s = $4, connection_id = $5,
                                 filters = $6, retention_s = $7, retention_events = $8, updated_at_ms = $9
             WHERE id = $10",
        )
        .bind(&row.config)
        .bind(&row.secret)
        .bind(&row.plugin_version)
        .bind(row.poll_interval_s)
        .bind(&row.connection_id)
        .bind(&row.filters)
        .bind(row.retention_s)
        .bind(row.retention_events)
        .bind(row.updated_at_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Rewrites a trigger's config and secret with their secrets sealed.
    pub async fn set_trigger_sealed(&self, id: &str, config: &str, secret: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE triggers SET config = $1, secret = $2 WHERE id = $3")
            .bind(config)
            .bind(secret)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a lifecycle transition.
    pub async fn set_trigger_status(
        &self,
        id: &str,
        status: &str,
        last_error: Option<&str>,
        expires_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE triggers SET status = $1, last_error = $2, expires_at_ms = $3, updated_at_ms = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(last_error)
        .bind(expires_at_ms)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Schedules the next automatic enable (`None`: none), counting failures.
    pub async fn set_enable_retry(&self, id: &str, at_ms: Option<i64>, failures: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE triggers SET retry_at_ms = $1, retry_failures = $2 WHERE id = $3")
            .bind(at_ms)
            .bind(failures)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Triggers whose automatic enable is due.
    pub async fn due_enable_retries(&self, now_ms: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM triggers WHERE retry_at_ms <= $1 ORDER BY retry_at_ms LIMIT $2")
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// Keeps the (sealed) secrets the provider issued, replacing those kept.
    pub async fn set_issued_secrets(&self, id: &str, sealed: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("UPDATE triggers SET issued_secrets = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Deletes a trigger with its events, stats, failures, logs and kv entries.
    pub async fn delete_trigger(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        // Foreign keys cascade the rest; kv entries have an owner of either
        // kind (a trigger or a source), not a foreign key.
        let done = sqlx::query("DELETE FROM triggers WHERE id = $1").bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM kv_entries WHERE trigger_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM dedupe_keys_retired WHERE trigger_id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        // Its logs after, on their own: in the transaction, their rows could
        // deadlock with the log writer trimming the same trigger (seen on
        // PostgreSQL as a 503 on delete). Losing this race leaves at most a
        // ring of diagnostics behind, never a failed delete.
        if let Err(error) = sqlx::query("DELETE FROM call_logs WHERE trigger_id = $1").bind(id).execute(&self.relaxed).await {
            tracing::warn!(trigger = %id, %error, "a deleted trigger's connector logs were not removed");
        }
        Ok(())
    }
}
