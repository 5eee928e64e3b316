//! Push delivery end to end: signed webhooks into the host (ack after
//! commit), each event's delivery job written with it, POSTed signed to a
//! receiver on 127.0.0.1. In one run, alternating in rounds: ingest alone
//! (a trigger without destinations) against ingest with push (a trigger
//! with one destination), each round's deliveries drained before the next.
//! Printed: ingest rates, the delivery throughput (events delivered per
//! second from the round's first request to its last receipt), its ratio
//! to ingest alone (target >= 0.8), and the p50/p99 latency from the
//! webhook's send to the receiver's receipt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use reqwest::Method;
use serde_json::json;

#[path = "../../plugins/standard-webhooks/src/scheme.rs"]
#[allow(dead_code)]
mod scheme;

#[path = "support/component.rs"]
mod component;
#[path = "support/load.rs"]
mod load;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/serve.rs"]
mod serve;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CONNECTIONS: usize = 32;
const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(4);
/// The longest a round's deliveries may take to drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// What the receiver saw: pushes, and each one's latency in microseconds.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

/// Microseconds since the benchmark started (one clock for sender and receiver).
fn micros() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

async fn receive(State(received): State<Arc<Received>>, body: Bytes) -> &'static str {
    let now = micros();
    let push: serde_json::Value = serde_json::from_slice(&body).expect("a JSON push");
    let sent = push["data"]["data"]["sent_us"].as_u64().expect("the sender's timestamp");
    received.latencies_us.lock().expect("latencies").push(now.saturating_sub(sent));
    received.count.fetch_add(1, Ordering::Relaxed);
    "ok"
}

fn main() {
    let component = component::bytes("standard_webhooks");
    micros();
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    tokio.block_on(async move {
        let temp = tempfile::tempdir().expect("temp dir");
        let config = "[ingress]\nrate_per_second = 1000000\nburst = 1000000\n[delivery]\nallow_private = true\n";
        let host = serve::start(&temp.path().join("host"), config).await;
        host.upload(&component).await;
        let (alone, pushed) = (host.webhook_trigger(SECRET).await, host.webhook_trigger(SECRET).await);
        let received = Arc::new(Received::default());
        let app = axum::Router::new().route("/push", axum::routing::post(receive)).with_state(Arc::clone(&received));
        let port = loopback::serve(app);
        let destination = json!({ "url": format!("http://127.0.0.1:{port}/push"), "max_in_flight": 64 });
        host.api(Method::POST, &format!("/triggers/{pushed}/destinations"), Some(destination)).await;

        let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
        let mut sequence = 0u64;
        load(&client, &host.hook(&alone), Duration::from_secs(1), &mut sequence).await;
        let warm = load(&client, &host.hook(&pushed), Duration::from_secs(1), &mut sequence).await;
        drain(&received, warm).await;
        received.latencies_us.lock().expect("latencies").clear();

        let (mut alone_rates, mut pushed_rates, mut delivered_rates) = (Vec::new(), Vec::new(), Vec::new());
        let (mut alone_cpu, mut pushed_cpu) = ((Duration::ZERO, 0u64), (Duration::ZERO, 0u64));
        // `DELIVERY_ONLY=push` runs the push rounds alone: a profile of the
        // host under this load (`perf record`) shows only their costs.
        let only_push = std::env::var("DELIVERY_ONLY").is_ok_and(|only| only == "push");
        for _ in 0..ROUNDS {
            let cpu = cpu_time();
            let acked = if only_push { 0 } else { load(&client, &host.hook(&alone), ROUND, &mut sequence).await };
            alone_cpu = (alone_cpu.0 + cpu_time().saturating_sub(cpu), alone_cpu.1 + acked);
            alone_rates.push(acked as f64 / ROUND.as_secs_f64());
            let before = received.count.load(Ordering::Relaxed);
            let (started, cpu) = (Instant::now(), cpu_time());
            let acked = load(&client, &host.hook(&pushed), ROUND, &mut sequence).await;
            pushed_rates.push(acked as f64 / ROUND.as_secs_f64());
            drain(&received, before + acked).await;
            pushed_cpu = (pushed_cpu.0 + cpu_time().saturating_sub(cpu), pushed_cpu.1 + acked);
            delivered_rates.push(acked as f64 / started.elapsed().as_secs_f64());
        }
        let (alone, pushed, delivered) = (median(&alone_rates), median(&pushed_rates), median(&delivered_rates));
        let mut latencies = std::mem::take(&mut *received.latencies_us.lock().expect("latencies"));
        latencies.sort_unstable();
        let percentile = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] as f64 / 1000.0;
        let rounds = |rates: &[f64]| rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(", ");
        println!("signed webhooks, {CONNECTIONS} connections, median of {ROUNDS} rounds of {ROUND:?}, alternating:\n");
        println!("{:<44} {alone:>8.0} events/s   (rounds: {})", "ingest alone (no destination)", rounds(&alone_rates));
        println!("{:<44} {pushed:>8.0} events/s   (rounds: {})", "ingest with push (one destination)", rounds(&pushed_rates));
        println!("{:<44} {delivered:>8.0} events/s   (rounds: {})", "delivered, send to last receipt", rounds(&delivered_rates));
        println!(
            "\nlatency, webhook sent to push received ({} pushes): p50 {:.1} ms, p99 {:.1} ms",
            latencies.len(),
            percentile(0.50),
            percentile(0.99)
        );
        let per_event = |(cpu, events): (Duration, u64)| cpu.as_secs_f64() * 1e6 / events.max(1) as f64;
        println!(
            "CPU per event, load generator + host + receiver: ingest alone {:.0} us, with push {:.0} us ({} cores)",
            per_event(alone_cpu),
            per_event(pushed_cpu),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!("delivered / ingest with push: {:.2}x (delivery keeps up with ingest)", delivered / pushed);
        println!("delivered / ingest alone: {:.2}x (target >= 0.8)", delivered / alone);
    });
}

/// CPU time this process has used (user + system), from `/proc/self/stat`
/// in clock ticks of 10 ms: generator, host and receiver together.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces, in parentheses).
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn median(rates: &[f64]) -> f64 {
    let mut sorted = rates.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Waits until the receiver has `count` pushes.
async fn drain(received: &Received, count: u64) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while received.count.load(Ordering::Relaxed) < count {
        assert!(Instant::now() < deadline, "deliveries did not drain: {} of {count}", received.count.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Signed webhooks carrying their send time to `url` for `duration`;
/// returns how many were answered 200.
async fn load(client: &reqwest::Client, url: &str, duration: Duration, sequence: &mut u64) -> u64 {
    let body = || format!(r#"{{"type":"invoice.paid","data":{{"sent_us":{}}}}}"#, micros());
    load::signed(client, &[url.to_owned()], SECRET, CONNECTIONS, duration, sequence, body).await.0
}
