//! A connector that registers its trigger's webhook URL at a provider when
//! the trigger is enabled and removes it when it is disabled, the way a
//! GitHub or Stripe connector would. Tests point it at a fake provider on
//! 127.0.0.1, which the operator grants.

use serde::Deserialize;
use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::*;

struct Registrar;

#[derive(Deserialize)]
struct Config {
    /// The provider's API base, e.g. `http://127.0.0.1:4000`.
    provider: String,
    /// The provider's API token.
    token: String,
}

/// The header a delivery from the provider names its hook with.
const HOOK_HEADER: &str = "x-hook-id";

impl Connector for Registrar {
    fn describe() -> Manifest {
        let config = ConfigSchema::new()
            .prop("provider", Prop::string("Provider API base URL").required())
            .prop(
                "token",
                Prop::string("Provider API token").secret().required(),
            );
        ManifestBuilder::new("registrar", "Registrar", "0.1.0")
            .description("Registers its webhook at the provider on enable, removes it on disable.")
            .outbound_host("127.0.0.1")
            .key_value()
            .trigger(TriggerBuilder::webhook("hook", "Hook").config(config))
            .build()
    }

    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        let request = Request::post(&format!("{}/hooks", config.provider))
            .bearer(&config.token)
            .json(&serde_json::json!({ "url": ctx.webhook_url, "events": ["*"] }))?;
        let id = registration::register(request, "/id")?;
        log::info(&format!("registered hook {id}"));
        Ok(EnableInfo {
            expires_at_ms: None,
        })
    }

    fn on_disable(ctx: TriggerContext) -> Result<(), ConnectorError> {
        let config: Config = ctx.config()?;
        registration::unregister(|id| {
            Request::delete(&format!("{}/hooks/{id}", config.provider)).bearer(&config.token)
        })
    }

    /// A delivery must name the hook this trigger registered.
    fn verify(_ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let registered = store::get_string(registration::HOOK_ID_KEY)?;
        match (registered, request.header(HOOK_HEADER)) {
            (Some(id), Some(named)) if id == named => Ok(Verdict::Accept),
            _ => Ok(Verdict::Reject(
                "the delivery does not name this trigger's hook".into(),
            )),
        }
    }

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(vec![Event::from_json_body(
            "provider.event",
            request.body,
        )?]))
    }
}

export_connector!(Registrar);
