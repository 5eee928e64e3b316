//! `GET /api/v1/triggers/{id}/logs`: what the trigger's connector wrote on
//! its calls.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::triggers::{MAX_PAGE_BYTES, Page};
use crate::app::AppState;

/// `?limit=&cursor=` (newest first, older pages by cursor) or `?after=`
/// (oldest first, for following).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Entries per page, 1 to 500 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the page before: older entries.
    cursor: Option<String>,
    /// A `seq`: the entries written after it, oldest first (what
    /// `trigger logs --follow` asks every second).
    after: Option<i64>,
}

/// Logs newest first (`next_cursor` pages back), or with `after`, the ones
/// written since, oldest first.
#[utoipa::path(get, path = "/api/v1/triggers/{id}/logs", tag = "events",
    params(("id" = String, Path, description = "Trigger id"), LogQuery),
    responses(
        (status = 200, description = "`{logs: [{seq, at_ms, export, outcome, plugin_version, node, text, dropped_bytes, skipped_calls}], next_cursor}`", body = Object),
        (status = 400, description = "A bad limit or cursor, or `after` with `cursor`", body = crate::api::ErrorBody),
        (status = 404, description = "No such trigger", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    app.triggers.get(&id).await?;
    let (limit, before) = Page { limit: query.limit, cursor: query.cursor.clone() }.bounds()?;
    if let Some(after) = query.after {
        if query.cursor.is_some() {
            return Err(ApiError::bad_request("give after or cursor, not both"));
        }
        let logs = app.store.logs_after(&id, after, limit).await?;
        return Ok(axum::Json(json!({ "logs": logs, "next_cursor": null })));
    }
    let (logs, more) = app.store.list_logs(&id, limit, before, MAX_PAGE_BYTES).await?;
    let next_cursor = more.then(|| logs.last().map(|row| row.seq.to_string())).flatten();
    Ok(axum::Json(json!({ "logs": logs, "next_cursor": next_cursor })))
}
