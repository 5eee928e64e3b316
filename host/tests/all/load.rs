//! Loading: what is not a connector component is refused with a clear error.

use triggerhost::{LoadError, Runtime, RuntimeConfig};

use crate::helpers::{component_bytes, runtime};

async fn load_error(bytes: &[u8]) -> LoadError {
    runtime().load(bytes).await.expect_err("must not load")
}

#[tokio::test]
async fn bytes_that_are_not_wasm_are_refused() {
    assert!(matches!(load_error(b"").await, LoadError::NotWasm));
    assert!(matches!(load_error(b"PK\x03\x04 a zip file").await, LoadError::NotWasm));
}

#[tokio::test]
async fn a_core_module_is_refused_with_a_hint() {
    let module = wat::parse_str("(module)").expect("wat");
    let error = load_error(&module).await;
    assert!(matches!(error, LoadError::CoreModule), "{error}");
    assert!(error.to_string().contains("wasm32-wasip2"));
}

#[tokio::test]
async fn a_truncated_component_is_invalid() {
    let bytes = component_bytes("standard_webhooks");
    let error = load_error(&bytes[..bytes.len() / 2]).await;
    assert!(matches!(error, LoadError::Invalid(_)), "{error}");
}

#[tokio::test]
async fn a_component_of_another_world_is_refused() {
    let empty = wat::parse_str("(component)").expect("wat");
    let error = load_error(&empty).await;
    let LoadError::WrongWorld(why) = &error else { panic!("{error}") };
    assert!(why.contains("describe"), "names the missing export: {why}");
}

#[tokio::test]
async fn a_component_with_foreign_imports_is_refused() {
    let foreign = wat::parse_str(r#"(component (import "acme:secrets/vault" (instance (export "get" (func)))))"#).expect("wat");
    let error = load_error(&foreign).await;
    let LoadError::UnsupportedImport(why) = &error else { panic!("{error}") };
    assert!(why.contains("acme:secrets/vault"), "names the import: {why}");
}

#[tokio::test]
async fn an_invalid_manifest_lists_every_problem() {
    let error = load_error(&component_bytes("bad_manifest")).await;
    let LoadError::Manifest(manifest) = &error else { panic!("{error}") };
    let all = manifest.problems.join("\n");
    assert_eq!(manifest.problems.len(), 3, "{all}");
    assert!(all.contains("kebab-case") && all.contains("semver") && all.contains("snake_case"), "{all}");
}

#[tokio::test]
async fn a_component_over_the_size_cap_is_refused_before_compiling() {
    let small = Runtime::new(RuntimeConfig { max_component_bytes: 1024, pooling: false, ..RuntimeConfig::default() })
        .expect("runtime");
    let error = small.load(&component_bytes("standard_webhooks")).await.expect_err("too large");
    assert!(matches!(error, LoadError::TooLarge { limit: 1024, .. }), "{error}");
}

#[tokio::test]
async fn the_same_bytes_load_to_the_same_digest() {
    let bytes = component_bytes("standard_webhooks");
    let a = runtime().load(&bytes).await.expect("loads");
    let b = runtime().load(&bytes).await.expect("loads");
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.size(), bytes.len());
}

#[tokio::test]
async fn a_component_that_compiles_too_long_is_refused() {
    let config = RuntimeConfig {
        compile_timeout: std::time::Duration::from_millis(1),
        pooling: false,
        ..RuntimeConfig::default()
    };
    let impatient = Runtime::new(config).expect("runtime");
    let error = impatient.load(&component_bytes("standard_webhooks")).await.expect_err("too slow to compile");
    assert!(matches!(error, LoadError::CompileTimeout { .. }), "{error}");
}
