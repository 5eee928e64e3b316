//! `GET /metrics`: Prometheus text format. The database's counters (the
//! cluster's, the same on every node), this node's call series, polling,
//! renewal, connection and delivery health, and the process's own.

mod calls;
mod process;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

pub use calls::{CallMetrics, CallSample, MetricsSettings};
pub use process::STARTED;

use crate::api::ApiError;
use crate::app::AppState;

/// Prometheus text format: totals over all triggers.
#[utoipa::path(get, path = "/metrics", tag = "meta", security(()),
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 503, description = "The database is busy", body = crate::api::ErrorBody),
    ))]
pub async fn serve(State(app): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
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
        metric(&mut text, &format!("{name}_total"), "counter", help, value);
    }
    metric(&mut text, "versions_loaded", "gauge", "Plugin versions in memory", app.registry.loaded_versions());
    let runtime = app.registry.runtime();
    metric(&mut text, "warm_instances", "gauge", "Idle instances kept for reuse", runtime.warm_instances());
    let compiles = runtime.compile_counts();
    for (name, help, value) in [
        ("components_compiled", "Components compiled", compiles.compiled),
        ("components_cached", "Components loaded from the precompiled cache", compiles.cached),
        ("precompiled_discarded", "Cached artifacts that failed a check and were compiled again", compiles.discarded),
    ] {
        metric(&mut text, &format!("{name}_total"), "counter", help, value);
    }
    let renewals = &app.renewals;
    for (outcome, value) in [("renewed", renewals.renewed()), ("reenabled", renewals.reenabled()), ("failed", renewals.failed())] {
        metric(&mut text, &format!("renewals_{outcome}_total"), "counter", &format!("Subscription renewals: {outcome}"), value);
    }
    let retention = &app.retention;
    for (rows, value) in [("events", retention.events()), ("failures", retention.failures())] {
        metric(&mut text, &format!("retention_{rows}_removed_total"), "counter", &format!("{rows} removed by retention"), value);
    }
    metric(&mut text, "call_logs_dropped_total", "counter", "Connector logs dropped because their writer was behind", app.call_logs.dropped());
    metric(&mut text, "otlp_spans_exported_total", "counter", "Spans an OTLP collector accepted", crate::telemetry::otlp::exported());
    metric(&mut text, "otlp_spans_dropped_total", "counter", "Spans not exported: queue full or the collector failed", crate::telemetry::otlp::dropped());
    app.call_metrics.render(&mut text);
    // Per-trigger health series, unless a very large install turned
    // per-trigger labels off.
    let per_trigger = app.call_metrics.per_trigger();
    if per_trigger {
        poll_metrics(&app, &mut text).await?;
        renewal_metrics(&app, &mut text).await?;
    }
    connection_metrics(&app, &mut text, per_trigger).await?;
    let (pending, destinations) = app.delivery.queue_depths().await?;
    app.delivery.metrics().render(&mut text, &pending, &destinations);
    process::render(&mut text);
    // Several nodes share the database: each series says which node answered
    // (the totals read from the database are the cluster's, the same on every node).
    if app.cluster.is_shared() {
        text = with_node_label(&text, app.cluster.node_id());
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

/// `text` with `node="<node>"` first among the labels of every sample.
fn with_node_label(text: &str, node: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            out.push_str(line);
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let (name, rest) = line.split_at(name_end);
            out.push_str(name);
            match rest.strip_prefix('{') {
                Some(labels) => out.push_str(&format!("{{node=\"{node}\",{labels}")),
                None => out.push_str(&format!("{{node=\"{node}\"}}{rest}")),
            }
        }
        out.push('\n');
    }
    out
}

/// One histogram's sample lines: cumulative `_bucket`s over `buckets`
/// (bound, count in that bucket alone), the `+Inf` bucket, `_sum` and `_count`.
pub(crate) fn write_histogram<B: std::fmt::Display>(
    text: &mut String,
    name: &str,
    labels: &str,
    buckets: impl IntoIterator<Item = (B, u64)>,
    sum: impl std::fmt::Display,
    count: u64,
) {
    use std::fmt::Write as _;
    let mut cumulative = 0;
    for (bound, in_bucket) in buckets {
        cumulative += in_bucket;
        let _ = writeln!(text, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(text, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}\n{name}_sum{{{labels}}} {sum}\n{name}_count{{{labels}}} {count}");
}

/// One series without labels, with its help and type lines.
fn metric(text: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    text.push_str(&format!("# HELP triggerhost_{name} {help}\n# TYPE triggerhost_{name} {kind}\ntriggerhost_{name} {value}\n"));
}

/// A per-trigger metric: name, Prometheus type, help, and its value.
type Series = (&'static str, &'static str, &'static str, fn(&crate::store::PollState) -> i64);

/// Per polling trigger: polls, failures, events, the last poll's duration
/// and whether it is healthy.
async fn poll_metrics(app: &AppState, text: &mut String) -> Result<(), ApiError> {
    let states = app.store.all_poll_states().await?;
    let rows: Vec<_> = app.triggers.list().await?.into_iter().filter(|row| row.poll_interval_s.is_some()).collect();
    let now = crate::store::now_ms();
    let series: [Series; 4] = [
        ("polls_total", "counter", "Polls run", |s| s.polls),
        ("poll_failures_total", "counter", "Polls that failed", |s| s.failures),
        ("poll_events_total", "counter", "Events stored by polls", |s| s.events),
        ("poll_duration_ms", "gauge", "How long the last poll took", |s| s.last_duration_ms.unwrap_or(0)),
    ];
    for (name, kind, help, value) in series {
        text.push_str(&format!("# HELP triggerhost_trigger_{name} {help}\n# TYPE triggerhost_trigger_{name} {kind}\n"));
        for row in &rows {
            let state = states.get(&row.id).cloned().unwrap_or_default();
            text.push_str(&format!("triggerhost_trigger_{name}{{trigger=\"{}\",plugin=\"{}\"}} {}\n", row.id, row.plugin, value(&state)));
        }
    }
    text.push_str("# HELP triggerhost_trigger_healthy Whether a polling trigger polls successfully\n");
    text.push_str("# TYPE triggerhost_trigger_healthy gauge\n");
    for row in &rows {
        let state = states.get(&row.id).cloned().unwrap_or_default();
        let healthy = crate::poller::is_healthy(row, &state, app.poller.unhealthy_after, now);
        text.push_str(&format!("triggerhost_trigger_healthy{{trigger=\"{}\",plugin=\"{}\"}} {}\n", row.id, row.plugin, u8::from(healthy)));
    }
    Ok(())
}

/// Per trigger with a subscription that expires: whether its renewal is in
/// order (0 after a failed renewal or once expired).
async fn renewal_metrics(app: &AppState, text: &mut String) -> Result<(), ApiError> {
    let states = app.store.all_renewal_states().await?;
    let now = crate::store::now_ms();
    text.push_str("# HELP triggerhost_trigger_renewal_healthy Whether a trigger's provider subscription is renewed in time
");
    text.push_str("# TYPE triggerhost_trigger_renewal_healthy gauge
");
    for row in app.triggers.list().await? {
        let state = states.get(&row.id).cloned().unwrap_or_default();
        if row.expires_at_ms.is_none() && state.failures == 0 {
            continue;
        }
        let healthy = crate::renewal::is_healthy(&row, &state, now);
        text.push_str(&format!("triggerhost_trigger_renewal_healthy{{trigger=\"{}\",plugin=\"{}\"}} {}\n", row.id, row.plugin, u8::from(healthy)));
    }
    Ok(())
}

/// Per connection: whether its credentials work (0 once it needs
/// re-authorization, which stops every trigger on it).
async fn connection_metrics(app: &AppState, text: &mut String, per_trigger: bool) -> Result<(), ApiError> {
    text.push_str("# HELP triggerhost_connection_healthy Whether a connection's credentials work\n");
    text.push_str("# TYPE triggerhost_connection_healthy gauge\n");
    let mut healthy = std::collections::HashMap::new();
    for row in app.store.list_connections().await? {
        let ok = row.status == crate::connections::status::CONNECTED;
        text.push_str(&format!("triggerhost_connection_healthy{{connection=\"{}\",plugin=\"{}\"}} {}\n", row.id, row.plugin, u8::from(ok)));
        healthy.insert(row.id, ok);
    }
    if !per_trigger {
        return Ok(());
    }
    text.push_str("# HELP triggerhost_trigger_connection_healthy Whether the connection a trigger uses works\n");
    text.push_str("# TYPE triggerhost_trigger_connection_healthy gauge\n");
    for row in app.triggers.list().await? {
        let Some(connection) = &row.connection_id else { continue };
        let ok = healthy.get(connection).copied().unwrap_or(false);
        text.push_str(&format!(
            "triggerhost_trigger_connection_healthy{{trigger=\"{}\",plugin=\"{}\",connection=\"{connection}\"}} {}\n",
            row.id,
            row.plugin,
            u8::from(ok)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_node_label;

    #[test]
    fn every_sample_gets_the_node_label_first_and_comments_stay() {
        let text = "# HELP a_total A\n# TYPE a_total counter\na_total 3\nb{trigger=\"t\"} 1\n";
        assert_eq!(
            with_node_label(text, "node_1"),
            "# HELP a_total A\n# TYPE a_total counter\na_total{node=\"node_1\"} 3\nb{node=\"node_1\",trigger=\"t\"} 1\n"
        );
    }
}
