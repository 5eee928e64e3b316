//! Activating a version that would break triggers: refused with the list
//! (a trigger name gone, a config that no longer validates, a capability
//! not granted), forced (the broken triggers disabled, each with its
//! reason), rolled back, and versions deleted only when nothing uses them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host, spawn_host_with_config};
use crate::server::cli::{cli, stdout};

async fn create(host: &Host, trigger: &str, label: &str, pin: Option<&str>) -> String {
    let body = json!({ "plugin": "evolving", "trigger": trigger, "config": { "label": label }, "plugin_version": pin });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, enabled) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("enabled")), "{enabled}");
    id
}

async fn activate(host: &Host, version: &str, force: bool) -> (StatusCode, Value) {
    host.api(Method::POST, "/plugins/evolving/activate", Some(json!({ "version": version, "force": force }))).await
}

/// The ids of the triggers a refusal or a forced activation names.
fn named(breakages: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        breakages.as_array().into_iter().flatten().filter_map(|b| b["trigger_id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    ids
}

async fn status_of(host: &Host, id: &str) -> Value {
    host.api(Method::GET, &format!("/triggers/{id}"), None).await.1
}

#[tokio::test]
async fn an_activation_that_would_break_triggers_is_refused_unless_forced() {
    let host = spawn_host().await;
    host.upload_plugin("evolving").await;
    let alpha = create(&host, "alpha", "any", None).await;
    let red = create(&host, "beta", "red", None).await;
    let blue = create(&host, "beta", "blue", None).await;
    let delta = create(&host, "delta", "any", None).await;
    let pinned = create(&host, "alpha", "any", Some("1.0.0")).await;
    let uploaded = host.upload_plugin("evolving_next").await;
    assert_eq!((uploaded["version"].as_str(), uploaded["active"].as_bool()), (Some("2.0.0"), Some(false)));

    // 2.0.0 asks for the key-value store, not granted: refused, forced or not.
    for force in [false, true] {
        let (status, refused) = activate(&host, "2.0.0", force).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("not-granted")), "{refused}");
    }
    let grant = json!({ "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/evolving/grants", Some(grant)).await.0, StatusCode::OK);

    // Granted, it would still break alpha (gone), red (not a colour it
    // takes) and delta (polled now); blue fits, and the pinned trigger
    // stays on 1.0.0.
    let (status, refused) = activate(&host, "2.0.0", false).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("would-break-triggers")), "{refused}");
    let breakages = &refused["error"]["details"]["breakages"];
    let mut expected = vec![alpha.clone(), red.clone(), delta.clone()];
    expected.sort();
    assert_eq!(named(breakages), expected, "{refused}");
    let problem = |id: &str| {
        breakages.as_array().into_iter().flatten().find(|b| b["trigger_id"] == id).map(|b| b["problem"].to_string())
    };
    assert!(problem(&alpha).is_some_and(|p| p.contains("has no trigger alpha")), "{refused}");
    assert!(problem(&red).is_some_and(|p| p.contains("no longer validates at /label")), "{refused}");
    assert!(problem(&delta).is_some_and(|p| p.contains("would become a polling trigger")), "{refused}");
    let (_, plugin) = host.api(Method::GET, "/plugins/evolving", None).await;
    assert_eq!(plugin["active_version"], "1.0.0", "a refused activation changes nothing");
    assert_eq!(status_of(&host, &alpha).await["status"], "enabled");

    // The CLI says the same and changes nothing either.
    let output = cli(&host, &["plugin", "activate", "evolving", "2.0.0"]).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no trigger alpha"), "{output:?}");

    // Forced: the three are disabled, each saying why; the rest go on.
    let (status, forced) = activate(&host, "2.0.0", true).await;
    assert_eq!(status, StatusCode::OK, "{forced}");
    assert_eq!(named(&forced["disabled_triggers"]), expected, "{forced}");
    assert_eq!((forced["active_version"].as_str(), forced["previous_version"].as_str()), (Some("2.0.0"), Some("1.0.0")));
    for id in [&alpha, &red, &delta] {
        let view = status_of(&host, id).await;
        assert_eq!(view["status"], "disabled", "{view}");
        assert!(view["last_error"].as_str().is_some_and(|e| e.contains("disabled to activate evolving@2.0.0")), "{view}");
    }
    assert_eq!(host.deliver(&blue, &[], b"{\"n\":1}").await.status(), StatusCode::OK);
    assert_eq!(host.deliver(&pinned, &[], b"{\"n\":2}").await.status(), StatusCode::OK);
    assert_eq!(host.all_events(&blue).await[0]["plugin_version"], "evolving@2.0.0");
    assert_eq!(host.all_events(&pinned).await[0]["plugin_version"], "evolving@1.0.0");

    // Rolled back from the command line: 1.0.0 serves blue again.
    let output = cli(&host, &["plugin", "rollback", "evolving"]).await;
    assert_eq!(stdout(&output), "evolving@1.0.0 is active\n", "{output:?}");
    assert_eq!(host.deliver(&blue, &[], b"{\"n\":3}").await.status(), StatusCode::OK);
    assert_eq!(host.all_events(&blue).await[0]["plugin_version"], "evolving@1.0.0");
}

#[tokio::test]
async fn a_version_is_deleted_only_when_nothing_uses_it() {
    let host = spawn_host().await;
    host.upload_plugin("evolving").await;
    host.upload_plugin("evolving_next").await;
    let pinned = create(&host, "gamma", "any", Some("2.0.0")).await;

    let version = |version: &str| format!("/plugins/evolving/versions/{version}");
    let (status, refused) = host.api(Method::DELETE, &version("1.0.0"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("active")), "{refused}");
    let (status, refused) = host.api(Method::DELETE, &version("2.0.0"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("1 trigger(s) pin it")), "{refused}");

    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{pinned}"), None).await.0, StatusCode::NO_CONTENT);
    let output = cli(&host, &["plugin", "delete-version", "evolving", "2.0.0"]).await;
    assert_eq!(stdout(&output), "evolving@2.0.0 deleted\n", "{output:?}");
    assert_eq!(host.api(Method::DELETE, &version("2.0.0"), None).await.0, StatusCode::NOT_FOUND);
    let (_, plugin) = host.api(Method::GET, "/plugins/evolving", None).await;
    let versions: Vec<&str> = plugin["versions"].as_array().into_iter().flatten().filter_map(|v| v["version"].as_str()).collect();
    assert_eq!(versions, ["1.0.0"]);
    let body = json!({ "plugin": "evolving", "trigger": "gamma", "config": {}, "version": "2.0.0" });
    let (status, refused) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("evolving@2.0.0")), "a deleted version is gone: {refused}");
    // Uploading it again brings it back.
    host.upload_plugin("evolving_next").await;
    assert_eq!(host.api(Method::DELETE, &version("2.0.0"), None).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_and_a_rollback_under_load_fail_no_delivery() {
    use crate::helpers::{WHSEC, signed_now};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    // No per-trigger rate limit in the way: the load is the point.
    let host = spawn_host_with_config("[ingress]\nrate_per_second = 1000000\nburst = 1000000\n").await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    host.upload_plugin("standard_webhooks_next").await;

    // Eight senders deliver signed messages, one after another each, until told to stop.
    let (stop, sent, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (stop, sent, failed, http) = (Arc::clone(&stop), Arc::clone(&sent), Arc::clone(&failed), host.http.clone());
            let url = format!("{}/hooks/{id}", host.url);
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (delivery, body) = (format!("msg_swap_{sender}_{n}"), format!(r#"{{"n":{n}}}"#));
                    let mut request = http.post(&url).body(body.clone());
                    for (name, value) in signed_now(&delivery, body.as_bytes()) {
                        request = request.header(name, value);
                    }
                    match request.send().await {
                        Ok(response) if response.status() == StatusCode::OK => {}
                        other => failed.lock().expect("failures").push(format!("{delivery}: {other:?}")),
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let settle = || async { tokio::time::sleep(std::time::Duration::from_millis(700)).await };

    settle().await;
    let swap = json!({ "version": "0.2.0" });
    assert_eq!(host.api(Method::POST, "/plugins/standard-webhooks/activate", Some(swap)).await.0, StatusCode::OK);
    settle().await;
    let output = cli(&host, &["plugin", "rollback", "standard-webhooks"]).await;
    assert_eq!(stdout(&output), "standard-webhooks@0.1.0 is active\n", "{output:?}");
    settle().await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("sender");
    }

    let failed = failed.lock().expect("failures").clone();
    assert!(failed.is_empty(), "{} of {} deliveries failed: {:?}", failed.len(), sent.load(Ordering::Relaxed), &failed[..failed.len().min(5)]);
    let events = host.all_events(&id).await;
    assert_eq!(events.len(), sent.load(Ordering::Relaxed), "every delivery stored once");
    let count = |label: &str| events.iter().filter(|e| e["plugin_version"] == label).count();
    let (v1, v2) = (count("standard-webhooks@0.1.0"), count("standard-webhooks@0.2.0"));
    assert!(v1 > 0 && v2 > 0 && v1 + v2 == events.len(), "0.1.0: {v1}, 0.2.0: {v2} of {}", events.len());
    eprintln!("{} deliveries over a swap and a rollback: {v1} by 0.1.0, {v2} by 0.2.0, none failed", events.len());
    // Rolled back: the newest events are 0.1.0's again.
    assert_eq!(events[0]["plugin_version"], "standard-webhooks@0.1.0");
}
