//! The HTTP server: shared state, the router, and `serve`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::api;
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
    pub admin_token: String,
    /// Webhook ingress limits.
    pub ingress: IngressSettings,
}

impl AppState {
    /// Opens the store, loads plugins and enabled triggers, starts the committer.
    pub async fn open(settings: &Settings, public_url: String, admin_token: String) -> anyhow::Result<AppState> {
        let runtime = Runtime::new(RuntimeConfig {
            default_limits: settings.limits.clone(),
            max_memory_bytes: RuntimeConfig::default().max_memory_bytes.max(settings.limits.memory_bytes),
            ..RuntimeConfig::default()
        })?;
        let store = Store::open(&settings.database_url, settings.busy_timeout)
            .await
            .with_context(|| format!("opening {}", settings.database_url))?;
        let registry = Arc::new(Registry::open(runtime, store.clone(), &settings.data_dir).await?);
        let triggers =
            Arc::new(Triggers::open(store.clone(), Arc::clone(&registry), public_url, settings.limits.clone()).await?);
        Ok(AppState {
            committer: Committer::start(store.clone()),
            store,
            registry,
            triggers,
            admin_token,
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

/// The admin token: configured, else read from the data dir, else generated
/// there and printed once.
pub fn admin_token(settings: &Settings) -> anyhow::Result<String> {
    if let Some(token) = &settings.admin_token {
        return Ok(token.clone());
    }
    let path = settings.data_dir.join("admin_token");
    match std::fs::read_to_string(&path) {
        Ok(token) if token.trim().len() >= 16 => return Ok(token.trim().to_owned()),
        Ok(_) => anyhow::bail!("{} is too short to be an admin token", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    }
    let token = crate::ids::random_hex(32)?;
    write_private(&path, &token)?;
    println!("generated admin token (saved in {}): {token}", path.display());
    Ok(token)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data dir {}", settings.data_dir.display()))?;
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
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown_signal()).await?;
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
