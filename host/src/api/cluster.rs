//! `GET /api/v1/cluster`, and the announcement of every change an
//! operator makes through the API to the other nodes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use crate::app::AppState;
use crate::cluster::changes::Change;

/// `GET /api/v1/cluster`: the nodes alive, their heartbeats, and the
/// leases (what each node runs).
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses(
        (status = 200, description = "`{node, shared, lease_ms, nodes, leases}`: the nodes alive and what each runs", body = Object),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn overview(State(app): State<Arc<AppState>>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (nodes, leases) = app.cluster.overview().await?;
    Ok(axum::Json(json!({
        "node": app.cluster.node_id(),
        "shared": app.cluster.is_shared(),
        "lease_ms": u64::try_from(app.cluster.settings().lease.as_millis()).unwrap_or(u64::MAX),
        "nodes": nodes,
        "leases": leases,
    })))
}

/// After a change made through the API succeeds, tells the other nodes
/// what to reload.
pub async fn announce_changes(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let change = change_of(request.method(), request.uri().path());
    let response = next.run(request).await;
    if let Some(change) = change
        && response.status().is_success()
    {
        app.cluster.announce(change).await;
    }
    response
}

/// What a successful request changes that other nodes serve. An upload
/// names its plugin only in its body: its handler announces it.
fn change_of(method: &Method, path: &str) -> Option<Change> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let segments: Vec<&str> = path.trim_start_matches("/api/v1").trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["plugins", name, ..] => Some(Change::Plugin((*name).to_owned())),
        ["connections", id] if *id != "oauth" => Some(Change::Connection((*id).to_owned())),
        ["triggers", id, "destinations", ..] => Some(Change::Destinations((*id).to_owned())),
        ["triggers", id] | ["triggers", id, "enable" | "disable"] => Some(Change::Trigger((*id).to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Change, Method, change_of};

    #[test]
    fn changes_are_read_from_the_routes_that_make_them() {
        let trigger = || Some(Change::Trigger("trg_1".into()));
        assert_eq!(change_of(&Method::POST, "/triggers/trg_1/enable"), trigger());
        assert_eq!(change_of(&Method::POST, "/api/v1/triggers/trg_1/disable"), trigger());
        assert_eq!(change_of(&Method::PATCH, "/triggers/trg_1"), trigger());
        assert_eq!(change_of(&Method::DELETE, "/triggers/trg_1"), trigger());
        assert_eq!(change_of(&Method::POST, "/plugins/p/activate"), Some(Change::Plugin("p".into())));
        assert_eq!(change_of(&Method::PUT, "/plugins/p/grants"), Some(Change::Plugin("p".into())));
        assert_eq!(
            change_of(&Method::POST, "/triggers/trg_1/destinations/dst_1/rotate-secret"),
            Some(Change::Destinations("trg_1".into()))
        );
        assert_eq!(change_of(&Method::PATCH, "/connections/con_1"), Some(Change::Connection("con_1".into())));
        assert_eq!(change_of(&Method::GET, "/triggers/trg_1"), None);
        assert_eq!(change_of(&Method::POST, "/triggers/trg_1/poll"), None);
        assert_eq!(change_of(&Method::POST, "/triggers"), None, "a new trigger is disabled");
    }
}
