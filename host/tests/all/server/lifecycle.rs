//! Upload, create, enable, deliver, dedupe, reject, list, disable, restart.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{WHSEC, signed_now};
use crate::host::spawn_host;

#[tokio::test]
async fn a_delivery_goes_from_upload_to_events_and_survives_a_restart() {
    let host = spawn_host().await;

    // Upload: 201 with name, version, digest and triggers; the first version is active.
    let uploaded = host.upload_plugin("standard_webhooks").await;
    assert_eq!(uploaded["name"], "standard-webhooks");
    assert_eq!(uploaded["triggers"], json!(["message_received"]));
    assert_eq!(uploaded["active"], true);
    assert!(uploaded["digest"].as_str().is_some_and(|d| d.starts_with("sha256:") && d.len() == 71));
    let (status, plugins) = host.api(Method::GET, "/plugins", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plugins["plugins"][0]["active_version"], uploaded["version"]);

    // Create: disabled until enabled, so a delivery is a 404.
    let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "secret": WHSEC });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "disabled");
    assert_eq!(created["has_secret"], true);
    assert!(created.get("secret").is_none(), "the secret is never returned");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["webhook_url"], format!("{}/hooks/{id}", host.url));
    let payload = br#"{"type":"invoice.paid","data":{"id":"inv_1"}}"#;
    assert_eq!(host.deliver(&id, &signed_now("msg_1", payload), payload).await.status(), StatusCode::NOT_FOUND);

    let (status, enabled) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("enabled")));

    // A signed delivery is stored; its redelivery is acknowledged, not stored twice.
    let response = host.deliver(&id, &signed_now("msg_1", payload), payload).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().await.expect("json"), json!({ "stored": 1, "duplicates": 0, "filtered": 0 }));
    let response = host.deliver(&id, &signed_now("msg_1", payload), payload).await;
    assert_eq!(response.json::<serde_json::Value>().await.expect("json"), json!({ "stored": 0, "duplicates": 1, "filtered": 0 }));

    // Tampered: 401, nothing stored.
    let mut tampered = signed_now("msg_2", payload);
    tampered[2].1 = tampered[2].1.replace("v1,", "v1,AAAA");
    assert_eq!(host.deliver(&id, &tampered, payload).await.status(), StatusCode::UNAUTHORIZED);

    // Two more, then list newest first across pages.
    for n in 3..=4 {
        let body = format!(r#"{{"type":"order.{n}"}}"#);
        let response = host.deliver(&id, &signed_now(&format!("msg_{n}"), body.as_bytes()), body.as_bytes()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let (status, page) = host.api(Method::GET, &format!("/triggers/{id}/events?limit=2"), None).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<_> = page["events"].as_array().expect("events").iter().map(|e| e["type"].clone()).collect();
    assert_eq!(types, [json!("order.4"), json!("order.3")]);
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let (_, page) = host.api(Method::GET, &format!("/triggers/{id}/events?limit=2&cursor={cursor}"), None).await;
    let first = &page["events"][0];
    assert_eq!((first["type"].as_str(), first["dedupe_key"].as_str()), (Some("invoice.paid"), Some("msg_1")));
    assert_eq!(first["payload"], json!({ "type": "invoice.paid", "data": { "id": "inv_1" } }));
    assert!(page["next_cursor"].is_null(), "{page}");

    let (_, stats) = host.api(Method::GET, &format!("/triggers/{id}/stats"), None).await;
    assert_eq!(
        (&stats["received"], &stats["accepted"], &stats["rejected"], &stats["duplicates"], &stats["errors"]),
        (&json!(5), &json!(4), &json!(1), &json!(1), &json!(0)),
        "{stats}"
    );
    assert!(stats["fuel_used"].as_i64().is_some_and(|f| f > 0));

    // Disable: deliveries are 404 again.
    let (status, disabled) = host.api(Method::POST, &format!("/triggers/{id}/disable"), None).await;
    assert_eq!((status, disabled["status"].as_str()), (StatusCode::OK, Some("disabled")));
    assert_eq!(host.deliver(&id, &signed_now("msg_5", payload), payload).await.status(), StatusCode::NOT_FOUND);

    // Restart: plugin, trigger, events and stats are all still there.
    let host = host.restart().await;
    let (_, trigger) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
    assert_eq!(trigger["status"], "disabled");
    assert_eq!(host.all_events(&id).await.len(), 3);
    let (_, mut after) = host.api(Method::GET, &format!("/triggers/{id}/stats"), None).await;
    // The counters are the same; the per-minute buckets may have slid by a
    // minute across the restart, so their sum is compared.
    let per_minute = |stats: &mut serde_json::Value| -> i64 {
        let buckets = stats.as_object_mut().and_then(|s| s.remove("events_per_minute")).unwrap_or_default();
        buckets.as_array().map(|b| b.iter().filter_map(serde_json::Value::as_i64).sum()).unwrap_or(-1)
    };
    let mut before = stats.clone();
    assert_eq!((per_minute(&mut after), per_minute(&mut before)), (3, 3));
    assert_eq!(after, before);
    let (_, plugin) = host.api(Method::GET, "/plugins/standard-webhooks", None).await;
    assert_eq!(plugin["versions"][0]["digest"], uploaded["digest"]);

    // And it works again once re-enabled, still deduplicating old keys.
    host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    let response = host.deliver(&id, &signed_now("msg_1", payload), payload).await;
    assert_eq!(response.json::<serde_json::Value>().await.expect("json")["duplicates"], 1);
}

#[tokio::test]
async fn an_enabled_trigger_stays_live_across_a_restart() {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let host = host.restart().await;
    let response = host.deliver(&id, &signed_now("msg_after", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn patch_and_delete_a_trigger() {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;

    let (status, patched) =
        host.api(Method::PATCH, &format!("/triggers/{id}"), Some(json!({ "config": { "tolerance_secs": 60 } }))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["config"], json!({ "tolerance_secs": 60 }));
    // The live trigger uses the new config right away: a 2-minute-old
    // delivery is now too old.
    let old = (triggerhost_sdk::signature::now_secs() - 120).to_string();
    let headers = crate::helpers::signed_headers("msg_old", &old, b"{}");
    assert_eq!(host.deliver(&id, &headers, b"{}").await.status(), StatusCode::UNAUTHORIZED);

    let (status, _) = host.api(Method::PATCH, &format!("/triggers/{id}"), Some(json!({ "secret": null }))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, trigger) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
    assert_eq!(trigger["has_secret"], false);

    let (status, _) = host.api(Method::DELETE, &format!("/triggers/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(host.deliver(&id, &signed_now("msg_x", b"{}"), b"{}").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_metrics_need_no_token() {
    let host = spawn_host().await;
    let health = host.http.get(format!("{}/healthz", host.url)).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = host.http.get(format!("{}/metrics", host.url)).send().await.expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.text().await.is_ok_and(|text| text.contains("# TYPE triggerhost_received_total counter\n")));
    let text = host.metrics().await;
    assert!(text.contains("# TYPE triggerhost_received_total counter\ntriggerhost_received_total 0"), "{text}");
}
