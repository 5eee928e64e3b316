//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every route,
//! generated from the `#[utoipa::path]` attribute on each handler.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{cluster, connections, deliveries, logs, plugins, triggers};

/// The error envelope every failing API route answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable code to match on and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, kebab-case: `not-found`, `bad-request`, `invalid-config`, `conflict`, `busy`, ...
    code: String,
    message: String,
    /// Structured context where there is some: the failing config field,
    /// the missing grants, the triggers a change would break.
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "triggerhost admin API",
        description = "Upload, grant and activate connectors; create triggers; read their events, health, \
                       failures and logs; push events to destinations. Every `/api/v1` route but this \
                       document needs `Authorization: Bearer <admin token>`; failures answer with `ErrorBody`."
    ),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
    paths(
        document,
        crate::ui::index,
        crate::ui::asset,
        crate::server::healthz,
        crate::metrics::serve,
        crate::ingress::hook,
        connections::oauth_callback,
        plugins::upload,
        plugins::list,
        plugins::get,
        plugins::activate,
        plugins::delete_version,
        plugins::put_grants,
        connections::put_oauth_app,
        connections::create,
        connections::list,
        connections::start_oauth,
        connections::get,
        connections::patch,
        connections::delete,
        triggers::create,
        triggers::list,
        triggers::get,
        triggers::patch,
        triggers::delete,
        triggers::enable,
        triggers::disable,
        triggers::events,
        triggers::stats,
        triggers::failures,
        triggers::kv,
        triggers::poll,
        triggers::sync,
        triggers::health,
        triggers::test,
        logs::list,
        deliveries::replay,
        deliveries::create,
        deliveries::list,
        deliveries::get,
        deliveries::patch,
        deliveries::delete,
        deliveries::rotate,
        deliveries::list_deliveries,
        deliveries::get_delivery,
        deliveries::attempts,
        deliveries::retry,
        triggers::sources,
        triggers::source,
        cluster::overview,
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The bearer scheme the admin routes require.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The admin token: `--admin-token`, or the one generated in the data dir"))
            .build();
        components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
    }
}

/// The document, rendered once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default());

/// The document itself (no token needed: it describes, it holds no data).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
        let document: serde_json::Value = serde_json::from_str(&super::DOCUMENT).expect("the document is JSON");
        assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", document["openapi"]);
        assert_eq!(document["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
        assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    }
}
