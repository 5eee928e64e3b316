//! Connections: an account's credentials at a provider, of the kind the
//! plugin's manifest declares (`auth`), created by operators and shared by
//! the triggers that use them. Credentials are sealed at rest, opened into
//! memory once, and never shown: calls see them in their context, the API
//! shows the kind and status only.

mod oauth;
mod refresh;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::contract::{AccessToken, Auth, Credentials};
use crate::registry::{Registry, RegistryError};
use crate::secrets::{SecretBox, SecretError};
use crate::store::{ConnectionRow, Store, StoreError, now_ms};

pub use oauth::{CALLBACK_PATH, OAuthAppRequest, OAuthAppView, StartedFlow, pkce_challenge};
pub use refresh::said_unauthorized;

/// A connection's status.
pub mod status {
    /// Its credentials work, as far as the host knows.
    pub const CONNECTED: &str = "connected";
    /// Its credentials stopped working; an operator must authorize again.
    pub const NEEDS_REAUTH: &str = "needs-reauth";
}

/// Why a connection operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No such connection.
    #[error("no connection {0}")]
    NotFound(String),
    /// The plugin does not exist.
    #[error(transparent)]
    Plugin(#[from] RegistryError),
    /// The plugin's manifest declares no auth to connect with.
    #[error("plugin {0} declares no auth (its manifest's auth is none)")]
    NoAuth(String),
    /// The credentials do not fit the plugin's auth.
    #[error("credentials: {0}")]
    InvalidCredentials(String),
    /// Triggers use it.
    #[error("connection {id} is used by {} trigger(s)", triggers.len())]
    InUse {
        /// The connection.
        id: String,
        /// The triggers using it.
        triggers: Vec<String>,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// No randomness for an id.
    #[error("cannot generate an id: {0}")]
    Random(#[from] getrandom::Error),
    /// The provider's token endpoint failed (transport, 5xx): try again later.
    #[error("{0}")]
    Upstream(String),
    /// The provider's token endpoint refused (4xx: a revoked refresh token,
    /// a wrong client): the connection needs re-authorization.
    #[error("{0}")]
    Refused(String),
}

/// `POST /api/v1/connections`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    /// The plugin whose auth it satisfies.
    pub plugin: String,
    /// What operators call it, e.g. `Acme production`.
    pub display_name: String,
    /// The credentials: a string for `secret-text`; an object of the
    /// declared props for `custom`; `{"access_token", "expires_at_ms"?,
    /// "scopes"?}` for `oauth2` tokens obtained elsewhere.
    pub credentials: serde_json::Value,
}

/// A connection as the API shows it: never its credentials.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    /// `con_<hex>`.
    pub id: String,
    /// The plugin.
    pub plugin: String,
    /// Its name.
    pub display_name: String,
    /// `secret-text`, `custom` or `oauth2`.
    pub kind: String,
    /// `connected` or `needs-reauth`.
    pub status: String,
    /// Why it needs re-authorization.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

impl From<&ConnectionRow> for ConnectionView {
    fn from(row: &ConnectionRow) -> Self {
        ConnectionView {
            id: row.id.clone(),
            plugin: row.plugin.clone(),
            display_name: row.display_name.clone(),
            kind: row.kind.clone(),
            status: row.status.clone(),
            last_error: row.last_error.clone(),
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        }
    }
}

/// Longest display name accepted.
const MAX_DISPLAY_NAME: usize = 128;

/// The connections, their credentials opened in memory for calls.
pub struct Connections {
    store: Store,
    registry: Arc<Registry>,
    secrets: SecretBox,
    opened: RwLock<HashMap<String, Credentials>>,
    /// The public base URL, for the OAuth2 redirect URI.
    public_url: String,
    /// OAuth2 flows waiting for their callback, by state.
    flows: oauth::Flows,
    /// One lock per connection: one refresh at a time, the others wait for it.
    refreshing: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Whose turn it is to refresh, when several nodes share the database.
    cluster: Arc<crate::cluster::Cluster>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").finish_non_exhaustive()
    }
}

/// What a sealed credential is bound to.
fn field(id: &str) -> String {
    format!("connection {id} credentials")
}

impl Connections {
    /// Opens every stored connection's credentials. One that cannot be
    /// opened (a database copied without its key file) is left out: its
    /// triggers' calls see no credentials.
    pub async fn open(
        store: Store,
        registry: Arc<Registry>,
        secrets: SecretBox,
        public_url: String,
        cluster: Arc<crate::cluster::Cluster>,
    ) -> Result<Self, ConnectionError> {
        let connections = Connections {
            store,
            registry,
            secrets,
            opened: RwLock::default(),
            public_url,
            flows: oauth::Flows::default(),
            refreshing: std::sync::Mutex::default(),
            cluster,
        };
        connections.reconcile().await?;
        Ok(connections)
    }

    fn open_row(&self, row: &ConnectionRow) -> Result<Credentials, ConnectionError> {
        let opened = self.secrets.open(&row.credentials, &field(&row.id))?;
        serde_json::from_str(opened.expose()).map_err(|e| ConnectionError::InvalidCredentials(e.to_string()))
    }

    /// Another node changed connection `id` (created, rotated, refreshed,
    /// deleted): calls here see what the database holds now.
    pub async fn reload(&self, id: &str) -> Result<(), ConnectionError> {
        match self.store.get_connection(id).await {
            Ok(row) => {
                let credentials = self.open_row(&row)?;
                self.remember(&row.id, credentials);
            }
            Err(crate::store::StoreError::NotFound) => {
                self.opened.write().unwrap_or_else(|p| p.into_inner()).remove(id);
            }
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }

    /// Opens every stored connection's credentials, and forgets those gone
    /// (at start, and when another node's announcement may have been
    /// missed). One that cannot be opened (a database copied without its key
    /// file) is left out: its triggers' calls see no credentials.
    pub async fn reconcile(&self) -> Result<(), ConnectionError> {
        let rows = self.store.list_connections().await?;
        let stored: std::collections::HashSet<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        self.opened.write().unwrap_or_else(|p| p.into_inner()).retain(|id, _| stored.contains(id.as_str()));
        for row in &rows {
            match self.open_row(row) {
                Ok(credentials) => self.remember(&row.id, credentials),
                Err(error) => tracing::error!(connection = %row.id, %error, "cannot open the connection's credentials"),
            }
        }
        Ok(())
    }

    fn remember(&self, id: &str, credentials: Credentials) {
        self.opened.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), credentials);
    }

    /// The credentials of connection `id`, for a call's context.
    pub fn credentials(&self, id: &str) -> Option<Credentials> {
        self.opened.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Creates a connection for `plugin`'s active version's auth.
    pub async fn create(&self, request: NewConnection) -> Result<ConnectionRow, ConnectionError> {
        check_display_name(&request.display_name)?;
        let loaded = self.registry.resolve(&request.plugin, None)?;
        let auth = loaded.plugin.manifest().auth.clone();
        let credentials = credentials_for(&request.plugin, &auth, request.credentials)?;
        let id = crate::ids::new_id("con")?;
        let now = now_ms();
        let row = ConnectionRow {
            credentials: self.seal(&id, &credentials)?,
            id,
            plugin: request.plugin,
            display_name: request.display_name,
            kind: kind(&auth).to_owned(),
            status: status::CONNECTED.into(),
            refresh_token: None,
            last_error: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.insert_connection(&row).await?;
        self.remember(&row.id, credentials);
        Ok(row)
    }

    /// Renames a connection and/or replaces its credentials (which makes it
    /// `connected` again).
    pub async fn patch(
        &self,
        id: &str,
        display_name: Option<String>,
        credentials: Option<serde_json::Value>,
    ) -> Result<ConnectionRow, ConnectionError> {
        let mut row = self.get(id).await?;
        if let Some(name) = display_name {
            check_display_name(&name)?;
            row.display_name = name;
        }
        let mut replaced = None;
        if let Some(given) = credentials {
            let loaded = self.registry.resolve(&row.plugin, None)?;
            let opened = credentials_for(&row.plugin, &loaded.plugin.manifest().auth, given)?;
            row.credentials = self.seal(id, &opened)?;
            row.status = status::CONNECTED.into();
            row.last_error = None;
            replaced = Some(opened);
        }
        row.updated_at_ms = now_ms();
        self.store.update_connection(&row).await?;
        if let Some(credentials) = replaced {
            self.remember(id, credentials);
        }
        Ok(row)
    }

    /// A connection by id.
    pub async fn get(&self, id: &str) -> Result<ConnectionRow, ConnectionError> {
        self.store.get_connection(id).await.map_err(|e| match e {
            StoreError::NotFound => ConnectionError::NotFound(id.to_owned()),
            other => other.into(),
        })
    }

    /// Every connection.
    pub async fn list(&self) -> Result<Vec<ConnectionRow>, ConnectionError> {
        Ok(self.store.list_connections().await?)
    }

    /// Deletes a connection, refused while triggers use it.
    pub async fn delete(&self, id: &str) -> Result<(), ConnectionError> {
        let triggers = self.store.triggers_using(id).await?;
        if !triggers.is_empty() {
            return Err(ConnectionError::InUse { id: id.to_owned(), triggers });
        }
        self.store.delete_connection(id).await.map_err(|e| match e {
            StoreError::NotFound => ConnectionError::NotFound(id.to_owned()),
            other => other.into(),
        })?;
        self.opened.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        Ok(())
    }

    fn seal(&self, id: &str, credentials: &Credentials) -> Result<String, ConnectionError> {
        let plain = serde_json::to_string(credentials).map_err(|e| ConnectionError::InvalidCredentials(e.to_string()))?;
        Ok(self.secrets.seal(&plain, &field(id))?)
    }
}

fn check_display_name(name: &str) -> Result<(), ConnectionError> {
    if name.trim().is_empty() || name.len() > MAX_DISPLAY_NAME {
        return Err(ConnectionError::InvalidCredentials(format!(
            "display_name must be 1 to {MAX_DISPLAY_NAME} bytes"
        )));
    }
    Ok(())
}

/// The kind's name, as stored and shown.
fn kind(auth: &Auth) -> &'static str {
    match auth {
        Auth::None => "none",
        Auth::SecretText { .. } => "secret-text",
        Auth::Custom { .. } => "custom",
        Auth::OAuth2(_) => "oauth2",
    }
}

/// Checks `given` against `auth` and turns it into credentials.
fn credentials_for(plugin: &str, auth: &Auth, given: serde_json::Value) -> Result<Credentials, ConnectionError> {
    let invalid = |why: &str| ConnectionError::InvalidCredentials(why.to_owned());
    match auth {
        Auth::None => Err(ConnectionError::NoAuth(plugin.to_owned())),
        Auth::SecretText { .. } => match given {
            serde_json::Value::String(key) if !key.is_empty() => Ok(Credentials::SecretText(key)),
            _ => Err(invalid("a secret-text connection takes a non-empty string")),
        },
        Auth::Custom { schema } => {
            let validator = crate::registry::compile_config_schema(schema).map_err(|e| invalid(&e))?;
            crate::registry::check_config(&validator, &given)
                .map_err(|problem| invalid(&format!("{} {}", problem.path, problem.message)))?;
            Ok(Credentials::Custom(given.to_string()))
        }
        Auth::OAuth2(_) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Tokens {
                access_token: String,
                expires_at_ms: Option<u64>,
                #[serde(default)]
                scopes: Vec<String>,
            }
            let tokens: Tokens = serde_json::from_value(given)
                .map_err(|e| invalid(&format!("an oauth2 connection takes {{\"access_token\", ...}}: {e}")))?;
            Ok(Credentials::OAuth2(AccessToken {
                token: tokens.access_token,
                expires_at_ms: tokens.expires_at_ms,
                scopes: tokens.scopes,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn custom() -> Auth {
        let schema = json!({
            "type": "object",
            "properties": { "account": { "type": "string" }, "api_key": { "type": "string", "x-secret": true } },
            "required": ["account", "api_key"],
            "additionalProperties": false,
        });
        Auth::Custom { schema: schema.to_string() }
    }

    #[test]
    fn credentials_must_fit_the_plugins_auth() {
        let text = Auth::SecretText { label: "API key".into(), description: String::new() };
        assert!(matches!(credentials_for("p", &text, json!("k")), Ok(Credentials::SecretText(k)) if k == "k"));
        assert!(credentials_for("p", &text, json!("")).is_err());
        assert!(credentials_for("p", &text, json!({ "k": 1 })).is_err());

        let props = json!({ "account": "acme", "api_key": "k" });
        assert!(matches!(credentials_for("p", &custom(), props), Ok(Credentials::Custom(_))));
        let missing = credentials_for("p", &custom(), json!({ "account": "acme" }));
        assert!(matches!(missing, Err(ConnectionError::InvalidCredentials(ref why)) if why.contains("api_key")), "{missing:?}");
        assert!(credentials_for("p", &custom(), json!({ "account": "acme", "api_key": "k", "extra": 1 })).is_err());

        let oauth = Auth::OAuth2(crate::contract::OAuth2Auth {
            authorize_url: "https://a.example/authorize".into(),
            token_url: "https://a.example/token".into(),
            scopes: Vec::new(),
            pkce: true,
            extra_params: Vec::new(),
        });
        let tokens = credentials_for("p", &oauth, json!({ "access_token": "at", "expires_at_ms": 5 }));
        assert!(matches!(tokens, Ok(Credentials::OAuth2(ref t)) if t.token == "at" && t.expires_at_ms == Some(5)));
        assert!(credentials_for("p", &oauth, json!({ "refresh_token": "rt" })).is_err());

        assert!(matches!(credentials_for("p", &Auth::None, json!("k")), Err(ConnectionError::NoAuth(_))));
    }
}
