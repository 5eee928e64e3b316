//! `/api/v1/connections`: credentials shared by triggers, never shown.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiJson};
use crate::app::AppState;
use crate::connections::{ConnectionView, NewConnection};

type JsonResult = Result<axum::Json<serde_json::Value>, ApiError>;

/// `POST /api/v1/connections`.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections",
    request_body = crate::connections::NewConnection,
    responses(
        (status = 201, description = "The connection (never its credentials)", body = crate::connections::ConnectionView),
        (status = 400, description = "Unknown plugin, or credentials the plugin's schema refuses", body = crate::api::ErrorBody),
        (status = 502, description = "The provider refused the credentials", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn create(State(app): State<Arc<AppState>>, ApiJson(body): ApiJson<NewConnection>) -> Result<Response, ApiError> {
    let row = app.connections.create(body).await?;
    Ok((StatusCode::CREATED, axum::Json(ConnectionView::from(&row))).into_response())
}

/// `GET /api/v1/connections`.
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    responses(
        (status = 200, description = "`{connections: [...]}`", body = Object),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn list(State(app): State<Arc<AppState>>) -> JsonResult {
    let rows = app.connections.list().await?;
    let views: Vec<ConnectionView> = rows.iter().map(ConnectionView::from).collect();
    Ok(axum::Json(json!({ "connections": views })))
}

/// `GET /api/v1/connections/{id}`, with the triggers using it.
#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection and the triggers using it", body = Object),
        (status = 404, description = "No such connection", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn get(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> JsonResult {
    let row = app.connections.get(&id).await?;
    let mut view = json!(ConnectionView::from(&row));
    view["triggers"] = json!(app.store.triggers_using(&id).await?);
    Ok(axum::Json(view))
}

/// `PATCH /api/v1/connections/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    credentials: Option<serde_json::Value>,
}

/// `PATCH /api/v1/connections/{id}`: new credentials reach the next call
/// of every trigger using it.
#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    request_body = Patch,
    responses(
        (status = 200, description = "The connection", body = crate::connections::ConnectionView),
        (status = 400, description = "Malformed or invalid request", body = crate::api::ErrorBody),
        (status = 404, description = "No such connection", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn patch(State(app): State<Arc<AppState>>, Path(id): Path<String>, ApiJson(body): ApiJson<Patch>) -> JsonResult {
    let row = app.connections.patch(&id, body.display_name, body.credentials).await?;
    Ok(axum::Json(json!(ConnectionView::from(&row))))
}

/// `DELETE /api/v1/connections/{id}`: refused while triggers use it.
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections",
    params(("id" = String, Path, description = "Connection id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such connection", body = crate::api::ErrorBody),
        (status = 409, description = "Triggers use it (`connection-in-use`, with the list)", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn delete(State(app): State<Arc<AppState>>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    app.connections.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/plugins/{name}/oauth-app`: the OAuth2 client the operator
/// registered at the plugin's provider.
#[utoipa::path(put, path = "/api/v1/plugins/{name}/oauth-app", tag = "connections",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = crate::connections::OAuthAppRequest,
    responses(
        (status = 200, description = "The OAuth2 client, without its secret", body = Object),
        (status = 400, description = "Malformed or invalid request", body = crate::api::ErrorBody),
        (status = 404, description = "No such plugin", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn put_oauth_app(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<crate::connections::OAuthAppRequest>,
) -> JsonResult {
    Ok(axum::Json(json!(app.connections.set_oauth_app(&name, body).await?)))
}

/// `GET /api/v1/connections/oauth/start` query: a plugin and a name for a
/// new connection, or the connection to authorize again.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    connection: Option<String>,
}

/// `GET /api/v1/connections/oauth/start?plugin=..&display_name=..` (or
/// `?connection=..` to authorize one again): the provider's authorization
/// URL to send the operator's browser to.
#[utoipa::path(get, path = "/api/v1/connections/oauth/start", tag = "connections",
    params(StartQuery),
    responses(
        (status = 200, description = "`{authorize_url, ...}`: where to send the operator's browser", body = Object),
        (status = 400, description = "Neither plugin and display_name nor connection", body = crate::api::ErrorBody),
        (status = 404, description = "No such connection", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn start_oauth(State(app): State<Arc<AppState>>, Query(query): Query<StartQuery>) -> JsonResult {
    let started = match (query.connection, query.plugin, query.display_name) {
        (Some(id), None, None) => app.connections.reconnect_oauth(&id).await?,
        (None, Some(plugin), Some(name)) => app.connections.start_oauth(&plugin, &name).await?,
        _ => return Err(ApiError::bad_request("give plugin and display_name, or connection")),
    };
    Ok(axum::Json(json!(started)))
}

/// The provider's redirect back to `/oauth/callback`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `GET /oauth/callback` on the public listener: no admin token (the
/// browser comes from the provider); the one-time `state` is what ties it
/// to a flow an operator started. Answers a short page, never a token.
#[utoipa::path(get, path = "/oauth/callback", tag = "connections", security(()), params(Callback),
    responses(
        (status = 200, description = "A short page: connected", content_type = "text/plain", body = String),
        (status = 400, description = "The provider did not authorize, or code or state is missing", content_type = "text/plain", body = String),
        (status = 404, description = "No flow with this state (or it expired)", content_type = "text/plain", body = String),
        (status = 502, description = "The provider's token endpoint failed", content_type = "text/plain", body = String),
    ))]
pub async fn oauth_callback(State(app): State<Arc<AppState>>, Query(callback): Query<Callback>) -> Response {
    let page = |status: StatusCode, text: String| (status, [("content-type", "text/plain; charset=utf-8")], text).into_response();
    if let Some(error) = callback.error {
        return page(StatusCode::BAD_REQUEST, format!("The provider did not authorize: {}", crate::contract::cut(&error, 80)));
    }
    let (Some(code), Some(state)) = (callback.code, callback.state) else {
        return page(StatusCode::BAD_REQUEST, "Missing code or state.".into());
    };
    match app.connections.finish_oauth(&state, &code).await {
        Ok(row) => page(StatusCode::OK, format!("Connected {} ({}). You can close this window.", row.display_name, row.id)),
        Err(error) => {
            tracing::warn!(%error, "OAuth2 callback failed");
            let status = ApiError::from(error).status();
            page(status, "The connection could not be made; the server log says why.".into())
        }
    }
}
