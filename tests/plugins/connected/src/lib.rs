//! A connector authenticated by an API key: operators create a
//! `secret-text` connection and triggers use it. A delivery is authentic
//! when its `x-api-key` header is the connection's key, which shows the
//! tests that calls see their connection's current credentials.

use triggerhost_sdk::*;

struct Connected;

impl Connector for Connected {
    fn describe() -> Manifest {
        ManifestBuilder::new("connected", "Connected", "0.1.0")
            .description("Authenticates with an API key kept in a connection.")
            .auth(Auth::SecretText(SecretTextAuth {
                label: "API key".into(),
                description: "Settings > API keys at the provider.".into(),
            }))
            .trigger(TriggerBuilder::webhook("hook", "Hook"))
            .build()
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let Some(Credentials::SecretText(key)) = &ctx.credentials else {
            return Err(ConnectorError::new(ErrorCode::Unauthorized, "the trigger has no API key connection"));
        };
        let given = request.header("x-api-key").unwrap_or_default();
        Ok(if signature::constant_time_eq(given.as_bytes(), key.as_bytes()) {
            Verdict::Accept
        } else {
            Verdict::Reject("x-api-key is not the connection's key".into())
        })
    }

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(vec![Event::from_json_body("connected.event", request.body)?]))
    }
}

export_connector!(Connected);
