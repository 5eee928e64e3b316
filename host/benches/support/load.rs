//! The load generator of the webhook benchmarks: signed Standard Webhooks
//! deliveries from many connections at once, for a while.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use triggerhost_sdk::signature::now_secs;

use super::scheme;

/// Sends deliveries signed with `secret` to `urls` (connection `i` to
/// `urls[i % urls.len()]`: one URL, or one per node of a cluster) from
/// `connections` tasks for `duration`, each body made by `body`; returns
/// how many were answered 200 and how long it took. Any other answer fails
/// the benchmark. `sequence` keeps webhook ids unique across calls.
pub async fn signed(
    client: &reqwest::Client,
    urls: &[String],
    secret: &str,
    connections: usize,
    duration: Duration,
    sequence: &mut u64,
    body: fn() -> String,
) -> (u64, Duration) {
    let (ok, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let first = *sequence;
    *sequence += 1 << 32;
    let key = scheme::signing_key(secret).expect("secret");
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections as u64)
        .map(|task| {
            let url = urls[usize::try_from(task).unwrap_or(0) % urls.len()].clone();
            let (client, ok, stop, key) = (client.clone(), Arc::clone(&ok), Arc::clone(&stop), key.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("msg_{first}_{task}_{n}");
                    let body = body();
                    let timestamp = now_secs();
                    let response = client
                        .post(&url)
                        .header("webhook-id", &id)
                        .header("webhook-timestamp", timestamp.to_string())
                        .header("webhook-signature", scheme::sign(&key, &id, timestamp, body.as_bytes()))
                        .body(body)
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
                    ok.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
    (ok.load(Ordering::Relaxed), started.elapsed())
}
