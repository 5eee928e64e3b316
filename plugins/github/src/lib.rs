//! A triggerhost connector for GitHub webhooks: `X-Hub-Signature-256`
//! verified, one event per delivery typed `event.action` (`issues.opened`,
//! or `push`), keyed by `X-GitHub-Delivery`, optionally only for the events
//! the config lists. `ping` is answered and not emitted. Given a repository
//! and a token, enabling the trigger registers the repository webhook and
//! disabling it removes the webhook. Triggers on one repository (and
//! connection) share that webhook: GitHub caps a repository at 20, and one
//! hook subscribed to the union of their events serves them all; `sync`
//! checks it is still there and as registered.

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

/// What the repository webhook is made of: this trigger's URL and secret,
/// subscribed to the events its config lists.
fn hook_body(ctx: &TriggerContext, config: &Config) -> Result<Value, ConnectorError> {
    Ok(json!({
        "name": "web",
        "active": true,
        "events": scheme::subscriptions(&config.events),
        "config": {
            "url": ctx.webhook_url,
            "content_type": "json",
            "secret": ctx.require_secret()?,
            "insecure_ssl": "0",
        },
    }))
}

/// The id of a repository webhook already pointing at `url`, if any (the
/// first page of 100 is enough: GitHub allows 20 per repository).
fn find_hook(config: &Config, repository: &str, token: &str, url: &str) -> Result<Option<String>, ConnectorError> {
    let hooks: Vec<Value> = hooks_api("GET", config, repository, token, "?per_page=100").send()?.error_for_status()?.json()?;
    Ok(hooks
        .iter()
        .find(|hook| hook.pointer("/config/url").and_then(Value::as_str) == Some(url))
        .and_then(|hook| match hook.get("id")? {
            Value::Number(id) => Some(id.to_string()),
            Value::String(id) => Some(id.clone()),
            _ => None,
        }))
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
                    .shared(&["repository", "api_url"], Some("events"))
                    .sample_event(&json!({
                        "action": "opened",
                        "issue": { "number": 1347, "title": "Found a bug" },
                        "repository": { "full_name": "octocat/Hello-World" },
                        "sender": { "login": "octocat" }
                    })),
            )
            .build()
    }

    /// Registers the repository webhook, or takes over the one already
    /// there: the hook whose id is kept, else a hook already pointing at
    /// this trigger's URL (left by an earlier registration), each updated to
    /// the current events and secret; else a new one.
    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        let Some((repository, token)) = config.registration(&ctx) else {
            return Ok(EnableInfo::never_expires());
        };
        let body = hook_body(&ctx, &config)?;
        let kept = store::get_string(registration::HOOK_ID_KEY)?;
        let found = match kept {
            Some(id) => Some(id),
            None => find_hook(&config, repository, token, &ctx.webhook_url)?,
        };
        if let Some(id) = found {
            let response = hooks_api("PATCH", &config, repository, token, &format!("/{id}")).json(&body)?.send()?;
            if response.status() != 404 {
                response.error_for_status()?;
                store::set_string(registration::HOOK_ID_KEY, &id)?;
                log::info(&format!("took over webhook {id} on {repository}"));
                return Ok(EnableInfo::never_expires());
            }
            store::delete(registration::HOOK_ID_KEY)?;
        }
        let id = registration::register(hooks_api("POST", &config, repository, token, "").json(&body)?, "/id")?;
        log::info(&format!("registered webhook {id} on {repository}"));
        Ok(EnableInfo::never_expires())
    }

    /// Updates the webhook in place (its events, URL and secret); a hook
    /// on another repository or API is moved by removing the old one and
    /// registering anew.
    fn on_update(ctx: TriggerContext, change: RegistrationChange) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        let previous: Config = serde_json::from_str(&change.previous_config)
            .map_err(|e| ConnectorError::new(ErrorCode::InvalidConfig, format!("previous config: {e}")))?;
        if (&previous.repository, &previous.api_url) != (&config.repository, &config.api_url) {
            Self::on_disable(TriggerContext { config: change.previous_config, ..ctx.clone() })?;
        }
        Self::on_enable(ctx)
    }

    /// Checks the kept webhook: gone when GitHub no longer has it (the host
    /// then registers again), put back when its events, URL or state were
    /// changed on GitHub.
    fn sync(ctx: TriggerContext) -> Result<SyncReport, ConnectorError> {
        let config: Config = ctx.config()?;
        let Some((repository, token)) = config.registration(&ctx) else {
            return Ok(SyncReport::Unchecked);
        };
        let Some(id) = store::get_string(registration::HOOK_ID_KEY)? else {
            return Err(ConnectorError::new(ErrorCode::Gone, "no webhook is registered"));
        };
        let hook: Value = hooks_api("GET", &config, repository, token, &format!("/{id}")).send()?.error_for_status()?.json()?;
        let mut events: Vec<String> = hook
            .get("events")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        events.sort();
        let as_registered = events == scheme::subscriptions(&config.events)
            && hook.pointer("/config/url").and_then(Value::as_str) == Some(ctx.webhook_url.as_str())
            && hook.get("active").and_then(Value::as_bool) != Some(false);
        if as_registered {
            return Ok(SyncReport::InSync);
        }
        log::warn(&format!("webhook {id} on {repository} was changed on GitHub; putting it back"));
        let body = hook_body(&ctx, &config)?;
        hooks_api("PATCH", &config, repository, token, &format!("/{id}")).json(&body)?.send()?.error_for_status()?;
        Ok(SyncReport::Repaired(EnableInfo::never_expires()))
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
