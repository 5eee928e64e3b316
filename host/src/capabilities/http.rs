//! Outbound HTTP for connectors.
//!
//! Deny-by-default: a request goes out only to a host the operator granted.
//! Until grants exist (the capabilities issue), nothing is granted, so every
//! request is denied without touching the network.

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
    /// Requested timeout, clamped by the host.
    pub timeout_ms: Option<u32>,
}

/// The response handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why an outbound request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host or its address is not granted.
    #[error("denied: {0}")]
    Denied(String),
    /// Malformed request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// Connection failure.
    #[error("transport: {0}")]
    Transport(String),
    /// Response over the cap.
    #[error("response too large")]
    TooLarge,
}

/// The outbound HTTP access of one call.
#[derive(Debug, Clone, Default)]
pub struct OutboundHttp {
    _private: (),
}

impl OutboundHttp {
    /// Access with no host granted.
    pub fn denied() -> Self {
        OutboundHttp::default()
    }

    /// Sends a request if its host is granted.
    pub async fn send(&mut self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        Err(HttpError::Denied(format!("outbound HTTP is not granted (requested {})", crate::contract::cut(&request.url, 200))))
    }
}
