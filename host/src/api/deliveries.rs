//! Push delivery over the API: a trigger's destinations, the jobs and their
//! attempts, retrying dead letters and replaying events.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::triggers::Page;
use super::{ApiError, ApiJson};
use crate::app::AppState;
use crate::delivery::{DestinationPatch, NewDestination, not_found};
use crate::store::{DeliveryFilter, ReplayScope, job_status};

type JsonResult = Result<axum::Json<serde_json::Value>, ApiError>;

/// Attempts listed per job at most (a job has eight per round).
const MAX_ATTEMPTS_LISTED: i64 = 1000;

/// `POST /api/v1/triggers/{id}/destinations`: 201 with the secret.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/destinations", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id")),
    request_body = crate::delivery::NewDestination,
    responses(
        (status = 201, description = "The destination, with its signing secret (shown once)", body = Object),
        (status = 400, description = "A URL or event type filter that is not valid", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Path(trigger): Path<String>,
    ApiJson(body): ApiJson<NewDestination>,
) -> Result<Response, ApiError> {
    let view = app.delivery.create(&trigger, body).await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// `GET /api/v1/triggers/{id}/destinations`.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/destinations", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "`{destinations: [...]}`", body = Object),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn list(State(app): State<Arc<AppState>>, Path(trigger): Path<String>) -> JsonResult {
    Ok(axum::Json(json!({ "destinations": app.delivery.list(&trigger).await? })))
}

/// `GET /api/v1/triggers/{id}/destinations/{dest}`.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/destinations/{dest}", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id"), ("dest" = String, Path, description = "Destination id")),
    responses(
        (status = 200, description = "The destination", body = Object),
        (status = 404, description = "No such trigger or destination", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn get(State(app): State<Arc<AppState>>, Path((trigger, id)): Path<(String, String)>) -> JsonResult {
    Ok(axum::Json(json!(app.delivery.get(&trigger, &id).await?)))
}

/// `PATCH /api/v1/triggers/{id}/destinations/{dest}`.
#[utoipa::path(patch, path = "/api/v1/triggers/{id}/destinations/{dest}", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id"), ("dest" = String, Path, description = "Destination id")),
    request_body = crate::delivery::DestinationPatch,
    responses(
        (status = 200, description = "The destination", body = Object),
        (status = 400, description = "Malformed or invalid request", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger or destination", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn patch(
    State(app): State<Arc<AppState>>,
    Path((trigger, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<DestinationPatch>,
) -> JsonResult {
    Ok(axum::Json(json!(app.delivery.patch(&trigger, &id, body).await?)))
}

/// `DELETE /api/v1/triggers/{id}/destinations/{dest}`: with its jobs.
#[utoipa::path(delete, path = "/api/v1/triggers/{id}/destinations/{dest}", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id"), ("dest" = String, Path, description = "Destination id")),
    responses(
        (status = 204, description = "Deleted, with its jobs"),
        (status = 404, description = "No such trigger or destination", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn delete(State(app): State<Arc<AppState>>, Path((trigger, id)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    app.delivery.delete(&trigger, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../rotate-secret` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    #[serde(default)]
    secret: Option<String>,
}

/// `POST /api/v1/triggers/{id}/destinations/{dest}/rotate-secret`: the new
/// secret; the old one signs beside it for the grace period.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/destinations/{dest}/rotate-secret", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id"), ("dest" = String, Path, description = "Destination id")),
    request_body(content = Option<Rotate>, description = "Optional: `{secret}` to choose it, else one is generated"),
    responses(
        (status = 200, description = "The new secret; the old one signs beside it for the grace period", body = Object),
        (status = 400, description = "Malformed or invalid request", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger or destination", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn rotate(
    State(app): State<Arc<AppState>>,
    Path((trigger, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> JsonResult {
    // A body is optional: `{}`, `{"secret": "whsec_..."}` or nothing.
    let rotate: Rotate = match body.is_empty() {
        true => Rotate::default(),
        false => serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?,
    };
    let secret = rotate.secret;
    Ok(axum::Json(json!(app.delivery.rotate(&trigger, &id, secret).await?)))
}

/// `GET /api/v1/deliveries` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /api/v1/deliveries?trigger=&destination=&status=&limit=&cursor=`:
/// jobs, newest first.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "delivery",
    params(ListQuery),
    responses(
        (status = 200, description = "`{deliveries: [...], next_cursor}`, newest first", body = Object),
        (status = 400, description = "A bad status, limit or cursor", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn list_deliveries(
    State(app): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> JsonResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if let Some(status) = &query.status
        && ![job_status::PENDING, job_status::DELIVERED, job_status::DEAD].contains(&status.as_str())
    {
        return Err(ApiError::bad_request("status: pending, delivered or dead"));
    }
    let (limit, before) = Page { limit: query.limit, cursor: query.cursor }.bounds()?;
    let filter = DeliveryFilter { trigger_id: query.trigger, destination_id: query.destination, status: query.status };
    let rows = app.store.list_deliveries(&filter, limit, before).await?;
    let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|row| row.seq.to_string())).flatten();
    Ok(axum::Json(json!({ "deliveries": rows, "next_cursor": next_cursor })))
}

/// `GET /api/v1/deliveries/{id}`.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "delivery",
    params(("id" = String, Path, description = "Delivery job id")),
    responses(
        (status = 200, description = "The job", body = Object),
        (status = 404, description = "No such delivery", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn get_delivery(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    Ok(axum::Json(json!(app.store.get_delivery(&id).await.map_err(|e| not_found(e, "delivery", &id))?)))
}

/// `GET /api/v1/deliveries/{id}/attempts`: first first.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}/attempts", tag = "delivery",
    params(("id" = String, Path, description = "Delivery job id")),
    responses(
        (status = 200, description = "`{attempts: [...]}`, oldest first", body = Object),
        (status = 404, description = "No such delivery", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn attempts(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    app.store.get_delivery(&id).await.map_err(|e| not_found(e, "delivery", &id))?;
    Ok(axum::Json(json!({ "attempts": app.store.list_attempts(&id, MAX_ATTEMPTS_LISTED).await? })))
}

/// `POST /api/v1/deliveries/{id}/retry`: a dead-lettered job, queued again.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/retry", tag = "delivery",
    params(("id" = String, Path, description = "Delivery job id")),
    responses(
        (status = 200, description = "The job, queued again", body = Object),
        (status = 404, description = "No such delivery", body = crate::api::ErrorBody),
        (status = 409, description = "The job is not dead-lettered", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn retry(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    app.delivery.retry(&id).await?;
    Ok(axum::Json(json!(app.store.get_delivery(&id).await?)))
}

/// `POST /api/v1/triggers/{id}/events/replay` body: one event, or those
/// received in `[since_ms, until_ms)`, or (`dead_letters`) the trigger's
/// dead-lettered jobs; to one destination or every one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    since_ms: Option<i64>,
    #[serde(default)]
    until_ms: Option<i64>,
    #[serde(default)]
    destination_id: Option<String>,
    #[serde(default)]
    dead_letters: bool,
}

/// `POST /api/v1/triggers/{id}/events/replay`: `{queued, more}`; with
/// `more`, call again for the rest of the range.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/events/replay", tag = "delivery",
    params(("id" = String, Path, description = "Trigger id")),
    request_body = Replay,
    responses(
        (status = 200, description = "`{queued, more}`: with `more`, call again for the rest of the range", body = Object),
        (status = 400, description = "None or several of event_id, a range and dead_letters", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger, event or destination", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn replay(State(app): State<Arc<AppState>>, Path(trigger): Path<String>, ApiJson(body): ApiJson<Replay>) -> JsonResult {
    let ranged = body.event_id.is_some() || body.since_ms.is_some() || body.until_ms.is_some();
    if body.dead_letters && ranged {
        return Err(ApiError::bad_request("dead_letters replays the dead-lettered jobs: give no event_id or range with it"));
    }
    if !body.dead_letters && !ranged {
        return Err(ApiError::bad_request("give event_id, a since_ms/until_ms range, or dead_letters: true"));
    }
    let scope = ReplayScope {
        trigger_id: trigger,
        event_id: body.event_id,
        since_ms: body.since_ms,
        until_ms: body.until_ms,
        destination_id: body.destination_id,
    };
    let dead_letters = body.dead_letters;
    let queued = app.delivery.replay(&scope, dead_letters).await?;
    let more = !dead_letters && queued >= crate::delivery::REPLAY_BATCH.unsigned_abs();
    Ok(axum::Json(json!({ "queued": queued, "more": more })))
}
