//! Ack-after-commit: every delivery that got a 2xx survives `kill -9`, and
//! SIGTERM under load exits 0 with every acknowledged delivery stored once.

use std::sync::Arc;

use reqwest::StatusCode;
use tokio::sync::Mutex;

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host};

/// Deliveries in the burst, and how many run at once.
const BURST: usize = 400;
const CONCURRENCY: usize = 16;

/// Signed deliveries to `url` from [`CONCURRENCY`] senders until
/// [`BURST`] were sent; the ids of those answered 200 go to `acked`, and
/// any other answer but a connection error or a 503 to `wrong`.
fn burst(http: &reqwest::Client, url: &str, acked: &Arc<Mutex<Vec<String>>>, wrong: &Arc<Mutex<Vec<String>>>) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (0..CONCURRENCY)
        .map(|_| {
            let (acked, wrong, next, url, http) = (Arc::clone(acked), Arc::clone(wrong), Arc::clone(&next), url.to_owned(), http.clone());
            tokio::spawn(async move {
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
                    // Once the host is gone, requests fail to connect: expected.
                    match request.send().await {
                        Ok(response) if response.status() == StatusCode::OK => acked.lock().await.push(delivery),
                        Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => {
                            wrong.lock().await.push(format!("{delivery}: {}", response.status()));
                        }
                        Ok(_) | Err(_) => {}
                    }
                }
            })
        })
        .collect()
}

/// Waits until a quarter of the burst is acknowledged.
async fn quarter_acked(acked: &Mutex<Vec<String>>) {
    while acked.lock().await.len() < BURST / 4 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Every acknowledged delivery is stored, once.
async fn assert_stored_once(host: &Host, id: &str, acked: &[String]) {
    let keys: Vec<String> =
        host.all_events(id).await.iter().filter_map(|e| e["dedupe_key"].as_str().map(str::to_owned)).collect();
    let stored: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(stored.len(), keys.len(), "a delivery was stored twice");
    let lost: Vec<_> = acked.iter().filter(|d| !stored.contains(d)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged deliveries lost: {lost:?}", lost.len(), acked.len());
}

/// A host taking a burst of deliveries to one trigger.
struct UnderLoad {
    host: Host,
    id: String,
    acked: Arc<Mutex<Vec<String>>>,
    wrong: Arc<Mutex<Vec<String>>>,
    senders: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts a host and a burst, and returns once a quarter of it is acknowledged.
async fn under_load() -> UnderLoad {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let (acked, wrong) = (Arc::default(), Arc::default());
    let senders = burst(&host.http, &format!("{}/hooks/{id}", host.url), &acked, &wrong);
    quarter_acked(&acked).await;
    UnderLoad { host, id, acked, wrong, senders }
}

impl UnderLoad {
    /// Once the host has stopped: waits for the senders, checks that it
    /// stopped mid-burst and that every answer was 200, 503 or a
    /// connection error, restarts it and checks that every acknowledged
    /// delivery is stored once.
    async fn restart_and_check(self) {
        for sender in self.senders {
            sender.await.expect("sender task");
        }
        let acked = self.acked.lock().await.clone();
        assert!(acked.len() >= BURST / 4 && acked.len() < BURST, "stopped mid-burst after {} acks", acked.len());
        let wrong = self.wrong.lock().await.clone();
        assert!(wrong.is_empty(), "answers neither 200, 503 nor a connection error: {wrong:?}");
        let host = self.host.restart().await;
        assert_stored_once(&host, &self.id, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_delivery_survives_kill_9() {
    let mut load = under_load().await;
    load.host.kill9().await;
    load.restart_and_check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_cleanly_and_stores_every_acknowledged_delivery_once() {
    let mut load = under_load().await;
    let exit = load.host.terminate().await;
    assert!(exit.success(), "SIGTERM: {exit}");
    load.restart_and_check().await;
}
