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
}

/// 0.2.0 triggers do not share registrations.
fn take_sharing(_: &mut wit::TriggerDefinition) -> Option<contract::Sharing> {
    None
}

boundary!();
since_0_2_0!();
