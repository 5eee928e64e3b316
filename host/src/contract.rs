//! The host's own view of the connector contract.
//!
//! Every WIT version's generated types are converted into these at the
//! boundary (`bindings`), so the rest of the host (storage, ingress, API)
//! never depends on a particular WIT version.

pub mod auth;
pub mod manifest;

pub use auth::{AccessToken, Auth, Credentials, OAuth2Auth};
pub use manifest::{CapabilityRequest, Manifest, ManifestError, Sharing, Strategy, TriggerDefinition};

use serde::{Deserialize, Serialize};

/// Bytes kept of any free text a guest hands the host (a reject reason, an
/// error message, one log line): enough to diagnose, too little to bloat a
/// log or a failure record.
pub const MAX_GUEST_TEXT: usize = 4 << 10;

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to [`MAX_GUEST_TEXT`], marked when something was dropped.
pub fn cut_guest_text(mut text: String) -> String {
    let kept = cut(&text, MAX_GUEST_TEXT).len();
    if kept < text.len() {
        let dropped = text.len() - kept;
        text.truncate(kept);
        text.push_str(&format!(" [{dropped} bytes cut]"));
    }
    text
}

/// An HTTP header as a name and a value.
pub type Header = (String, String);

/// Which trigger a call is about. Holds opened secrets: its `Debug` shows
/// neither the secret nor the config, which may carry secret properties.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerContext {
    /// The trigger's unguessable id.
    pub trigger_id: String,
    /// The manifest trigger this is (snake_case).
    pub trigger_name: String,
    /// The integrator's config, JSON text.
    pub config: String,
    /// The signing secret, if one was set.
    pub secret: Option<String>,
    /// Where the external service delivers.
    pub webhook_url: String,
    /// The trigger's connection's credentials (contract 0.2.0 and later).
    #[serde(default)]
    pub credentials: Option<Credentials>,
    /// Secrets the provider issued at registration, by name.
    #[serde(default)]
    pub issued_secrets: Vec<(String, String)>,
}

impl std::fmt::Debug for TriggerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerContext")
            .field("trigger_id", &self.trigger_id)
            .field("trigger_name", &self.trigger_name)
            .field("config", &format_args!("<{} bytes>", self.config.len()))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("webhook_url", &self.webhook_url)
            .field("credentials", &self.credentials)
            .field("issued_secrets", &self.issued_secrets.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish()
    }
}

/// A webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// Upper-case method.
    pub method: String,
    /// Query string without `?`.
    pub query: String,
    /// Headers, names lower-case.
    pub headers: Vec<Header>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// An HTTP response chosen by a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code (validated by the host before use).
    pub status: u16,
    /// Headers.
    pub headers: Vec<Header>,
    /// Body.
    pub body: Vec<u8>,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Authentic: go on to `run`.
    Accept,
    /// Not authentic, with the connector's reason (never sent to the sender).
    Reject(String),
    /// Answer the sender with this response and stop.
    Respond(HttpResponse),
}

/// A scheduled poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollTick {
    /// When the poll was scheduled (Unix ms).
    pub scheduled_at_ms: u64,
    /// When the last successful poll ran (Unix ms).
    pub last_success_at_ms: Option<u64>,
}

/// What `run` turns into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunInput {
    /// An accepted delivery.
    Webhook(WebhookRequest),
    /// A poll tick.
    Poll(PollTick),
}

/// One event produced by a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per trigger; redeliveries with the same key are dropped.
    pub dedupe_key: Option<String>,
    /// e.g. `invoice.paid`.
    pub event_type: String,
    /// When it happened at the source (Unix ms).
    pub occurred_at_ms: Option<u64>,
    /// JSON text.
    pub payload: String,
}

/// What `run` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Events, in order.
    pub events: Vec<Event>,
    /// The sender's response, if the connector chose one.
    pub response: Option<HttpResponse>,
}

impl RunOutput {
    /// Bytes of guest-chosen data held by this output, for the output cap.
    pub fn size_bytes(&self) -> usize {
        let events: usize = self
            .events
            .iter()
            .map(|e| e.payload.len() + e.event_type.len() + e.dedupe_key.as_ref().map_or(0, String::len))
            .sum();
        events + self.response.as_ref().map_or(0, HttpResponse::size_bytes)
    }
}

impl HttpResponse {
    /// Bytes of guest-chosen data in this response.
    pub fn size_bytes(&self) -> usize {
        self.body.len() + self.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// The outcome of a webhook delivery: `verify`, then `run` if accepted, on
/// one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `verify` rejected it, with the connector's reason.
    Rejected(String),
    /// `verify` answered the sender itself (a handshake); `run` was not called.
    Responded(HttpResponse),
    /// `verify` accepted it and `run` produced this.
    Accepted(RunOutput),
}

/// What `on-enable` or `renew` reported. Its `Debug` names the issued
/// secrets, never their values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnableInfo {
    /// When the provider-side subscription expires (Unix ms).
    pub expires_at_ms: Option<u64>,
    /// Secrets the provider issued, by name: `Some` replaces those kept,
    /// `None` keeps them (contract 0.2.0 and later).
    pub issued_secrets: Option<Vec<(String, String)>>,
}

impl std::fmt::Debug for EnableInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.issued_secrets.as_ref().map(|secrets| secrets.iter().map(|(name, _)| name).collect::<Vec<_>>());
        f.debug_struct("EnableInfo").field("expires_at_ms", &self.expires_at_ms).field("issued_secrets", &names).finish()
    }
}

/// What changed since a registration was made or last updated, for
/// `on-update` (contract 0.3.0 and later).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrationChange {
    /// The config the registration was made with, JSON text.
    pub previous_config: String,
    /// Event types wanted now and not then.
    pub added_events: Vec<String>,
    /// Event types wanted then and not now.
    pub removed_events: Vec<String>,
}

/// What `sync` found at the provider (contract 0.3.0 and later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    /// The registration exists and matches.
    InSync,
    /// It had drifted and the connector put it back.
    Repaired(EnableInfo),
    /// The connector does not check (and connectors before 0.3.0 cannot).
    Unchecked,
}

/// The kind of a connector error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// The trigger's config is unusable.
    InvalidConfig,
    /// The provider refused the credentials.
    Unauthorized,
    /// The input could not be understood.
    BadRequest,
    /// The provider failed.
    Upstream,
    /// The provider is rate limiting.
    RateLimited,
    /// A capability was not granted.
    CapabilityDenied,
    /// The subscription or resource no longer exists at the provider
    /// (contract 0.2.0 and later).
    Gone,
    /// A bug inside the connector.
    Internal,
}

impl ErrorCode {
    /// The WIT name, e.g. `invalid-config`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "invalid-config",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::Upstream => "upstream",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::Gone => "gone",
            ErrorCode::CapabilityDenied => "capability-denied",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a connector returned on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ConnectorError {
    /// The kind.
    pub code: ErrorCode,
    /// For the operator, never for a webhook sender.
    pub message: String,
    /// Whether a retry may succeed.
    pub retryable: bool,
}

/// A contract version the host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "&'static str")]
pub enum ContractVersion {
    /// `triggerhost:connector@0.1.0`: exports at the world's root.
    V0_1_0,
    /// `triggerhost:connector@0.2.0`: exports in `plugin@0.2.0`, `renew`.
    V0_2_0,
    /// `triggerhost:connector@0.3.0`: shared registrations, `on-update`, `sync`.
    V0_3_0,
}

impl ContractVersion {
    /// The version as semver text.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => "0.1.0",
            ContractVersion::V0_2_0 => "0.2.0",
            ContractVersion::V0_3_0 => "0.3.0",
        }
    }
}

impl From<ContractVersion> for &'static str {
    fn from(version: ContractVersion) -> Self {
        version.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("short", 100), "short");
        let long = "é".repeat(MAX_GUEST_TEXT);
        let kept = cut_guest_text(long);
        assert!(kept.len() < MAX_GUEST_TEXT + 32, "{}", kept.len());
        assert!(kept.ends_with(&format!(" [{} bytes cut]", MAX_GUEST_TEXT)), "{}", &kept[kept.len() - 40..]);
    }

    #[test]
    fn error_codes_display_and_serialize_as_in_the_wit() {
        let error = ConnectorError { code: ErrorCode::InvalidConfig, message: "no secret".into(), retryable: false };
        assert_eq!(error.to_string(), "invalid-config: no secret");
        for code in [ErrorCode::RateLimited, ErrorCode::CapabilityDenied, ErrorCode::BadRequest, ErrorCode::Gone] {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json, code.as_str());
        }
    }
}
