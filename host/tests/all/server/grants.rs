//! Grants: a plugin may use what it requests and the operator allows, no
//! more; a version asking for more than is granted is not activated.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::host::spawn_host;

#[tokio::test]
async fn grants_narrow_the_request_and_gate_activation() {
    let host = spawn_host().await;
    // The hostile test connector requests api.example.com and the kv store.
    let uploaded = host.upload_plugin("hostile").await;
    let requested = json!({ "outbound_hosts": ["api.example.com", "127.0.0.1", "internal.test"], "key_value": true });
    assert_eq!(uploaded["requested"], requested);

    let (status, refused) = host.api(Method::POST, "/plugins/hostile/activate", Some(json!({ "version": "0.1.0" }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "not-granted");
    let everything = json!([
        "outbound host api.example.com",
        "outbound host 127.0.0.1",
        "outbound host internal.test",
        "key-value store"
    ]);
    assert_eq!(refused["error"]["details"], everything);

    // Allowing more than is requested grants only the request.
    let allow = json!({
        "outbound_hosts": ["https://*.example.com", "https://api.github.com", "http://2130706433:9000", "https://internal.test"],
        "key_value": true,
    });
    let (status, granted) = host.api(Method::PUT, "/plugins/hostile/grants", Some(allow)).await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(
        granted["granted"],
        json!({
            "outbound_hosts": ["http://127.0.0.1:9000", "https://api.example.com:443", "https://internal.test:443"],
            "key_value": true,
            "missing": []
        })
    );
    let (status, _) = host.api(Method::POST, "/plugins/hostile/activate", Some(json!({ "version": "0.1.0" }))).await;
    assert_eq!(status, StatusCode::OK);

    // Shown on the plugin, and kept across a restart.
    let host = host.restart().await;
    let (_, plugin) = host.api(Method::GET, "/plugins/hostile", None).await;
    assert_eq!(
        plugin["allowed"]["outbound_hosts"],
        json!(["https://*.example.com:443", "https://api.github.com:443", "http://127.0.0.1:9000", "https://internal.test:443"])
    );
    assert_eq!(plugin["versions"][0]["granted"]["outbound_hosts"][0], "http://127.0.0.1:9000");
    assert_eq!(plugin["versions"][0]["requested"]["key_value"], true);

    // Narrowing the allowance takes effect at once.
    let (_, narrowed) = host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({}))).await;
    assert_eq!(narrowed["granted"]["missing"], everything);
}

#[tokio::test]
async fn bad_grants_are_refused_with_a_reason() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    for origin in ["api.example.com", "ftp://api.example.com", "https://*.com", "https://user@api.example.com"] {
        let (status, body) =
            host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({ "outbound_hosts": [origin] }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{origin}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("origin")), "{body}");
    }
    let (status, _) = host.api(Method::PUT, "/plugins/nope/grants", Some(json!({ "key_value": true }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({ "everything": true }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn granted_limits_apply_to_the_plugins_calls_within_the_host_maxima() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    let grant = json!({ "limits": { "fuel": 5_000_000, "kv_max_keys": 3 } });
    let (status, granted) = host.api(Method::PUT, "/plugins/hostile/grants", Some(grant)).await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["allowed"]["limits"], json!({ "fuel": 5_000_000, "kv_max_keys": 3 }));

    let id = host.enabled_trigger("hostile", "spin", None).await;
    assert_eq!(host.deliver(&id, &[], b"{}").await.status(), StatusCode::BAD_GATEWAY);
    let (_, failures) = host.api(Method::GET, &format!("/triggers/{id}/failures"), None).await;
    assert_eq!(failures["failures"][0]["message"], "out of fuel (5000000 units)", "{failures}");

    for (limits, named) in [
        (json!({ "fuel": 0 }), "fuel"),
        (json!({ "wall_clock_ms": 3_600_000 }), "wall_clock_ms"),
        (json!({ "memory_mib": 1_000_000 }), "memory_mib"),
    ] {
        let (status, body) = host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({ "limits": limits }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(named)), "{body}");
    }
    let (status, _) = host.api(Method::PUT, "/plugins/hostile/grants", Some(json!({ "limits": { "gas": 1 } }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
