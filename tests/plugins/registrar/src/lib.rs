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
    /// Asks the provider to sign deliveries with a secret it generates.
    #[serde(default)]
    signed: bool,
}

/// The name the provider's signing secret is kept under.
const SIGNING: &str = "signing";

/// The header a delivery from the provider names its hook with.
const HOOK_HEADER: &str = "x-hook-id";

impl Connector for Registrar {
    fn describe() -> Manifest {
        let config = ConfigSchema::new()
            .prop("provider", Prop::string("Provider API base URL").required())
            .prop(
                "token",
                Prop::string("Provider API token").secret().required(),
            )
            .prop("signed", Prop::boolean("Signed deliveries"));
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
            .json(&serde_json::json!({ "url": ctx.webhook_url, "events": ["*"], "signed": config.signed }))?;
        let (id, answer) = registration::register_answer(request, "/id")?;
        log::info(&format!("registered hook {id}"));
        let issued = answer.as_ref().and_then(|a| a.get("secret")).and_then(|s| s.as_str());
        Ok(match issued {
            Some(secret) => EnableInfo::never_expires().issue_secret(SIGNING, secret),
            None => EnableInfo::never_expires(),
        })
    }

    fn on_disable(ctx: TriggerContext) -> Result<(), ConnectorError> {
        let config: Config = ctx.config()?;
        registration::unregister(|id| {
            Request::delete(&format!("{}/hooks/{id}", config.provider)).bearer(&config.token)
        })
    }

    /// A delivery must name the hook this trigger registered and, when the
    /// provider issued a signing secret, carry its signature of the body.
    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let registered = store::get_string(registration::HOOK_ID_KEY)?;
        let named = matches!((registered, request.header(HOOK_HEADER)), (Some(id), Some(named)) if id == named);
        if !named {
            return Ok(Verdict::Reject("the delivery does not name this trigger's hook".into()));
        }
        if let Some(secret) = ctx.issued_secret(SIGNING) {
            let signature = request.header("x-hook-signature").unwrap_or_default();
            if !signature::verify_hmac_sha256_hex(secret.as_bytes(), &[&request.body], signature) {
                return Ok(Verdict::Reject("x-hook-signature does not match".into()));
            }
        }
        Ok(Verdict::Accept)
    }

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(vec![Event::from_json_body(
            "provider.event",
            request.body,
        )?]))
    }
}

export_connector!(Registrar);
