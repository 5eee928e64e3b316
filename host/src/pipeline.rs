//! One delivery pipeline, with no HTTP in it: resolve the trigger's plugin,
//! call it in the sandbox, turn its output into events, commit them with
//! the call's kv writes and stats (for a poll, its cursor and poll state)
//! through the group committer, and record what failed. Ingress maps the
//! [`Outcome`] to a status, the poller to its next tick.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::call_logs::{CallLogs, CallRecord};
use crate::metrics::{CallMetrics, CallSample};
use crate::capabilities::log::LogOutput;
use crate::cluster::Cluster;
use crate::connections::said_unauthorized;
use crate::contract::{
    ConnectorError, Credentials, Delivery, HttpResponse, PollTick, RunInput, RunOutput, TriggerContext, WebhookRequest,
};
use crate::capabilities::kv::KvWrites;
use crate::failures::{call_failure, commit_failure, connector_failure};
use crate::registry::LoadedPlugin;
use crate::runtime::{CallError, CallErrorKind};
use crate::store::{Committer, DeliveryCommit, FailedCall, FailureRow, NewEvent, PollRecord, Store, StoreError, Tally, now_ms};
use crate::triggers::{LiveTrigger, Member, Triggers};

/// What became of one delivery.
#[derive(Debug)]
pub enum Outcome {
    /// The events are durably stored, with the call's kv writes and stats.
    Stored {
        /// New events.
        stored: usize,
        /// Events dropped as redeliveries.
        duplicates: usize,
        /// Events the trigger's host-side filters did not admit.
        filtered: usize,
        /// The connector's own response for the sender, if any.
        response: Option<HttpResponse>,
    },
    /// `verify` rejected the delivery.
    Rejected,
    /// The connector answered the sender itself (a handshake).
    Responded(HttpResponse),
    /// The connector returned an error; it is recorded on the trigger.
    ConnectorFailed(ConnectorError),
    /// The sandbox stopped the call; it is recorded on the trigger.
    CallFailed(CallErrorKind),
    /// The output broke a store rule (the kv quota); recorded.
    OutputRefused,
    /// Not now, nothing recorded: the host is overloaded, the store busy or
    /// the connector not loaded.
    Unavailable(&'static str),
    /// The trigger was deleted meanwhile.
    Gone,
    /// Another node holds the trigger's poll lease: it polls, this node
    /// does not (nothing recorded). `until_ms`: when the lease expires
    /// unless its holder renews it, if known.
    Elsewhere {
        /// Unix ms.
        until_ms: Option<i64>,
    },
}

impl Outcome {
    /// A stable word for spans and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Stored { .. } => "stored",
            Outcome::Rejected => "rejected",
            Outcome::Responded(_) => "responded",
            Outcome::ConnectorFailed(_) => "connector-error",
            Outcome::CallFailed(kind) => kind.code(),
            Outcome::OutputRefused => "output-refused",
            Outcome::Unavailable(_) => "unavailable",
            Outcome::Gone => "gone",
            Outcome::Elsewhere { .. } => "elsewhere",
        }
    }
}

/// The pipeline, shared by every delivery.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Store,
    committer: Committer,
    triggers: Arc<Triggers>,
    /// Bytes held at once by deliveries: bodies, and outputs waiting for
    /// their commit.
    budget: Arc<Semaphore>,
    /// Whose turn it is to poll, when several nodes share the database.
    cluster: Arc<Cluster>,
    /// Where what each call wrote is kept.
    logs: Arc<CallLogs>,
    /// This node's call series.
    metrics: Arc<CallMetrics>,
}

/// How a call ended, for its log and its metrics.
struct Ended<'a> {
    export: &'static str,
    started: Instant,
    outcome: &'a str,
    log: &'a LogOutput,
    fuel: u64,
    limit_trip: Option<&'static str>,
}

impl<'a> Ended<'a> {
    /// A call the sandbox stopped: its error's code, and the limit if one tripped.
    fn stopped(export: &'static str, started: Instant, error: &'a CallError) -> Self {
        let code = error.kind.code();
        Ended { export, started, outcome: code, log: &error.log, fuel: error.fuel_used, limit_trip: error.kind.is_limit().then_some(code) }
    }
}

impl Pipeline {
    /// A pipeline committing through `committer`, holding outputs against `budget`.
    pub fn new(
        store: Store,
        committer: Committer,
        triggers: Arc<Triggers>,
        budget: Arc<Semaphore>,
        cluster: Arc<Cluster>,
        logs: Arc<CallLogs>,
        metrics: Arc<CallMetrics>,
    ) -> Self {
        Pipeline { store, committer, triggers, budget, cluster, logs, metrics }
    }

    /// Counts a call and keeps what it wrote, whatever became of it.
    fn observe(&self, trigger: &LiveTrigger, loaded: &LoadedPlugin, ended: Ended<'_>) {
        let manifest = loaded.plugin.manifest();
        let (trigger_id, Ended { export, started, outcome, log, fuel, limit_trip }) = (trigger.row.id.as_str(), ended);
        self.metrics.call(&CallSample {
            plugin: &manifest.name,
            trigger: trigger_id,
            export,
            outcome,
            duration: started.elapsed(),
            fuel,
            limit_trip,
        });
        self.logs.keep(CallRecord { trigger_id, plugin_version: &manifest.version, export, outcome, log });
    }

    /// Counts a poll of `plugin` that started `by` after it was due.
    pub fn poll_started_late(&self, plugin: &str, by: std::time::Duration) {
        self.metrics.poll_late(plugin, by);
    }

    /// Counts what a call's commit stored.
    fn count_stored(&self, trigger: &LiveTrigger, loaded: &LoadedPlugin, outcome: &Outcome) {
        if let Outcome::Stored { stored, duplicates, .. } = outcome {
            self.metrics.stored(&loaded.plugin.manifest().name, &trigger.row.id, *stored, *duplicates);
        }
    }

    /// Handles one webhook delivery: `verify`, then `run`, then the commit;
    /// in a `delivery` span.
    pub async fn deliver(&self, trigger: &LiveTrigger, request: WebhookRequest) -> Outcome {
        let span = call_span("delivery", trigger);
        let outcome = self.deliver_in_span(trigger, request).instrument(span.clone()).await;
        span.record("outcome", outcome.label());
        outcome
    }

    async fn deliver_in_span(&self, trigger: &LiveTrigger, request: WebhookRequest) -> Outcome {
        let Some(loaded) = self.plugin_of(trigger) else {
            return Outcome::Unavailable("connector unavailable");
        };
        tracing::Span::current().record("version", loaded.plugin.manifest().version.as_str());
        let context = self.triggers.call_context(trigger);
        // Kept only for a trigger on an OAuth2 connection, whose call may
        // say `unauthorized` and be tried again with a refreshed token.
        let retry = matches!(context.credentials, Some(Credentials::OAuth2(_))).then(|| request.clone());
        let scope = self.triggers.scope(&trigger.row.id, &loaded);
        let started = Instant::now();
        let mut result = loaded.plugin.deliver(context.clone(), request, scope).await;
        if let Some(request) = retry
            && said_unauthorized(&result)
            && self.refreshed(trigger, &context).await
        {
            let scope = self.triggers.scope(&trigger.row.id, &loaded);
            result = loaded.plugin.deliver(self.triggers.call_context(trigger), request, scope).await;
        }
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                tracing::warn!(trigger = %trigger.row.id, %error, "delivery failed in the connector");
                self.observe(trigger, &loaded, Ended::stopped("deliver", started, &error));
                self.record(trigger, call_failure(&error), error.fuel_used).await;
                return Outcome::CallFailed(error.kind);
            }
        };
        let outcome = match &output.value {
            Ok(Delivery::Accepted(_)) => "accepted",
            Ok(Delivery::Rejected(_)) => "rejected",
            Ok(Delivery::Responded(_)) => "responded",
            Err(error) => error.code.as_str(),
        };
        let ended = Ended { export: "deliver", started, outcome, log: &output.log, fuel: output.fuel_used, limit_trip: None };
        self.observe(trigger, &loaded, ended);
        match output.value {
            Ok(Delivery::Accepted(run)) => {
                let commit = commit_of(trigger, &loaded, output.fuel_used, output.kv_writes, None);
                let outcome = self.commit(trigger, commit, run).await;
                self.count_stored(trigger, &loaded, &outcome);
                outcome
            }
            Ok(Delivery::Rejected(reason)) => {
                tracing::info!(trigger = %trigger.row.id, %reason, "delivery rejected");
                self.tally(trigger, Tally::Rejected, output.fuel_used).await;
                Outcome::Rejected
            }
            Ok(Delivery::Responded(response)) => {
                if let Err(error) = self.store.commit_kv(&output.kv_writes).await {
                    tracing::warn!(trigger = %trigger.row.id, %error, "cannot store a handshake's kv writes");
                    return Outcome::Unavailable("storage unavailable");
                }
                self.tally(trigger, Tally::Answered, output.fuel_used).await;
                Outcome::Responded(response)
            }
            Err(error) => {
                self.record(trigger, connector_failure("deliver", &error, &output.log.text), output.fuel_used).await;
                Outcome::ConnectorFailed(error)
            }
        }
    }

    /// Runs one poll: `run` with a tick carrying the last success, then its
    /// events, kv writes (the cursor) and poll state in one transaction. A
    /// failed poll stores nothing but its failure and poll state, in one
    /// transaction too. In a `poll` span.
    pub async fn poll(&self, trigger: &LiveTrigger) -> Outcome {
        let span = call_span("poll", trigger);
        let outcome = self.poll_in_span(trigger).instrument(span.clone()).await;
        span.record("outcome", outcome.label());
        outcome
    }

    async fn poll_in_span(&self, trigger: &LiveTrigger) -> Outcome {
        let _turn = trigger.poll_turn().await;
        // One node polls a trigger at a time, and commits only while it
        // still holds the lease (see `LeaseFence`).
        let lease = format!("poll:{}", trigger.row.id);
        if let Err(until_ms) = self.cluster.try_claim(&lease).await {
            return Outcome::Elsewhere { until_ms };
        }
        let (at_ms, started) = (now_ms(), Instant::now());
        let (loaded, tick) = match self.tick(trigger, at_ms).await {
            Ok(ready) => ready,
            Err(outcome) => return outcome,
        };
        tracing::Span::current().record("version", loaded.plugin.manifest().version.as_str());
        let context = self.triggers.call_context(trigger);
        let scope = self.triggers.scope(&trigger.row.id, &loaded);
        let mut result = loaded.plugin.run(context.clone(), RunInput::Poll(tick), scope).await;
        if said_unauthorized(&result) && self.refreshed(trigger, &context).await {
            let scope = self.triggers.scope(&trigger.row.id, &loaded);
            result = loaded.plugin.run(self.triggers.call_context(trigger), RunInput::Poll(tick), scope).await;
        }
        let record = |started: Instant| PollRecord {
            at_ms,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                self.observe(trigger, &loaded, Ended::stopped("poll", started, &error));
                self.record_poll_failure(trigger, call_failure(&error), error.fuel_used, record(started)).await;
                return Outcome::CallFailed(error.kind);
            }
        };
        let outcome = output.value.as_ref().map_or_else(|error| error.code.as_str(), |_| "polled");
        let ended = Ended { export: "poll", started, outcome, log: &output.log, fuel: output.fuel_used, limit_trip: None };
        self.observe(trigger, &loaded, ended);
        let run = match output.value {
            Ok(run) => run,
            Err(error) => {
                let failure = connector_failure("poll", &error, &output.log.text);
                self.record_poll_failure(trigger, failure, output.fuel_used, record(started)).await;
                return Outcome::ConnectorFailed(error);
            }
        };
        let mut commit = commit_of(trigger, &loaded, output.fuel_used, output.kv_writes, Some(record(started)));
        commit.fence = self.cluster.fence(&lease);
        let outcome = self.commit(trigger, commit, run).await;
        self.count_stored(trigger, &loaded, &outcome);
        outcome
    }

    /// What a poll would emit now, without its effects: at most `max`
    /// events, nothing stored, no cursor or state advanced (the call's kv
    /// writes are dropped). A failure is returned, not recorded.
    pub async fn preview(&self, trigger: &LiveTrigger, max: usize) -> Result<Vec<crate::contract::Event>, Outcome> {
        let _turn = trigger.poll_turn().await;
        let (loaded, tick) = self.tick(trigger, now_ms()).await?;
        let scope = self.triggers.scope(&trigger.row.id, &loaded);
        match loaded.plugin.run(self.triggers.call_context(trigger), RunInput::Poll(tick), scope).await {
            Ok(output) => match output.value {
                Ok(mut run) => {
                    run.events.truncate(max);
                    Ok(run.events)
                }
                Err(error) => Err(Outcome::ConnectorFailed(error)),
            },
            Err(error) => Err(Outcome::CallFailed(error.kind)),
        }
    }

    async fn refreshed(&self, trigger: &LiveTrigger, context: &TriggerContext) -> bool {
        let connections = self.triggers.connections();
        connections.refreshed_after_unauthorized(trigger.row.connection_id.as_deref(), context).await
    }

    async fn record_poll_failure(&self, trigger: &LiveTrigger, failure: FailureRow, fuel: u64, poll: PollRecord) {
        self.record_as(trigger, failure, fuel, FailedCall::Poll(poll)).await;
    }

    /// Commits a run's events (with the call's kv writes and stats, in
    /// `commit`) in one transaction; for a source, each of its triggers'
    /// share of them in one commit per trigger, answered once all are.
    async fn commit(&self, trigger: &LiveTrigger, mut commit: DeliveryCommit, run: RunOutput) -> Outcome {
        if let Some(members) = &trigger.fan_out {
            return self.fan_out(trigger, members, commit, run).await;
        }
        let poll = commit.poll;
        // The output waits for the committer outside any call slot: it
        // counts against the same budget as bodies until it is stored.
        let held = u32::try_from(run.size_bytes()).unwrap_or(u32::MAX);
        let Ok(output_budget) = Arc::clone(&self.budget).try_acquire_many_owned(held) else {
            return Outcome::Unavailable("overloaded");
        };
        let received_at_ms = now_ms();
        let total = run.events.len();
        let events: Vec<_> =
            run.events.into_iter().filter(|event| admitted(&trigger.filters, event, &OnceCell::new())).collect();
        let filtered = total - events.len();
        commit.events.reserve(events.len());
        for event in events {
            let Some(event) = to_store(event, received_at_ms) else {
                return Outcome::Unavailable("try again");
            };
            commit.events.push(event);
        }
        record_event_ids(&commit.events);
        match self.committer.commit(commit, output_budget).await {
            Ok(stored) => {
                Outcome::Stored { stored: stored.stored, duplicates: stored.duplicates, filtered, response: run.response }
            }
            Err(StoreError::Busy) => Outcome::Unavailable("storage busy"),
            Err(StoreError::NotFound) => Outcome::Gone,
            Err(StoreError::LeaseLost(_)) => Outcome::Elsewhere { until_ms: None },
            // Recorded as what it was: a refused poll is a failed poll, not
            // a delivery received.
            Err(error @ StoreError::Quota(_)) => {
                match poll {
                    Some(poll) => self.record_poll_failure(trigger, commit_failure("poll", error.to_string()), 0, poll).await,
                    None => self.record(trigger, commit_failure("deliver", error.to_string()), 0).await,
                }
                Outcome::OutputRefused
            }
            Err(error) => {
                tracing::error!(trigger = %trigger.row.id, %error, "commit failed");
                Outcome::Unavailable("storage unavailable")
            }
        }
    }

    /// Commits each event of a source's delivery to every trigger of the
    /// source that wants it, deduplicated per trigger. The call's kv writes
    /// (the source's) and fuel go with the first commit; a trigger deleted
    /// meanwhile is skipped.
    async fn fan_out(&self, source: &LiveTrigger, members: &[Member], commit: DeliveryCommit, run: RunOutput) -> Outcome {
        let received_at_ms = now_ms();
        let (mut commits, mut filtered) = (Vec::new(), 0);
        // Each payload is parsed once, when a trigger's filters first look into it.
        let parsed: Vec<OnceCell<Option<serde_json::Value>>> = run.events.iter().map(|_| OnceCell::new()).collect();
        for member in members {
            let mut events = Vec::new();
            let wanted: Vec<_> =
                run.events.iter().zip(&parsed).filter(|(event, _)| member.wanted.matches(&event.event_type)).collect();
            for (event, parsed) in &wanted {
                if !admitted(&member.filters, event, parsed) {
                    filtered += 1;
                    continue;
                }
                let Some(event) = to_store((*event).clone(), received_at_ms) else {
                    return Outcome::Unavailable("try again");
                };
                events.push(event);
            }
            if !events.is_empty() {
                let share = DeliveryCommit {
                    trigger_id: member.id.clone(),
                    events,
                    fuel_used: 0,
                    kv_writes: KvWrites::default(),
                    ..commit.clone()
                };
                commits.push(share);
            }
        }
        let (fuel_used, kv_writes) = (commit.fuel_used, commit.kv_writes);
        match commits.first_mut() {
            Some(first) => (first.fuel_used, first.kv_writes) = (fuel_used, kv_writes),
            None => {
                if let Err(error) = self.store.commit_kv(&kv_writes).await {
                    tracing::warn!(source = %source.row.id, %error, "cannot store a delivery's kv writes");
                    return Outcome::Unavailable("storage unavailable");
                }
            }
        }
        // All shares wait for the committer at once, so they can share a
        // group commit.
        let mut held = Vec::with_capacity(commits.len());
        for share in commits {
            let size: usize = share.events.iter().map(|event| event.payload.len()).sum();
            let Ok(budget) = Arc::clone(&self.budget).try_acquire_many_owned(u32::try_from(size).unwrap_or(u32::MAX)) else {
                return Outcome::Unavailable("overloaded");
            };
            held.push((share, budget));
        }
        let mut committing = tokio::task::JoinSet::new();
        for (share, budget) in held {
            let committer = self.committer.clone();
            committing.spawn(async move { committer.commit(share, budget).await });
        }
        let committed = committing.join_all().await;
        let (mut stored, mut duplicates) = (0, 0);
        for result in committed {
            match result {
                Ok(outcome) => (stored, duplicates) = (stored + outcome.stored, duplicates + outcome.duplicates),
                Err(StoreError::NotFound) => {}
                Err(StoreError::Busy) => return Outcome::Unavailable("storage busy"),
                Err(error @ StoreError::Quota(_)) => {
                    self.record(source, commit_failure("deliver", error.to_string()), 0).await;
                    return Outcome::OutputRefused;
                }
                Err(error) => {
                    tracing::error!(source = %source.row.id, %error, "commit failed");
                    return Outcome::Unavailable("storage unavailable");
                }
            }
        }
        Outcome::Stored { stored, duplicates, filtered, response: run.response }
    }

    /// The plugin serving a poll, and its tick: when it was scheduled and
    /// when the trigger last polled successfully.
    async fn tick(&self, trigger: &LiveTrigger, at_ms: i64) -> Result<(LoadedPlugin, PollTick), Outcome> {
        let last_success = match self.store.poll_state(&trigger.row.id).await {
            Ok(state) => state.last_success_at_ms,
            Err(StoreError::Busy) => return Err(Outcome::Unavailable("storage busy")),
            Err(_) => return Err(Outcome::Unavailable("storage unavailable")),
        };
        let loaded = self.plugin_of(trigger).ok_or(Outcome::Unavailable("connector unavailable"))?;
        let tick = PollTick {
            scheduled_at_ms: u64::try_from(at_ms).unwrap_or(0),
            last_success_at_ms: last_success.and_then(|ms| u64::try_from(ms).ok()),
        };
        Ok((loaded, tick))
    }

    /// The plugin version serving the trigger, if it is loaded.
    fn plugin_of(&self, trigger: &LiveTrigger) -> Option<LoadedPlugin> {
        self.triggers.registry().resolve(&trigger.row.plugin, trigger.row.plugin_version.as_deref()).ok()
    }

    async fn tally(&self, trigger: &LiveTrigger, tally: Tally, fuel: u64) {
        for (id, fuel) in recipients(trigger, fuel) {
            if let Err(error) = self.store.tally(id, tally, fuel).await {
                tracing::warn!(trigger = %id, %error, "cannot update stats");
            }
        }
    }

    async fn record(&self, trigger: &LiveTrigger, failure: FailureRow, fuel: u64) {
        self.record_as(trigger, failure, fuel, FailedCall::Delivery).await;
    }

    async fn record_as(&self, trigger: &LiveTrigger, failure: FailureRow, fuel: u64, call: FailedCall) {
        for (id, fuel) in recipients(trigger, fuel) {
            if let Err(error) = self.store.record_failure(id, &failure, fuel, call).await {
                tracing::warn!(trigger = %id, %error, "cannot record failure");
            }
        }
    }
}

/// Whether `filters` admit `event`; its payload is parsed (into `parsed`)
/// only when a rule looks into it.
fn admitted(
    filters: &crate::filters::Filters,
    event: &crate::contract::Event,
    parsed: &OnceCell<Option<serde_json::Value>>,
) -> bool {
    if filters.is_empty() {
        return true;
    }
    let payload = if filters.reads_payload() {
        parsed.get_or_init(|| serde_json::from_str(&event.payload).ok()).as_ref()
    } else {
        None
    };
    filters.admits(&event.event_type, payload)
}

/// A span for one call of `trigger`'s connector; `version`, `event_ids`
/// and `outcome` are filled in as they are known.
fn call_span(name: &'static str, trigger: &LiveTrigger) -> tracing::Span {
    use tracing::field::Empty;
    match name {
        "poll" => tracing::info_span!("poll", trigger = %trigger.row.id, plugin = %trigger.row.plugin, version = Empty, event_ids = Empty, outcome = Empty),
        _ => tracing::info_span!("delivery", trigger = %trigger.row.id, plugin = %trigger.row.plugin, version = Empty, event_ids = Empty, outcome = Empty),
    }
}

/// Event ids shown on a span at most.
const SPAN_EVENT_IDS: usize = 20;

/// Puts the ids of the events about to be committed on the current span
/// (the first 20; a redelivery's id is given, then not stored).
fn record_event_ids(events: &[NewEvent]) {
    let span = tracing::Span::current();
    if span.is_disabled() || events.is_empty() {
        return;
    }
    let ids: Vec<&str> = events.iter().take(SPAN_EVENT_IDS).map(|event| event.id.as_str()).collect();
    let more = events.len().saturating_sub(SPAN_EVENT_IDS);
    let listed = if more > 0 { format!("{} (+{more})", ids.join(",")) } else { ids.join(",") };
    span.record("event_ids", listed.as_str());
}

/// A connector's event as the store takes it, with a new id (`None` when
/// the OS gives no randomness for one).
fn to_store(event: crate::contract::Event, received_at_ms: i64) -> Option<NewEvent> {
    Some(NewEvent {
        id: crate::ids::new_time_ordered_id("evt").ok()?,
        dedupe_key: event.dedupe_key,
        event_type: event.event_type,
        occurred_at_ms: event.occurred_at_ms.and_then(|ms| i64::try_from(ms).ok()),
        payload: event.payload,
        received_at_ms,
    })
}

/// Whose stats and failures a call's outcome goes to: the trigger's, or
/// every trigger of a source's (its fuel counted once, on the first).
fn recipients(trigger: &LiveTrigger, fuel: u64) -> Vec<(&str, u64)> {
    match &trigger.fan_out {
        Some(members) => members.iter().enumerate().map(|(i, m)| (m.id.as_str(), if i == 0 { fuel } else { 0 })).collect(),
        None => vec![(trigger.row.id.as_str(), fuel)],
    }
}

/// A commit for a call's output, its events added by [`Pipeline::commit`].
fn commit_of(
    trigger: &LiveTrigger,
    loaded: &LoadedPlugin,
    fuel_used: u64,
    kv_writes: KvWrites,
    poll: Option<PollRecord>,
) -> DeliveryCommit {
    DeliveryCommit {
        trigger_id: trigger.row.id.clone(),
        plugin_version: loaded.plugin.label().to_owned(),
        events: Vec::new(),
        fuel_used,
        kv_writes,
        poll,
        fence: None,
    }
}
