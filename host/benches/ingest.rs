//! Webhook ingest end to end: the host (`triggerhost serve`, the
//! standard-webhooks connector, ack after commit) against a plain native
//! axum handler that verifies the same signature and durably inserts each
//! event (SQLite WAL, synchronous=FULL, group commit like the host's), and
//! against the same handler without the insert (the ceiling). One load
//! generator, 32 connections, the three targets alternating in rounds;
//! printed as requests per second and as ratios. Then the host once more
//! while an 18 MB connector is uploaded: what a compile costs ingress.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};
use triggerhost_sdk::signature::now_secs;

// The connector's signature scheme, compiled natively: the same source the
// component is built from.
#[path = "../../plugins/standard-webhooks/src/scheme.rs"]
#[allow(dead_code)]
mod scheme;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"type":"invoice.paid","data":{"id":"inv_42","amount":1200,"currency":"eur"}}"#;
const CONNECTIONS: usize = 32;
const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(4);

#[path = "support/component.rs"]
mod component;
#[path = "support/load.rs"]
mod load;
#[path = "support/serve.rs"]
mod serve;

fn main() {
    let component = component::bytes("standard_webhooks");
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    tokio.block_on(async move {
        let temp = tempfile::tempdir().expect("temp dir");
        // `INGEST_ONLY=host` loads the host alone: a profile of it under
        // this load (`perf record`) shows only its costs.
        let only_host = std::env::var("INGEST_ONLY").is_ok_and(|only| only == "host");
        let mut targets = vec![("host (standard-webhooks connector)", host(&temp, &component).await)];
        if !only_host {
            targets.push(("native handler, durable insert", native(Some(&temp)).await));
            targets.push(("native handler, no insert (ceiling)", native(None).await));
        }
        let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
        let mut sequence = 0u64;
        // Warm-up: one short pass each.
        for (_, url) in &targets {
            load(&client, url, Duration::from_secs(1), &mut sequence).await;
        }
        for _ in 0..ROUNDS {
            for (i, (_, url)) in targets.iter().enumerate() {
                rates[i].push(load(&client, url, ROUND, &mut sequence).await);
            }
        }
        let median = |r: &Vec<f64>| {
            let mut sorted = r.clone();
            sorted.sort_by(f64::total_cmp);
            sorted[sorted.len() / 2]
        };
        let medians: Vec<f64> = rates.iter().map(median).collect();
        println!("signed deliveries, {CONNECTIONS} connections, median of {ROUNDS} rounds of {ROUND:?} each, targets alternating:\n");
        for ((name, _), (rate, rounds)) in targets.iter().zip(medians.iter().zip(&rates)) {
            let rounds: Vec<String> = rounds.iter().map(|r| format!("{r:.0}")).collect();
            println!("{name:<40} {rate:>9.0} requests/s   (rounds: {})", rounds.join(", "));
        }
        // The host again, while an 18 MB connector is uploaded and compiled.
        let heavy = component::bytes("python_hmac");
        let api = targets[0].1.split("/hooks/").next().map(|base| format!("{base}/api/v1/plugins")).expect("host URL");
        let upload = client.post(&api).bearer_auth(serve::TOKEN).header("content-type", "application/wasm").body(heavy).send();
        let uploading = tokio::spawn(async move {
            let started = Instant::now();
            let status = upload.await.expect("upload").status();
            (status, started.elapsed())
        });
        let during = load(&client, &targets[0].1, ROUND, &mut sequence).await;
        let (status, compiled_in) = uploading.await.expect("upload task");
        assert!(status.is_success(), "heavy upload: {status}");
        println!(
            "{:<40} {during:>9.0} requests/s   ({:.0}% of the host's median; the upload took {:.1} s)",
            "host while an 18 MB connector compiles",
            during / medians[0] * 100.0,
            compiled_in.as_secs_f64()
        );
        if let [host, durable, ceiling] = medians[..] {
            println!(
                "\nhost / native durable: {:.2}x (target >= 1.0)\nhost / ceiling:        {:.2}x (target >= 0.6)",
                host / durable,
                host / ceiling
            );
        }
    });
}

/// Signed deliveries to `url` for `duration`; returns the rate of 200
/// answers.
async fn load(client: &reqwest::Client, url: &str, duration: Duration, sequence: &mut u64) -> f64 {
    let (ok, took) = load::signed(client, &[url.to_owned()], SECRET, CONNECTIONS, duration, sequence, || BODY.to_owned()).await;
    ok as f64 / took.as_secs_f64()
}

/// `triggerhost serve` in this process with the connector and one trigger;
/// returns the trigger's webhook URL.
async fn host(temp: &tempfile::TempDir, component: &[u8]) -> String {
    let served = serve::start(&temp.path().join("host"), "[ingress]\nrate_per_second = 1000000\nburst = 1000000\n").await;
    served.upload(component).await;
    let trigger = served.webhook_trigger(SECRET).await;
    served.hook(&trigger)
}

/// What the native handler does with a verified delivery.
#[derive(Clone)]
struct Native {
    /// The group committer, or none for the ceiling.
    commits: Option<mpsc::Sender<(String, String, oneshot::Sender<()>)>>,
    key: Arc<scheme::Key>,
}

/// The native handler on 127.0.0.1 (durable when given a directory for its
/// database); returns its URL.
async fn native(durable: Option<&tempfile::TempDir>) -> String {
    let commits = match durable {
        Some(temp) => Some(native_committer(&temp.path().join("native.db")).await),
        None => None,
    };
    let state = Native { commits, key: Arc::new(scheme::Key::from_secret(SECRET).expect("secret")) };
    let app = axum::Router::new().route("/hooks/{id}", axum::routing::post(native_hook)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://127.0.0.1:{port}/hooks/native")
}

async fn native_hook(State(native): State<Native>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = scheme::SignedHeaders {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    if scheme::verify(&native.key, signed, &body, now_secs(), scheme::DEFAULT_TOLERANCE_SECS).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let (Some(commits), Some(id)) = (native.commits, header("webhook-id")) else {
        return StatusCode::OK;
    };
    let (done, committed) = oneshot::channel();
    if commits.send((id.to_owned(), payload.to_string(), done)).await.is_err() || committed.await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

/// A task that inserts what it is sent in batches, one transaction each,
/// and answers each sender once its batch is durable.
async fn native_committer(path: &std::path::Path) -> mpsc::Sender<(String, String, oneshot::Sender<()>)> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        // The host's page cache, so neither side wins on that.
        .pragma("cache_size", "-16384");
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("native database");
    sqlx::query("CREATE TABLE events (seq INTEGER PRIMARY KEY, dedupe_key TEXT UNIQUE, payload TEXT NOT NULL)")
        .execute(&pool)
        .await
        .expect("schema");
    let (sender, mut queue) = mpsc::channel::<(String, String, oneshot::Sender<()>)>(4096);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(256);
        while let Some(first) = queue.recv().await {
            batch.push(first);
            while batch.len() < 256 {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let mut tx = pool.begin().await.expect("begin");
            for (key, payload, _) in &batch {
                sqlx::query("INSERT INTO events (dedupe_key, payload) VALUES (?, ?) ON CONFLICT DO NOTHING")
                    .bind(key)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
            }
            tx.commit().await.expect("commit");
            for (_, _, done) in batch.drain(..) {
                let _ = done.send(());
            }
        }
    });
    sender
}
