//! The poll scheduler at scale: 2,000 enabled polling triggers at a 1 s
//! interval, each polling a local feed server through the real pipeline
//! (sandboxed call, outbound HTTP, cursor in kv, group commit), in one
//! host process. Reports how late polls start after they are due (p50,
//! p99; the target is p99 under 250 ms) and the share of the machine's
//! CPU the host used meanwhile (the feed server's thread counted apart).

use std::time::{Duration, Instant};

use triggerhost::app::AppState;
use triggerhost::capabilities::grant::{Allowance, Origin};
use triggerhost::config::{FileConfig, ServeArgs, Settings};
use triggerhost::triggers::CreateTrigger;

#[path = "support/loopback.rs"]
mod loopback;

const TRIGGERS: usize = 2000;
const WARM_UP: Duration = Duration::from_secs(5);
const MEASURED: Duration = Duration::from_secs(15);

#[path = "support/component.rs"]
mod component;

fn main() {
    let component = component::bytes("http_json_poll");
    let feed = feed_server();
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    tokio.block_on(async move {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let file: FileConfig = toml::from_str(
            "[polling]\nmin_interval_s = 1\nmax_concurrent = 64\n[limits]\nconcurrent_calls = 256\nconcurrent_calls_per_plugin = 128\n",
        )
        .expect("config");
        let args = ServeArgs { data_dir: Some(data_dir), admin_token: Some("bench-admin-token-0123456789".into()), ..ServeArgs::default() };
        let settings = Settings::merge(file, &args).expect("settings");
        let app = AppState::open(&settings, "http://127.0.0.1:9".into(), "bench-admin-token-0123456789".into())
            .await
            .expect("host opens");
        app.registry.register(&component).await.expect("upload");
        let allowance = Allowance {
            outbound: vec![Origin::parse(&format!("http://127.0.0.1:{feed}")).expect("origin")],
            key_value: true,
            ..Allowance::default()
        };
        app.registry.set_allowance("http-json-poll", allowance).await.expect("grant");

        let started = Instant::now();
        for _ in 0..TRIGGERS {
            let request = CreateTrigger {
                plugin: "http-json-poll".into(),
                trigger: "new_item".into(),
                config: Some(serde_json::json!({ "url": format!("http://127.0.0.1:{feed}/items"), "time_field": "t" })),
                secret: None,
                poll_interval_s: Some(1),
                plugin_version: None,
                connection: None,
                filters: None,
                retention_s: None,
                retention_events: None,
            };
            // The triggers enabled so far are polling meanwhile: a write
            // that finds the database busy is tried again.
            let row = retry(|| app.triggers.create(request.clone())).await;
            retry(|| app.triggers.enable(&row.id)).await;
        }
        println!(
            "{TRIGGERS} polling triggers at a 1 s interval, enabled in {:.1} s ({} writes retried after a busy database)",
            started.elapsed().as_secs_f64(),
            RETRIED.load(std::sync::atomic::Ordering::Relaxed)
        );

        tokio::time::sleep(WARM_UP).await;
        app.next_polls.take_lateness();
        let cpu_before = cpu_seconds();
        let wall = Instant::now();
        tokio::time::sleep(MEASURED).await;
        let cpu_after = cpu_seconds();
        let (cpu, feed_cpu) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        let wall = wall.elapsed().as_secs_f64();
        let mut lateness = app.next_polls.take_lateness();
        lateness.sort();
        let at = |q: f64| lateness.get(((lateness.len() as f64 * q) as usize).min(lateness.len().saturating_sub(1))).copied();
        let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("polls started in {MEASURED:?}: {} ({:.0} per second, {} expected)", lateness.len(), lateness.len() as f64 / wall, TRIGGERS);
        println!("lateness: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 250 ms)", ms(at(0.5)), ms(at(0.99)), ms(lateness.last().copied()));
        let share = |cpu: f64| cpu / wall / cores as f64 * 100.0;
        println!("host CPU: {cpu:.2} s over {wall:.1} s on {cores} cores = {:.0}% of the machine", share(cpu));
        println!("feed server CPU (same process, not counted above): {feed_cpu:.2} s = {:.0}%", share(feed_cpu));
    });
}

/// Trigger writes that found the database busy and were tried again.
static RETRIED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn retry<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(mut attempt: impl FnMut() -> F) -> T {
    for _ in 0..20 {
        match attempt().await {
            Ok(value) => return value,
            Err(error) => {
                RETRIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                eprintln!("retrying: {error:?}");
            }
        }
    }
    panic!("still failing after 20 attempts");
}

/// A feed on 127.0.0.1 answering every poll with the same two items.
fn feed_server() -> u16 {
    let body = r#"[{"id":"a","t":1700000000000},{"id":"b","t":1700000001000}]"#;
    loopback::serve(axum::Router::new().fallback(move || async move { ([("content-type", "application/json")], body) }))
}

/// CPU time this process's threads have used (user + system), from /proc:
/// the host's, and the feed server's apart.
fn cpu_seconds() -> (f64, f64) {
    let (mut host, mut feed) = (0.0, 0.0);
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The thread's name sits in parentheses (it may hold spaces).
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let name = head.split_once('(').map_or("", |(_, name)| name);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state.
        let seconds = (ticks(11) + ticks(12)) / 100.0;
        if name == loopback::THREAD_NAME {
            feed += seconds;
        } else {
            host += seconds;
        }
    }
    (host, feed)
}
