//! `/api/v1/triggers`: lifecycle, events, stats and failures.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::json;

use super::{ApiError, ApiJson};
use crate::app::AppState;
use crate::pipeline::Outcome;
use crate::store::{EventRow, TriggerPatch};
use crate::triggers::CreateTrigger;

/// Rows per page by default and at most.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Bytes of payloads (or failure text) per page: past the first row, a page
/// ends before it would hold more, and `next_cursor` goes on from there.
pub(super) const MAX_PAGE_BYTES: usize = 4 << 20;

type JsonResult = Result<axum::Json<serde_json::Value>, ApiError>;

/// Runs a lifecycle change to its end even if the client goes away: a
/// handler dropped between its connector call and its database write would
/// leave the live table and the database disagreeing.
async fn to_completion<T: Send + 'static>(
    change: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(change).await.map_err(|e| ApiError::internal(&e))
}

/// `POST /api/v1/triggers`.
#[utoipa::path(post, path = "/api/v1/triggers", tag = "triggers",
    request_body = crate::triggers::CreateTrigger,
    responses(
        (status = 201, description = "The trigger, with its webhook URL", body = crate::triggers::TriggerView),
        (status = 400, description = "Unknown plugin or trigger, or a config the schema refuses (`invalid-config`, naming the field)", body = crate::api::ErrorBody),
        (status = 409, description = "The version needs what is not granted", body = crate::api::ErrorBody),
        (status = 502, description = "The connector's `on-enable` failed", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn create(State(app): State<Arc<AppState>>, ApiJson(body): ApiJson<CreateTrigger>) -> Result<Response, ApiError> {
    let row = app.triggers.create(body).await?;
    Ok((StatusCode::CREATED, axum::Json(app.triggers.view(&row))).into_response())
}

/// `GET /api/v1/triggers`.
#[utoipa::path(get, path = "/api/v1/triggers", tag = "triggers",
    responses(
        (status = 200, description = "`{triggers: [...]}` with each one's health", body = Object),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn list(State(app): State<Arc<AppState>>) -> JsonResult {
    let states = app.store.all_poll_states().await?;
    let renewals = app.store.all_renewal_states().await?;
    let reauth = connections_needing_reauth(&app).await?;
    let triggers: Vec<_> = app
        .triggers
        .list()
        .await?
        .iter()
        .map(|row| {
            let poll = states.get(&row.id).cloned().unwrap_or_default();
            let mut view = with_health(&app, row, poll, &renewals.get(&row.id).cloned().unwrap_or_default());
            show_reauth(&mut view, row, &reauth);
            view
        })
        .collect();
    Ok(axum::Json(json!({ "triggers": triggers })))
}

/// `GET /api/v1/triggers/{id}`.
#[utoipa::path(get, path = "/api/v1/triggers/{id}", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "The trigger with its health", body = Object),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn get(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let row = app.triggers.get(&id).await?;
    let state = app.store.poll_state(&id).await?;
    let renewal = app.store.renewal_state(&id).await?;
    let mut view = with_health(&app, &row, state, &renewal);
    show_reauth(&mut view, &row, &connections_needing_reauth(&app).await?);
    Ok(axum::Json(view))
}

/// The connections whose credentials no longer work.
async fn connections_needing_reauth(app: &AppState) -> Result<std::collections::HashSet<String>, ApiError> {
    let connections = app.store.list_connections().await?;
    Ok(connections.into_iter().filter(|c| c.status != crate::connections::status::CONNECTED).map(|c| c.id).collect())
}

/// An enabled trigger on a connection that needs re-authorization is shown
/// `needs-reauth`: its calls cannot work until the operator reconnects.
fn show_reauth(view: &mut serde_json::Value, row: &crate::store::TriggerRow, reauth: &std::collections::HashSet<String>) {
    let stuck = row.connection_id.as_ref().is_some_and(|id| reauth.contains(id));
    if stuck && row.status == crate::triggers::status::ENABLED {
        view["status"] = json!(crate::triggers::status::NEEDS_REAUTH);
    }
}

/// A trigger's view, with its polling health if it polls and its renewal
/// if it has a subscription that expires.
fn with_health(
    app: &AppState,
    row: &crate::store::TriggerRow,
    state: crate::store::PollState,
    renewal: &crate::store::RenewalState,
) -> serde_json::Value {
    let mut view = json!(app.triggers.view(row));
    if row.poll_interval_s.is_some() {
        view["health"] = poll_health(app, row, &state);
    }
    if let Some(renewal) = renewal_view(row, renewal) {
        view["renewal"] = renewal;
    }
    view
}

/// What the views and `/health` show of renewal: nothing for a trigger
/// whose subscription never expires and never failed to renew.
fn renewal_view(row: &crate::store::TriggerRow, state: &crate::store::RenewalState) -> Option<serde_json::Value> {
    if row.expires_at_ms.is_none() && state.failures == 0 {
        return None;
    }
    Some(json!({
        "healthy": crate::renewal::is_healthy(row, state, crate::store::now_ms()),
        "expires_at_ms": row.expires_at_ms,
        "renew_at_ms": state.renew_at_ms,
        "renewals": state.renewals,
        "failures": state.failures,
        "last_error": state.last_error,
        "last_renewed_at_ms": state.last_renewed_at_ms,
    }))
}

/// What `/health` and the trigger views show of polling.
fn poll_health(app: &AppState, row: &crate::store::TriggerRow, state: &crate::store::PollState) -> serde_json::Value {
    let now = crate::store::now_ms();
    let healthy = crate::poller::is_healthy(row, state, app.poller.unhealthy_after, now);
    json!({
        "healthy": healthy,
        "polls": state.polls,
        "failures": state.failures,
        "consecutive_failures": state.consecutive_failures,
        "events": state.events,
        "last_poll_at_ms": state.last_poll_at_ms,
        "last_success_at_ms": state.last_success_at_ms,
        "last_event_at_ms": state.last_event_at_ms,
        "last_error": state.last_error,
        "last_duration_ms": state.last_duration_ms,
        "next_poll_at_ms": app.next_polls.get(&row.id),
        "watermark_age_ms": state.last_success_at_ms.map(|at| now.saturating_sub(at)),
    })
}

/// `PATCH /api/v1/triggers/{id}` body; `null` clears a nullable field.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "crate::json::nullable")]
    secret: Option<Option<String>>,
    /// A version to pin (`null` follows the active one again); `version` also reads.
    #[serde(default, deserialize_with = "crate::json::nullable", alias = "version")]
    plugin_version: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::json::nullable")]
    poll_interval_s: Option<Option<u32>>,
    /// A connection to use (`null`: none).
    #[serde(default, deserialize_with = "crate::json::nullable")]
    connection: Option<Option<String>>,
    /// Host-side filters (`null` or `[]`: none).
    #[serde(default, deserialize_with = "crate::json::nullable")]
    filters: Option<Option<Vec<crate::filters::Rule>>>,
    /// Its own retention period, seconds (`null`: the default).
    #[serde(default, deserialize_with = "crate::json::nullable")]
    retention_s: Option<Option<u32>>,
    /// Its own count cap (`null`: the default).
    #[serde(default, deserialize_with = "crate::json::nullable")]
    retention_events: Option<Option<u32>>,
}

/// `PATCH /api/v1/triggers/{id}`.
#[utoipa::path(patch, path = "/api/v1/triggers/{id}", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    request_body = Patch,
    responses(
        (status = 200, description = "The trigger", body = crate::triggers::TriggerView),
        (status = 400, description = "A field or config the schema refuses", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 409, description = "The pinned version needs what is not granted", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn patch(State(app): State<Arc<AppState>>, Path(id): Path<String>, ApiJson(body): ApiJson<Patch>) -> JsonResult {
    let patch = TriggerPatch {
        config: body.config.map(|c| c.to_string()),
        secret: body.secret,
        plugin_version: body.plugin_version,
        poll_interval_s: body.poll_interval_s.map(|p| p.map(i64::from)),
        connection_id: body.connection,
        filters: match body.filters {
            Some(rules) => Some(crate::triggers::checked_filters(rules.as_deref())?),
            None => None,
        },
        retention_s: body.retention_s.map(|r| crate::triggers::positive("retention_s", r)).transpose()?,
        retention_events: body.retention_events.map(|r| crate::triggers::positive("retention_events", r)).transpose()?,
    };
    let triggers = Arc::clone(&app.triggers);
    let row = to_completion(async move { triggers.patch(&id, patch).await }).await??;
    Ok(axum::Json(json!(app.triggers.view(&row))))
}

/// `?keep_events=true`: keep the events for the retention period.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    keep_events: Option<bool>,
}

/// `DELETE /api/v1/triggers/{id}`.
#[utoipa::path(delete, path = "/api/v1/triggers/{id}", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted (its provider registration removed)"),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let triggers = Arc::clone(&app.triggers);
    let keep_events = query.keep_events.unwrap_or(false);
    let deleted = id.clone();
    to_completion(async move { triggers.delete(&id, keep_events).await }).await??;
    if !keep_events {
        app.delivery.trigger_deleted(&deleted);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/triggers/{id}/enable`.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/enable", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "The trigger, enabled", body = crate::triggers::TriggerView),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 409, description = "Its version needs what is not granted", body = crate::api::ErrorBody),
        (status = 502, description = "The connector's `on-enable` failed", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn enable(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let triggers = Arc::clone(&app.triggers);
    let row = to_completion(async move { triggers.enable(&id).await }).await??;
    Ok(axum::Json(json!(app.triggers.view(&row))))
}

/// `POST /api/v1/triggers/{id}/disable`.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/disable", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "The trigger, disabled", body = crate::triggers::TriggerView),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn disable(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let triggers = Arc::clone(&app.triggers);
    let row = to_completion(async move { triggers.disable(&id).await }).await??;
    Ok(axum::Json(json!(app.triggers.view(&row))))
}

/// `POST /api/v1/triggers/{id}/sync`: checks the trigger's registration
/// (its source's, when it shares one) at the provider now, registering it
/// again if the provider lost it.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/sync", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "What the check found and did", body = Object),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 409, description = "The trigger is not enabled", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn sync(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let triggers = Arc::clone(&app.triggers);
    let outcome = to_completion(async move { triggers.sync(&id).await }).await??;
    Ok(axum::Json(json!(outcome)))
}

/// `GET /api/v1/sources`: the registrations triggers share.
#[utoipa::path(get, path = "/api/v1/sources", tag = "triggers",
    responses(
        (status = 200, description = "`{sources: [...]}`: registrations triggers share", body = Object),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn sources(State(app): State<Arc<AppState>>) -> JsonResult {
    Ok(axum::Json(json!({ "sources": app.triggers.sources().await? })))
}

/// `GET /api/v1/sources/{id}`.
#[utoipa::path(get, path = "/api/v1/sources/{id}", tag = "triggers",
    params(("id" = String, Path, description = "Source id")),
    responses(
        (status = 200, description = "The source and its triggers", body = Object),
        (status = 404, description = "No such source", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn source(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    Ok(axum::Json(json!(app.triggers.source(&id).await?)))
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub(super) limit: Option<i64>,
    pub(super) cursor: Option<String>,
}

/// `GET /api/v1/triggers/{id}/events`: newest first; `next_cursor` fetches
/// the next older page.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Trigger id"), Page),
    responses(
        (status = 200, description = "A page of events, newest first", body = EventPage),
        (status = 400, description = "A bad limit or cursor", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn events(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::bad_request(e.body_text()))?;
    app.triggers.get(&id).await?;
    let (limit, before) = page.bounds()?;
    let (rows, more) = app.store.list_events(&id, limit, before, MAX_PAGE_BYTES).await?;
    let next_cursor = more.then(|| rows.last().map(|row| row.seq.to_string())).flatten();
    let events = rows.into_iter().map(EventView::from).collect();
    Ok(axum::Json(EventPage { events, next_cursor }).into_response())
}

impl Page {
    /// The page size and the `seq` to read below, checked.
    pub(super) fn bounds(&self) -> Result<(i64, Option<i64>), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!("limit must be 1 to {MAX_PAGE}")));
        }
        let before = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(cursor) => Some(cursor.parse::<i64>().map_err(|_| ApiError::bad_request("invalid cursor"))?),
        };
        Ok((limit, before))
    }
}

/// One page of events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    events: Vec<EventView>,
    next_cursor: Option<String>,
}

/// An event as the API shows it: the payload is the stored JSON text,
/// embedded as is (no re-serialization, no key reordering).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    dedupe_key: Option<String>,
    occurred_at_ms: Option<i64>,
    received_at_ms: i64,
    plugin_version: String,
    /// The connector's JSON, as stored.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> Self {
        let payload = crate::json::embed(&row.payload).into_owned();
        EventView {
            id: row.id,
            event_type: row.event_type,
            dedupe_key: row.dedupe_key,
            occurred_at_ms: row.occurred_at_ms,
            received_at_ms: row.received_at_ms,
            plugin_version: row.plugin_version,
            payload,
        }
    }
}

/// Minutes of events per minute in a trigger's stats.
const SPARKLINE_MINUTES: usize = 60;

/// `GET /api/v1/triggers/{id}/stats`.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/stats", tag = "events",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "Counters (received, accepted, rejected, duplicates, errors, fuel) and `events_per_minute` over the last hour, oldest first", body = Object),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn stats(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    app.triggers.get(&id).await?;
    let mut stats = json!(app.store.get_stats(&id).await?);
    stats["events_per_minute"] = json!(app.store.events_per_minute(&id, SPARKLINE_MINUTES).await?);
    Ok(axum::Json(stats))
}

/// `GET /api/v1/triggers/{id}/failures?limit=&cursor=`: failed calls,
/// newest first, paged like events.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/failures", tag = "events",
    params(("id" = String, Path, description = "Trigger id"), Page),
    responses(
        (status = 200, description = "`{failures: [...], next_cursor}`: failed calls with their typed error and the guest's log, newest first", body = Object),
        (status = 400, description = "A bad limit or cursor", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn failures(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> JsonResult {
    let Query(page) = page.map_err(|e| ApiError::bad_request(e.body_text()))?;
    app.triggers.get(&id).await?;
    let (limit, before) = page.bounds()?;
    let (rows, more) = app.store.list_failures(&id, limit, before, MAX_PAGE_BYTES).await?;
    let next_cursor = more.then(|| rows.last().map(|row| row.seq.to_string())).flatten();
    Ok(axum::Json(json!({ "failures": rows, "next_cursor": next_cursor })))
}

/// `?values=true` on the kv view.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KvQuery {
    #[serde(default)]
    values: bool,
}

/// `GET /api/v1/triggers/{id}/kv`: the trigger's keys and sizes; values only
/// with `?values=true`, since a connector may keep tokens there.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/kv", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id"), KvQuery),
    responses(
        (status = 200, description = "`{entries: [...]}`: keys and sizes, values only when asked", body = Object),
        (status = 400, description = "Malformed or invalid request", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn kv(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Result<Query<KvQuery>, axum::extract::rejection::QueryRejection>,
) -> JsonResult {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    app.triggers.get(&id).await?;
    let entries = app.store.kv_entries(&id, query.values).await?;
    Ok(axum::Json(json!({ "entries": entries })))
}

/// `POST /api/v1/triggers/{id}/poll` body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollNow {
    /// Forget the cursor first: the poll starts from a new baseline.
    #[serde(default)]
    reset: bool,
}

/// `POST /api/v1/triggers/{id}/poll`: polls an enabled polling trigger now
/// (after the poll in flight, if any) and answers with what it stored.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/poll", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    request_body(content = Option<PollNow>, description = "Optional: `{reset: true}` forgets the cursor first"),
    responses(
        (status = 200, description = "`{outcome: stored, stored, duplicates, filtered, events}` or `{outcome: failed, code, error}`", body = Object),
        (status = 400, description = "Malformed or invalid request", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 409, description = "Not a polling trigger, not enabled, or polled by another node", body = crate::api::ErrorBody),
        (status = 503, description = "The connector is unavailable, or the database is busy", body = crate::api::ErrorBody),
    ))]
pub async fn poll(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> JsonResult {
    // The body is optional: no body is `{}`.
    let PollNow { reset } = if body.iter().all(u8::is_ascii_whitespace) {
        PollNow::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("poll: {e}")))?
    };
    let row = app.triggers.get(&id).await?;
    if row.poll_interval_s.is_none() {
        return Err(ApiError::new(StatusCode::CONFLICT, "not-polling", "this trigger takes webhooks; it does not poll"));
    }
    let Some(live) = app.triggers.live(&id) else {
        return Err(ApiError::new(StatusCode::CONFLICT, "not-enabled", "enable the trigger to poll it"));
    };
    if reset {
        app.store.reset_poll(&id).await?;
    }
    let pipeline = app.pipeline.clone();
    let outcome = to_completion(async move { pipeline.poll(&live).await }).await?;
    match outcome {
        Outcome::Stored { stored, duplicates, filtered, .. } => {
            let limit = i64::try_from(stored).unwrap_or(i64::MAX).max(1);
            let (events, _) = app.store.list_events(&id, limit, None, MAX_PAGE_BYTES).await?;
            let events: Vec<_> = if stored == 0 { Vec::new() } else { events.into_iter().map(EventView::from).collect() };
            let answer = json!({ "outcome": "stored", "stored": stored, "duplicates": duplicates, "filtered": filtered, "events": events });
            Ok(axum::Json(answer))
        }
        Outcome::Unavailable(why) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why)),
        Outcome::Gone => Err(ApiError::not_found(format!("no trigger {id}"))),
        Outcome::Elsewhere { .. } => {
            Err(ApiError::new(StatusCode::CONFLICT, "polled-elsewhere", "another node holds this trigger's polls; ask it"))
        }
        other => {
            let state = app.store.poll_state(&id).await?;
            let code = match other {
                Outcome::ConnectorFailed(_) => "connector-error",
                Outcome::OutputRefused => "kv-quota",
                _ => "call-failed",
            };
            Ok(axum::Json(json!({ "outcome": "failed", "code": code, "error": state.last_error })))
        }
    }
}

/// `GET /api/v1/triggers/{id}/health`: how polling goes.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/health", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "Healthy or not, with why: last poll, success and error, consecutive failures, next poll (polling); newest event and newest failure (every trigger); renewal due, connection and sync state", body = Object),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn health(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let row = app.triggers.get(&id).await?;
    let state = app.store.poll_state(&id).await?;
    let mut health = poll_health(&app, &row, &state);
    let polling = row.poll_interval_s.is_some();
    let renewal = renewal_view(&row, &app.store.renewal_state(&id).await?);
    // Healthy when polls succeed (if it polls) and its subscription is
    // renewed in time (if it has one).
    let polls_healthy = !polling || health["healthy"] == true;
    let renewal_healthy = renewal.as_ref().is_none_or(|r| r["healthy"] == true);
    // A connection that needs re-authorization stops every trigger on it.
    let connection = match &row.connection_id {
        Some(id) => Some(app.store.get_connection(id).await?),
        None => None,
    };
    let connection_healthy = connection.as_ref().is_none_or(|c| c.status == crate::connections::status::CONNECTED);
    // The last check of its registration at the provider (its source's,
    // when it shares one) found nothing wrong, or none ran yet.
    let sync_error = match &row.source_id {
        Some(source) => app.store.get_source(source).await?.sync_error,
        None => row.sync_error.clone(),
    };
    // Its newest event and newest failure (of any call: deliveries, polls,
    // sync, renewal), for people. A webhook trigger is unhealthy while a
    // failed delivery is newer than its newest event; sync and renewal have
    // their own verdicts above.
    let last_event_at_ms = app.store.newest_event_at(&id).await?;
    let (failures, _) = app.store.list_failures(&id, 1, None, MAX_PAGE_BYTES).await?;
    let last_failure = failures.first();
    let failed_delivery_at = if polling { None } else { app.store.newest_failure_at(&id, "deliver").await? };
    let calls_healthy = failed_delivery_at.is_none_or(|failed| last_event_at_ms.is_some_and(|at| at >= failed));
    health["last_event_at_ms"] = json!(last_event_at_ms);
    health["last_failure"] = json!(last_failure.map(|f| json!({ "at_ms": f.at_ms, "export": f.export, "code": f.code, "message": f.message })));
    health["healthy"] =
        json!(polls_healthy && calls_healthy && renewal_healthy && connection_healthy && sync_error.is_none());
    health["sync_error"] = json!(sync_error);
    health["connection"] = json!(connection.map(|c| json!({ "id": c.id, "status": c.status, "last_error": c.last_error })));
    health["status"] = json!(row.status);
    health["polling"] = json!(polling);
    health["poll_interval_s"] = json!(row.poll_interval_s);
    health["renewal"] = json!(renewal);
    Ok(axum::Json(health))
}

/// Sample events `test` shows at most.
const TEST_EVENTS: usize = 5;

/// `POST /api/v1/triggers/{id}/test`: for a polling trigger, what a poll
/// would emit now (up to 5 events: nothing stored, no cursor advanced);
/// for any trigger, the manifest's sample event.
#[utoipa::path(post, path = "/api/v1/triggers/{id}/test", tag = "triggers",
    params(("id" = String, Path, description = "Trigger id")),
    responses(
        (status = 200, description = "Up to 5 events a poll would emit now (nothing stored) and the manifest's sample event", body = Object),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 409, description = "Not enabled", body = crate::api::ErrorBody),
        (status = 503, description = "The connector is unavailable", body = crate::api::ErrorBody),
    ))]
pub async fn test(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let row = app.triggers.get(&id).await?;
    let loaded = app.registry.resolve(&row.plugin, row.plugin_version.as_deref())?;
    let sample = loaded
        .plugin
        .manifest()
        .trigger(&row.trigger_name)
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t.sample_event).ok());
    if row.poll_interval_s.is_none() {
        return Ok(axum::Json(json!({ "events": [], "sample_event": sample })));
    }
    let Some(live) = app.triggers.live(&id) else {
        return Err(ApiError::new(StatusCode::CONFLICT, "not-enabled", "enable the trigger to test a poll"));
    };
    let pipeline = app.pipeline.clone();
    match to_completion(async move { pipeline.preview(&live, TEST_EVENTS).await }).await? {
        Ok(events) => {
            let events: Vec<serde_json::Value> = events
                .into_iter()
                .map(|e| {
                    let payload = serde_json::from_str::<serde_json::Value>(&e.payload).unwrap_or(serde_json::Value::Null);
                    json!({ "type": e.event_type, "dedupe_key": e.dedupe_key, "occurred_at_ms": e.occurred_at_ms, "payload": payload })
                })
                .collect();
            Ok(axum::Json(json!({ "events": events, "sample_event": sample })))
        }
        Err(Outcome::ConnectorFailed(error)) => {
            Ok(axum::Json(json!({ "outcome": "failed", "code": error.code.as_str(), "error": error.message })))
        }
        Err(Outcome::CallFailed(kind)) => {
            Ok(axum::Json(json!({ "outcome": "failed", "code": kind.code(), "error": kind.to_string() })))
        }
        Err(_) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "connector unavailable")),
    }
}
