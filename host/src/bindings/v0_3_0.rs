//! Bindings for `triggerhost:connector@0.3.0`: shared registrations
//! (`trigger-definition.sharing`), `on-update` and `sync` are new.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/0.3.0",
        world: "connector",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use generated::exports::triggerhost::connector::plugin;

/// The export a 0.3.0 component has, by which the host knows its version.
pub(crate) const EXPORT: &str = "triggerhost:connector/plugin@0.3.0";

impl Connector {
    /// The exported functions: the `plugin` interface's.
    fn guest(&self) -> &plugin::Guest {
        self.0.triggerhost_connector_plugin()
    }

    /// `on-update`: changes the registration in place.
    pub(crate) async fn on_update<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: contract::TriggerContext,
        change: contract::RegistrationChange,
    ) -> wasmtime::Result<Result<contract::EnableInfo, contract::ConnectorError>> {
        let change = wit::RegistrationChange {
            previous_config: change.previous_config,
            added_events: change.added_events,
            removed_events: change.removed_events,
        };
        Ok(self.guest().call_on_update(store, &ctx.into(), &change).await?.map(Into::into).map_err(Into::into))
    }

    /// `sync`: checks the registration at the provider.
    pub(crate) async fn sync<T: Send>(
        &self,
        store: &mut Store<T>,
        ctx: contract::TriggerContext,
    ) -> wasmtime::Result<Result<contract::SyncReport, contract::ConnectorError>> {
        let report = self.guest().call_sync(store, &ctx.into()).await?;
        Ok(report
            .map(|report| match report {
                wit::SyncReport::InSync => contract::SyncReport::InSync,
                wit::SyncReport::Repaired(info) => contract::SyncReport::Repaired(info.into()),
                wit::SyncReport::Unchecked => contract::SyncReport::Unchecked,
            })
            .map_err(Into::into))
    }
}

/// A trigger definition's sharing, taken out for the shared conversion.
fn take_sharing(t: &mut wit::TriggerDefinition) -> Option<contract::Sharing> {
    t.sharing.take().map(|sharing| contract::Sharing { key_fields: sharing.key_fields, events_field: sharing.events_field })
}

boundary!();
since_0_2_0!();
