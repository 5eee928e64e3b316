//! A hostile connector cannot take what its neighbours need: pool slots,
//! the trigger lifecycle, page memory; and what the server keeps on disk
//! stays private to it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{WHSEC, component_bytes, signed_now, with_extra_instances};
use crate::host::{spawn_host, spawn_host_with_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_component_flooded_with_sleeping_deliveries_leaves_room_for_others() {
    // 8 calls at once, 4 per plugin. Each heavy call holds 3 + 60 core
    // instances until its 3 s deadline: a pool shared without per-component
    // caps (16 per call, 128 in all) runs dry at the second.
    let config = "[limits]\nconcurrent_calls = 8\nconcurrent_calls_per_plugin = 4\nwall_clock_ms = 3000\n";
    let host = spawn_host_with_config(config).await;
    host.upload_plugin("standard_webhooks").await;
    let healthy = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let heavy = with_extra_instances(&component_bytes("hostile"), "(module)", 60);
    let (status, body) = host.upload(heavy).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sleeper = host.enabled_trigger("hostile", "sleep", None).await;

    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (http, url) = (host.http.clone(), format!("{}/hooks/{sleeper}", host.url));
        flood.spawn(async move { http.post(url).body("{}").send().await.map(|r| r.status()) });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..5 {
        let body = format!(r#"{{"n":{n}}}"#);
        let response = host.deliver(&healthy, &signed_now(&format!("msg_flood_{n}"), body.as_bytes()), body.as_bytes()).await;
        assert_eq!(response.status(), StatusCode::OK, "healthy delivery {n} during the flood");
    }
    let mut statuses = Vec::new();
    while let Some(status) = flood.join_next().await {
        statuses.push(status.expect("task").expect("answered"));
    }
    // Sleepers hit their deadline (502) or the plugin's concurrency cap (503).
    assert!(statuses.iter().all(|s| *s == StatusCode::BAD_GATEWAY || *s == StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE), "{statuses:?}");
    let (_, failures) = host.api(Method::GET, &format!("/triggers/{sleeper}/failures?limit=500"), None).await;
    let codes: Vec<_> = failures["failures"].as_array().expect("failures").iter().map(|f| f["code"].clone()).collect();
    assert!(codes.contains(&json!("deadline")) && codes.contains(&json!("overloaded")), "{codes:?}");
}

#[tokio::test]
async fn an_upload_over_the_pool_caps_is_refused_with_a_reason() {
    let host = spawn_host().await;
    let (status, body) = host.upload(with_extra_instances(&component_bytes("hostile"), "(module)", 100)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("103 core instances, over the limit of 64 per component"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disable_during_a_slow_enable_wins() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    let body = json!({ "plugin": "hostile", "trigger": "slow_enable", "config": { "enable_delay_ms": 1500 } });
    let (_, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let enabling = {
        let (http, url) = (host.http.clone(), format!("{}/api/v1/triggers/{id}/enable", host.url));
        tokio::spawn(async move { http.post(url).bearer_auth(crate::host::TOKEN).send().await.map(|r| r.status()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, disabled) = host.api(Method::POST, &format!("/triggers/{id}/disable"), None).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(enabling.await.expect("task").expect("answered"), StatusCode::OK);
    // The disable came last, so it holds.
    let (_, trigger) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
    assert_eq!(trigger["status"], "disabled", "{trigger}");
    assert_eq!(host.deliver(&id, &[], b"{}").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patching_a_trigger_does_not_refill_its_rate_bucket() {
    let host = spawn_host_with_config("[ingress]\nrate_per_second = 1\nburst = 2\n").await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(host.deliver(&id, &signed_now(&format!("msg_b{n}"), b"{}"), b"{}").await.status());
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let (status, _) = host.api(Method::PATCH, &format!("/triggers/{id}"), Some(json!({ "config": {} }))).await;
    assert_eq!(status, StatusCode::OK);
    let after = host.deliver(&id, &signed_now("msg_after_patch", b"{}"), b"{}").await.status();
    assert_eq!(after, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn event_pages_are_bounded_by_bytes_as_well_as_count() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    let id = host.enabled_trigger_with("hostile", "huge_payload", None, json!({ "payload_bytes": 3 << 20 })).await;
    for _ in 0..3 {
        assert_eq!(host.deliver(&id, &[], b"{}").await.status(), StatusCode::OK);
    }
    // 3 MiB each against a 4 MiB page: one event a page, however high the limit.
    let (status, page) = host.api(Method::GET, &format!("/triggers/{id}/events?limit=500"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["events"].as_array().map(Vec::len), Some(1));
    assert!(page["next_cursor"].is_string(), "more follow");
    assert_eq!(host.all_events(&id).await.len(), 3);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_database_and_blobs_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let host = spawn_host().await;
    let original = component_bytes("standard_webhooks");
    host.upload_plugin("standard_webhooks").await;
    let mode = |path: std::path::PathBuf| std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    assert_eq!(mode(host.data_dir.clone()), 0o700);
    // On PostgreSQL the database is the server's, not a file of the host.
    if host.schema.is_none() {
        for file in ["triggerhost.db", "triggerhost.db-wal"] {
            assert_eq!(mode(host.data_dir.join(file)), 0o600, "{file}");
        }
    }

    // The same version with other bytes: 409, and its blob is not kept.
    let mut other = original;
    other.extend_from_slice(&[0x00, 0x04, 0x01, b'x', 0xAB, 0xCD]);
    let (status, _) = host.upload(other).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let blobs: Vec<_> = std::fs::read_dir(host.data_dir.join("plugins/sha256"))
        .expect("blob dir")
        .filter_map(|entry| entry.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(blobs[0].ends_with(".wasm"), "{blobs:?}");
}

#[tokio::test]
async fn failure_pages_are_bounded_by_bytes_as_well_as_count() {
    // Each failure keeps a 3 MiB log: one a page, however high the limit.
    let host = spawn_host_with_config("[limits]\nmax_log_bytes = 3145728\n").await;
    host.upload_plugin("hostile").await;
    let id = host.enabled_trigger_with("hostile", "log_flood", None, json!({ "fail": true })).await;
    for _ in 0..3 {
        assert_eq!(host.deliver(&id, &[], b"{}").await.status(), StatusCode::BAD_GATEWAY);
    }
    let (status, page) = host.api(Method::GET, &format!("/triggers/{id}/failures?limit=500"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["failures"].as_array().map(Vec::len), Some(1));
    let mut seen = 1;
    let mut cursor = page["next_cursor"].as_str().expect("more follow").to_owned();
    loop {
        let (_, page) = host.api(Method::GET, &format!("/triggers/{id}/failures?limit=500&cursor={cursor}"), None).await;
        seen += page["failures"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_output_counts_against_the_delivery_budget() {
    // A 4.5 MiB budget for everything deliveries hold. Two senders stall
    // one byte short of a 1 MiB body, holding 2 MiB of it; 3 MiB of events
    // then do not fit.
    let config = "[limits]\nmax_output_bytes = 3670016\n[ingress]\nmax_buffered_bytes = 4718592\n";
    let host = spawn_host_with_config(config).await;
    host.upload_plugin("hostile").await;
    host.upload_plugin("standard_webhooks").await;
    let healthy = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let id = host.enabled_trigger_with("hostile", "huge_payload", None, json!({ "payload_bytes": 3 << 20 })).await;

    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(host.address()).await.expect("connect");
        let head = format!("POST /hooks/{healthy} HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.expect("head");
        tokio::io::AsyncWriteExt::write_all(&mut stream, &vec![b' '; (1 << 20) - 1]).await.expect("body");
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = host.deliver(&id, &[], b"{}").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert!(host.all_events(&id).await.is_empty());

    // Once the stalled bodies are gone, the same delivery fits.
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(host.deliver(&id, &[], b"{}").await.status(), StatusCode::OK);
}
