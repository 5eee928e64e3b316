//! Bindings for `triggerhost:connector@0.2.0`: the exports live in the
//! versioned `plugin` interface, and `renew` and `error-code.gone` are new.

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use crate::capabilities::CallCapabilities;
use crate::capabilities::http::{HttpError, OutboundRequest};
use crate::capabilities::kv::KvError;
use crate::capabilities::log::Level;
use crate::contract;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use generated::exports::triggerhost::connector::plugin;
use generated::triggerhost::connector::{kv, log, outbound_http, types as wit};

/// The export a 0.2.0 component has, by which the host knows its version.
pub(crate) const EXPORT: &str = "triggerhost:connector/plugin@0.2.0";

/// A component linked against 0.2.0, ready to instantiate.
pub(crate) struct ConnectorPre<T: 'static>(generated::ConnectorPre<T>);

impl<T: 'static> Clone for ConnectorPre<T> {
    fn clone(&self) -> Self {
        ConnectorPre(self.0.clone())
    }
}

/// One live 0.2.0 instance.
pub(crate) struct Connector(generated::Connector);

impl<T: Send + 'static> ConnectorPre<T> {
    /// Checks the component's exports against the world.
    pub(crate) fn new(instance_pre: InstancePre<T>) -> wasmtime::Result<Self> {
        generated::ConnectorPre::new(instance_pre).map(ConnectorPre)
    }

    pub(crate) async fn instantiate(&self, store: &mut Store<T>) -> wasmtime::Result<Connector> {
        self.0.instantiate_async(store).await.map(Connector)
    }
}

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

/// Adds this version's imports, served by the [`CallCapabilities`] that
/// `capabilities` finds in the store's data.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    capabilities: fn(&mut T) -> &mut CallCapabilities,
) -> wasmtime::Result<()> {
    generated::Connector::add_to_linker::<T, HasSelf<CallCapabilities>>(linker, capabilities)
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
