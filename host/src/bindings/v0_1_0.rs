//! Bindings for `triggerhost:connector@0.1.0`, frozen: its exports are
//! functions of the world itself, so a component exporting a root
//! `describe` targets this version.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}


impl Connector {
    /// The exported functions: the world's own.
    fn guest(&self) -> &generated::Connector {
        &self.0
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
        wit::ErrorCode::Internal => contract::ErrorCode::Internal,
    }
}

// ---- what 0.1.0 has fewer of: no auth, no credentials, no issued secrets ----

/// 0.1.0 manifests declare no auth.
fn take_auth(_: &mut wit::Manifest) -> contract::Auth {
    contract::Auth::None
}

/// 0.1.0 triggers do not share registrations.
fn take_sharing(_: &mut wit::TriggerDefinition) -> Option<contract::Sharing> {
    None
}

impl From<contract::TriggerContext> for wit::TriggerContext {
    fn from(c: contract::TriggerContext) -> Self {
        wit::TriggerContext {
            trigger_id: c.trigger_id,
            trigger_name: c.trigger_name,
            config: c.config,
            secret: c.secret,
            webhook_url: c.webhook_url,
        }
    }
}

impl From<wit::EnableInfo> for contract::EnableInfo {
    fn from(info: wit::EnableInfo) -> Self {
        contract::EnableInfo { expires_at_ms: info.expires_at_ms, issued_secrets: None }
    }
}

boundary!();
