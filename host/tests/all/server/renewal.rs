//! Renewal of provider subscriptions that expire (contract 0.2.0 `renew`),
//! against a fake provider whose subscriptions live three seconds, and the
//! frozen 0.1.0 contract still loading and renewing (by `on-enable`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host_with_config};
use crate::provider::Provider;

/// Renew a second before expiry, retry after a second.
const FAST_RENEWAL: &str = "[renewal]\nmargin_s = 1\nmin_backoff_s = 1\nmax_backoff_s = 2\n";

/// Waits up to 30 s for `check` to hold of the trigger's `/health`.
async fn health_until(host: &Host, trigger: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let (status, health) = host.api(Method::GET, &format!("/triggers/{trigger}/health"), None).await;
        assert_eq!(status, StatusCode::OK, "{health}");
        if check(&health) {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, health) = host.api(Method::GET, &format!("/triggers/{trigger}/health"), None).await;
    panic!("timed out waiting for {what}: {health}");
}

/// Waits up to 10 s for `/metrics` to hold `line`.
async fn metrics_until(host: &Host, line: &str) {
    for _ in 0..100 {
        if host.metrics().await.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = host.metrics().await;
    panic!("timed out waiting for {line} in /metrics:\n{all}");
}

#[tokio::test]
async fn subscriptions_are_renewed_before_they_expire_re_registered_when_gone_and_failures_show_as_unhealthy() {
    let provider = Provider::start().await;
    provider.set_subscription_ttl(3000);
    let host = spawn_host_with_config(FAST_RENEWAL).await;
    let uploaded = host.upload_plugin("subscriber").await;
    assert_eq!(uploaded["contract"], triggerhost_sdk::CONTRACT_VERSION, "{uploaded}");
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/subscriber/grants", Some(allow)).await.0, StatusCode::OK);
    let trigger = host.enabled_trigger_with("subscriber", "changes", None, json!({ "provider": provider.url() })).await;
    assert_eq!(provider.subscriptions(), vec!["sub_1"]);
    let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}"), None).await;
    let first_expiry = view["renewal"]["expires_at_ms"].as_i64().expect("an expiry");
    assert!(view["renewal"]["renew_at_ms"].as_i64().is_some_and(|at| at < first_expiry), "{view}");

    // Renewed ahead of each expiry, so the subscription never lapses.
    let health = health_until(&host, &trigger, "two renewals", |h| h["renewal"]["renewals"].as_i64() >= Some(2)).await;
    assert_eq!(health["healthy"], true, "{health}");
    assert!(health["renewal"]["expires_at_ms"].as_i64() > Some(first_expiry), "{health}");
    assert!(provider.count("POST", "/subscriptions/sub_1", "/renew") >= 2);
    assert_eq!(provider.subscriptions(), vec!["sub_1"], "renewed, never re-created");

    // The provider drops it: the renewal's 404 is `gone`, and the host
    // enables the trigger again, which subscribes anew.
    provider.drop_subscriptions();
    health_until(&host, &trigger, "a new subscription", |_| provider.subscriptions() == vec!["sub_2"]).await;
    let health = health_until(&host, &trigger, "renewals of the new one", |h| {
        h["renewal"]["failures"] == 0 && h["healthy"] == true
    })
    .await;
    assert_eq!(health["status"], "enabled", "{health}");
    // The counter moves when the renewal task finishes, a moment after the
    // new subscription is stored and /health shows it.
    metrics_until(&host, "triggerhost_renewals_reenabled_total 1").await;

    // Renewals fail: the trigger shows as unhealthy, with the reason, in
    // /health and /metrics, and renewal is retried with backoff.
    provider.fail_renewals(true);
    let failing = health_until(&host, &trigger, "a failed renewal", |h| h["healthy"] == false).await;
    assert!(failing["renewal"]["failures"].as_i64() >= Some(1), "{failing}");
    let reason = failing["renewal"]["last_error"].as_str().unwrap_or_default();
    assert!(reason.starts_with("renew: upstream") && reason.contains("503"), "{failing}");
    assert!(
        host.metrics().await.contains(&format!("triggerhost_trigger_renewal_healthy{{trigger=\"{trigger}\",plugin=\"subscriber\"}} 0")),
        "unhealthy in /metrics"
    );
    let (_, failures) = host.api(Method::GET, &format!("/triggers/{trigger}/failures"), None).await;
    assert!(failures["failures"].as_array().is_some_and(|f| !f.is_empty()), "recorded: {failures}");
    health_until(&host, &trigger, "a retry", |h| h["renewal"]["failures"].as_i64() >= Some(2)).await;

    provider.fail_renewals(false);
    health_until(&host, &trigger, "healthy again", |h| h["healthy"] == true).await;

    // Disabling unsubscribes, and nothing is renewed after.
    let (status, disabled) = host.api(Method::POST, &format!("/triggers/{trigger}/disable"), None).await;
    assert_eq!((status, disabled["status"].as_str()), (StatusCode::OK, Some("disabled")), "{disabled}");
    assert!(provider.subscriptions().is_empty());
    let renewals = provider.count("POST", "/subscriptions/", "/renew");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(provider.count("POST", "/subscriptions/", "/renew"), renewals, "no renewal after disable");
}

#[tokio::test]
async fn a_component_built_from_the_0_1_0_wit_keeps_working_and_is_renewed_by_enabling_again() {
    let host = spawn_host_with_config(FAST_RENEWAL).await;
    let uploaded = host.upload_plugin("contract_0_1_0").await;
    assert_eq!(uploaded["contract"], "0.1.0", "{uploaded}");
    let trigger = host.enabled_trigger_with("legacy-contract", "hook", Some("s3cret"), json!({ "lifetime_ms": 2500 })).await;

    let token = |value: &str| vec![("x-token".to_owned(), value.to_owned())];
    assert_eq!(host.deliver(&trigger, &token("s3cret"), br#"{"n":1}"#).await.status(), StatusCode::OK);
    assert_eq!(host.deliver(&trigger, &token("guess"), br#"{"n":2}"#).await.status(), StatusCode::UNAUTHORIZED);
    let events = host.all_events(&trigger).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0]["type"].as_str(), &events[0]["payload"]), (Some("legacy.event"), &json!({ "n": 1 })));

    // 0.1.0 has no `renew`: the host calls `on-enable` again ahead of expiry.
    let health = health_until(&host, &trigger, "a renewal", |h| h["renewal"]["renewals"].as_i64() >= Some(1)).await;
    assert_eq!(health["healthy"], true, "{health}");

    // Nor `on-update`: a patched config disables and enables it again, so
    // the registration follows (here, the expiry its new config asks for).
    let patch = json!({ "config": { "lifetime_ms": 3_600_000 } });
    let (status, patched) = host.api(Method::PATCH, &format!("/triggers/{trigger}"), Some(patch)).await;
    assert_eq!((status, patched["status"].as_str(), &patched["last_error"]), (StatusCode::OK, Some("enabled"), &json!(null)));
    let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}"), None).await;
    let left = view["renewal"]["expires_at_ms"].as_i64().unwrap_or_default() - triggerhost::store::now_ms();
    assert!(left > 3_000_000, "expires in {left} ms: {view}");
}
