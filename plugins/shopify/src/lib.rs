//! A triggerhost connector for Shopify webhooks: `X-Shopify-Hmac-Sha256`
//! verified, one event per delivery typed by its `X-Shopify-Topic`
//! (`orders/create`), keyed by `X-Shopify-Webhook-Id` so redeliveries are
//! stored once, optionally only for the topics the config lists.

pub mod scheme;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use triggerhost_sdk::schema::ConfigSchema;
use triggerhost_sdk::*;

struct Shopify;

/// The trigger's config; its JSON Schema is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these topics become events, e.g. orders/create; all when empty.
    #[serde(default)]
    topics: Vec<String>,
}

impl Connector for Shopify {
    fn describe() -> Manifest {
        ManifestBuilder::new("shopify", "Shopify", env!("CARGO_PKG_VERSION"))
            .description("Receives Shopify webhooks, HMAC verified.")
            .trigger(
                TriggerBuilder::webhook("webhook", "Shopify webhook")
                    .description("Fires once per delivery; the secret is the app's client secret.")
                    .config(ConfigSchema::of::<Config>())
                    .sample_event(&json!({ "id": 820_982_911_946_154_508u64, "email": "jon@example.com", "total_price": "199.00" })),
            )
            .build()
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let header = request.header("x-shopify-hmac-sha256");
        Ok(match scheme::verify(ctx.require_secret()?, header, &request.body) {
            Ok(()) => Verdict::Accept,
            Err(rejection) => Verdict::Reject(rejection.to_string()),
        })
    }

    fn receive(ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        let config: Config = ctx.config()?;
        let topic = request.header("x-shopify-topic").unwrap_or("shopify.webhook").to_owned();
        if !config.topics.is_empty() && !config.topics.contains(&topic) {
            // Acknowledged (Shopify retries anything else), not kept.
            return Ok(RunOutput::from_events(Vec::new()));
        }
        let id = request.header("x-shopify-webhook-id").map(str::to_owned);
        let mut event = Event::from_json_body(&topic, request.body)?;
        if let Some(id) = id {
            event = event.dedupe_key(id);
        }
        Ok(RunOutput::from_events(vec![event]))
    }
}

export_connector!(Shopify);
