//! The Standard Webhooks signature scheme, free of any host binding so it is
//! unit-tested natively and benchmarked against the sandboxed call.
//!
//! Spec: signed content is `{webhook-id}.{webhook-timestamp}.{body}`, signed
//! with HMAC-SHA256 under the base64-decoded part of a `whsec_` secret; the
//! `webhook-signature` header holds space-separated `v1,<base64>` entries and
//! any match accepts.

use triggerhost_sdk::signature::{
    TimestampError, base64_decode, check_timestamp, constant_time_eq, hmac_sha256_base64,
};

/// The spec's recommended tolerance for clock skew and replays.
pub const DEFAULT_TOLERANCE_SECS: u64 = 5 * 60;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A required header is absent.
    MissingHeader(&'static str),
    /// The timestamp is malformed or outside the tolerance.
    Timestamp(TimestampError),
    /// No `v1` signature in the header matches.
    BadSignature,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::MissingHeader(name) => write!(f, "missing header {name}"),
            Rejection::Timestamp(TimestampError::Malformed) => write!(f, "malformed webhook-timestamp"),
            Rejection::Timestamp(TimestampError::TooOld) => write!(f, "webhook-timestamp too old"),
            Rejection::Timestamp(TimestampError::TooNew) => write!(f, "webhook-timestamp too far in the future"),
            Rejection::BadSignature => write!(f, "no matching v1 signature"),
        }
    }
}

/// Decodes a secret: `whsec_<base64>`, or bare base64 as some senders share it.
/// `None` when it is not base64.
pub fn signing_key(secret: &str) -> Option<Vec<u8>> {
    base64_decode(secret.strip_prefix("whsec_").unwrap_or(secret))
}

/// The headers the scheme reads.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

/// Verifies a delivery at time `now_secs`. Returns the timestamp on success.
pub fn verify(
    key: &[u8],
    headers: SignedHeaders<'_>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<u64, Rejection> {
    let id = headers.id.ok_or(Rejection::MissingHeader("webhook-id"))?;
    let timestamp = headers.timestamp.ok_or(Rejection::MissingHeader("webhook-timestamp"))?;
    let signatures = headers.signature.ok_or(Rejection::MissingHeader("webhook-signature"))?;
    let ts = check_timestamp(timestamp, now_secs, tolerance_secs).map_err(Rejection::Timestamp)?;

    let expected = hmac_sha256_base64(key, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body]);
    // Compare against every v1 entry without stopping early, so the time taken
    // does not tell which entry matched.
    let mut matched = false;
    for entry in signatures.split(' ') {
        if let Some(candidate) = entry.strip_prefix("v1,") {
            matched |= constant_time_eq(expected.as_bytes(), candidate.as_bytes());
        }
    }
    if matched { Ok(ts) } else { Err(Rejection::BadSignature) }
}

/// The event type of a payload: its `type` field, as the spec's examples use,
/// or `message` when there is none.
pub fn event_type(payload: &serde_json::Value) -> &str {
    payload.get("type").and_then(serde_json::Value::as_str).unwrap_or("message")
}

/// Signs a delivery: the `webhook-signature` header value for one key.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!("v1,{}", hmac_sha256_base64(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published example: ../shared/vectors/standard-webhooks.md, from the
    // Standard Webhooks reference library's "sign function works" test.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: u64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders { id: Some(ID), timestamp: Some(ts), signature: Some(sig) }
    }

    fn key() -> Vec<u8> {
        signing_key(SECRET).expect("vector secret is base64")
    }

    #[test]
    fn published_vector_signs_and_verifies() {
        assert_eq!(sign(&key(), ID, TIMESTAMP, BODY), SIGNATURE);
        let ts = TIMESTAMP.to_string();
        assert_eq!(verify(&key(), headers(&ts, SIGNATURE), BODY, TIMESTAMP, DEFAULT_TOLERANCE_SECS), Ok(TIMESTAMP));
    }

    #[test]
    fn published_vector_is_stale_today() {
        let ts = TIMESTAMP.to_string();
        let now = triggerhost_sdk::signature::now_secs();
        assert_eq!(
            verify(&key(), headers(&ts, SIGNATURE), BODY, now, DEFAULT_TOLERANCE_SECS),
            Err(Rejection::Timestamp(TimestampError::TooOld))
        );
    }

    #[test]
    fn any_of_several_signatures_accepts() {
        let ts = TIMESTAMP.to_string();
        let several = format!("v1,AAAA v2,whatever {SIGNATURE}");
        assert!(verify(&key(), headers(&ts, &several), BODY, TIMESTAMP, 300).is_ok());
    }

    #[test]
    fn tampering_is_rejected() {
        let ts = TIMESTAMP.to_string();
        let tampered_body = br#"{"test": 2432232315}"#;
        assert_eq!(verify(&key(), headers(&ts, SIGNATURE), tampered_body, TIMESTAMP, 300), Err(Rejection::BadSignature));
        let other_ts = (TIMESTAMP + 1).to_string();
        assert_eq!(verify(&key(), headers(&other_ts, SIGNATURE), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        assert_eq!(verify(b"other key", headers(&ts, SIGNATURE), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        // Only v1 entries count, even if a v2 entry carries the right bytes.
        let v2 = SIGNATURE.replace("v1,", "v2,");
        assert_eq!(verify(&key(), headers(&ts, &v2), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
    }

    #[test]
    fn tolerance_applies_both_ways() {
        let early = (TIMESTAMP - 301).to_string();
        let late = (TIMESTAMP + 301).to_string();
        let early_sig = sign(&key(), ID, TIMESTAMP - 301, BODY);
        let late_sig = sign(&key(), ID, TIMESTAMP + 301, BODY);
        assert_eq!(
            verify(&key(), headers(&early, &early_sig), BODY, TIMESTAMP, 300),
            Err(Rejection::Timestamp(TimestampError::TooOld))
        );
        assert_eq!(
            verify(&key(), headers(&late, &late_sig), BODY, TIMESTAMP, 300),
            Err(Rejection::Timestamp(TimestampError::TooNew))
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let none = SignedHeaders { id: None, timestamp: None, signature: None };
        assert_eq!(verify(&key(), none, BODY, TIMESTAMP, 300), Err(Rejection::MissingHeader("webhook-id")));
    }

    #[test]
    fn secret_prefix_is_optional_and_checked() {
        assert_eq!(signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some(key()));
        assert_eq!(signing_key("whsec_not base64!"), None);
    }
}
