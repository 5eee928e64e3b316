//! Cost of one granted outbound request: a connector's request to a
//! loopback server through the host (URL parsed and normalized, grant
//! matched, address checked, fresh connection, response read under its
//! cap) against the same exchange made natively with hyper, in one run.
//!
//! The marginal cost per request is taken between calls making 1 and 16
//! requests, so instantiation and the call itself cancel out. Figures are
//! medians of batch means; compare them as ratios within one run.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use triggerhost::capabilities::Backends;
use triggerhost::capabilities::grant::{Grant, Origin};
use triggerhost::capabilities::http::{Outbound, SystemResolver, Target, non_public};
use triggerhost::contract::{RunInput, WebhookRequest};
use triggerhost::runtime::CallScope;
use triggerhost::{Limits, Runtime, RuntimeConfig};

#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/context.rs"]
mod context;
#[path = "support/measure.rs"]
mod measure;

const BATCHES: usize = 15;
const PER_BATCH: usize = 50;

#[path = "support/component.rs"]
mod component;

fn main() {
    let component = component::bytes("hostile");
    // Every request is answered `hello`.
    let port = loopback::serve(axum::Router::new().fallback(|| async { "hello" }));
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");

    println!("per request to a loopback server, median of {BATCHES} batches x {PER_BATCH}:\n");
    let native = measure(|| tokio.block_on(native_request(port)));
    println!("{:<60} {:>9.2} µs", "native: connect + GET + read body (hyper)", micros(native));

    let outbound = Outbound::new(Arc::new(SystemResolver::default())).expect("tls settings");
    let backends = Backends { kv: None, outbound: Some(Arc::new(outbound)) };
    let runtime = Runtime::with_backends(RuntimeConfig::default(), backends).expect("runtime");
    let plugin = tokio.block_on(runtime.load(&component)).expect("component loads");
    let origin = Origin::parse(&format!("http://127.0.0.1:{port}")).expect("origin");
    let grant = Arc::new(Grant { outbound: vec![origin], ..Grant::default() });
    let scope = CallScope::new("trg_bench", grant, Limits::default());
    let call = |repeat: usize| {
        let ctx = context::of("fetch", &format!(r#"{{"url": "http://127.0.0.1:{port}/", "repeat": {repeat}}}"#), None);
        let out = tokio.block_on(plugin.run(ctx, RunInput::Webhook(empty_request()), &scope)).expect("call");
        assert!(out.value.is_ok(), "{:?}", out.value.err());
    };
    let one = measure(|| call(1));
    let sixteen = measure(|| call(16));
    println!("{:<60} {:>9.2} µs", "sandbox: call making 1 request", micros(one));
    println!("{:<60} {:>9.2} µs", "sandbox: call making 16 requests", micros(sixteen));
    let marginal = sixteen.saturating_sub(one) / 15;
    println!("{:<60} {:>9.2} µs", "sandbox: marginal cost of one request", micros(marginal));
    println!(
        "{:<60} {:>9.2} µs",
        "host overhead per request (marginal - native)",
        micros(marginal) - micros(native)
    );

    // The checks alone, without the network: what the host adds to every
    // request whatever the server's speed.
    let origins = [Origin::parse(&format!("http://127.0.0.1:{port}")).expect("origin")];
    let url = format!("http://0x7f.1:{port}/v1/items?cursor=abc");
    let checks = measure(|| {
        for _ in 0..100 {
            let target = Target::parse(std::hint::black_box(&url)).expect("parses");
            assert!(target.granted_by(&origins).is_some());
            if let triggerhost::capabilities::http::Host::Ip(ip) = target.host {
                std::hint::black_box(non_public(ip));
            }
        }
    }) / 100;
    println!("{:<60} {:>9.2} µs", "host checks alone (parse, normalize, grant, address)", micros(checks));
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// What the host does for one request, without its checks: a fresh
/// connection, one GET, the body read whole.
async fn native_request(port: u16) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get("/").header("host", format!("127.0.0.1:{port}")).body(Empty::<Bytes>::new());
    let response = sender.send_request(request.expect("request")).await.expect("response");
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"hello");
    driver.abort();
}

fn measure(call: impl FnMut()) -> Duration {
    measure::median_of_batches(BATCHES, PER_BATCH, call)
}


fn empty_request() -> WebhookRequest {
    WebhookRequest { method: "POST".into(), query: String::new(), headers: Vec::new(), body: Vec::new() }
}
