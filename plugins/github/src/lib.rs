//! A triggerhost connector for GitHub webhooks: `X-Hub-Signature-256`
//! verified, one event per delivery typed `event.action` (`issues.opened`,
//! or `push`), keyed by `X-GitHub-Delivery`, optionally only for the events
//! the config lists. `ping` is answered and not emitted. Given a repository
//! and a token, enabling the trigger registers the repository webhook and
//! disabling it removes the webhook.

pub mod scheme;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use triggerhost_sdk::schema::{ConfigSchema, secret};
use triggerhost_sdk::*;

struct GitHub;

/// The trigger's config; its JSON Schema is derived from it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Only these events become events: `push`, `issues` (every action) or
    /// `issues.opened` (one); all when empty.
    #[serde(default)]
    events: Vec<String>,
    /// The repository (owner/name) whose webhook the trigger registers when
    /// enabled; leave out to add the webhook by hand.
    #[schemars(pattern(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"))]
    repository: Option<String>,
    /// A token that may manage the repository's webhooks (fine-grained:
    /// Webhooks read and write; classic: admin:repo_hook), when the trigger
    /// has no OAuth connection.
    #[schemars(transform = secret)]
    token: Option<String>,
    /// The REST API base, for GitHub Enterprise Server: https://HOST/api/v3.
    #[serde(default = "default_api_url")]
    api_url: String,
}

/// The API host the manifest asks to reach. A GitHub Enterprise Server
/// deployment builds the connector with `GITHUB_API_HOST=github.example.com`
/// (and sets `api_url` to `https://github.example.com/api/v3`).
const API_HOST: &str = match option_env!("GITHUB_API_HOST") {
    Some(host) => host,
    None => "api.github.com",
};

/// Where OAuth2 runs: github.com for the API at api.github.com, the
/// server itself for GitHub Enterprise Server.
const OAUTH_HOST: &str = match option_env!("GITHUB_API_HOST") {
    Some(host) => host,
    None => "github.com",
};

/// Sign in with a GitHub OAuth app; the token may manage repository hooks.
fn oauth() -> Auth {
    Auth::Oauth2(Oauth2Auth {
        authorize_url: format!("https://{OAUTH_HOST}/login/oauth/authorize"),
        token_url: format!("https://{OAUTH_HOST}/login/oauth/access_token"),
        scopes: vec!["admin:repo_hook".into()],
        pkce: true,
        extra_params: Vec::new(),
    })
}

fn default_api_url() -> String {
    format!("https://{API_HOST}")
}

impl Config {
    /// The repository and token, when the trigger registers its own webhook:
    /// the OAuth connection's access token, else the config's token.
    fn registration<'a>(&'a self, ctx: &'a TriggerContext) -> Option<(&'a str, &'a str)> {
        let token = ctx.access_token().ok().or(self.token.as_deref())?;
        Some((self.repository.as_deref()?, token))
    }
}

/// A request to the repository's hooks API with GitHub's headers.
fn hooks_api(method: &str, config: &Config, repository: &str, token: &str, tail: &str) -> Request {
    let url = format!("{}/repos/{repository}/hooks{tail}", config.api_url.trim_end_matches('/'));
    Request::new(method, &url)
        .bearer(token)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
}

impl Connector for GitHub {
    fn describe() -> Manifest {
        ManifestBuilder::new("github", "GitHub", env!("CARGO_PKG_VERSION"))
            .description("Receives GitHub webhooks, signature verified; registers the repository webhook when given a token.")
            .outbound_host(API_HOST)
            .outbound_host(OAUTH_HOST)
            .key_value()
            .auth(oauth())
            .trigger(
                TriggerBuilder::webhook("event", "GitHub event")
                    .description("Fires once per delivery; the secret is the webhook's secret.")
                    .config(ConfigSchema::of::<Config>())
                    .sample_event(&json!({
                        "action": "opened",
                        "issue": { "number": 1347, "title": "Found a bug" },
                        "repository": { "full_name": "octocat/Hello-World" },
                        "sender": { "login": "octocat" }
                    })),
            )
            .build()
    }

    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        let Some((repository, token)) = config.registration(&ctx) else {
            return Ok(EnableInfo::never_expires());
        };
        let body = json!({
            "name": "web",
            "active": true,
            "events": scheme::subscriptions(&config.events),
            "config": {
                "url": ctx.webhook_url,
                "content_type": "json",
                "secret": ctx.require_secret()?,
                "insecure_ssl": "0",
            },
        });
        let id = registration::register(hooks_api("POST", &config, repository, token, "").json(&body)?, "/id")?;
        log::info(&format!("registered webhook {id} on {repository}"));
        Ok(EnableInfo::never_expires())
    }

    fn on_disable(ctx: TriggerContext) -> Result<(), ConnectorError> {
        let config: Config = ctx.config()?;
        let Some((repository, token)) = config.registration(&ctx) else {
            return Ok(());
        };
        registration::unregister(|id| hooks_api("DELETE", &config, repository, token, &format!("/{id}")))
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let header = request.header("x-hub-signature-256");
        Ok(match scheme::verify(ctx.require_secret()?, header, &request.body) {
            Ok(()) => Verdict::Accept,
            Err(rejection) => Verdict::Reject(rejection.to_string()),
        })
    }

    fn receive(ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        let event = request
            .header("x-github-event")
            .ok_or_else(|| ConnectorError::new(ErrorCode::BadRequest, "missing header x-github-event"))?
            .to_owned();
        if event == "ping" {
            // GitHub's check that the webhook works: answered, not an event.
            return Ok(RunOutput { events: Vec::new(), response: Some(HttpResponse::text(200, "pong")) });
        }
        let config: Config = ctx.config()?;
        let payload: Value = request.json()?;
        let event_type = scheme::event_type(&event, &payload);
        if !scheme::wanted(&config.events, &event_type) {
            // Acknowledged (GitHub would report a failure otherwise), not kept.
            return Ok(RunOutput::from_events(Vec::new()));
        }
        let delivery = request.header("x-github-delivery").map(str::to_owned);
        let mut event = Event::from_json_body(&event_type, request.body)?;
        if let Some(delivery) = delivery {
            event = event.dedupe_key(delivery);
        }
        Ok(RunOutput::from_events(vec![event]))
    }
}

export_connector!(GitHub);
