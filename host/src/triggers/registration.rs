//! Keeping a registration at the provider in line after it was made: a
//! patched trigger's own registration follows through `on-update`, and
//! `sync` checks a registration (a trigger's own or its source's) is still
//! there and as it should be, registering it again when the provider lost it.

use crate::connections::said_unauthorized;
use crate::contract::{RegistrationChange, SyncReport};
use crate::store::{SOURCE_ID_PREFIX, StoreError, TriggerRow};

use super::{TriggerError, Triggers, status};

/// What one `sync` found and did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "error", rename_all = "snake_case")]
pub enum SyncOutcome {
    /// The registration is there and as it should be.
    InSync,
    /// It had drifted; the connector put it back.
    Repaired,
    /// The provider had lost it; `on-enable` registered it again (adopting
    /// a registration that already pointed at the URL, if the connector
    /// found one).
    Recreated,
    /// The connector does not check (or predates contract 0.3.0).
    Unchecked,
    /// The check or the new registration failed: the registration is
    /// marked unhealthy with the message.
    Failed(String),
    /// Not enabled: nothing to check.
    Skipped,
}

impl Triggers {
    /// `on-update` of a patched trigger's own registration (`on-enable`
    /// when the connector says it is gone). `Err` is why it failed.
    pub(super) async fn update_registration(
        &self,
        before: &TriggerRow,
        after: &TriggerRow,
    ) -> Result<Result<(), String>, TriggerError> {
        let loaded = match self.registry.resolve_or_load(&after.plugin, after.plugin_version.as_deref()).await {
            Ok(loaded) => loaded,
            Err(error) => return Ok(Err(format!("on-update: {error}"))),
        };
        let change = RegistrationChange { previous_config: self.open_config(before)?.to_string(), ..Default::default() };
        let context = self.context(after)?;
        let updated = loaded.plugin.on_update(context.clone(), change, self.scope(&after.id, &loaded)).await;
        let mut settled = self.settle(&after.id, "on-update", updated).await?;
        if matches!(&settled, Err(failure) if failure.gone) {
            let enabled = self.on_enable_retrying(after, &loaded, context).await;
            settled = self.settle(&after.id, "on-enable", enabled).await?;
        }
        match settled {
            Ok(info) => {
                self.keep(&after.id, &info, false).await?;
                if info.issued_secrets.is_some() {
                    self.go_live(self.get(&after.id).await?)?;
                }
                Ok(Ok(()))
            }
            Err(failure) => Ok(Err(failure.message)),
        }
    }

    /// Checks the registration of trigger (or source) `id` at the
    /// provider: its own, or its source's when it shares one.
    pub async fn sync(&self, id: &str) -> Result<SyncOutcome, TriggerError> {
        if id.starts_with(SOURCE_ID_PREFIX) {
            return self.sync_source(id).await;
        }
        let row = self.get(id).await?;
        if let Some(source) = &row.source_id {
            return self.sync_source(source).await;
        }
        let _serialized = self.serialize(id).await;
        let row = self.get(id).await?;
        if row.status != status::ENABLED {
            return Ok(SyncOutcome::Skipped);
        }
        let loaded = self.registry.resolve_or_load(&row.plugin, row.plugin_version.as_deref()).await?;
        let context = self.context(&row)?;
        let mut synced = loaded.plugin.sync(context.clone(), self.scope(id, &loaded)).await;
        if said_unauthorized(&synced)
            && self.connections.refreshed_after_unauthorized(row.connection_id.as_deref(), &context).await
        {
            synced = loaded.plugin.sync(self.context(&row)?, self.scope(id, &loaded)).await;
        }
        let outcome = match self.settle(id, "sync", synced).await? {
            Ok(SyncReport::InSync) => SyncOutcome::InSync,
            Ok(SyncReport::Unchecked) => SyncOutcome::Unchecked,
            Ok(SyncReport::Repaired(info)) => {
                self.keep(id, &info, false).await?;
                SyncOutcome::Repaired
            }
            Err(failure) if !failure.gone => SyncOutcome::Failed(failure.message),
            Err(_) => {
                tracing::info!(trigger = %id, "the provider lost the registration; registering again");
                let enabled = self.on_enable_retrying(&row, &loaded, context).await;
                match self.settle(id, "on-enable", enabled).await? {
                    Ok(info) => {
                        self.keep(id, &info, false).await?;
                        SyncOutcome::Recreated
                    }
                    Err(failure) => SyncOutcome::Failed(failure.message),
                }
            }
        };
        self.note_sync(id, &outcome).await?;
        if matches!(outcome, SyncOutcome::Repaired | SyncOutcome::Recreated) {
            self.go_live(self.get(id).await?)?;
        }
        Ok(outcome)
    }

    /// `sync` of a source, with its oldest enabled trigger's plugin version.
    async fn sync_source(&self, id: &str) -> Result<SyncOutcome, TriggerError> {
        let outcome = {
            let _serialized = self.serialize(id).await;
            let source = match self.store.get_source(id).await {
                Ok(source) => source,
                Err(StoreError::NotFound) => return Err(TriggerError::NotFound(id.to_owned())),
                Err(error) => return Err(error.into()),
            };
            let members = self.store.source_members(id).await?;
            let Some(base) = members.iter().find(|m| m.status == status::ENABLED) else {
                return Ok(SyncOutcome::Skipped);
            };
            let loaded = self.registry.resolve_or_load(&base.plugin, base.plugin_version.as_deref()).await?;
            let config = self.open_sealed_config(id, &source.config)?;
            let context = self.source_context(&source, config.to_string())?;
            let synced = loaded.plugin.sync(context.clone(), self.scope(id, &loaded)).await;
            let outcome = match self.settle(&base.id, "sync", synced).await? {
                Ok(SyncReport::InSync) => SyncOutcome::InSync,
                Ok(SyncReport::Unchecked) => SyncOutcome::Unchecked,
                Ok(SyncReport::Repaired(info)) => {
                    self.keep_source(&source, &loaded, config, &info).await?;
                    SyncOutcome::Repaired
                }
                Err(failure) if !failure.gone => SyncOutcome::Failed(failure.message),
                Err(_) => {
                    tracing::info!(source = %id, "the provider lost the registration; registering again");
                    let enabled = loaded.plugin.on_enable(context, self.scope(id, &loaded)).await;
                    match self.settle(&base.id, "on-enable", enabled).await? {
                        Ok(info) => {
                            self.keep_source(&source, &loaded, config, &info).await?;
                            SyncOutcome::Recreated
                        }
                        Err(failure) => SyncOutcome::Failed(failure.message),
                    }
                }
            };
            self.note_sync(id, &outcome).await?;
            outcome
        };
        self.refresh_source(id).await?;
        Ok(outcome)
    }

    /// Records when the registration was checked, and what went wrong.
    async fn note_sync(&self, id: &str, outcome: &SyncOutcome) -> Result<(), TriggerError> {
        let error = match outcome {
            SyncOutcome::Failed(message) => Some(message.as_str()),
            _ => None,
        };
        Ok(self.store.set_synced(id, error).await?)
    }
}
