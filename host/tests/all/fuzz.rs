//! Fuzzing under a time budget, with proptest's generators: manifest
//! validation, config-schema compilation and validation, and the HTTP
//! request path of a running server. Each target runs for
//! `TRIGGERHOST_FUZZ_SECS` seconds (2 by default, so `cargo xtask test`
//! runs every target briefly; `cargo xtask fuzz` runs them for longer) and
//! prints how many inputs it tried and how many failed.
//!
//! A failure is a panic, or a property the target checks: no problem
//! message past its bound, no 500 from the server, the server still
//! serving a signed delivery afterwards.

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use triggerhost::contract::{Auth, CapabilityRequest, Manifest, OAuth2Auth, Sharing, Strategy as TriggerStrategy, TriggerDefinition};

use crate::helpers::{WHSEC, signed_now};

fn budget() -> Duration {
    let secs = std::env::var("TRIGGERHOST_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    Duration::from_secs(secs)
}

/// Feeds generated inputs to `property` until the budget is spent.
fn fuzz<S>(target: &str, strategy: S, mut property: impl FnMut(S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::default();
    let deadline = Instant::now() + budget();
    let (mut executions, mut failures) = (0u64, Vec::new());
    while Instant::now() < deadline {
        let input = strategy.new_tree(&mut runner).expect("generate an input").current();
        let shown = format!("{input:?}");
        let outcome = catch_unwind(AssertUnwindSafe(|| property(input)));
        executions += 1;
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(why)) => why,
            Err(panic) => format!("panic: {}", panic.downcast_ref::<String>().cloned().unwrap_or_default()),
        };
        failures.push(format!("{failure}\n  input: {}", triggerhost::contract::cut(&shown, 2000)));
    }
    println!("fuzz {target}: {executions} executions, {} failures", failures.len());
    assert!(executions > 0, "{target} ran no input");
    assert!(failures.is_empty(), "{target}: {} failures, first:\n{}", failures.len(), failures[0]);
}

/// Short strings, mixing the shapes validation cares about with anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,8}){0,3}",
        "[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,3}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[a-z.0-9]{1,6})?",
        ".{0,40}",
        any::<String>(),
        "\\PC{200,300}",
    ]
}

/// Strings a schema may hold where the host must be careful.
fn schema_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://evil.example/schema.json".to_owned()),
        Just("file:///etc/passwd".to_owned()),
        Just("#/$defs/a".to_owned()),
        Just("#".to_owned()),
        Just("^(a+)+$".to_owned()),
        Just("(x+x+)+y".to_owned()),
        Just("[".to_owned()),
        Just("object".to_owned()),
        Just("string".to_owned()),
        ".{0,16}",
    ]
}

fn schema_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("type"),
        Just("properties"),
        Just("$ref"),
        Just("$defs"),
        Just("$id"),
        Just("$schema"),
        Just("pattern"),
        Just("patternProperties"),
        Just("items"),
        Just("required"),
        Just("enum"),
        Just("const"),
        Just("minimum"),
        Just("maxLength"),
        Just("anyOf"),
        Just("allOf"),
        Just("not"),
        Just("format"),
        Just("additionalProperties"),
        Just("x-secret"),
        Just("a"),
    ]
    .prop_map(str::to_owned)
}

/// JSON values shaped like schemas and configs.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        schema_string().prop_map(Value::from),
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(schema_key(), inner, 0..6).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn trigger() -> impl Strategy<Value = TriggerDefinition> {
    let schema = prop_oneof![json().prop_map(|v| v.to_string()), text()];
    let sharing = proptest::option::of(
        (vec(text(), 0..12), proptest::option::of(text()))
            .prop_map(|(key_fields, events_field)| Sharing { key_fields, events_field }),
    );
    let sample = prop_oneof![json().prop_map(|v| v.to_string()), text()];
    (text(), text(), text(), any::<bool>(), schema, sample, sharing).prop_map(
        |(name, display_name, description, polling, config_schema, sample_event, sharing)| TriggerDefinition {
            name,
            display_name,
            description,
            strategy: if polling { TriggerStrategy::Polling } else { TriggerStrategy::Webhook },
            config_schema,
            sample_event,
            sharing,
        },
    )
}

/// Any auth a guest may declare, endpoints and schemas included.
fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::None),
        text().prop_map(|schema| Auth::Custom { schema }),
        (text(), text(), vec(text(), 0..3), any::<bool>()).prop_map(|(authorize_url, token_url, scopes, pkce)| {
            Auth::OAuth2(OAuth2Auth { authorize_url, token_url, scopes, pkce, extra_params: Vec::new() })
        }),
    ]
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (text(), text(), text(), text(), vec(text(), 0..4), any::<bool>(), auth(), vec(trigger(), 0..4)).prop_map(
        |(name, display_name, version, description, outbound_hosts, key_value, auth, triggers)| Manifest {
            name,
            display_name,
            version,
            description,
            capabilities: CapabilityRequest { outbound_hosts, key_value },
            auth,
            triggers,
        },
    )
}

#[test]
fn fuzz_manifest_validation() {
    fuzz("manifest-validation", manifest(), |manifest| {
        let Err(error) = manifest.validate() else {
            // A valid manifest's schemas compile or are refused, never panic.
            for trigger in &manifest.triggers {
                let _ = triggerhost::registry::compile_config_schema(&trigger.config_schema);
            }
            return Ok(());
        };
        if error.problems.is_empty() {
            return Err("an invalid manifest with no problem listed".into());
        }
        match error.problems.iter().find(|p| p.len() > 400) {
            Some(long) => Err(format!("a problem of {} bytes quotes too much", long.len())),
            None => Ok(()),
        }
    });
}

#[test]
fn fuzz_config_schema_validation() {
    fuzz("config-schema", (json(), json()), |(schema, config)| {
        let Ok(validator) = triggerhost::registry::compile_config_schema(&schema.to_string()) else { return Ok(()) };
        let _ = validator.iter_errors(&config).count();
        Ok(())
    });
}

#[test]
fn remote_refs_and_catastrophic_patterns_are_refused_or_bounded() {
    use triggerhost::registry::compile_config_schema;
    for remote in ["https://evil.example/schema.json", "http://127.0.0.1:1/x", "file:///etc/passwd"] {
        let schema = serde_json::json!({ "type": "object", "properties": { "a": { "$ref": remote } } });
        let error = compile_config_schema(&schema.to_string()).expect_err(remote);
        assert!(!error.is_empty(), "{remote}");
    }
    // Exponential for a backtracking engine; linear for the one the host uses.
    let schema = serde_json::json!({ "type": "object", "properties": { "a": { "pattern": "^(a+)+$" } } });
    let validator = compile_config_schema(&schema.to_string()).expect("compiles");
    let config = serde_json::json!({ "a": format!("{}!", "a".repeat(100_000)) });
    assert!(!validator.is_valid(&config));
    // Lookaround and backreferences need a backtracking engine: refused.
    for backtracking in ["^(?=(a+)+$)", "^(a+)\\1$"] {
        let schema = serde_json::json!({ "type": "object", "properties": { "a": { "pattern": backtracking } } });
        assert!(compile_config_schema(&schema.to_string()).is_err(), "{backtracking}");
    }
    // A pattern whose compiled form is huge is refused.
    let schema = serde_json::json!({ "type": "object", "properties": { "a": { "pattern": "(\\w{1000}){1000}" } } });
    assert!(compile_config_schema(&schema.to_string()).is_err());
}

/// A request as a sender might shape it.
#[derive(Debug, Clone)]
struct FuzzRequest {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn request(trigger: String) -> impl Strategy<Value = FuzzRequest> {
    let method = prop_oneof![Just("POST"), Just("GET"), Just("PUT"), Just("DELETE"), Just("PATCH"), Just("OPTIONS")];
    let path = prop_oneof![
        Just(format!("/hooks/{trigger}")),
        Just(format!("/hooks/{trigger}?x=1&y=%ff")),
        "/hooks/[a-z_0-9%.]{0,40}",
        Just("/api/v1/triggers".to_owned()),
        "/[a-z/%.]{0,30}",
    ];
    let name = prop_oneof![
        Just("webhook-id".to_owned()),
        Just("webhook-timestamp".to_owned()),
        Just("webhook-signature".to_owned()),
        Just("content-type".to_owned()),
        Just("authorization".to_owned()),
        "x-[a-z0-9-]{1,20}",
    ];
    let value = prop_oneof!["[ -~]{0,60}", Just("v1,AAAA".to_owned()), Just("Bearer x".to_owned()), "[0-9]{1,12}"];
    let body = prop_oneof![vec(any::<u8>(), 0..256), json().prop_map(|v| v.to_string().into_bytes())];
    (method, path, vec((name, value), 0..8), body).prop_map(|(method, path, headers, body)| FuzzRequest { method, path, headers, body })
}

#[test]
fn fuzz_the_request_path() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (host, trigger) = runtime.block_on(async {
        let host = crate::host::spawn_host_with_config("[ingress]\nrate_per_second = 100000\nburst = 100000\n").await;
        host.upload_plugin("standard_webhooks").await;
        let trigger = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
        (host, trigger)
    });
    fuzz("request-path", request(trigger.clone()), |request| {
        runtime.block_on(async {
            let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
            let mut builder = host.http.request(method, format!("{}{}", host.url, request.path)).body(request.body);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let response = builder.send().await.map_err(|e| format!("no answer: {e}"))?;
            if response.status().is_server_error() && response.status() != reqwest::StatusCode::BAD_GATEWAY {
                return Err(format!("{} for a sender's request", response.status()));
            }
            Ok(())
        })
    });
    runtime.block_on(async {
        let response = host.deliver(&trigger, &signed_now("msg_after_fuzz", b"{}"), b"{}").await;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "the server still serves after fuzzing");
    });
}
