//! A triggerhost connector for Stripe webhooks: the `Stripe-Signature`
//! header verified (every `v1` signature, so secret roll-overs work, and a
//! timestamp within the tolerance, so an old delivery cannot be replayed),
//! one event per Stripe event, keyed by its `evt_` id, typed by its `type`,
//! optionally only for the event types the config lists.

pub mod scheme;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use triggerhost_sdk::schema::ConfigSchema;
use triggerhost_sdk::signature::now_secs;
use triggerhost_sdk::*;

struct Stripe;

/// The trigger's config; its JSON Schema is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these event types become events, e.g. invoice.paid; all when empty.
    #[serde(default)]
    event_types: Vec<String>,
    /// How far the signature's timestamp may be from now, either way, in seconds.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 1, max = 3600))]
    tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    scheme::DEFAULT_TOLERANCE_SECS
}

impl Connector for Stripe {
    fn describe() -> Manifest {
        ManifestBuilder::new("stripe", "Stripe", env!("CARGO_PKG_VERSION"))
            .description("Receives Stripe webhook events, signature and timestamp verified.")
            .trigger(
                TriggerBuilder::webhook("event", "Stripe event")
                    .description("Fires once per Stripe event; the secret is the endpoint's whsec_ signing secret.")
                    .config(ConfigSchema::of::<Config>())
                    .sample_event(&json!({
                        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
                        "object": "event",
                        "type": "invoice.paid",
                        "created": 1_686_089_970,
                        "data": { "object": { "id": "in_1NG8Du2eZvKYlo2C", "object": "invoice", "amount_paid": 2000 } }
                    })),
            )
            .build()
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let config: Config = ctx.config()?;
        let header = request.header("stripe-signature");
        Ok(match scheme::verify(ctx.require_secret()?, header, &request.body, now_secs(), config.tolerance_secs) {
            Ok(_) => Verdict::Accept,
            Err(rejection) => Verdict::Reject(rejection.to_string()),
        })
    }

    fn receive(ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        let config: Config = ctx.config()?;
        let payload: Value = request.json()?;
        let event_type = payload.get("type").and_then(Value::as_str).unwrap_or("stripe.event").to_owned();
        if !config.event_types.is_empty() && !config.event_types.contains(&event_type) {
            // Acknowledged (Stripe retries anything else), not kept.
            return Ok(RunOutput::from_events(Vec::new()));
        }
        let id = payload.get("id").and_then(Value::as_str).map(str::to_owned);
        let created = payload.get("created").and_then(Value::as_u64);
        // The event exactly as Stripe sent it.
        let mut event = Event::from_json_body(&event_type, request.body)?;
        if let Some(id) = id {
            event = event.dedupe_key(id);
        }
        if let Some(created) = created {
            event = event.occurred_at_ms(created.saturating_mul(1000));
        }
        Ok(RunOutput::from_events(vec![event]))
    }
}

export_connector!(Stripe);
