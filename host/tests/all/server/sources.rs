//! Sources (contract 0.3.0 `sharing`): GitHub triggers on one repository
//! share one repository webhook subscribed to the union of their events,
//! updated in place as triggers come and go; a delivery fans out to the
//! triggers that want it; `sync` puts back what the provider lost or
//! changed; an existing hook at our URL is adopted. Against the fake
//! provider on 127.0.0.1.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use triggerhost_sdk::signature::hmac_sha256_hex;

use crate::host::{Host, spawn_host, spawn_host_with_config};
use crate::provider::Provider;

const SECRET: &str = "It's a Secret to Everybody";

/// A host serving the connector built for a GitHub Enterprise Server on
/// 127.0.0.1, granted the fake provider.
async fn github_host(provider: &Provider, config: Option<&str>) -> Host {
    let host = match config {
        Some(config) => spawn_host_with_config(config).await,
        None => spawn_host().await,
    };
    host.upload_plugin("github_enterprise").await;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/github/grants", Some(allow)).await.0, StatusCode::OK);
    host
}

fn config(provider: &Provider, events: &[&str]) -> Value {
    json!({ "events": events, "repository": "octocat/Hello-World", "token": "ghp_test", "api_url": provider.url() })
}

async fn create(host: &Host, config: Value) -> Value {
    let body = json!({ "plugin": "github", "trigger": "event", "config": config, "secret": SECRET });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn post(host: &Host, path: &str) -> Value {
    let (status, answer) = host.api(Method::POST, path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    answer
}

async fn enabled(host: &Host, config: Value) -> String {
    let id = create(host, config).await["id"].as_str().unwrap_or_default().to_owned();
    let answer = post(host, &format!("/triggers/{id}/enable")).await;
    assert_eq!(answer["status"], "enabled", "{answer}");
    id
}

/// The one repository hook's events, sorted.
fn hook_events(provider: &Provider) -> Vec<String> {
    let hooks = provider.repo_hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let mut events: Vec<String> =
        hooks[0]["events"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_owned)).collect();
    events.sort();
    events
}

fn calls(provider: &Provider, method: &str) -> usize {
    provider.calls().iter().filter(|c| c.method == method && c.path.starts_with("/repos/")).count()
}

async fn send(host: &Host, to: &str, event: &str, delivery: &str, body: &Value) -> StatusCode {
    let body = body.to_string();
    let headers = vec![
        ("x-hub-signature-256".to_owned(), format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &[body.as_bytes()]))),
        ("x-github-event".to_owned(), event.to_owned()),
        ("x-github-delivery".to_owned(), delivery.to_owned()),
    ];
    host.deliver(to, &headers, body.as_bytes()).await.status()
}

async fn view(host: &Host, trigger: &str) -> Value {
    host.api(Method::GET, &format!("/triggers/{trigger}"), None).await.1
}

async fn types(host: &Host, trigger: &str) -> Vec<String> {
    host.all_events(trigger).await.iter().filter_map(|e| e["type"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn triggers_on_one_repository_share_one_webhook_updated_as_they_come_and_go() {
    let provider = Provider::start().await;
    let host = github_host(&provider, None).await;
    let issues = enabled(&host, config(&provider, &["issues"])).await;
    let push = enabled(&host, config(&provider, &["push"])).await;
    let release = enabled(&host, config(&provider, &["issues.opened", "release"])).await;

    // One hook, made once, then updated with each trigger's events.
    assert_eq!(hook_events(&provider), ["issues", "push", "release"]);
    assert_eq!((calls(&provider, "POST"), calls(&provider, "PATCH")), (1, 2), "{:?}", provider.calls());
    let (_, sources) = host.api(Method::GET, "/sources", None).await;
    let source = &sources["sources"][0];
    assert_eq!(sources["sources"].as_array().map(Vec::len), Some(1), "{sources}");
    assert_eq!(source["triggers"], json!([issues, push, release]));
    assert_eq!((source["status"].as_str(), source["registered_config"]["token"].as_str()), (Some("enabled"), Some("[redacted]")));
    let source_id = source["id"].as_str().unwrap_or_default().to_owned();
    for trigger in [&issues, &push, &release] {
        let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}"), None).await;
        assert_eq!((&view["source"], &view["webhook_url"]), (&json!(source_id), &source["webhook_url"]), "{view}");
    }
    assert_eq!(provider.repo_hooks()[0]["config"]["url"], source["webhook_url"]);

    // One delivery reaches exactly the triggers that want it, once each,
    // through each one's own filters.
    let only_first = json!({ "filters": [{ "pointer": "/issue/number", "equals": 1 }] });
    assert_eq!(host.api(Method::PATCH, &format!("/triggers/{issues}"), Some(only_first)).await.0, StatusCode::OK);
    assert_eq!(calls(&provider, "PATCH"), 2, "a filter is the host's business, not the provider's");
    let opened = json!({ "action": "opened", "issue": { "number": 1 } });
    assert_eq!(send(&host, &source_id, "issues", "d-1", &opened).await, StatusCode::OK);
    assert_eq!(send(&host, &source_id, "issues", "d-1", &opened).await, StatusCode::OK, "a redelivery");
    assert_eq!(send(&host, &source_id, "push", "d-2", &json!({ "ref": "refs/heads/main" })).await, StatusCode::OK);
    // A trigger's own URL leads to its source.
    assert_eq!(send(&host, &push, "release", "d-3", &json!({ "action": "published" })).await, StatusCode::OK);
    let second = json!({ "action": "opened", "issue": { "number": 2 } });
    assert_eq!(send(&host, &source_id, "issues", "d-4", &second).await, StatusCode::OK);
    assert_eq!(types(&host, &issues).await, ["issues.opened"], "number 2 filtered out");
    assert_eq!(types(&host, &push).await, ["push"]);
    assert_eq!(types(&host, &release).await, ["issues.opened", "release.published", "issues.opened"], "newest first");

    // A patch, a disable and deletes update the same hook in place.
    let patch = json!({ "config": config(&provider, &["push", "pull_request"]) });
    let (status, patched) = host.api(Method::PATCH, &format!("/triggers/{push}"), Some(patch)).await;
    assert_eq!((status, patched["last_error"].as_str()), (StatusCode::OK, None), "{patched}");
    assert_eq!(hook_events(&provider), ["issues", "pull_request", "push", "release"]);
    post(&host, &format!("/triggers/{release}/disable")).await;
    assert_eq!(hook_events(&provider), ["issues", "pull_request", "push"]);
    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{issues}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(hook_events(&provider), ["pull_request", "push"]);
    assert_eq!(calls(&provider, "POST"), 1, "never recreated: {:?}", provider.calls());
    // A disabled trigger receives nothing.
    assert_eq!(send(&host, &source_id, "release", "d-5", &json!({ "action": "edited" })).await, StatusCode::OK);
    assert_eq!(types(&host, &release).await.len(), 3);

    // The last enabled trigger gone, the hook is removed; the last trigger
    // gone, the source is too.
    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{push}"), None).await.0, StatusCode::NO_CONTENT);
    assert!(provider.repo_hooks().is_empty(), "{:?}", provider.repo_hooks());
    assert_eq!(host.deliver(&source_id, &[], b"{}").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{release}"), None).await.0, StatusCode::NO_CONTENT);
    let (_, sources) = host.api(Method::GET, "/sources", None).await;
    assert_eq!(sources["sources"], json!([]));
}

#[tokio::test]
async fn a_trigger_on_another_repository_or_without_one_has_its_own_registration() {
    let provider = Provider::start().await;
    let host = github_host(&provider, None).await;
    let one = enabled(&host, config(&provider, &["push"])).await;
    let mut elsewhere = config(&provider, &["push"]);
    elsewhere["repository"] = json!("octocat/Spoon-Knife");
    let other = enabled(&host, elsewhere).await;
    // A hook added by hand: no repository, its own URL and secret.
    let by_hand = enabled(&host, json!({ "events": ["push"] })).await;
    assert_eq!(provider.repo_hooks().len(), 2);
    let (one, other, by_hand) = (view(&host, &one).await, view(&host, &other).await, view(&host, &by_hand).await);
    assert_ne!(one["source"], other["source"]);
    assert_eq!(by_hand["source"], Value::Null);
    assert!(by_hand["webhook_url"].as_str().is_some_and(|url| url.ends_with(by_hand["id"].as_str().unwrap_or("?"))));

    // Moving a trigger to the other repository moves it to that source,
    // and the hook it leaves is removed.
    let patch = json!({ "config": { "events": ["push"], "repository": "octocat/Spoon-Knife", "token": "ghp_test", "api_url": provider.url() } });
    let (status, moved) = host.api(Method::PATCH, &format!("/triggers/{}", one["id"].as_str().unwrap_or_default()), Some(patch)).await;
    assert_eq!((status, &moved["source"]), (StatusCode::OK, &other["source"]), "{moved}");
    assert_eq!(provider.repo_hooks().len(), 1, "{:?}", provider.repo_hooks());
}

#[tokio::test]
async fn sync_puts_back_a_changed_hook_and_recreates_a_deleted_one() {
    let provider = Provider::start().await;
    let host = github_host(&provider, None).await;
    let trigger = enabled(&host, config(&provider, &["issues", "push"])).await;
    assert_eq!(post(&host, &format!("/triggers/{trigger}/sync")).await, json!({ "outcome": "in_sync" }));
    let hook = provider.repo_hooks()[0]["id"].as_u64().unwrap_or_default();

    provider.edit_repo_hook_events(hook, &["fork"]);
    assert_eq!(post(&host, &format!("/triggers/{trigger}/sync")).await, json!({ "outcome": "repaired" }));
    assert_eq!(hook_events(&provider), ["issues", "push"]);

    provider.remove_repo_hook(hook);
    assert_eq!(post(&host, &format!("/triggers/{trigger}/sync")).await, json!({ "outcome": "recreated" }));
    assert_eq!(hook_events(&provider), ["issues", "push"]);
    let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}"), None).await;
    assert_eq!(provider.repo_hooks()[0]["config"]["url"], view["webhook_url"]);
    // Deliveries go on through the new hook.
    assert_eq!(send(&host, &trigger, "push", "d-1", &json!({})).await, StatusCode::OK);
    assert_eq!(types(&host, &trigger).await, ["push"]);

    // A check that fails marks the trigger unhealthy with the provider's
    // answer, until one succeeds.
    provider.fail_hook_reads(true);
    let failed = post(&host, &format!("/triggers/{trigger}/sync")).await;
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("500")), "{failed}");
    let (_, health) = host.api(Method::GET, &format!("/triggers/{trigger}/health"), None).await;
    assert_eq!((health["healthy"].as_bool(), &health["sync_error"]), (Some(false), &failed["error"]), "{health}");
    provider.fail_hook_reads(false);
    assert_eq!(post(&host, &format!("/triggers/{trigger}/sync")).await, json!({ "outcome": "in_sync" }));
    let (_, health) = host.api(Method::GET, &format!("/triggers/{trigger}/health"), None).await;
    assert_eq!((health["healthy"].as_bool(), &health["sync_error"]), (Some(true), &Value::Null), "{health}");
}

#[tokio::test]
async fn the_sync_scheduler_recreates_a_hook_deleted_at_the_provider() {
    let provider = Provider::start().await;
    let host = github_host(&provider, Some("[sync]\ninterval_s = 1\n")).await;
    enabled(&host, config(&provider, &["push"])).await;
    let hook = provider.repo_hooks()[0]["id"].as_u64().unwrap_or_default();
    provider.remove_repo_hook(hook);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while provider.repo_hooks().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(hook_events(&provider), ["push"], "recreated by the scheduler");
    // The check is recorded just after the provider has the new hook.
    let mut sources = Value::Null;
    while tokio::time::Instant::now() < deadline {
        sources = host.api(Method::GET, "/sources", None).await.1;
        if sources["sources"][0]["synced_at_ms"].is_i64() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(sources["sources"][0]["synced_at_ms"].is_i64(), "{sources}");
}

#[tokio::test]
async fn an_existing_hook_pointing_at_our_url_is_adopted_not_duplicated() {
    let provider = Provider::start().await;
    let host = github_host(&provider, None).await;
    let created = create(&host, config(&provider, &["issues"])).await;
    let url = created["webhook_url"].as_str().unwrap_or_default();
    let existing = provider.add_repo_hook(url, &["fork"]);
    let id = created["id"].as_str().unwrap_or_default();
    assert_eq!(post(&host, &format!("/triggers/{id}/enable")).await["status"], "enabled");
    assert_eq!(provider.repo_hooks()[0]["id"], existing);
    assert_eq!(hook_events(&provider), ["issues"]);
    assert_eq!(calls(&provider, "POST"), 0, "{:?}", provider.calls());
}

#[tokio::test]
async fn a_patched_config_updates_a_registration_of_its_own_without_disabling_the_trigger() {
    let provider = Provider::start().await;
    let host = spawn_host().await;
    host.upload_plugin("registrar").await;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/registrar/grants", Some(allow)).await.0, StatusCode::OK);
    let trigger = host
        .enabled_trigger_with("registrar", "hook", None, json!({ "provider": provider.url(), "token": "tok_1" }))
        .await;
    let first = provider.hooks();
    let patch = json!({ "config": { "provider": provider.url(), "token": "tok_2" } });
    let (status, patched) = host.api(Method::PATCH, &format!("/triggers/{trigger}"), Some(patch)).await;
    assert_eq!((status, patched["status"].as_str(), patched["last_error"].as_str()), (StatusCode::OK, Some("enabled"), None), "{patched}");
    // The connector has no on-update of its own: the SDK's default removes
    // the old hook with the old token and registers with the new one.
    let calls: Vec<(String, String, Option<String>)> =
        provider.calls().iter().map(|c| (c.method.clone(), c.path.clone(), c.authorization.clone())).collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[1], ("DELETE".into(), format!("/hooks/{}", first[0]), Some("Bearer tok_1".into())));
    assert_eq!((calls[2].0.as_str(), calls[2].2.as_deref()), ("POST", Some("Bearer tok_2")));
    assert_eq!(provider.hooks().len(), 1);
    assert_ne!(provider.hooks(), first);
}

#[tokio::test]
async fn a_source_takes_at_most_256_triggers() {
    let provider = Provider::start().await;
    let host = github_host(&provider, None).await;
    for _ in 0..256 {
        create(&host, config(&provider, &["push"])).await;
    }
    let body = json!({ "plugin": "github", "trigger": "event", "config": config(&provider, &["push"]) });
    let (status, refused) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("256 triggers")), "{refused}");
    // Another repository is another source.
    let mut elsewhere = config(&provider, &["push"]);
    elsewhere["repository"] = json!("octocat/Spoon-Knife");
    create(&host, elsewhere).await;
}
