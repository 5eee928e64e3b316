//! Bad input gets a clear error and loses nothing.


use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{WHSEC, component_bytes, signed_now};
use crate::host::{spawn_host, spawn_host_with_config};

#[tokio::test]
async fn uploads_that_are_not_connectors_are_refused_with_a_reason() {
    let host = spawn_host().await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("not wasm", b"#!/bin/sh\nrm -rf /".to_vec(), StatusCode::BAD_REQUEST, "not a WebAssembly binary"),
        ("core module", wat::parse_str("(module)").expect("wat"), StatusCode::BAD_REQUEST, "core WebAssembly module"),
        ("other world", wat::parse_str("(component)").expect("wat"), StatusCode::BAD_REQUEST, "describe"),
        (
            "a later contract",
            wat::parse_str(r#"(component (instance $plugin) (export "triggerhost:connector/plugin@9.0.0" (instance $plugin)))"#)
                .expect("wat"),
            StatusCode::BAD_REQUEST,
            "exports triggerhost:connector/plugin@9.0.0, a contract this host does not serve",
        ),
        ("bad manifest", component_bytes("bad_manifest"), StatusCode::BAD_REQUEST, "kebab-case"),
    ];
    for (what, bytes, status, reason) in cases {
        let (got, body) = host.upload(bytes).await;
        assert_eq!(got, status, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{what}: {message}");
    }
    let (_, body) = host.upload(component_bytes("bad_manifest")).await;
    assert_eq!(body["error"]["code"], "invalid-manifest");
    assert_eq!(body["error"]["details"].as_array().map(Vec::len), Some(3), "{body}");

    // None of that registered anything.
    let (_, plugins) = host.api(Method::GET, "/plugins", None).await;
    assert_eq!(plugins["plugins"], json!([]));
}

#[tokio::test]
async fn the_same_version_with_other_bytes_conflicts() {
    let host = spawn_host().await;
    let original = component_bytes("standard_webhooks");
    let first = host.upload_plugin("standard_webhooks").await;
    // Same bytes again: idempotent.
    let (status, again) = host.upload(original.clone()).await;
    assert_eq!((status, &again["digest"]), (StatusCode::OK, &first["digest"]));
    // A trailing custom section changes the digest, not the manifest.
    let mut other = original;
    other.extend_from_slice(&[0x00, 0x04, 0x01, b'x', 0xAB, 0xCD]);
    let (status, body) = host.upload(other).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("bump the version")), "{body}");
    let (_, plugin) = host.api(Method::GET, "/plugins/standard-webhooks", None).await;
    assert_eq!(plugin["versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(plugin["versions"][0]["digest"], first["digest"]);
}

#[tokio::test]
async fn an_upload_over_the_size_cap_is_413() {
    let host = spawn_host().await;
    let (status, body) = host.upload(vec![0u8; (64 << 20) + 16]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn a_json_body_over_1_mib_is_413() {
    let host = spawn_host().await;
    let big = json!({ "plugin": "x", "trigger": "y", "config": { "blob": "z".repeat(1 << 20) } });
    let (status, body) = host.api(Method::POST, "/triggers", Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn malformed_requests_are_400_or_404_with_a_message() {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;

    let raw = host
        .http
        .post(format!("{}/api/v1/triggers", host.url))
        .bearer_auth(crate::host::TOKEN)
        .header("content-type", "application/json")
        .body("{\"plugin\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = raw.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "bad-request");

    let cases = [
        (json!({ "plugin": "standard-webhooks", "trigger": "message_received", "colour": "red" }), "colour"),
        (json!({ "plugin": "nope", "trigger": "message_received" }), "no plugin nope"),
        (json!({ "plugin": "standard-webhooks", "trigger": "nope" }), "has no trigger nope"),
        (json!({ "plugin": "standard-webhooks", "trigger": "message_received", "poll_interval_s": 5 }), "polling"),
    ];
    for (body, reason) in cases {
        let (status, error) = host.api(Method::POST, "/triggers", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains(reason)), "{reason}: {error}");
    }

    // A config that fails the trigger's schema names the failing field.
    let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "config": { "tolerance_secs": 0 } });
    let (status, error) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "invalid-config");
    assert_eq!(error["error"]["details"]["path"], "/tolerance_secs", "{error}");

    for path in ["/triggers/trg_missing", "/triggers/trg_missing/events", "/plugins/nope", "/no/such/route"] {
        let (status, _) = host.api(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = host.api(Method::POST, "/triggers/trg_missing/enable", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host.api(Method::POST, "/plugins/standard-webhooks/activate", Some(json!({ "version": "9.9.9" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host.api(Method::GET, "/triggers", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = host.api(Method::GET, "/triggers/x/events?limit=0", None).await;
    assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_admin_api_needs_the_token() {
    let host = spawn_host().await;
    for token in [None, Some("wrong-token-wrong-token")] {
        let mut request = host.http.get(format!("{}/api/v1/plugins", host.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers().get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    }
}

#[tokio::test]
async fn oversize_and_over_rate_deliveries_are_refused() {
    let host = spawn_host_with_config("[ingress]\nrate_per_second = 1\nburst = 3\n").await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;

    let big = vec![b' '; (1 << 20) + 1];
    let response = host.deliver(&id, &signed_now("msg_big", &big), &big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The burst of 3 was partly spent above; keep going until limited.
    let mut statuses = Vec::new();
    for n in 0..5 {
        let id_n = format!("msg_rate_{n}");
        statuses.push(host.deliver(&id, &signed_now(&id_n, b"{}"), b"{}").await.status());
    }
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(limited >= 2, "{statuses:?}");
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
}

#[tokio::test]
async fn a_busy_database_is_503_with_retry_after_and_loses_nothing() {
    let host = spawn_host_with_config("[database]\nbusy_timeout_ms = 200\n").await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;

    // Another writer holds the database.
    let mut locker = crate::database::connect(&host).await;
    crate::database::hold_write_lock(&mut locker).await;

    let response = host.deliver(&id, &signed_now("msg_busy", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    let (status, _) = host.api(Method::PATCH, &format!("/triggers/{id}"), Some(json!({ "config": {} }))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    sqlx::query("ROLLBACK").execute(&mut locker).await.expect("unlock");
    // The sender's retry succeeds and is stored once.
    let response = host.deliver(&id, &signed_now("msg_busy", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(host.all_events(&id).await.len(), 1);
}
