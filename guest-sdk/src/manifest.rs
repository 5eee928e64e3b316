//! Builders for the manifest `describe` returns.

use crate::schema::ConfigSchema;
use crate::{Auth, CapabilityRequest, Manifest, Sharing, Strategy, TriggerDefinition};

/// Builds a [`Manifest`]. Names are checked by the host on upload; use
/// [`naming`](crate::naming) in a unit test to catch a bad one earlier.
#[derive(Debug, Clone)]
pub struct ManifestBuilder {
    manifest: Manifest,
}

impl ManifestBuilder {
    /// Starts a manifest. `name` is kebab-case; `version` is semver, usually
    /// `env!("CARGO_PKG_VERSION")`.
    pub fn new(name: &str, display_name: &str, version: &str) -> Self {
        ManifestBuilder {
            manifest: Manifest {
                name: name.into(),
                display_name: display_name.into(),
                version: version.into(),
                description: String::new(),
                capabilities: CapabilityRequest { outbound_hosts: Vec::new(), key_value: false },
                auth: Auth::None,
                triggers: Vec::new(),
            },
        }
    }

    /// What the connector connects to.
    pub fn description(mut self, text: &str) -> Self {
        self.manifest.description = text.into();
        self
    }

    /// Asks for outbound HTTP to `host` (exact, or `*.example.com`).
    pub fn outbound_host(mut self, host: &str) -> Self {
        self.manifest.capabilities.outbound_hosts.push(host.into());
        self
    }

    /// Asks for the per-trigger key-value store.
    pub fn key_value(mut self) -> Self {
        self.manifest.capabilities.key_value = true;
        self
    }

    /// How the connector authenticates to its provider (`Auth::None` by
    /// default): operators create connections of this kind, and each call
    /// sees its trigger's connection in `ctx.credentials`.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.manifest.auth = auth;
        self
    }

    /// Adds a trigger.
    pub fn trigger(mut self, trigger: TriggerBuilder) -> Self {
        self.manifest.triggers.push(trigger.definition);
        self
    }

    /// The finished manifest.
    pub fn build(self) -> Manifest {
        self.manifest
    }
}

/// Builds one [`TriggerDefinition`].
#[derive(Debug, Clone)]
pub struct TriggerBuilder {
    definition: TriggerDefinition,
}

impl TriggerBuilder {
    fn new(strategy: Strategy, name: &str, display_name: &str) -> Self {
        TriggerBuilder {
            definition: TriggerDefinition {
                name: name.into(),
                display_name: display_name.into(),
                description: String::new(),
                strategy,
                config_schema: ConfigSchema::new().to_json(),
                sample_event: "{}".into(),
                sharing: None,
            },
        }
    }

    /// A trigger fed by webhook deliveries. `name` is snake_case.
    pub fn webhook(name: &str, display_name: &str) -> Self {
        Self::new(Strategy::Webhook, name, display_name)
    }

    /// A trigger fed by scheduled polls. `name` is snake_case.
    pub fn polling(name: &str, display_name: &str) -> Self {
        Self::new(Strategy::Polling, name, display_name)
    }

    /// What the trigger fires on.
    pub fn description(mut self, text: &str) -> Self {
        self.definition.description = text.into();
        self
    }

    /// The schema of the trigger's config (no props by default).
    pub fn config(mut self, schema: ConfigSchema) -> Self {
        self.definition.config_schema = schema.to_json();
        self
    }

    /// Lets triggers of this definition share one registration at the
    /// provider: those on the same connection whose config properties
    /// `key_fields` are equal get one webhook URL, registered with the union
    /// of their `events_field` lists, and each delivery's events reach the
    /// triggers that want them. Their calls about the registration see the
    /// source's id and URL, and the events field set to the union. For
    /// providers that allow one webhook per app or account, or cap them.
    pub fn shared(mut self, key_fields: &[&str], events_field: Option<&str>) -> Self {
        self.definition.sharing = Some(Sharing {
            key_fields: key_fields.iter().map(|field| (*field).to_owned()).collect(),
            events_field: events_field.map(str::to_owned),
        });
        self
    }

    /// An example event payload.
    pub fn sample_event(mut self, payload: &serde_json::Value) -> Self {
        self.definition.sample_event = payload.to_string();
        self
    }
}
