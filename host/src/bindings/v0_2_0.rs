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

boundary!();
