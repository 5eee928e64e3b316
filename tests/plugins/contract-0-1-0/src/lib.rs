//! A webhook connector against `triggerhost:connector@0.1.0`, written with
//! wit-bindgen and no SDK: a delivery is authentic when its `x-token`
//! header is the trigger's secret; each becomes one `legacy.event`.
//! `on-enable` reports an expiry `lifetime_ms` ahead (config, default a
//! minute), so the host's renewal of a 0.1.0 trigger (which has no
//! `renew`: the host calls `on-enable` again) is exercised too.

// The generated glue (exports by symbol name, raw pointers) is unsafe code.
#[allow(unsafe_code, clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ path: "../../../wit/0.1.0", world: "connector", pub_export_macro: true });
}

use bindings::Guest;
use bindings::triggerhost::connector::log::{Level, write};
use bindings::triggerhost::connector::types::*;

struct Legacy;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Guest for Legacy {
    fn describe() -> Manifest {
        Manifest {
            name: "legacy-contract".into(),
            display_name: "Contract 0.1.0".into(),
            version: "0.1.0".into(),
            description: "Built from the 0.1.0 WIT.".into(),
            capabilities: CapabilityRequest { outbound_hosts: Vec::new(), key_value: false },
            triggers: vec![TriggerDefinition {
                name: "hook".into(),
                display_name: "Hook".into(),
                description: String::new(),
                strategy: Strategy::Webhook,
                config_schema: r#"{"type":"object"}"#.into(),
                sample_event: "{}".into(),
            }],
        }
    }

    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: serde_json::Value = serde_json::from_str(&ctx.config).unwrap_or_default();
        let lifetime = config.get("lifetime_ms").and_then(serde_json::Value::as_u64).unwrap_or(60_000);
        write(Level::Info, "enabled");
        Ok(EnableInfo { expires_at_ms: Some(now_ms().saturating_add(lifetime)) })
    }

    fn on_disable(_ctx: TriggerContext) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let token = request.headers.iter().find(|(name, _)| name == "x-token").map(|(_, value)| value);
        Ok(match (token, ctx.secret) {
            (Some(token), Some(secret)) if *token == secret => Verdict::Accept,
            _ => Verdict::Reject("x-token is not the secret".into()),
        })
    }

    fn run(_ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        let RunInput::Webhook(request) = input else {
            return Ok(RunOutput { events: Vec::new(), response: None });
        };
        let payload = String::from_utf8(request.body).map_err(|_| ConnectorError {
            code: ErrorCode::BadRequest,
            message: "body is not UTF-8".into(),
            retryable: false,
        })?;
        let event = Event { dedupe_key: None, event_type: "legacy.event".into(), occurred_at_ms: None, payload };
        Ok(RunOutput { events: vec![event], response: None })
    }
}

#[allow(unsafe_code)]
mod exported {
    use super::Legacy;
    crate::bindings::export!(Legacy with_types_in crate::bindings);
}
