//! The admin API under `/api/v1`: JSON, bearer-token authenticated.

mod cluster;
pub(crate) mod connections;
mod deliveries;
mod error;
mod logs;
pub(crate) mod openapi;
mod plugins;
mod triggers;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

pub use error::{ApiError, ApiJson};
pub use openapi::ErrorBody;

use crate::app::AppState;

/// Largest JSON body the API reads.
pub const JSON_LIMIT: usize = 1 << 20;
/// Largest upload read: one byte over the runtime's component cap, so an
/// oversize component gets the runtime's clear 413.
const UPLOAD_LIMIT: usize = crate::runtime::MAX_COMPONENT_BYTES + 1;

/// The `/api/v1` routes, behind the admin token.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        // Components may be large; every other body is small JSON.
        .route(
            "/plugins",
            post(plugins::upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)).get(plugins::list),
        )
        .route("/plugins/{name}", get(plugins::get))
        .route("/plugins/{name}/activate", post(plugins::activate))
        .route("/plugins/{name}/versions/{version}", delete(plugins::delete_version))
        .route("/plugins/{name}/grants", put(plugins::put_grants))
        .route("/plugins/{name}/oauth-app", put(connections::put_oauth_app))
        .route("/connections", post(connections::create).get(connections::list))
        .route("/connections/oauth/start", get(connections::start_oauth))
        .route("/connections/{id}", get(connections::get).patch(connections::patch).delete(connections::delete))
        .route("/triggers", post(triggers::create).get(triggers::list))
        .route("/triggers/{id}", get(triggers::get).patch(triggers::patch).delete(triggers::delete))
        .route("/triggers/{id}/enable", post(triggers::enable))
        .route("/triggers/{id}/disable", post(triggers::disable))
        .route("/triggers/{id}/events", get(triggers::events))
        .route("/triggers/{id}/stats", get(triggers::stats))
        .route("/triggers/{id}/failures", get(triggers::failures))
        .route("/triggers/{id}/kv", get(triggers::kv))
        .route("/triggers/{id}/logs", get(logs::list))
        .route("/triggers/{id}/poll", post(triggers::poll))
        .route("/triggers/{id}/sync", post(triggers::sync))
        .route("/triggers/{id}/health", get(triggers::health))
        .route("/triggers/{id}/test", post(triggers::test))
        .route("/triggers/{id}/events/replay", post(deliveries::replay))
        .route("/triggers/{id}/destinations", post(deliveries::create).get(deliveries::list))
        .route(
            "/triggers/{id}/destinations/{dest}",
            get(deliveries::get).patch(deliveries::patch).delete(deliveries::delete),
        )
        .route("/triggers/{id}/destinations/{dest}/rotate-secret", post(deliveries::rotate))
        .route("/deliveries", get(deliveries::list_deliveries))
        .route("/deliveries/{id}", get(deliveries::get_delivery))
        .route("/deliveries/{id}/attempts", get(deliveries::attempts))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route("/sources", get(triggers::sources))
        .route("/sources/{id}", get(triggers::source))
        .route("/cluster", get(cluster::overview))
        .fallback(no_such_route)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), cluster::announce_changes))
        .layer(middleware::from_fn_with_state(state, require_admin))
}

/// 404 for a path no route serves (an unknown API route, with the token).
pub(crate) async fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no-such-route", "no such route")
}

/// Rejects requests without `Authorization: Bearer <admin token>`.
async fn require_admin(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !app.admin_token.matches(presented) {
        let mut response =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong admin token").into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}
