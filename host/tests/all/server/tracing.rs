//! The host's own logs and traces: JSON lines carrying the delivery span's
//! fields, and spans exported to an OTLP/HTTP collector.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{WHSEC, signed_now};
use crate::host::spawn_host_with_env;

#[tokio::test]
async fn json_log_lines_carry_the_delivery_span() {
    let host = spawn_host_with_env("", &[("TRIGGERHOST_LOG_FORMAT", "json"), ("TRIGGERHOST_LOG", "info")]).await;
    host.upload_plugin("hostile").await;
    let spinner = host.enabled_trigger("hostile", "spin", None).await;
    assert_eq!(host.deliver(&spinner, &[], b"{}").await.status(), StatusCode::BAD_GATEWAY);
    // The warning about the failed call is logged inside its span.
    let mut found = None;
    for _ in 0..100 {
        let log = std::fs::read_to_string(&host.log_path).expect("log");
        found = log.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).find(|line| line["span"]["name"] == "delivery");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line = found.unwrap_or_else(|| panic!("no JSON line in a delivery span: {}", std::fs::read_to_string(&host.log_path).unwrap_or_default()));
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["span"]["trigger"], spinner.as_str(), "{line}");
    assert_eq!(line["span"]["plugin"], "hostile", "{line}");
    assert_eq!(line["span"]["version"], "0.1.0", "{line}");
}

#[tokio::test]
async fn delivery_spans_reach_an_otlp_collector() {
    // A collector: keeps every span it is sent.
    let spans: Arc<Mutex<Vec<Value>>> = Arc::default();
    let kept = Arc::clone(&spans);
    let collector = axum::Router::new().route(
        "/v1/traces",
        post(move |Json(body): Json<Value>| async move {
            let mut kept = kept.lock().expect("lock");
            for resource in body["resourceSpans"].as_array().into_iter().flatten() {
                assert_eq!(resource["resource"]["attributes"][0]["value"]["stringValue"], "th-test");
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    kept.extend(scope["spans"].as_array().into_iter().flatten().cloned());
                }
            }
            "{}"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let config = format!("[tracing]\notlp_endpoint = \"http://{address}/v1/traces\"\nservice_name = \"th-test\"\n");
    let host = spawn_host_with_env(&config, &[]).await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let response = host.deliver(&id, &signed_now("msg_traced", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, events) = host.api(Method::GET, &format!("/triggers/{id}/events"), None).await;
    let event_id = events["events"][0]["id"].as_str().expect("event id").to_owned();

    let attribute = |span: &Value, key: &str| {
        span["attributes"].as_array().into_iter().flatten().find(|a| a["key"] == key).map(|a| a["value"]["stringValue"].clone())
    };
    let mut delivery = None;
    for _ in 0..100 {
        delivery = spans.lock().expect("lock").iter().find(|span| span["name"] == "delivery").cloned();
        if delivery.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = delivery.expect("a delivery span reached the collector");
    assert_eq!(attribute(&span, "trigger"), Some(Value::from(id.as_str())), "{span}");
    assert_eq!(attribute(&span, "plugin"), Some(Value::from("standard-webhooks")));
    assert_eq!(attribute(&span, "version"), Some(Value::from("0.1.0")));
    assert_eq!(attribute(&span, "event_ids"), Some(Value::from(event_id.as_str())));
    assert_eq!(attribute(&span, "outcome"), Some(Value::from("stored")));
    assert_eq!(span["traceId"].as_str().map(str::len), Some(32));
    assert_eq!(span["spanId"].as_str().map(str::len), Some(16));
    let (start, end) = (span["startTimeUnixNano"].as_str().expect("start"), span["endTimeUnixNano"].as_str().expect("end"));
    assert!(start.parse::<u128>().expect("nanos") <= end.parse::<u128>().expect("nanos"));
}
