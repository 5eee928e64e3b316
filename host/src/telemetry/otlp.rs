//! Spans exported over OTLP/HTTP with the JSON encoding (`POST
//! <endpoint>`, e.g. `http://127.0.0.1:4318/v1/traces`), which every
//! OpenTelemetry collector accepts. A small `tracing` layer: closed spans
//! go through a bounded queue (full: dropped and counted, never waited
//! for) to one task that posts them in batches.
//!
//! The layer is installed at start and does nothing until [`start`] gives
//! it an endpoint (the config file is read after logging is set up).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Closed spans waiting for the exporter at most.
const QUEUE: usize = 4096;
/// Spans per request at most.
const BATCH: usize = 512;
/// How long a partial batch waits for more spans.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

static QUEUE_SENDER: OnceLock<mpsc::Sender<Value>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);
static EXPORTED: AtomicU64 = AtomicU64::new(0);

/// Spans dropped because the queue was full or a post failed.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Spans the collector accepted.
pub fn exported() -> u64 {
    EXPORTED.load(Ordering::Relaxed)
}

/// Starts exporting to `endpoint` (an `http://` OTLP/HTTP traces URL) as
/// `service`; a second call is ignored.
pub fn start(endpoint: url::Url, service: String) {
    let (sender, receiver) = mpsc::channel(QUEUE);
    if QUEUE_SENDER.set(sender).is_ok() {
        tokio::spawn(export(endpoint, service, receiver));
    }
}

/// What the layer sees: the host's own spans, once an exporter runs (so
/// with no endpoint, a span the log level leaves out costs nothing). Every
/// other callsite is ruled out once, when first hit: the compiler's own
/// fine-grained events must stay free.
pub fn filter() -> impl tracing_subscriber::layer::Filter<tracing_subscriber::Registry> {
    let ours = |metadata: &tracing::Metadata<'_>| metadata.is_span() && metadata.target().starts_with("triggerhost");
    tracing_subscriber::filter::dynamic_filter_fn(move |metadata, _| ours(metadata) && QUEUE_SENDER.get().is_some())
        .with_callsite_filter(move |metadata| {
            if ours(metadata) { tracing::subscriber::Interest::sometimes() } else { tracing::subscriber::Interest::never() }
        })
        .with_max_level_hint(tracing::level_filters::LevelFilter::INFO)
}

/// The layer; idle until [`start`].
pub fn layer() -> OtlpLayer {
    OtlpLayer
}

/// Records spans while an exporter is running.
#[derive(Debug, Clone, Copy)]
pub struct OtlpLayer;

/// What the layer keeps on an open span.
struct SpanData {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    start: SystemTime,
    attributes: Vec<(&'static str, Value)>,
}

/// Turns span fields into OTLP attribute values.
struct FieldValues<'a>(&'a mut Vec<(&'static str, Value)>);

impl FieldValues<'_> {
    fn set(&mut self, field: &Field, value: Value) {
        match self.0.iter_mut().find(|(key, _)| *key == field.name()) {
            Some((_, old)) => *old = value,
            None => self.0.push((field.name(), value)),
        }
    }
}

impl Visit for FieldValues<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, json!({ "stringValue": value }));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, json!({ "intValue": value.to_string() }));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field, json!({ "intValue": value.to_string() }));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, json!({ "boolValue": value }));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, json!({ "stringValue": format!("{value:?}") }));
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    // An id that could not be drawn is all zeros: the collector drops that
    // one span, nothing else breaks.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

fn unix_nanos(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default().to_string()
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if QUEUE_SENDER.get().is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|parent| parent.extensions().get::<SpanData>().map(|p| (p.trace_id, p.span_id)));
        let (trace_id, parent_span_id) = match parent {
            Some((trace_id, span_id)) => (trace_id, Some(span_id)),
            None => (random(), None),
        };
        let mut data = SpanData { trace_id, span_id: random(), parent_span_id, start: SystemTime::now(), attributes: Vec::new() };
        attrs.record(&mut FieldValues(&mut data.attributes));
        span.extensions_mut().insert(data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(data) = span.extensions_mut().get_mut::<SpanData>()
        {
            values.record(&mut FieldValues(&mut data.attributes));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let (Some(sender), Some(span)) = (QUEUE_SENDER.get(), ctx.span(&id)) else { return };
        let Some(data) = span.extensions_mut().remove::<SpanData>() else { return };
        let attributes: Vec<Value> = data.attributes.into_iter().map(|(key, value)| json!({ "key": key, "value": value })).collect();
        let record = json!({
            "traceId": hex::encode(data.trace_id),
            "spanId": hex::encode(data.span_id),
            "parentSpanId": data.parent_span_id.map(hex::encode).unwrap_or_default(),
            "name": span.name(),
            "kind": 1,
            "startTimeUnixNano": unix_nanos(data.start),
            "endTimeUnixNano": unix_nanos(SystemTime::now()),
            "attributes": attributes,
        });
        if sender.try_send(record).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Posts batches of spans until the process ends.
async fn export(endpoint: url::Url, service: String, mut spans: mpsc::Receiver<Value>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // The first span of a batch, then whatever comes within a second.
        if spans.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            match tokio::time::timeout_at(deadline, spans.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let count = batch.len() as u64;
        let body = json!({ "resourceSpans": [{
            "resource": { "attributes": [{ "key": "service.name", "value": { "stringValue": service } }] },
            "scopeSpans": [{ "scope": { "name": "triggerhost" }, "spans": std::mem::take(&mut batch) }],
        }]});
        match client.post(endpoint.clone()).json(&body).send().await {
            Ok(response) if response.status().is_success() => {
                EXPORTED.fetch_add(count, Ordering::Relaxed);
            }
            outcome => {
                DROPPED.fetch_add(count, Ordering::Relaxed);
                // Outside any span: this event is not exported itself.
                let why = outcome.map_or_else(|e| e.to_string(), |r| r.status().to_string());
                tracing::warn!(%why, spans = count, "OTLP export failed; spans dropped");
            }
        }
    }
}
