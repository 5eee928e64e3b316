//! Plugins and their versions.

use super::{Store, StoreError, now_ms};

/// A plugin and its active version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginRow {
    /// Manifest name.
    pub name: String,
    /// The version serving triggers that pin none.
    pub active_version: String,
    /// First upload.
    pub created_at_ms: i64,
    /// Last activation or upload.
    pub updated_at_ms: i64,
}

/// One uploaded version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginVersionRow {
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Component size.
    pub size_bytes: i64,
    /// The manifest as JSON.
    pub manifest: String,
    /// Upload time.
    pub created_at_ms: i64,
}

/// The outcome of registering a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionInsert {
    /// Registered; `first` when it created the plugin (and is now active).
    Created {
        /// Whether this was the plugin's first version.
        first: bool,
    },
    /// The same name, version and bytes were already registered.
    AlreadyPresent,
    /// The same name and version exist with other bytes.
    Conflict {
        /// The digest already registered.
        existing_digest: String,
    },
}

impl Store {
    /// Registers a version; the first version of a plugin becomes active.
    pub async fn insert_plugin_version(&self, row: &PluginVersionRow) -> Result<VersionInsert, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin_with("BEGIN IMMEDIATE").await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT digest FROM plugin_versions WHERE name = ? AND version = ?")
                .bind(&row.name)
                .bind(&row.version)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing_digest) = existing {
            return Ok(if existing_digest == row.digest {
                VersionInsert::AlreadyPresent
            } else {
                VersionInsert::Conflict { existing_digest }
            });
        }
        let created = sqlx::query(
            "INSERT INTO plugins (name, active_version, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&row.name)
        .bind(&row.version)
        .bind(row.created_at_ms)
        .bind(row.created_at_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO plugin_versions (name, version, digest, size_bytes, manifest, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.name)
        .bind(&row.version)
        .bind(&row.digest)
        .bind(row.size_bytes)
        .bind(&row.manifest)
        .bind(row.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(VersionInsert::Created { first: created.rows_affected() == 1 })
    }

    /// Whether any version's component has this digest.
    pub async fn digest_in_use(&self, digest: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT 1 FROM plugin_versions WHERE digest = ? LIMIT 1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await?
            .is_some())
    }

    /// Every plugin's allowance (JSON), by name.
    pub async fn all_allowances(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT name, allowance FROM plugin_grants").fetch_all(self.pool()).await?)
    }

    /// Sets what the operator allows a plugin; `NotFound` if there is no such plugin.
    pub async fn set_allowance(&self, name: &str, allowance: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO plugin_grants (name, allowance, updated_at_ms)
             SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM plugins WHERE name = ?)
             ON CONFLICT (name) DO UPDATE SET allowance = excluded.allowance, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(name)
        .bind(allowance)
        .bind(now_ms())
        .bind(name)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Every plugin, by name.
    pub async fn list_plugins(&self) -> Result<Vec<PluginRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugins ORDER BY name").fetch_all(self.pool()).await?)
    }

    /// One plugin.
    pub async fn get_plugin(&self, name: &str) -> Result<PluginRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugins WHERE name = ?").bind(name).fetch_one(self.pool()).await?)
    }

    /// A plugin's versions, oldest first.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<PluginVersionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugin_versions WHERE name = ? ORDER BY created_at_ms, version")
            .bind(name)
            .fetch_all(self.pool())
            .await?)
    }

    /// Every version of every plugin (loaded at start).
    pub async fn all_versions(&self) -> Result<Vec<PluginVersionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugin_versions ORDER BY name, created_at_ms").fetch_all(self.pool()).await?)
    }

    /// Makes `version` the active one; `NotFound` if it was never uploaded.
    pub async fn set_active_version(&self, name: &str, version: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE plugins SET active_version = ?, updated_at_ms = ?
             WHERE name = ? AND EXISTS (SELECT 1 FROM plugin_versions WHERE name = ? AND version = ?)",
        )
        .bind(version)
        .bind(now_ms())
        .bind(name)
        .bind(name)
        .bind(version)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
