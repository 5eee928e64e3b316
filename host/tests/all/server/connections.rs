//! Connections: credentials created by operators, shared by triggers,
//! seen by calls, never shown.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host};

async fn create_connection(host: &Host, body: Value) -> (StatusCode, Value) {
    host.api(Method::POST, "/connections", Some(body)).await
}

async fn trigger_on(host: &Host, connection: &str) -> String {
    let body = json!({ "plugin": "connected", "trigger": "hook", "connection": connection });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, enabled) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("enabled")), "{enabled}");
    id
}

async fn deliver_with_key(host: &Host, trigger: &str, key: &str) -> StatusCode {
    host.deliver(trigger, &[("x-api-key".into(), key.into())], br#"{"n":1}"#).await.status()
}

#[tokio::test]
async fn a_connection_is_shared_by_triggers_seen_by_calls_rotated_live_and_never_shown() {
    let host = spawn_host().await;
    host.upload_plugin("connected").await;
    host.upload_plugin("standard_webhooks").await;
    const KEY: &str = "key_live_5f2a9c";
    const ROTATED: &str = "key_live_77b1e0";

    let (status, connection) =
        create_connection(&host, json!({ "plugin": "connected", "display_name": "Acme prod", "credentials": KEY })).await;
    assert_eq!(status, StatusCode::CREATED, "{connection}");
    assert_eq!((connection["kind"].as_str(), connection["status"].as_str()), (Some("secret-text"), Some("connected")));
    let id = connection["id"].as_str().expect("id").to_owned();

    // Two triggers share it; their calls see its key.
    let first = trigger_on(&host, &id).await;
    let second = trigger_on(&host, &id).await;
    assert_eq!(deliver_with_key(&host, &first, KEY).await, StatusCode::OK);
    assert_eq!(deliver_with_key(&host, &second, KEY).await, StatusCode::OK);
    assert_eq!(deliver_with_key(&host, &first, "key_guess").await, StatusCode::UNAUTHORIZED);

    // New credentials reach the live triggers at once.
    let patch = json!({ "credentials": ROTATED, "display_name": "Acme production" });
    let (status, patched) = host.api(Method::PATCH, &format!("/connections/{id}"), Some(patch)).await;
    assert_eq!((status, patched["display_name"].as_str()), (StatusCode::OK, Some("Acme production")), "{patched}");
    assert_eq!(deliver_with_key(&host, &second, ROTATED).await, StatusCode::OK);
    assert_eq!(deliver_with_key(&host, &second, KEY).await, StatusCode::UNAUTHORIZED);

    // Never shown: not in the connection's view, the list, the triggers.
    let (_, view) = host.api(Method::GET, &format!("/connections/{id}"), None).await;
    assert_eq!(view["triggers"], json!([first.clone(), second.clone()].iter().cloned().collect::<std::collections::BTreeSet<_>>()));
    let (_, list) = host.api(Method::GET, "/connections", None).await;
    let (_, triggers) = host.api(Method::GET, "/triggers", None).await;
    for answer in [&connection, &patched, &view, &list, &triggers] {
        let text = answer.to_string();
        assert!(!text.contains(KEY) && !text.contains(ROTATED), "a key is shown: {text}");
    }

    // In use: deleting is refused, naming the triggers.
    let (status, refused) = host.api(Method::DELETE, &format!("/connections/{id}"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("connection-in-use")), "{refused}");
    assert_eq!(refused["error"]["details"]["triggers"].as_array().map(Vec::len), Some(2), "{refused}");
    for trigger in [&first, &second] {
        assert_eq!(host.api(Method::DELETE, &format!("/triggers/{trigger}"), None).await.0, StatusCode::NO_CONTENT);
    }
    assert_eq!(host.api(Method::DELETE, &format!("/connections/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(host.api(Method::GET, &format!("/connections/{id}"), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connections_that_do_not_fit_their_plugin_are_refused() {
    let host = spawn_host().await;
    host.upload_plugin("connected").await;
    host.upload_plugin("standard_webhooks").await;
    let refused = |body: Value, code: &'static str| {
        let host = &host;
        async move {
            let (status, answer) = create_connection(host, body).await;
            assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{answer}");
        }
    };
    refused(json!({ "plugin": "connected", "display_name": "x", "credentials": { "key": "k" } }), "invalid-credentials").await;
    refused(json!({ "plugin": "connected", "display_name": "x", "credentials": "" }), "invalid-credentials").await;
    refused(json!({ "plugin": "connected", "display_name": "", "credentials": "k" }), "invalid-credentials").await;
    refused(json!({ "plugin": "standard-webhooks", "display_name": "x", "credentials": "k" }), "invalid-credentials").await;
    refused(json!({ "plugin": "nope", "display_name": "x", "credentials": "k" }), "bad-request").await;

    // A trigger may use only a connection of its own plugin.
    let (_, connection) =
        create_connection(&host, json!({ "plugin": "connected", "display_name": "x", "credentials": "k" })).await;
    let id = connection["id"].as_str().expect("id");
    let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "connection": id });
    let (status, answer) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("is for plugin connected")), "{answer}");
    let body = json!({ "plugin": "connected", "trigger": "hook", "connection": "con_missing" });
    assert_eq!(host.api(Method::POST, "/triggers", Some(body)).await.0, StatusCode::BAD_REQUEST);
}
