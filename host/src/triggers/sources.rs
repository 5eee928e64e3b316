//! Triggers that share one registration at the provider (a source):
//! joining a source at create and patch, bringing its registration in line
//! with the events its enabled triggers want (`on-enable`, `on-update`,
//! `on-disable` of the source), and its live entry, through which a
//! delivery fans out to its triggers.

use std::sync::Arc;

use serde_json::Value;

use super::sealed::field;
use super::sharing::{Wanted, source_key, with_events};
use super::{LiveTrigger, TriggerError, Triggers, status};
use crate::contract::{EnableInfo, RegistrationChange, Sharing, TriggerContext};
use crate::filters::Filters;
use crate::registry::LoadedPlugin;
use crate::secrets::SecretError;
use crate::store::{SourceKey, SourceRow, StoreError, TriggerRow, now_ms};

/// A trigger a source's deliveries fan out to, and the events it wants.
#[derive(Debug, Clone)]
pub struct Member {
    /// The trigger.
    pub id: String,
    /// What it wants of the source's events.
    pub wanted: Wanted,
    /// Its host-side filters.
    pub filters: Filters,
}

/// Most triggers one source serves.
pub const MAX_MEMBERS: usize = 256;

/// A source as the API shows it: never its secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceView {
    /// Id.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Trigger definition.
    pub trigger: String,
    /// Connection, if its triggers have one.
    pub connection: Option<String>,
    /// The key fields' values.
    pub key: Value,
    /// `disabled` (not registered), `enabled` (registered) or `error`.
    pub status: String,
    /// Why the last registration call failed.
    pub last_error: Option<String>,
    /// The config registered, secret values redacted (its events field
    /// the union its triggers wanted then).
    pub registered_config: Value,
    /// Where the provider delivers.
    pub webhook_url: String,
    /// Its triggers, oldest first.
    pub triggers: Vec<String>,
    /// When `sync` last checked the registration.
    pub synced_at_ms: Option<i64>,
    /// What the last `sync` failed with.
    pub sync_error: Option<String>,
}

/// The sharing of trigger definition `trigger` in `loaded`, if it shares.
pub(super) fn sharing_of(loaded: &LoadedPlugin, trigger: &str) -> Option<Sharing> {
    loaded.plugin.manifest().trigger(trigger).and_then(|definition| definition.sharing.clone())
}

/// `config` with the key fields it leaves out set to their schema's
/// `default`: a trigger that relies on a default shares with one that
/// spells it out.
fn with_key_defaults(loaded: &LoadedPlugin, trigger: &str, sharing: &Sharing, config: &Value) -> Value {
    let mut config = config.clone();
    let schema = loaded.plugin.manifest().trigger(trigger).map(|t| parsed(&t.config_schema)).unwrap_or(Value::Null);
    if let Some(object) = config.as_object_mut() {
        for field in &sharing.key_fields {
            let default = schema.get("properties").and_then(|p| p.get(field)).and_then(|p| p.get("default"));
            if let (false, Some(default)) = (object.contains_key(field), default) {
                object.insert(field.clone(), default.clone());
            }
        }
    }
    config
}

fn parsed(config: &str) -> Value {
    serde_json::from_str(config).unwrap_or(Value::Null)
}

impl Triggers {
    /// The source a trigger with this (plain) config belongs to, created on
    /// first use; `None` when its definition does not share. A new source
    /// takes the trigger's secret, or a generated one. A source holds at
    /// most [`MAX_MEMBERS`] triggers (`member_of` is the one the trigger
    /// is in already, if any): each delivery is copied to each of them.
    pub(super) async fn join_source(
        &self,
        loaded: &LoadedPlugin,
        trigger_name: &str,
        connection: Option<&str>,
        config: &Value,
        secret: Option<&str>,
        member_of: Option<&str>,
    ) -> Result<Option<String>, TriggerError> {
        let Some(key) = sharing_of(loaded, trigger_name).and_then(|sharing| {
            source_key(&sharing, &with_key_defaults(loaded, trigger_name, &sharing, config))
        }) else {
            return Ok(None);
        };
        let id = crate::ids::new_id("src")?;
        let mut sealed_config = config.clone();
        self.seal_config(&id, loaded, trigger_name, &mut sealed_config)?;
        let secret = match secret {
            Some(secret) => secret.to_owned(),
            None => crate::ids::random_hex(32)?,
        };
        let now = now_ms();
        let new = SourceRow {
            id: id.clone(),
            plugin: loaded.plugin.manifest().name.clone(),
            trigger_name: trigger_name.to_owned(),
            connection_id: connection.unwrap_or_default().to_owned(),
            source_key: key.clone(),
            config: sealed_config.to_string(),
            secret: Some(self.secrets.seal(&secret, &field(&id, "secret"))?),
            issued_secrets: None,
            status: status::DISABLED.into(),
            last_error: None,
            expires_at_ms: None,
            synced_at_ms: None,
            sync_error: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let source_key = SourceKey {
            plugin: &new.plugin,
            trigger_name,
            connection_id: connection.unwrap_or_default(),
            key: &key,
        };
        let source = self.store.source_for(source_key, &new).await?;
        if member_of != Some(source.id.as_str()) && self.store.source_members(&source.id).await?.len() >= MAX_MEMBERS {
            let message = format!("source {} already has {MAX_MEMBERS} triggers, as many as one may", source.id);
            return Err(TriggerError::InvalidField { field: "config", message });
        }
        Ok(Some(source.id))
    }

    /// Every source, as the API shows it.
    pub async fn sources(&self) -> Result<Vec<SourceView>, TriggerError> {
        let mut views = Vec::new();
        for source in self.store.list_sources().await? {
            views.push(self.source_view(source).await?);
        }
        Ok(views)
    }

    /// One source, as the API shows it.
    pub async fn source(&self, id: &str) -> Result<SourceView, TriggerError> {
        match self.store.get_source(id).await {
            Ok(source) => self.source_view(source).await,
            Err(StoreError::NotFound) => Err(TriggerError::NotFound(id.to_owned())),
            Err(error) => Err(error.into()),
        }
    }

    async fn source_view(&self, source: SourceRow) -> Result<SourceView, TriggerError> {
        let triggers = self.store.source_members(&source.id).await?.into_iter().map(|m| m.id).collect();
        Ok(SourceView {
            webhook_url: self.webhook_url(&source.id),
            key: parsed(&source.source_key),
            registered_config: super::sealed::redacted(&source.config),
            connection: Some(source.connection_id).filter(|c| !c.is_empty()),
            id: source.id,
            plugin: source.plugin,
            trigger: source.trigger_name,
            status: source.status,
            last_error: source.last_error,
            triggers,
            synced_at_ms: source.synced_at_ms,
            sync_error: source.sync_error,
        })
    }

    /// Brings source `id`'s registration in line with its enabled triggers
    /// and `pending`, a trigger about to be enabled: registers it when the
    /// first is enabled, updates it when the union of their events (or the
    /// oldest one's config) changed, removes it when none is left, and
    /// deletes a source no trigger belongs to. `Err` is the registration
    /// call's failure, recorded on the triggers' failures.
    pub(super) async fn reconcile_source(
        &self,
        id: &str,
        pending: Option<&TriggerRow>,
    ) -> Result<Result<(), String>, TriggerError> {
        let _serialized = self.serialize(id).await;
        let source = match self.store.get_source(id).await {
            Ok(source) => source,
            Err(StoreError::NotFound) => return Ok(Ok(())),
            Err(error) => return Err(error.into()),
        };
        let members = self.store.source_members(id).await?;
        let mut enabled: Vec<TriggerRow> = members
            .iter()
            .filter(|m| m.status == status::ENABLED && pending.is_none_or(|p| p.id != m.id))
            .cloned()
            .collect();
        enabled.extend(pending.cloned());
        enabled.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        let outcome = match enabled.first() {
            Some(base) => self.register_source(&source, base, &enabled, pending.unwrap_or(base)).await?,
            None => self.unregister_source(&source, members.first()).await?,
        };
        if members.is_empty() && self.store.delete_source_if_empty(id).await? {
            self.forget(id);
        }
        Ok(outcome)
    }

    /// `on-enable` or `on-update` of the source with the union of what
    /// `enabled` (oldest first) want; nothing when it is registered as is.
    async fn register_source(
        &self,
        source: &SourceRow,
        base: &TriggerRow,
        enabled: &[TriggerRow],
        blame: &TriggerRow,
    ) -> Result<Result<(), String>, TriggerError> {
        let loaded = match self.registry.resolve_or_load(&base.plugin, base.plugin_version.as_deref()).await {
            Ok(loaded) => loaded,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let Some(sharing) = sharing_of(&loaded, &source.trigger_name) else {
            return Ok(Err(format!("{} no longer shares registrations", loaded.plugin.label())));
        };
        let wanted = Wanted::union(&enabled.iter().map(|m| Wanted::of(&sharing, &parsed(&m.config))).collect::<Vec<_>>());
        let config = with_events(&sharing, self.open_config(base)?, &wanted);
        let previous = self.open_sealed_config(&source.id, &source.config)?;
        let registered = source.status == status::ENABLED;
        if registered && config == previous {
            return Ok(Ok(()));
        }
        let context = self.source_context(source, config.to_string())?;
        let scope = self.scope(&source.id, &loaded);
        let (export, call) = if registered {
            let (added_events, removed_events) = wanted.diff(&Wanted::of(&sharing, &previous));
            let change = RegistrationChange { previous_config: previous.to_string(), added_events, removed_events };
            ("on-update", loaded.plugin.on_update(context.clone(), change, scope).await)
        } else {
            ("on-enable", loaded.plugin.on_enable(context.clone(), scope).await)
        };
        let mut settled = self.settle(&blame.id, export, call).await?;
        if registered && matches!(&settled, Err(failure) if failure.gone) {
            let enabled = loaded.plugin.on_enable(context, self.scope(&source.id, &loaded)).await;
            settled = self.settle(&blame.id, "on-enable", enabled).await?;
        }
        match settled {
            Ok(info) => {
                self.keep_source(source, &loaded, config, &info).await?;
                Ok(Ok(()))
            }
            Err(failure) => {
                // A failed update leaves the registration as it was, serving
                // the triggers it served; a failed first one leaves none.
                let now = if registered { status::ENABLED } else { status::ERROR };
                let message = failure.message;
                self.store.set_source_registration(&source.id, None, now, Some(&message), source.expires_at_ms).await?;
                Ok(Err(message))
            }
        }
    }

    /// Keeps what a successful registration call of the source reported,
    /// and `config` as what is now registered.
    pub(super) async fn keep_source(
        &self,
        source: &SourceRow,
        loaded: &LoadedPlugin,
        mut config: Value,
        info: &EnableInfo,
    ) -> Result<(), TriggerError> {
        if let Some(secrets) = &info.issued_secrets {
            let sealed = if secrets.is_empty() { None } else { Some(self.seal_issued(&source.id, secrets)?) };
            self.store.set_source_issued_secrets(&source.id, sealed.as_deref()).await?;
        }
        self.seal_config(&source.id, loaded, &source.trigger_name, &mut config)?;
        let expires_at_ms = info.expires_at_ms.and_then(|ms| i64::try_from(ms).ok());
        let config = config.to_string();
        self.store.set_source_registration(&source.id, Some(&config), status::ENABLED, None, expires_at_ms).await?;
        Ok(())
    }

    /// `on-disable` of a registered source, now that none of its triggers
    /// is enabled; a failure is recorded on `blame` when there is one.
    async fn unregister_source(
        &self,
        source: &SourceRow,
        blame: Option<&TriggerRow>,
    ) -> Result<Result<(), String>, TriggerError> {
        if source.status == status::DISABLED {
            return Ok(Ok(()));
        }
        let pin = blame.and_then(|b| b.plugin_version.clone());
        let outcome = match self.registry.resolve_or_load(&source.plugin, pin.as_deref()).await {
            Err(error) => Err(format!("on-disable skipped: {error}")),
            Ok(loaded) => {
                let config = self.open_sealed_config(&source.id, &source.config)?;
                let context = self.source_context(source, config.to_string())?;
                let call = loaded.plugin.on_disable(context, self.scope(&source.id, &loaded)).await;
                let blame = blame.map(|b| b.id.as_str());
                self.settle_on(blame, "on-disable", call).await?.map_err(|f| f.message)
            }
        };
        let last_error = outcome.as_ref().err().map(String::as_str);
        self.store.set_source_registration(&source.id, None, status::DISABLED, last_error, None).await?;
        Ok(outcome)
    }

    /// What a call about source `source` is given, with `config`.
    pub(super) fn source_context(&self, source: &SourceRow, config: String) -> Result<TriggerContext, SecretError> {
        let (secret, issued_secrets) =
            self.open_secrets(&source.id, source.secret.as_deref(), source.issued_secrets.as_deref())?;
        let connection = Some(source.connection_id.as_str()).filter(|id| !id.is_empty());
        Ok(TriggerContext {
            trigger_id: source.id.clone(),
            trigger_name: source.trigger_name.clone(),
            config,
            secret,
            webhook_url: self.webhook_url(&source.id),
            credentials: connection.and_then(|id| self.connections.credentials(id)),
            issued_secrets,
        })
    }

    /// Puts source `id` in the live table, fanning out to its enabled
    /// triggers, or takes it out when none is enabled.
    pub(super) async fn refresh_source(&self, id: &str) -> Result<(), TriggerError> {
        let source = match self.store.get_source(id).await {
            Ok(source) => source,
            Err(StoreError::NotFound) => {
                self.go_dark(id);
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        let enabled: Vec<TriggerRow> =
            self.store.source_members(id).await?.into_iter().filter(|m| m.status == status::ENABLED).collect();
        let Some(base) = enabled.first() else {
            self.go_dark(id);
            return Ok(());
        };
        let Some(sharing) = self
            .registry
            .resolve(&base.plugin, base.plugin_version.as_deref())
            .ok()
            .and_then(|loaded| sharing_of(&loaded, &source.trigger_name))
        else {
            self.go_dark(id);
            return Ok(());
        };
        let members = enabled.iter().map(|m| Member {
            id: m.id.clone(),
            wanted: Wanted::of(&sharing, &parsed(&m.config)),
            filters: Filters::from_stored(m.filters.as_deref()),
        });
        let config = self.open_sealed_config(&source.id, &source.config)?;
        let row = TriggerRow {
            id: source.id.clone(),
            plugin: source.plugin.clone(),
            plugin_version: base.plugin_version.clone(),
            trigger_name: source.trigger_name.clone(),
            config: source.config.clone(),
            secret: None,
            poll_interval_s: None,
            status: status::ENABLED.into(),
            last_error: None,
            expires_at_ms: source.expires_at_ms,
            created_at_ms: source.created_at_ms,
            updated_at_ms: source.updated_at_ms,
            issued_secrets: None,
            connection_id: Some(source.connection_id.clone()).filter(|c| !c.is_empty()),
            source_id: None,
            synced_at_ms: source.synced_at_ms,
            sync_error: source.sync_error.clone(),
            filters: None,
            retention_s: None,
            retention_events: None,
            retry_at_ms: None,
            retry_failures: 0,
        };
        let live = LiveTrigger {
            context: self.source_context(&source, config.to_string())?,
            bucket: self.bucket(id),
            poll_turn: self.poll_turn(id),
            fan_out: Some(members.collect()),
            filters: Filters::default(),
            row,
        };
        self.live.write().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), Arc::new(live));
        Ok(())
    }
}
