//! Every `bindgen!` of the host, one module per released WIT version.
//!
//! Each version module converts its generated types into [`crate::contract`]
//! at this boundary; nothing else in the host names a generated type. A new
//! WIT version gets a new module here and a new arm in [`ConnectorPre`] and
//! [`Connector`]: the one match per version.
//!
//! The bindings are generic over the store's data: they need only the
//! [`CallCapabilities`] inside it, so they know nothing of the runtime.

#[macro_use]
mod boundary;
pub mod v0_1_0;
pub mod v0_2_0;
pub mod v0_3_0;

use wasmtime::{Engine, Store};
use wasmtime::component::{Component, Linker};

use crate::capabilities::CallCapabilities;
use crate::contract::{
    ConnectorError, ContractVersion, Delivery, EnableInfo, Manifest, RegistrationChange, RunInput, RunOutput, SyncReport,
    TriggerContext, Verdict, WebhookRequest,
};

/// A pre-linked connector of any supported WIT version.
pub(crate) enum ConnectorPre<T: 'static> {
    V0_1_0(v0_1_0::ConnectorPre<T>),
    V0_2_0(v0_2_0::ConnectorPre<T>),
    V0_3_0(v0_3_0::ConnectorPre<T>),
}

impl<T: 'static> Clone for ConnectorPre<T> {
    fn clone(&self) -> Self {
        match self {
            ConnectorPre::V0_1_0(pre) => ConnectorPre::V0_1_0(pre.clone()),
            ConnectorPre::V0_2_0(pre) => ConnectorPre::V0_2_0(pre.clone()),
            ConnectorPre::V0_3_0(pre) => ConnectorPre::V0_3_0(pre.clone()),
        }
    }
}

/// A live instance of a connector of any supported WIT version. Each
/// method is one export, typed in the host's own types.
pub(crate) enum Connector {
    V0_1_0(v0_1_0::Connector),
    V0_2_0(v0_2_0::Connector),
    V0_3_0(v0_3_0::Connector),
}

/// The contract version `component` targets, read from its exports: from
/// 0.2.0 on each version exports its own versioned interface; 0.1.0,
/// frozen, is the one whose functions are exported at the root. A
/// `triggerhost:connector/...` export of a version this host does not know
/// is named in the error.
pub(crate) fn contract_version(component: &Component, engine: &Engine) -> Result<ContractVersion, String> {
    if component.get_export_index(None, v0_3_0::EXPORT).is_some() {
        return Ok(ContractVersion::V0_3_0);
    }
    if component.get_export_index(None, v0_2_0::EXPORT).is_some() {
        return Ok(ContractVersion::V0_2_0);
    }
    let component_type = component.component_type();
    let mut exports = component_type.exports(engine).map(|(name, _)| name);
    match exports.find(|name| name.starts_with(CONTRACT_PACKAGE)) {
        Some(unknown) => Err(format!(
            "the component exports {}, a contract this host does not serve (it serves 0.1.0, 0.2.0 and 0.3.0)",
            crate::contract::cut(unknown, 120)
        )),
        None => Ok(ContractVersion::V0_1_0),
    }
}

/// The package every contract version's interfaces belong to.
const CONTRACT_PACKAGE: &str = "triggerhost:connector/";

impl<T: Send + 'static> ConnectorPre<T> {
    /// Links `component` against the version it implements, or explains why
    /// it implements none.
    pub(crate) fn new(linker: &Linker<T>, component: &Component) -> Result<Self, LinkError> {
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(|e| LinkError::Import(root_message(&e)))?;
        let version = contract_version(component, linker.engine()).map_err(LinkError::Export)?;
        let linked = match version {
            ContractVersion::V0_1_0 => v0_1_0::ConnectorPre::new(instance_pre).map(ConnectorPre::V0_1_0),
            ContractVersion::V0_2_0 => v0_2_0::ConnectorPre::new(instance_pre).map(ConnectorPre::V0_2_0),
            ContractVersion::V0_3_0 => v0_3_0::ConnectorPre::new(instance_pre).map(ConnectorPre::V0_3_0),
        };
        linked.map_err(|e| LinkError::Export(root_message(&e)))
    }

    /// The contract version the component was linked as.
    pub(crate) fn version(&self) -> ContractVersion {
        match self {
            ConnectorPre::V0_1_0(_) => ContractVersion::V0_1_0,
            ConnectorPre::V0_2_0(_) => ContractVersion::V0_2_0,
            ConnectorPre::V0_3_0(_) => ContractVersion::V0_3_0,
        }
    }

    /// A fresh instance.
    pub(crate) async fn instantiate(&self, store: &mut Store<T>) -> wasmtime::Result<Connector> {
        match self {
            ConnectorPre::V0_1_0(pre) => pre.instantiate(store).await.map(Connector::V0_1_0),
            ConnectorPre::V0_2_0(pre) => pre.instantiate(store).await.map(Connector::V0_2_0),
            ConnectorPre::V0_3_0(pre) => pre.instantiate(store).await.map(Connector::V0_3_0),
        }
    }
}

impl Connector {
    pub(crate) async fn describe<T: Send>(&self, store: &mut Store<T>) -> wasmtime::Result<Manifest> {
        match self {
            Connector::V0_1_0(c) => c.describe(store).await,
            Connector::V0_2_0(c) => c.describe(store).await,
            Connector::V0_3_0(c) => c.describe(store).await,
        }
    }

    pub(crate) async fn on_enable<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
    ) -> wasmtime::Result<Result<EnableInfo, ConnectorError>> {
        match self {
            Connector::V0_1_0(c) => c.on_enable(store, ctx).await,
            Connector::V0_2_0(c) => c.on_enable(store, ctx).await,
            Connector::V0_3_0(c) => c.on_enable(store, ctx).await,
        }
    }

    /// `renew` on 0.2.0 and later; a 0.1.0 connector, which has no
    /// `renew`, is enabled again (its `on-enable` is how it registers).
    pub(crate) async fn renew<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
    ) -> wasmtime::Result<Result<EnableInfo, ConnectorError>> {
        match self {
            Connector::V0_1_0(c) => c.on_enable(store, ctx).await,
            Connector::V0_2_0(c) => c.renew(store, ctx).await,
            Connector::V0_3_0(c) => c.renew(store, ctx).await,
        }
    }

    /// `on-update` on 0.3.0 and later; an earlier connector is disabled
    /// with the previous config and enabled with the new one, on one
    /// instance.
    pub(crate) async fn on_update<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
        change: RegistrationChange,
    ) -> wasmtime::Result<Result<EnableInfo, ConnectorError>> {
        let previous = TriggerContext { config: change.previous_config.clone(), ..ctx.clone() };
        match self {
            Connector::V0_3_0(c) => c.on_update(store, ctx, change).await,
            Connector::V0_1_0(c) => match c.on_disable(&mut *store, previous).await? {
                Ok(()) => c.on_enable(store, ctx).await,
                Err(error) => Ok(Err(error)),
            },
            Connector::V0_2_0(c) => match c.on_disable(&mut *store, previous).await? {
                Ok(()) => c.on_enable(store, ctx).await,
                Err(error) => Ok(Err(error)),
            },
        }
    }

    /// `sync` on 0.3.0 and later; earlier connectors cannot check.
    pub(crate) async fn sync<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
    ) -> wasmtime::Result<Result<SyncReport, ConnectorError>> {
        match self {
            Connector::V0_3_0(c) => c.sync(store, ctx).await,
            Connector::V0_1_0(_) | Connector::V0_2_0(_) => Ok(Ok(SyncReport::Unchecked)),
        }
    }

    pub(crate) async fn on_disable<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
    ) -> wasmtime::Result<Result<(), ConnectorError>> {
        match self {
            Connector::V0_1_0(c) => c.on_disable(store, ctx).await,
            Connector::V0_2_0(c) => c.on_disable(store, ctx).await,
            Connector::V0_3_0(c) => c.on_disable(store, ctx).await,
        }
    }

    pub(crate) async fn verify<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
        request: WebhookRequest,
    ) -> wasmtime::Result<Result<Verdict, ConnectorError>> {
        match self {
            Connector::V0_1_0(c) => c.verify(store, ctx, request).await,
            Connector::V0_2_0(c) => c.verify(store, ctx, request).await,
            Connector::V0_3_0(c) => c.verify(store, ctx, request).await,
        }
    }

    pub(crate) async fn run<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
        input: RunInput,
    ) -> wasmtime::Result<Result<RunOutput, ConnectorError>> {
        match self {
            Connector::V0_1_0(c) => c.run(store, ctx, input).await,
            Connector::V0_2_0(c) => c.run(store, ctx, input).await,
            Connector::V0_3_0(c) => c.run(store, ctx, input).await,
        }
    }

    pub(crate) async fn deliver<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: TriggerContext,
        request: WebhookRequest,
    ) -> wasmtime::Result<Result<Delivery, ConnectorError>> {
        match self {
            Connector::V0_1_0(c) => c.deliver(store, ctx, request).await,
            Connector::V0_2_0(c) => c.deliver(store, ctx, request).await,
            Connector::V0_3_0(c) => c.deliver(store, ctx, request).await,
        }
    }
}

/// Adds WASI and the imports of every supported version to `linker`.
pub(crate) fn add_to_linker<T: wasmtime_wasi::WasiView + Send + 'static>(
    linker: &mut Linker<T>,
    capabilities: fn(&mut T) -> &mut CallCapabilities,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    v0_1_0::add_to_linker(linker, capabilities)?;
    v0_2_0::add_to_linker(linker, capabilities)?;
    v0_3_0::add_to_linker(linker, capabilities)
}

/// Why a component does not link.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// An import the host does not provide.
    Import(String),
    /// A missing or mistyped export.
    Export(String),
}

/// wasmtime's error chain, joined: the outermost context alone often omits
/// which import or export is at fault.
fn root_message(error: &wasmtime::Error) -> String {
    error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}
