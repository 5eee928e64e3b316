//! Loads the standard-webhooks connector, signs a delivery the way a sender
//! would, and hands it to the connector in a fresh sandboxed instance:
//! `verify`, then `run`. Then a tampered copy, which `verify` rejects.
//!
//! ```text
//! cargo xtask build-plugins
//! cargo run -p triggerhost-examples --bin deliver [path/to/component.wasm]
//! ```

use anyhow::Context as _;
use triggerhost::contract::{Delivery, TriggerContext, WebhookRequest};
use triggerhost::{Limits, Runtime, RuntimeConfig};
use triggerhost_sdk::signature::{base64_decode, hmac_sha256_base64, now_secs};

/// The secret the sender and the trigger share (Standard Webhooks' example).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm32-wasip2/release/standard_webhooks.wasm").into()
    });
    let bytes = std::fs::read(&path).with_context(|| format!("{path} (run `cargo xtask build-plugins`)"))?;

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = runtime.load(&bytes).await?;
    let manifest = plugin.manifest();
    println!("loaded {} ({}, {} bytes, {:?} allocation)", plugin.label(), plugin.digest(), plugin.size(), runtime.allocation());
    for trigger in &manifest.triggers {
        println!("  trigger {} ({:?}): {}", trigger.name, trigger.strategy, trigger.description);
    }

    let ctx = TriggerContext {
        trigger_id: "trg_example".into(),
        trigger_name: "message_received".into(),
        config: "{}".into(),
        secret: Some(SECRET.into()),
        webhook_url: "http://127.0.0.1:8080/hooks/trg_example".into(),
        credentials: None,
        issued_secrets: Vec::new(),
    };
    let body = br#"{"type":"invoice.paid","data":{"id":"inv_42","amount":1200}}"#.to_vec();
    let delivery = sign("msg_example_1", body);

    println!("\nsigned delivery:");
    report(plugin.deliver(ctx.clone(), delivery.clone(), &Limits::default()).await?);

    let mut tampered = delivery;
    tampered.body = br#"{"type":"invoice.paid","data":{"id":"inv_42","amount":999999}}"#.to_vec();
    println!("\ntampered delivery:");
    report(plugin.deliver(ctx, tampered, &Limits::default()).await?);
    Ok(())
}

/// A delivery signed per the Standard Webhooks spec, timestamped now.
fn sign(id: &str, body: Vec<u8>) -> WebhookRequest {
    let timestamp = now_secs().to_string();
    let key = base64_decode(&SECRET["whsec_".len()..]).unwrap_or_default();
    let signature = hmac_sha256_base64(&key, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", &body]);
    WebhookRequest {
        method: "POST".into(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), id.into()),
            ("webhook-timestamp".into(), timestamp),
            ("webhook-signature".into(), format!("v1,{signature}")),
        ],
        body,
    }
}

fn report(output: triggerhost::CallOutput<Result<Delivery, triggerhost::contract::ConnectorError>>) {
    match output.value {
        Ok(Delivery::Accepted(run)) => {
            for event in run.events {
                println!("  event {} (dedupe key {:?}): {}", event.event_type, event.dedupe_key, event.payload);
            }
        }
        Ok(Delivery::Rejected(reason)) => println!("  rejected: {reason}"),
        Ok(Delivery::Responded(response)) => println!("  connector answered {}", response.status),
        Err(error) => println!("  connector error: {error}"),
    }
    println!("  fuel used {}, {} µs", output.fuel_used, output.duration.as_micros());
}
