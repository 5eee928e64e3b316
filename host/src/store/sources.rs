//! Sources: one registration at the provider shared by several triggers
//! (contract 0.3.0 `sharing`), and their members.

use super::{Store, StoreError, TriggerRow, now_ms};

/// A stored source.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SourceRow {
    /// Unguessable id (`src_...`), also its webhook path.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Which of the manifest's triggers its members are.
    pub trigger_name: String,
    /// The members' connection; empty for none.
    pub connection_id: String,
    /// The key fields' values, canonical JSON.
    pub source_key: String,
    /// The config (secret props sealed) last registered.
    pub config: String,
    /// Sealed signing secret.
    pub secret: Option<String>,
    /// Sealed secrets the provider issued.
    pub issued_secrets: Option<String>,
    /// `disabled` (not registered), `enabled` (registered) or `error`.
    pub status: String,
    /// Why the last registration call failed.
    pub last_error: Option<String>,
    /// When the registration expires.
    pub expires_at_ms: Option<i64>,
    /// When `sync` last ran.
    pub synced_at_ms: Option<i64>,
    /// What the last `sync` failed with.
    pub sync_error: Option<String>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

/// Who a key identifies: a plugin's trigger definition on one connection.
#[derive(Debug, Clone, Copy)]
pub struct SourceKey<'a> {
    /// Plugin name.
    pub plugin: &'a str,
    /// Trigger definition.
    pub trigger_name: &'a str,
    /// Connection, empty for none.
    pub connection_id: &'a str,
    /// The key fields' values, canonical JSON.
    pub key: &'a str,
}

impl Store {
    /// The source for `key`, inserting `new` when there is none yet.
    pub async fn source_for(&self, key: SourceKey<'_>, new: &SourceRow) -> Result<SourceRow, StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO sources (id, plugin, trigger_name, connection_id, source_key, config, secret, status,
                                  created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'disabled', $8, $9)
             ON CONFLICT (plugin, trigger_name, connection_id, source_key) DO NOTHING",
        )
        .bind(&new.id)
        .bind(key.plugin)
        .bind(key.trigger_name)
        .bind(key.connection_id)
        .bind(key.key)
        .bind(&new.config)
        .bind(&new.secret)
        .bind(new.created_at_ms)
        .bind(new.created_at_ms)
        .execute(self.pool())
        .await?;
        Ok(sqlx::query_as(
            "SELECT * FROM sources WHERE plugin = $1 AND trigger_name = $2 AND connection_id = $3 AND source_key = $4",
        )
        .bind(key.plugin)
        .bind(key.trigger_name)
        .bind(key.connection_id)
        .bind(key.key)
        .fetch_one(self.pool())
        .await?)
    }

    /// One source.
    pub async fn get_source(&self, id: &str) -> Result<SourceRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM sources WHERE id = $1").bind(id).fetch_one(self.pool()).await?)
    }

    /// Every source, oldest first.
    pub async fn list_sources(&self) -> Result<Vec<SourceRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM sources ORDER BY created_at_ms, id").fetch_all(self.pool()).await?)
    }

    /// A source's triggers, oldest first.
    pub async fn source_members(&self, id: &str) -> Result<Vec<TriggerRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM triggers WHERE source_id = $1 ORDER BY created_at_ms, id")
            .bind(id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Moves a trigger into a source, or out of any.
    pub async fn set_trigger_source(&self, trigger_id: &str, source_id: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("UPDATE triggers SET source_id = $1, updated_at_ms = $2 WHERE id = $3")
            .bind(source_id)
            .bind(now_ms())
            .bind(trigger_id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Records a registration call's result: the config now registered
    /// (when it succeeded), status, error and expiry.
    pub async fn set_source_registration(
        &self,
        id: &str,
        config: Option<&str>,
        status: &str,
        last_error: Option<&str>,
        expires_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE sources SET config = coalesce($1, config), status = $2, last_error = $3, expires_at_ms = $4,
                                updated_at_ms = $5
             WHERE id = $6",
        )
        .bind(config)
        .bind(status)
        .bind(last_error)
        .bind(expires_at_ms)
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Keeps the (sealed) secrets the provider issued to a source.
    pub async fn set_source_issued_secrets(&self, id: &str, sealed: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE sources SET issued_secrets = $1 WHERE id = $2").bind(sealed).bind(id).execute(self.pool()).await?;
        Ok(())
    }

    /// Records what `sync` found, for a source or an unshared trigger.
    pub async fn set_synced(&self, id: &str, error: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let statement = if id.starts_with(SOURCE_ID_PREFIX) {
            "UPDATE sources SET synced_at_ms = $1, sync_error = $2 WHERE id = $3"
        } else {
            "UPDATE triggers SET synced_at_ms = $1, sync_error = $2 WHERE id = $3"
        };
        sqlx::query(statement)
            .bind(now_ms())
            .bind(error)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes a source that no trigger belongs to any more, with its kv
    /// entries; a source that gained a member meanwhile is kept.
    pub async fn delete_source_if_empty(&self, id: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        let deleted = sqlx::query("DELETE FROM sources WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM triggers WHERE source_id = $2)")
            .bind(id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            sqlx::query("DELETE FROM kv_entries WHERE trigger_id = $1").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }
}

/// What every source id starts with.
pub const SOURCE_ID_PREFIX: &str = "src_";
