//! The admin verbs of the CLI against a running server.

use std::process::Output;

use crate::helpers::{WHSEC, component_bytes, signed_now};
use crate::host::{Host, TOKEN, spawn_host};

pub async fn cli(host: &Host, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_triggerhost"));
    command.args(args).args(["--server", &host.url, "--admin-token", TOKEN]);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TRIGGERHOST_")) {
        command.env_remove(name);
    }
    command.output().await.expect("run the CLI")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn push_create_and_list_events_from_the_command_line() {
    let host = spawn_host().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let component = dir.path().join("standard_webhooks.wasm");
    std::fs::write(&component, component_bytes("standard_webhooks")).expect("write component");

    let pushed = cli(&host, &["plugin", "push", component.to_str().expect("utf-8 path")]).await;
    assert!(pushed.status.success(), "{pushed:?}");
    assert!(stdout(&pushed).starts_with("standard-webhooks@0.1.0 (active)  sha256:"), "{}", stdout(&pushed));

    let listed = cli(&host, &["plugin", "list"]).await;
    assert!(stdout(&listed).lines().any(|l| l.starts_with("standard-webhooks") && l.contains("0.1.0")), "{}", stdout(&listed));

    let args = ["trigger", "create", "--plugin", "standard-webhooks", "--trigger", "message_received"];
    let created = cli(&host, &[&args[..], &["--secret", WHSEC, "--enable"]].concat()).await;
    assert!(created.status.success(), "{created:?}");
    let text = stdout(&created);
    assert!(text.contains("status:      enabled"), "{text}");
    let id = text.lines().find_map(|l| l.strip_prefix("id:")).map(str::trim).expect("id line").to_owned();

    let payload = br#"{"type":"order.created"}"#;
    assert!(host.deliver(&id, &signed_now("msg_cli", payload), payload).await.status().is_success());
    let events = cli(&host, &["events", "list", &id]).await;
    let text = stdout(&events);
    assert!(text.contains(" UTC  order.created  evt_"), "{text}");

    let disabled = cli(&host, &["trigger", "disable", &id]).await;
    assert!(stdout(&disabled).contains("status:      disabled"));

    // Filters, sync and a delete that keeps the events.
    let filters = r#"[{"type_in":["order"]}]"#;
    let filtered = cli(&host, &[&args[..], &["--secret", WHSEC, "--filters", filters, "--enable"]].concat()).await;
    let filtered = stdout(&filtered).lines().find_map(|l| l.strip_prefix("id:")).map(str::trim).expect("id line").to_owned();
    let refund = br#"{"type":"refund.created"}"#;
    let answer: serde_json::Value =
        host.deliver(&filtered, &signed_now("msg_f", refund), refund).await.json().await.unwrap_or_default();
    assert_eq!(answer["filtered"], 1, "{answer}");
    let synced = cli(&host, &["trigger", "sync", &filtered]).await;
    assert_eq!(stdout(&synced).trim(), "unchecked", "standard-webhooks registers nothing to check");
    let deleted = cli(&host, &["trigger", "delete", &id, "--keep-events"]).await;
    assert!(stdout(&deleted).contains("events kept"), "{deleted:?}");
    assert!(stdout(&cli(&host, &["events", "list", &id]).await).contains("order.created"));
}

#[tokio::test]
async fn errors_exit_non_zero_with_the_servers_reason() {
    let host = spawn_host().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, component_bytes("bad_manifest")).expect("write component");

    let pushed = cli(&host, &["plugin", "push", bad.to_str().expect("utf-8 path")]).await;
    assert_eq!(pushed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&pushed.stderr);
    assert!(stderr.contains("400 Bad Request: invalid-manifest") && stderr.contains("kebab-case"), "{stderr}");

    let missing = cli(&host, &["trigger", "enable", "trg_nope"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"), "{missing:?}");

    let config = cli(&host, &["trigger", "create", "--plugin", "x", "--trigger", "y", "--config", "{oops"]).await;
    assert_eq!(config.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&config.stderr).contains("--config is not valid JSON"), "{config:?}");
}

#[tokio::test]
async fn grant_from_the_command_line() {
    let host = spawn_host().await;
    host.upload_plugin("hostile").await;
    let args = ["plugin", "grant", "hostile", "--allow-host", "https://*.example.com", "--allow-host", "http://127.0.0.1:9000"];
    let granted = cli(&host, &[&args[..], &["--allow-host", "https://internal.test", "--kv"]].concat()).await;
    assert!(granted.status.success(), "{granted:?}");
    assert_eq!(
        stdout(&granted),
        "hostile@0.1.0: outbound http://127.0.0.1:9000, https://api.example.com:443, https://internal.test:443, key-value true\n"
    );
    let partial = cli(&host, &["plugin", "grant", "hostile", "--allow-host", "https://api.github.com"]).await;
    let missing = "still missing: outbound host api.example.com, outbound host 127.0.0.1, outbound host internal.test, key-value store";
    assert!(stdout(&partial).contains(missing), "{partial:?}");
    let bad = cli(&host, &["plugin", "grant", "hostile", "--allow-host", "api.example.com"]).await;
    assert_eq!(bad.status.code(), Some(1));
    let limited = cli(&host, &["plugin", "grant", "hostile", "--limit", "fuel=5000000", "--limit", "kv_max_keys=3"]).await;
    assert!(limited.status.success(), "{limited:?}");
    let (_, plugin) = host.api(reqwest::Method::GET, "/plugins/hostile", None).await;
    assert_eq!(plugin["allowed"]["limits"], serde_json::json!({ "fuel": 5_000_000, "kv_max_keys": 3 }));
    let past = cli(&host, &["plugin", "grant", "hostile", "--limit", "fuel=0"]).await;
    assert_eq!(past.status.code(), Some(1));
}

#[tokio::test]
async fn connections_from_the_command_line_read_credentials_from_a_file() {
    let host = spawn_host().await;
    host.upload_plugin("connected").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "key_from_file_9d\n").expect("write key");

    let args = ["connection", "create", "--plugin", "connected", "--name", "Acme", "--credentials-file"];
    let created = cli(&host, &[&args[..], &[key_file.to_str().expect("utf-8 path")]].concat()).await;
    assert!(created.status.success(), "{created:?}");
    let text = stdout(&created);
    assert!(text.contains("plugin:  connected (secret-text)") && !text.contains("key_from_file"), "{text}");
    let id = text.lines().find_map(|l| l.strip_prefix("id:")).map(str::trim).expect("id line").to_owned();

    let args = ["trigger", "create", "--plugin", "connected", "--trigger", "hook", "--connection", &id, "--enable"];
    let trigger = stdout(&cli(&host, &args).await);
    let trigger = trigger.lines().find_map(|l| l.strip_prefix("id:")).map(str::trim).expect("id line").to_owned();
    let delivered = host.deliver(&trigger, &[("x-api-key".into(), "key_from_file_9d".into())], b"{}").await;
    assert_eq!(delivered.status(), reqwest::StatusCode::OK, "the file's key, trimmed, reached the call");

    let listed = stdout(&cli(&host, &["connection", "list"]).await);
    assert!(listed.lines().any(|l| l.starts_with(&id) && l.contains("connected") && l.ends_with("Acme")), "{listed}");
    let refused = cli(&host, &["connection", "delete", &id]).await;
    assert!(!refused.status.success(), "deleting a connection in use is refused");
}

#[tokio::test]
async fn the_oauth2_app_and_flow_start_from_the_command_line() {
    let host = spawn_host().await;
    host.upload_plugin("oauthed").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("client_secret");
    std::fs::write(&secret_file, "cs_from_file_77\n").expect("write secret");
    let secret_path = secret_file.to_str().expect("utf-8 path");

    let args = ["connection", "oauth-app", "--plugin", "oauthed", "--client-id", "cid_1", "--client-secret-file", secret_path];
    let registered = cli(&host, &args).await;
    assert!(registered.status.success(), "{registered:?}");
    let text = stdout(&registered);
    assert!(text.contains(&format!("redirect URI with the provider: {}/oauth/callback", host.url)) && !text.contains("cs_from_file"), "{text}");

    let started = stdout(&cli(&host, &["connection", "authorize", "--plugin", "oauthed", "--name", "Acme"]).await);
    let url = started.lines().last().unwrap_or_default();
    assert!(url.starts_with("https://provider.example/oauth/authorize?") && url.contains("client_id=cid_1"), "{started}");
    assert!(url.contains("code_challenge_method=S256"), "{started}");
    let refused = cli(&host, &["connection", "authorize", "--name", "Acme"]).await;
    assert!(!refused.status.success(), "a name without a plugin or id is refused");
}
