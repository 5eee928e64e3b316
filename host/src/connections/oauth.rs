//! OAuth2's authorization-code flow with PKCE, run by the host: the
//! operator registers the plugin's OAuth app (client id and secret), starts
//! a flow (the answer is the provider's authorization URL), approves at the
//! provider, and the provider sends the browser back to `/oauth/callback`
//! on the public listener, where the host exchanges the code for tokens
//! through the plugin's outbound grant and stores the connection.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ConnectionError, Connections, field, status};
use crate::capabilities::http::OutboundRequest;
use crate::contract::{AccessToken, Auth, Credentials, OAuth2Auth};
use crate::runtime::CallScope;
use crate::store::{ConnectionRow, OAuthAppRow, now_ms};

/// How long a started flow waits for its callback.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// Flows waiting at once, at most; the oldest is dropped past it.
const MAX_FLOWS: usize = 1024;
/// The callback route on the public listener.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// `PUT /api/v1/plugins/{name}/oauth-app`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthAppRequest {
    /// The client id the provider issued.
    pub client_id: String,
    /// The client secret; sealed, never shown.
    pub client_secret: String,
    /// Replaces the manifest's authorization endpoint (a self-hosted or
    /// tenant-specific provider).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Replaces the manifest's token endpoint; it must be in the plugin's
    /// outbound grant.
    #[serde(default)]
    pub token_url: Option<String>,
}

/// A plugin's OAuth app as the API shows it: never the client secret.
#[derive(Debug, Clone, Serialize)]
pub struct OAuthAppView {
    /// The plugin.
    pub plugin: String,
    /// The client id.
    pub client_id: String,
    /// The authorization endpoint in use.
    pub authorize_url: String,
    /// The token endpoint in use.
    pub token_url: String,
    /// The redirect URI to register with the provider.
    pub redirect_uri: String,
}

/// A flow waiting for its callback.
#[derive(Debug)]
pub(super) struct PendingFlow {
    plugin: String,
    display_name: String,
    verifier: String,
    started: Instant,
    /// The connection to authorize again, or `None` for a new one.
    reconnect: Option<String>,
}

/// Flows by state.
pub(super) type Flows = std::sync::Mutex<HashMap<String, PendingFlow>>;

/// What `start` answers.
#[derive(Debug, Clone, Serialize)]
pub struct StartedFlow {
    /// Where to send the operator's browser.
    pub authorize_url: String,
    /// Where the provider sends it back.
    pub redirect_uri: String,
    /// The flow expires after this many seconds.
    pub expires_in_s: u64,
}

/// The token endpoint's answer (RFC 6749 section 5.1).
#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub(super) access_token: String,
    #[serde(default)]
    pub(super) refresh_token: Option<String>,
    #[serde(default)]
    pub(super) expires_in: Option<u64>,
    #[serde(default)]
    pub(super) scope: Option<String>,
}

impl TokenAnswer {
    /// The access token as calls see it; `scopes` when the provider did not
    /// say which it granted.
    pub(super) fn credentials(&self, now_ms: i64, scopes: Vec<String>) -> Credentials {
        Credentials::OAuth2(AccessToken {
            token: self.access_token.clone(),
            expires_at_ms: self
                .expires_in
                .map(|secs| u64::try_from(now_ms).unwrap_or(0).saturating_add(secs.saturating_mul(1000))),
            scopes: self.scope.as_ref().map(|s| s.split(' ').map(str::to_owned).collect()).unwrap_or(scopes),
        })
    }
}

/// The S256 challenge of a PKCE verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn oauth2_of(auth: &Auth, plugin: &str) -> Result<OAuth2Auth, ConnectionError> {
    match auth {
        Auth::OAuth2(oauth) => Ok(oauth.clone()),
        _ => Err(ConnectionError::InvalidCredentials(format!("plugin {plugin}'s auth is not oauth2"))),
    }
}

/// What a sealed refresh token is bound to.
pub(super) fn refresh_field(id: &str) -> String {
    format!("{} refresh_token", field(id))
}

pub(super) fn secret_field(plugin: &str) -> String {
    format!("oauth app {plugin} client_secret")
}

impl Connections {
    /// Registers (or replaces) a plugin's OAuth app.
    pub async fn set_oauth_app(&self, plugin: &str, request: OAuthAppRequest) -> Result<OAuthAppView, ConnectionError> {
        let loaded = self.registry.resolve(plugin, None)?;
        let oauth = oauth2_of(&loaded.plugin.manifest().auth, plugin)?;
        for url in [&request.authorize_url, &request.token_url].into_iter().flatten() {
            crate::contract::auth::check_endpoint(url)
                .map_err(|why| ConnectionError::InvalidCredentials(format!("{} {why}", crate::contract::cut(url, 200))))?;
        }
        if request.client_id.is_empty() || request.client_secret.is_empty() {
            return Err(ConnectionError::InvalidCredentials("client_id and client_secret are required".into()));
        }
        let row = OAuthAppRow {
            plugin: plugin.to_owned(),
            client_id: request.client_id,
            client_secret: self.secrets.seal(&request.client_secret, &secret_field(plugin))?,
            authorize_url: request.authorize_url,
            token_url: request.token_url,
            updated_at_ms: now_ms(),
        };
        self.store.set_oauth_app(&row).await?;
        Ok(OAuthAppView {
            plugin: row.plugin.clone(),
            client_id: row.client_id.clone(),
            authorize_url: row.authorize_url.clone().unwrap_or(oauth.authorize_url),
            token_url: row.token_url.clone().unwrap_or(oauth.token_url),
            redirect_uri: self.redirect_uri(),
        })
    }

    pub(super) async fn app(&self, plugin: &str) -> Result<(OAuthAppRow, OAuth2Auth), ConnectionError> {
        let loaded = self.registry.resolve(plugin, None)?;
        let oauth = oauth2_of(&loaded.plugin.manifest().auth, plugin)?;
        let app = self.store.oauth_app(plugin).await?.ok_or_else(|| {
            ConnectionError::InvalidCredentials(format!("plugin {plugin} has no OAuth app: PUT /api/v1/plugins/{plugin}/oauth-app"))
        })?;
        Ok((app, oauth))
    }

    /// Starts a flow for a new connection of `plugin`: the answer is the
    /// provider's authorization URL, with `state` and the PKCE challenge.
    pub async fn start_oauth(&self, plugin: &str, display_name: &str) -> Result<StartedFlow, ConnectionError> {
        super::check_display_name(display_name)?;
        self.start_flow(plugin, display_name, None).await
    }

    /// Starts a flow that authorizes connection `id` again (after
    /// `needs-reauth`, say): its triggers keep it and get the new tokens.
    pub async fn reconnect_oauth(&self, id: &str) -> Result<StartedFlow, ConnectionError> {
        let row = self.get(id).await?;
        self.start_flow(&row.plugin, &row.display_name, Some(row.id)).await
    }

    async fn start_flow(&self, plugin: &str, display_name: &str, reconnect: Option<String>) -> Result<StartedFlow, ConnectionError> {
        let (app, oauth) = self.app(plugin).await?;
        let state = crate::ids::random_hex(24)?;
        let verifier = crate::ids::random_hex(32)?;
        let redirect_uri = self.redirect_uri();
        let authorize = app.authorize_url.clone().unwrap_or(oauth.authorize_url.clone());
        let mut url = url::Url::parse(&authorize).map_err(|e| ConnectionError::InvalidCredentials(e.to_string()))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &app.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("state", &state);
            if !oauth.scopes.is_empty() {
                query.append_pair("scope", &oauth.scopes.join(" "));
            }
            if oauth.pkce {
                query.append_pair("code_challenge", &pkce_challenge(&verifier)).append_pair("code_challenge_method", "S256");
            }
            for (name, value) in &oauth.extra_params {
                query.append_pair(name, value);
            }
        }
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        flows.retain(|_, flow| flow.started.elapsed() < FLOW_TTL);
        if flows.len() >= MAX_FLOWS
            && let Some(oldest) = flows.iter().min_by_key(|(_, f)| f.started).map(|(state, _)| state.clone())
        {
            flows.remove(&oldest);
        }
        let flow = PendingFlow {
            plugin: plugin.to_owned(),
            display_name: display_name.to_owned(),
            verifier,
            started: Instant::now(),
            reconnect,
        };
        flows.insert(state, flow);
        Ok(StartedFlow { authorize_url: url.into(), redirect_uri, expires_in_s: FLOW_TTL.as_secs() })
    }

    fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.public_url)
    }

    /// Finishes the flow `state` names: exchanges `code` at the token
    /// endpoint and stores the connection. A state is used once.
    pub async fn finish_oauth(&self, state: &str, code: &str) -> Result<ConnectionRow, ConnectionError> {
        let flow = self
            .flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(state)
            .filter(|flow| flow.started.elapsed() < FLOW_TTL)
            .ok_or_else(|| ConnectionError::InvalidCredentials("unknown or expired OAuth2 state".into()))?;
        let (app, oauth) = self.app(&flow.plugin).await?;
        let client_secret = self.secrets.open(&app.client_secret, &secret_field(&app.plugin))?;
        // Built in a block: the serializer is not `Send` and must not live across the await.
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &self.redirect_uri())
                .append_pair("client_id", &app.client_id)
                .append_pair("client_secret", client_secret.expose());
            if oauth.pkce {
                form.append_pair("code_verifier", &flow.verifier);
            }
            form.finish()
        };
        let token_url = app.token_url.as_deref().unwrap_or(&oauth.token_url);
        let tokens = self.token_request(&flow.plugin, token_url, form).await?;
        let id = match &flow.reconnect {
            Some(id) => id.clone(),
            None => crate::ids::new_id("con")?,
        };
        let now = now_ms();
        let credentials = tokens.credentials(now, oauth.scopes);
        let refresh_token = match tokens.refresh_token {
            Some(token) => Some(self.secrets.seal(&token, &refresh_field(&id))?),
            None => None,
        };
        let mut row = ConnectionRow {
            credentials: self.seal(&id, &credentials)?,
            id,
            plugin: flow.plugin,
            display_name: flow.display_name,
            kind: "oauth2".into(),
            status: status::CONNECTED.into(),
            refresh_token,
            last_error: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        match flow.reconnect {
            Some(_) => {
                row.created_at_ms = self.get(&row.id).await?.created_at_ms;
                self.store.update_connection(&row).await?;
            }
            None => self.store.insert_connection(&row).await?,
        }
        self.remember(&row.id, credentials);
        Ok(row)
    }

    /// POSTs `form` to the token endpoint through the plugin's outbound
    /// grant (the same origin and address checks as its calls).
    pub(super) async fn token_request(&self, plugin: &str, token_url: &str, form: String) -> Result<TokenAnswer, ConnectionError> {
        let loaded = self.registry.resolve(plugin, None)?;
        let grant = std::sync::Arc::new(self.registry.grant_of(&loaded));
        let scope = CallScope::new("oauth", grant, self.registry.limits(plugin, &crate::runtime::Limits::default()));
        let mut http = loaded.plugin.host_http(&scope);
        let request = OutboundRequest {
            method: "POST".into(),
            url: token_url.to_owned(),
            headers: vec![
                ("content-type".into(), "application/x-www-form-urlencoded".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: form.into_bytes(),
            timeout_ms: None,
        };
        let upstream = |why: String| ConnectionError::Upstream(format!("token endpoint: {why}"));
        let response = http.send(request).await.map_err(|e| upstream(e.to_string()))?;
        if !(200..300).contains(&response.status) {
            // The provider's error code only: its answer may echo what was sent.
            let error = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(|e| crate::contract::cut(e, 80).to_owned()))
                .unwrap_or_default();
            let why = format!("token endpoint: answered {} {error}", response.status);
            return Err(if (400..500).contains(&response.status) {
                ConnectionError::Refused(why)
            } else {
                ConnectionError::Upstream(why)
            });
        }
        serde_json::from_slice(&response.body).map_err(|e| upstream(format!("not a token answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636, appendix B.
    #[test]
    fn the_pkce_challenge_matches_rfc_7636() {
        assert_eq!(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
