//! Trigger lifecycle: create (config validated against the trigger's JSON
//! Schema), enable and disable (calling `on-enable` / `on-disable`), patch,
//! delete; and the in-memory table of enabled triggers that ingress reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::contract::{Strategy, TriggerContext};
use crate::failures::{call_failure, connector_failure};
use crate::registry::{ConfigProblem, LoadedPlugin, Registry, RegistryError};
use crate::runtime::{CallScope, Limits};
use crate::secrets::{SecretBox, SecretError};
use crate::token_bucket::TokenBucket;

mod activation;
mod renewal;
mod sealed;
mod sharing;
mod sources;
mod registration;
mod remote;

pub use activation::Breakage;

pub use sealed::REDACTED;
pub use renewal::RenewalOutcome;
pub use sharing::Wanted;
pub use sources::{Member, SourceView};
pub use registration::SyncOutcome;
use sealed::{field, redacted};
use crate::store::{FailedCall, FailureRow, Store, StoreError, TriggerPatch, TriggerRow, now_ms};

/// Trigger statuses, one state machine:
///
/// ```text
///            enable                  registered
/// disabled ─────────▶ enabling ─────────────────▶ enabled ──┐
///    ▲                  │  ▲                         │      │ connection
///    │ disable          │  │ retried with backoff    │      ▼ needs re-auth
///    │                  ▼  │                         │   needs-reauth (shown)
///    └─────────────── error                          │
///    └───────────────────────────────────────────────┘ disable
/// any ── delete ──▶ gone (or `deleted`, kept for its events)
/// ```
///
/// `needs-reauth` is not stored: the API shows it for an enabled trigger
/// whose connection needs re-authorization.
pub mod status {
    /// Created or disabled: deliveries get 404.
    pub const DISABLED: &str = "disabled";
    /// Its registration is being made (`on-enable` running).
    pub const ENABLING: &str = "enabling";
    /// Receiving deliveries.
    pub const ENABLED: &str = "enabled";
    /// Registering failed (see `last_error`); retried with backoff until it
    /// works or the trigger is disabled.
    pub const ERROR: &str = "error";
    /// Shown for an enabled trigger whose connection needs re-authorization.
    pub const NEEDS_REAUTH: &str = "needs-reauth";
    /// Deleted with its events kept: read-only until retention removes
    /// the events, then gone.
    pub const DELETED: &str = "deleted";
}

/// Why a trigger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// No such trigger.
    #[error("no trigger {0}")]
    NotFound(String),
    /// The plugin or version does not exist.
    #[error(transparent)]
    Plugin(#[from] RegistryError),
    /// The plugin has no trigger of that name.
    #[error("plugin {plugin} has no trigger {trigger}")]
    UnknownTrigger {
        /// Plugin.
        plugin: String,
        /// Requested trigger.
        trigger: String,
    },
    /// The config does not match the trigger's schema.
    #[error("config{} {}", if .0.path.is_empty() { String::new() } else { format!(" at {}", .0.path) }, .0.message)]
    InvalidConfig(ConfigProblem),
    /// Another field is invalid.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// No randomness for an id.
    #[error("cannot generate an id: {0}")]
    Random(#[from] getrandom::Error),
    /// A secret cannot be sealed or opened.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Activating the version would break triggers that follow the active one.
    #[error("activating {plugin} would break {} trigger(s): {}", breakages.len(),
        breakages.iter().map(|b| format!("{} ({}): {}", b.trigger_id, b.trigger, b.problem)).collect::<Vec<_>>().join("; "))]
    WouldBreak {
        /// `name@version`.
        plugin: String,
        /// Each trigger it would break, and how.
        breakages: Vec<Breakage>,
    },
}


impl From<StoreError> for TriggerError {
    fn from(error: StoreError) -> Self {
        TriggerError::Store(error)
    }
}

/// `POST /api/v1/triggers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    /// Plugin name.
    pub plugin: String,
    /// Trigger name within the plugin.
    pub trigger: String,
    /// Config (default `{}`).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Signing secret.
    #[serde(default)]
    pub secret: Option<String>,
    /// Poll interval, for polling triggers.
    #[serde(default)]
    pub poll_interval_s: Option<u32>,
    /// Pin a version instead of following the active one (`version` also reads).
    #[serde(default, alias = "version")]
    pub plugin_version: Option<String>,
    /// The connection whose credentials its calls see (one of the plugin's).
    #[serde(default)]
    pub connection: Option<String>,
    /// Host-side filters: only events every rule admits are stored.
    #[serde(default)]
    pub filters: Option<Vec<crate::filters::Rule>>,
    /// How long its events are kept, seconds (default `[retention] max_age_s`).
    #[serde(default)]
    pub retention_s: Option<u32>,
    /// How many of its newest events are kept at most (default `[retention] max_events`).
    #[serde(default)]
    pub retention_events: Option<u32>,
}

/// A trigger as the API shows it: never the secret itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TriggerView {
    /// Id.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Pinned version, or null when following the active one.
    pub plugin_version: Option<String>,
    /// Trigger name.
    pub trigger: String,
    /// Config.
    pub config: serde_json::Value,
    /// Whether a secret is set.
    pub has_secret: bool,
    /// Whether the provider issued secrets at registration (kept sealed).
    pub has_issued_secrets: bool,
    /// The connection it uses.
    pub connection: Option<String>,
    /// The source whose registration (and webhook URL) it shares, if its
    /// definition shares registrations.
    pub source: Option<String>,
    /// Poll interval.
    pub poll_interval_s: Option<i64>,
    /// Host-side filters, as given.
    pub filters: Vec<crate::filters::Rule>,
    /// Its own retention period, seconds; null follows `[retention]`.
    pub retention_s: Option<i64>,
    /// Its own count cap; null follows `[retention]`.
    pub retention_events: Option<i64>,
    /// `disabled`, `enabling`, `enabled`, `error`, `needs-reauth` or `deleted`.
    pub status: String,
    /// When a failed registration is tried again, while in `error`.
    pub retry_at_ms: Option<i64>,
    /// Failed registrations in a row.
    pub retry_failures: i64,
    /// Last failure or enable error.
    pub last_error: Option<String>,
    /// Where to deliver: its source's URL when it shares one.
    pub webhook_url: String,
    /// When `sync` last checked the registration, and what it found wrong.
    pub synced_at_ms: Option<i64>,
    /// What the last `sync` failed with; null when it found nothing wrong.
    pub sync_error: Option<String>,
    /// Creation time (Unix ms).
    pub created_at_ms: i64,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

/// An enabled trigger, as ingress sees it; or a source with an enabled
/// trigger, whose row and context are the source's (its id, URL, config and
/// secret) and whose deliveries fan out to its triggers.
#[derive(Debug)]
pub struct LiveTrigger {
    /// The stored row.
    pub row: TriggerRow,
    /// The call context handed to the connector.
    pub context: TriggerContext,
    /// Shared with the trigger's earlier and later live entries: patching,
    /// disabling and enabling do not refill it.
    bucket: Arc<Mutex<TokenBucket>>,
    /// Held by the poll running for this trigger, across live entries too:
    /// at most one poll at a time, whoever starts it.
    poll_turn: Arc<tokio::sync::Mutex<()>>,
    /// For a source: its enabled triggers, each stored what it wants of a
    /// delivery's events.
    pub fan_out: Option<Vec<Member>>,
    /// Its host-side filters (a source's are its triggers').
    pub filters: crate::filters::Filters,
}

impl LiveTrigger {
    /// Whether the trigger polls (webhooks are not delivered to it).
    pub fn is_polling(&self) -> bool {
        self.row.poll_interval_s.is_some()
    }

    /// Waits for the trigger's turn to poll.
    pub async fn poll_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.poll_turn).lock_owned().await
    }

    /// Takes one delivery's token from the trigger's rate limit.
    pub fn admit(&self, rate_per_second: u32, burst: u32) -> bool {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner()).take(rate_per_second, burst).is_ok()
    }
}

/// The trigger service.
#[derive(Debug)]
pub struct Triggers {
    store: Store,
    registry: Arc<Registry>,
    public_url: String,
    limits: Limits,
    secrets: SecretBox,
    /// The shortest poll interval a trigger may have, seconds.
    min_poll_interval_s: u32,
    /// When subscriptions that expire are renewed.
    renewal: crate::renewal::RenewalSettings,
    /// Connections' credentials, for calls' contexts.
    connections: Arc<crate::connections::Connections>,
    live: RwLock<HashMap<String, Arc<LiveTrigger>>>,
    /// Each trigger's rate bucket, kept for as long as the trigger exists.
    buckets: Mutex<HashMap<String, Arc<Mutex<TokenBucket>>>>,
    /// Each trigger's poll lock, kept for as long as the trigger exists.
    poll_turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Told the id of every trigger that goes live or dark (the poller).
    watchers: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<String>>>,
    /// One lock per trigger: enable, disable, patch and delete of a trigger
    /// run one at a time, so a slow `on-enable` cannot finish after a
    /// disable and bring the trigger back.
    lifecycle: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Triggers {
    /// Seals any secret still stored in plain text, then loads every
    /// enabled trigger into the live table. A trigger whose secrets cannot
    /// be opened (a database copied without its key file) is put in `error`
    /// rather than served without them.
    pub async fn open(
        store: Store,
        registry: Arc<Registry>,
        public_url: String,
        limits: Limits,
        secrets: SecretBox,
        connections: Arc<crate::connections::Connections>,
    ) -> Result<Triggers, TriggerError> {
        let triggers = Triggers {
            store,
            registry,
            public_url,
            limits,
            secrets,
            connections,
            min_poll_interval_s: 10,
            renewal: crate::renewal::RenewalSettings::default(),
            live: RwLock::default(),
            buckets: Mutex::default(),
            poll_turns: Mutex::default(),
            watchers: Mutex::default(),
            lifecycle: Mutex::default(),
        };
        for mut row in triggers.store.list_triggers().await? {
            triggers.seal_plaintext(&mut row).await?;
            if row.status == status::ENABLING {
                // The host stopped while registering: whether the provider
                // has it is unknown, so it is made again, now.
                let message = "enabling was interrupted by a restart; trying again";
                triggers.store.set_trigger_status(&row.id, status::ERROR, Some(message), None).await?;
                triggers.store.set_enable_retry(&row.id, Some(now_ms()), row.retry_failures).await?;
            }
            if row.status == status::ENABLED
                && let Err(error) = triggers.go_live(row.clone())
            {
                tracing::error!(trigger = %row.id, %error, "cannot serve the trigger");
                let message = error.to_string();
                triggers.store.set_trigger_status(&row.id, status::ERROR, Some(&message), None).await?;
            }
        }
        for source in triggers.store.list_sources().await? {
            triggers.refresh_source(&source.id).await?;
        }
        Ok(triggers)
    }

    /// The webhook URL of a trigger.
    pub fn webhook_url(&self, id: &str) -> String {
        format!("{}/hooks/{id}", self.public_url)
    }

    /// The per-call limits of the trigger's plugin.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What a call of trigger `id` served by `loaded` may use: the plugin's
    /// grant as of now, the trigger's own kv entries, the limits.
    pub fn scope(&self, id: &str, loaded: &LoadedPlugin) -> CallScope {
        let limits = self.registry.limits(&loaded.plugin.manifest().name, &self.limits);
        CallScope::new(id, Arc::new(self.registry.grant_of(loaded)), limits)
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// An enabled trigger by id.
    pub fn live(&self, id: &str) -> Option<Arc<LiveTrigger>> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// What a delivery to `/hooks/{id}` goes to: the enabled trigger or
    /// source of that id; for a trigger that shares a registration, its
    /// source.
    pub fn receiver(&self, id: &str) -> Option<Arc<LiveTrigger>> {
        let live = self.live(id)?;
        match &live.row.source_id {
            Some(source) => self.live(source),
            None => Some(live),
        }
    }

    /// Waits for the trigger's other lifecycle operations to finish.
    async fn serialize(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.lifecycle.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(id.to_owned()).or_default())
        };
        lock.lock_owned().await
    }

    fn bucket(&self, id: &str) -> Arc<Mutex<TokenBucket>> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(TokenBucket::holding(f64::MAX))));
        Arc::clone(bucket)
    }

    /// Ids of triggers as they go live (enabled, patched) or dark
    /// (disabled, deleted, failed).
    pub fn watch(&self) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).push(sender);
        receiver
    }

    /// Every enabled trigger.
    pub fn all_live(&self) -> Vec<Arc<LiveTrigger>> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    fn changed(&self, id: &str) {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner()).retain(|w| w.send(id.to_owned()).is_ok());
    }

    fn poll_turn(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.poll_turns.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(turns.entry(id.to_owned()).or_default())
    }

    fn forget(&self, id: &str) {
        self.poll_turns.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn go_live(&self, row: TriggerRow) -> Result<(), SecretError> {
        let live = LiveTrigger {
            context: self.context(&row)?,
            bucket: self.bucket(&row.id),
            poll_turn: self.poll_turn(&row.id),
            fan_out: None,
            filters: crate::filters::Filters::from_stored(row.filters.as_deref()),
            row,
        };
        let id = live.row.id.clone();
        self.live.write().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), Arc::new(live));
        self.changed(&id);
        Ok(())
    }

    fn go_dark(&self, id: &str) {
        self.live.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.changed(id);
    }

    /// The API view of a row.
    pub fn view(&self, row: &TriggerRow) -> TriggerView {
        TriggerView {
            id: row.id.clone(),
            plugin: row.plugin.clone(),
            plugin_version: row.plugin_version.clone(),
            trigger: row.trigger_name.clone(),
            config: redacted(&row.config),
            has_secret: row.secret.is_some(),
            has_issued_secrets: row.issued_secrets.is_some(),
            connection: row.connection_id.clone(),
            source: row.source_id.clone(),
            poll_interval_s: row.poll_interval_s,
            filters: row.filters.as_deref().and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default(),
            retention_s: row.retention_s,
            retention_events: row.retention_events,
            status: row.status.clone(),
            retry_at_ms: row.retry_at_ms,
            retry_failures: row.retry_failures,
            last_error: row.last_error.clone(),
            webhook_url: self.webhook_url(row.source_id.as_deref().unwrap_or(&row.id)),
            synced_at_ms: row.synced_at_ms,
            sync_error: row.sync_error.clone(),
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        }
    }

    fn check(&self, loaded: &LoadedPlugin, trigger: &str, config: &serde_json::Value) -> Result<(), TriggerError> {
        if loaded.plugin.manifest().trigger(trigger).is_none() {
            return Err(TriggerError::UnknownTrigger {
                plugin: loaded.plugin.manifest().name.clone(),
                trigger: trigger.to_owned(),
            });
        }
        loaded.validate_config(trigger, config).map_err(TriggerError::InvalidConfig)
    }

    /// Checks that `connection` exists and belongs to `plugin`.
    async fn check_connection(&self, plugin: &str, connection: Option<&str>) -> Result<(), TriggerError> {
        let Some(id) = connection else { return Ok(()) };
        let invalid = |message: String| TriggerError::InvalidField { field: "connection", message };
        match self.store.get_connection(id).await {
            Ok(row) if row.plugin == plugin => Ok(()),
            Ok(row) => Err(invalid(format!("connection {id} is for plugin {}, not {plugin}", row.plugin))),
            Err(StoreError::NotFound) => Err(invalid(format!("no connection {id}"))),
            Err(other) => Err(other.into()),
        }
    }

    /// The context for a call of a live trigger: its connection's
    /// credentials as of now (a refreshed token reaches the next call).
    pub fn call_context(&self, trigger: &LiveTrigger) -> TriggerContext {
        let mut context = trigger.context.clone();
        if let Some(id) = &trigger.row.connection_id {
            context.credentials = self.connections.credentials(id);
        }
        context
    }

    /// The connections.
    pub fn connections(&self) -> &crate::connections::Connections {
        &self.connections
    }

    /// Creates a trigger, disabled until enabled.
    pub async fn create(&self, request: CreateTrigger) -> Result<TriggerRow, TriggerError> {
        self.check_connection(&request.plugin, request.connection.as_deref()).await?;
        let loaded = self.registry.resolve_or_load(&request.plugin, request.plugin_version.as_deref()).await?;
        let config = request.config.unwrap_or_else(|| serde_json::json!({}));
        self.check(&loaded, &request.trigger, &config)?;
        let poll_interval_s = self.poll_interval(&loaded, &request.trigger, request.poll_interval_s.map(Some))?.flatten();
        let filters = checked_filters(request.filters.as_deref())?;
        let retention_s = positive("retention_s", request.retention_s)?;
        let retention_events = positive("retention_events", request.retention_events)?;
        let now = now_ms();
        let id = crate::ids::new_id("trg")?;
        let source_id = self
            .join_source(&loaded, &request.trigger, request.connection.as_deref(), &config, request.secret.as_deref(), None)
            .await?;
        let mut config = config;
        self.seal_config(&id, &loaded, &request.trigger, &mut config)?;
        let secret = match request.secret {
            Some(secret) => Some(self.secrets.seal(&secret, &field(&id, "secret"))?),
            None => None,
        };
        let row = TriggerRow {
            id,
            plugin: request.plugin,
            plugin_version: request.plugin_version,
            trigger_name: request.trigger,
            config: config.to_string(),
            secret,
            poll_interval_s,
            status: status::DISABLED.into(),
            last_error: None,
            expires_at_ms: None,
            issued_secrets: None,
            connection_id: request.connection,
            source_id,
            synced_at_ms: None,
            sync_error: None,
            filters,
            retention_s,
            retention_events,
            retry_at_ms: None,
            retry_failures: 0,
            created_at_ms: now,
            updated_at_ms: now,
        };
        if let Err(error) = self.store.insert_trigger(&row).await {
            if let Some(source) = &row.source_id {
                self.store.delete_source_if_empty(source).await?;
            }
            return Err(error.into());
        }
        Ok(row)
    }

    /// Sets the shortest poll interval a trigger may have.
    pub fn with_min_poll_interval(mut self, seconds: u32) -> Self {
        self.min_poll_interval_s = seconds;
        self
    }

    /// Sets when subscriptions that expire are renewed.
    pub fn with_renewal(mut self, settings: crate::renewal::RenewalSettings) -> Self {
        self.renewal = settings;
        self
    }

    /// A new or patched poll interval, checked: polling triggers have one
    /// (60 s unless given, at least the minimum), others none. `None`
    /// leaves it as it is.
    fn poll_interval(
        &self,
        loaded: &LoadedPlugin,
        trigger: &str,
        requested: Option<Option<u32>>,
    ) -> Result<Option<Option<i64>>, TriggerError> {
        let polling = loaded.plugin.manifest().trigger(trigger).is_some_and(|t| t.strategy == Strategy::Polling);
        let invalid = |message: String| Err(TriggerError::InvalidField { field: "poll_interval_s", message });
        match (polling, requested) {
            (_, None) => Ok(if polling { Some(Some(60.max(i64::from(self.min_poll_interval_s)))) } else { Some(None) }),
            (true, Some(Some(s))) if s < self.min_poll_interval_s => {
                invalid(format!("must be at least {} seconds", self.min_poll_interval_s))
            }
            (true, Some(Some(s))) => Ok(Some(Some(i64::from(s)))),
            (true, Some(None)) => invalid("a polling trigger needs a poll interval".into()),
            (false, Some(Some(_))) => invalid("only polling triggers take a poll interval".into()),
            (false, Some(None)) => Ok(Some(None)),
        }
    }

    /// One trigger.
    pub async fn get(&self, id: &str) -> Result<TriggerRow, TriggerError> {
        self.store.get_trigger(id).await.map_err(|e| not_found(e, id))
    }

    /// Every trigger.
    pub async fn list(&self) -> Result<Vec<TriggerRow>, TriggerError> {
        Ok(self.store.list_triggers().await?)
    }

    /// Changes config, secret, connection, pin or poll interval. A live
    /// trigger picks the change up for its next delivery, and its
    /// registration follows: `on-update` of its own, or of the source it
    /// shares (a changed key moves it to another source).
    pub async fn patch(&self, id: &str, mut patch: TriggerPatch) -> Result<TriggerRow, TriggerError> {
        let _serialized = self.serialize(id).await;
        let current = self.get(id).await?;
        if current.status == status::DELETED {
            return Err(TriggerError::NotFound(id.to_owned()));
        }
        if let Some(connection) = &patch.connection_id {
            self.check_connection(&current.plugin, connection.as_deref()).await?;
        }
        let pin = patch.plugin_version.clone().unwrap_or(current.plugin_version.clone());
        let loaded = self.registry.resolve_or_load(&current.plugin, pin.as_deref()).await?;
        let mut config = match &patch.config {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| TriggerError::InvalidField { field: "config", message: e.to_string() })?,
            None => self.open_config(&current)?,
        };
        self.check(&loaded, &current.trigger_name, &config)?;
        let plain_secret = match &patch.secret {
            Some(secret) => secret.clone(),
            None => self.context(&current)?.secret,
        };
        let connection = patch.connection_id.clone().unwrap_or(current.connection_id.clone());
        let member_of = current.source_id.as_deref();
        let source = self
            .join_source(&loaded, &current.trigger_name, connection.as_deref(), &config, plain_secret.as_deref(), member_of)
            .await?;
        if patch.config.is_some() {
            self.seal_config(id, &loaded, &current.trigger_name, &mut config)?;
            patch.config = Some(config.to_string());
        }
        if let Some(Some(secret)) = &patch.secret {
            patch.secret = Some(Some(self.secrets.seal(secret, &field(id, "secret"))?));
        }
        if let Some(requested) = patch.poll_interval_s {
            let requested = requested.map(|s| u32::try_from(s).unwrap_or(u32::MAX));
            patch.poll_interval_s = self.poll_interval(&loaded, &current.trigger_name, Some(requested))?;
        }
        let mut row = self.store.patch_trigger(id, &patch).await.map_err(|e| not_found(e, id))?;
        if source != current.source_id {
            self.store.set_trigger_source(id, source.as_deref()).await?;
            row.source_id = source.clone();
        }
        let registration_changed = patch.config.is_some() || patch.connection_id.is_some() || patch.secret.is_some();
        if row.status == status::ENABLED {
            self.go_live(row.clone())?;
            if let Err(message) = self.follow_patch(&current, &row, registration_changed).await? {
                self.store.set_trigger_status(id, status::ENABLED, Some(&message), row.expires_at_ms).await?;
            }
        } else if let Some(left) = current.source_id.as_ref().filter(|s| row.source_id.as_ref() != Some(*s)) {
            // A source it left empty is deleted.
            let _ = self.reconcile_source(left, None).await?;
        }
        for source in [&current.source_id, &row.source_id].into_iter().flatten() {
            self.refresh_source(source).await?;
        }
        self.get(id).await
    }

    /// Brings an enabled trigger's registration in line with a patch: its
    /// source's (or both sources' when it moved), or its own through
    /// `on-update` when its config, connection or secret changed. `Err`
    /// is why it failed; the registration then stays as it was.
    async fn follow_patch(
        &self,
        before: &TriggerRow,
        after: &TriggerRow,
        registration_changed: bool,
    ) -> Result<Result<(), String>, TriggerError> {
        if before.source_id.is_some() || after.source_id.is_some() {
            let mut outcome = Ok(());
            if let Some(source) = &after.source_id {
                outcome = self.reconcile_source(source, None).await?;
            }
            if let Some(source) = before.source_id.as_ref().filter(|s| after.source_id.as_ref() != Some(*s)) {
                // What the old source now wants less of is its own concern:
                // a failure there is recorded on it, not on this trigger.
                let _ = self.reconcile_source(source, None).await?;
            }
            match (&before.source_id, &after.source_id) {
                // It had a registration of its own, and shares one now.
                (None, Some(_)) => {
                    self.call_on_disable(before).await?;
                }
                // It shared one, and has one of its own now.
                (Some(_), None) => outcome = self.register(after).await?.map(drop),
                _ => {}
            }
            return Ok(outcome);
        }
        if !registration_changed {
            return Ok(Ok(()));
        }
        self.update_registration(before, after).await
    }

    /// Calls `on-enable` (of its source, when it shares one: registering
    /// it, or updating it with the events this trigger wants); the trigger
    /// goes `enabling`, then `enabled`, or `error` with the connector's
    /// message and a retry scheduled with backoff.
    pub async fn enable(&self, id: &str) -> Result<TriggerRow, TriggerError> {
        let _serialized = self.serialize(id).await;
        let row = self.get(id).await?;
        if row.status == status::DELETED {
            return Err(TriggerError::NotFound(id.to_owned()));
        }
        self.enable_serialized(row).await
    }

    /// Enables trigger `id` again if it is still in `error` with its retry
    /// due (the operator may have disabled it meanwhile).
    pub async fn retry_enable(&self, id: &str) -> Result<Option<TriggerRow>, TriggerError> {
        let _serialized = self.serialize(id).await;
        let row = self.get(id).await?;
        if row.status != status::ERROR || row.retry_at_ms.is_none_or(|at| at > now_ms()) {
            return Ok(None);
        }
        tracing::info!(trigger = %id, failures = row.retry_failures, "enabling again after a failure");
        self.enable_serialized(row).await.map(Some)
    }

    async fn enable_serialized(&self, row: TriggerRow) -> Result<TriggerRow, TriggerError> {
        let id = row.id.as_str();
        self.store.set_trigger_status(id, status::ENABLING, None, None).await?;
        let outcome = self.register(&row).await?;
        match outcome {
            Ok(expires_at_ms) => {
                self.store.set_trigger_status(id, status::ENABLED, None, expires_at_ms).await?;
                self.store.set_enable_retry(id, None, 0).await?;
                self.go_live(self.get(id).await?)?;
            }
            Err(message) => {
                self.store.set_trigger_status(id, status::ERROR, Some(&message), None).await?;
                let failures = row.retry_failures.saturating_add(1);
                self.store.set_enable_retry(id, Some(self.renewal.retry_at(now_ms(), failures)), failures).await?;
                self.go_dark(id);
            }
        }
        if let Some(source) = &row.source_id {
            self.refresh_source(source).await?;
        }
        self.get(id).await
    }

    /// Makes the trigger's registration: its source's, or its own through
    /// `on-enable`. The expiry it reported, or why it failed.
    async fn register(&self, row: &TriggerRow) -> Result<Result<Option<i64>, String>, TriggerError> {
        if let Some(source) = &row.source_id {
            return Ok(self.reconcile_source(source, Some(row)).await?.map(|()| None));
        }
        let loaded = match self.registry.resolve(&row.plugin, row.plugin_version.as_deref()) {
            Ok(loaded) => loaded,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let context = match self.context(row) {
            Ok(context) => context,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let enabled = self.on_enable_retrying(row, &loaded, context).await;
        Ok(match self.settle(&row.id, "on-enable", enabled).await? {
            Ok(info) => {
                self.keep(&row.id, &info, false).await?;
                Ok(info.expires_at_ms.and_then(|ms| i64::try_from(ms).ok()))
            }
            Err(failure) => Err(failure.message),
        })
    }

    /// Calls `on-disable` (for a trigger sharing a source, `on-update` of
    /// the source without its events, or `on-disable` of the source when it
    /// was the last enabled one) and stops deliveries. The trigger is
    /// disabled even if the call fails; the failure is recorded.
    pub async fn disable(&self, id: &str) -> Result<TriggerRow, TriggerError> {
        let _serialized = self.serialize(id).await;
        let row = self.get(id).await?;
        if row.status == status::DELETED {
            return Err(TriggerError::NotFound(id.to_owned()));
        }
        self.go_dark(id);
        self.store.set_enable_retry(id, None, 0).await?;
        if let Some(source) = &row.source_id {
            self.store.set_trigger_status(id, status::DISABLED, None, None).await?;
            if let Err(message) = self.reconcile_source(source, None).await? {
                self.store.set_trigger_status(id, status::DISABLED, Some(&message), None).await?;
            }
            self.refresh_source(source).await?;
            return self.get(id).await;
        }
        let mut last_error = None;
        if row.status == status::ENABLED {
            last_error = self.call_on_disable(&row).await?;
        }
        self.store.set_trigger_status(id, status::DISABLED, last_error.as_deref(), None).await?;
        self.get(id).await
    }

    /// Disables (calling `on-disable` if enabled, or updating its source)
    /// and deletes a trigger with its events, kv and stats; with
    /// `keep_events`, its events stay readable (the trigger `deleted`)
    /// until retention removes them, and the trigger with the last.
    pub async fn delete(&self, id: &str, keep_events: bool) -> Result<(), TriggerError> {
        let _serialized = self.serialize(id).await;
        let row = self.get(id).await?;
        self.go_dark(id);
        if row.status == status::ENABLED && row.source_id.is_none() {
            self.call_on_disable(&row).await?;
        }
        if keep_events {
            self.store.set_enable_retry(id, None, 0).await?;
            self.store.set_trigger_source(id, None).await?;
            self.store.set_trigger_status(id, status::DELETED, None, None).await?;
        } else {
            self.store.delete_trigger(id).await.map_err(|e| not_found(e, id))?;
        }
        self.forget(id);
        if let Some(source) = &row.source_id {
            if let Err(message) = self.reconcile_source(source, None).await? {
                tracing::warn!(trigger = %id, %source, %message, "the source did not follow a deleted trigger");
            }
            self.refresh_source(source).await?;
        }
        Ok(())
    }

    /// Returns the failure message, if `on-disable` failed.
    async fn call_on_disable(&self, row: &TriggerRow) -> Result<Option<String>, TriggerError> {
        let Ok(loaded) = self.registry.resolve(&row.plugin, row.plugin_version.as_deref()) else {
            return Ok(Some("on-disable skipped: plugin version not loaded".into()));
        };
        let context = match self.context(row) {
            Ok(context) => context,
            Err(error) => return Ok(Some(format!("on-disable skipped: {error}"))),
        };
        match loaded.plugin.on_disable(context, self.scope(&row.id, &loaded)).await {
            Ok(output) => match output.value {
                Ok(()) => match self.store.commit_kv(&output.kv_writes).await {
                    Ok(()) => Ok(None),
                    Err(error) => Ok(Some(format!("on-disable: {error}"))),
                },
                Err(error) => {
                    self.record(&row.id, connector_failure("on-disable", &error, &output.log.text), output.fuel_used)
                        .await?;
                    Ok(Some(format!("on-disable: {error}")))
                }
            },
            Err(error) => {
                self.record(&row.id, call_failure(&error), error.fuel_used).await?;
                Ok(Some(format!("on-disable: {}", error.kind)))
            }
        }
    }

    async fn record(&self, id: &str, failure: FailureRow, fuel: u64) -> Result<(), StoreError> {
        self.store.record_failure(id, &failure, fuel, FailedCall::Lifecycle).await
    }
}

/// Rules checked and compiled once, stored as JSON; none for an empty list.
pub fn checked_filters(rules: Option<&[crate::filters::Rule]>) -> Result<Option<String>, TriggerError> {
    let Some(rules) = rules.filter(|rules| !rules.is_empty()) else { return Ok(None) };
    crate::filters::Filters::compile(rules)
        .map_err(|error| TriggerError::InvalidField { field: "filters", message: error.to_string() })?;
    Ok(serde_json::to_string(rules).ok())
}

/// A retention setting, which must be at least 1 when given.
pub fn positive(field: &'static str, value: Option<u32>) -> Result<Option<i64>, TriggerError> {
    match value {
        Some(0) => Err(TriggerError::InvalidField { field, message: "must be at least 1".into() }),
        other => Ok(other.map(i64::from)),
    }
}

fn not_found(error: StoreError, id: &str) -> TriggerError {
    match error {
        StoreError::NotFound => TriggerError::NotFound(id.to_owned()),
        other => TriggerError::Store(other),
    }
}
