//! GitHub's webhook signature scheme and event naming, free of any host
//! binding so they are unit-tested natively.
//!
//! From GitHub's documentation ("Validating webhook deliveries"):
//! `X-Hub-Signature-256` is `sha256=` and the hex HMAC-SHA256 of the raw
//! body under the webhook's secret. GitHub signs no timestamp; each
//! delivery has a unique `X-GitHub-Delivery` id (kept on redelivery), which
//! is the dedupe key.

use triggerhost_sdk::signature::verify_hmac_sha256_hex;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `X-Hub-Signature-256` header.
    MissingHeader,
    /// The header is not `sha256=<hex>`.
    Malformed,
    /// The signature does not match.
    BadSignature,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::MissingHeader => write!(f, "missing header x-hub-signature-256"),
            Rejection::Malformed => write!(f, "x-hub-signature-256 is not sha256=<hex>"),
            Rejection::BadSignature => write!(f, "x-hub-signature-256 does not match"),
        }
    }
}

/// Verifies the body against the `X-Hub-Signature-256` value `header`.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
    let header = header.ok_or(Rejection::MissingHeader)?;
    let hex = header.trim().strip_prefix("sha256=").ok_or(Rejection::Malformed)?;
    if verify_hmac_sha256_hex(secret.as_bytes(), &[body], hex) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// The event type: the `X-GitHub-Event` name, with the payload's `action`
/// when it has one (`issues.opened`, `pull_request.closed`, `push`).
pub fn event_type(event: &str, payload: &serde_json::Value) -> String {
    match payload.get("action").and_then(serde_json::Value::as_str) {
        Some(action) => format!("{event}.{action}"),
        None => event.to_owned(),
    }
}

/// Whether a config's event list wants `event_type`: an empty list wants
/// everything; `issues` wants every issues action, `issues.opened` only it.
pub fn wanted(events: &[String], event_type: &str) -> bool {
    let event = event_type.split('.').next().unwrap_or(event_type);
    events.is_empty() || events.iter().any(|wanted| wanted == "*" || wanted == event_type || wanted == event)
}

/// The events to subscribe the repository webhook to: GitHub subscribes by
/// event name, so `issues.opened` asks for `issues`; everything (`*`) when
/// the list is empty.
pub fn subscriptions(events: &[String]) -> Vec<String> {
    let mut names: Vec<String> = events.iter().map(|e| e.split('.').next().unwrap_or(e).to_owned()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() || names.iter().any(|name| name == "*") { vec!["*".to_owned()] } else { names }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // GitHub's documentation, "Validating webhook deliveries", section
    // "Testing the webhook payload validation": this secret and payload
    // give this signature.
    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_PAYLOAD: &[u8] = b"Hello, World!";
    const DOC_SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn the_documented_example_verifies() {
        assert_eq!(verify(DOC_SECRET, Some(DOC_SIGNATURE), DOC_PAYLOAD), Ok(()));
        assert_eq!(verify(DOC_SECRET, Some(&DOC_SIGNATURE.to_uppercase().replace("SHA256=", "sha256=")), DOC_PAYLOAD), Ok(()));
    }

    #[test]
    fn tampered_wrong_secret_missing_and_malformed_are_rejected() {
        assert_eq!(verify(DOC_SECRET, Some(DOC_SIGNATURE), b"Hello, World?"), Err(Rejection::BadSignature));
        assert_eq!(verify("another secret", Some(DOC_SIGNATURE), DOC_PAYLOAD), Err(Rejection::BadSignature));
        assert_eq!(verify(DOC_SECRET, None, DOC_PAYLOAD), Err(Rejection::MissingHeader));
        let sha1 = "sha1=757107ea0eb2509fc211221cce984b8a37570b6d";
        assert_eq!(verify(DOC_SECRET, Some(sha1), DOC_PAYLOAD), Err(Rejection::Malformed));
        assert_eq!(verify(DOC_SECRET, Some("sha256="), DOC_PAYLOAD), Err(Rejection::BadSignature));
    }

    #[test]
    fn event_types_carry_the_action_and_filters_match_either_form() {
        assert_eq!(event_type("issues", &json!({ "action": "opened" })), "issues.opened");
        assert_eq!(event_type("push", &json!({ "ref": "refs/heads/main" })), "push");
        let issues = vec!["issues".to_owned()];
        let opened = vec!["issues.opened".to_owned()];
        assert!(wanted(&[], "push"));
        assert!(wanted(&issues, "issues.closed"));
        assert!(wanted(&opened, "issues.opened"));
        assert!(!wanted(&opened, "issues.closed"));
        assert!(!wanted(&issues, "issue_comment.created"));
        assert_eq!(subscriptions(&[]), vec!["*"]);
        assert_eq!(subscriptions(&["issues.opened".into(), "issues".into(), "push".into()]), vec!["issues", "push"]);
    }
}
