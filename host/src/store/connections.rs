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
    /// A sealed OAuth2 refresh token.
    pub refresh_token: Option<String>,
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
            "INSERT INTO connections (id, plugin, display_name, kind, status, credentials, refresh_token, last_error,
                                      created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&row.id)
        .bind(&row.plugin)
        .bind(&row.display_name)
        .bind(&row.kind)
        .bind(&row.status)
        .bind(&row.credentials)
        .bind(&row.refresh_token)
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
            "UPDATE connections SET display_name = $1, status = $2, credentials = $3, refresh_token = $4, last_error = $5,
                                    updated_at_ms = $6
             WHERE id = $7",
        )
        .bind(&row.display_name)
        .bind(&row.status)
        .bind(&row.credentials)
        .bind(&row.refresh_token)
        .bind(&row.last_error)
        .bind(row.updated_at_ms)
        .bind(&row.id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// A connection by id.
    pub async fn get_connection(&self, id: &str) -> Result<ConnectionRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM connections WHERE id = $1").bind(id).fetch_one(self.pool()).await?)
    }

    /// Every connection, oldest first.
    pub async fn list_connections(&self) -> Result<Vec<ConnectionRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM connections ORDER BY created_at_ms, id").fetch_all(self.pool()).await?)
    }

    /// The ids of the triggers using connection `id`.
    pub async fn triggers_using(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM triggers WHERE connection_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes a connection no trigger uses; `NotFound` if there is none.
    pub async fn delete_connection(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM connections WHERE id = $1").bind(id).execute(self.pool()).await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Sets a plugin's OAuth2 client (the secret already sealed).
    pub async fn set_oauth_app(&self, app: &OAuthAppRow) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO oauth_apps (plugin, client_id, client_secret, authorize_url, token_url, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (plugin) DO UPDATE SET client_id = $2, client_secret = $3, authorize_url = $4, token_url = $5,
                                                updated_at_ms = $6",
        )
        .bind(&app.plugin)
        .bind(&app.client_id)
        .bind(&app.client_secret)
        .bind(&app.authorize_url)
        .bind(&app.token_url)
        .bind(app.updated_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A plugin's OAuth2 client, if the operator registered one.
    pub async fn oauth_app(&self, plugin: &str) -> Result<Option<OAuthAppRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM oauth_apps WHERE plugin = $1").bind(plugin).fetch_optional(self.pool()).await?)
    }
}

/// A plugin's OAuth2 client. `client_secret` is sealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OAuthAppRow {
    /// The plugin.
    pub plugin: String,
    /// The client id the provider issued.
    pub client_id: String,
    /// The sealed client secret.
    pub client_secret: String,
    /// Overrides the manifest's authorization endpoint.
    pub authorize_url: Option<String>,
    /// Overrides the manifest's token endpoint.
    pub token_url: Option<String>,
    /// Last change.
    pub updated_at_ms: i64,
}
