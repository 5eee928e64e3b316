//! A heavy connector: `examples/python-hmac`, built by componentize-py
//! (an interpreter inside, about 18 MB). Reports how long an upload takes
//! to compile, how long a restart takes to load it with and without the
//! precompiled cache, and the cost of one delivery on a fresh instance and
//! on a reused one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use triggerhost::capabilities::grant::{Grant, Reuse};
use triggerhost::contract::{Delivery, TriggerContext, WebhookRequest};
use triggerhost::runtime::CallScope;
use triggerhost::{Limits, Runtime, RuntimeConfig};
use triggerhost_sdk::signature::hmac_sha256_hex;

#[path = "support/measure.rs"]
mod measure;

const SECRET: &str = "python-secret";
const BODY: &[u8] = br#"{"type":"invoice.paid","data":{"id":"inv_42","amount":1200}}"#;
const BATCHES: usize = 7;
const PER_BATCH: usize = 20;

#[path = "support/component.rs"]
mod component;

fn main() {
    let component = component::bytes("python_hmac");
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = |cached: bool| {
        let precompiled_cache = cached.then(|| cache.path().to_path_buf());
        Runtime::new(RuntimeConfig { precompiled_cache, ..RuntimeConfig::default() }).expect("runtime")
    };
    let timed = |runtime: &Runtime| {
        let started = Instant::now();
        let plugin = tokio.block_on(runtime.load(&component)).expect("component loads");
        (plugin, started.elapsed())
    };
    println!("python-hmac: {:.1} MB component (componentize-py)\n", component.len() as f64 / 1e6);

    let (_, upload) = timed(&runtime(true));
    println!("{:<52} {:>9.0} ms", "upload: validate + compile (+ write the cache)", ms(upload));
    let (_, restart_cold) = timed(&runtime(false));
    println!("{:<52} {:>9.0} ms", "restart without the cache: compile again", ms(restart_cold));
    let warm = runtime(true);
    let (plugin, restart_cached) = timed(&warm);
    println!("{:<52} {:>9.1} ms", "restart with the cache: checked load", ms(restart_cached));
    assert_eq!(warm.compile_counts().cached, 1, "the restart loaded the cached artifact");

    let (ctx, request, limits) = (context(), signed_request(), Limits::default());
    let fresh = measure::median_of_batches(BATCHES, PER_BATCH, || {
        let out = tokio.block_on(plugin.deliver(ctx.clone(), request.clone(), &limits)).expect("deliver");
        match out.value {
            Ok(Delivery::Accepted(run)) => assert_eq!(run.events.len(), 1),
            other => panic!("unexpected {other:?}"),
        }
    });
    println!("{:<52} {:>9.0} µs", "per delivery, fresh instance: verify + run", fresh.as_secs_f64() * 1e6);

    // Granted reuse: the trigger's instance serves its next calls.
    let reuse = Reuse { max_calls: Reuse::MAX_CALLS, max_age_s: Reuse::MAX_AGE_S };
    let grant = Arc::new(Grant { reuse: Some(reuse), ..Grant::default() });
    let scope = CallScope::new("trg_bench", grant, limits.clone());
    let reused = measure::median_of_batches(BATCHES, PER_BATCH * 10, || {
        let out = tokio.block_on(plugin.deliver(ctx.clone(), request.clone(), &scope)).expect("deliver");
        assert!(matches!(out.value, Ok(Delivery::Accepted(_))));
    });
    let us = reused.as_secs_f64() * 1e6;
    println!("{:<52} {us:>9.1} µs   (target <= 50 µs)", "per delivery, reused instance: verify + run");
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn context() -> TriggerContext {
    TriggerContext {
        trigger_id: "trg_bench".into(),
        trigger_name: "signed".into(),
        config: "{}".into(),
        secret: Some(SECRET.into()),
        webhook_url: "http://127.0.0.1:8080/hooks/trg_bench".into(),
    }
}

fn signed_request() -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        query: String::new(),
        headers: vec![("x-signature".into(), hmac_sha256_hex(SECRET.as_bytes(), &[BODY]))],
        body: BODY.to_vec(),
    }
}
