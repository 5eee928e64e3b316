//! A triggerhost connector for the Slack Events API: every request's
//! `X-Slack-Signature` and `X-Slack-Request-Timestamp` verified, the
//! `url_verification` handshake answered with its challenge, and one event
//! per `event_callback`, typed by the inner event's `type` and keyed by
//! `event_id`, so Slack's retries (`X-Slack-Retry-Num`) are stored once.

pub mod scheme;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use triggerhost_sdk::schema::ConfigSchema;
use triggerhost_sdk::signature::now_secs;
use triggerhost_sdk::*;

struct Slack;

/// The trigger's config; its JSON Schema is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these event types become events, e.g. app_mention; all when empty.
    #[serde(default)]
    event_types: Vec<String>,
    /// How far X-Slack-Request-Timestamp may be from now, either way, in seconds.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 1, max = 3600))]
    tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    scheme::DEFAULT_TOLERANCE_SECS
}

/// The parts of an Events API envelope the connector reads.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    event_time: Option<u64>,
    event: Option<Value>,
}

impl Connector for Slack {
    fn describe() -> Manifest {
        ManifestBuilder::new("slack", "Slack", env!("CARGO_PKG_VERSION"))
            .description("Receives Slack Events API callbacks, signature and timestamp verified.")
            .trigger(
                TriggerBuilder::webhook("event", "Slack event")
                    .description("Fires once per event callback; the secret is the app's signing secret.")
                    .config(ConfigSchema::of::<Config>())
                    .sample_event(&json!({
                        "type": "event_callback",
                        "team_id": "T1DC2JH3J",
                        "event_id": "Ev08MFMKH6",
                        "event_time": 1_234_567_890,
                        "event": { "type": "app_mention", "user": "U2147483697", "text": "<@U0LAN0Z89> is it everything a river should be?", "channel": "C2147483705" }
                    })),
            )
            .build()
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let config: Config = ctx.config()?;
        let timestamp = request.header("x-slack-request-timestamp");
        let signature = request.header("x-slack-signature");
        let secret = ctx.require_secret()?;
        if let Err(rejection) = scheme::verify(secret, timestamp, signature, &request.body, now_secs(), config.tolerance_secs) {
            return Ok(Verdict::Reject(rejection.to_string()));
        }
        // Slack signs the handshake too: answer it only once it verified.
        let envelope: Envelope = request.json()?;
        Ok(match (envelope.kind.as_str(), envelope.challenge) {
            ("url_verification", Some(challenge)) => Verdict::Respond(HttpResponse::text(200, challenge)),
            _ => Verdict::Accept,
        })
    }

    fn receive(ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        let config: Config = ctx.config()?;
        let envelope: Envelope = request.json()?;
        if envelope.kind != "event_callback" {
            // e.g. app_rate_limited: acknowledged, nothing to store.
            log::info(&format!("acknowledged a {} request", envelope.kind));
            return Ok(RunOutput::from_events(Vec::new()));
        }
        let event_type = envelope
            .event
            .as_ref()
            .and_then(|event| event.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("event_callback")
            .to_owned();
        if !config.event_types.is_empty() && !config.event_types.contains(&event_type) {
            return Ok(RunOutput::from_events(Vec::new()));
        }
        if let Some(retry) = request.header("x-slack-retry-num") {
            log::debug(&format!("Slack retry {retry} ({})", request.header("x-slack-retry-reason").unwrap_or("no reason")));
        }
        let mut event = Event::from_json_body(&event_type, request.body)?;
        if let Some(id) = envelope.event_id {
            event = event.dedupe_key(id);
        }
        if let Some(at) = envelope.event_time {
            event = event.occurred_at_ms(at.saturating_mul(1000));
        }
        Ok(RunOutput::from_events(vec![event]))
    }
}

export_connector!(Slack);
