//! The operator's dashboard at `/`: static files compiled into the binary
//! (no bundler, no CDN; it works offline), a client of the admin API.
//!
//! Every dashboard response carries a strict Content-Security-Policy: only
//! the host's own script and style run, nothing inline, no frames, no form
//! posts elsewhere. The script renders connector-authored strings as text.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What a dashboard page may load and do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../ui/index.html");
/// The files under `/ui/`, with their media types.
const ASSETS: [(&str, &str, &str); 2] = [
    ("app.js", "text/javascript; charset=utf-8", include_str!("../ui/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../ui/style.css")),
];

/// The dashboard's routes; they need no token (the page asks for it and
/// sends it to the API itself).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/ui/{file}", get(asset))
}

/// The dashboard page.
#[utoipa::path(get, path = "/", tag = "dashboard", security(()),
    responses((status = 200, description = "The dashboard's page", content_type = "text/html", body = String)))]
pub(crate) async fn index() -> Response {
    dashboard_response("text/html; charset=utf-8", INDEX)
}

/// The dashboard's script and style sheet.
#[utoipa::path(get, path = "/ui/{file}", tag = "dashboard", security(()),
    params(("file" = String, Path, description = "`app.js` or `style.css`")),
    responses(
        (status = 200, description = "The file", body = String),
        (status = 404, description = "No such file", body = crate::api::ErrorBody),
    ))]
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, media_type, text)) => dashboard_response(media_type, text),
        None => crate::api::ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such dashboard file").into_response(),
    }
}

fn dashboard_response(media_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ];
    (headers, body).into_response()
}
