//! Secrets at rest: the trigger secret and secret config properties are
//! sealed in the database, redacted in the API, opened only for their
//! trigger's calls, and unreadable from a database copied without its key.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host, spawn_host_in};
use crate::provider::Provider;

const TOKEN_SECRET: &str = "tok_very_secret_4242";
const WHSEC_KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every byte the server has written to disk: database, WAL, log.
fn bytes_on_disk(host: &Host) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&host.data_dir).expect("data dir").flatten() {
        if entry.path().is_file() {
            bytes.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    bytes.extend(std::fs::read(host.data_dir.with_extension("log")).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Copies a data dir, all but its key file.
fn copy_without_key(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("copy dir");
    for entry in std::fs::read_dir(from).expect("data dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_without_key(&entry.path(), &target);
        } else if entry.file_name() != "secret.key" {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_redacted_and_opened_only_for_their_trigger() {
    let provider = Provider::start().await;
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    host.upload_plugin("registrar").await;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/registrar/grants", Some(allow)).await.0, StatusCode::OK);

    let signed = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let config = json!({ "provider": provider.url(), "token": TOKEN_SECRET });
    let registered = host.enabled_trigger_with("registrar", "hook", None, config).await;

    // Opened for their own calls: the signature verifies, the provider
    // gets the token.
    let response = host.deliver(&signed, &signed_now("msg_secret", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(provider.calls()[0].authorization.as_deref(), Some(&*format!("Bearer {TOKEN_SECRET}")));

    // Redacted in the API, sealed on disk, absent from the log.
    let (_, view) = host.api(Method::GET, &format!("/triggers/{registered}"), None).await;
    assert_eq!(view["config"], json!({ "provider": provider.url(), "token": "[redacted]" }));
    let (_, view) = host.api(Method::GET, &format!("/triggers/{signed}"), None).await;
    assert_eq!(view["has_secret"], true);
    assert!(!view.to_string().contains(WHSEC_KEY));
    let (_, list) = host.api(Method::GET, "/triggers", None).await;
    assert!(!list.to_string().contains(TOKEN_SECRET) && !list.to_string().contains(WHSEC_KEY));
    let disk = bytes_on_disk(&host);
    assert!(!contains(&disk, TOKEN_SECRET) && !contains(&disk, WHSEC_KEY), "a secret is on disk in plain text");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(host.data_dir.join("secret.key")).expect("key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Patching the config keeps the token sealed and usable.
    let patch = json!({ "config": { "provider": provider.url(), "token": "tok_rotated_777" } });
    let (status, patched) = host.api(Method::PATCH, &format!("/triggers/{registered}"), Some(patch)).await;
    assert_eq!((status, &patched["config"]["token"]), (StatusCode::OK, &json!("[redacted]")));
    assert!(!contains(&bytes_on_disk(&host), "tok_rotated_777"));
    // The registration followed (on-update): registered again with the new token.
    let posts = || provider.calls().iter().filter(|c| c.method == "POST").count();
    assert_eq!(provider.calls().last().and_then(|c| c.authorization.clone()), Some("Bearer tok_rotated_777".into()));
    let registered_posts = posts();

    // A copy of the data dir without its key file yields no secret: the
    // triggers that need one are put in error, not served without it.
    let mut host = host;
    host.kill9().await;
    let copy = tempfile::tempdir().expect("temp dir");
    let copied = copy.path().join("data");
    copy_without_key(&host.data_dir, &copied);
    // On PostgreSQL the database is not in the data dir: the thief reads
    // the same one.
    let schema = host.schema.clone();
    drop(host);
    let thief = spawn_host_in(&copied, schema).await;
    let (_, view) = thief.api(Method::GET, &format!("/triggers/{signed}"), None).await;
    assert_eq!(view["status"], "error");
    assert!(view["last_error"].as_str().is_some_and(|e| e.contains("cannot be decrypted")), "{view}");
    let response = thief.deliver(&signed, &signed_now("msg_thief", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (status, refused) = thief.api(Method::POST, &format!("/triggers/{registered}/enable"), None).await;
    assert_eq!((status, refused["status"].as_str()), (StatusCode::OK, Some("error")), "{refused}");
    assert_eq!(posts(), registered_posts, "no call with a stolen token");
}

#[tokio::test]
async fn plaintext_secrets_of_an_earlier_version_are_sealed_at_start() {
    let host = spawn_host().await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let mut host = host;
    host.kill9().await;

    // What the previous release stored: the secret as it was given.
    let mut database = crate::database::connect(&host).await;
    sqlx::query("UPDATE triggers SET secret = $1 WHERE id = $2").bind(WHSEC).bind(&id).execute(&mut database).await.expect("plain");
    drop(database);

    let host = host.restart().await;
    let response = host.deliver(&id, &signed_now("msg_after_migration", b"{}"), b"{}").await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut database = crate::database::connect(&host).await;
    let stored: String =
        sqlx::query_scalar("SELECT secret FROM triggers WHERE id = $1").bind(&id).fetch_one(&mut database).await.expect("row");
    assert!(stored.starts_with("sealed:v1:") && !stored.contains(WHSEC_KEY), "{stored}");
}

#[tokio::test]
async fn a_secret_the_provider_issues_at_registration_is_sealed_used_by_verify_and_rotated() {
    use triggerhost_sdk::signature::hmac_sha256_hex;

    let provider = Provider::start().await;
    let host = spawn_host().await;
    host.upload_plugin("registrar").await;
    let allow = json!({ "outbound_hosts": [provider.url()], "key_value": true });
    assert_eq!(host.api(Method::PUT, "/plugins/registrar/grants", Some(allow)).await.0, StatusCode::OK);
    let config = json!({ "provider": provider.url(), "token": TOKEN_SECRET, "signed": true });
    let trigger = host.enabled_trigger_with("registrar", "hook", None, config).await;
    let issued = crate::provider::issued_secret("hook_1");

    let delivery = |hook: &str, key: &str| {
        let body: &'static [u8] = br#"{"order":7}"#;
        let headers = vec![
            ("x-hook-id".to_owned(), hook.to_owned()),
            ("x-hook-signature".to_owned(), hmac_sha256_hex(key.as_bytes(), &[body])),
        ];
        let (host, trigger) = (&host, trigger.clone());
        async move { host.deliver(&trigger, &headers, body).await.status() }
    };
    // verify sees the issued secret: signed with it is accepted, anything else refused.
    assert_eq!(delivery("hook_1", &issued).await, StatusCode::OK);
    assert_eq!(delivery("hook_1", "a guess").await, StatusCode::UNAUTHORIZED);

    // Kept sealed: not in any answer, not on disk in plain text.
    let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}"), None).await;
    assert_eq!(view["has_issued_secrets"], true, "{view}");
    let (_, list) = host.api(Method::GET, "/triggers", None).await;
    let (_, failures) = host.api(Method::GET, &format!("/triggers/{trigger}/failures"), None).await;
    let (_, kv) = host.api(Method::GET, &format!("/triggers/{trigger}/kv?values=true"), None).await;
    for answer in [&view, &list, &failures, &kv] {
        assert!(!answer.to_string().contains(&issued), "the issued secret is shown: {answer}");
    }
    assert!(!contains(&bytes_on_disk(&host), &issued), "the issued secret is on disk in plain text");

    // Enabling again registers a new hook whose new secret replaces the old one.
    assert_eq!(host.api(Method::POST, &format!("/triggers/{trigger}/disable"), None).await.0, StatusCode::OK);
    let (_, enabled) = host.api(Method::POST, &format!("/triggers/{trigger}/enable"), None).await;
    assert_eq!(enabled["status"], "enabled", "{enabled}");
    let rotated = crate::provider::issued_secret("hook_2");
    assert_eq!(delivery("hook_2", &rotated).await, StatusCode::OK);
    assert_eq!(delivery("hook_2", &issued).await, StatusCode::UNAUTHORIZED, "the old secret no longer verifies");
}
