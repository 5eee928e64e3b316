//! A trigger's secrets at rest and in calls: its secret and the config
//! properties its schema marks secret are sealed when stored (or, for rows
//! an earlier version stored in plain text, at start), opened only to build
//! the context of the trigger's own calls, and redacted in the API's view.

use super::{TriggerError, Triggers};
use crate::contract::TriggerContext;
use crate::registry::LoadedPlugin;
use crate::secrets::{SecretBox, SecretError};
use crate::store::TriggerRow;

/// What the API shows in place of a sealed config value.
pub const REDACTED: &str = "[redacted]";

impl Triggers {
    /// Seals a row's secret and secret config properties if an earlier
    /// version of the host stored them in plain text.
    pub(super) async fn seal_plaintext(&self, row: &mut TriggerRow) -> Result<(), TriggerError> {
        let secret_plain = row.secret.as_deref().is_some_and(|s| !SecretBox::is_sealed(s));
        let loaded = self.registry.resolve(&row.plugin, row.plugin_version.as_deref()).ok();
        let mut config: serde_json::Value = serde_json::from_str(&row.config).unwrap_or(serde_json::Value::Null);
        let config_plain = match &loaded {
            Some(loaded) => self.seal_config(&row.id, loaded, &row.trigger_name, &mut config)?,
            None => false,
        };
        if !secret_plain && !config_plain {
            return Ok(());
        }
        if secret_plain && let Some(secret) = row.secret.take() {
            row.secret = Some(self.secrets.seal(&secret, &field(&row.id, "secret"))?);
        }
        row.config = config.to_string();
        self.store.set_trigger_sealed(&row.id, &row.config, row.secret.as_deref()).await?;
        tracing::info!(trigger = %row.id, "sealed secrets stored in plain text by an earlier version");
        Ok(())
    }

    /// Seals the secret properties of `config` in place; whether any was
    /// still in plain text.
    pub(super) fn seal_config(
        &self,
        id: &str,
        loaded: &LoadedPlugin,
        trigger: &str,
        config: &mut serde_json::Value,
    ) -> Result<bool, TriggerError> {
        let mut sealed_any = false;
        for name in loaded.secret_properties(trigger) {
            let Some(value) = config.get_mut(name.as_str()) else { continue };
            if value.as_str().is_some_and(SecretBox::is_sealed) {
                continue;
            }
            // The JSON text is sealed, so a secret of any type comes back as it was.
            *value = serde_json::Value::String(self.secrets.seal(&value.to_string(), &field(id, &format!("config.{name}")))?);
            sealed_any = true;
        }
        Ok(sealed_any)
    }

    /// The config with its sealed properties opened.
    pub(super) fn open_config(&self, row: &TriggerRow) -> Result<serde_json::Value, SecretError> {
        self.open_sealed_config(&row.id, &row.config)
    }

    /// A config sealed for `id` (a trigger or a source), opened.
    pub(super) fn open_sealed_config(&self, id: &str, config: &str) -> Result<serde_json::Value, SecretError> {
        let mut config: serde_json::Value = serde_json::from_str(config).unwrap_or(serde_json::Value::Null);
        if let Some(properties) = config.as_object_mut() {
            for (name, value) in properties.iter_mut() {
                let Some(sealed) = value.as_str().filter(|v| SecretBox::is_sealed(v)) else { continue };
                let text = self.secrets.open(sealed, &field(id, &format!("config.{name}")))?;
                *value = serde_json::from_str(text.expose()).unwrap_or(serde_json::Value::Null);
            }
        }
        Ok(config)
    }

    /// What a call of this trigger is given: its secrets opened, for this
    /// trigger's calls only.
    pub(super) fn context(&self, row: &TriggerRow) -> Result<TriggerContext, SecretError> {
        let (secret, issued_secrets) = self.open_secrets(&row.id, row.secret.as_deref(), row.issued_secrets.as_deref())?;
        Ok(TriggerContext {
            trigger_id: row.id.clone(),
            trigger_name: row.trigger_name.clone(),
            config: self.open_config(row)?.to_string(),
            secret,
            webhook_url: self.webhook_url(&row.id),
            credentials: row.connection_id.as_deref().and_then(|id| self.connections.credentials(id)),
            issued_secrets,
        })
    }

    /// The signing secret and the issued secrets sealed for `id` (a
    /// trigger or a source), opened.
    pub(super) fn open_secrets(
        &self,
        id: &str,
        secret: Option<&str>,
        issued: Option<&str>,
    ) -> Result<OpenedSecrets, SecretError> {
        let secret = match secret {
            Some(sealed) => Some(self.secrets.open(sealed, &field(id, "secret"))?.into_exposed()),
            None => None,
        };
        let issued = match issued {
            Some(sealed) => {
                let opened = self.secrets.open(sealed, &field(id, "issued_secrets"))?;
                serde_json::from_str(opened.expose()).unwrap_or_default()
            }
            None => Vec::new(),
        };
        Ok((secret, issued))
    }

    /// The secrets a provider issued, sealed for trigger `id`.
    pub(super) fn seal_issued(&self, id: &str, secrets: &[(String, String)]) -> Result<String, SecretError> {
        let plain = serde_json::to_string(secrets).unwrap_or_else(|_| "[]".into());
        self.secrets.seal(&plain, &field(id, "issued_secrets"))
    }
}

/// A signing secret and issued secrets, opened.
type OpenedSecrets = (Option<String>, Vec<(String, String)>);

/// What a sealed value is bound to: its trigger (or source) and field.
pub(super) fn field(id: &str, name: &str) -> String {
    format!("trigger {id} {name}")
}

/// A stored config as the API shows it: sealed values replaced.
pub(super) fn redacted(config: &str) -> serde_json::Value {
    let mut config: serde_json::Value = serde_json::from_str(config).unwrap_or(serde_json::Value::Null);
    if let Some(properties) = config.as_object_mut() {
        for value in properties.values_mut() {
            if value.as_str().is_some_and(SecretBox::is_sealed) {
                *value = serde_json::Value::String(REDACTED.into());
            }
        }
    }
    config
}
