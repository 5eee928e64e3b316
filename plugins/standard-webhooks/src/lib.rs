//! A triggerhost connector for webhooks signed per the Standard Webhooks spec
//! (<https://www.standardwebhooks.com>): Svix, Resend, Clerk, Lemon Squeezy and
//! anyone else using the spec's `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers with a `whsec_` secret.
//!
//! One event per delivery, keyed by `webhook-id` so redeliveries are stored
//! once; its type is the payload's `type` field when there is one.

pub mod scheme;

use serde_json::{Value, json};
use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::signature::now_secs;
use triggerhost_sdk::*;

struct StandardWebhooks;

/// The trigger's config.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Allowed clock skew, in seconds; the spec's 5 minutes by default.
    tolerance_secs: Option<u64>,
}

fn headers(request: &WebhookRequest) -> scheme::SignedHeaders<'_> {
    scheme::SignedHeaders {
        id: request.header("webhook-id"),
        timestamp: request.header("webhook-timestamp"),
        signature: request.header("webhook-signature"),
    }
}

impl Connector for StandardWebhooks {
    fn describe() -> Manifest {
        let config = ConfigSchema::new().prop(
            "tolerance_secs",
            Prop::integer("Timestamp tolerance (seconds)")
                .description("How far webhook-timestamp may be from now, either way.")
                .minimum(1)
                .maximum(3600)
                .default_value(scheme::DEFAULT_TOLERANCE_SECS),
        );
        ManifestBuilder::new("standard-webhooks", "Standard Webhooks", env!("CARGO_PKG_VERSION"))
            .description("Receives webhooks signed per the Standard Webhooks spec (Svix, Resend, Clerk, ...).")
            .trigger(
                TriggerBuilder::webhook("message_received", "Message received")
                    .description("Fires once per signed delivery; the secret is the sender's whsec_ secret, or its whpk_ public key for ed25519 (v1a) signatures.")
                    .config(config)
                    .sample_event(&json!({ "type": "invoice.paid", "data": { "id": "inv_123" } })),
            )
            .build()
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let config: Config = ctx.config()?;
        let key = scheme::Key::from_secret(ctx.require_secret()?).ok_or_else(|| {
            ConnectorError::new(ErrorCode::InvalidConfig, "secret is neither whsec_<base64> nor whpk_<base64 ed25519 key>")
        })?;
        let tolerance = config.tolerance_secs.unwrap_or(scheme::DEFAULT_TOLERANCE_SECS);
        Ok(match scheme::verify(&key, headers(&request), &request.body, now_secs(), tolerance) {
            Ok(_) => Verdict::Accept,
            Err(rejection) => Verdict::Reject(rejection.to_string()),
        })
    }

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        let payload: Value = request.json()?;
        let event_type = scheme::event_type(&payload).to_owned();
        let id = request.header("webhook-id").map(str::to_owned);
        let occurred_at = request.header("webhook-timestamp").and_then(|t| t.parse::<u64>().ok());
        // The sender's JSON exactly as received.
        let mut event = Event::from_json_body(&event_type, request.body)?;
        if let Some(id) = id {
            event = event.dedupe_key(id);
        }
        if let Some(ts) = occurred_at {
            event = event.occurred_at_ms(ts.saturating_mul(1000));
        }
        Ok(RunOutput::from_events(vec![event]))
    }
}

export_connector!(StandardWebhooks);
