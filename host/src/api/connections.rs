//! `/api/v1/connections`: credentials shared by triggers, never shown.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson};
use crate::app::AppState;
use crate::connections::{ConnectionView, NewConnection};

type JsonResult = Result<axum::Json<serde_json::Value>, ApiError>;

/// `POST /api/v1/connections`.
pub async fn create(State(app): State<Arc<AppState>>, ApiJson(body): ApiJson<NewConnection>) -> Result<Response, ApiError> {
    let row = app.connections.create(body).await?;
    Ok((StatusCode::CREATED, axum::Json(ConnectionView::from(&row))).into_response())
}

/// `GET /api/v1/connections`.
pub async fn list(State(app): State<Arc<AppState>>) -> JsonResult {
    let rows = app.connections.list().await?;
    let views: Vec<ConnectionView> = rows.iter().map(ConnectionView::from).collect();
    Ok(axum::Json(json!({ "connections": views })))
}

/// `GET /api/v1/connections/{id}`, with the triggers using it.
pub async fn get(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let row = app.connections.get(&id).await?;
    let mut view = json!(ConnectionView::from(&row));
    view["triggers"] = json!(app.store.triggers_using(&id).await?);
    Ok(axum::Json(view))
}

/// `PATCH /api/v1/connections/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    credentials: Option<serde_json::Value>,
}

/// `PATCH /api/v1/connections/{id}`: new credentials reach the live
/// triggers using it at once.
pub async fn patch(State(app): State<Arc<AppState>>, Path(id): Path<String>, ApiJson(body): ApiJson<Patch>) -> JsonResult {
    let row = app.connections.patch(&id, body.display_name, body.credentials).await?;
    app.triggers.reload_connection(&id)?;
    Ok(axum::Json(json!(ConnectionView::from(&row))))
}

/// `DELETE /api/v1/connections/{id}`: refused while triggers use it.
pub async fn delete(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    app.connections.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
