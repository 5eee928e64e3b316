//! Connector logs: what each call wrote, kept per trigger in a bounded
//! ring, at a bounded rate, readable over the API and the CLI.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::cli::{cli, stdout};
use crate::host::{Host, spawn_host_with_config};

async fn logs(host: &Host, id: &str) -> Vec<Value> {
    let (status, page) = host.api(Method::GET, &format!("/triggers/{id}/logs?limit=500"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["logs"].as_array().cloned().unwrap_or_default()
}

/// Waits until `done` holds for the trigger's logs (they are written
/// behind the calls); gives up after 20 s.
async fn logs_until(host: &Host, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..200 {
        let logs = logs(host, id).await;
        if done(&logs) {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<_> = logs(host, id).await.iter().map(|l| (seq(l), l["outcome"].clone(), l["skipped_calls"].clone())).collect();
    panic!("the logs never got there: (seq, outcome, skipped) {seen:?}");
}

fn seq(log: &Value) -> i64 {
    log["seq"].as_i64().expect("seq")
}

#[tokio::test]
async fn each_calls_log_is_kept_in_a_ring_per_trigger() {
    let host = spawn_host_with_config("[logs]\nkeep_per_trigger = 3\nper_trigger_per_s = 1000\n").await;
    host.upload_plugin("hostile").await;
    let chatty = host.enabled_trigger("hostile", "log_flood", None).await;

    // A successful call's log, cut at the per-call cap, is readable.
    assert_eq!(host.deliver(&chatty, &[], b"{}").await.status(), StatusCode::OK);
    let first = logs_until(&host, &chatty, |logs| logs.len() == 1).await;
    let log = &first[0];
    assert_eq!((log["export"].as_str(), log["outcome"].as_str()), (Some("deliver"), Some("accepted")));
    assert_eq!(log["plugin_version"], "0.1.0");
    let text = log["text"].as_str().expect("text");
    assert!(text.contains("flood flood") && text.len() <= 20 << 10, "{} bytes", text.len());
    assert!(log["dropped_bytes"].as_i64().is_some_and(|d| d > 1 << 20), "{}", log["dropped_bytes"]);

    // Four more calls: the newest three are kept, no more.
    for _ in 0..4 {
        assert_eq!(host.deliver(&chatty, &[], b"{}").await.status(), StatusCode::OK);
    }
    let kept = logs_until(&host, &chatty, |logs| logs.first().is_some_and(|newest| seq(newest) >= seq(log) + 4)).await;
    assert_eq!(kept.iter().map(seq).collect::<Vec<_>>(), vec![seq(log) + 4, seq(log) + 3, seq(log) + 2]);

    // A failed call's log is kept too, under its error's code.
    let failing = host.enabled_trigger("hostile", "panic", None).await;
    assert_eq!(host.deliver(&failing, &[], b"{}").await.status(), StatusCode::BAD_GATEWAY);
    let failed = logs_until(&host, &failing, |logs| !logs.is_empty()).await;
    assert_eq!(failed[0]["outcome"], "guest-trap");
    assert!(failed[0]["text"].as_str().is_some_and(|t| t.contains("panicked on purpose")), "{}", failed[0]["outcome"]);

    // The CLI prints them oldest first, with a header per call.
    let output = cli(&host, &["trigger", "logs", &chatty, "-n", "2"]).await;
    assert!(output.status.success(), "{output:?}");
    let printed = stdout(&output);
    assert_eq!(printed.lines().filter(|l| l.starts_with("--- ") && l.contains(" deliver accepted 0.1.0")).count(), 2, "{printed}");

    // Newer than a seq, oldest first: what --follow asks for.
    let (_, after) = host.api(Method::GET, &format!("/triggers/{chatty}/logs?after={}", seq(&kept[2])), None).await;
    let seqs: Vec<i64> = after["logs"].as_array().expect("logs").iter().map(seq).collect();
    assert_eq!(seqs, vec![seq(&kept[1]), seq(&kept[0])]);
}

#[tokio::test]
async fn a_trigger_over_its_log_rate_has_the_calls_it_skipped_counted() {
    let host = spawn_host_with_config("[logs]\nper_trigger_per_s = 1\n").await;
    host.upload_plugin("hostile").await;
    let chatty = host.enabled_trigger("hostile", "log_flood", None).await;
    for _ in 0..12 {
        assert_eq!(host.deliver(&chatty, &[], b"{}").await.status(), StatusCode::OK);
    }
    // A token comes back after a second: this call's log is kept. Every
    // call is either kept or counted on the next kept one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(host.deliver(&chatty, &[], b"{}").await.status(), StatusCode::OK);
    let accounted = |logs: &[Value]| logs.len() as i64 + logs.iter().map(|l| l["skipped_calls"].as_i64().unwrap_or(0)).sum::<i64>();
    let kept = logs_until(&host, &chatty, |logs| accounted(logs) == 13).await;
    assert!(kept.len() < 13, "every call's log was kept: the rate did not hold");
    let skipped: Vec<i64> = kept.iter().map(|l| l["skipped_calls"].as_i64().unwrap_or(0)).collect();
    assert!(skipped.iter().any(|n| *n > 0), "the skipped calls are counted on the kept ones: {skipped:?}");
}
