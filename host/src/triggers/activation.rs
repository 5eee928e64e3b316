//! Activating a plugin version without breaking the triggers that follow
//! the active one: each must still exist in the new manifest, its config
//! must still validate, and its polling or webhook nature must not change.
//! Otherwise the activation is refused with the list, or, when forced, the
//! triggers it would break are disabled first, each with the reason.

use serde::Serialize;

use super::{TriggerError, Triggers, status};
use crate::contract::Strategy;
use crate::registry::{LoadedPlugin, RegistryError};
use crate::store::TriggerRow;

/// A trigger a version would break, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breakage {
    /// The trigger's id.
    pub trigger_id: String,
    /// Its name in the manifest.
    pub trigger: String,
    /// What would break.
    pub problem: String,
}

impl Triggers {
    /// Makes `version` of `plugin` the active one. Refused when the version
    /// asks for more than is granted (even when forced: no trigger could
    /// use it as granted), or when it would break a trigger following the
    /// active version, unless `force`; then those triggers are disabled
    /// first and returned. Triggers pinned to a version are not affected.
    pub async fn activate(&self, plugin: &str, version: &str, force: bool) -> Result<Vec<Breakage>, TriggerError> {
        let target = self.registry.resolve_or_load(plugin, Some(version)).await?;
        let grant = self.registry.grant_of(&target);
        if !grant.is_complete() {
            let plugin = format!("{plugin}@{version}");
            return Err(RegistryError::NotGranted { plugin, missing: grant.missing }.into());
        }
        let breakages = self.breakages(plugin, &target).await?;
        if !breakages.is_empty() && !force {
            return Err(TriggerError::WouldBreak { plugin: format!("{plugin}@{version}"), breakages });
        }
        // Disabled on the version they were enabled with (its `on-disable`
        // removes what its `on-enable` registered), before the swap.
        for breakage in &breakages {
            self.disable(&breakage.trigger_id).await?;
            let reason = format!("disabled to activate {plugin}@{version}: {}", breakage.problem);
            self.store.set_trigger_status(&breakage.trigger_id, status::DISABLED, Some(&reason), None).await?;
        }
        self.registry.activate(plugin, version).await?;
        Ok(breakages)
    }

    /// The triggers following `plugin`'s active version that `target` would break.
    async fn breakages(&self, plugin: &str, target: &LoadedPlugin) -> Result<Vec<Breakage>, TriggerError> {
        let mut breakages = Vec::new();
        for row in self.store.list_triggers().await? {
            if row.plugin != plugin || row.plugin_version.is_some() {
                continue;
            }
            if let Some(problem) = self.problem(&row, target) {
                breakages.push(Breakage { trigger_id: row.id, trigger: row.trigger_name, problem });
            }
        }
        Ok(breakages)
    }

    fn problem(&self, row: &TriggerRow, target: &LoadedPlugin) -> Option<String> {
        let manifest = target.plugin.manifest();
        let Some(trigger) = manifest.trigger(&row.trigger_name) else {
            return Some(format!("{}@{} has no trigger {}", manifest.name, manifest.version, row.trigger_name));
        };
        let config = match self.open_config(row) {
            Ok(config) => config,
            Err(error) => return Some(error.to_string()),
        };
        if let Err(problem) = target.validate_config(&row.trigger_name, &config) {
            let at = if problem.path.is_empty() { String::new() } else { format!(" at {}", problem.path) };
            return Some(format!("its config no longer validates{at}: {}", problem.message));
        }
        match (trigger.strategy, row.poll_interval_s) {
            (Strategy::Polling, None) => Some("it would become a polling trigger".into()),
            (Strategy::Webhook, Some(_)) => Some("it would no longer be a polling trigger".into()),
            _ => None,
        }
    }
}
