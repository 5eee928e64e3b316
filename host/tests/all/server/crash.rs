//! Ack-after-commit: every delivery that got a 2xx survives `kill -9`.

use std::sync::Arc;

use reqwest::StatusCode;
use tokio::sync::Mutex;

use crate::helpers::{WHSEC, signed_now};
use crate::host::spawn_host;

/// Deliveries in the burst, and how many run at once.
const BURST: usize = 400;
const CONCURRENCY: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_delivery_survives_kill_9() {
    let mut host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let url = format!("{}/hooks/{id}", host.url);

    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (acked, next, url, http) = (Arc::clone(&acked), Arc::clone(&next), url.clone(), host.http.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= BURST {
                    return;
                }
                let delivery = format!("msg_crash_{n}");
                let body = format!(r#"{{"type":"burst","n":{n}}}"#);
                let mut request = http.post(&url).body(body.clone());
                for (name, value) in signed_now(&delivery, body.as_bytes()) {
                    request = request.header(name, value);
                }
                // After the kill, requests fail to connect: that is expected.
                match request.send().await {
                    Ok(response) if response.status() == StatusCode::OK => acked.lock().await.push(delivery),
                    Ok(_) | Err(_) => {}
                }
            }
        }));
    }

    // Kill mid-burst, once some deliveries were acknowledged.
    loop {
        let done = acked.lock().await.len();
        if done >= BURST / 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    host.kill9().await;
    for sender in senders {
        sender.await.expect("sender task");
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= BURST / 4 && acked.len() < BURST, "killed mid-burst after {} acks", acked.len());

    let host = host.restart().await;
    let stored: std::collections::HashSet<String> = host
        .all_events(&id)
        .await
        .iter()
        .filter_map(|e| e["dedupe_key"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<_> = acked.iter().filter(|d| !stored.contains(*d)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged deliveries lost: {lost:?}", lost.len(), acked.len());
}
