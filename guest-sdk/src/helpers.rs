//! Conveniences on the generated WIT types.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    ConnectorError, Credentials, EnableInfo, ErrorCode, Event, HttpResponse, RunOutput, TriggerContext, WebhookRequest,
};

impl WebhookRequest {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON, or a `bad-request` error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ConnectorError::new(ErrorCode::BadRequest, format!("body is not valid JSON: {e}")))
    }
}

impl TriggerContext {
    /// The trigger's config deserialized into `T`, or an `invalid-config` error.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_str(&self.config)
            .map_err(|e| ConnectorError::new(ErrorCode::InvalidConfig, format!("config: {e}")))
    }

    /// The signing secret, or an `invalid-config` error when none was set.
    pub fn require_secret(&self) -> Result<&str, ConnectorError> {
        self.secret
            .as_deref()
            .ok_or_else(|| ConnectorError::new(ErrorCode::InvalidConfig, "this trigger needs a secret"))
    }

    /// The secret the provider issued under `name` (as `on_enable` or
    /// `renew` returned it in [`EnableInfo::issue_secret`]).
    pub fn issued_secret(&self, name: &str) -> Option<&str> {
        self.issued_secrets.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The OAuth2 access token of the trigger's connection, or an
    /// `unauthorized` error when it has none.
    pub fn access_token(&self) -> Result<&str, ConnectorError> {
        match &self.credentials {
            Some(Credentials::Oauth2(token)) => Ok(&token.token),
            _ => Err(ConnectorError::new(ErrorCode::Unauthorized, "this trigger has no OAuth2 connection")),
        }
    }
}

impl EnableInfo {
    /// Nothing registered expires.
    pub fn never_expires() -> Self {
        EnableInfo { expires_at_ms: None, issued_secrets: None }
    }

    /// The registration expires at `at_ms` (Unix ms): the host calls
    /// `renew` ahead of it.
    pub fn expires_at(at_ms: u64) -> Self {
        EnableInfo { expires_at_ms: Some(at_ms), issued_secrets: None }
    }

    /// Keeps a secret the provider issued (e.g. the signing secret it
    /// generated for the new webhook): the host seals it with the trigger
    /// and hands it to every later call, `verify` included. Secrets issued
    /// again replace all kept ones.
    pub fn issue_secret(mut self, name: &str, value: impl Into<String>) -> Self {
        self.issued_secrets.get_or_insert_with(Vec::new).push((name.into(), value.into()));
        self
    }
}

impl ConnectorError {
    /// A non-retryable error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ConnectorError { code, message: message.into(), retryable: false }
    }

    /// The same error, marked as worth retrying.
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }
}

impl Event {
    /// An event of type `event_type` with `payload` serialized as JSON; an
    /// `internal` error if it does not serialize (e.g. a map with non-string keys).
    pub fn json(event_type: &str, payload: &impl Serialize) -> Result<Self, ConnectorError> {
        let payload = serde_json::to_string(payload)
            .map_err(|e| ConnectorError::new(ErrorCode::Internal, format!("event payload: {e}")))?;
        Ok(Event::raw(event_type, payload))
    }

    /// An event whose payload is already JSON text (e.g. a webhook body).
    pub fn raw(event_type: &str, payload_json: String) -> Self {
        Event { dedupe_key: None, event_type: event_type.into(), occurred_at_ms: None, payload: payload_json }
    }

    /// An event whose payload is a webhook body kept byte for byte (what
    /// the sender signed), or a `bad-request` error when it is not JSON.
    pub fn from_json_body(event_type: &str, body: Vec<u8>) -> Result<Self, ConnectorError> {
        serde_json::from_slice::<serde::de::IgnoredAny>(&body)
            .map_err(|e| ConnectorError::new(ErrorCode::BadRequest, format!("body is not valid JSON: {e}")))?;
        let text = String::from_utf8(body)
            .map_err(|_| ConnectorError::new(ErrorCode::BadRequest, "body is not UTF-8"))?;
        Ok(Event::raw(event_type, text))
    }

    /// Sets the dedupe key: a redelivery with the same key is stored once.
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Sets when the event happened at the source.
    pub fn occurred_at_ms(mut self, at: u64) -> Self {
        self.occurred_at_ms = Some(at);
        self
    }
}

impl RunOutput {
    /// Output with these events and the host's default response.
    pub fn from_events(events: Vec<Event>) -> Self {
        RunOutput { events, response: None }
    }
}

impl HttpResponse {
    /// A response with a text body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into().into_bytes(),
        }
    }
}

/// Writing to the trigger's log.
pub mod log {
    use crate::bindings::triggerhost::connector::log::{Level, write};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        write(Level::Debug, message);
    }

    /// Logs at info level.
    pub fn info(message: &str) {
        write(Level::Info, message);
    }

    /// Logs at warn level.
    pub fn warn(message: &str) {
        write(Level::Warn, message);
    }

    /// Logs at error level.
    pub fn error(message: &str) {
        write(Level::Error, message);
    }
}
