//! The state every request handler shares: the store, the registry, the
//! triggers, the delivery pipeline and the admin token, opened from the
//! settings. The server routes to handlers over it; the handlers (`api`,
//! `ingress`) depend on it, never on the server.

use std::sync::Arc;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use triggerhost_sdk::signature::constant_time_eq;

use crate::call_logs::CallLogs;
use crate::metrics::CallMetrics;
use crate::cluster::Cluster;
use crate::cluster::changes::{ApplyChanges, Applying, Change};
use crate::capabilities::Backends;
use crate::capabilities::http::{Outbound, SystemResolver};
use crate::config::{IngressSettings, Settings};
use crate::connections::Connections;
use crate::data_dir;
use crate::delivery::Delivery;
use crate::pipeline::Pipeline;
use crate::poller::{self, NextPolls, PollDrain, PollerSettings};
use crate::registry::Registry;
use crate::renewal::RenewalCounters;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::{Committer, Store};
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
    /// Connections and their credentials.
    pub connections: Arc<Connections>,
    /// Deliveries and polls from call to commit.
    pub pipeline: Pipeline,
    /// When each polling trigger polls next.
    pub next_polls: NextPolls,
    /// Stops polling at shutdown, letting the polls in flight finish.
    pub poll_drain: PollDrain,
    /// How polls are scheduled, and when a trigger counts as unhealthy.
    pub poller: PollerSettings,
    /// Push delivery to destinations.
    pub delivery: Arc<Delivery>,
    /// Renewal outcomes since start.
    pub renewals: RenewalCounters,
    /// Rows the retention sweeper removed.
    pub retention: crate::retention::RetentionCounters,
    /// The admin API's bearer token.
    pub admin_token: AdminToken,
    /// Webhook ingress limits.
    pub ingress: IngressSettings,
    /// Bytes ingress may hold at once across all deliveries: request bodies
    /// being read or called, and connector output waiting for its commit.
    pub delivery_budget: Arc<Semaphore>,
    /// This node, its leases, and the changes it announces to the others.
    pub cluster: Arc<Cluster>,
    /// What connectors wrote on their calls.
    pub call_logs: Arc<CallLogs>,
    /// This node's call series for `/metrics`.
    pub call_metrics: Arc<CallMetrics>,
}

impl AppState {
    /// Opens the store, loads plugins and enabled triggers, starts the committer.
    pub async fn open(settings: &Settings, public_url: String, admin_token: String) -> anyhow::Result<AppState> {
        let store = Store::open(&settings.database_url, settings.busy_timeout)
            .await
            .with_context(|| format!("opening {}", settings.database_url))?;
        let node_id = data_dir::node_id(&settings.data_dir)?;
        let cluster = Cluster::join(store.clone(), &settings.database_url, node_id, public_url.clone(), settings.cluster)
            .await
            .context("joining the cluster")?;
        let resolver = SystemResolver::with_table(settings.outbound.resolve.clone());
        let outbound = Arc::new(Outbound::new(Arc::new(resolver)).context("outbound TLS settings")?);
        let backends = Backends { kv: Some(Arc::new(store.clone())), outbound: Some(Arc::clone(&outbound)) };
        let config = RuntimeConfig {
            default_limits: settings.limits.clone(),
            max_concurrent_calls: settings.concurrent_calls.0,
            max_concurrent_calls_per_plugin: settings.concurrent_calls.1,
            max_warm_instances: settings.warm_instances,
            outbound_connections_per_plugin: settings.outbound.connections_per_plugin,
            precompiled_cache: Some(settings.data_dir.join("precompiled")),
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::with_backends(config, backends)?;
        let registry = Arc::new(Registry::open(runtime, store.clone(), &settings.data_dir).await?);
        let secrets = data_dir::secret_box(&settings.secret_key_file)?;
        let delivery = Delivery::start(store.clone(), secrets.clone(), outbound, settings.delivery, Arc::clone(&cluster))
            .await
            .context("starting push delivery")?;
        let connections =
            Arc::new(Connections::open(store.clone(), Arc::clone(&registry), secrets.clone(), public_url.clone(), Arc::clone(&cluster)).await?);
        connections.start_refresher();
        let triggers = Arc::new(
            Triggers::open(
                store.clone(),
                Arc::clone(&registry),
                public_url,
                settings.limits.clone(),
                secrets,
                Arc::clone(&connections),
            )
            .await?
                .with_min_poll_interval(settings.min_poll_interval_s)
                .with_renewal(settings.renewal),
        );
        let delivery_budget =
            Arc::new(Semaphore::new(settings.ingress.max_buffered_bytes.min(Semaphore::MAX_PERMITS)));
        let woken = Arc::clone(&delivery);
        let committer = Committer::start(store.clone(), Arc::new(move |trigger_id: &str| woken.events_committed(trigger_id)));
        let call_logs = Arc::new(CallLogs::start(store.clone(), settings.logs.clone(), cluster.node_id().to_owned()));
        let call_metrics = Arc::new(CallMetrics::new(settings.metrics));
        let pipeline = Pipeline::new(
            store.clone(),
            committer,
            Arc::clone(&triggers),
            Arc::clone(&delivery_budget),
            Arc::clone(&cluster),
            Arc::clone(&call_logs),
            Arc::clone(&call_metrics),
        );
        cluster.follow(Arc::new(FollowOthers {
            connections: Arc::clone(&connections),
            triggers: Arc::clone(&triggers),
            registry: Arc::clone(&registry),
            delivery: Arc::clone(&delivery),
        }));
        let (next_polls, poll_drain) = poller::start(Arc::clone(&triggers), pipeline.clone(), store.clone(), settings.poller);
        let renewals = crate::renewal::start(Arc::clone(&triggers), store.clone(), settings.renewal, Arc::clone(&cluster));
        crate::sync::start(Arc::clone(&triggers), store.clone(), settings.sync, Arc::clone(&cluster));
        let retention = crate::retention::start(store.clone(), settings.retention, Arc::clone(&cluster));
        Ok(AppState {
            delivery,
            pipeline,
            next_polls,
            poll_drain,
            poller: settings.poller,
            renewals,
            retention,
            store,
            registry,
            triggers,
            connections,
            admin_token: AdminToken::new(&admin_token),
            delivery_budget,
            ingress: settings.ingress.clone(),
            cluster,
            call_logs,
            call_metrics,
        })
    }
}

/// Applies other nodes' changes to this node's services.
struct FollowOthers {
    connections: Arc<Connections>,
    triggers: Arc<Triggers>,
    registry: Arc<Registry>,
    delivery: Arc<Delivery>,
}

impl ApplyChanges for FollowOthers {
    fn apply(&self, change: Change) -> Applying<'_> {
        Box::pin(async move {
            let result = match &change {
                Change::Trigger(id) => self.triggers.reload(id).await.map_err(anyhow::Error::from),
                Change::Plugin(name) => self.registry.reload(name).await.map_err(anyhow::Error::from),
                Change::Destinations(trigger) => self.delivery.reload(trigger).await.map_err(anyhow::Error::from),
                Change::Connection(id) => self.connections.reload(id).await.map_err(anyhow::Error::from),
            };
            if let Err(error) = result {
                tracing::warn!(?change, %error, "cannot follow another node's change; the next reconcile tries again");
            }
        })
    }

    fn reconcile(&self) -> Applying<'_> {
        Box::pin(async move {
            // Plugins first: a trigger another node enabled may need a version.
            if let Err(error) = self.registry.reconcile().await {
                tracing::warn!(%error, "cannot reconcile plugins");
            }
            if let Err(error) = self.connections.reconcile().await {
                tracing::warn!(%error, "cannot reconcile connections");
            }
            if let Err(error) = self.triggers.reconcile().await {
                tracing::warn!(%error, "cannot reconcile triggers");
            }
            if let Err(error) = self.delivery.reconcile().await {
                tracing::warn!(%error, "cannot reconcile destinations");
            }
        })
    }
}

/// The admin API's bearer token, kept only as its SHA-256 digest.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// Keeps the digest of `token`.
    pub fn new(token: &str) -> Self {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token. Digests of equal length are
    /// compared in constant time, so neither where the tokens differ nor
    /// how long the real one is shows in the timing.
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(&Sha256::digest(presented.as_bytes()), &self.0)
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}
