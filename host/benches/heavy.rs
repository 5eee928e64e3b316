//! Heavy connectors, an interpreter inside: `examples/python-hmac`
//! (componentize-py, about 18 MB) and `examples/js-hmac` (componentize-js,
//! about 12 MB). For each: how long an upload takes to compile, how long a
//! restart takes to load it with and without the precompiled cache, and the
//! cost of one delivery (HMAC verify, JSON, a kv read and write) on a fresh
//! instance and on a reused one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use triggerhost::capabilities::Backends;
use triggerhost::capabilities::grant::{Grant, Reuse};
use triggerhost::capabilities::kv::{BoxFuture, KvBackend, KvUsage};
use triggerhost::contract::{Delivery, WebhookRequest};
use triggerhost::runtime::CallScope;
use triggerhost::{Limits, Runtime, RuntimeConfig};
use triggerhost_sdk::signature::hmac_sha256_hex;

#[path = "support/context.rs"]
mod context;

#[path = "support/measure.rs"]
mod measure;

#[path = "support/component.rs"]
mod component;

const SECRET: &str = "bench-secret";
const BODY: &[u8] = br#"{"type":"invoice.paid","data":{"id":"inv_42","amount":1200}}"#;
const BATCHES: usize = 7;
const PER_BATCH: usize = 20;

fn main() {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    for (crate_name, tool) in [("python_hmac", "componentize-py 0.25.1"), ("js_hmac", "componentize-js 0.23.0")] {
        let component = component::bytes(crate_name);
        println!("{crate_name}: {:.1} MB component ({tool})\n", component.len() as f64 / 1e6);
        bench(&tokio, &component);
        println!();
    }
}

fn bench(tokio: &tokio::runtime::Runtime, component: &[u8]) {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = |cached: bool| {
        let precompiled_cache = cached.then(|| cache.path().to_path_buf());
        let backends = Backends { kv: Some(Arc::new(EmptyKv)), outbound: None };
        Runtime::with_backends(RuntimeConfig { precompiled_cache, ..RuntimeConfig::default() }, backends).expect("runtime")
    };
    let timed = |runtime: &Runtime| {
        let started = Instant::now();
        let plugin = tokio.block_on(runtime.load(component)).expect("component loads");
        (plugin, started.elapsed())
    };
    let (_, upload) = timed(&runtime(true));
    println!("{:<52} {:>9.0} ms", "upload: validate + compile (+ write the cache)", ms(upload));
    let (_, restart_cold) = timed(&runtime(false));
    println!("{:<52} {:>9.0} ms", "restart without the cache: compile again", ms(restart_cold));
    let warm = runtime(true);
    let (plugin, restart_cached) = timed(&warm);
    println!("{:<52} {:>9.1} ms", "restart with the cache: checked load", ms(restart_cached));
    assert_eq!(warm.compile_counts().cached, 1, "the restart loaded the cached artifact");

    let (ctx, request) = (context::of("signed", "{}", Some(SECRET)), signed_request());
    let scope = |reuse: Option<Reuse>| {
        let grant = Grant { key_value: true, reuse, ..Grant::default() };
        CallScope::new("trg_bench", Arc::new(grant), Limits::default())
    };
    let deliver = |scope: &CallScope| {
        let out = tokio.block_on(plugin.deliver(ctx.clone(), request.clone(), scope)).expect("deliver");
        match out.value {
            Ok(Delivery::Accepted(run)) => assert_eq!(run.events.len(), 1),
            other => panic!("unexpected {other:?}"),
        }
    };
    let fresh_scope = scope(None);
    let fresh = measure::median_of_batches(BATCHES, PER_BATCH, || deliver(&fresh_scope));
    println!("{:<52} {:>9.0} µs", "per delivery, fresh instance: verify + run", fresh.as_secs_f64() * 1e6);

    // Granted reuse: the trigger's instance serves its next calls.
    let reused_scope = scope(Some(Reuse { max_calls: Reuse::MAX_CALLS, max_age_s: Reuse::MAX_AGE_S }));
    let reused = measure::median_of_batches(BATCHES, PER_BATCH * 10, || deliver(&reused_scope));
    let us = reused.as_secs_f64() * 1e6;
    println!("{:<52} {us:>9.1} µs   (target <= 50 µs)", "per delivery, reused instance: verify + run");
}

/// A trigger's kv as a fresh trigger has it: empty (a call's writes are
/// committed by the store, which this bench has none of).
struct EmptyKv;

impl KvBackend for EmptyKv {
    fn get<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async { Ok(None) })
    }
    fn list_keys<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn entry_size<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>> {
        Box::pin(async { Ok(None) })
    }
    fn usage<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<KvUsage, String>> {
        Box::pin(async { Ok(KvUsage::default()) })
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}


fn signed_request() -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        query: String::new(),
        headers: vec![("x-signature".into(), hmac_sha256_hex(SECRET.as_bytes(), &[BODY]))],
        body: BODY.to_vec(),
    }
}
