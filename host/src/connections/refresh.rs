//! Refreshing OAuth2 access tokens: ahead of expiry, and when a call says
//! `unauthorized`. One refresh at a time per connection; whoever waited
//! for it uses its token. A refresh the provider refuses (a revoked refresh
//! token) marks the connection `needs-reauth`, which shows on every
//! trigger using it.

use std::sync::Arc;
use std::time::Duration;

use super::oauth::{refresh_field, secret_field};
use super::{ConnectionError, Connections, status};
use crate::contract::{ConnectorError, Credentials, ErrorCode, TriggerContext};
use crate::runtime::{CallError, CallOutput};
use crate::store::now_ms;

/// Whether a call's connector answered `unauthorized`.
pub fn said_unauthorized<T>(result: &Result<CallOutput<Result<T, ConnectorError>>, CallError>) -> bool {
    matches!(result, Ok(output) if matches!(&output.value, Err(error) if error.code == ErrorCode::Unauthorized))
}

/// How long before expiry a token is refreshed, at most; never more than
/// half its lifetime.
const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;
/// How often the refresher looks for tokens about to expire.
const REFRESH_CHECK: Duration = Duration::from_secs(1);

impl Connections {
    fn refresh_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(id.to_owned()).or_default())
    }

    /// The access token calls of connection `id` see now.
    pub fn access_token(&self, id: &str) -> Option<String> {
        match self.credentials(id) {
            Some(Credentials::OAuth2(token)) => Some(token.token),
            _ => None,
        }
    }

    /// Refreshes connection `id`'s access token. `stale` is the token the
    /// caller found wanting: if another refresh has replaced it meanwhile,
    /// nothing is sent and the caller uses the new one.
    pub async fn refresh(&self, id: &str, stale: Option<&str>) -> Result<(), ConnectionError> {
        let lock = self.refresh_lock(id);
        let _one_at_a_time = lock.lock().await;
        if self.cluster.is_shared() && !self.refresh_turn(id, stale).await? {
            return Ok(());
        }
        let refreshed = self.refresh_now(id, stale).await;
        self.cluster.release(&format!("refresh:{id}")).await;
        if refreshed.is_ok() || matches!(refreshed, Err(ConnectionError::Refused(_))) {
            self.cluster.announce(crate::cluster::changes::Change::Connection(id.to_owned())).await;
        }
        refreshed
    }

    /// The refresh itself, this node's turn taken.
    async fn refresh_now(&self, id: &str, stale: Option<&str>) -> Result<(), ConnectionError> {
        if let Some(stale) = stale
            && self.access_token(id).as_deref() != Some(stale)
        {
            return Ok(());
        }
        let mut row = self.get(id).await?;
        let (app, oauth) = self.app(&row.plugin).await?;
        let Some(sealed) = row.refresh_token.clone() else {
            return self.needs_reauth(row, "the provider issued no refresh token").await;
        };
        let refresh_token = self.secrets.open(&sealed, &refresh_field(id))?;
        let client_secret = self.secrets.open(&app.client_secret, &secret_field(&app.plugin))?;
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh_token.expose())
                .append_pair("client_id", &app.client_id)
                .append_pair("client_secret", client_secret.expose());
            form.finish()
        };
        let token_url = app.token_url.as_deref().unwrap_or(&oauth.token_url);
        let tokens = match self.token_request(&row.plugin, token_url, form).await {
            Ok(tokens) => tokens,
            Err(ConnectionError::Refused(why)) => return self.needs_reauth(row, &why).await,
            Err(other) => return Err(other),
        };
        let now = now_ms();
        let credentials = tokens.credentials(now, oauth.scopes);
        row.credentials = self.seal(id, &credentials)?;
        // A provider that rotates refresh tokens sends a new one.
        if let Some(rotated) = &tokens.refresh_token {
            row.refresh_token = Some(self.secrets.seal(rotated, &refresh_field(id))?);
        }
        row.status = status::CONNECTED.into();
        row.last_error = None;
        row.updated_at_ms = now;
        self.store.update_connection(&row).await?;
        self.remember(id, credentials);
        tracing::info!(connection = %id, "access token refreshed");
        Ok(())
    }

    /// On a shared database: whether this node is to refresh connection
    /// `id` now. Another node may have refreshed it (its token is in the
    /// database: it is used here, nothing is sent) or be refreshing it (the
    /// holder of `refresh:<id>`: this node waits for its token). Two nodes
    /// sending one refresh token, which providers rotate, would cost the
    /// connection its authorization.
    async fn refresh_turn(&self, id: &str, stale: Option<&str>) -> Result<bool, ConnectionError> {
        let lease = format!("refresh:{id}");
        for _ in 0..50 {
            self.reload(id).await?;
            if stale.is_some() && self.access_token(id).as_deref() != stale {
                return Ok(false);
            }
            if self.cluster.claim(&lease).await {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ConnectionError::Refused("another node has been refreshing the token for 5 s".into()))
    }

    /// After a call said `unauthorized`: when it ran on OAuth2 connection
    /// `connection`, refreshes the token it used (one refresh for all who
    /// ask at once) and says whether to try the call again.
    pub async fn refreshed_after_unauthorized(&self, connection: Option<&str>, context: &TriggerContext) -> bool {
        let (Some(id), Some(Credentials::OAuth2(token))) = (connection, &context.credentials) else {
            return false;
        };
        match self.refresh(id, Some(&token.token)).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(trigger = %context.trigger_id, connection = %id, %error, "cannot refresh the access token");
                false
            }
        }
    }

    async fn needs_reauth(&self, mut row: crate::store::ConnectionRow, why: &str) -> Result<(), ConnectionError> {
        tracing::warn!(connection = %row.id, reason = %why, "connection needs re-authorization");
        row.status = status::NEEDS_REAUTH.into();
        row.last_error = Some(crate::contract::cut(why, 300).to_owned());
        row.updated_at_ms = now_ms();
        self.store.update_connection(&row).await?;
        Err(ConnectionError::Refused(why.to_owned()))
    }

    /// Whether connection `id`'s token is due for a refresh at `now_ms`.
    fn due(&self, row: &crate::store::ConnectionRow, now_ms: i64) -> bool {
        let Some(Credentials::OAuth2(token)) = self.credentials(&row.id) else { return false };
        let Some(expires) = token.expires_at_ms.and_then(|ms| i64::try_from(ms).ok()) else { return false };
        let lifetime = expires.saturating_sub(row.updated_at_ms).max(0);
        row.status == status::CONNECTED && expires.saturating_sub(now_ms) <= REFRESH_MARGIN_MS.min(lifetime / 2)
    }

    fn any_token_expires(&self) -> bool {
        let opened = self.opened.read().unwrap_or_else(|p| p.into_inner());
        opened.values().any(|c| matches!(c, Credentials::OAuth2(token) if token.expires_at_ms.is_some()))
    }

    /// Refreshes tokens ahead of their expiry until the runtime stops.
    pub fn start_refresher(self: &Arc<Self>) {
        let connections = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_CHECK);
            loop {
                ticks.tick().await;
                // Only tokens with an expiry are ever due: with none in
                // memory (most hosts), the store is not read.
                if !connections.any_token_expires() {
                    continue;
                }
                // One node refreshes ahead of expiry; the others follow it.
                if !connections.cluster.claim("refresher").await {
                    continue;
                }
                let Ok(rows) = connections.store.list_connections().await else { continue };
                let now = now_ms();
                for row in rows.iter().filter(|row| connections.due(row, now)) {
                    let stale = connections.access_token(&row.id);
                    if let Err(error) = connections.refresh(&row.id, stale.as_deref()).await {
                        tracing::warn!(connection = %row.id, %error, "refresh ahead of expiry failed");
                    }
                }
            }
        });
    }
}
