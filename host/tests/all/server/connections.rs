//! Connections: credentials created by operators, shared by triggers,
//! seen by calls, never shown.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host};

async fn create_connection(host: &Host, body: Value) -> (StatusCode, Value) {
    host.api(Method::POST, "/connections", Some(body)).await
}

async fn trigger_on(host: &Host, connection: &str) -> String {
    let body = json!({ "plugin": "connected", "trigger": "hook", "connection": connection });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, enabled) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("enabled")), "{enabled}");
    id
}

async fn deliver_with_key(host: &Host, trigger: &str, key: &str) -> StatusCode {
    host.deliver(trigger, &[("x-api-key".into(), key.into())], br#"{"n":1}"#).await.status()
}

#[tokio::test]
async fn a_connection_is_shared_by_triggers_seen_by_calls_rotated_live_and_never_shown() {
    let host = spawn_host().await;
    host.upload_plugin("connected").await;
    host.upload_plugin("standard_webhooks").await;
    const KEY: &str = "key_live_5f2a9c";
    const ROTATED: &str = "key_live_77b1e0";

    let (status, connection) =
        create_connection(&host, json!({ "plugin": "connected", "display_name": "Acme prod", "credentials": KEY })).await;
    assert_eq!(status, StatusCode::CREATED, "{connection}");
    assert_eq!((connection["kind"].as_str(), connection["status"].as_str()), (Some("secret-text"), Some("connected")));
    let id = connection["id"].as_str().expect("id").to_owned();

    // Two triggers share it; their calls see its key.
    let first = trigger_on(&host, &id).await;
    let second = trigger_on(&host, &id).await;
    assert_eq!(deliver_with_key(&host, &first, KEY).await, StatusCode::OK);
    assert_eq!(deliver_with_key(&host, &second, KEY).await, StatusCode::OK);
    assert_eq!(deliver_with_key(&host, &first, "key_guess").await, StatusCode::UNAUTHORIZED);

    // New credentials reach the live triggers at once.
    let patch = json!({ "credentials": ROTATED, "display_name": "Acme production" });
    let (status, patched) = host.api(Method::PATCH, &format!("/connections/{id}"), Some(patch)).await;
    assert_eq!((status, patched["display_name"].as_str()), (StatusCode::OK, Some("Acme production")), "{patched}");
    assert_eq!(deliver_with_key(&host, &second, ROTATED).await, StatusCode::OK);
    assert_eq!(deliver_with_key(&host, &second, KEY).await, StatusCode::UNAUTHORIZED);

    // Never shown: not in the connection's view, the list, the triggers.
    let (_, view) = host.api(Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(view["triggers"], json!([first.clone(), second.clone()].iter().cloned().collect::<std::collections::BTreeSet<_>>()));
    let (_, list) = host.api(Method::GET, "/connections", None).await;
    let (_, triggers) = host.api(Method::GET, "/triggers", None).await;
    for answer in [&connection, &patched, &view, &list, &triggers] {
        let text = answer.to_string();
        assert!(!text.contains(KEY) && !text.contains(ROTATED), "a key is shown: {text}");
    }

    // In use: deleting is refused, naming the triggers.
    let (status, refused) = host.api(Method::DELETE, &format!("/connections/{id}"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("connection-in-use")), "{refused}");
    assert_eq!(refused["error"]["details"]["triggers"].as_array().map(Vec::len), Some(2), "{refused}");
    for trigger in [&first, &second] {
        assert_eq!(host.api(Method::DELETE, &format!("/triggers/{trigger}"), None).await.0, StatusCode::NO_CONTENT);
    }
    assert_eq!(host.api(Method::DELETE, &format!("/connections/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.api(Method::GET, &format!("/connections/{id}"), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connections_that_do_not_fit_their_plugin_are_refused() {
    let host = spawn_host().await;
    host.upload_plugin("connected").await;
    host.upload_plugin("standard_webhooks").await;
    let refused = |body: Value, code: &'static str| {
        let host = &host;
        async move {
            let (status, answer) = create_connection(host, body).await;
            assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{answer}");
        }
    };
    refused(json!({ "plugin": "connected", "display_name": "x", "credentials": { "key": "k" } }), "invalid-credentials").await;
    refused(json!({ "plugin": "connected", "display_name": "x", "credentials": "" }), "invalid-credentials").await;
    refused(json!({ "plugin": "connected", "display_name": "", "credentials": "k" }), "invalid-credentials").await;
    refused(json!({ "plugin": "standard-webhooks", "display_name": "x", "credentials": "k" }), "invalid-credentials").await;
    refused(json!({ "plugin": "nope", "display_name": "x", "credentials": "k" }), "bad-request").await;

    // A trigger may use only a connection of its own plugin.
    let (_, connection) =
        create_connection(&host, json!({ "plugin": "connected", "display_name": "x", "credentials": "k" })).await;
    let id = connection["id"].as_str().expect("id");
    let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "connection": id });
    let (status, answer) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("is for plugin connected")), "{answer}");
    let body = json!({ "plugin": "connected", "trigger": "hook", "connection": "con_missing" });
    assert_eq!(host.api(Method::POST, "/triggers", Some(body)).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_oauth2_flow_runs_through_the_callback_and_calls_see_only_the_access_token() {
    use crate::provider::{OAUTH_CLIENT, Provider};

    let provider = Provider::start().await;
    let host = spawn_host().await;
    host.upload_plugin("oauthed").await;
    let allow = json!({ "outbound_hosts": [provider.url()] });
    assert_eq!(host.api(Method::PUT, "/plugins/oauthed/grants", Some(allow)).await.0, StatusCode::OK);

    // The operator registers the OAuth app, here at the fake provider.
    let app = json!({
        "client_id": OAUTH_CLIENT.0, "client_secret": OAUTH_CLIENT.1,
        "authorize_url": format!("{}/oauth/authorize", provider.url()),
        "token_url": format!("{}/oauth/token", provider.url()),
    });
    let (status, registered) = host.api(Method::PUT, "/plugins/oauthed/oauth-app", Some(app)).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    assert!(!registered.to_string().contains(OAUTH_CLIENT.1), "the client secret is shown: {registered}");
    let redirect_uri = format!("{}/oauth/callback", host.url);
    assert_eq!(registered["redirect_uri"], redirect_uri);

    let (status, started) = host.api(Method::GET, "/connections/oauth/start?plugin=oauthed&display_name=Acme", None).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let authorize = url::Url::parse(started["authorize_url"].as_str().expect("authorize url")).expect("url");
    let params: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["redirect_uri"], redirect_uri);
    assert_eq!((params["scope"].as_str(), params["access_type"].as_str()), ("read events", "offline"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(params["state"].len() >= 32, "an unguessable state");

    // The browser: approve at the provider, follow its redirect to the callback.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let approved = browser.get(authorize.as_str()).send().await.expect("authorize");
    assert_eq!(approved.status(), StatusCode::FOUND);
    let back = approved.headers()["location"].to_str().expect("location").to_owned();
    assert!(back.starts_with(&redirect_uri), "{back}");
    let callback = browser.get(&back).send().await.expect("callback");
    assert_eq!(callback.status(), StatusCode::OK);
    let page = callback.text().await.expect("page");
    assert!(page.starts_with("Connected Acme (con_"), "{page}");
    // The provider checked the client, the code and the PKCE verifier.
    let token_request = &provider.token_requests()[0];
    assert_eq!(token_request["grant_type"], "authorization_code");
    assert!(!token_request["code_verifier"].is_empty());

    // A state is used once.
    let replayed = browser.get(&back).send().await.expect("replayed callback");
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    let forged = browser.get(format!("{redirect_uri}?code=code_9&state=forged")).send().await.expect("forged");
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    let (_, connections) = host.api(Method::GET, "/connections", None).await;
    let connection = &connections["connections"][0];
    assert_eq!((connection["kind"].as_str(), connection["status"].as_str()), (Some("oauth2"), Some("connected")));
    let id = connection["id"].as_str().expect("id").to_owned();
    for answer in [&connections, &started, &registered] {
        let text = answer.to_string();
        assert!(!text.contains("at_3_zz") && !text.contains("rt_2_zz") && !text.contains(OAUTH_CLIENT.1), "a token is shown: {text}");
    }

    // Calls see the access token.
    let body = json!({ "plugin": "oauthed", "trigger": "hook", "connection": id });
    let (_, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    let trigger = created["id"].as_str().expect("id").to_owned();
    assert_eq!(host.api(Method::POST, &format!("/triggers/{trigger}/enable"), None).await.1["status"], "enabled");
    let bearer = |token: &str| vec![("authorization".to_owned(), format!("Bearer {token}"))];
    // The provider issued code_1, then rt_2 and at_3.
    assert_eq!(host.deliver(&trigger, &bearer("at_3_zz"), b"{}").await.status(), StatusCode::OK);
    assert_eq!(host.deliver(&trigger, &bearer("rt_2_zz"), b"{}").await.status(), StatusCode::UNAUTHORIZED);
}

/// Grants `plugin` the provider (and kv), registers its OAuth app there and
/// runs the flow; returns the connection's id.
pub async fn connect_oauth(host: &Host, provider: &crate::provider::Provider, plugin: &str) -> String {
    use crate::provider::OAUTH_CLIENT;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, &format!("/plugins/{plugin}/grants"), Some(allow)).await.0, StatusCode::OK);
    let app = json!({
        "client_id": OAUTH_CLIENT.0, "client_secret": OAUTH_CLIENT.1,
        "authorize_url": format!("{}/oauth/authorize", provider.url()),
        "token_url": format!("{}/oauth/token", provider.url()),
    });
    let (status, registered) = host.api(Method::PUT, &format!("/plugins/{plugin}/oauth-app"), Some(app)).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let start = format!("/connections/oauth/start?plugin={plugin}&display_name=Acme");
    let (_, started) = host.api(Method::GET, &start, None).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let approved = browser.get(started["authorize_url"].as_str().expect("url")).send().await.expect("authorize");
    let back = approved.headers()["location"].to_str().expect("location").to_owned();
    let page = browser.get(&back).send().await.expect("callback").text().await.expect("page");
    page.split(['(', ')']).nth(1).expect("the connection id on the page").to_owned()
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_for_twenty_concurrent_polls_and_a_revoked_one_needs_reauth() {
    let provider = crate::provider::Provider::start().await;
    // Room for twenty polls' requests at once.
    let host = crate::host::spawn_host_with_config("[outbound]\nconnections_per_plugin = 64\n").await;
    host.upload_plugin("oauthed").await;
    let connection = connect_oauth(&host, &provider, "oauthed").await;
    let mut triggers = Vec::new();
    for _ in 0..20 {
        let body = json!({
            "plugin": "oauthed", "trigger": "items", "connection": connection,
            "config": { "provider": provider.url() }, "poll_interval_s": 3600,
        });
        let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await.1["status"], "enabled");
        triggers.push(id);
    }
    let refreshes = || provider.token_requests().iter().filter(|r| r["grant_type"] == "refresh_token").count();

    // The token expires mid-stream: every poll gets a 401, one refresh
    // serves all of them, and each poll is tried again and succeeds.
    provider.expire_access_token();
    let before = refreshes();
    let mut polls = tokio::task::JoinSet::new();
    for id in &triggers {
        let (http, url) = (host.http.clone(), format!("{}/api/v1/triggers/{id}/poll", host.url));
        polls.spawn(async move {
            let response = http.post(url).bearer_auth(crate::host::TOKEN).send().await.expect("poll");
            (response.status(), response.json::<Value>().await.unwrap_or_default())
        });
    }
    while let Some(polled) = polls.join_next().await {
        let (status, outcome) = polled.expect("poll task");
        assert_eq!((status, outcome["outcome"].as_str()), (StatusCode::OK, Some("stored")), "{outcome}");
    }
    assert_eq!(refreshes() - before, 1, "one refresh for twenty concurrent polls");

    // Enabling goes through the same: on-enable's 401 refreshes the token
    // and on-enable runs again.
    provider.expire_access_token();
    let body = json!({
        "plugin": "oauthed", "trigger": "items", "connection": connection, "config": { "provider": provider.url() },
    });
    let (_, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    let late = created["id"].as_str().expect("id").to_owned();
    let (_, enabled) = host.api(Method::POST, &format!("/triggers/{late}/enable"), None).await;
    assert_eq!(enabled["status"], "enabled", "{enabled}");
    assert_eq!(refreshes() - before, 2);
    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{late}"), None).await.0, StatusCode::NO_CONTENT);

    // The refresh token is revoked: the connection needs re-authorization,
    // and every trigger on it shows as unhealthy.
    provider.revoke_refresh_tokens();
    provider.expire_access_token();
    let (_, failed) = host.api(Method::POST, &format!("/triggers/{}/poll", triggers[0]), None).await;
    assert_eq!(failed["outcome"], "failed", "{failed}");
    let (_, view) = host.api(Method::GET, &format!("/connections/{connection}"), None).await;
    assert_eq!(view["status"], "needs-reauth", "{view}");
    assert!(view["last_error"].as_str().is_some_and(|e| e.contains("invalid_grant")), "{view}");
    for trigger in &triggers {
        let (_, health) = host.api(Method::GET, &format!("/triggers/{trigger}/health"), None).await;
        assert_eq!((health["healthy"].as_bool(), health["connection"]["status"].as_str()), (Some(false), Some("needs-reauth")));
    }
    let (_, view) = host.api(Method::GET, &format!("/triggers/{}", triggers[0]), None).await;
    assert_eq!(view["status"], "needs-reauth", "shown in the trigger's status: {view}");
    let metrics = host.metrics().await;
    assert!(metrics.contains(&format!("triggerhost_connection_healthy{{connection=\"{connection}\",plugin=\"oauthed\"}} 0")));
    let unhealthy = format!("plugin=\"oauthed\",connection=\"{connection}\"}} 0");
    assert_eq!(metrics.lines().filter(|l| l.starts_with("triggerhost_trigger_connection_healthy") && l.ends_with(&unhealthy)).count(), 20);

    // Authorizing the same connection again heals all its triggers at once.
    let (_, started) = host.api(Method::GET, &format!("/connections/oauth/start?connection={connection}"), None).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let approved = browser.get(started["authorize_url"].as_str().expect("url")).send().await.expect("authorize");
    let back = approved.headers()["location"].to_str().expect("location").to_owned();
    assert_eq!(browser.get(&back).send().await.expect("callback").status(), StatusCode::OK);
    let (_, view) = host.api(Method::GET, &format!("/connections/{connection}"), None).await;
    assert_eq!((view["status"].as_str(), view["triggers"].as_array().map(Vec::len)), (Some("connected"), Some(20)), "{view}");
    let (_, polled) = host.api(Method::POST, &format!("/triggers/{}/poll", triggers[19]), None).await;
    assert_eq!(polled["outcome"], "stored", "{polled}");
    let (_, health) = host.api(Method::GET, &format!("/triggers/{}/health", triggers[19]), None).await;
    assert_eq!(health["healthy"], true, "{health}");

    // No token or client secret in any answer, failure record or log line.
    let mut seen = vec![view.to_string(), metrics];
    for trigger in &triggers {
        for path in [format!("/triggers/{trigger}"), format!("/triggers/{trigger}/failures"), format!("/triggers/{trigger}/health")] {
            seen.push(host.api(Method::GET, &path, None).await.1.to_string());
        }
    }
    seen.push(host.api(Method::GET, "/connections", None).await.1.to_string());
    seen.push(String::from_utf8_lossy(&std::fs::read(host.data_dir.with_extension("log")).unwrap_or_default()).into_owned());
    let secrets: Vec<String> = provider
        .token_requests()
        .iter()
        .flat_map(|r| [r.get("refresh_token").cloned(), r.get("client_secret").cloned(), r.get("code").cloned()])
        .flatten()
        .chain((1..40).map(|n| format!("at_{n}_zz")))
        .collect();
    for text in &seen {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{secret} appears in {}", &text[..text.len().min(300)]);
        }
    }
}

#[tokio::test]
async fn a_token_is_refreshed_ahead_of_its_expiry_without_any_call() {
    let provider = crate::provider::Provider::start().await;
    provider.set_token_lifetime(4);
    let host = spawn_host().await;
    host.upload_plugin("oauthed").await;
    let connection = connect_oauth(&host, &provider, "oauthed").await;
    let refreshes = || provider.token_requests().iter().filter(|r| r["grant_type"] == "refresh_token").count();
    for _ in 0..100 {
        if refreshes() >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refreshes() >= 1, "no refresh within 10 s of a 4 s token");
    let (_, view) = host.api(Method::GET, &format!("/connections/{connection}"), None).await;
    assert_eq!(view["status"], "connected", "{view}");

    // The refreshed token works.
    let body = json!({ "plugin": "oauthed", "trigger": "items", "connection": connection, "config": { "provider": provider.url() } });
    let (_, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await.1["status"], "enabled");
    let (_, polled) = host.api(Method::POST, &format!("/triggers/{id}/poll"), None).await;
    assert_eq!(polled["outcome"], "stored", "{polled}");
}
