//! The OpenAPI document against the router it describes: every route the
//! router serves is in the document with exactly the methods it answers,
//! and every documented operation reaches a handler.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::host::{TOKEN, spawn_host};

/// The router's sources: every `.route(` in them is a route the host serves.
const ROUTER_SOURCES: [(&str, &str); 3] = [
    ("", include_str!("../../../src/server.rs")),
    ("", include_str!("../../../src/ui.rs")),
    ("/api/v1", include_str!("../../../src/api.rs")),
];
const OAUTH_SOURCE: &str = include_str!("../../../src/connections/oauth.rs");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The paths the router sources register, with their mount prefix.
fn router_paths() -> BTreeSet<String> {
    let route = regex::Regex::new(r#"\.route\(\s*([^,\s]+)\s*,"#).expect("regex");
    let callback = regex::Regex::new(r#"pub const CALLBACK_PATH: &str = "([^"]+)";"#).expect("regex");
    let mut paths = BTreeSet::new();
    for (prefix, source) in ROUTER_SOURCES {
        for found in route.captures_iter(source) {
            let path = match &found[1] {
                "crate::connections::CALLBACK_PATH" => callback.captures(OAUTH_SOURCE).expect("CALLBACK_PATH")[1].to_owned(),
                literal => literal
                    .strip_prefix('"')
                    .and_then(|l| l.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("a route path the test cannot read: {literal}; write it as a literal"))
                    .to_owned(),
            };
            paths.insert(format!("{prefix}{path}"));
        }
    }
    paths
}

/// A concrete URL path for a template: every `{param}` becomes `nope`.
fn concrete(template: &str) -> String {
    regex::Regex::new(r"\{[^}]+\}").expect("regex").replace_all(template, "nope").into_owned()
}

/// Whether `method path` reaches a handler: not the router's 405 for a
/// method it does not serve, nor its fallback for a path it does not know.
async fn reaches_a_handler(http: &reqwest::Client, base: &str, method: &str, path: &str) -> (bool, StatusCode) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let response = http
        .request(method, format!("{base}{}", concrete(path)))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let fallback = status == StatusCode::NOT_FOUND && body["error"]["code"] == "no-such-route";
    (status != StatusCode::METHOD_NOT_ALLOWED && !fallback, status)
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let host = spawn_host().await;
    // No token: the document describes, it holds no data.
    let response = host.http.get(format!("{}/api/v1/openapi.json", host.url)).send().await.expect("document");
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("JSON");
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));

    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        let methods = item.as_object().expect("path item").keys().filter(|k| METHODS.contains(&k.as_str())).cloned();
        documented.entry(path.clone()).or_default().extend(methods);
        for (method, operation) in item.as_object().expect("path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            // An admin route's errors are in the document too, not only its
            // success (the public `/healthz` and this document cannot fail).
            let public = operation["security"].as_array().is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|r| r.is_empty())));
            let responses = operation["responses"].as_object().expect("responses");
            assert!(public || responses.keys().any(|s| !s.starts_with('2')), "{method} {path} documents no error response");
        }
    }
    let routed = router_paths();
    let documented_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(routed.difference(&documented_paths).collect::<Vec<_>>(), Vec::<&String>::new(), "routes missing from the document");
    assert_eq!(documented_paths.difference(&routed).collect::<Vec<_>>(), Vec::<&String>::new(), "documented paths with no route");
    assert!(routed.len() >= 30, "the scan found only {} routes", routed.len());

    // Per path, the methods that reach a handler are the documented ones.
    for path in &routed {
        for method in METHODS {
            let (handled, status) = reaches_a_handler(&host.http, &host.url, method, path).await;
            let in_document = documented[path].contains(method);
            assert_eq!(handled, in_document, "{} {path}: answered {status}, documented: {in_document}", method.to_uppercase());
        }
    }
    // The fallback is what the probe takes it for.
    let (handled, status) = reaches_a_handler(&host.http, &host.url, "get", "/api/v1/no-such-thing").await;
    assert!(!handled, "an unknown API path answered {status}");
    let (handled, status) = reaches_a_handler(&host.http, &host.url, "get", "/no-such-thing").await;
    assert!(!handled, "an unknown path answered {status}");
}
