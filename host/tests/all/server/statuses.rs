//! The trigger state machine: `enabling` while the registration is made,
//! `error` with a retry scheduled with backoff (and taken automatically
//! until it works, or until the operator disables the trigger), and an
//! enable cut short by a crash made again after the restart.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host_with_config};
use crate::provider::Provider;

/// Retries after 1 s, doubling up to 4 s.
const FAST_RETRIES: &str = "[renewal]\nmin_backoff_s = 1\nmax_backoff_s = 4\n";

async fn registrar(provider: &Provider) -> (Host, String) {
    let host = spawn_host_with_config(FAST_RETRIES).await;
    host.upload_plugin("registrar").await;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/registrar/grants", Some(allow)).await.0, StatusCode::OK);
    let body = json!({ "plugin": "registrar", "trigger": "hook", "config": { "provider": provider.url(), "token": "tok" } });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    (host, id)
}

async fn view(host: &Host, id: &str) -> Value {
    host.api(Method::GET, &format!("/triggers/{id}"), None).await.1
}

/// Waits (at most 20 s) until the trigger's view satisfies `done`.
async fn until(host: &Host, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let view = view(host, id).await;
        if done(&view) {
            return view;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn creates(provider: &Provider) -> usize {
    provider.calls().iter().filter(|c| c.method == "POST").count()
}

#[tokio::test]
async fn a_failed_registration_is_retried_with_backoff_until_it_works() {
    let provider = Provider::start().await;
    let (host, id) = registrar(&provider).await;
    provider.fail_creates(true);
    let (_, failed) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!((failed["status"].as_str(), failed["retry_failures"].as_i64()), (Some("error"), Some(1)), "{failed}");
    let first_retry = failed["retry_at_ms"].as_i64().unwrap_or_default();
    assert!(failed["last_error"].as_str().is_some_and(|e| e.contains("hook quota exceeded")), "{failed}");

    // Tried again by itself, and again later: the wait doubles.
    let again = until(&host, &id, |v| v["retry_failures"] == 2).await;
    let second_retry = again["retry_at_ms"].as_i64().unwrap_or_default();
    assert!(second_retry - first_retry >= 1900, "{first_retry} then {second_retry}");
    assert_eq!(again["status"], "error");

    provider.fail_creates(false);
    let enabled = until(&host, &id, |v| v["status"] == "enabled").await;
    assert_eq!((enabled["retry_failures"].as_i64(), &enabled["retry_at_ms"]), (Some(0), &Value::Null), "{enabled}");
    assert_eq!(provider.hooks().len(), 1);
}

#[tokio::test]
async fn disabling_a_trigger_in_error_stops_its_retries() {
    let provider = Provider::start().await;
    let (host, id) = registrar(&provider).await;
    provider.fail_creates(true);
    assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await.1["status"], "error");
    let (_, disabled) = host.api(Method::POST, &format!("/triggers/{id}/disable"), None).await;
    assert_eq!((disabled["status"].as_str(), &disabled["retry_at_ms"]), (Some("disabled"), &Value::Null), "{disabled}");
    let tried = creates(&provider);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(creates(&provider), tried, "no retry after the disable");
    assert_eq!(view(&host, &id).await["status"], "disabled");
}

#[tokio::test]
async fn enabling_shows_while_registering_and_a_crash_meanwhile_is_retried_after_the_restart() {
    let provider = Provider::start().await;
    let (host, id) = registrar(&provider).await;
    provider.stall_creates(1500);
    let path = format!("/triggers/{id}/enable");
    let (enabled, seen) = tokio::join!(host.api(Method::POST, &path, None), until(&host, &id, |v| v["status"] == "enabling"));
    assert_eq!(seen["status"], "enabling");
    assert_eq!(enabled.1["status"], "enabled", "{}", enabled.1);
    assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/disable"), None).await.1["status"], "disabled");

    // Killed while registering: after the restart it is in error, and
    // enabled again at once.
    provider.stall_creates(10_000);
    tokio::select! {
        _ = host.api(Method::POST, &path, None) => panic!("the enable should still be stalled"),
        _ = until(&host, &id, |v| v["status"] == "enabling") => {}
    }
    provider.stall_creates(0);
    let host = host.restart().await;
    let enabled = until(&host, &id, |v| v["status"] == "enabled").await;
    assert_eq!(enabled["last_error"], Value::Null, "{enabled}");
}
