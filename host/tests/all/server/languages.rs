//! The connectors in other languages (`examples/python-hmac`, built with
//! componentize-py, and `examples/js-hmac`, built with componentize-js)
//! end to end through the server: upload, grant, trigger, signed delivery
//! stored once, redelivery deduplicated, wrong secret and tampered body
//! refused, the connector's kv count kept.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::host::{Host, spawn_host};

const SECRET: &[u8] = b"s3cret";

/// Delivers `body` signed with `secret` as delivery `id`; returns the status.
async fn deliver(host: &Host, trigger: &str, id: &str, body: &[u8], secret: &[u8]) -> StatusCode {
    let signature = triggerhost_sdk::signature::hmac_sha256_hex(secret, &[body]);
    let headers = [("x-signature".to_owned(), signature), ("x-delivery-id".to_owned(), id.to_owned())];
    host.deliver(trigger, &headers, body).await.status()
}

async fn end_to_end(crate_name: &str, plugin: &str, event_type: &str) {
    let host = spawn_host().await;
    let uploaded = host.upload_plugin(crate_name).await;
    assert_eq!((&uploaded["name"], &uploaded["contract"]), (&json!(plugin), &json!("0.2.0")), "{uploaded}");
    let grant = json!({ "key_value": true });
    assert_eq!(host.api(Method::PUT, &format!("/plugins/{plugin}/grants"), Some(grant)).await.0, StatusCode::OK);
    let trigger = host.enabled_trigger(plugin, "signed", Some("s3cret")).await;

    let body = br#"{"order":42}"#;
    assert_eq!(deliver(&host, &trigger, "d1", body, SECRET).await, StatusCode::OK);
    assert_eq!(deliver(&host, &trigger, "d1", body, SECRET).await, StatusCode::OK, "a redelivery");
    assert_eq!(deliver(&host, &trigger, "d2", body, b"another secret").await, StatusCode::UNAUTHORIZED);
    let signature = triggerhost_sdk::signature::hmac_sha256_hex(SECRET, &[body]);
    let tampered = [("x-signature".to_owned(), signature)];
    assert_eq!(host.deliver(&trigger, &tampered, br#"{"order":43}"#).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(deliver(&host, &trigger, "d3", br#"{"order":44}"#, SECRET).await, StatusCode::OK);

    let events = host.all_events(&trigger).await;
    let stored: Vec<(&str, &str, i64)> = events
        .iter()
        .map(|e| (e["dedupe_key"].as_str().unwrap_or(""), e["type"].as_str().unwrap_or(""), e["payload"]["order"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(stored, [("d3", event_type, 44), ("d1", event_type, 42)]);
    // Three deliveries passed verify (the redelivery too): the connector's count.
    let (_, kv) = host.api(Method::GET, &format!("/triggers/{trigger}/kv?values=true"), None).await;
    assert_eq!(kv["entries"][0]["key"], "deliveries", "{kv}");
    assert_eq!(kv["entries"][0]["value"], "3", "{kv}");
}

#[tokio::test]
async fn the_python_connector_verifies_and_stores_deliveries() {
    end_to_end("python_hmac", "python-hmac", "python.signed").await;
}

#[tokio::test]
async fn the_javascript_connector_verifies_and_stores_deliveries() {
    end_to_end("js_hmac", "js-hmac", "js.signed").await;
}
