//! Host-side filters: rules on a trigger, checked before events are
//! stored, validated at create and patch, shown in the API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host};

async fn deliver(host: &Host, trigger: &str, id: &str, body: Value) -> Value {
    let body = body.to_string();
    let response = host.deliver(trigger, &signed_now(id, body.as_bytes()), body.as_bytes()).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap_or_default()
}

#[tokio::test]
async fn only_events_every_rule_admits_are_stored() {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let filters = json!([
        { "type_in": ["user"] },
        { "pointer": "/data/plan", "equals": "pro" },
        { "pointer": "/data/email", "matches": "@example\\.com$", "not": true },
    ]);
    let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "secret": WHSEC, "filters": filters });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["filters"], filters, "shown as given");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await.0, StatusCode::OK);

    let pro = json!({ "type": "user.created", "data": { "plan": "pro", "email": "a@corp.io" } });
    assert_eq!(deliver(&host, &id, "m1", pro).await, json!({ "stored": 1, "duplicates": 0, "filtered": 0 }));
    let free = json!({ "type": "user.created", "data": { "plan": "free", "email": "b@corp.io" } });
    assert_eq!(deliver(&host, &id, "m2", free).await["filtered"], 1);
    let internal = json!({ "type": "user.updated", "data": { "plan": "pro", "email": "c@example.com" } });
    assert_eq!(deliver(&host, &id, "m3", internal).await["filtered"], 1);
    let invoice = json!({ "type": "invoice.paid", "data": { "plan": "pro" } });
    assert_eq!(deliver(&host, &id, "m4", invoice).await["filtered"], 1);
    let events = host.all_events(&id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["dedupe_key"], "m1");

    // Patched away, everything is stored again.
    let (status, patched) = host.api(Method::PATCH, &format!("/triggers/{id}"), Some(json!({ "filters": null }))).await;
    assert_eq!((status, &patched["filters"]), (StatusCode::OK, &json!([])), "{patched}");
    let invoice = json!({ "type": "invoice.paid", "data": {} });
    assert_eq!(deliver(&host, &id, "m5", invoice).await["stored"], 1);
}

#[tokio::test]
async fn bad_filters_are_refused_with_the_rule_at_fault() {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    for (filters, expected) in [
        (json!([{ "pointer": "/a", "matches": "(unclosed" }]), "filters[0]: matches:"),
        (json!([{ "type_in": ["a"] }, { "pointer": "/a", "equals": 1, "exists": true }]), "filters[1]: give exactly one"),
        (json!([{ "pointer": "no-slash", "exists": true }]), "filters[0]: pointer must"),
    ] {
        let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "filters": filters });
        let (status, answer) = host.api(Method::POST, "/triggers", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains(expected)), "{answer} should say {expected}");
    }
    let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "filters": [{ "pointr": "/a" }] });
    assert_eq!(host.api(Method::POST, "/triggers", Some(body)).await.0, StatusCode::BAD_REQUEST, "unknown fields");
    let (_, list) = host.api(Method::GET, "/triggers", None).await;
    assert_eq!(list["triggers"], json!([]), "nothing created");
}
