//! A triggerhost connector for Stripe webhooks: the `Stripe-Signature`
//! header verified (every `v1` signature, so secret roll-overs work, and a
//! timestamp within the tolerance, so an old delivery cannot be replayed),
//! one event per Stripe event, keyed by its `evt_` id, typed by its `type`,
//! optionally only for the event types the config lists.

pub mod scheme;

use serde_json::{Value, json};
use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::signature::now_secs;
use triggerhost_sdk::*;

struct Stripe;

/// The trigger's config.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these event types become events (all when absent or empty).
    #[serde(default)]
    event_types: Vec<String>,
    /// Allowed clock skew, in seconds.
    tolerance_secs: Option<u64>,
}

impl Connector for Stripe {
    fn describe() -> Manifest {
        let config = ConfigSchema::new()
            .prop(
                "event_types",
                Prop::string_list("Event types").description("Only these types become events, e.g. invoice.paid; all when empty."),
            )
            .prop(
                "tolerance_secs",
                Prop::integer("Timestamp tolerance (seconds)")
                    .description("How far the signature's timestamp may be from now, either way.")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(scheme::DEFAULT_TOLERANCE_SECS),
            );
        ManifestBuilder::new("stripe", "Stripe", env!("CARGO_PKG_VERSION"))
            .description("Receives Stripe webhook events, signature and timestamp verified.")
            .trigger(
                TriggerBuilder::webhook("event", "Stripe event")
                    .description("Fires once per Stripe event; the secret is the endpoint's whsec_ signing secret.")
                    .config(config)
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
        let tolerance = config.tolerance_secs.unwrap_or(scheme::DEFAULT_TOLERANCE_SECS);
        let header = request.header("stripe-signature");
        Ok(match scheme::verify(ctx.require_secret()?, header, &request.body, now_secs(), tolerance) {
            Ok(_) => Verdict::Accept,
            Err(rejection) => Verdict::Reject(rejection.to_string()),
        })
    }

    fn run(ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        let RunInput::Webhook(request) = input else {
            return Err(ConnectorError::new(ErrorCode::BadRequest, "this connector is not polled"));
        };
        let config: Config = ctx.config()?;
        let payload: Value = request.json()?;
        let event_type = payload.get("type").and_then(Value::as_str).unwrap_or("stripe.event").to_owned();
        if !config.event_types.is_empty() && !config.event_types.contains(&event_type) {
            // Acknowledged (Stripe retries anything else), not kept.
            return Ok(RunOutput::from_events(Vec::new()));
        }
        let id = payload.get("id").and_then(Value::as_str).map(str::to_owned);
        let created = payload.get("created").and_then(Value::as_u64);
        // The event exactly as Stripe sent it (it parsed, so it is UTF-8).
        let body = String::from_utf8(request.body)
            .map_err(|_| ConnectorError::new(ErrorCode::BadRequest, "body is not UTF-8"))?;
        let mut event = Event::raw(&event_type, body);
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
