//! Provider connectors through the server: deliveries signed as the
//! provider signs them are stored once; tampered, wrongly signed and replayed
//! ones are refused; config filters apply.

use reqwest::{Method, StatusCode};
use serde_json::json;
use triggerhost_sdk::signature::{hmac_sha256_hex, now_secs};

use crate::host::{Host, spawn_host};

const STRIPE_SECRET: &str = "whsec_test_endpoint_secret";

/// `Stripe-Signature` for `body` at `timestamp`, as Stripe computes it.
fn stripe_signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!("t={ts},v1={}", hmac_sha256_hex(secret.as_bytes(), &[ts.as_bytes(), b".", body]))
}

async fn stripe_delivery(host: &Host, trigger: &str, signature: String, body: &[u8]) -> StatusCode {
    host.deliver(trigger, &[("stripe-signature".into(), signature)], body).await.status()
}

#[tokio::test]
async fn stripe_events_are_verified_filtered_and_stored_once() {
    let host = spawn_host().await;
    host.upload_plugin("stripe").await;
    let config = json!({ "event_types": ["invoice.paid"] });
    let trigger = host.enabled_trigger_with("stripe", "event", Some(STRIPE_SECRET), config).await;

    let paid = br#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1700000000,"data":{"object":{"id":"in_1"}}}"#;
    let refunded = br#"{"id":"evt_2","object":"event","type":"charge.refunded","created":1700000001,"data":{}}"#;
    let now = now_secs();
    assert_eq!(stripe_delivery(&host, &trigger, stripe_signature(STRIPE_SECRET, now, paid), paid).await, StatusCode::OK);
    // Stripe retries: the same event again is acknowledged and stored once.
    assert_eq!(stripe_delivery(&host, &trigger, stripe_signature(STRIPE_SECRET, now, paid), paid).await, StatusCode::OK);
    // A type the config does not list is acknowledged and not kept.
    assert_eq!(stripe_delivery(&host, &trigger, stripe_signature(STRIPE_SECRET, now, refunded), refunded).await, StatusCode::OK);

    let tampered = stripe_signature(STRIPE_SECRET, now, paid);
    assert_eq!(stripe_delivery(&host, &trigger, tampered, refunded).await, StatusCode::UNAUTHORIZED);
    let wrong_secret = stripe_signature("whsec_another", now, paid);
    assert_eq!(stripe_delivery(&host, &trigger, wrong_secret, paid).await, StatusCode::UNAUTHORIZED);
    let replayed = stripe_signature(STRIPE_SECRET, now - 3600, paid);
    assert_eq!(stripe_delivery(&host, &trigger, replayed, paid).await, StatusCode::UNAUTHORIZED);
    assert_eq!(host.deliver(&trigger, &[], paid).await.status(), StatusCode::UNAUTHORIZED, "no signature");

    let events = host.all_events(&trigger).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0]["type"].as_str(), events[0]["dedupe_key"].as_str()), (Some("invoice.paid"), Some("evt_1")));
    assert_eq!(events[0]["occurred_at_ms"], 1_700_000_000_000u64);
    assert_eq!(events[0]["payload"]["data"]["object"]["id"], "in_1");
    let (_, stats) = host.api(Method::GET, &format!("/triggers/{trigger}/stats"), None).await;
    assert_eq!(stats["rejected"], 4, "{stats}");
}

#[tokio::test]
async fn shopify_webhooks_are_verified_filtered_and_stored_once() {
    let host = spawn_host().await;
    host.upload_plugin("shopify").await;
    let secret = "shpss_test_client_secret";
    let trigger = host.enabled_trigger_with("shopify", "webhook", Some(secret), json!({ "topics": ["orders/create"] })).await;
    let order = br#"{"id":820982911946154508,"email":"jon@example.com","total_price":"199.00"}"#;
    let headers = |topic: &str, id: &str, body: &[u8], key: &str| {
        vec![
            ("x-shopify-hmac-sha256".to_owned(), triggerhost_sdk::signature::hmac_sha256_base64(key.as_bytes(), &[body])),
            ("x-shopify-topic".to_owned(), topic.to_owned()),
            ("x-shopify-webhook-id".to_owned(), id.to_owned()),
        ]
    };
    let status = |headers: Vec<(String, String)>, body: &'static [u8]| {
        let host = &host;
        let trigger = trigger.clone();
        async move { host.deliver(&trigger, &headers, body).await.status() }
    };
    assert_eq!(status(headers("orders/create", "wh_1", order, secret), order).await, StatusCode::OK);
    assert_eq!(status(headers("orders/create", "wh_1", order, secret), order).await, StatusCode::OK, "a redelivery");
    assert_eq!(status(headers("carts/update", "wh_2", order, secret), order).await, StatusCode::OK, "a topic not listed");
    let tampered: &[u8] = br#"{"id":820982911946154508,"email":"eve@example.com","total_price":"0.00"}"#;
    assert_eq!(status(headers("orders/create", "wh_3", order, secret), tampered).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(headers("orders/create", "wh_4", order, "shpss_other"), order).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(Vec::new(), order).await, StatusCode::UNAUTHORIZED, "no signature");

    let events = host.all_events(&trigger).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0]["type"].as_str(), events[0]["dedupe_key"].as_str()), (Some("orders/create"), Some("wh_1")));
    assert_eq!(events[0]["payload"]["total_price"], "199.00");
}

const GITHUB_SECRET: &str = "It's a Secret to Everybody";

fn github_headers(event: &str, delivery: &str, body: &[u8], secret: &str) -> Vec<(String, String)> {
    vec![
        ("x-hub-signature-256".to_owned(), format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &[body]))),
        ("x-github-event".to_owned(), event.to_owned()),
        ("x-github-delivery".to_owned(), delivery.to_owned()),
    ]
}

#[tokio::test]
async fn github_deliveries_are_verified_typed_with_their_action_filtered_and_ping_is_answered() {
    let host = spawn_host().await;
    host.upload_plugin("github").await;
    let config = json!({ "events": ["issues.opened", "push"] });
    let trigger = host.enabled_trigger_with("github", "event", Some(GITHUB_SECRET), config).await;
    let deliver = |event: &str, delivery: &str, body: &'static [u8], secret: &str| {
        let headers = github_headers(event, delivery, body, secret);
        let (host, trigger) = (&host, trigger.clone());
        async move { host.deliver(&trigger, &headers, body).await }
    };

    let ping: &[u8] = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let answered = deliver("ping", "d-0", ping, GITHUB_SECRET).await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(answered.text().await.unwrap_or_default(), "pong");

    let opened: &[u8] = br#"{"action":"opened","issue":{"number":1347}}"#;
    let closed: &[u8] = br#"{"action":"closed","issue":{"number":1347}}"#;
    let push: &[u8] = br#"{"ref":"refs/heads/main","commits":[]}"#;
    assert_eq!(deliver("issues", "d-1", opened, GITHUB_SECRET).await.status(), StatusCode::OK);
    assert_eq!(deliver("issues", "d-1", opened, GITHUB_SECRET).await.status(), StatusCode::OK, "a redelivery");
    assert_eq!(deliver("issues", "d-2", closed, GITHUB_SECRET).await.status(), StatusCode::OK, "an action not listed");
    assert_eq!(deliver("push", "d-3", push, GITHUB_SECRET).await.status(), StatusCode::OK);
    assert_eq!(deliver("issues", "d-4", opened, "wrong secret").await.status(), StatusCode::UNAUTHORIZED);
    let mut tampered = github_headers("issues", "d-5", opened, GITHUB_SECRET);
    tampered[0].1 = format!("sha256={}", hmac_sha256_hex(GITHUB_SECRET.as_bytes(), &[closed]));
    assert_eq!(host.deliver(&trigger, &tampered, opened).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(host.deliver(&trigger, &[], opened).await.status(), StatusCode::UNAUTHORIZED, "no signature");

    let events = host.all_events(&trigger).await;
    let summary: Vec<_> = events.iter().map(|e| (e["type"].as_str(), e["dedupe_key"].as_str())).collect();
    assert_eq!(summary, vec![(Some("push"), Some("d-3")), (Some("issues.opened"), Some("d-1"))], "newest first: {events:?}");
}

#[tokio::test]
async fn github_on_enable_registers_the_repository_webhook_and_on_disable_removes_it() {
    let provider = crate::provider::Provider::start().await;
    let host = spawn_host().await;
    // The connector built for a GitHub Enterprise Server at 127.0.0.1: the
    // same source, its manifest asking for that host.
    host.upload_plugin("github_enterprise").await;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/github/grants", Some(allow)).await.0, StatusCode::OK);
    let config = json!({
        "events": ["issues.opened", "issues.closed", "push"],
        "repository": "octocat/Hello-World",
        "token": "ghp_test_token",
        "api_url": provider.url(),
    });
    let trigger = host.enabled_trigger_with("github", "event", Some(GITHUB_SECRET), config).await;

    // It looks for a hook already pointing at its URL, then creates one.
    let calls = provider.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!((calls[0].method.as_str(), calls[0].path.as_str()), ("GET", "/repos/octocat/Hello-World/hooks"));
    assert_eq!((calls[1].method.as_str(), calls[1].path.as_str()), ("POST", "/repos/octocat/Hello-World/hooks"));
    assert_eq!(calls[1].authorization.as_deref(), Some("Bearer ghp_test_token"));
    let hook = &calls[1].body;
    assert_eq!(hook["events"], json!(["issues", "push"]), "GitHub subscribes by event name");
    assert_eq!(hook["config"]["secret"], GITHUB_SECRET);
    assert_eq!(hook["config"]["content_type"], "json");
    let (_, got) = host.api(Method::GET, &format!("/triggers/{trigger}"), None).await;
    assert_eq!(hook["config"]["url"], got["webhook_url"]);
    assert_eq!(provider.hooks(), vec!["400000001".to_owned()]);
    // The token is a secret prop: never shown back.
    assert_ne!(got["config"]["token"], "ghp_test_token", "{got}");

    let (status, disabled) = host.api(Method::POST, &format!("/triggers/{trigger}/disable"), None).await;
    assert_eq!((status, disabled["status"].as_str()), (StatusCode::OK, Some("disabled")), "{disabled}");
    assert_eq!(provider.calls().last().map(|c| c.path.clone()), Some("/repos/octocat/Hello-World/hooks/400000001".into()));
    assert!(provider.hooks().is_empty());
}

const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn slack_headers(timestamp: u64, body: &[u8], secret: &str) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    let signature = hmac_sha256_hex(secret.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]);
    vec![("x-slack-request-timestamp".to_owned(), ts), ("x-slack-signature".to_owned(), format!("v0={signature}"))]
}

#[tokio::test]
async fn slack_answers_the_challenge_and_stores_each_event_once_across_retries() {
    let host = spawn_host().await;
    host.upload_plugin("slack").await;
    let trigger = host.enabled_trigger_with("slack", "event", Some(SLACK_SECRET), json!({})).await;
    let now = now_secs();

    let challenge: &[u8] = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let answered = host.deliver(&trigger, &slack_headers(now, challenge, SLACK_SECRET), challenge).await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(answered.text().await.unwrap_or_default(), "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    // An unsigned handshake gets no challenge back.
    assert_eq!(host.deliver(&trigger, &[], challenge).await.status(), StatusCode::UNAUTHORIZED);

    let mention: &[u8] = br#"{"type":"event_callback","team_id":"T1","event_id":"Ev08MFMKH6","event_time":1700000000,"event":{"type":"app_mention","text":"hi"}}"#;
    assert_eq!(host.deliver(&trigger, &slack_headers(now, mention, SLACK_SECRET), mention).await.status(), StatusCode::OK);
    let mut retry = slack_headers(now, mention, SLACK_SECRET);
    retry.push(("x-slack-retry-num".into(), "1".into()));
    retry.push(("x-slack-retry-reason".into(), "http_timeout".into()));
    assert_eq!(host.deliver(&trigger, &retry, mention).await.status(), StatusCode::OK, "a retry");

    // Read the clock again: on a loaded machine the steps above can take
    // seconds, and `now + 301` would drift inside the 300 s tolerance.
    let stale = slack_headers(now_secs() - 301, mention, SLACK_SECRET);
    assert_eq!(host.deliver(&trigger, &stale, mention).await.status(), StatusCode::UNAUTHORIZED);
    let future = slack_headers(now_secs() + 301, mention, SLACK_SECRET);
    assert_eq!(host.deliver(&trigger, &future, mention).await.status(), StatusCode::UNAUTHORIZED);
    let wrong = slack_headers(now, mention, "another secret");
    assert_eq!(host.deliver(&trigger, &wrong, mention).await.status(), StatusCode::UNAUTHORIZED);
    let tampered: &[u8] = br#"{"type":"event_callback","team_id":"T1","event_id":"Ev08MFMKH7","event_time":1700000000,"event":{"type":"app_mention","text":"hi"}}"#;
    assert_eq!(host.deliver(&trigger, &slack_headers(now, mention, SLACK_SECRET), tampered).await.status(), StatusCode::UNAUTHORIZED);

    let events = host.all_events(&trigger).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0]["type"].as_str(), events[0]["dedupe_key"].as_str()), (Some("app_mention"), Some("Ev08MFMKH6")));
    assert_eq!(events[0]["occurred_at_ms"], 1_700_000_000_000u64);
}

#[tokio::test]
async fn standard_webhooks_ed25519_signatures_verify_with_the_public_key_through_rotation() {
    use ed25519_dalek::{Signer, SigningKey};
    use triggerhost_sdk::signature::base64_encode;

    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let current = SigningKey::from_bytes(&[42; 32]);
    let retired = SigningKey::from_bytes(&[7; 32]);
    let public = format!("whpk_{}", base64_encode(&current.verifying_key().to_bytes()));
    let trigger = host.enabled_trigger("standard-webhooks", "message_received", Some(&public)).await;
    let body: &[u8] = br#"{"type":"user.created","data":{"id":"u_1"}}"#;
    let ts = now_secs().to_string();
    let v1a = |key: &SigningKey, body: &[u8]| {
        let content = [b"msg_ed1.", ts.as_bytes(), b".", body].concat();
        format!("v1a,{}", base64_encode(&key.sign(&content).to_bytes()))
    };
    let headers = |signature: String| {
        vec![
            ("webhook-id".to_owned(), "msg_ed1".to_owned()),
            ("webhook-timestamp".to_owned(), ts.clone()),
            ("webhook-signature".to_owned(), signature),
        ]
    };
    let rotating = format!("{} {}", v1a(&retired, body), v1a(&current, body));
    assert_eq!(host.deliver(&trigger, &headers(rotating), body).await.status(), StatusCode::OK);
    assert_eq!(host.deliver(&trigger, &headers(v1a(&retired, body)), body).await.status(), StatusCode::UNAUTHORIZED);
    let tampered: &[u8] = br#"{"type":"user.deleted","data":{"id":"u_1"}}"#;
    assert_eq!(host.deliver(&trigger, &headers(v1a(&current, body)), tampered).await.status(), StatusCode::UNAUTHORIZED);
    let events = host.all_events(&trigger).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "user.created");
}

#[tokio::test]
async fn github_registers_its_webhook_with_the_token_of_an_oauth_connection() {
    let provider = crate::provider::Provider::start().await;
    let host = spawn_host().await;
    // The connector built for a GitHub Enterprise Server at 127.0.0.1, its
    // OAuth app's endpoints at the fake provider.
    host.upload_plugin("github_enterprise").await;
    let connection = crate::server::connections::connect_oauth(&host, &provider, "github").await;
    let config = json!({ "events": ["push"], "repository": "octocat/Hello-World", "api_url": provider.url() });
    let body = json!({ "plugin": "github", "trigger": "event", "config": config, "secret": GITHUB_SECRET, "connection": connection });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let trigger = created["id"].as_str().expect("id").to_owned();
    let (_, enabled) = host.api(Method::POST, &format!("/triggers/{trigger}/enable"), None).await;
    assert_eq!(enabled["status"], "enabled", "{enabled}");

    let hook = provider.calls().into_iter().find(|c| c.method == "POST" && c.path == "/repos/octocat/Hello-World/hooks").expect("the hook was created");
    // The access token the OAuth flow obtained (the provider issued code_1, rt_2, at_3).
    assert_eq!(hook.authorization.as_deref(), Some("Bearer at_3_zz"));
    assert_eq!(hook.body["events"], json!(["push"]));
}
