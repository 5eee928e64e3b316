//! One attempt: a signed POST to a destination over a connection the host
//! opened to an address it checked, kept alive for the next attempt to the
//! same destination. The response is read up to a cap and no further.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::signing;
use crate::capabilities::http::{HttpError, Outbound, Target, checked_address};
use crate::store::DueJob;

/// Bytes of a response read at most; the rest is not read.
const MAX_RESPONSE_READ: usize = 64 << 10;
/// Bytes of a response body kept with the attempt.
pub const EXCERPT_BYTES: usize = 1024;
/// Idle connections kept per destination.
const IDLE_PER_DESTINATION: usize = 32;

/// Where one destination's attempts go, and what signs them. `Debug`
/// leaves the keys out.
#[derive(Clone)]
pub struct Endpoint {
    /// The destination.
    pub destination_id: String,
    /// Its URL, normalized.
    pub target: Target,
    /// Signing keys: the current one, then a rotated-out one with the end
    /// of its grace period.
    pub keys: Vec<(Vec<u8>, Option<i64>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("destination_id", &self.destination_id)
            .field("target", &self.target.origin())
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .finish()
    }
}

/// What came of an attempt.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The receiver's status, if it answered.
    pub status: Option<u16>,
    /// Its `Retry-After` header.
    pub retry_after: Option<String>,
    /// The first bytes of its body.
    pub excerpt: Option<String>,
    /// Why no answer came.
    pub error: Option<String>,
}

/// Sends attempts; keeps idle connections per destination.
pub struct Sender {
    outbound: Arc<Outbound>,
    allow_private: bool,
    timeout: Duration,
    user_agent: String,
    idle: Mutex<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("allow_private", &self.allow_private).field("timeout", &self.timeout).finish()
    }
}

impl Sender {
    /// A sender resolving and speaking TLS as connectors' outbound HTTP does.
    pub fn new(outbound: Arc<Outbound>, allow_private: bool, timeout: Duration) -> Self {
        let user_agent = format!("triggerhost/{} (push delivery)", env!("CARGO_PKG_VERSION"));
        Sender { outbound, allow_private, timeout, user_agent, idle: Mutex::default() }
    }

    /// Sends `job` to `endpoint`, signed at `timestamp_s`; never longer
    /// than the timeout.
    pub async fn send(&self, endpoint: &Endpoint, job: &DueJob, now_ms: i64) -> Answer {
        match tokio::time::timeout(self.timeout, self.exchange(endpoint, job, now_ms)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => Answer { error: Some(error), ..Answer::default() },
            Err(_) => Answer { error: Some(format!("no answer within {} s", self.timeout.as_secs_f64())), ..Answer::default() },
        }
    }

    /// Forgets a destination's idle connections (it changed or went away).
    pub fn forget(&self, destination_id: &str) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).remove(destination_id);
    }

    async fn exchange(&self, endpoint: &Endpoint, job: &DueJob, now_ms: i64) -> Result<Answer, String> {
        let body = signing::body(job);
        let keys: Vec<Vec<u8>> = endpoint
            .keys
            .iter()
            .filter(|(_, until)| until.is_none_or(|until| until > now_ms))
            .map(|(key, _)| key.clone())
            .collect();
        let timestamp = u64::try_from(now_ms / 1000).unwrap_or_default();
        let target = &endpoint.target;
        let host = target.host_header();
        let signature = signing::signature_header(&keys, &job.event_id, timestamp, &body);
        let body = Bytes::from(body);
        let request = || {
            hyper::Request::post(target.request_target())
                .header(hyper::header::HOST, &host)
                .header(hyper::header::USER_AGENT, &self.user_agent)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", &job.event_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", &signature)
                .body(Full::new(body.clone()))
                .map_err(|e| format!("request: {e}"))
        };
        // An idle connection the receiver closed meanwhile fails before the
        // request is read: that one is sent again on a new connection.
        let reused = match self.take_idle(&endpoint.destination_id) {
            Some(mut sender) => match sender.send_request(request()?).await {
                Ok(response) => Some((sender, response)),
                Err(error) if error.is_canceled() || error.is_closed() || error.is_incomplete_message() => None,
                Err(error) => return Err(format!("request: {error}")),
            },
            None => None,
        };
        let (sender, response) = match reused {
            Some(sent) => sent,
            None => {
                let mut sender = self.connect(target).await?;
                let response = sender.send_request(request()?).await.map_err(|e| format!("request: {e}"))?;
                (sender, response)
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(|v| crate::contract::cut(v, 64).to_owned());
        let mut body = response.into_body();
        let mut read = Vec::new();
        let mut whole = true;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                whole = false;
                break;
            };
            if let Some(data) = frame.data_ref() {
                let room = MAX_RESPONSE_READ.saturating_sub(read.len());
                read.extend_from_slice(&data[..data.len().min(room)]);
                if data.len() > room {
                    // The rest is not read; the connection goes with it.
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            self.keep_idle(&endpoint.destination_id, sender);
        }
        let excerpt = (!read.is_empty())
            .then(|| crate::contract::cut(&String::from_utf8_lossy(&read[..read.len().min(EXCERPT_BYTES)]), EXCERPT_BYTES).to_owned());
        Ok(Answer { status: Some(status), retry_after, excerpt, error: None })
    }

    /// A new connection to a checked address of `target`: every address
    /// the name resolves to must be public unless the operator allows
    /// private ones.
    async fn connect(&self, target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
        let allow_private = self.allow_private;
        let address = checked_address(self.outbound.resolver().as_ref(), target, |_| allow_private).await.map_err(|e| match e {
            HttpError::Denied(why) => format!("{why} ([delivery] allow_private is off)"),
            HttpError::Transport(why) => why,
            other => other.to_string(),
        })?;
        let tcp = TcpStream::connect(SocketAddr::new(address, target.port)).await.map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if target.scheme == "http" {
            return handshake(tcp).await;
        }
        handshake(self.outbound.tls().connect(&target.tls_name(), tcp).await.map_err(|e| e.to_string())?).await
    }

    fn take_idle(&self, destination_id: &str) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.get_mut(destination_id)?;
        while let Some(sender) = senders.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn keep_idle(&self, destination_id: &str, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.entry(destination_id.to_owned()).or_default();
        if senders.len() < IDLE_PER_DESTINATION {
            senders.push(sender);
        }
    }
}

/// HTTP/1.1 over `io`; the connection is driven by its own task, which
/// ends when the last handle on it is dropped.
async fn handshake<S>(io: S) -> Result<SendRequest<Full<Bytes>>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}
