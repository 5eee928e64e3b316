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

    fn receive(_ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        Ok(RunOutput::from_events(vec![Event::from_json_body("oauthed.event", request.body)?]))
    }
}

export_connector!(Oauthed);
