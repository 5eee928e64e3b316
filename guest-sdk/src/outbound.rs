//! Outbound HTTP and the key-value store, with the errors a connector
//! usually wants: both map into [`ConnectorError`] with `?`.
//!
//! Requests reach only the origins the operator granted (see the README's
//! capability model); everything else is `denied`, and so is the key-value
//! store unless the manifest asks for it with
//! [`ManifestBuilder::key_value`](crate::ManifestBuilder::key_value) and the
//! operator grants it.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::triggerhost::connector::kv::{self as wit_kv, KvError};
use crate::bindings::triggerhost::connector::outbound_http::{self as wit_http, HttpError};
use crate::{ConnectorError, ErrorCode};

/// An outbound request, built then [`send`](Request::send)t.
#[derive(Debug, Clone)]
pub struct Request {
    inner: wit_http::Request,
}

impl Request {
    /// A request with `method` to an absolute `url`.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            inner: wit_http::Request {
                method: method.into(),
                url: url.into(),
                headers: Vec::new(),
                body: Vec::new(),
                timeout_ms: None,
            },
        }
    }

    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Request::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: &str) -> Self {
        Request::new("POST", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: &str) -> Self {
        Request::new("DELETE", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a bearer token.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sets a JSON body (and its content type); an `internal` error if it
    /// does not serialize.
    pub fn json(mut self, body: &impl Serialize) -> Result<Self, ConnectorError> {
        self.inner.body = serde_json::to_vec(body)
            .map_err(|e| ConnectorError::new(ErrorCode::Internal, format!("request body: {e}")))?;
        Ok(self.header("content-type", "application/json"))
    }

    /// Sets a raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.inner.body = body;
        self
    }

    /// How long to wait for the response; the host clamps it to what is
    /// left of the call's wall-clock budget.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.inner.timeout_ms = Some(ms);
        self
    }

    /// Sends the request and waits for the whole response. Redirects are
    /// followed by the host, each hop checked against the grant.
    pub fn send(&self) -> Result<Response, HttpError> {
        wit_http::send(&self.inner).map(|inner| Response { inner })
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Response {
    inner: wit_http::Response,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.inner.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.inner.status)
    }

    /// The first header named `name` (names are lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.inner
            .headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// The body as JSON, or an `upstream` error.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.inner.body).map_err(|e| {
            ConnectorError::new(
                ErrorCode::Upstream,
                format!("response is not the JSON expected: {e}"),
            )
        })
    }

    /// `Ok(self)` for a 2xx response; otherwise an error carrying the status
    /// and the start of the provider's answer: `unauthorized` for 401 and
    /// 403, `gone` for 404 and 410 (from `renew`, the host then enables the
    /// trigger again), `rate-limited` (retryable) for 429, `upstream`
    /// otherwise (retryable for 5xx).
    pub fn error_for_status(self) -> Result<Self, ConnectorError> {
        if self.is_success() {
            return Ok(self);
        }
        let text = String::from_utf8_lossy(&self.inner.body);
        let excerpt: String = text.chars().take(300).collect();
        let message = format!("the provider answered {}: {excerpt}", self.inner.status);
        Err(match self.inner.status {
            401 | 403 => ConnectorError::new(ErrorCode::Unauthorized, message),
            404 | 410 => ConnectorError::new(ErrorCode::Gone, message),
            429 => ConnectorError::new(ErrorCode::RateLimited, message).retryable(),
            500..=599 => ConnectorError::new(ErrorCode::Upstream, message).retryable(),
            _ => ConnectorError::new(ErrorCode::Upstream, message),
        })
    }
}

impl From<HttpError> for ConnectorError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Denied(why) => ConnectorError::new(
                ErrorCode::CapabilityDenied,
                format!("outbound HTTP denied: {why}"),
            ),
            HttpError::InvalidRequest(why) => {
                ConnectorError::new(ErrorCode::Internal, format!("invalid request: {why}"))
            }
            HttpError::Timeout => {
                ConnectorError::new(ErrorCode::Upstream, "the provider did not answer in time")
                    .retryable()
            }
            HttpError::Transport(why) => {
                ConnectorError::new(ErrorCode::Upstream, format!("connection failed: {why}"))
                    .retryable()
            }
            HttpError::TooLarge => {
                ConnectorError::new(ErrorCode::Upstream, "the provider's response is too large")
            }
        }
    }
}

impl From<KvError> for ConnectorError {
    fn from(error: KvError) -> Self {
        match error {
            KvError::Denied => ConnectorError::new(
                ErrorCode::CapabilityDenied,
                "the key-value store is not granted",
            ),
            KvError::TooManyKeys => ConnectorError::new(
                ErrorCode::Internal,
                "the trigger holds as many keys as it may",
            ),
            KvError::TooLarge => ConnectorError::new(ErrorCode::Internal, "key or value too large"),
            KvError::Unavailable(why) => {
                ConnectorError::new(ErrorCode::Internal, format!("kv: {why}")).retryable()
            }
        }
    }
}

/// The trigger's key-value store, with text values. Writes take effect only
/// if the call succeeds; a call reads its own writes at once.
pub mod store {
    use super::{KvError, wit_kv};

    /// A key's value as text (`None` when unset or not UTF-8).
    pub fn get_string(key: &str) -> Result<Option<String>, KvError> {
        Ok(wit_kv::get(key)?.and_then(|bytes| String::from_utf8(bytes).ok()))
    }

    /// Sets a key to a text value.
    pub fn set_string(key: &str, value: &str) -> Result<(), KvError> {
        wit_kv::set(key, value.as_bytes())
    }

    /// Deletes a key; deleting a missing key succeeds.
    pub fn delete(key: &str) -> Result<(), KvError> {
        wit_kv::delete(key)
    }
}

/// Registering the trigger's webhook at the provider in `on-enable` and
/// removing it in `on-disable`, with the provider's hook id kept in the
/// key-value store under [`HOOK_ID_KEY`](registration::HOOK_ID_KEY).
pub mod registration {
    use super::{Request, store};
    use crate::{ConnectorError, ErrorCode};

    /// Where the provider's hook id is kept.
    pub const HOOK_ID_KEY: &str = "webhook.id";

    /// Sends `request` (which creates the hook), reads the hook id at JSON
    /// pointer `id_pointer` (e.g. `/id`) of the answer, keeps it and
    /// returns it. If a hook id is already kept, nothing is sent: enabling
    /// again does not register twice.
    pub fn register(request: Request, id_pointer: &str) -> Result<String, ConnectorError> {
        register_answer(request, id_pointer).map(|(id, _)| id)
    }

    /// [`register`], also returning the provider's whole answer (say, to
    /// keep the signing secret it generated, with
    /// [`EnableInfo::issue_secret`](crate::EnableInfo::issue_secret)); the
    /// answer is `None` when a hook id was already kept and nothing was sent.
    pub fn register_answer(
        request: Request,
        id_pointer: &str,
    ) -> Result<(String, Option<serde_json::Value>), ConnectorError> {
        if let Some(existing) = store::get_string(HOOK_ID_KEY)? {
            return Ok((existing, None));
        }
        let answer: serde_json::Value = request.send()?.error_for_status()?.json()?;
        let id = match answer.pointer(id_pointer) {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => {
                return Err(ConnectorError::new(
                    ErrorCode::Upstream,
                    format!("the provider's answer has no hook id at {id_pointer}"),
                ));
            }
        };
        store::set_string(HOOK_ID_KEY, &id)?;
        Ok((id, Some(answer)))
    }

    /// Removes the kept hook: `request(id)` deletes it at the provider (a
    /// 404 counts as already gone), then the id is forgotten. Without a kept
    /// id there is nothing to do, so disabling twice is harmless.
    pub fn unregister(request: impl FnOnce(&str) -> Request) -> Result<(), ConnectorError> {
        let Some(id) = store::get_string(HOOK_ID_KEY)? else {
            return Ok(());
        };
        let response = request(&id).send()?;
        if response.status() != 404 {
            response.error_for_status()?;
        }
        store::delete(HOOK_ID_KEY)?;
        Ok(())
    }
}
