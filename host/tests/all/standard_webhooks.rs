//! The standard-webhooks connector, loaded and called through the runtime.

use triggerhost::Limits;
use triggerhost::contract::{ErrorCode, RunInput, Strategy, Verdict};
use triggerhost_sdk::signature::now_secs;

use crate::helpers::{NO_HEADERS, WHSEC as SECRET, context, load, post, signed_headers};

// The published example from ../shared/vectors/standard-webhooks.md.
const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const VECTOR_TIMESTAMP: &str = "1614265330";
const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// The `webhook-signature` value a Standard Webhooks sender would send.
fn signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    signed_headers(id, timestamp, body).swap_remove(2).1
}

#[tokio::test]
async fn manifest_describes_the_webhook_trigger() {
    let plugin = load("standard_webhooks").await;
    let manifest = plugin.manifest();
    assert_eq!(manifest.name, "standard-webhooks");
    assert_eq!(plugin.label(), format!("standard-webhooks@{}", manifest.version));
    let trigger = manifest.trigger("message_received").expect("trigger declared");
    assert_eq!(trigger.strategy, Strategy::Webhook);
    let schema: serde_json::Value = serde_json::from_str(&trigger.config_schema).expect("schema is JSON");
    assert_eq!(schema["properties"]["tolerance_secs"]["type"], "integer");
    assert!(plugin.digest().starts_with("sha256:") && plugin.digest().len() == 7 + 64);
}

#[tokio::test]
async fn a_fresh_signed_delivery_is_accepted_and_becomes_one_event() {
    let plugin = load("standard_webhooks").await;
    let limits = Limits::default();
    let ts = now_secs().to_string();
    let body = br#"{"type":"invoice.paid","data":{"id":"inv_1"}}"#;
    let sig = signature("msg_1", &ts, body);
    let request = post(&[("webhook-id", "msg_1"), ("webhook-timestamp", &ts), ("webhook-signature", &sig)], body);
    let ctx = context("message_received", "{}", Some(SECRET));

    let verdict = plugin.verify(ctx.clone(), request.clone(), &limits).await.expect("call succeeds");
    assert_eq!(verdict.value, Ok(Verdict::Accept));
    assert!(verdict.fuel_used > 0, "fuel is metered");

    let output = plugin.run(ctx, RunInput::Webhook(request), &limits).await.expect("call succeeds");
    let output = output.value.expect("run succeeds");
    assert_eq!(output.events.len(), 1);
    let event = &output.events[0];
    assert_eq!(event.dedupe_key.as_deref(), Some("msg_1"));
    assert_eq!(event.event_type, "invoice.paid");
    assert_eq!(event.occurred_at_ms, Some(now_secs_from(&ts) * 1000));
    assert_eq!(event.payload.as_bytes(), body, "the payload is the body exactly as sent");
}

fn now_secs_from(ts: &str) -> u64 {
    ts.parse().expect("numeric timestamp")
}

#[tokio::test]
async fn the_published_vector_verifies_but_is_stale() {
    // The vector's signature is right (the test helper reproduces it), and
    // the connector rejects it only for its age: the 5-minute tolerance.
    assert_eq!(signature(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY), VECTOR_SIGNATURE);
    let plugin = load("standard_webhooks").await;
    let request = post(
        &[("webhook-id", VECTOR_ID), ("webhook-timestamp", VECTOR_TIMESTAMP), ("webhook-signature", VECTOR_SIGNATURE)],
        VECTOR_BODY,
    );
    let ctx = context("message_received", "{}", Some(SECRET));
    let verdict = plugin.verify(ctx, request, &Limits::default()).await.expect("call succeeds").value;
    assert_eq!(verdict, Ok(Verdict::Reject("webhook-timestamp too old".into())));
}

#[tokio::test]
async fn tampered_and_unsigned_deliveries_are_rejected() {
    let plugin = load("standard_webhooks").await;
    let limits = Limits::default();
    let ctx = context("message_received", "{}", Some(SECRET));
    let ts = now_secs().to_string();
    let sig = signature("msg_2", &ts, b"{}");

    let tampered = post(&[("webhook-id", "msg_2"), ("webhook-timestamp", &ts), ("webhook-signature", &sig)], b"{ }");
    let verdict = plugin.verify(ctx.clone(), tampered, &limits).await.expect("call succeeds").value;
    assert_eq!(verdict, Ok(Verdict::Reject("no matching signature".into())));

    let unsigned = post(&[("webhook-id", "msg_2"), ("webhook-timestamp", &ts)], b"{}");
    let verdict = plugin.verify(ctx, unsigned, &limits).await.expect("call succeeds").value;
    assert_eq!(verdict, Ok(Verdict::Reject("missing header webhook-signature".into())));
}

#[tokio::test]
async fn a_missing_secret_or_bad_config_is_a_connector_error() {
    let plugin = load("standard_webhooks").await;
    let limits = Limits::default();
    let request = post(NO_HEADERS, b"{}");

    let no_secret = context("message_received", "{}", None);
    let error = plugin.verify(no_secret, request.clone(), &limits).await.expect("call succeeds").value;
    assert_eq!(error.expect_err("no secret").code, ErrorCode::InvalidConfig);

    let typo = context("message_received", r#"{"tolerance_sec": 10}"#, Some(SECRET));
    let error = plugin.verify(typo, request.clone(), &limits).await.expect("call succeeds").value;
    let error = error.expect_err("unknown config field");
    assert_eq!(error.code, ErrorCode::InvalidConfig);
    assert!(error.message.contains("tolerance_sec"), "{}", error.message);

    let not_json = post(&[("webhook-id", "msg_3")], b"not json");
    let ctx = context("message_received", "{}", Some(SECRET));
    let error = plugin.run(ctx, RunInput::Webhook(not_json), &limits).await.expect("call succeeds").value;
    assert_eq!(error.expect_err("body is not JSON").code, ErrorCode::BadRequest);
}
