//! Instance reuse, granted per plugin: a guest's globals live as long as
//! its instance, which serves one trigger only, for at most the granted
//! calls and seconds, and is dropped after a trap; without the grant every
//! call starts fresh.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host};

/// Delivers `body` to a `stateful` trigger: how many calls its instance has
/// served, and for which triggers.
async fn state(host: &Host, id: &str) -> (u64, Vec<String>) {
    let response = host.deliver(id, &[], b"{}").await;
    assert_eq!(response.status(), StatusCode::OK);
    let newest = host.api(Method::GET, &format!("/triggers/{id}/events?limit=1"), None).await.1;
    let payload: &Value = &newest["events"][0]["payload"];
    let served = payload["served"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect();
    (payload["calls"].as_u64().expect("calls"), served)
}

async fn stateful_trigger(host: &Host) -> String {
    let body = json!({ "plugin": "hostile", "trigger": "stateful", "config": {} });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await.0, StatusCode::OK);
    id
}

#[tokio::test]
async fn a_reused_instance_keeps_its_globals_within_its_bounds_and_never_across_triggers() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    let a = stateful_trigger(&host).await;
    let b = stateful_trigger(&host).await;
    let only = |id: &str| vec![id.to_owned()];

    // Not granted: every call is a fresh instance.
    assert_eq!(state(&host, &a).await, (1, only(&a)));
    assert_eq!(state(&host, &a).await, (1, only(&a)));

    let granted = crate::server::cli::cli(&host, &["plugin", "grant", "hostile", "--reuse-calls", "3", "--reuse-secs", "2"]).await;
    assert!(granted.status.success(), "{granted:?}");
    let (_, plugin) = host.api(Method::GET, "/plugins/hostile", None).await;
    assert_eq!(plugin["allowed"]["reuse"], json!({ "max_calls": 3, "max_age_s": 2 }), "{plugin}");

    // One instance per trigger, never shared: b's calls do not see a's.
    assert_eq!(state(&host, &a).await, (1, only(&a)));
    assert_eq!(state(&host, &a).await, (2, only(&a)));
    assert_eq!(state(&host, &b).await, (1, only(&b)));
    assert_eq!(state(&host, &a).await, (3, only(&a)));
    assert_eq!(state(&host, &b).await, (2, only(&b)));
    // Three calls served: a fresh instance.
    assert_eq!(state(&host, &a).await, (1, only(&a)));

    // A trap drops the instance.
    assert_eq!(state(&host, &a).await, (2, only(&a)));
    assert_eq!(host.deliver(&a, &[], b"trap").await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(state(&host, &a).await, (1, only(&a)));

    // Past its seconds: a fresh instance.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(state(&host, &a).await, (1, only(&a)));

    // Revoked: fresh instances again, and the kept one is let go.
    assert_eq!(state(&host, &a).await, (2, only(&a)));
    assert_eq!(host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({}))).await.0, StatusCode::OK);
    assert_eq!(state(&host, &a).await, (1, only(&a)));
    assert_eq!(state(&host, &a).await, (1, only(&a)));
    let metrics = host.metrics().await;
    assert!(metrics.contains("\ntriggerhost_warm_instances 0\n"), "{metrics}");

    // Out-of-bounds grants are refused with the field at fault.
    let (status, refused) =
        host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({ "reuse": { "max_calls": 0, "max_age_s": 2 } }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("reuse.max_calls")), "{refused}");
}
