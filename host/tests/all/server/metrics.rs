//! `/metrics`: this node's call series per plugin and trigger, limit trips
//! by kind, events and duplicates, the process's own series, and the
//! per-trigger labels a large install turns off.

use reqwest::StatusCode;

use crate::helpers::{WHSEC, signed_now};
use crate::host::spawn_host_with_config;

/// The value of the sample that starts with `series ` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn calls_limit_trips_and_events_are_counted_per_plugin_and_trigger() {
    let host = spawn_host_with_config("").await;
    host.upload_plugin("hostile").await;
    host.upload_plugin("standard_webhooks").await;
    let webhooks = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let spinner = host.enabled_trigger("hostile", "spin", None).await;
    // One event, then its redelivery.
    for _ in 0..2 {
        let response = host.deliver(&webhooks, &signed_now("msg_metrics_1", b"{}"), b"{}").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(host.deliver(&spinner, &[], b"{}").await.status(), StatusCode::BAD_GATEWAY);

    let text = host.metrics().await;
    let ours = format!("plugin=\"standard-webhooks\",trigger=\"{webhooks}\"");
    let theirs = format!("plugin=\"hostile\",trigger=\"{spinner}\"");
    assert_eq!(sample(&text, &format!("triggerhost_calls_total{{{ours},export=\"deliver\",outcome=\"accepted\"}}")), Some(2.0), "{text}");
    assert_eq!(sample(&text, &format!("triggerhost_events_stored_total{{{ours}}}")), Some(1.0));
    assert_eq!(sample(&text, &format!("triggerhost_events_duplicate_total{{{ours}}}")), Some(1.0));
    assert_eq!(sample(&text, &format!("triggerhost_call_duration_seconds_count{{{ours}}}")), Some(2.0));
    assert_eq!(sample(&text, &format!("triggerhost_call_fuel_bucket{{{ours},le=\"+Inf\"}}")), Some(2.0));
    assert_eq!(sample(&text, &format!("triggerhost_calls_total{{{theirs},export=\"deliver\",outcome=\"out-of-fuel\"}}")), Some(1.0));
    assert_eq!(sample(&text, &format!("triggerhost_limit_trips_total{{{theirs},kind=\"out-of-fuel\"}}")), Some(1.0));
    assert!(sample(&text, &format!("triggerhost_call_fuel_sum{{{theirs}}}")).is_some_and(|fuel| fuel >= 1e8), "the spinner burnt its fuel");
    assert!(sample(&text, "process_resident_memory_bytes").is_some_and(|rss| rss > 1e6), "{text}");
    assert!(sample(&text, "process_cpu_seconds_total").is_some_and(|cpu| cpu > 0.0));
    assert!(sample(&text, "process_open_fds").is_some_and(|fds| fds > 3.0));
}

#[tokio::test]
async fn a_large_install_turns_per_trigger_labels_off() {
    let host = spawn_host_with_config("[metrics]\nper_trigger = false\n").await;
    host.upload_plugin("standard_webhooks").await;
    for n in 0..3 {
        let trigger = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
        let response = host.deliver(&trigger, &signed_now(&format!("msg_{n}"), b"{}"), b"{}").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let text = host.metrics().await;
    let series = "triggerhost_calls_total{plugin=\"standard-webhooks\",export=\"deliver\",outcome=\"accepted\"}";
    assert_eq!(sample(&text, series), Some(3.0), "one series for the plugin's three triggers: {text}");
    let labelled: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && l.contains("trigger=\"trg_")).collect();
    assert!(labelled.is_empty(), "no series per trigger: {labelled:?}");
}
