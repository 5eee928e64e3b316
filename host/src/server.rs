//! The HTTP server: shared state, the router, and `serve`.

mod data_dir;
mod listener;
mod stall;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::api::{self, AdminToken};
use crate::capabilities::Backends;
use crate::capabilities::http::{Outbound, SystemResolver};
use crate::config::{IngressSettings, Settings};
use crate::ingress::{self, Committer};
use crate::registry::Registry;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::Store;
use crate::triggers::Triggers;

/// Everything a request handler may need.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Plugins and versions.
    pub registry: Arc<Registry>,
    /// Trigger lifecycle and the live table.
    pub triggers: Arc<Triggers>,
    /// Group commit of delivered events.
    pub committer: Committer,
    /// The admin API's bearer token.
    pub admin_token: AdminToken,
    /// Webhook ingress limits.
    pub ingress: IngressSettings,
    /// Bytes ingress may hold at once across all deliveries: request bodies
    /// being read or called, and connector output waiting for its commit.
    pub delivery_budget: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Opens the store, loads plugins and enabled triggers, starts the committer.
    pub async fn open(settings: &Settings, public_url: String, admin_token: String) -> anyhow::Result<AppState> {
        let store = Store::open(&settings.database_url, settings.busy_timeout)
            .await
            .with_context(|| format!("opening {}", settings.database_url))?;
        let resolver = SystemResolver::with_table(settings.outbound.resolve.clone());
        let backends = Backends {
            kv: Some(Arc::new(store.clone())),
            outbound: Some(Arc::new(Outbound::new(Arc::new(resolver)).context("outbound TLS settings")?)),
        };
        let config = RuntimeConfig {
            default_limits: settings.limits.clone(),
            max_concurrent_calls: settings.concurrent_calls.0,
            max_concurrent_calls_per_plugin: settings.concurrent_calls.1,
            outbound_connections_per_plugin: settings.outbound.connections_per_plugin,
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::with_backends(config, backends)?;
        let registry = Arc::new(Registry::open(runtime, store.clone(), &settings.data_dir).await?);
        let secrets = data_dir::secret_box(&settings.secret_key_file)?;
        let triggers = Arc::new(
            Triggers::open(store.clone(), Arc::clone(&registry), public_url, settings.limits.clone(), secrets).await?,
        );
        Ok(AppState {
            committer: Committer::start(store.clone()),
            store,
            registry,
            triggers,
            admin_token: AdminToken::new(&admin_token),
            delivery_budget: Arc::new(tokio::sync::Semaphore::new(
                settings.ingress.max_buffered_bytes.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            ingress: settings.ingress.clone(),
        })
    }
}

/// The whole HTTP surface, separate from any socket so tests can drive it.
pub fn app(state: Arc<AppState>) -> Router {
    // Ingress reads bodies itself under its own cap; uploads have their own
    // limit on their route.
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/hooks/{id}", get(ingress::hook).post(ingress::hook))
        .nest("/api/v1", api::routes(Arc::clone(&state)))
        .layer(DefaultBodyLimit::max(api::JSON_LIMIT))
        .with_state(state)
}

/// Prometheus text format: totals over all triggers.
async fn metrics(State(app): State<Arc<AppState>>) -> Result<impl IntoResponse, api::ApiError> {
    let totals = app.store.stats_totals().await?;
    let mut text = String::new();
    for (name, help, value) in [
        ("received", "Webhook deliveries received", totals.received),
        ("accepted", "Deliveries verified and committed", totals.accepted),
        ("rejected", "Deliveries rejected by verify", totals.rejected),
        ("duplicates", "Events dropped as redeliveries", totals.duplicates),
        ("errors", "Failed connector calls", totals.errors),
        ("fuel_used", "Fuel consumed by connector calls", totals.fuel_used),
    ] {
        text.push_str(&format!(
            "# HELP triggerhost_{name}_total {help}\n# TYPE triggerhost_{name}_total counter\ntriggerhost_{name}_total {value}\n"
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
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
    let state = Arc::new(AppState::open(&settings, public_url.clone(), token).await?);
    let store = state.store.clone();
    // Tests and scripts read this line to find the port.
    println!("triggerhost listening on http://{address} (webhooks at {public_url}/hooks/<trigger-id>)");
    listener::serve(listener, app(state), settings.http.clone(), shutdown_signal()).await;
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
