//! The trigger context the benchmarks call connectors with: one trigger,
//! no connection, no issued secrets.

use triggerhost::contract::TriggerContext;

/// A context for trigger `trigger_name` with `config` and `secret`.
pub fn of(trigger_name: &str, config: &str, secret: Option<&str>) -> TriggerContext {
    TriggerContext {
        trigger_id: "trg_bench".into(),
        trigger_name: trigger_name.into(),
        config: config.into(),
        secret: secret.map(str::to_owned),
        webhook_url: "http://127.0.0.1:8080/hooks/trg_bench".into(),
        credentials: None,
        issued_secrets: Vec::new(),
    }
}
