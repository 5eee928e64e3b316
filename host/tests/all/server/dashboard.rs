//! The dashboard in a real (headless) browser: what an operator does,
//! clicked through, with screenshots of the main pages.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::browser::Browser;
use base64::Engine as _;

use crate::helpers::{WHSEC, component_bytes, component_path, signed_now};
use crate::host::{TOKEN, spawn_host};

/// The built component's absolute path, for the upload's file input.
fn component_file(crate_name: &str) -> String {
    let path = component_path(crate_name);
    assert!(path.is_file(), "{}: build the test plugins with `cargo xtask build-plugins`", path.display());
    path.canonicalize().expect("absolute path").display().to_string()
}

#[tokio::test]
async fn dashboard_shows_an_operators_whole_day() {
    let host = spawn_host().await;
    let browser = Browser::start().await;

    // Every dashboard response forbids inline script, frames and foreign origins.
    for path in ["/", "/ui/app.js", "/ui/style.css"] {
        let response = host.http.get(format!("{}{path}", host.url)).send().await.expect("dashboard");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{path}: {csp}");
    }

    // Sign in with the admin token.
    browser.goto(&format!("{}/", host.url)).await;
    browser.type_into("#token", "not-the-token").await;
    browser.click("#sign-in").await;
    browser.wait_for_text("#notice", "refused").await;
    browser.fill("#token", TOKEN).await;
    browser.click("#sign-in").await;
    browser.find("#create-trigger").await;

    // Upload a connector by dropping it on the page: its manifest is shown
    // before anything is stored.
    browser.click("a[href='#/plugins']").await;
    browser.find("#dropzone").await;
    let component = base64::engine::general_purpose::STANDARD.encode(component_bytes("standard_webhooks"));
    let dropped = browser
        .script(
            "const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
             const transfer = new DataTransfer();
             transfer.items.add(new File([bytes], 'standard_webhooks.wasm', { type: 'application/wasm' }));
             const zone = document.getElementById('dropzone');
             zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
             return zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));",
            json!([component]),
        )
        .await;
    assert_eq!(dropped, json!(false), "the page takes the drop (and prevents the browser's own handling)");
    let manifest = browser.wait_for_text("#manifest", "message_received").await;
    assert!(manifest.contains("standard-webhooks@"), "{manifest}");
    let (_, plugins) = host.api(Method::GET, "/plugins", None).await;
    assert_eq!(plugins["plugins"], json!([]), "a checked upload stores nothing");
    browser.screenshot("upload").await;
    browser.click("#upload-confirm").await;
    browser.wait_for_text("#notice", "Uploaded standard-webhooks@").await;
    browser.find("section[data-plugin='standard-webhooks']").await;

    // Create and enable a trigger with the form.
    browser.click("a[href='#/triggers']").await;
    browser.find("#create-trigger").await;
    browser.type_into("#new-secret", WHSEC).await;
    browser.click("#create-trigger button[type='submit']").await;
    let url = browser.wait_for_text("#webhook-url", "/hooks/").await;
    let id = url.rsplit('/').next().expect("trigger id").to_owned();
    let (_, trigger) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
    assert_eq!(trigger["status"], "enabled", "{trigger}");

    // A signed delivery appears on the trigger's page without a reload;
    // its payload opens in the viewer, as text. Its type (the sender's and
    // the connector's words, shown in the table) carries markup too.
    let body = br#"{"type":"invoice.paid<img src=x id=injected>","data":{"note":"<img src=x onerror=alert(1)>"}}"#;
    let response = host.deliver(&id, &signed_now("msg_dashboard_1", body), body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let listed = browser.wait_for_text("#events", "invoice.paid").await;
    assert!(listed.contains("invoice.paid<img src=x id=injected>"), "the type is shown as text: {listed}");
    browser.click("#events tr[data-event]").await;
    let payload = browser.wait_for_text("#payload", "onerror").await;
    assert!(payload.contains("<img src=x onerror=alert(1)>"), "the payload is shown as text: {payload}");
    let images = browser.script("return document.querySelectorAll('#main img').length", json!([])).await;
    assert_eq!(images, json!(0), "no markup from a payload reaches the page");
    browser.screenshot("trigger").await;

    // A hostile connector, uploaded with the file chooser; its failure, with its typed error.
    browser.click("a[href='#/plugins']").await;
    browser.type_into("#upload-file", &component_file("hostile")).await;
    browser.wait_for_text("#manifest", "hostile@").await;
    browser.click("#upload-confirm").await;
    browser.wait_for_text("#notice", "Uploaded hostile@").await;
    let hostile = host.enabled_trigger("hostile", "spin", None).await;
    let response = host.deliver(&hostile, &[], b"{}").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    browser.goto(&format!("{}/#/triggers/{hostile}/failures", host.url)).await;
    let failures = browser.wait_for_text("#failures", "out-of-fuel").await;
    assert!(failures.contains("deliver"), "{failures}");
    browser.wait_for_text("#health", "unhealthy").await;
    // A webhook trigger whose newest delivery failed is unhealthy; one whose
    // newest event came after any failure is not.
    let (_, health) = host.api(Method::GET, &format!("/triggers/{hostile}/health"), None).await;
    assert_eq!((health["healthy"].as_bool(), &health["last_failure"]["code"]), (Some(false), &json!("out-of-fuel")), "{health}");
    let (_, health) = host.api(Method::GET, &format!("/triggers/{id}/health"), None).await;
    assert_eq!(health["healthy"], true, "{health}");
    browser.screenshot("failures").await;

    // What a connector writes on a successful call, on its logs tab.
    let chatty = host.enabled_trigger("hostile", "log_flood", None).await;
    assert_eq!(host.deliver(&chatty, &[], b"{}").await.status(), StatusCode::OK);
    browser.goto(&format!("{}/#/triggers/{chatty}/logs", host.url)).await;
    let logs = browser.wait_for_text("#logs", "flood flood").await;
    assert!(logs.contains("accepted") && logs.contains("bytes past the cap dropped"), "{}", &logs[..logs.len().min(300)]);

    // The triggers page: status, health and the events sparkline.
    browser.click("a[href='#/triggers']").await;
    browser.wait_for_text("#triggers", &id).await;
    browser.find("#triggers svg.sparkline polyline").await;
    browser.screenshot("triggers").await;

    // Roll back: a newer version is activated, the operator goes back.
    host.upload_plugin("standard_webhooks_next").await;
    let (status, _) = host.api(Method::POST, "/plugins/standard-webhooks/activate", Some(json!({ "version": "0.2.0" }))).await;
    assert_eq!(status, StatusCode::OK);
    browser.click("a[href='#/plugins']").await;
    let (_, plugin) = host.api(Method::GET, "/plugins/standard-webhooks", None).await;
    let previous = plugin["previous_version"].as_str().expect("a previous version").to_owned();
    let rollback = format!("[data-test='activate-standard-webhooks-{previous}']");
    assert_eq!(browser.text(&rollback).await, "Roll back");
    browser.screenshot("plugins").await;
    browser.click(&rollback).await;
    browser.wait_for_text("#notice", &format!("standard-webhooks@{previous} is active")).await;
    let (_, plugin) = host.api(Method::GET, "/plugins/standard-webhooks", None).await;
    assert_eq!(plugin["active_version"], previous.as_str(), "{plugin}");

    // Signing out forgets the token.
    browser.click("#sign-out").await;
    browser.find("#token").await;
    let kept = browser.script("return sessionStorage.length", json!([])).await;
    assert_eq!(kept, json!(0));
    browser.quit().await;
}
