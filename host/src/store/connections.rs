//! Connections: stored credentials shared by triggers.

use super::{Store, StoreError};

/// A stored connection. `credentials` is sealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectionRow {
    /// `con_<hex>`.
    pub id: String,
    /// The plugin whose auth it satisfies.
    pub plugin: String,
    /// What operators call it.
    pub display_name: String,
    /// `secret-text`, `custom` or `oauth2`.
    pub kind: String,
    /// `connected` or `needs-reauth`.
    pub status: String,
    /// Sealed JSON of the credentials.
    pub credentials: String,
    /// Why it needs re-authorization, if it does.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

impl Store {
    /// Stores a new connection.
    pub async fn insert_connection(&self, row: &ConnectionRow) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO connections (id, plugin, display_name, kind, status, credentials, last_error, created_at_ms,
                                      updated_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(&row.plugin)
        .bind(&row.display_name)
        .bind(&row.kind)
        .bind(&row.status)
        .bind(&row.credentials)
        .bind(&row.last_error)
        .bind(row.created_at_ms)
        .bind(row.updated_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces a connection's name, status and credentials.
    pub async fn update_connection(&self, row: &ConnectionRow) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE connections SET display_name = ?, status = ?, credentials = ?, last_error = ?, updated_at_ms = ?
             WHERE id = ?",
        )
        .bind(&row.display_name)
        .bind(&row.status)
        .bind(&row.credentials)
        .bind(&row.last_error)
        .bind(row.updated_at_ms)
        .bind(&row.id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// A connection by id.
    pub async fn get_connection(&self, id: &str) -> Result<ConnectionRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM connections WHERE id = ?").bind(id).fetch_one(self.pool()).await?)
    }

    /// Every connection, oldest first.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM connections ORDER BY created_at_ms, id").fetch_all(self.pool()).await?)
    }

    /// The ids of the triggers using connection `id`.
    pub async fn triggers_using(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM triggers WHERE connection_id = ? ORDER BY id")
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes a connection no trigger uses; `NotFound` if there is none.
    pub async fn delete_connection(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM connections WHERE id = ?").bind(id).execute(self.pool()).await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
