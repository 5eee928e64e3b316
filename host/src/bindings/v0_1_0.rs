//! Bindings for `triggerhost:connector@0.1.0`, frozen: its exports are
//! functions of the world itself, so a component exporting a root
//! `describe` targets this version.

use wasmtime::Store;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use crate::capabilities::CallCapabilities;
use crate::capabilities::http::{HttpError, OutboundRequest};
use crate::capabilities::kv::KvError;
use crate::capabilities::log::Level;
use crate::contract;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use generated::triggerhost::connector::{kv, log, outbound_http, types as wit};

/// A component linked against 0.1.0, ready to instantiate.
pub(crate) struct ConnectorPre<T: 'static>(generated::ConnectorPre<T>);

impl<T: 'static> Clone for ConnectorPre<T> {
    fn clone(&self) -> Self {
        ConnectorPre(self.0.clone())
    }
}

/// One live 0.1.0 instance.
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
    /// The exported functions: the world's own.
    fn guest(&self) -> &generated::Connector {
        &self.0
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
        wit::ErrorCode::Internal => contract::ErrorCode::Internal,
    }
}

boundary!();
