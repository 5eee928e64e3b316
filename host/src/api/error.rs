//! API errors: a status, a stable code and a message; internals go to the
//! log, never into a response.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::connections::ConnectionError;
use crate::delivery::DeliveryError;
use crate::registry::RegistryError;
use crate::runtime::LoadError;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::triggers::TriggerError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// A response with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: None }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    pub(crate) fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let Some(details) = self.details {
            body["error"]["details"] = details;
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "the database is busy; retry"),
            StoreError::NotFound => Self::not_found("not found"),
            StoreError::Quota(_) => Self::new(StatusCode::CONFLICT, "kv-quota", error.to_string()),
            StoreError::LeaseLost(_) => Self::new(StatusCode::CONFLICT, "lease-lost", error.to_string()),
            StoreError::Database(_) => Self::internal(&error),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Invalid(LoadError::TooLarge { .. }) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", error.to_string())
            }
            RegistryError::Invalid(LoadError::Manifest(ref manifest)) => {
                let problems = json!(manifest.problems);
                Self::new(StatusCode::BAD_REQUEST, "invalid-manifest", error.to_string()).with_details(problems)
            }
            RegistryError::Invalid(LoadError::Host(_)) => Self::internal(&error),
            RegistryError::Invalid(_) | RegistryError::BadSchema { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-component", error.to_string())
            }
            RegistryError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            RegistryError::InUse { .. } => Self::new(StatusCode::CONFLICT, "in-use", error.to_string()),
            RegistryError::NotGranted { ref missing, .. } => {
                let missing = json!(missing);
                Self::new(StatusCode::CONFLICT, "not-granted", error.to_string()).with_details(missing)
            }
            RegistryError::NotFound(_) => Self::not_found(error.to_string()),
            RegistryError::Store(store) => store.into(),
            RegistryError::Blob(_) => Self::internal(&error),
            RegistryError::Limits(_) | RegistryError::Reuse(_) => Self::bad_request(error.to_string()),
        }
    }
}

impl From<TriggerError> for ApiError {
    fn from(error: TriggerError) -> Self {
        match error {
            TriggerError::NotFound(_) => Self::not_found(error.to_string()),
            TriggerError::Plugin(RegistryError::NotFound(_)) | TriggerError::UnknownTrigger { .. } => {
                Self::bad_request(error.to_string())
            }
            TriggerError::Plugin(registry) => registry.into(),
            TriggerError::InvalidConfig(ref problem) => {
                let details = json!({ "path": problem.path, "message": problem.message });
                Self::new(StatusCode::BAD_REQUEST, "invalid-config", error.to_string()).with_details(details)
            }
            TriggerError::InvalidField { .. } => Self::bad_request(error.to_string()),
            TriggerError::WouldBreak { ref breakages, .. } => {
                let details = json!({ "breakages": breakages });
                Self::new(StatusCode::CONFLICT, "would-break-triggers", error.to_string()).with_details(details)
            }
            TriggerError::Store(store) => store.into(),
            TriggerError::Random(_) => Self::internal(&error),
            // Says which trigger and field, never the value.
            TriggerError::Secret(SecretError::Undecryptable { .. }) => {
                Self::new(StatusCode::CONFLICT, "secret-undecryptable", error.to_string())
            }
            TriggerError::Secret(_) => Self::internal(&error),
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(error: DeliveryError) -> Self {
        match error {
            DeliveryError::Invalid(_) => Self::bad_request(error.to_string()),
            DeliveryError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            DeliveryError::Internal(_) => Self::internal(&error),
            DeliveryError::NotFound(_) => Self::not_found(error.to_string()),
            DeliveryError::Store(store) => store.into(),
            DeliveryError::Secret(SecretError::Undecryptable { .. }) => {
                Self::new(StatusCode::CONFLICT, "secret-undecryptable", error.to_string())
            }
            DeliveryError::Secret(_) => Self::internal(&error),
        }
    }
}

impl From<ConnectionError> for ApiError {
    fn from(error: ConnectionError) -> Self {
        match error {
            ConnectionError::NotFound(_) => Self::not_found(error.to_string()),
            ConnectionError::Plugin(RegistryError::NotFound(_)) => Self::bad_request(error.to_string()),
            ConnectionError::Plugin(registry) => registry.into(),
            ConnectionError::NoAuth(_) | ConnectionError::InvalidCredentials(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-credentials", error.to_string())
            }
            ConnectionError::InUse { ref triggers, .. } => {
                let details = json!({ "triggers": triggers });
                Self::new(StatusCode::CONFLICT, "connection-in-use", error.to_string()).with_details(details)
            }
            ConnectionError::Store(store) => store.into(),
            // Says which connection, never the value.
            ConnectionError::Secret(SecretError::Undecryptable { .. }) => {
                Self::new(StatusCode::CONFLICT, "secret-undecryptable", error.to_string())
            }
            ConnectionError::Upstream(_) | ConnectionError::Refused(_) => {
                Self::new(StatusCode::BAD_GATEWAY, "upstream", error.to_string())
            }
            ConnectionError::Secret(_) | ConnectionError::Random(_) => Self::internal(&error),
        }
    }
}

/// `Json<T>` whose rejections (malformed JSON, wrong types, unknown fields,
/// wrong content type) are API errors with the parser's message.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, "bad-request", rejection.body_text())
    }
}
