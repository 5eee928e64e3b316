//! Bindings for `triggerhost:connector@0.2.0`: the exports live in the
//! versioned `plugin` interface, and `renew` and `error-code.gone` are new.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use generated::exports::triggerhost::connector::plugin;

/// The export a 0.2.0 component has, by which the host knows its version.
pub(crate) const EXPORT: &str = "triggerhost:connector/plugin@0.2.0";

impl Connector {
    /// The exported functions: the `plugin` interface's.
    fn guest(&self) -> &plugin::Guest {
        self.0.triggerhost_connector_plugin()
    }

    /// `renew`: extends the subscription, reporting its new expiry.
    pub(crate) async fn renew<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: contract::TriggerContext,
    ) -> wasmtime::Result<Result<contract::EnableInfo, contract::ConnectorError>> {
        Ok(self.guest().call_renew(store, &ctx.into()).await?.map(Into::into).map_err(Into::into))
    }
}

fn error_code(code: wit::ErrorCode) -> contract::ErrorCode {
    match code {
        wit::ErrorCode::InvalidConfig => contract::ErrorCode::InvalidConfig,
        wit::ErrorCode::Unauthorized => contract::ErrorCode::Unauthorized,
        wit::ErrorCode::BadRequest => contract::ErrorCode::BadRequest,
        wit::ErrorCode::Upstream => contract::ErrorCode::Upstream,
        wit::ErrorCode::RateLimited => contract::ErrorCode::RateLimited,
        wit::ErrorCode::CapabilityDenied => contract::ErrorCode::CapabilityDenied,
        wit::ErrorCode::Gone => contract::ErrorCode::Gone,
        wit::ErrorCode::Internal => contract::ErrorCode::Internal,
    }
}

// ---- auth, credentials and issued secrets ----

/// The manifest's `auth`, taken out for the shared manifest conversion.
fn take_auth(m: &mut wit::Manifest) -> contract::Auth {
    match std::mem::replace(&mut m.auth, wit::Auth::None) {
        wit::Auth::None => contract::Auth::None,
        wit::Auth::SecretText(text) => contract::Auth::SecretText { label: text.label, description: text.description },
        wit::Auth::Custom(schema) => contract::Auth::Custom { schema },
        wit::Auth::Oauth2(oauth) => contract::Auth::OAuth2(contract::OAuth2Auth {
            authorize_url: oauth.authorize_url,
            token_url: oauth.token_url,
            scopes: oauth.scopes,
            pkce: oauth.pkce,
            extra_params: oauth.extra_params,
        }),
    }
}

impl From<contract::TriggerContext> for wit::TriggerContext {
    fn from(c: contract::TriggerContext) -> Self {
        wit::TriggerContext {
            trigger_id: c.trigger_id,
            trigger_name: c.trigger_name,
            config: c.config,
            secret: c.secret,
            webhook_url: c.webhook_url,
            credentials: c.credentials.map(|credentials| match credentials {
                contract::Credentials::SecretText(key) => wit::Credentials::SecretText(key),
                contract::Credentials::Custom(props) => wit::Credentials::Custom(props),
                contract::Credentials::OAuth2(token) => wit::Credentials::Oauth2(wit::AccessToken {
                    token: token.token,
                    expires_at_ms: token.expires_at_ms,
                    scopes: token.scopes,
                }),
            }),
            issued_secrets: c.issued_secrets,
        }
    }
}

impl From<wit::EnableInfo> for contract::EnableInfo {
    fn from(info: wit::EnableInfo) -> Self {
        contract::EnableInfo { expires_at_ms: info.expires_at_ms, issued_secrets: info.issued_secrets }
    }
}

boundary!();
