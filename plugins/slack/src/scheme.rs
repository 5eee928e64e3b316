//! Slack's request signing, free of any host binding so it is unit-tested
//! natively.
//!
//! From Slack's documentation ("Verifying requests from Slack"): the base
//! string is `v0:{X-Slack-Request-Timestamp}:{raw body}`; `X-Slack-Signature`
//! is `v0=` and its hex HMAC-SHA256 under the app's signing secret. Slack
//! asks that requests older than five minutes be refused, so a captured
//! request cannot be replayed.

use triggerhost_sdk::signature::{TimestampError, check_timestamp, verify_hmac_sha256_hex};

/// Slack's recommended window, either way.
pub const DEFAULT_TOLERANCE_SECS: u64 = 5 * 60;

/// Why a request does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A required header is absent.
    MissingHeader(&'static str),
    /// The timestamp is malformed or outside the tolerance.
    Timestamp(TimestampError),
    /// The signature is not `v0=<hex>`, or does not match.
    BadSignature,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::MissingHeader(name) => write!(f, "missing header {name}"),
            Rejection::Timestamp(TimestampError::Malformed) => write!(f, "malformed x-slack-request-timestamp"),
            Rejection::Timestamp(TimestampError::TooOld) => write!(f, "x-slack-request-timestamp too old"),
            Rejection::Timestamp(TimestampError::TooNew) => write!(f, "x-slack-request-timestamp too far in the future"),
            Rejection::BadSignature => write!(f, "x-slack-signature does not match"),
        }
    }
}

/// Verifies a request at time `now_secs`; `timestamp` and `signature` are
/// the `X-Slack-Request-Timestamp` and `X-Slack-Signature` values.
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<(), Rejection> {
    let timestamp = timestamp.ok_or(Rejection::MissingHeader("x-slack-request-timestamp"))?;
    let signature = signature.ok_or(Rejection::MissingHeader("x-slack-signature"))?;
    check_timestamp(timestamp, now_secs, tolerance_secs).map_err(Rejection::Timestamp)?;
    let hex = signature.trim().strip_prefix("v0=").ok_or(Rejection::BadSignature)?;
    let base = [b"v0:", timestamp.as_bytes(), b":", body];
    if verify_hmac_sha256_hex(signing_secret.as_bytes(), &base, hex) { Ok(()) } else { Err(Rejection::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triggerhost_sdk::signature::hmac_sha256_hex;

    // Slack's documentation, "Verifying requests from Slack", its worked
    // example (a slash command's form body).
    const DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOC_TIMESTAMP: &str = "1531420618";
    const DOC_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOC_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const DOC_NOW: u64 = 1531420618;

    fn check(secret: &str, ts: &str, sig: &str, body: &[u8], now: u64) -> Result<(), Rejection> {
        verify(secret, Some(ts), Some(sig), body, now, DEFAULT_TOLERANCE_SECS)
    }

    #[test]
    fn the_documented_example_verifies_at_its_time_and_is_stale_today() {
        assert_eq!(check(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, DOC_NOW), Ok(()));
        let today = triggerhost_sdk::signature::now_secs();
        assert_eq!(
            check(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, today),
            Err(Rejection::Timestamp(TimestampError::TooOld))
        );
    }

    #[test]
    fn tampered_wrong_secret_and_missing_headers_are_rejected() {
        let mut tampered = DOC_BODY.to_vec();
        tampered[6] = b'X';
        assert_eq!(check(DOC_SECRET, DOC_TIMESTAMP, DOC_SIGNATURE, &tampered, DOC_NOW), Err(Rejection::BadSignature));
        assert_eq!(check("another secret", DOC_TIMESTAMP, DOC_SIGNATURE, DOC_BODY, DOC_NOW), Err(Rejection::BadSignature));
        // The timestamp is signed: moving it breaks the signature.
        assert_eq!(check(DOC_SECRET, "1531420619", DOC_SIGNATURE, DOC_BODY, DOC_NOW), Err(Rejection::BadSignature));
        let unversioned = DOC_SIGNATURE.trim_start_matches("v0=");
        assert_eq!(check(DOC_SECRET, DOC_TIMESTAMP, unversioned, DOC_BODY, DOC_NOW), Err(Rejection::BadSignature));
        assert_eq!(
            verify(DOC_SECRET, None, Some(DOC_SIGNATURE), DOC_BODY, DOC_NOW, 300),
            Err(Rejection::MissingHeader("x-slack-request-timestamp"))
        );
        assert_eq!(
            verify(DOC_SECRET, Some(DOC_TIMESTAMP), None, DOC_BODY, DOC_NOW, 300),
            Err(Rejection::MissingHeader("x-slack-signature"))
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected_even_when_signed() {
        let body = br#"{"type":"event_callback","event_id":"Ev1"}"#;
        let sign = |ts: u64| {
            let ts = ts.to_string();
            format!("v0={}", hmac_sha256_hex(DOC_SECRET.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]))
        };
        let now = 1_700_000_000;
        assert_eq!(check(DOC_SECRET, &(now - 300).to_string(), &sign(now - 300), body, now), Ok(()));
        assert_eq!(
            check(DOC_SECRET, &(now - 301).to_string(), &sign(now - 301), body, now),
            Err(Rejection::Timestamp(TimestampError::TooOld))
        );
        assert_eq!(
            check(DOC_SECRET, &(now + 301).to_string(), &sign(now + 301), body, now),
            Err(Rejection::Timestamp(TimestampError::TooNew))
        );
        assert_eq!(check(DOC_SECRET, "soon", &sign(now), body, now), Err(Rejection::Timestamp(TimestampError::Malformed)));
    }
}
