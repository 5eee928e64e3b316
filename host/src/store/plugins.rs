//! Plugins and their versions.

use super::{Store, StoreError, now_ms};

/// A plugin and its active version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PluginRow {
    /// Manifest name.
    pub name: String,
    /// The version serving triggers that pin none.
    pub active_version: String,
    /// The version active before the last swap: what a rollback activates.
    pub previous_version: Option<String>,
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

/// The outcome of deleting a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionDelete {
    /// Deleted; `digest_unused` when no other version has its bytes.
    Deleted {
        /// The component's digest.
        digest: String,
        /// Whether no other version has the same bytes.
        digest_unused: bool,
    },
    /// Kept, because something uses it: why.
    InUse(String),
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
        let mut tx = self.begin_write(self.pool()).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT digest FROM plugin_versions WHERE name = $1 AND version = $2")
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
            "INSERT INTO plugins (name, active_version, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4)
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
             VALUES ($1, $2, $3, $4, $5, $6)",
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
        Ok(sqlx::query_scalar::<_, i64>("SELECT 1 FROM plugin_versions WHERE digest = $1 LIMIT 1")
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
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM plugins WHERE name = $4)
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
        Ok(sqlx::query_as("SELECT * FROM plugins WHERE name = $1").bind(name).fetch_one(self.pool()).await?)
    }

    /// A plugin's versions, oldest first.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<PluginVersionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugin_versions WHERE name = $1 ORDER BY created_at_ms, version")
            .bind(name)
            .fetch_all(self.pool())
            .await?)
    }

    /// One version; `NotFound` if it was never uploaded (or was deleted).
    pub async fn get_version(&self, name: &str, version: &str) -> Result<PluginVersionRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugin_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_one(self.pool())
            .await?)
    }

    /// The versions triggers serve: each plugin's active one and every
    /// version a trigger pins, as `(name, version)`.
    pub async fn versions_in_use(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, active_version FROM plugins
             UNION SELECT plugin, plugin_version FROM triggers WHERE plugin_version IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Every version of every plugin.
    pub async fn all_versions(&self) -> Result<Vec<PluginVersionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM plugin_versions ORDER BY name, created_at_ms").fetch_all(self.pool()).await?)
    }

    /// Makes `version` the active one; `NotFound` if it was never uploaded.
    pub async fn set_active_version(&self, name: &str, version: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE plugins SET active_version = $1, updated_at_ms = $2,
                 previous_version = CASE WHEN active_version = $1 THEN previous_version ELSE active_version END
             WHERE name = $3 AND EXISTS (SELECT 1 FROM plugin_versions WHERE name = $3 AND version = $1)",
        )
        .bind(version)
        .bind(now_ms())
        .bind(name)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Deletes a version that is neither active nor pinned by a trigger,
    /// checked in the transaction that deletes it.
    pub async fn delete_plugin_version(&self, name: &str, version: &str) -> Result<VersionDelete, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write(self.pool()).await?;
        let active: String =
            sqlx::query_scalar("SELECT active_version FROM plugins WHERE name = $1").bind(name).fetch_one(&mut *tx).await?;
        if active == version {
            return Ok(VersionDelete::InUse("it is the active version".into()));
        }
        let pinned: i64 = sqlx::query_scalar("SELECT count(*) FROM triggers WHERE plugin = $1 AND plugin_version = $2")
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        if pinned > 0 {
            return Ok(VersionDelete::InUse(format!("{pinned} trigger(s) pin it")));
        }
        let digest: String = sqlx::query_scalar("DELETE FROM plugin_versions WHERE name = $1 AND version = $2 RETURNING digest")
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE plugins SET previous_version = NULL WHERE name = $1 AND previous_version = $2")
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        let in_use: Option<i64> = sqlx::query_scalar("SELECT 1 FROM plugin_versions WHERE digest = $1 LIMIT 1")
            .bind(&digest)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(VersionDelete::Deleted { digest_unused: in_use.is_none(), digest })
    }
}
