//! Capabilities over the real server: webhook registration at a (fake)
//! provider through outbound HTTP and kv, and the hostile suite: every way
//! a connector may try to reach what it was not granted gets its typed
//! error, recorded on its trigger, while a healthy trigger is served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host, spawn_host_with_config};
use crate::provider::Provider;

async fn grant(host: &Host, plugin: &str, allow: Value) {
    let (status, body) = host
        .api(
            Method::PUT,
            &format!("/plugins/{plugin}/grants"),
            Some(allow),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn create(host: &Host, plugin: &str, trigger: &str, config: Value) -> String {
    let body = json!({ "plugin": plugin, "trigger": trigger, "config": config });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

async fn enable(host: &Host, id: &str) -> Value {
    let (status, trigger) = host
        .api(Method::POST, &format!("/triggers/{id}/enable"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{trigger}");
    trigger
}

async fn kv(host: &Host, id: &str, values: bool) -> Value {
    let (status, body) = host
        .api(
            Method::GET,
            &format!("/triggers/{id}/kv?values={values}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].clone()
}

#[tokio::test]
async fn on_enable_registers_the_webhook_at_the_provider_and_on_disable_removes_it() {
    let provider = Provider::start().await;
    let host = spawn_host().await;
    host.upload_plugin("registrar").await;
    let config = json!({ "provider": provider.url(), "token": "tok_provider_123" });

    // Before any grant, the connector cannot reach the provider.
    let id = create(&host, "registrar", "hook", config.clone()).await;
    let refused = enable(&host, &id).await;
    assert_eq!(refused["status"], "error");
    assert!(
        refused["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not granted")),
        "{refused}"
    );
    assert!(provider.calls().is_empty());

    grant(
        &host,
        "registrar",
        json!({ "outbound_hosts": [provider.url()], "key_value": true }),
    )
    .await;
    let enabled = enable(&host, &id).await;
    assert_eq!(enabled["status"], "enabled", "{enabled}");
    let calls = provider.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("POST", "/hooks")
    );
    assert_eq!(calls[0].body["url"], enabled["webhook_url"]);
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Bearer tok_provider_123")
    );
    let agent = calls[0].user_agent.clone().unwrap_or_default();
    assert!(
        agent.starts_with("triggerhost/") && agent.contains("registrar@0.1.0"),
        "{agent}"
    );

    // The hook id is kept in the trigger's kv; the operator sees sizes,
    // and values only when asking.
    let entries = kv(&host, &id, false).await;
    assert_eq!(
        (&entries[0]["key"], &entries[0]["size_bytes"]),
        (&json!("webhook.id"), &json!(6)),
        "{entries}"
    );
    assert!(
        entries[0].get("value").is_none(),
        "values are redacted unless asked for"
    );
    assert_eq!(kv(&host, &id, true).await[0]["value"], "hook_1");

    // Deliveries naming the hook are accepted; others are not.
    let accepted = host
        .deliver(&id, &[("x-hook-id".into(), "hook_1".into())], b"{\"n\":1}")
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let rejected = host
        .deliver(&id, &[("x-hook-id".into(), "hook_9".into())], b"{}")
        .await;
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);

    // Disabling removes the hook at the provider and forgets its id;
    // disabling again sends nothing and succeeds.
    let (_, disabled) = host
        .api(Method::POST, &format!("/triggers/{id}/disable"), None)
        .await;
    assert_eq!(
        (disabled["status"].as_str(), disabled["last_error"].as_str()),
        (Some("disabled"), None),
        "{disabled}"
    );
    assert_eq!(
        provider.calls().last().map(|c| c.path.clone()),
        Some("/hooks/hook_1".into())
    );
    assert!(provider.hooks().is_empty());
    assert_eq!(kv(&host, &id, false).await, json!([]));
    let (status, again) = host
        .api(Method::POST, &format!("/triggers/{id}/disable"), None)
        .await;
    assert_eq!(
        (status, again["status"].as_str()),
        (StatusCode::OK, Some("disabled"))
    );
    assert_eq!(provider.calls().len(), 2);

    // The provider failing leaves the trigger in error with its message,
    // and nothing kept; enabling again once it recovers works.
    provider.fail_creates(true);
    let failed = enable(&host, &id).await;
    assert_eq!(failed["status"], "error");
    let message = failed["last_error"].as_str().unwrap_or_default();
    assert!(
        message.contains("503") && message.contains("hook quota exceeded for this account"),
        "{message}"
    );
    assert_eq!(kv(&host, &id, false).await, json!([]));
    provider.fail_creates(false);
    assert_eq!(enable(&host, &id).await["status"], "enabled");
    assert_eq!(provider.hooks(), ["hook_2"]);

    // Deleting the trigger removes its hook and its kv entries.
    let (status, _) = host
        .api(Method::DELETE, &format!("/triggers/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(provider.hooks().is_empty());
}

/// Delivers to `healthy` until stopped; counts answers other than 200.
fn serve_healthy(
    host: &Host,
    healthy: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let (url, http) = (host.url.clone(), host.http.clone());
    tokio::spawn(async move {
        let (mut served, errors) = (0, AtomicUsize::new(0));
        while !stop.load(Ordering::Relaxed) {
            let body = format!("{{\"n\":{served}}}");
            let mut request = http
                .post(format!("{url}/hooks/{healthy}"))
                .body(body.clone());
            for (name, value) in signed_now(&format!("msg_healthy_{served}"), body.as_bytes()) {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(response) if response.status() == StatusCode::OK => {}
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            served += 1;
        }
        (served, errors.into_inner())
    })
}

/// Runs one hostile probe on a new trigger: the delivery's status, then its
/// answer if it succeeded or the failure it recorded, and the trigger.
async fn probe(host: &Host, trigger: &str, config: Value) -> (StatusCode, Value, String) {
    let id = create(host, "hostile", trigger, config).await;
    enable(host, &id).await;
    let response = host.deliver(&id, &[], b"{}").await;
    let status = response.status();
    if status == StatusCode::OK {
        return (status, response.json().await.unwrap_or(Value::Null), id);
    }
    let (_, failures) = host
        .api(Method::GET, &format!("/triggers/{id}/failures"), None)
        .await;
    (status, failures["failures"][0].clone(), id)
}

#[tokio::test]
async fn hostile_outbound_and_kv_attempts_get_typed_errors_recorded_on_their_trigger() {
    let provider = Provider::start().await;
    let port = provider.port;
    let host = spawn_host_with_config(
        "[limits]\nwall_clock_ms = 2000\nkv_max_keys = 20\n\n[ingress]\nrate_per_second = 100000\nburst = 100000\n\n\
         [outbound]\nresolve = { \"internal.test\" = [\"127.0.0.1\"] }\n",
    )
    .await;
    host.upload_plugin("hostile").await;
    host.upload_plugin("standard_webhooks").await;
    let allow = json!({
        "outbound_hosts": [
            provider.url(),
            format!("https://127.0.0.1:{port}"),
            format!("http://internal.test:{port}"),
            "https://api.example.com"
        ],
        "key_value": true,
    });
    grant(&host, "hostile", allow).await;
    let healthy = host
        .enabled_trigger("standard-webhooks", "message_received", Some(WHSEC))
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy_load = serve_healthy(&host, healthy.clone(), Arc::clone(&stop));

    let ok = format!("{}/ok", provider.url());
    let redirect = |to: &str| format!("{}/redirect?to={to}", provider.url());
    let not_granted = |origin: &str| format!(r#"HttpError::Denied("{origin} is not granted")"#);
    let denied: Vec<(String, String)> = vec![
        (
            "https://not-granted.example/".into(),
            not_granted("https://not-granted.example:443"),
        ),
        (
            "http://2130706433/latest".into(),
            not_granted("http://127.0.0.1:80"),
        ),
        ("http://0x7f.1/".into(), not_granted("http://127.0.0.1:80")),
        (
            "http://[::ffff:127.0.0.1]/".into(),
            not_granted("http://127.0.0.1:80"),
        ),
        (
            "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/".into(),
            not_granted("http://169.254.169.254:80"),
        ),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            not_granted("http://169.254.169.254:80"),
        ),
        (
            format!("http://internal.test:{port}/ok"),
            r#"HttpError::Denied("internal.test resolves to 127.0.0.1, a loopback address")"#
                .into(),
        ),
        (
            redirect(&format!("http://127.0.0.2:{port}/ok")),
            not_granted(&format!("http://127.0.0.2:{port}")),
        ),
        (
            redirect("http://169.254.169.254/"),
            not_granted("http://169.254.169.254:80"),
        ),
        (
            "/ok".into(),
            r#"HttpError::InvalidRequest("not an absolute URL: /ok")"#.into(),
        ),
        (
            format!("{}/big", provider.url()),
            "HttpError::TooLarge".into(),
        ),
        (
            format!("{}/stall", provider.url()),
            "HttpError::Timeout".into(),
        ),
    ];
    for (url, expected) in denied {
        let (status, failure, _) = probe(&host, "fetch", json!({ "url": url })).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{url}: {failure}");
        assert_eq!(
            (failure["code"].as_str(), failure["message"].as_str()),
            (Some("capability-denied"), Some(&*expected)),
            "{url}"
        );
        let log = failure["log"].as_str().unwrap_or_default();
        assert!(
            log.contains("HOST outbound-http: "),
            "{url}: the host notes the denial: {log:?}"
        );
    }
    // https means TLS: a granted https origin that speaks plain HTTP fails
    // the handshake; nothing falls back to plain text.
    let (status, failure, _) = probe(&host, "fetch", json!({ "url": format!("https://127.0.0.1:{port}/ok") })).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(failure["message"].as_str().is_some_and(|m| m.starts_with(r#"HttpError::Transport("tls: "#)), "{failure}");
    let (status, failure, _) = probe(&host, "fetch", json!({ "url": ok, "repeat": 17 })).await;
    assert_eq!(
        (status, failure["message"].as_str()),
        (
            StatusCode::BAD_GATEWAY,
            Some(r#"HttpError::Denied("more than 16 requests in one call")"#)
        )
    );

    // What is granted works, in any spelling of its address, and through
    // a redirect that stays within the grant (each hop counts as a request).
    for (url, repeat) in [
        (ok.clone(), 16),
        (format!("http://0x7f.1:{port}/ok"), 1),
        (redirect("/ok"), 8),
    ] {
        let (status, answer, _) =
            probe(&host, "fetch", json!({ "url": url, "repeat": repeat })).await;
        assert_eq!(
            (status, answer.clone()),
            (StatusCode::OK, json!({ "status": 200, "bytes": 5 })),
            "{url}"
        );
    }

    // kv: one trigger's keys are invisible to another, a prefix is literal,
    // and a call over the quota fails whole: none of its writes are kept.
    let writer = create(
        &host,
        "hostile",
        "kv_probe",
        json!({ "op": "write", "key": "secret", "value": "writer-only" }),
    )
    .await;
    enable(&host, &writer).await;
    assert_eq!(
        host.deliver(&writer, &[], b"{}").await.status(),
        StatusCode::OK
    );
    let (_, read, _) = probe(&host, "kv_probe", json!({ "op": "read", "key": "secret" })).await;
    assert_eq!(read, json!({ "value": null }));
    let (_, listed, _) = probe(&host, "kv_probe", json!({ "op": "list", "key": "" })).await;
    assert_eq!(listed, json!({ "keys": [] }));
    let (_, wildcard, _) = probe(&host, "kv_probe", json!({ "op": "list", "key": "%" })).await;
    assert_eq!(wildcard, json!({ "keys": [] }));
    // A prefix is literal text even among the trigger's own keys.
    for (prefix, keys) in [("%", json!([])), ("s_c%", json!([])), ("sec", json!(["secret"]))] {
        let patch = json!({ "config": { "op": "list", "key": prefix } });
        assert_eq!(host.api(Method::PATCH, &format!("/triggers/{writer}"), Some(patch)).await.0, StatusCode::OK);
        let listed: Value = host.deliver(&writer, &[], b"{}").await.json().await.expect("answer");
        assert_eq!(listed, json!({ "keys": keys }), "prefix {prefix}");
    }
    let filler = create(&host, "hostile", "kv_probe", json!({ "op": "fill" })).await;
    enable(&host, &filler).await;
    assert_eq!(
        host.deliver(&filler, &[], b"{}").await.status(),
        StatusCode::BAD_GATEWAY
    );
    let (_, failures) = host
        .api(Method::GET, &format!("/triggers/{filler}/failures"), None)
        .await;
    assert_eq!(failures["failures"][0]["message"], "KvError::TooManyKeys");
    assert_eq!(
        kv(&host, &filler, false).await,
        json!([]),
        "a failed call's writes are discarded"
    );
    assert_eq!(kv(&host, &writer, true).await[0]["value"], "writer-only");
    // Entries go with their trigger.
    assert_eq!(host.api(Method::DELETE, &format!("/triggers/{writer}"), None).await.0, StatusCode::NO_CONTENT);
    let mut database = crate::database::connect(&host).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM kv_entries WHERE trigger_id = $1")
        .bind(&writer)
        .fetch_one(&mut database)
        .await
        .expect("count");
    assert_eq!(left, 0, "a deleted trigger's kv entries are deleted");

    // The sandbox's other walls hold in the same run.
    let (status, _, id) = probe(&host, "escape", json!({ "port": port })).await;
    assert_eq!(status, StatusCode::OK);
    let escape = host.all_events(&id).await[0]["payload"].clone();
    assert_eq!(
        (
            &escape["file"],
            &escape["dir"],
            &escape["env_vars"],
            &escape["tcp"]
        ),
        (
            &json!("denied"),
            &json!("denied"),
            &json!(0),
            &json!("denied")
        )
    );
    assert_eq!(
        escape["http"],
        "denied: http://169.254.169.254:80 is not granted"
    );
    let (status, flood, _) = probe(&host, "stdout_flood", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let log = flood["log"].as_str().unwrap_or_default();
    assert!(
        log.len() <= 16 << 10,
        "100 MB to stdout kept {} bytes of log",
        log.len()
    );

    stop.store(true, Ordering::Relaxed);
    let (served, errors) = healthy_load.await.expect("healthy load");
    assert!(served > 0);
    assert_eq!(
        errors, 0,
        "the healthy trigger saw errors while {served} deliveries were served"
    );
}

#[tokio::test]
async fn a_plugin_holds_at_most_its_outbound_connections() {
    let provider = Provider::start().await;
    // The stall lasts the whole call: long enough for the probes below even
    // on a loaded machine.
    let host = spawn_host_with_config("[limits]\nwall_clock_ms = 5000\n\n[outbound]\nconnections_per_plugin = 1\n").await;
    host.upload_plugin("hostile").await;
    grant(&host, "hostile", json!({ "outbound_hosts": [provider.url()] })).await;
    let staller = create(&host, "hostile", "fetch", json!({ "url": format!("{}/stall", provider.url()) })).await;
    enable(&host, &staller).await;
    let stalled = {
        let (url, http) = (format!("{}/hooks/{staller}", host.url), host.http.clone());
        tokio::spawn(async move { http.post(url).body("{}").send().await.map(|r| r.status()) })
    };
    // Once the staller holds the plugin's one connection, another call of
    // the plugin is refused a second one at once.
    for _ in 0..500 {
        if provider.calls().iter().any(|call| call.path == "/stall") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut refused = None;
    for _ in 0..100 {
        let (status, failure, _) = probe(&host, "fetch", json!({ "url": format!("{}/ok", provider.url()) })).await;
        if status != StatusCode::OK {
            refused = Some(failure);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let refused = refused.expect("a second connection was refused while the first stalled");
    assert_eq!(
        refused["message"],
        r#"HttpError::Transport("the connector has as many connections open as it may")"#
    );
    assert_eq!(stalled.await.expect("staller").ok(), Some(StatusCode::BAD_GATEWAY));
    // The slot is given back when the stalled request ends.
    let (status, answer, _) = probe(&host, "fetch", json!({ "url": format!("{}/ok", provider.url()) })).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({ "status": 200, "bytes": 5 })));
}
