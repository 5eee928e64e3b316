//! Outbound HTTP for connectors, checked against the plugin's grant.
//!
//! Deny by default. The host parses the URL itself ([`target`]), matches
//! the normalized origin against the grant, resolves the name itself
//! ([`resolve`]), refuses non-public addresses the grant does not name
//! ([`address`]), connects to the very address it checked, and follows
//! redirects itself, checking every hop the same way. The whole exchange
//! fits in what is left of the call's wall-clock budget; the response body
//! is read up to a cap; requests per call and connections per plugin are
//! capped.

mod address;
mod client;
mod resolve;
mod target;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use tokio::sync::Semaphore;

pub use address::non_public;
pub use client::Tls;
pub use resolve::{Resolve, SystemResolver};
pub use target::{Host, Target};

use super::grant::{HostPattern, Origin};

/// Redirects the host follows for one request at most.
pub const MAX_REDIRECTS: usize = 5;

/// What an outbound request leaves of the call's deadline: time for the
/// guest to see its `timeout` and report it, rather than being stopped by
/// the call's own deadline in the middle of handling it.
const DEADLINE_RESERVE: Duration = Duration::from_millis(50);

/// Request headers the host sets itself: a connector's own are dropped.
const HOST_SET_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "user-agent",
];

/// A connector's outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// Method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Requested timeout, clamped to the call's remaining deadline.
    pub timeout_ms: Option<u32>,
}

/// The response handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// Status.
    pub status: u16,
    /// Headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host, its address, or one more request is not granted.
    #[error("denied: {0}")]
    Denied(String),
    /// Malformed request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No answer within the clamped timeout.
    #[error("timed out")]
    Timeout,
    /// Connection failure.
    #[error("transport: {0}")]
    Transport(String),
    /// Response body over the cap.
    #[error("response too large")]
    TooLarge,
}

/// Caps on one call's outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Requests one call may send, redirects included.
    pub requests_per_call: usize,
    /// Bytes of one response body.
    pub max_response_bytes: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits { requests_per_call: 16, max_response_bytes: 4 << 20 }
    }
}

/// What every call's outbound HTTP shares: the resolver and TLS settings.
#[derive(Clone)]
pub struct Outbound {
    resolver: Arc<dyn Resolve>,
    tls: Tls,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").field("tls", &self.tls).finish_non_exhaustive()
    }
}

impl Outbound {
    /// Outbound HTTP resolving through `resolver`, TLS with rustls.
    pub fn new(resolver: Arc<dyn Resolve>) -> Result<Self, rustls::Error> {
        Ok(Outbound { resolver, tls: Tls::webpki()? })
    }

    /// The resolver (push delivery resolves and checks through it too).
    pub fn resolver(&self) -> &Arc<dyn Resolve> {
        &self.resolver
    }

    /// The TLS settings.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }
}

/// The outbound HTTP access of one call.
pub struct OutboundHttp {
    access: Option<Access>,
}

impl std::fmt::Debug for OutboundHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHttp").field("granted", &self.access.as_ref().map(|a| a.origins.len())).finish()
    }
}

/// A granted call's outbound state.
struct Access {
    outbound: Arc<Outbound>,
    origins: Vec<Origin>,
    limits: OutboundLimits,
    user_agent: String,
    deadline: Instant,
    sent: usize,
    /// The plugin's connection slots, shared by all its calls.
    connections: Arc<Semaphore>,
}

/// What a call's outbound access is built from.
#[derive(Debug, Clone)]
pub struct OutboundScope {
    /// The shared resolver and TLS settings.
    pub outbound: Arc<Outbound>,
    /// The granted origins.
    pub origins: Vec<Origin>,
    /// Per-call caps.
    pub limits: OutboundLimits,
    /// `name@version` of the connector, for the user agent.
    pub plugin: String,
    /// The plugin's connection slots.
    pub connections: Arc<Semaphore>,
}

impl OutboundHttp {
    /// Access with no origin granted: every request is denied without
    /// touching the network.
    pub fn denied() -> Self {
        OutboundHttp { access: None }
    }

    /// Access to the origins of `scope` until `deadline`.
    pub fn granted(scope: OutboundScope, deadline: Instant) -> Self {
        if scope.origins.is_empty() {
            return OutboundHttp::denied();
        }
        let user_agent = format!("triggerhost/{} (connector {})", env!("CARGO_PKG_VERSION"), scope.plugin);
        OutboundHttp {
            access: Some(Access {
                outbound: scope.outbound,
                origins: scope.origins,
                limits: scope.limits,
                user_agent,
                deadline,
                sent: 0,
                connections: scope.connections,
            }),
        }
    }

    /// Sends a request if its origin and address are granted, following
    /// redirects within the same checks.
    pub async fn send(&mut self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let Some(access) = self.access.as_mut() else {
            return Err(HttpError::Denied(format!(
                "outbound HTTP is not granted (requested {})",
                crate::contract::cut(&request.url, 200)
            )));
        };
        access.send(request).await
    }
}

impl Access {
    async fn send(&mut self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let mut target = Target::parse(&request.url)?;
        let mut method = hyper::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("method {:?}", crate::contract::cut(&request.method, 40))))?;
        let headers = guest_headers(&request.headers)?;
        let mut body = Bytes::from(request.body);

        let remaining = self.deadline.saturating_duration_since(Instant::now()).saturating_sub(DEADLINE_RESERVE);
        let asked = request.timeout_ms.map_or(remaining, |ms| Duration::from_millis(u64::from(ms)));
        let budget = asked.min(remaining);
        if budget.is_zero() {
            return Err(HttpError::Timeout);
        }
        let started = Instant::now();
        let first_origin = target.origin();
        for hop in 0..=MAX_REDIRECTS {
            let left = budget.saturating_sub(started.elapsed());
            let exchange = self.one_request(&target, &method, &headers, &body, target.origin() == first_origin);
            let received = tokio::time::timeout(left, exchange).await.map_err(|_| HttpError::Timeout)??;
            let location = received.headers.iter().find(|(name, _)| name == "location").map(|(_, v)| v.clone());
            let redirect = matches!(received.status, 301 | 302 | 303 | 307 | 308);
            let (true, Some(location)) = (redirect, location) else {
                return Ok(OutboundResponse { status: received.status, headers: received.headers, body: received.body });
            };
            if hop == MAX_REDIRECTS {
                return Err(HttpError::Transport(format!("more than {MAX_REDIRECTS} redirects")));
            }
            // A location may be relative to the URL just requested, whose
            // authority the host checked: never to anything else.
            let next = target
                .url
                .join(&location)
                .map_err(|e| HttpError::Transport(format!("redirect to an invalid location: {e}")))?;
            target = Target::from_url(next).map_err(|why| HttpError::Denied(format!("redirect: {why}")))?;
            if received.status == 303 || (matches!(received.status, 301 | 302) && method == hyper::Method::POST) {
                method = hyper::Method::GET;
                body = Bytes::new();
            }
        }
        Err(HttpError::Transport(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// One request to `target`, checked: granted origin, allowed address,
    /// request budget, connection slot.
    async fn one_request(
        &mut self,
        target: &Target,
        method: &hyper::Method,
        headers: &[(hyper::header::HeaderName, hyper::header::HeaderValue)],
        body: &Bytes,
        same_origin: bool,
    ) -> Result<client::Received, HttpError> {
        let origin = target
            .granted_by(&self.origins)
            .ok_or_else(|| HttpError::Denied(format!("{} is not granted", target.origin())))?;
        if self.sent >= self.limits.requests_per_call {
            return Err(HttpError::Denied(format!("more than {} requests in one call", self.limits.requests_per_call)));
        }
        let address = self.checked_address(target, origin).await?;
        let Ok(_connection) = Arc::clone(&self.connections).try_acquire_owned() else {
            return Err(HttpError::Transport("the connector has as many connections open as it may".into()));
        };
        self.sent += 1;

        let mut request = hyper::Request::builder().method(method.clone()).uri(target.request_target());
        for (name, value) in headers {
            // Credentials go only to the origin they were written for.
            if !same_origin && matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization") {
                continue;
            }
            request = request.header(name, value);
        }
        let request = request
            .header(hyper::header::HOST, target.host_header())
            .header(hyper::header::USER_AGENT, &self.user_agent)
            .body(Full::new(body.clone()))
            .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
        let tls_name = target.tls_name();
        let tls = (target.scheme == "https").then_some((&self.outbound.tls, tls_name.as_str()));
        client::exchange(SocketAddr::new(address, target.port), tls, request, self.limits.max_response_bytes).await
    }

    /// The address to connect to: every address must be public unless the
    /// grant names it.
    async fn checked_address(&self, target: &Target, origin: &Origin) -> Result<IpAddr, HttpError> {
        let named = |ip: &IpAddr| matches!(&origin.host, HostPattern::Exact(h) if h.parse::<IpAddr>().is_ok_and(|a| a == *ip));
        checked_address(self.outbound.resolver.as_ref(), target, named).await
    }
}

/// The address to connect to for `target`: the literal, or what the name
/// resolves to. Every address must be public or `allowed`; the caller
/// connects to the one returned, which was checked, so a DNS answer that
/// changes between the check and the connection changes nothing.
pub async fn checked_address(
    resolver: &dyn Resolve,
    target: &Target,
    allowed: impl Fn(&IpAddr) -> bool,
) -> Result<IpAddr, HttpError> {
    let addresses = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            resolver.resolve(name).await.map_err(|e| HttpError::Transport(format!("cannot resolve {name}: {e}")))?
        }
    };
    for ip in &addresses {
        if let Some(kind) = non_public(*ip)
            && !allowed(ip)
        {
            return Err(HttpError::Denied(format!("{} resolves to {ip}, a {kind} address", target.host)));
        }
    }
    addresses.first().copied().ok_or_else(|| HttpError::Transport(format!("{} has no address", target.host)))
}

type HeaderPair = (hyper::header::HeaderName, hyper::header::HeaderValue);

/// The connector's headers, validated, without those the host sets.
fn guest_headers(headers: &[(String, String)]) -> Result<Vec<HeaderPair>, HttpError> {
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let invalid = || HttpError::InvalidRequest(format!("header {:?}", crate::contract::cut(name, 60)));
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        if HOST_SET_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = hyper::header::HeaderValue::from_str(value).map_err(|_| invalid())?;
        out.push((name, value));
    }
    Ok(out)
}
