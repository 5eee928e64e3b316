//! Webhook ingress: `POST|GET /hooks/{id}`, to a trigger or to a source
//! (a registration several triggers share).
//!
//! The HTTP side of a delivery: rate limit, body cap and timeout, then the
//! [`pipeline`](crate::pipeline) (`verify` + `run` on one fresh instance,
//! events committed before the 2xx, redeliveries deduplicated), whose
//! outcome becomes a status. A sender sees a status, never host internals:
//! the details of a failure are recorded on the trigger for the operator.

mod body;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use body::{BodyError, BodyLimits, BufferedBody};

use crate::app::AppState;
use crate::contract::{ErrorCode, HttpResponse, WebhookRequest};
use crate::pipeline::Outcome;
use crate::runtime::CallErrorKind;

/// Seconds a sender is asked to wait before retrying a 503 or 429.
const RETRY_AFTER_SECS: &str = "1";

/// Handles one delivery.
#[utoipa::path(method(get, post), path = "/hooks/{id}", tag = "webhooks", security(()),
    params(("id" = String, Path, description = "Trigger id")),
    request_body(content = Vec<u8>, description = "The provider's delivery, passed to the connector's `verify` and `run` as is", content_type = "*/*"),
    responses(
        (status = 200, description = "Verified and durably committed (or a known redelivery), or the connector's own handshake answer"),
        (status = 401, description = "The connector's `verify` rejected the delivery"),
        (status = 404, description = "No such trigger, or it is disabled"),
        (status = 405, description = "A method other than GET or POST"),
        (status = 413, description = "Body over the cap"),
        (status = 429, description = "Over the trigger's rate limit"),
        (status = 502, description = "The connector failed (recorded, never shown to the sender)"),
        (status = 503, description = "Retryable: overloaded or busy; see `Retry-After`"),
    ))]
pub async fn hook(State(app): State<Arc<AppState>>, Path(id): Path<String>, request: Request<Body>) -> Response {
    // A polling trigger takes no deliveries: its URL is not a webhook.
    let Some(trigger) = app.triggers.receiver(&id).filter(|t| !t.is_polling()) else {
        return status_json(StatusCode::NOT_FOUND, "no enabled trigger at this URL");
    };
    if !trigger.admit(app.ingress.rate_per_second, app.ingress.burst) {
        return retry_later(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    }
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let limits = BodyLimits {
        cap: app.ingress.max_body_bytes,
        timeout: app.ingress.body_timeout,
        budget: Arc::clone(&app.delivery_budget),
    };
    // Held until the response is built: the body's bytes count against the
    // shared budget for as long as any copy of them may be alive.
    let body = match body::read(body, declared, &limits).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return status_json(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        Err(BodyError::TimedOut) => return status_json(StatusCode::REQUEST_TIMEOUT, "body not received in time"),
        Err(BodyError::OverBudget) => return retry_later(StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        Err(BodyError::Broken) => return status_json(StatusCode::BAD_REQUEST, "incomplete body"),
    };
    let BufferedBody { bytes: body, _budget } = body;
    let delivery = WebhookRequest {
        method: parts.method.as_str().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body,
    };
    respond(app.pipeline.deliver(&trigger, delivery).await)
}

/// The sender's answer to what became of its delivery.
fn respond(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Stored { response: Some(response), .. } | Outcome::Responded(response) => connector_response(response),
        Outcome::Stored { stored, duplicates, filtered, response: None } => {
            let answer = json!({ "stored": stored, "duplicates": duplicates, "filtered": filtered });
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Outcome::Rejected => status_json(StatusCode::UNAUTHORIZED, "delivery rejected"),
        Outcome::ConnectorFailed(error) => match error.code {
            _ if error.retryable => retry_later(StatusCode::SERVICE_UNAVAILABLE, "connector asked for a retry"),
            ErrorCode::BadRequest => status_json(StatusCode::BAD_REQUEST, "bad request"),
            ErrorCode::Unauthorized => status_json(StatusCode::UNAUTHORIZED, "delivery rejected"),
            ErrorCode::RateLimited => retry_later(StatusCode::TOO_MANY_REQUESTS, "rate limited"),
            _ => status_json(StatusCode::BAD_GATEWAY, "connector failed"),
        },
        Outcome::CallFailed(CallErrorKind::Overloaded(_) | CallErrorKind::Host(_)) => {
            retry_later(StatusCode::SERVICE_UNAVAILABLE, "overloaded")
        }
        Outcome::CallFailed(_) | Outcome::OutputRefused => status_json(StatusCode::BAD_GATEWAY, "connector failed"),
        Outcome::Unavailable(why) => retry_later(StatusCode::SERVICE_UNAVAILABLE, why),
        // Polls only; a webhook is taken by whichever node it reaches.
        Outcome::Elsewhere { .. } => retry_later(StatusCode::SERVICE_UNAVAILABLE, "another node handles this"),
        Outcome::Gone => status_json(StatusCode::NOT_FOUND, "no enabled trigger at this URL"),
    }
}

/// Headers a connector's own response may carry. Anything else (cookies,
/// redirects, CORS, upgrades, framing) would act on the host's origin,
/// where the operator's dashboard lives, so it is dropped.
const CONNECTOR_HEADERS: &[&str] = &["content-type", "cache-control"];

/// Content types a connector may answer with: inert text and data, never
/// markup or script the browser would run on the host's origin.
const CONNECTOR_CONTENT_TYPES: &[&str] = &["text/plain", "application/json", "application/x-www-form-urlencoded"];

/// The connector's own response (handshakes): its status if it is a final
/// one, its body, and only the headers in [`CONNECTOR_HEADERS`], marked so
/// no browser treats it as active content of the host.
fn connector_response(response: HttpResponse) -> Response {
    let status = match StatusCode::from_u16(response.status) {
        Ok(status) if (200..600).contains(&status.as_u16()) => status,
        _ => return status_json(StatusCode::BAD_GATEWAY, "connector failed"),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &response.headers {
        let name = name.to_ascii_lowercase();
        if !CONNECTOR_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if name == "content-type" && !is_inert_content_type(value) {
            continue;
        }
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value.as_str())) else {
            continue;
        };
        headers.insert(name, value);
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    (status, headers, response.body).into_response()
}

fn is_inert_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    CONNECTOR_CONTENT_TYPES.contains(&essence.as_str())
}

fn status_json(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn retry_later(status: StatusCode, message: &str) -> Response {
    let mut response = status_json(status, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(status: u16, headers: &[(&str, &str)]) -> Response {
        let headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        connector_response(HttpResponse { status, headers, body: b"challenge".to_vec() })
    }

    #[test]
    fn a_connector_response_keeps_only_safe_headers() {
        let response = respond(
            200,
            &[
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("Set-Cookie", "session=stolen"),
                ("Location", "https://evil.example"),
                ("Access-Control-Allow-Origin", "*"),
                ("Upgrade", "websocket"),
                ("Connection", "upgrade"),
                ("Content-Security-Policy", "default-src *"),
                ("X-Content-Type-Options", "sniff"),
            ],
        );
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers.get("content-type").map(HeaderValue::as_bytes), Some(&b"application/json"[..]));
        assert_eq!(headers.get("cache-control").map(HeaderValue::as_bytes), Some(&b"no-store"[..]));
        for dropped in ["set-cookie", "location", "access-control-allow-origin", "upgrade", "connection"] {
            assert!(headers.get(dropped).is_none(), "{dropped} must be dropped");
        }
        assert_eq!(headers.get_all("x-content-type-options").iter().count(), 1);
        assert_eq!(headers.get("x-content-type-options").map(HeaderValue::as_bytes), Some(&b"nosniff"[..]));
        assert_eq!(
            headers.get("content-security-policy").map(HeaderValue::as_bytes),
            Some(&b"default-src 'none'; sandbox"[..])
        );
    }

    #[test]
    fn active_content_types_become_plain_text() {
        for active in ["text/html", "image/svg+xml", "application/javascript", "text/html; charset=utf-8"] {
            let response = respond(200, &[("content-type", active)]);
            let kept = response.headers().get("content-type").map(HeaderValue::as_bytes);
            assert_eq!(kept, Some(&b"text/plain; charset=utf-8"[..]), "{active}");
        }
    }

    #[test]
    fn informational_and_invalid_statuses_are_refused() {
        for status in [100, 101, 103, 199, 600, 0] {
            assert_eq!(respond(status, &[]).status(), StatusCode::BAD_GATEWAY, "{status}");
        }
        assert_eq!(respond(302, &[("location", "https://evil.example")]).status(), StatusCode::FOUND);
        assert!(respond(302, &[("location", "https://evil.example")]).headers().get("location").is_none());
    }
}
