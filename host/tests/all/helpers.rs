//! Shared set-up: one runtime per test process, components from the build.

use std::path::PathBuf;
use std::sync::OnceLock;

use triggerhost::contract::{TriggerContext, WebhookRequest};
use triggerhost::{Plugin, Runtime, RuntimeConfig};

/// The process-wide runtime, as the server has one (one pooled engine).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime starts"))
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the workspace's.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Where `cargo xtask build-plugins` writes a component.
pub fn component_path(crate_name: &str) -> PathBuf {
    target_dir().join("wasm32-wasip2/release").join(format!("{crate_name}.wasm"))
}

/// The bytes of a component built by `cargo xtask build-plugins`.
pub fn component_bytes(crate_name: &str) -> Vec<u8> {
    let path = component_path(crate_name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; build the test plugins with `cargo xtask build-plugins`", path.display())
    })
}

/// Loads a built component into the shared runtime.
pub async fn load(crate_name: &str) -> Plugin {
    runtime().load(&component_bytes(crate_name)).await.expect("component loads")
}

/// A context for `trigger_name` with the given config and secret.
pub fn context(trigger_name: &str, config: &str, secret: Option<&str>) -> TriggerContext {
    TriggerContext {
        trigger_id: "trg_test".into(),
        trigger_name: trigger_name.into(),
        config: config.into(),
        secret: secret.map(Into::into),
        webhook_url: "http://127.0.0.1:8080/hooks/trg_test".into(),
        credentials: None,
        issued_secrets: Vec::new(),
    }
}

/// A delivery without headers.
pub const NO_HEADERS: &[(&str, &str)] = &[];

/// A POST delivery with these headers and body.
pub fn post<K: AsRef<str>, V: AsRef<str>>(headers: &[(K, V)], body: &[u8]) -> WebhookRequest {
    WebhookRequest {
        method: "POST".into(),
        query: String::new(),
        headers: headers.iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())).collect(),
        body: body.to_vec(),
    }
}

/// The Standard Webhooks example secret (../shared/vectors/standard-webhooks.md).
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Standard Webhooks headers signing `body` as delivery `id` at `timestamp`
/// (Unix seconds, as text) under [`WHSEC`].
pub fn signed_headers(id: &str, timestamp: &str, body: &[u8]) -> Vec<(String, String)> {
    let key = triggerhost_sdk::signature::base64_decode(&WHSEC["whsec_".len()..]).expect("base64 secret");
    let mac = triggerhost_sdk::signature::hmac_sha256_base64(
        &key,
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.into()),
        ("webhook-signature".into(), format!("v1,{mac}")),
    ]
}

/// [`signed_headers`] timestamped now.
pub fn signed_now(id: &str, body: &[u8]) -> Vec<(String, String)> {
    signed_headers(id, &triggerhost_sdk::signature::now_secs().to_string(), body)
}

/// `component` with one more core module (`module_wat`) appended and
/// instantiated `instances` times when the component is: a way to give a
/// real connector more core instances or memories than its toolchain
/// emits, as a hostile author could.
pub fn with_extra_instances(component: &[u8], module_wat: &str, instances: u32) -> Vec<u8> {
    let module = wat::parse_str(module_wat).expect("module wat");
    // The appended module takes the next index of the top-level core
    // module index space, which the component's own definitions fill.
    let modules = top_level(component, |p| matches!(p, wasmparser::Payload::ModuleSection { .. }));
    let mut bytes = component.to_vec();
    section(&mut bytes, 1, &module);
    let mut instantiations = leb(instances);
    for _ in 0..instances {
        instantiations.push(0x00); // instantiate
        instantiations.extend(leb(modules));
        instantiations.push(0x00); // no arguments
    }
    section(&mut bytes, 2, &instantiations);
    bytes
}

/// How many of the component's own (not nested) sections match `is`.
fn top_level(component: &[u8], is: impl Fn(&wasmparser::Payload<'_>) -> bool) -> u32 {
    let (mut depth, mut count) = (0usize, 0u32);
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let payload = payload.expect("component parses");
        match payload {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            _ if depth == 1 && is(&payload) => count += 1,
            _ => {}
        }
    }
    count
}

fn section(bytes: &mut Vec<u8>, id: u8, contents: &[u8]) {
    bytes.push(id);
    bytes.extend(leb(u32::try_from(contents.len()).expect("section size")));
    bytes.extend_from_slice(contents);
}

fn leb(mut n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `component` with one more component (`component_wat`, self-contained)
/// appended and instantiated once when the component is.
pub fn with_extra_component(component: &[u8], component_wat: &str) -> Vec<u8> {
    let nested = wat::parse_str(component_wat).expect("component wat");
    let components = top_level(component, |p| matches!(p, wasmparser::Payload::ComponentSection { .. }));
    let mut bytes = component.to_vec();
    section(&mut bytes, 4, &nested);
    let mut instantiation = leb(1);
    instantiation.push(0x00); // instantiate
    instantiation.extend(leb(components));
    instantiation.push(0x00); // no arguments
    section(&mut bytes, 5, &instantiation);
    bytes
}
