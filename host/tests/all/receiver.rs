//! A consumer's endpoint on 127.0.0.1: records every push it gets, checks
//! its signature with the Standard Webhooks algorithm (written here from
//! the spec, apart from the host's code), and answers as a test scripts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One push as received.
#[derive(Debug, Clone)]
pub struct Push {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: i64,
    /// Whether one of the `webhook-signature` entries verified.
    pub verified: bool,
    /// How many `v1,` signatures the header carried.
    pub signatures: usize,
    /// The JSON body.
    pub body: Value,
    /// When it arrived.
    pub at: std::time::Instant,
    raw_body: Bytes,
    signature_header: String,
}

impl Push {
    /// Whether the push verifies under `secret` alone.
    pub fn verifies_with(&self, secret: &str) -> bool {
        let expected = sign(&key_of(secret), &self.id, &self.timestamp.to_string(), &self.raw_body);
        self.signature_header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|given| given == expected)
    }
}

/// How the endpoint answers the `n`th push (0-based) of a `webhook-id`.
pub type Script = Box<dyn Fn(&Push, usize) -> (u16, Option<String>) + Send>;

struct Inner {
    keys: Vec<Vec<u8>>,
    pushes: Vec<Push>,
    script: Script,
    /// How long each answer takes.
    delay: Duration,
    in_flight: usize,
    most_in_flight: usize,
}

/// A running endpoint.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    pub address: SocketAddr,
}

/// `v1,` signatures over `id.timestamp.body` under `key`, by the spec.
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The key a `whsec_` secret carries.
pub fn key_of(secret: &str) -> Vec<u8> {
    STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 key")
}

impl Receiver {
    /// Starts an endpoint that answers 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    /// Starts on `address` (port 0 for any).
    pub async fn start_on(address: SocketAddr) -> Receiver {
        let inner = Arc::new(Mutex::new(Inner {
            keys: Vec::new(),
            pushes: Vec::new(),
            script: Box::new(|_, _| (200, None)),
            delay: Duration::ZERO,
            in_flight: 0,
            most_in_flight: 0,
        }));
        let listener = tokio::net::TcpListener::bind(address).await.expect("bind receiver");
        let address = listener.local_addr().expect("receiver address");
        let app = Router::new().route("/hook", axum::routing::post(push)).with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { inner, url: format!("http://{address}/hook"), address }
    }

    /// Verifies with the key of `secret` (beside any set before).
    pub fn trust(&self, secret: &str) {
        self.lock().keys.push(key_of(secret));
    }

    /// Answers from now on as `script` says.
    pub fn script(&self, script: impl Fn(&Push, usize) -> (u16, Option<String>) + Send + 'static) {
        self.lock().script = Box::new(script);
    }

    /// Takes `delay` over each answer from now on.
    pub fn delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The most pushes that were being answered at once.
    pub fn most_in_flight(&self) -> usize {
        self.lock().most_in_flight
    }

    /// Every push so far, in arrival order.
    pub fn pushes(&self) -> Vec<Push> {
        self.lock().pushes.clone()
    }

    /// Waits up to `within` until `check` holds of the pushes.
    pub async fn wait_for(&self, what: &str, within: Duration, check: impl Fn(&[Push]) -> bool) -> Vec<Push> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let pushes = self.pushes();
            if check(&pushes) {
                return pushes;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {} pushes: {pushes:?}", pushes.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn push(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, timestamp, signature) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let delay = {
        let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.in_flight += 1;
        inner.most_in_flight = inner.most_in_flight.max(inner.in_flight);
        inner.delay
    };
    tokio::time::sleep(delay).await;
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.in_flight -= 1;
    let expected: Vec<String> = inner.keys.iter().map(|key| sign(key, &id, &timestamp, &body)).collect();
    let given: Vec<&str> = signature.split(' ').filter_map(|s| s.strip_prefix("v1,")).collect();
    let push = Push {
        verified: given.iter().any(|g| expected.iter().any(|e| e == g)),
        signatures: given.len(),
        timestamp: timestamp.parse().unwrap_or(-1),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        id,
        at: std::time::Instant::now(),
        raw_body: body.clone(),
        signature_header: signature.clone(),
    };
    let nth = inner.pushes.iter().filter(|p| p.id == push.id).count();
    let (status, retry_after) = (inner.script)(&push, nth);
    inner.pushes.push(push);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match retry_after {
        Some(after) => (status, [("retry-after", after)], "scripted").into_response(),
        None => (status, "scripted").into_response(),
    }
}

/// The verifier itself is right: it reproduces the published example.
#[test]
fn the_verifier_reproduces_the_published_signature() {
    let key = key_of(crate::helpers::WHSEC);
    let signature = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", br#"{"test": 2432232314}"#);
    assert_eq!(signature, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}
