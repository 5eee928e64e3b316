//! A connector whose subscriptions at the provider expire, the way a Gmail
//! watch or a Microsoft Graph subscription does. Tests point it at a fake
//! provider on 127.0.0.1 whose subscriptions live seconds.
//!
//! The provider's API: `POST /subscriptions` creates one and answers its
//! `id` and `expires_at_ms`; `POST /subscriptions/{id}/renew` extends it
//! (404 once the provider has dropped it); `DELETE /subscriptions/{id}`.

use schemars::JsonSchema;
use serde::Deserialize;
use triggerhost_sdk::schema::ConfigSchema;
use triggerhost_sdk::*;

struct Subscriber;

/// The trigger's config.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The provider's API base, e.g. `http://127.0.0.1:4000`.
    provider: String,
}

/// Where the subscription id is kept.
const SUBSCRIPTION_KEY: &str = "subscription.id";

#[derive(Deserialize)]
struct Subscription {
    id: String,
    expires_at_ms: u64,
}

impl Connector for Subscriber {
    fn describe() -> Manifest {
        ManifestBuilder::new("subscriber", "Subscriber", "0.1.0")
            .description("Subscribes at the provider; subscriptions expire and are renewed.")
            .outbound_host("127.0.0.1")
            .key_value()
            .trigger(TriggerBuilder::webhook("changes", "Changes").config(ConfigSchema::of::<Config>()))
            .build()
    }

    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        let request = Request::post(&format!("{}/subscriptions", config.provider))
            .json(&serde_json::json!({ "url": ctx.webhook_url }))?;
        let subscription: Subscription = request.send()?.error_for_status()?.json()?;
        store::set_string(SUBSCRIPTION_KEY, &subscription.id)?;
        log::info(&format!("subscribed as {}", subscription.id));
        Ok(EnableInfo::expires_at(subscription.expires_at_ms))
    }

    fn renew(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        let Some(id) = store::get_string(SUBSCRIPTION_KEY)? else {
            return Err(ConnectorError::new(ErrorCode::Gone, "no subscription kept"));
        };
        // A 404 (the provider dropped it) is `gone`: the host enables again.
        let renewed: Subscription =
            Request::post(&format!("{}/subscriptions/{id}/renew", config.provider)).send()?.error_for_status()?.json()?;
        Ok(EnableInfo::expires_at(renewed.expires_at_ms))
    }

    fn on_disable(ctx: TriggerContext) -> Result<(), ConnectorError> {
        let config: Config = ctx.config()?;
        if let Some(id) = store::get_string(SUBSCRIPTION_KEY)? {
            let response = Request::delete(&format!("{}/subscriptions/{id}", config.provider)).send()?;
            if response.status() != 404 {
                response.error_for_status()?;
            }
            store::delete(SUBSCRIPTION_KEY)?;
        }
        Ok(())
    }

    fn verify(_ctx: TriggerContext, _request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        Ok(Verdict::Accept)
    }

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(vec![Event::from_json_body("change", request.body)?]))
    }
}

export_connector!(Subscriber);
