//! The precompiled cache across restarts: a restart loads what was
//! compiled before (an 18 MB Python connector among it) instead of
//! compiling it again, and an artifact that is
//! corrupt, truncated, stale or compiled by another engine configuration is
//! discarded and compiled again, never loaded; and versions no trigger uses
//! are loaded only when needed.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{WHSEC, component_bytes, signed_now};
use crate::host::{Host, spawn_host};

/// The values of `/metrics` series without labels, by name.
async fn metrics(host: &Host, names: &[&str]) -> Vec<u64> {
    let text = host.metrics().await;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("triggerhost_{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    names.iter().map(|name| value(name)).collect()
}

/// `(compiled, loaded from the cache, discarded)` from `/metrics`.
async fn compiles(host: &Host) -> (u64, u64, u64) {
    let names = ["components_compiled_total", "components_cached_total", "precompiled_discarded_total"];
    match metrics(host, &names).await[..] {
        [compiled, cached, discarded] => (compiled, cached, discarded),
        _ => unreachable!("three names, three values"),
    }
}

/// The cached artifact of a component, and its checksum file.
fn cache_files(host: &Host, component: &[u8]) -> (PathBuf, PathBuf) {
    let digest = hex::encode(Sha256::digest(component));
    let root = host.data_dir.join("precompiled");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&root).expect("cache dir").flatten().map(|e| e.path()).collect();
    assert_eq!(dirs.len(), 1, "one engine's cache: {dirs:?}");
    (dirs[0].join(format!("{digest}.cwasm")), dirs[0].join(format!("{digest}.sum")))
}

/// A delivery the connector must verify and run: the component loaded works.
async fn delivers(host: &Host, id: &str, n: usize) {
    let body = format!(r#"{{"n":{n}}}"#);
    let response = host.deliver(id, &signed_now(&format!("msg_cache_{n}"), body.as_bytes()), body.as_bytes()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The large component (`examples/python-hmac`, 18 MB with its Python
/// interpreter) and a small one: a restart compiles neither.
#[tokio::test]
async fn a_restart_loads_cached_components_without_compiling_them() {
    let host = spawn_host().await;
    assert!(component_bytes("python_hmac").len() > 10 << 20, "the large component is large");
    host.upload_plugin("python_hmac").await;
    host.upload_plugin("standard_webhooks").await;
    let grant = json!({ "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/python-hmac/grants", Some(grant)).await.0, StatusCode::OK);
    let python = host.enabled_trigger("python-hmac", "signed", Some("python-secret")).await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    assert_eq!(compiles(&host).await, (2, 0, 0), "each upload compiled once");

    let host = host.restart().await;
    assert_eq!(compiles(&host).await, (0, 2, 0), "nothing compiled at the restart");
    delivers(&host, &id, 1).await;
    let body = br#"{"from":"python"}"#;
    let signature = triggerhost_sdk::signature::hmac_sha256_hex(b"python-secret", &[body]);
    assert_eq!(host.deliver(&python, &[("x-signature".into(), signature)], body).await.status(), StatusCode::OK);
    assert_eq!(host.all_events(&python).await[0]["payload"]["from"], "python");
}

#[tokio::test]
async fn corrupt_truncated_stale_and_foreign_artifacts_are_compiled_again() {
    let component = component_bytes("standard_webhooks");
    let mut host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let (artifact, sum) = cache_files(&host, &component);
    let good = std::fs::read(&artifact).expect("artifact");
    // Another engine's cache dir is removed at start.
    let other_engine = host.data_dir.join("precompiled").join("0123456789abcdef");
    std::fs::create_dir_all(&other_engine).expect("mkdir");

    // Another engine configuration (no fuel, no epochs) compiles the same
    // component; its artifact gets a checksum file that matches it.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let foreign = wasmtime::Engine::new(&config).expect("engine").precompile_component(&component).expect("precompile");
    let with_checksum_of = |bytes: &[u8]| {
        let line = std::fs::read_to_string(&sum).expect("sum");
        let fields: Vec<&str> = line.split(' ').collect();
        format!("{} {} {}", fields[0], fields[1], hex::encode(Sha256::digest(bytes)))
    };

    let corrupt = {
        let mut bytes = good.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        bytes
    };
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("corrupt", corrupt, None),
        ("truncated", good[..good.len() / 2].to_vec(), None),
        ("foreign", foreign.clone(), Some(with_checksum_of(&foreign))),
        ("stale", good.clone(), Some(std::fs::read_to_string(&sum).expect("sum").replacen(|c: char| c.is_ascii_hexdigit(), "x", 1))),
    ];
    for (n, (case, bytes, checksum)) in cases.into_iter().enumerate() {
        host.kill9().await;
        std::fs::write(&artifact, &bytes).expect("write artifact");
        if let Some(checksum) = checksum {
            std::fs::write(&sum, checksum).expect("write sum");
        }
        host = host.restart().await;
        assert_eq!(compiles(&host).await, (1, 0, 1), "{case}: discarded and compiled again");
        assert!(!other_engine.exists(), "another engine's cache is removed");
        delivers(&host, &id, n).await;
        assert_eq!(std::fs::read(&artifact).expect("artifact"), good, "{case}: the artifact is written again");
    }
    let host = host.restart().await;
    assert_eq!(compiles(&host).await, (0, 1, 0), "the rewritten artifact is loaded");
}

#[tokio::test]
async fn versions_no_trigger_uses_are_loaded_only_when_needed() {
    let host = spawn_host().await;
    host.upload_plugin("evolving").await;
    host.upload_plugin("evolving_next").await;
    let grant = json!({ "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/evolving/grants", Some(grant)).await.0, StatusCode::OK);

    // At start, only the active version.
    let host = host.restart().await;
    assert_eq!(metrics(&host, &["versions_loaded"]).await, [1]);
    assert_eq!(compiles(&host).await, (0, 1, 0));
    // Its grant still shows for the version not in memory.
    let (_, plugin) = host.api(Method::GET, "/plugins/evolving", None).await;
    assert_eq!(plugin["versions"][1]["granted"]["key_value"], true, "{plugin}");

    // Activating 2.0.0 loads it (from the cache); 1.0.0, which no trigger
    // uses now, leaves memory.
    let activate = json!({ "version": "2.0.0" });
    assert_eq!(host.api(Method::POST, "/plugins/evolving/activate", Some(activate)).await.0, StatusCode::OK);
    assert_eq!(metrics(&host, &["versions_loaded"]).await, [1]);
    assert_eq!(compiles(&host).await, (0, 2, 0));

    // A trigger pinning 1.0.0 loads it again, and it serves.
    let body = json!({ "plugin": "evolving", "trigger": "alpha", "config": {}, "version": "1.0.0" });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(metrics(&host, &["versions_loaded"]).await, [2]);
    assert_eq!(compiles(&host).await, (0, 3, 0));
    let id = created["id"].as_str().expect("id");
    assert_eq!(host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await.0, StatusCode::OK);
    assert_eq!(host.deliver(id, &[], b"{}").await.status(), StatusCode::OK);
}
