//! A connector's trap or limit hit: a clean status for the sender, a
//! recorded failure for the operator, and every other trigger unaffected.

use reqwest::{Method, StatusCode};

use crate::helpers::{WHSEC, signed_now};
use crate::host::spawn_host;

#[tokio::test]
async fn traps_and_limit_hits_are_recorded_not_leaked() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    host.upload_plugin("standard_webhooks").await;
    let healthy = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;

    for (trigger, code) in [("panic", "guest-trap"), ("spin", "out-of-fuel"), ("bad_payload", "invalid-output")] {
        let id = host.enabled_trigger("hostile", trigger, None).await;
        let response = host.deliver(&id, &[], b"{}").await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{trigger}");
        let body = response.text().await.expect("body");
        assert_eq!(body, r#"{"error":"connector failed"}"#, "{trigger}: no internals in the response");

        let (_, failures) = host.api(Method::GET, &format!("/triggers/{id}/failures"), None).await;
        let failure = &failures["failures"][0];
        assert_eq!(failure["code"], code, "{failures}");
        assert_eq!(failure["export"], "deliver");
        if trigger == "panic" {
            assert!(failure["log"].as_str().is_some_and(|l| l.contains("panicked on purpose")), "{failure}");
        }
        let (_, stats) = host.api(Method::GET, &format!("/triggers/{id}/stats"), None).await;
        assert_eq!((stats["received"].as_i64(), stats["errors"].as_i64()), (Some(1), Some(1)), "{stats}");
        let (_, trigger_view) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
        assert!(trigger_view["last_error"].as_str().is_some_and(|e| e.starts_with(code)), "{trigger_view}");

        // The healthy trigger is served right after.
        let response = host.deliver(&healthy, &signed_now(&format!("after_{trigger}"), b"{}"), b"{}").await;
        assert_eq!(response.status(), StatusCode::OK, "after {trigger}");
    }
}

#[tokio::test]
async fn a_failing_on_enable_leaves_the_trigger_in_error() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    let body = serde_json::json!({ "plugin": "hostile", "trigger": "panic", "config": { "on_enable": true } });
    let (_, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    let id = created["id"].as_str().expect("id");
    let (status, enabled) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(enabled["status"], "error");
    assert!(enabled["last_error"].as_str().is_some_and(|e| e.contains("guest trapped")), "{enabled}");
    assert_eq!(host.deliver(id, &[], b"{}").await.status(), StatusCode::NOT_FOUND);
}
