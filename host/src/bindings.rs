//! Every `bindgen!` of the host, one module per released WIT version.
//!
//! Each version module converts its generated types into [`crate::contract`]
//! at this boundary; nothing else in the host names a generated type. A new
//! WIT version gets a new module here and a new arm in [`ConnectorPre`].

pub mod v0_1_0;

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::runtime::HostState;
use crate::runtime::call::{Call, Reply};

/// A pre-linked connector of any supported WIT version.
#[derive(Clone)]
pub(crate) enum ConnectorPre {
    V0_1_0(v0_1_0::ConnectorPre),
}

impl ConnectorPre {
    /// Links `component` against the version it implements, or explains why
    /// it implements none.
    pub(crate) fn new(linker: &Linker<HostState>, component: &Component) -> Result<Self, LinkError> {
        let instance_pre = linker
            .instantiate_pre(component)
            .map_err(|e| LinkError::Import(root_message(&e)))?;
        v0_1_0::ConnectorPre::new(instance_pre)
            .map(ConnectorPre::V0_1_0)
            .map_err(|e| LinkError::Export(root_message(&e)))
    }

    /// Instantiates a fresh instance and makes one call on it.
    pub(crate) async fn call(&self, store: &mut Store<HostState>, call: Call) -> wasmtime::Result<Reply> {
        match self {
            ConnectorPre::V0_1_0(pre) => pre.call(store, call).await,
        }
    }
}

/// Adds the imports of every supported version to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    v0_1_0::add_to_linker(linker)
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
