//! A triggerhost connector for Shopify webhooks: `X-Shopify-Hmac-Sha256`
//! verified, one event per delivery typed by its `X-Shopify-Topic`
//! (`orders/create`), keyed by `X-Shopify-Webhook-Id` so redeliveries are
//! stored once, optionally only for the topics the config lists.

pub mod scheme;

use serde_json::json;
use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::*;

struct Shopify;

/// The trigger's config.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these topics become events (all when absent or empty).
    #[serde(default)]
    topics: Vec<String>,
}

impl Connector for Shopify {
    fn describe() -> Manifest {
        let config = ConfigSchema::new()
            .prop("topics", Prop::string_list("Topics").description("Only these topics become events, e.g. orders/create; all when empty."));
        ManifestBuilder::new("shopify", "Shopify", env!("CARGO_PKG_VERSION"))
            .description("Receives Shopify webhooks, HMAC verified.")
            .trigger(
                TriggerBuilder::webhook("webhook", "Shopify webhook")
                    .description("Fires once per delivery; the secret is the app's client secret.")
                    .config(config)
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

    fn run(ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        let RunInput::Webhook(request) = input else {
            return Err(ConnectorError::new(ErrorCode::BadRequest, "this connector is not polled"));
        };
        let config: Config = ctx.config()?;
        let topic = request.header("x-shopify-topic").unwrap_or("shopify.webhook").to_owned();
        if !config.topics.is_empty() && !config.topics.contains(&topic) {
            // Acknowledged (Shopify retries anything else), not kept.
            return Ok(RunOutput::from_events(Vec::new()));
        }
        let id = request.header("x-shopify-webhook-id").map(str::to_owned);
        let _: serde_json::Value = request.json()?;
        let body = String::from_utf8(request.body)
            .map_err(|_| ConnectorError::new(ErrorCode::BadRequest, "body is not UTF-8"))?;
        let mut event = Event::raw(&topic, body);
        if let Some(id) = id {
            event = event.dedupe_key(id);
        }
        Ok(RunOutput::from_events(vec![event]))
    }
}

export_connector!(Shopify);
