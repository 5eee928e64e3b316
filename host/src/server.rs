//! The HTTP server: the router over the shared state, and `serve`.

mod listener;
mod stall;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::api;
use crate::app::AppState;
use crate::config::Settings;
use crate::data_dir;
use crate::ingress;

/// The whole HTTP surface, separate from any socket so tests can drive it.
pub fn app(state: Arc<AppState>) -> Router {
    // Ingress reads bodies itself under its own cap; uploads have their own
    // limit on their route.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::serve))
        .route("/hooks/{id}", get(ingress::hook).post(ingress::hook))
        .route(crate::connections::CALLBACK_PATH, get(api::connections::oauth_callback))
        .route("/api/v1/openapi.json", get(api::openapi::document))
        .merge(crate::ui::routes())
        .nest("/api/v1", api::routes(Arc::clone(&state)))
        .fallback(api::no_such_route)
        .layer(DefaultBodyLimit::max(api::JSON_LIMIT))
        .with_state(state)
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// The admin token: configured, else read from the data dir (refused if
/// other users can read it), else generated there (0600) and printed once.
pub fn admin_token(settings: &Settings) -> anyhow::Result<String> {
    data_dir::admin_token(settings.admin_token.as_deref(), &settings.data_dir)
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    data_dir::create(&settings.data_dir)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
    let token = admin_token(&settings)?;
    std::sync::LazyLock::force(&crate::metrics::STARTED);
    if let Some((endpoint, service)) = settings.otlp.clone() {
        crate::telemetry::otlp::start(endpoint, service);
    }
    let state = Arc::new(AppState::open(&settings, public_url.clone(), token).await?);
    let store = state.store.clone();
    // Tests and scripts read this line to find the port.
    println!("triggerhost listening on http://{address} (webhooks at {public_url}/hooks/<trigger-id>)");
    let poll_drain = state.poll_drain.clone();
    let cluster = Arc::clone(&state.cluster);
    listener::serve(listener, app(state), settings.http.clone(), shutdown_signal()).await;
    // Requests in flight are done; polls in flight get as long again.
    if !poll_drain.drain(listener::SHUTDOWN_GRACE).await {
        tracing::warn!("polls still running after the shutdown grace period; their items come again next time");
    }
    // The other nodes take this node's jobs over now, not when its leases expire.
    cluster.leave().await;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
