//! Retention: old events removed by the background sweep in batches while
//! deliveries keep arriving, none of them failing; a redelivery after its
//! event was removed still a duplicate; a deleted trigger's events kept
//! for the retention period when the operator asks.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host_with_config};

/// Events live a second; the sweep runs every second in batches of 20; the
/// per-trigger rate limit is out of the way.
const SHORT: &str = "[ingress]\nrate_per_second = 100000\nburst = 100000\n\n[retention]\nmax_age_s = 1\nsweep_every_s = 1\nbatch = 20\ndedupe_window_s = 3600\n";

async fn deliver(host: &Host, trigger: &str, id: &str) -> (StatusCode, Value) {
    let body = json!({ "type": "user.created", "data": { "id": id } }).to_string();
    let response = host.deliver(trigger, &signed_now(id, body.as_bytes()), body.as_bytes()).await;
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// Delivers `msg_<sender>_<n>` until `deadline`, each answered 200.
async fn send_until(host: &Host, trigger: &str, sender: usize, deadline: tokio::time::Instant) -> usize {
    let mut sent = 0;
    while tokio::time::Instant::now() < deadline {
        let (status, answer) = deliver(host, trigger, &format!("msg_{sender}_{sent}")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        sent += 1;
    }
    sent
}

async fn metric(host: &Host, name: &str) -> f64 {
    let text = host.metrics().await;
    text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
}

#[tokio::test]
async fn old_events_are_removed_under_load_without_a_failed_delivery() {
    let host = spawn_host_with_config(SHORT).await;
    host.upload_plugin("standard_webhooks").await;
    let trigger = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    // Four senders for four seconds: several sweeps run meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let (a, b, c, d) = tokio::join!(
        send_until(&host, &trigger, 0, deadline),
        send_until(&host, &trigger, 1, deadline),
        send_until(&host, &trigger, 2, deadline),
        send_until(&host, &trigger, 3, deadline),
    );
    let sent = a + b + c + d;
    let removed = metric(&host, "triggerhost_retention_events_removed_total").await;
    assert!(removed > 0.0, "the sweep ran under load: {removed} removed of {sent}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let left = host.all_events(&trigger).await.len();
    assert!(left < sent / 2, "{left} of {sent} events left");
    // The first delivery's event is gone; its redelivery is still a duplicate.
    assert_eq!(deliver(&host, &trigger, "msg_0_0").await.1, json!({ "stored": 0, "duplicates": 1, "filtered": 0 }));
    let (_, stats) = host.api(Method::GET, &format!("/triggers/{trigger}/stats"), None).await;
    assert_eq!(stats["accepted"].as_u64(), Some(sent as u64 + 1), "{stats}");
    eprintln!("{sent} deliveries under sweeps, none failed; {removed} events removed meanwhile");
}

#[tokio::test]
async fn a_deleted_trigger_keeps_its_events_for_the_retention_period_when_asked() {
    let host = spawn_host_with_config("[retention]\nmax_age_s = 2\nsweep_every_s = 1\n").await;
    host.upload_plugin("standard_webhooks").await;
    let kept = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let gone = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    assert_eq!(deliver(&host, &kept, "m1").await.0, StatusCode::OK);
    assert_eq!(deliver(&host, &gone, "m1").await.0, StatusCode::OK);

    let path = format!("/triggers/{kept}?keep_events=true");
    assert_eq!(host.api(Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{gone}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.api(Method::GET, &format!("/triggers/{gone}/events"), None).await.0, StatusCode::NOT_FOUND);
    let (_, view) = host.api(Method::GET, &format!("/triggers/{kept}"), None).await;
    assert_eq!(view["status"], "deleted", "{view}");
    assert_eq!(host.all_events(&kept).await.len(), 1);
    assert_eq!(deliver(&host, &kept, "m2").await.0, StatusCode::NOT_FOUND, "takes no deliveries");
    assert_eq!(host.api(Method::POST, &format!("/triggers/{kept}/enable"), None).await.0, StatusCode::NOT_FOUND);

    // Once retention removed the events, the trigger goes with them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while host.api(Method::GET, &format!("/triggers/{kept}"), None).await.0 == StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
