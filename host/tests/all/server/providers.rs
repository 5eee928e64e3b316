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
