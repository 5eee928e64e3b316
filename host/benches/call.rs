//! Per-call cost of the sandbox: the standard-webhooks connector handling a
//! signed delivery (fresh instance + `verify` + `run`) against the same
//! connector code compiled natively, in one run.
//!
//! `cargo xtask bench` builds the component first. Figures are medians of
//! batch means; compare them as ratios within one run, the machine is shared.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use triggerhost::capabilities::grant::{Grant, Reuse};
use triggerhost::contract::{Delivery, TriggerContext, WebhookRequest};
use triggerhost::runtime::CallScope;
use triggerhost::{Limits, Plugin, Runtime, RuntimeConfig};
use triggerhost_sdk::signature::{base64_decode, hmac_sha256_base64, now_secs};

// The connector's signature scheme, compiled natively: the same source the
// component is built from.
#[path = "../../plugins/standard-webhooks/src/scheme.rs"]
#[allow(dead_code)]
mod scheme;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &[u8] = br#"{"type":"invoice.paid","data":{"id":"inv_42","amount":1200,"currency":"eur"}}"#;
#[path = "support/context.rs"]
mod context;

#[path = "support/measure.rs"]
mod measure;

const BATCHES: usize = 15;
const PER_BATCH: usize = 400;

#[path = "support/component.rs"]
mod component;

fn main() {
    let component = component::bytes("standard_webhooks");
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let request = signed_request();
    let ctx = context::of("message_received", "{}", Some(SECRET));

    println!("per call, median of {BATCHES} batches x {PER_BATCH} calls:\n");
    let native = measure(|| {
        black_box(native_delivery(black_box(&ctx), black_box(request.clone())));
    });
    report("native: verify + parse + event", native, None);

    for pooling in [true, false] {
        let runtime = Runtime::new(RuntimeConfig { pooling, ..RuntimeConfig::default() }).expect("runtime");
        let plugin = tokio.block_on(runtime.load(&component)).expect("component loads");
        let mode = format!("{:?}", runtime.allocation()).to_lowercase();
        let limits = Limits::default();

        let empty = measure(|| {
            let out = tokio.block_on(plugin.on_disable(ctx.clone(), &limits)).expect("on-disable");
            assert!(out.value.is_ok());
        });
        report(&format!("sandbox ({mode}): instantiate + empty call"), empty, None);

        let deliver = measure(|| deliver_once(&tokio, &plugin, &ctx, &request, &limits));
        report(&format!("sandbox ({mode}): instantiate + verify + run"), deliver, Some(native));

        // Granted reuse: the trigger's instance serves its next calls.
        let reuse = Reuse { max_calls: Reuse::MAX_CALLS, max_age_s: Reuse::MAX_AGE_S };
        let scope = CallScope::new("trg_bench", Arc::new(Grant { reuse: Some(reuse), ..Grant::default() }), limits.clone());
        let reused = measure(|| deliver_once(&tokio, &plugin, &ctx, &request, &scope));
        report(&format!("sandbox ({mode}): reused instance, verify + run"), reused, Some(native));
    }
}

fn deliver_once(
    tokio: &tokio::runtime::Runtime,
    plugin: &Plugin,
    ctx: &TriggerContext,
    request: &WebhookRequest,
    scope: impl Into<CallScope>,
) {
    let out = tokio.block_on(plugin.deliver(ctx.clone(), request.clone(), scope)).expect("deliver");
    match out.value {
        Ok(Delivery::Accepted(run)) => assert_eq!(run.events.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
}

/// What the component does for a delivery, natively: verify, parse, build
/// the event.
fn native_delivery(ctx: &TriggerContext, request: WebhookRequest) -> Option<(String, String, String)> {
    let header = |name: &str| request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let key = scheme::Key::from_secret(ctx.secret.as_deref()?)?;
    let headers = scheme::SignedHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    let _config: serde_json::Value = serde_json::from_str(&ctx.config).ok()?;
    scheme::verify(&key, headers, &request.body, now_secs(), scheme::DEFAULT_TOLERANCE_SECS).ok()?;
    let payload: serde_json::Value = serde_json::from_slice(&request.body).ok()?;
    let event_type = scheme::event_type(&payload).to_owned();
    let id = header("webhook-id")?.to_owned();
    Some((event_type, id, String::from_utf8(request.body).ok()?))
}

fn measure(call: impl FnMut()) -> Duration {
    measure::median_of_batches(BATCHES, PER_BATCH, call)
}

fn report(what: &str, per_call: Duration, native: Option<Duration>) {
    let us = per_call.as_secs_f64() * 1e6;
    match native {
        Some(native) => {
            let overhead = us - native.as_secs_f64() * 1e6;
            println!("{what:<52} {us:>9.2} µs   (+{overhead:.2} µs over native)");
        }
        None => println!("{what:<52} {us:>9.2} µs"),
    }
}


fn signed_request() -> WebhookRequest {
    // Valid for the tolerance window: the bench finishes well within 5 minutes.
    let ts = now_secs().to_string();
    let key = base64_decode(&SECRET["whsec_".len()..]).expect("base64 secret");
    let sig = hmac_sha256_base64(&key, &[b"msg_bench.", ts.as_bytes(), b".", BODY]);
    WebhookRequest {
        method: "POST".into(),
        query: String::new(),
        headers: vec![
            ("webhook-id".into(), "msg_bench".into()),
            ("webhook-timestamp".into(), ts),
            ("webhook-signature".into(), format!("v1,{sig}")),
        ],
        body: BODY.to_vec(),
    }
}
