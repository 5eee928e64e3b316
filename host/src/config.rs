//! Settings of `triggerhost serve`: defaults, then `triggerhost.toml`, then
//! `TRIGGERHOST_*` environment variables, then flags. Defaults work with no
//! file at all; an unknown key or variable is an error, not ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::runtime::{Limits, RuntimeConfig};
use crate::capabilities::http::OutboundLimits;
use crate::capabilities::kv::KvQuota;

/// The most headers `[http] max_headers` may allow: hyper sizes a parse
/// buffer by it for every request head.
const MAX_HEADERS: usize = 1000;

/// The most connections `[http] max_connections` may allow.
const MAX_CONNECTIONS: usize = 1_000_000;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "triggerhost.toml";

/// Every `TRIGGERHOST_*` variable the binary reads; any other is a typo.
const KNOWN_ENV: &[&str] = &[
    "TRIGGERHOST_CONFIG",
    "TRIGGERHOST_LISTEN",
    "TRIGGERHOST_DATA_DIR",
    "TRIGGERHOST_DATABASE_URL",
    "TRIGGERHOST_ADMIN_TOKEN",
    "TRIGGERHOST_PUBLIC_URL",
    "TRIGGERHOST_SECRET_KEY_FILE",
    "TRIGGERHOST_SERVER",
    "TRIGGERHOST_LOG",
    "TRIGGERHOST_LOG_FORMAT",
];

/// A configuration problem, naming the file, key or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown or mistyped key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the key and line.
        message: String,
    },
    /// A `TRIGGERHOST_*` variable the binary does not know.
    #[error("unknown environment variable {0} (known: {known})", known = KNOWN_ENV.join(", "))]
    UnknownEnv(String),
    /// A value out of range.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// `triggerhost.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// Where the database, component blobs and generated admin token live.
    pub data_dir: Option<PathBuf>,
    /// `sqlite://...` (one node) or `postgres://...` (one or several nodes).
    pub database_url: Option<String>,
    /// Bearer token of the admin API.
    pub admin_token: Option<String>,
    /// Base of webhook URLs.
    pub public_url: Option<String>,
    /// The key that encrypts secrets at rest.
    pub secret_key_file: Option<PathBuf>,
    /// Default per-call limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Webhook ingress.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// Connections to the HTTP listener.
    #[serde(default)]
    pub http: HttpConfig,
    /// Database tuning.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Outbound HTTP of connectors.
    #[serde(default)]
    pub outbound: OutboundConfig,
    /// The poll scheduler.
    #[serde(default)]
    pub polling: PollingConfig,
    /// Renewal of provider subscriptions that expire.
    #[serde(default)]
    pub renewal: RenewalConfig,
    /// Several nodes on one PostgreSQL: leases and propagation.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Checks of registrations at the provider.
    #[serde(default)]
    pub sync: SyncConfig,
    /// How long events and failure records are kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Push delivery to destinations.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// What connectors write on their calls.
    #[serde(default)]
    pub logs: LogsConfig,
    /// `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Traces.
    #[serde(default)]
    pub tracing: TracingConfig,
}

/// `[tracing]`: where spans go besides the log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// An OTLP/HTTP traces endpoint (JSON encoding), e.g.
    /// `http://127.0.0.1:4318/v1/traces`; unset, no spans are exported.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` the spans carry (default `triggerhost`).
    pub service_name: Option<String>,
}

/// `[metrics]`: what `/metrics` labels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Label call series and health gauges with each trigger (default
    /// true); false keeps one series set per plugin, for very large installs.
    pub per_trigger: Option<bool>,
}

/// `[logs]`: what is kept of what connectors write (the `log` import,
/// stdout and stderr) on their calls.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Each trigger's newest calls' logs kept (default 200).
    pub keep_per_trigger: Option<u32>,
    /// Calls' logs kept per trigger a second at most, in bursts of twice
    /// that (default 10); the calls skipped are counted on the next kept.
    pub per_trigger_per_s: Option<u32>,
}

/// `[delivery]`: push delivery to destinations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Destinations may be loopback, private or link-local addresses, and
    /// plain `http` (default false: https to public addresses only).
    pub allow_private: Option<bool>,
    /// Multiplies the retry schedule (default 1.0; tests make it small).
    pub retry_scale: Option<f64>,
    /// One attempt's time limit, seconds (default 15).
    pub timeout_s: Option<u64>,
    /// Attempts in flight over all destinations (default 64).
    pub workers: Option<usize>,
    /// Attempts in flight per destination unless it sets its own (default 16).
    pub max_in_flight: Option<usize>,
    /// A destination whose every attempt failed this long is disabled,
    /// seconds (default 432000, 5 days).
    pub disable_after_s: Option<u64>,
    /// How long a rotated-out secret still signs, seconds (default 86400).
    pub rotation_grace_s: Option<u64>,
}

/// `[retention]`: what is kept, and how the sweep runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long events and failure records are kept, seconds (default
    /// 2592000, 30 days); a trigger's `retention_s` overrides it.
    pub max_age_s: Option<u64>,
    /// How many of a trigger's newest events are kept at most (default: no
    /// cap); a trigger's `retention_events` overrides it.
    pub max_events: Option<u64>,
    /// How long a redelivery stays a duplicate after its event was
    /// received, seconds, even once the event was removed (default
    /// max_age_s + 7 days; at least max_age_s).
    pub dedupe_window_s: Option<u64>,
    /// How often the sweep runs, seconds (default 60).
    pub sweep_every_s: Option<u64>,
    /// Rows removed per transaction (default 1000).
    pub batch: Option<u32>,
}

/// `[sync]`: how often each registration is checked at the provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// The mean time between two checks of one registration, seconds
    /// (default 3600; each wait is jittered by up to a tenth).
    pub interval_s: Option<u64>,
}

/// `[renewal]`: when subscriptions that expire are renewed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalConfig {
    /// How long before expiry to renew, seconds (default 3600; at most half
    /// the subscription's remaining lifetime).
    pub margin_s: Option<u64>,
    /// The wait after a first failed renewal, seconds (default 10; doubled
    /// per failure).
    pub min_backoff_s: Option<u64>,
    /// The longest wait between renewal attempts, seconds (default 900).
    pub max_backoff_s: Option<u64>,
}

/// `[cluster]`: several nodes on one PostgreSQL database.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How long a node's lease on a job lasts unless renewed, milliseconds
    /// (default 15000): the longest a dead node's polls and deliveries wait
    /// for another node. Renewed every third of it.
    pub lease_ms: Option<u64>,
    /// How often each node compares what it serves with the database, in
    /// case an announcement of a change was missed, milliseconds (default
    /// 5000).
    pub reconcile_ms: Option<u64>,
}

/// `[polling]`: the poll scheduler.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingConfig {
    /// The shortest poll interval a trigger may ask for, seconds (default 10).
    pub min_interval_s: Option<u32>,
    /// Polls running at once over all triggers (default 32).
    pub max_concurrent: Option<usize>,
    /// The longest wait after failures, seconds (default 3600).
    pub max_backoff_s: Option<u64>,
    /// How long a polling trigger may go without a successful poll before
    /// it is shown as unhealthy, seconds (default 3600).
    pub unhealthy_after_s: Option<u64>,
}

/// `[outbound]`: how connectors' granted requests leave the host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Names the host resolves itself, like a hosts file:
    /// `resolve = { "api.internal" = ["10.0.0.5"] }`. The addresses still
    /// pass the private-address check: a grant must name a private one.
    #[serde(default)]
    pub resolve: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
    /// Connections one plugin's calls may have open at once.
    pub connections_per_plugin: Option<usize>,
}

/// `[limits]`: the per-call limits every plugin gets by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Fuel per call.
    pub fuel: Option<u64>,
    /// Wall-clock milliseconds per call.
    pub wall_clock_ms: Option<u64>,
    /// Linear memory per instance, MiB.
    pub memory_mib: Option<usize>,
    /// Events per call.
    pub max_events: Option<usize>,
    /// Output bytes per call.
    pub max_output_bytes: Option<usize>,
    /// Log bytes kept per call.
    pub max_log_bytes: Option<usize>,
    /// Calls running at once over all plugins.
    pub concurrent_calls: Option<usize>,
    /// Calls running at once for one plugin.
    pub concurrent_calls_per_plugin: Option<usize>,
    /// Idle instances kept for plugins granted reuse, across all plugins.
    pub warm_instances: Option<usize>,
    /// Keys one trigger may keep.
    pub kv_max_keys: Option<usize>,
    /// Bytes of one kv value.
    pub kv_max_value_bytes: Option<usize>,
    /// Bytes of all of one trigger's kv entries.
    pub kv_max_total_bytes: Option<usize>,
    /// Outbound requests per call, redirects included.
    pub outbound_requests_per_call: Option<usize>,
    /// Bytes of one outbound response body.
    pub outbound_max_response_bytes: Option<usize>,
}

/// `[ingress]`: webhook endpoint limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// Largest accepted request body.
    pub max_body_bytes: Option<usize>,
    /// Sustained deliveries per second per trigger.
    pub rate_per_second: Option<u32>,
    /// Deliveries per trigger allowed in a burst above the rate.
    pub burst: Option<u32>,
    /// Milliseconds a sender has to send the whole body.
    pub body_timeout_ms: Option<u64>,
    /// Bytes of request bodies and connector output held in memory across
    /// all deliveries at once.
    pub max_buffered_bytes: Option<usize>,
}

/// `[http]`: what any connection to the listener may cost.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections served at once; more wait in the backlog.
    pub max_connections: Option<usize>,
    /// Milliseconds a client has to send a request's head.
    pub header_read_timeout_ms: Option<u64>,
    /// Milliseconds a response write may wait on a client that stopped reading.
    pub write_timeout_ms: Option<u64>,
    /// Headers per request.
    pub max_headers: Option<usize>,
    /// Bytes of request line and headers.
    pub max_header_bytes: Option<usize>,
}

/// `[database]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// How long a write waits for a locked database before the request gets
    /// 503 with Retry-After.
    pub busy_timeout_ms: Option<u64>,
}

/// Outbound HTTP settings.
#[derive(Debug, Clone, Default)]
pub struct OutboundSettings {
    /// Names answered without DNS.
    pub resolve: std::collections::HashMap<String, Vec<std::net::IpAddr>>,
    /// Connections per plugin.
    pub connections_per_plugin: usize,
}

/// Values from flags or the environment (clap fills both); they win over the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "TRIGGERHOST_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: ./data].
    #[arg(long, env = "TRIGGERHOST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/triggerhost.db].
    #[arg(long, env = "TRIGGERHOST_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Admin API token [default: generated into <data-dir>/admin_token].
    #[arg(long, env = "TRIGGERHOST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Base of webhook URLs [default: http://<listen>].
    #[arg(long, env = "TRIGGERHOST_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Key that encrypts secrets at rest [default: generated into <data-dir>/secret.key].
    #[arg(long, env = "TRIGGERHOST_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

/// Webhook ingress settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressSettings {
    /// Largest body accepted; larger gets 413.
    pub max_body_bytes: usize,
    /// Per-trigger sustained rate; above it 429.
    pub rate_per_second: u32,
    /// Per-trigger burst.
    pub burst: u32,
    /// Time to receive a whole body; past it 408.
    pub body_timeout: Duration,
    /// Bytes of bodies and connector output held at once across all
    /// deliveries; past it 503.
    pub max_buffered_bytes: usize,
}

/// Listener settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send a request's head; past it the connection is closed.
    pub header_read_timeout: Duration,
    /// Time a write may make no progress; past it the connection is closed.
    pub write_timeout: Duration,
    /// Headers per request; past it 431.
    pub max_headers: usize,
    /// Bytes of request head; past it 431.
    pub max_header_bytes: usize,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Admin token, if configured (else read or generated in the data dir).
    pub admin_token: Option<String>,
    /// Public base URL, if configured (else `http://<bound address>`).
    pub public_url: Option<String>,
    /// The secret key file (generated, 0600, if missing).
    pub secret_key_file: PathBuf,
    /// Default per-call limits.
    pub limits: Limits,
    /// Calls at once over all plugins, and for one plugin.
    pub concurrent_calls: (usize, usize),
    /// Idle instances kept for reuse at most.
    pub warm_instances: usize,
    /// Webhook ingress.
    pub ingress: IngressSettings,
    /// The listener.
    pub http: HttpSettings,
    /// How long a write waits on a locked database.
    pub busy_timeout: Duration,
    /// Outbound HTTP of connectors.
    pub outbound: OutboundSettings,
    /// The shortest poll interval, seconds.
    pub min_poll_interval_s: u32,
    /// The poll scheduler.
    pub poller: crate::poller::PollerSettings,
    /// When subscriptions that expire are renewed.
    pub renewal: crate::renewal::RenewalSettings,
    /// How often registrations are checked.
    pub sync: crate::sync::SyncSettings,
    /// What is kept, and how the sweep runs.
    pub retention: crate::retention::RetentionSettings,
    /// Push delivery.
    pub delivery: crate::delivery::DeliverySettings,
    /// Leases and propagation between nodes.
    pub cluster: crate::cluster::ClusterSettings,
    /// `[logs]`.
    pub logs: crate::call_logs::LogSettings,
    /// `[metrics]`.
    pub metrics: crate::metrics::MetricsSettings,
    /// `[tracing]`: the OTLP endpoint and service name, when spans are exported.
    pub otlp: Option<(url::Url, String)>,
}

impl Settings {
    /// Resolves settings from an optional file, the environment and flags.
    /// `config_path` is `--config`; without it `triggerhost.toml` is read if present.
    pub fn resolve(config_path: Option<&Path>, args: &ServeArgs) -> Result<Settings, ConfigError> {
        check_env(std::env::vars().map(|(k, _)| k))?;
        let file = match config_path {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => read_file(Path::new(DEFAULT_CONFIG_FILE))?,
            None => FileConfig::default(),
        };
        Settings::merge(file, args)
    }

    /// Layers `args` over `file` over the defaults.
    pub fn merge(file: FileConfig, args: &ServeArgs) -> Result<Settings, ConfigError> {
        let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = args
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("triggerhost.db").display()));
        if crate::store::Dialect::of_url(&database_url).is_none() {
            return Err(ConfigError::Invalid {
                key: "database_url",
                message: "must start with sqlite:// or postgres://".into(),
            });
        }
        let secret_key_file =
            args.secret_key_file.clone().or(file.secret_key_file).unwrap_or_else(|| data_dir.join("secret.key"));
        let admin_token = args.admin_token.clone().or(file.admin_token);
        if admin_token.as_ref().is_some_and(|token| token.len() < 16) {
            return Err(ConfigError::Invalid { key: "admin_token", message: "must be at least 16 characters".into() });
        }
        let public_url = args.public_url.clone().or(file.public_url).map(|url| url.trim_end_matches('/').to_owned());
        if public_url.as_ref().is_some_and(|url| !(url.starts_with("http://") || url.starts_with("https://"))) {
            return Err(ConfigError::Invalid { key: "public_url", message: "must start with http:// or https://".into() });
        }

        let defaults = Limits::default();
        let l = file.limits;
        let limits = Limits {
            fuel: l.fuel.unwrap_or(defaults.fuel),
            wall_clock: l.wall_clock_ms.map(Duration::from_millis).unwrap_or(defaults.wall_clock),
            memory_bytes: l.memory_mib.map(|mib| mib.saturating_mul(1 << 20)).unwrap_or(defaults.memory_bytes),
            max_events: l.max_events.unwrap_or(defaults.max_events),
            max_output_bytes: l.max_output_bytes.unwrap_or(defaults.max_output_bytes),
            max_log_bytes: l.max_log_bytes.unwrap_or(defaults.max_log_bytes),
            kv: KvQuota {
                max_keys: l.kv_max_keys.unwrap_or(defaults.kv.max_keys),
                max_value_bytes: l.kv_max_value_bytes.unwrap_or(defaults.kv.max_value_bytes),
                max_total_bytes: l.kv_max_total_bytes.unwrap_or(defaults.kv.max_total_bytes),
                ..defaults.kv
            },
            outbound: OutboundLimits {
                requests_per_call: l.outbound_requests_per_call.unwrap_or(defaults.outbound.requests_per_call),
                max_response_bytes: l.outbound_max_response_bytes.unwrap_or(defaults.outbound.max_response_bytes),
            },
        };
        let runtime = RuntimeConfig::default();
        let concurrent_calls = (
            l.concurrent_calls.unwrap_or(runtime.max_concurrent_calls),
            l.concurrent_calls_per_plugin.unwrap_or(runtime.max_concurrent_calls_per_plugin),
        );
        let outbound = OutboundSettings {
            resolve: file.outbound.resolve.into_iter().collect(),
            connections_per_plugin: file.outbound.connections_per_plugin.unwrap_or(runtime.outbound_connections_per_plugin),
        };
        if outbound.connections_per_plugin == 0 {
            return Err(ConfigError::Invalid { key: "outbound.connections_per_plugin", message: "must be at least 1".into() });
        }
        let warm_instances = l.warm_instances.unwrap_or(runtime.max_warm_instances);
        RuntimeConfig {
            default_limits: limits.clone(),
            max_concurrent_calls: concurrent_calls.0,
            max_concurrent_calls_per_plugin: concurrent_calls.1,
            max_warm_instances: warm_instances,
            ..runtime
        }
        .validate()
        .map_err(|e| ConfigError::Invalid { key: "limits", message: e.to_string() })?;

        let i = file.ingress;
        let ingress = IngressSettings {
            max_body_bytes: i.max_body_bytes.unwrap_or(1 << 20),
            rate_per_second: i.rate_per_second.unwrap_or(200),
            burst: i.burst.unwrap_or(400),
            body_timeout: Duration::from_millis(i.body_timeout_ms.unwrap_or(10_000)),
            max_buffered_bytes: i.max_buffered_bytes.unwrap_or(256 << 20),
        };
        if ingress.rate_per_second == 0 {
            return Err(ConfigError::Invalid { key: "ingress.rate_per_second", message: "must be at least 1".into() });
        }
        if ingress.body_timeout.is_zero() {
            return Err(ConfigError::Invalid { key: "ingress.body_timeout_ms", message: "must be at least 1".into() });
        }
        // One delivery may hold a full body and a full output at once.
        let one_delivery = ingress.max_body_bytes.saturating_add(limits.max_output_bytes);
        if ingress.max_buffered_bytes < one_delivery {
            return Err(ConfigError::Invalid {
                key: "ingress.max_buffered_bytes",
                message: format!(
                    "must be at least ingress.max_body_bytes + limits.max_output_bytes ({one_delivery})"
                ),
            });
        }
        let h = file.http;
        let http = HttpSettings {
            max_connections: h.max_connections.unwrap_or(1024),
            header_read_timeout: Duration::from_millis(h.header_read_timeout_ms.unwrap_or(10_000)),
            write_timeout: Duration::from_millis(h.write_timeout_ms.unwrap_or(30_000)),
            max_headers: h.max_headers.unwrap_or(100),
            max_header_bytes: h.max_header_bytes.unwrap_or(64 << 10),
        };
        for (key, zero) in [
            ("http.max_connections", http.max_connections == 0),
            ("http.header_read_timeout_ms", http.header_read_timeout.is_zero()),
            ("http.write_timeout_ms", http.write_timeout.is_zero()),
            ("http.max_headers", http.max_headers == 0),
            ("http.max_header_bytes", http.max_header_bytes == 0),
        ] {
            if zero {
                return Err(ConfigError::Invalid { key, message: "must be at least 1".into() });
            }
        }
        if http.max_headers > MAX_HEADERS {
            return Err(ConfigError::Invalid { key: "http.max_headers", message: format!("must be at most {MAX_HEADERS}") });
        }
        if http.max_connections > MAX_CONNECTIONS {
            return Err(ConfigError::Invalid {
                key: "http.max_connections",
                message: format!("must be at most {MAX_CONNECTIONS}"),
            });
        }
        let busy_timeout = Duration::from_millis(file.database.busy_timeout_ms.unwrap_or(5000));
        let p = file.polling;
        let min_poll_interval_s = p.min_interval_s.unwrap_or(10);
        let defaults = crate::poller::PollerSettings::default();
        let poller = crate::poller::PollerSettings {
            max_concurrent: p.max_concurrent.unwrap_or(defaults.max_concurrent),
            max_backoff: p.max_backoff_s.map(Duration::from_secs).unwrap_or(defaults.max_backoff),
            unhealthy_after: p.unhealthy_after_s.map(Duration::from_secs).unwrap_or(defaults.unhealthy_after),
        };
        let r = file.renewal;
        let defaults = crate::renewal::RenewalSettings::default();
        let renewal = crate::renewal::RenewalSettings {
            margin: r.margin_s.map(Duration::from_secs).unwrap_or(defaults.margin),
            min_backoff: r.min_backoff_s.map(Duration::from_secs).unwrap_or(defaults.min_backoff),
            max_backoff: r.max_backoff_s.map(Duration::from_secs).unwrap_or(defaults.max_backoff),
        };
        if renewal.max_backoff < renewal.min_backoff {
            return Err(ConfigError::Invalid {
                key: "renewal.max_backoff_s",
                message: "must be at least renewal.min_backoff_s".into(),
            });
        }
        let sync = crate::sync::SyncSettings {
            interval: file.sync.interval_s.map(Duration::from_secs).unwrap_or(crate::sync::SyncSettings::default().interval),
        };
        let retention = retention_settings(&file.retention)?;
        let delivery = delivery_settings(&file.delivery)?;
        let cluster_defaults = crate::cluster::ClusterSettings::default();
        let cluster = crate::cluster::ClusterSettings {
            lease: file.cluster.lease_ms.map(Duration::from_millis).unwrap_or(cluster_defaults.lease),
            reconcile: file.cluster.reconcile_ms.map(Duration::from_millis).unwrap_or(cluster_defaults.reconcile),
        };
        if cluster.lease < Duration::from_millis(300) || cluster.reconcile < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                key: "cluster",
                message: "lease_ms must be at least 300 and reconcile_ms at least 100".into(),
            });
        }
        let log_defaults = crate::call_logs::LogSettings::default();
        let logs = crate::call_logs::LogSettings {
            keep_per_trigger: file.logs.keep_per_trigger.unwrap_or(log_defaults.keep_per_trigger),
            per_trigger_per_s: file.logs.per_trigger_per_s.unwrap_or(log_defaults.per_trigger_per_s),
        };
        for (key, zero) in [
            ("logs.keep_per_trigger", logs.keep_per_trigger == 0),
            ("logs.per_trigger_per_s", logs.per_trigger_per_s == 0),
            ("sync.interval_s", sync.interval.is_zero()),
            ("retention.max_age_s", retention.max_age.is_zero()),
            ("retention.max_events", retention.max_events == Some(0)),
            ("retention.sweep_every_s", retention.sweep_every.is_zero()),
            ("retention.batch", retention.batch == 0),
            ("delivery.timeout_s", delivery.timeout.is_zero()),
            ("delivery.workers", delivery.workers == 0),
            ("delivery.max_in_flight", delivery.max_in_flight == 0),
            ("delivery.disable_after_s", delivery.disable_after.is_zero()),
            ("renewal.margin_s", renewal.margin.is_zero()),
            ("renewal.min_backoff_s", renewal.min_backoff.is_zero()),
            ("polling.min_interval_s", min_poll_interval_s == 0),
            ("polling.max_concurrent", poller.max_concurrent == 0),
            ("polling.max_backoff_s", poller.max_backoff.is_zero()),
            ("polling.unhealthy_after_s", poller.unhealthy_after.is_zero()),
        ] {
            if zero {
                return Err(ConfigError::Invalid { key, message: "must be at least 1".into() });
            }
        }
        Ok(Settings {
            listen,
            data_dir,
            database_url,
            admin_token,
            public_url,
            secret_key_file,
            limits,
            concurrent_calls,
            warm_instances,
            ingress,
            http,
            busy_timeout,
            outbound,
            min_poll_interval_s,
            poller,
            renewal,
            sync,
            retention,
            delivery,
            cluster,
            logs,
            otlp: otlp_settings(&file.tracing)?,
            metrics: crate::metrics::MetricsSettings {
                per_trigger: file.metrics.per_trigger.unwrap_or(crate::metrics::MetricsSettings::default().per_trigger),
            },
        })
    }
}

/// `[tracing]`: the endpoint must be an `http://` URL (the exporter speaks
/// plain HTTP, to a collector beside the host).
fn otlp_settings(t: &TracingConfig) -> Result<Option<(url::Url, String)>, ConfigError> {
    let Some(endpoint) = &t.otlp_endpoint else { return Ok(None) };
    let invalid = |message: &str| ConfigError::Invalid { key: "tracing.otlp_endpoint", message: message.into() };
    let url = url::Url::parse(endpoint).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "http" || url.host().is_none() {
        return Err(invalid("must be an http:// URL, e.g. http://127.0.0.1:4318/v1/traces"));
    }
    let service = t.service_name.clone().unwrap_or_else(|| "triggerhost".into());
    Ok(Some((url, service)))
}

/// `[delivery]` over the defaults.
fn delivery_settings(d: &DeliveryConfig) -> Result<crate::delivery::DeliverySettings, ConfigError> {
    let defaults = crate::delivery::DeliverySettings::default();
    let retry_scale = d.retry_scale.unwrap_or(defaults.retry_scale);
    if !(retry_scale.is_finite() && retry_scale > 0.0 && retry_scale <= 1000.0) {
        return Err(ConfigError::Invalid { key: "delivery.retry_scale", message: "must be above 0 and at most 1000".into() });
    }
    Ok(crate::delivery::DeliverySettings {
        allow_private: d.allow_private.unwrap_or(defaults.allow_private),
        retry_scale,
        timeout: d.timeout_s.map(Duration::from_secs).unwrap_or(defaults.timeout),
        workers: d.workers.unwrap_or(defaults.workers),
        max_in_flight: d.max_in_flight.unwrap_or(defaults.max_in_flight),
        disable_after: d.disable_after_s.map(Duration::from_secs).unwrap_or(defaults.disable_after),
        rotation_grace: d.rotation_grace_s.map(Duration::from_secs).unwrap_or(defaults.rotation_grace),
    })
}

/// `[retention]` over the defaults; the dedupe window follows a changed
/// retention period unless set, and never ends before it.
fn retention_settings(r: &RetentionConfig) -> Result<crate::retention::RetentionSettings, ConfigError> {
    let defaults = crate::retention::RetentionSettings::default();
    let max_age = r.max_age_s.map(Duration::from_secs).unwrap_or(defaults.max_age);
    let dedupe_window = match r.dedupe_window_s {
        Some(seconds) => Duration::from_secs(seconds),
        None => max_age.saturating_add(defaults.dedupe_window.saturating_sub(defaults.max_age)),
    };
    if dedupe_window < max_age {
        return Err(ConfigError::Invalid {
            key: "retention.dedupe_window_s",
            message: "must be at least retention.max_age_s: a redelivery must not outlive its dedupe key".into(),
        });
    }
    Ok(crate::retention::RetentionSettings {
        max_age,
        max_events: r.max_events,
        dedupe_window,
        sweep_every: r.sweep_every_s.map(Duration::from_secs).unwrap_or(defaults.sweep_every),
        batch: r.batch.unwrap_or(defaults.batch),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
}

/// Rejects `TRIGGERHOST_*` variables the binary does not read.
pub fn check_env(names: impl Iterator<Item = String>) -> Result<(), ConfigError> {
    for name in names {
        if name.starts_with("TRIGGERHOST_") && !KNOWN_ENV.contains(&name.as_str()) {
            return Err(ConfigError::UnknownEnv(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_need_no_file() {
        let s = Settings::merge(FileConfig::default(), &ServeArgs::default()).expect("defaults are valid");
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert_eq!(s.database_url, "sqlite://./data/triggerhost.db");
        assert_eq!(s.ingress.max_body_bytes, 1 << 20);
        assert_eq!(s.limits, Limits::default());
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = parse("listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/th\"\n[limits]\nfuel = 5\n").expect("valid");
        let args = ServeArgs { listen: Some(SocketAddr::from(([0, 0, 0, 0], 1))), ..ServeArgs::default() };
        let s = Settings::merge(file, &args).expect("valid");
        assert_eq!(s.listen.to_string(), "0.0.0.0:1");
        assert_eq!(s.database_url, "sqlite:///srv/th/triggerhost.db");
        assert_eq!(s.limits.fuel, 5);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = parse("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").expect_err("unknown key");
        assert!(error.to_string().contains("listen_port"), "{error}");
        let error = parse("[limits]\nfuell = 3\n").expect_err("unknown nested key");
        assert!(error.to_string().contains("fuell"), "{error}");
    }

    #[test]
    fn unknown_env_vars_are_errors() {
        let names = ["PATH".to_owned(), "TRIGGERHOST_LISTEN".to_owned()];
        assert!(check_env(names.into_iter()).is_ok());
        let error = check_env(["TRIGGERHOST_LISTNE".to_owned()].into_iter()).expect_err("typo");
        assert!(error.to_string().contains("TRIGGERHOST_LISTNE"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let args = ServeArgs { admin_token: Some("short".into()), ..ServeArgs::default() };
        let error = Settings::merge(FileConfig::default(), &args).expect_err("short token");
        assert!(error.to_string().contains("admin_token"));
        let args = ServeArgs { database_url: Some("mysql://x".into()), ..ServeArgs::default() };
        assert!(Settings::merge(FileConfig::default(), &args).is_err());
    }

    #[test]
    fn delivery_defaults_to_public_https_and_the_svix_schedule() {
        let settings = Settings::merge(FileConfig::default(), &ServeArgs::default()).expect("defaults");
        assert_eq!(settings.delivery, crate::delivery::DeliverySettings::default());
        assert!(!settings.delivery.allow_private);
        assert_eq!(settings.delivery.retry_scale, 1.0);
        let file = parse("[delivery]\nallow_private = true\nretry_scale = 0.001\n").expect("parses");
        let settings = Settings::merge(file, &ServeArgs::default()).expect("settings");
        assert!(settings.delivery.allow_private && settings.delivery.retry_scale == 0.001);
        assert!(parse("[delivery]\nallow_privat = true\n").is_err(), "unknown keys are errors");
    }

    #[test]
    fn limits_that_cannot_work_are_refused_at_start() {
        for (text, expected) in [
            ("[limits]\nfuel = 0\n", "fuel"),
            ("[limits]\nwall_clock_ms = 0\n", "wall_clock"),
            ("[limits]\nmemory_mib = 0\n", "memory"),
            // Past the pool's slot: refused, not a silent change of allocator.
            ("[limits]\nmemory_mib = 4096\n", "memory"),
            ("[limits]\nconcurrent_calls = 0\n", "max_concurrent_calls"),
            ("[limits]\nwarm_instances = 100000\n", "max_warm_instances"),
            ("[http]\nmax_connections = 0\n", "http.max_connections"),
            ("[ingress]\nbody_timeout_ms = 0\n", "ingress.body_timeout_ms"),
            ("[delivery]\nretry_scale = 0.0\n", "delivery.retry_scale"),
            ("[delivery]\nretry_scale = nan\n", "delivery.retry_scale"),
            ("[delivery]\nworkers = 0\n", "delivery.workers"),
            ("[delivery]\nmax_in_flight = 0\n", "delivery.max_in_flight"),
            ("[delivery]\ntimeout_s = 0\n", "delivery.timeout_s"),
            ("[delivery]\ndisable_after_s = 0\n", "delivery.disable_after_s"),
        ] {
            let file = parse(text).expect("parses");
            let error = Settings::merge(file, &ServeArgs::default()).expect_err(text);
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }
}
