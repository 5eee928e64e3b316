//! Helpers for the signature schemes webhook providers use: HMAC-SHA256 in hex
//! or base64, constant-time comparison, and timestamp tolerance.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
///
/// Taking parts avoids building the signed string in memory for schemes that
/// sign `id.timestamp.body`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 as lower-case hex (GitHub's `sha256=<hex>`, Shopify uses base64).
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mac = hmac_sha256(key, parts);
    let mut out = String::with_capacity(64);
    for byte in mac {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

/// HMAC-SHA256 as standard base64 with padding.
pub fn hmac_sha256_base64(key: &[u8], parts: &[&[u8]]) -> String {
    BASE64.encode(hmac_sha256(key, parts))
}

/// Encodes bytes as standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Decodes standard base64 (with padding), as used by `whsec_` secrets.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok()
}

/// Compares two byte strings in time that depends only on their lengths, so a
/// forger cannot learn a signature byte by byte from response times.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Whether `signature_hex` (case-insensitive hex) is the HMAC-SHA256 of `parts`.
pub fn verify_hmac_sha256_hex(key: &[u8], parts: &[&[u8]], signature_hex: &str) -> bool {
    let expected = hmac_sha256_hex(key, parts);
    constant_time_eq(expected.as_bytes(), signature_hex.to_ascii_lowercase().as_bytes())
}

/// Whether `signature_base64` is the HMAC-SHA256 of `parts`, in base64.
pub fn verify_hmac_sha256_base64(key: &[u8], parts: &[&[u8]], signature_base64: &str) -> bool {
    let expected = hmac_sha256_base64(key, parts);
    constant_time_eq(expected.as_bytes(), signature_base64.as_bytes())
}

/// Why a signed timestamp is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// The header is not a whole number of seconds.
    Malformed,
    /// Older than the tolerance allows: a possible replay.
    TooOld,
    /// Further in the future than the tolerance allows.
    TooNew,
}

/// Checks that `timestamp` (Unix seconds, as text) is within `tolerance_secs`
/// of `now_secs`, in either direction. `now_secs` is a parameter so tests can
/// pin the clock.
pub fn check_timestamp(timestamp: &str, now_secs: u64, tolerance_secs: u64) -> Result<u64, TimestampError> {
    let ts: u64 = timestamp.trim().parse().map_err(|_| TimestampError::Malformed)?;
    if ts.saturating_add(tolerance_secs) < now_secs {
        Err(TimestampError::TooOld)
    } else if ts > now_secs.saturating_add(tolerance_secs) {
        Err(TimestampError::TooNew)
    } else {
        Ok(ts)
    }
}

/// The current Unix time in seconds (the WASI wall clock inside a connector).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2.
    #[test]
    fn hmac_matches_rfc4231() {
        let mac = hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(mac, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert!(verify_hmac_sha256_hex(b"Jefe", &[b"what do ya want for nothing?"], &mac.to_uppercase()));
        assert!(!verify_hmac_sha256_hex(b"Jefe", &[b"what do ya want for nothing!"], &mac));
    }

    #[test]
    fn base64_round_trip() {
        let sig = hmac_sha256_base64(b"k", &[b"m"]);
        assert_eq!(base64_decode(&sig).as_deref(), Some(&hmac_sha256(b"k", &[b"m"])[..]));
        assert!(verify_hmac_sha256_base64(b"k", &[b"m"], &sig));
        assert!(!verify_hmac_sha256_base64(b"k", &[b"n"], &sig));
    }

    #[test]
    fn timestamp_tolerance_both_ways() {
        assert_eq!(check_timestamp("1000", 1000, 300), Ok(1000));
        assert_eq!(check_timestamp("700", 1000, 300), Ok(700));
        assert_eq!(check_timestamp("1300", 1000, 300), Ok(1300));
        assert_eq!(check_timestamp("699", 1000, 300), Err(TimestampError::TooOld));
        assert_eq!(check_timestamp("1301", 1000, 300), Err(TimestampError::TooNew));
        assert_eq!(check_timestamp("12a", 1000, 300), Err(TimestampError::Malformed));
        assert_eq!(check_timestamp("-5", 1000, 300), Err(TimestampError::Malformed));
    }
}
