//! The connector manifest and the checks an upload must pass.

use serde::{Deserialize, Serialize};
use triggerhost_sdk::naming::{MAX_NAME_LEN, is_kebab_case, is_snake_case};

/// Longest display name accepted.
const MAX_DISPLAY_NAME_LEN: usize = 128;
/// Longest description accepted.
const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// Largest config schema or sample event accepted, in bytes.
const MAX_JSON_LEN: usize = 64 * 1024;
/// Most triggers one connector may declare.
const MAX_TRIGGERS: usize = 64;
/// The request for any origin the operator allows.
pub const ANY_HOST: &str = "*";

/// Most outbound hosts one connector may request.
const MAX_OUTBOUND_HOSTS: usize = 64;

/// How a trigger learns about new data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Pushed to the webhook URL.
    Webhook,
    /// Polled on a schedule.
    Polling,
}

/// Capabilities a connector asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapabilityRequest {
    /// Hosts for outbound HTTP (`api.example.com` or `*.example.com`).
    pub outbound_hosts: Vec<String>,
    /// Whether the key-value store is used.
    pub key_value: bool,
}

/// One trigger a connector offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerDefinition {
    /// snake_case, unique within the connector.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// What it fires on.
    pub description: String,
    /// Webhook or polling.
    pub strategy: Strategy,
    /// JSON Schema of the config, as JSON text.
    pub config_schema: String,
    /// Example payload, as JSON text.
    pub sample_event: String,
    /// Whether its triggers share registrations (contract 0.3.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<Sharing>,
}

/// How the triggers of one definition share a registration at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharing {
    /// The top-level config properties whose values (with the plugin, the
    /// definition and the connection) identify a registration.
    pub key_fields: Vec<String>,
    /// The top-level config property listing the event types a trigger wants.
    pub events_field: Option<String>,
}

/// What a connector is, as returned by `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// kebab-case identifier.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// Semver version.
    pub version: String,
    /// What it connects to.
    pub description: String,
    /// Capabilities requested.
    pub capabilities: CapabilityRequest,
    /// How the connector authenticates (`none` for contract 0.1.0, and for
    /// manifests stored before auth existed).
    #[serde(default)]
    pub auth: super::Auth,
    /// At least one trigger.
    pub triggers: Vec<TriggerDefinition>,
}

/// Every problem found in a manifest, so an author fixes them in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid manifest: {}", problems.join("; "))]
pub struct ManifestError {
    /// One sentence per problem, naming the field.
    pub problems: Vec<String>,
}

impl Manifest {
    /// The trigger named `name`, if the connector offers it.
    pub fn trigger(&self, name: &str) -> Option<&TriggerDefinition> {
        self.triggers.iter().find(|t| t.name == name)
    }

    /// Checks names, versions, sizes and embedded JSON.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        if !is_kebab_case(&self.name) {
            problems.push(format!(
                "name {:?} must be kebab-case ([a-z][a-z0-9]* words joined by '-'), at most {MAX_NAME_LEN} bytes",
                truncate(&self.name)
            ));
        }
        check_display_name("display-name", &self.display_name, &mut problems);
        if semver::Version::parse(&self.version).is_err() {
            problems.push(format!("version {:?} is not semver (e.g. 1.2.0)", truncate(&self.version)));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            problems.push(format!("description is longer than {MAX_DESCRIPTION_LEN} bytes"));
        }
        self.validate_capabilities(&mut problems);
        self.auth.validate(&mut problems);
        self.validate_triggers(&mut problems);
        if problems.is_empty() { Ok(()) } else { Err(ManifestError { problems }) }
    }

    fn validate_capabilities(&self, problems: &mut Vec<String>) {
        let hosts = &self.capabilities.outbound_hosts;
        if hosts.len() > MAX_OUTBOUND_HOSTS {
            problems.push(format!("more than {MAX_OUTBOUND_HOSTS} outbound hosts requested"));
            return;
        }
        for host in hosts {
            // `*`: any origin the operator allows, for connectors whose
            // host is in the integrator's config (a generic HTTP poller).
            if host != ANY_HOST && !is_host_pattern(host) {
                problems.push(format!(
                    "outbound host {:?} must be a lower-case host name, *.domain or *, without scheme or port",
                    truncate(host)
                ));
            }
        }
    }

    fn validate_triggers(&self, problems: &mut Vec<String>) {
        if self.triggers.is_empty() {
            problems.push("a connector must declare at least one trigger".into());
        }
        if self.triggers.len() > MAX_TRIGGERS {
            problems.push(format!("more than {MAX_TRIGGERS} triggers declared"));
            return;
        }
        for (i, trigger) in self.triggers.iter().enumerate() {
            let at = format!("triggers[{i}]");
            if !is_snake_case(&trigger.name) {
                problems.push(format!(
                    "{at}.name {:?} must be snake_case ([a-z][a-z0-9]* words joined by '_'), at most {MAX_NAME_LEN} bytes",
                    truncate(&trigger.name)
                ));
            } else if self.triggers[..i].iter().any(|t| t.name == trigger.name) {
                problems.push(format!("{at}.name {:?} is declared twice", trigger.name));
            }
            check_display_name(&format!("{at}.display-name"), &trigger.display_name, problems);
            if trigger.description.len() > MAX_DESCRIPTION_LEN {
                problems.push(format!("{at}.description is longer than {MAX_DESCRIPTION_LEN} bytes"));
            }
            match parse_json(&trigger.config_schema) {
                Err(why) => problems.push(format!("{at}.config-schema {why}")),
                Ok(schema) if !is_object_schema(&schema) => {
                    problems.push(format!("{at}.config-schema must be a JSON Schema of \"type\": \"object\""));
                }
                Ok(schema) => {
                    if let Some(sharing) = &trigger.sharing {
                        sharing.validate(&at, trigger.strategy, &schema, problems);
                    }
                }
            }
            if let Err(why) = parse_json(&trigger.sample_event) {
                problems.push(format!("{at}.sample-event {why}"));
            }
        }
    }
}

/// Most config properties a sharing key may name.
const MAX_KEY_FIELDS: usize = 8;

impl Sharing {
    /// Only webhook triggers share (a poll has no registration), and every
    /// named field must be a property of the config schema: a typo would
    /// otherwise put every trigger in one registration.
    fn validate(&self, at: &str, strategy: Strategy, schema: &serde_json::Value, problems: &mut Vec<String>) {
        if strategy != Strategy::Webhook {
            problems.push(format!("{at}.sharing is for webhook triggers only"));
        }
        if self.key_fields.len() > MAX_KEY_FIELDS {
            problems.push(format!("{at}.sharing.key-fields names more than {MAX_KEY_FIELDS} properties"));
            return;
        }
        let properties = schema.get("properties").and_then(|p| p.as_object());
        let declared = |name: &str| properties.is_some_and(|p| p.contains_key(name));
        for field in self.key_fields.iter().chain(&self.events_field) {
            if !declared(field) {
                problems.push(format!("{at}.sharing names {:?}, which is not a property of the config schema", truncate(field)));
            }
        }
        if let Some(events) = &self.events_field
            && self.key_fields.contains(events)
        {
            problems.push(format!("{at}.sharing.events-field {events:?} is also a key field"));
        }
    }
}

fn check_display_name(field: &str, value: &str, problems: &mut Vec<String>) {
    if value.trim().is_empty() || value.len() > MAX_DISPLAY_NAME_LEN || value.chars().any(char::is_control) {
        problems.push(format!(
            "{field} must be 1 to {MAX_DISPLAY_NAME_LEN} bytes of printable text"
        ));
    }
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    if text.len() > MAX_JSON_LEN {
        return Err(format!("is longer than {MAX_JSON_LEN} bytes"));
    }
    serde_json::from_str(text).map_err(|e| format!("is not valid JSON: {e}"))
}

fn is_object_schema(schema: &serde_json::Value) -> bool {
    schema.as_object().is_some_and(|o| o.get("type").is_none_or(|t| t == "object"))
}

/// `api.example.com` or `*.example.com`: lower-case labels of letters, digits
/// and inner hyphens.
fn is_host_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Quoting a guest-chosen string in an error: keep messages short.
fn truncate(text: &str) -> &str {
    super::cut(text, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Manifest {
        Manifest {
            name: "standard-webhooks".into(),
            display_name: "Standard Webhooks".into(),
            version: "0.1.0".into(),
            description: String::new(),
            capabilities: CapabilityRequest { outbound_hosts: vec!["api.github.com".into(), "*.slack.com".into()], key_value: true },
            auth: crate::contract::Auth::None,
            triggers: vec![TriggerDefinition {
                name: "message_received".into(),
                display_name: "Message received".into(),
                description: String::new(),
                strategy: Strategy::Webhook,
                config_schema: r#"{"type":"object","properties":{"repo":{"type":"string"},"events":{"type":"array"}}}"#.into(),
                sample_event: "{}".into(),
                sharing: None,
            }],
        }
    }

    #[test]
    fn a_valid_manifest_passes() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported() {
        let mut m = valid();
        m.name = "Standard Webhooks".into();
        m.version = "one".into();
        m.capabilities.outbound_hosts.push("https://evil.com:443".into());
        m.triggers.push(m.triggers[0].clone());
        m.triggers[0].config_schema = r#"{"type":"string"}"#.into();
        m.triggers[1].sample_event = "{".into();
        let problems = m.validate().expect_err("invalid").problems;
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].contains("kebab-case"));
        assert!(problems[1].contains("semver"));
        assert!(problems[2].contains("outbound host"));
        assert!(problems[3].contains("type"));
        assert!(problems[4].contains("declared twice"));
        assert!(problems[5].contains("sample-event"));
    }

    #[test]
    fn sharing_names_declared_properties_of_a_webhook_trigger() {
        let mut m = valid();
        m.triggers[0].sharing = Some(Sharing { key_fields: vec!["repo".into()], events_field: Some("events".into()) });
        assert_eq!(m.validate(), Ok(()));
        m.triggers[0].sharing = Some(Sharing { key_fields: vec!["repository".into(), "repo".into()], events_field: Some("repo".into()) });
        m.triggers[0].strategy = Strategy::Polling;
        let problems = m.validate().expect_err("invalid").problems;
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("webhook triggers only"));
        assert!(problems[1].contains("\"repository\", which is not a property"));
        assert!(problems[2].contains("also a key field"));
    }

    #[test]
    fn no_triggers_is_rejected() {
        let mut m = valid();
        m.triggers.clear();
        assert!(m.validate().is_err());
    }
}
