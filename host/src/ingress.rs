//! Webhook ingress: `POST|GET /hooks/{trigger_id}`.
//!
//! Body cap, rate limit, `verify` + `run` on one fresh instance, events
//! committed before the 2xx (ack-after-commit), redeliveries deduplicated.
//! A sender sees a status, never host internals: the details of a failure
//! are recorded on the trigger for the operator.

mod commit;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub use commit::Committer;

use crate::contract::{ConnectorError, Delivery, ErrorCode, HttpResponse, WebhookRequest};
use crate::runtime::{CallError, CallErrorKind};
use crate::server::AppState;
use crate::store::{DeliveryCommit, FailureRow, NewEvent, StoreError, Tally, now_ms};
use crate::triggers::{LiveTrigger, call_failure, connector_failure};

/// Bytes past the body cap still read (and dropped) before answering 413:
/// a server that answers without reading the body closes the connection,
/// and the sender then often sees a broken pipe instead of the 413.
const DRAIN_BYTES: usize = 4 << 20;

/// The body if it fits in `cap` bytes; `None` (after draining at most
/// [`DRAIN_BYTES`] more) if it does not or the connection fails.
async fn read_capped(mut body: Body, cap: usize) -> Option<Vec<u8>> {
    use http_body_util::BodyExt as _;
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > cap.saturating_add(DRAIN_BYTES) {
            return None;
        }
        if seen <= cap {
            bytes.extend_from_slice(&data);
        }
    }
    (seen <= cap).then_some(bytes)
}

/// Seconds a sender is asked to wait before retrying a 503 or 429.
const RETRY_AFTER_SECS: &str = "1";

/// Handles one delivery.
pub async fn hook(State(app): State<Arc<AppState>>, Path(id): Path<String>, request: Request<Body>) -> Response {
    let Some(trigger) = app.triggers.live(&id) else {
        return status_json(StatusCode::NOT_FOUND, "no enabled trigger at this URL");
    };
    if !trigger.admit(app.ingress.rate_per_second, app.ingress.burst) {
        return retry_later(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    }
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|len| len > app.ingress.max_body_bytes.saturating_add(DRAIN_BYTES)) {
        return status_json(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let Some(body) = read_capped(body, app.ingress.max_body_bytes).await else {
        return status_json(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let Ok(loaded) = app.triggers.registry().resolve(&trigger.row.plugin, trigger.row.plugin_version.as_deref())
    else {
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, "connector unavailable");
    };

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
    let plugin = &loaded.plugin;
    let output = match plugin.deliver(trigger.context.clone(), delivery, app.triggers.limits()).await {
        Ok(output) => output,
        Err(error) => return call_failed(&app, &trigger, &error).await,
    };
    match output.value {
        Ok(Delivery::Accepted(run)) => {
            let received_at_ms = now_ms();
            let mut events = Vec::with_capacity(run.events.len());
            for event in run.events {
                let Ok(id) = crate::ids::new_id("evt") else {
                    return retry_later(StatusCode::SERVICE_UNAVAILABLE, "try again");
                };
                events.push(NewEvent {
                    id,
                    dedupe_key: event.dedupe_key,
                    event_type: event.event_type,
                    occurred_at_ms: event.occurred_at_ms.and_then(|ms| i64::try_from(ms).ok()),
                    payload: event.payload,
                    received_at_ms,
                });
            }
            let commit = DeliveryCommit {
                trigger_id: trigger.row.id.clone(),
                plugin_version: plugin.label().to_owned(),
                events,
                fuel_used: output.fuel_used,
            };
            match app.committer.commit(commit).await {
                Ok(outcome) => match run.response {
                    Some(response) => connector_response(response),
                    None => (StatusCode::OK, axum::Json(json!({ "stored": outcome.stored, "duplicates": outcome.duplicates })))
                        .into_response(),
                },
                Err(StoreError::Busy) => retry_later(StatusCode::SERVICE_UNAVAILABLE, "storage busy"),
                Err(StoreError::NotFound) => status_json(StatusCode::NOT_FOUND, "no enabled trigger at this URL"),
                Err(error) => {
                    tracing::error!(trigger = %trigger.row.id, %error, "commit failed");
                    retry_later(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
                }
            }
        }
        Ok(Delivery::Rejected(reason)) => {
            tracing::info!(trigger = %trigger.row.id, %reason, "delivery rejected");
            tally(&app, &trigger, Tally::Rejected, output.fuel_used).await;
            status_json(StatusCode::UNAUTHORIZED, "delivery rejected")
        }
        Ok(Delivery::Responded(response)) => {
            tally(&app, &trigger, Tally::Answered, output.fuel_used).await;
            connector_response(response)
        }
        Err(error) => connector_failed(&app, &trigger, &error, &output.log.text, output.fuel_used).await,
    }
}

async fn tally(app: &AppState, trigger: &LiveTrigger, tally: Tally, fuel: u64) {
    if let Err(error) = app.store.tally(&trigger.row.id, tally, fuel).await {
        tracing::warn!(trigger = %trigger.row.id, %error, "cannot update stats");
    }
}

async fn record(app: &AppState, trigger: &LiveTrigger, failure: FailureRow, fuel: u64) {
    if let Err(error) = app.store.record_failure(&trigger.row.id, &failure, fuel, true).await {
        tracing::warn!(trigger = %trigger.row.id, %error, "cannot record failure");
    }
}

/// A sandbox failure: recorded, answered with a clean status.
async fn call_failed(app: &AppState, trigger: &LiveTrigger, error: &CallError) -> Response {
    tracing::warn!(trigger = %trigger.row.id, %error, "delivery failed in the connector");
    record(app, trigger, call_failure(error), error.fuel_used).await;
    match error.kind {
        CallErrorKind::Overloaded(_) | CallErrorKind::Host(_) => retry_later(StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        _ => status_json(StatusCode::BAD_GATEWAY, "connector failed"),
    }
}

/// A connector error returned on purpose.
async fn connector_failed(app: &AppState, trigger: &LiveTrigger, error: &ConnectorError, log: &str, fuel: u64) -> Response {
    record(app, trigger, connector_failure("deliver", error, log), fuel).await;
    match error.code {
        _ if error.retryable => retry_later(StatusCode::SERVICE_UNAVAILABLE, "connector asked for a retry"),
        ErrorCode::BadRequest => status_json(StatusCode::BAD_REQUEST, "bad request"),
        ErrorCode::Unauthorized => status_json(StatusCode::UNAUTHORIZED, "delivery rejected"),
        ErrorCode::RateLimited => retry_later(StatusCode::TOO_MANY_REQUESTS, "rate limited"),
        _ => status_json(StatusCode::BAD_GATEWAY, "connector failed"),
    }
}

/// The connector's own response (handshakes), checked before use.
fn connector_response(response: HttpResponse) -> Response {
    let Ok(status) = StatusCode::from_u16(response.status) else {
        return status_json(StatusCode::BAD_GATEWAY, "connector failed");
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &response.headers {
        let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str())) else {
            continue;
        };
        // Framing is the server's business, not the connector's.
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        headers.append(name, value);
    }
    (status, headers, response.body).into_response()
}

fn status_json(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn retry_later(status: StatusCode, message: &str) -> Response {
    let mut response = status_json(status, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}
