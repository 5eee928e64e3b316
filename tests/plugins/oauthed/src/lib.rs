//! A connector authenticated by OAuth2, as a Gmail or HubSpot connector
//! is: the host runs the flow and refreshes the token; calls see only the
//! access token. A delivery is authentic when it carries
//! `authorization: Bearer <the connection's access token>`, which shows the
//! tests which token calls see.

use triggerhost_sdk::*;

struct Oauthed;

impl Connector for Oauthed {
    fn describe() -> Manifest {
        ManifestBuilder::new("oauthed", "OAuthed", "0.1.0")
            .description("Authenticates with OAuth2; the operator overrides the endpoints for a test provider.")
            .outbound_host("127.0.0.1")
            .auth(Auth::Oauth2(Oauth2Auth {
                authorize_url: "https://provider.example/oauth/authorize".into(),
                token_url: "https://provider.example/oauth/token".into(),
                scopes: vec!["read".into(), "events".into()],
                pkce: true,
                extra_params: vec![("access_type".into(), "offline".into())],
            }))
            .trigger(TriggerBuilder::webhook("hook", "Hook"))
            .trigger(
                TriggerBuilder::polling("items", "Items")
                    .config(schema::ConfigSchema::new().prop("provider", schema::Prop::string("API base URL").required())),
            )
            .build()
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let expected = format!("Bearer {}", ctx.access_token()?);
        let given = request.header("authorization").unwrap_or_default();
        Ok(if signature::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Verdict::Accept
        } else {
            Verdict::Reject("not the connection's access token".into())
        })
    }

    /// A polling trigger checks its access on enable, as a connector that
    /// registers a subscription would use it.
    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        if ctx.trigger_name == "items" {
            Self::poll(ctx, PollTick { scheduled_at_ms: 0, last_success_at_ms: None })?;
        }
        Ok(EnableInfo::never_expires())
    }

    /// Lists the provider's items with the access token; a 401 is
    /// `unauthorized`, which makes the host refresh the token and poll again.
    fn poll(ctx: TriggerContext, _tick: PollTick) -> Result<RunOutput, ConnectorError> {
        let config: serde_json::Value = ctx.config()?;
        let base = config.get("provider").and_then(|p| p.as_str()).unwrap_or_default();
        let items: Vec<serde_json::Value> =
            Request::get(&format!("{base}/api/items")).bearer(ctx.access_token()?).send()?.error_for_status()?.json()?;
        let events = items.iter().map(|item| Event::json("item", item)).collect::<Result<Vec<_>, _>>()?;
        Ok(RunOutput::from_events(events))
    }

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(vec![Event::from_json_body("oauthed.event", request.body)?]))
    }
}

export_connector!(Oauthed);
