//! Stripe's webhook signature scheme, free of any host binding so it is
//! unit-tested natively.
//!
//! From Stripe's documentation ("Verify webhook signatures manually"): the
//! `Stripe-Signature` header is a comma-separated list of `key=value`
//! elements: one `t` (Unix seconds) and one or more `v1` (several while a
//! secret rolls over; other schemes such as `v0` are ignored). The signed
//! payload is `{t}.{raw body}`, signed with HMAC-SHA256 under the endpoint's
//! whole `whsec_...` secret, in hex. The default tolerance is 300 s.

use triggerhost_sdk::signature::{TimestampError, check_timestamp, constant_time_eq, hmac_sha256_hex};

/// Stripe's libraries' default tolerance.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `Stripe-Signature` header.
    MissingHeader,
    /// The header has no `t=` element.
    MissingTimestamp,
    /// The header has no `v1=` element.
    NoV1Signature,
    /// The timestamp is malformed or outside the tolerance.
    Timestamp(TimestampError),
    /// No `v1` signature matches.
    BadSignature,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::MissingHeader => write!(f, "missing header stripe-signature"),
            Rejection::MissingTimestamp => write!(f, "stripe-signature has no t="),
            Rejection::NoV1Signature => write!(f, "stripe-signature has no v1= signature"),
            Rejection::Timestamp(TimestampError::Malformed) => write!(f, "malformed t= in stripe-signature"),
            Rejection::Timestamp(TimestampError::TooOld) => write!(f, "stripe-signature timestamp too old"),
            Rejection::Timestamp(TimestampError::TooNew) => write!(f, "stripe-signature timestamp too far in the future"),
            Rejection::BadSignature => write!(f, "no matching v1 signature"),
        }
    }
}

/// Verifies a delivery's `Stripe-Signature` (`header`) at `now_secs`;
/// returns its timestamp.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now_secs: u64, tolerance_secs: u64) -> Result<u64, Rejection> {
    let header = header.ok_or(Rejection::MissingHeader)?;
    let elements = || header.split(',').filter_map(|element| element.trim().split_once('='));
    let timestamp = elements().find(|(key, _)| *key == "t").map(|(_, value)| value).ok_or(Rejection::MissingTimestamp)?;
    let signatures: Vec<&str> = elements().filter(|(key, _)| *key == "v1").map(|(_, value)| value).collect();
    if signatures.is_empty() {
        return Err(Rejection::NoV1Signature);
    }
    let ts = check_timestamp(timestamp, now_secs, tolerance_secs).map_err(Rejection::Timestamp)?;
    let expected = hmac_sha256_hex(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]);
    // Every candidate is compared, so the time taken does not tell which matched.
    let matched = signatures.iter().fold(false, |matched, candidate| matched | constant_time_eq(expected.as_bytes(), candidate.as_bytes()));
    if matched { Ok(ts) } else { Err(Rejection::BadSignature) }
}

/// The `Stripe-Signature` value Stripe would send for `body` at `timestamp`
/// under `secret` (for tests and tools).
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    format!("t={ts},v1={}", hmac_sha256_hex(secret.as_bytes(), &[ts.as_bytes(), b".", body]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
    const NOW: u64 = 1_700_000_000;

    fn check(header: &str, body: &[u8]) -> Result<u64, Rejection> {
        verify(SECRET, Some(header), body, NOW, DEFAULT_TOLERANCE_SECS)
    }

    /// RFC 4231 test case 2: the HMAC-SHA256 the scheme relies on.
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_delivery_verifies() {
        assert_eq!(check(&sign(SECRET, NOW, BODY), BODY), Ok(NOW));
    }

    /// While a secret rolls over Stripe sends one v1 per secret (and may
    /// add a v0, which is ignored).
    #[test]
    fn any_v1_of_several_verifies() {
        let good = sign(SECRET, NOW, BODY);
        let good_v1 = good.split_once(",v1=").map(|(_, v1)| v1).unwrap_or_default();
        let header = format!("t={NOW},v1={},v1={good_v1},v0=6ffbb59b2300aae63f272406069a9788", "0".repeat(64));
        assert_eq!(check(&header, BODY), Ok(NOW));
    }

    #[test]
    fn tampering_a_wrong_secret_and_missing_parts_are_rejected() {
        let good = sign(SECRET, NOW, BODY);
        assert_eq!(check(&good, br#"{"id":"evt_1","type":"invoice.paid","amount":1}"#), Err(Rejection::BadSignature));
        assert_eq!(check(&sign("whsec_other", NOW, BODY), BODY), Err(Rejection::BadSignature));
        assert_eq!(verify(SECRET, None, BODY, NOW, 300), Err(Rejection::MissingHeader));
        assert_eq!(check(&good.replace(&format!("t={NOW},"), ""), BODY), Err(Rejection::MissingTimestamp));
        assert_eq!(check(&format!("t={NOW},v0=abc"), BODY), Err(Rejection::NoV1Signature));
        assert_eq!(check(&good.replace(&format!("t={NOW}"), "t=soon"), BODY), Err(Rejection::Timestamp(TimestampError::Malformed)));
    }

    #[test]
    fn stale_and_future_timestamps_are_rejected() {
        let stale = sign(SECRET, NOW - 301, BODY);
        assert_eq!(check(&stale, BODY), Err(Rejection::Timestamp(TimestampError::TooOld)));
        let future = sign(SECRET, NOW + 301, BODY);
        assert_eq!(check(&future, BODY), Err(Rejection::Timestamp(TimestampError::TooNew)));
        assert_eq!(check(&sign(SECRET, NOW - 300, BODY), BODY), Ok(NOW - 300));
    }
}
