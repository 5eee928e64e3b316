//! The Standard Webhooks signature scheme, free of any host binding so it is
//! unit-tested natively and benchmarked against the sandboxed call.
//!
//! Spec: signed content is `{webhook-id}.{webhook-timestamp}.{body}`, signed
//! either with HMAC-SHA256 under the base64-decoded part of a `whsec_`
//! secret (`v1,<base64>` entries) or with ed25519, verified with the
//! sender's `whpk_` public key (`v1a,<base64>` entries). The
//! `webhook-signature` header holds space-separated entries, several while
//! a sender rotates its key, and any entry of the key's kind that matches
//! accepts.

use ed25519_dalek::{Signature, VerifyingKey};
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
    /// No signature of the key's kind (`v1` or `v1a`) in the header matches.
    BadSignature,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::MissingHeader(name) => write!(f, "missing header {name}"),
            Rejection::Timestamp(TimestampError::Malformed) => write!(f, "malformed webhook-timestamp"),
            Rejection::Timestamp(TimestampError::TooOld) => write!(f, "webhook-timestamp too old"),
            Rejection::Timestamp(TimestampError::TooNew) => write!(f, "webhook-timestamp too far in the future"),
            Rejection::BadSignature => write!(f, "no matching signature"),
        }
    }
}

/// Decodes a symmetric secret: `whsec_<base64>`, or bare base64 as some
/// senders share it. `None` when it is not base64.
pub fn signing_key(secret: &str) -> Option<Vec<u8>> {
    base64_decode(secret.strip_prefix("whsec_").unwrap_or(secret))
}

/// What a trigger's secret verifies with.
#[derive(Debug, Clone)]
pub enum Key {
    /// A shared `whsec_` secret: `v1` (HMAC-SHA256) signatures.
    Hmac(Vec<u8>),
    /// The sender's `whpk_` public key: `v1a` (ed25519) signatures.
    Ed25519(VerifyingKey),
}

impl Key {
    /// The key a trigger's secret holds: `whpk_<base64 of 32 bytes>` is an
    /// ed25519 public key, anything else a symmetric secret. `None` when it
    /// does not decode (or is not a valid curve point).
    pub fn from_secret(secret: &str) -> Option<Key> {
        match secret.strip_prefix("whpk_") {
            Some(public) => {
                let bytes: [u8; 32] = base64_decode(public)?.try_into().ok()?;
                VerifyingKey::from_bytes(&bytes).ok().map(Key::Ed25519)
            }
            None => signing_key(secret).map(Key::Hmac),
        }
    }

    /// Whether one header entry is a signature of `id.timestamp.body` under
    /// this key. Entries of the other kind, or of unknown versions, are not.
    fn matches(&self, entry: &str, signed: &[&[u8]; 5], expected_hmac: &Option<String>) -> bool {
        match (self, expected_hmac) {
            (Key::Hmac(_), Some(expected)) => {
                entry.strip_prefix("v1,").is_some_and(|candidate| constant_time_eq(expected.as_bytes(), candidate.as_bytes()))
            }
            (Key::Ed25519(public), _) => {
                let Some(signature) = entry.strip_prefix("v1a,").and_then(base64_decode) else {
                    return false;
                };
                let Ok(signature) = Signature::from_slice(&signature) else {
                    return false;
                };
                public.verify_strict(&signed.concat(), &signature).is_ok()
            }
            (Key::Hmac(_), None) => false,
        }
    }
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
    key: &Key,
    headers: SignedHeaders<'_>,
    body: &[u8],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<u64, Rejection> {
    let id = headers.id.ok_or(Rejection::MissingHeader("webhook-id"))?;
    let timestamp = headers.timestamp.ok_or(Rejection::MissingHeader("webhook-timestamp"))?;
    let signatures = headers.signature.ok_or(Rejection::MissingHeader("webhook-signature"))?;
    let ts = check_timestamp(timestamp, now_secs, tolerance_secs).map_err(Rejection::Timestamp)?;

    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
    let expected_hmac = match key {
        Key::Hmac(secret) => Some(hmac_sha256_base64(secret, &signed)),
        Key::Ed25519(_) => None,
    };
    // Check every entry without stopping early, so the time taken does not
    // tell which entry matched.
    let mut matched = false;
    for entry in signatures.split(' ') {
        matched |= key.matches(entry, &signed, &expected_hmac);
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
    use ed25519_dalek::{Signer, SigningKey};
    use triggerhost_sdk::signature::base64_encode;

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

    fn hmac_key() -> Vec<u8> {
        signing_key(SECRET).expect("vector secret is base64")
    }

    fn key() -> Key {
        Key::Hmac(hmac_key())
    }

    #[test]
    fn published_vector_signs_and_verifies() {
        assert_eq!(sign(&hmac_key(), ID, TIMESTAMP, BODY), SIGNATURE);
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
        let other = Key::Hmac(b"other key".to_vec());
        assert_eq!(verify(&other, headers(&ts, SIGNATURE), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        // Only v1 entries count, even if a v2 entry carries the right bytes.
        let v2 = SIGNATURE.replace("v1,", "v2,");
        assert_eq!(verify(&key(), headers(&ts, &v2), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
    }

    #[test]
    fn tolerance_applies_both_ways() {
        let early = (TIMESTAMP - 301).to_string();
        let late = (TIMESTAMP + 301).to_string();
        let early_sig = sign(&hmac_key(), ID, TIMESTAMP - 301, BODY);
        let late_sig = sign(&hmac_key(), ID, TIMESTAMP + 301, BODY);
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
        assert_eq!(signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Some(hmac_key()));
        assert_eq!(signing_key("whsec_not base64!"), None);
    }

    // ed25519 (`v1a`).

    // RFC 8032, section 7.1, TEST 1: the secret key, its public key and
    // the signature of the empty message.
    const RFC8032_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC8032_EMPTY_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn unhex<const N: usize>(text: &str) -> [u8; N] {
        let bytes: Vec<u8> = (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex")).collect();
        bytes.try_into().expect("length")
    }

    fn signer() -> SigningKey {
        SigningKey::from_bytes(&unhex::<32>(RFC8032_SECRET))
    }

    fn whpk() -> String {
        format!("whpk_{}", base64_encode(&unhex::<32>(RFC8032_PUBLIC)))
    }

    /// `v1a,<base64>` over the spec's signed content.
    fn sign_v1a(signer: &SigningKey, id: &str, ts: u64, body: &[u8]) -> String {
        let content = [id.as_bytes(), b".", ts.to_string().as_bytes(), b".", body].concat();
        format!("v1a,{}", base64_encode(&signer.sign(&content).to_bytes()))
    }

    #[test]
    fn the_rfc_8032_key_is_the_one_the_test_signs_with() {
        assert_eq!(signer().verifying_key().to_bytes(), unhex::<32>(RFC8032_PUBLIC));
        assert_eq!(signer().sign(b"").to_bytes(), unhex::<64>(RFC8032_EMPTY_SIGNATURE));
    }

    #[test]
    fn a_v1a_signature_verifies_with_the_public_key() {
        let key = Key::from_secret(&whpk()).expect("whpk_ key");
        assert!(matches!(key, Key::Ed25519(_)));
        let ts = TIMESTAMP.to_string();
        let signature = sign_v1a(&signer(), ID, TIMESTAMP, BODY);
        assert_eq!(verify(&key, headers(&ts, &signature), BODY, TIMESTAMP, 300), Ok(TIMESTAMP));
    }

    #[test]
    fn during_rotation_any_listed_signature_accepts() {
        let key = Key::from_secret(&whpk()).expect("whpk_ key");
        let ts = TIMESTAMP.to_string();
        let retired = SigningKey::from_bytes(&[7; 32]);
        let both = format!("{} {}", sign_v1a(&retired, ID, TIMESTAMP, BODY), sign_v1a(&signer(), ID, TIMESTAMP, BODY));
        assert_eq!(verify(&key, headers(&ts, &both), BODY, TIMESTAMP, 300), Ok(TIMESTAMP));
        let only_retired = sign_v1a(&retired, ID, TIMESTAMP, BODY);
        assert_eq!(verify(&key, headers(&ts, &only_retired), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
    }

    #[test]
    fn tampering_and_kind_confusion_are_rejected() {
        let key = Key::from_secret(&whpk()).expect("whpk_ key");
        let ts = TIMESTAMP.to_string();
        let signature = sign_v1a(&signer(), ID, TIMESTAMP, BODY);
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(verify(&key, headers(&ts, &signature), tampered, TIMESTAMP, 300), Err(Rejection::BadSignature));
        let other_ts = (TIMESTAMP + 1).to_string();
        assert_eq!(verify(&key, headers(&other_ts, &signature), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        // A v1 (HMAC) entry never satisfies a public key, nor a v1a entry a shared secret.
        assert_eq!(verify(&key, headers(&ts, SIGNATURE), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        let shared = Key::Hmac(hmac_key());
        assert_eq!(verify(&shared, headers(&ts, &signature), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        // Garbage entries are skipped, not errors.
        assert_eq!(verify(&key, headers(&ts, "v1a,!!! v1a,AAAA"), BODY, TIMESTAMP, 300), Err(Rejection::BadSignature));
        let stale = sign_v1a(&signer(), ID, TIMESTAMP - 301, BODY);
        let stale_ts = (TIMESTAMP - 301).to_string();
        assert_eq!(
            verify(&key, headers(&stale_ts, &stale), BODY, TIMESTAMP, 300),
            Err(Rejection::Timestamp(TimestampError::TooOld))
        );
    }

    #[test]
    fn a_public_key_that_is_not_32_bytes_is_refused() {
        assert!(Key::from_secret("whpk_AAAA").is_none());
        assert!(Key::from_secret("whpk_not base64").is_none());
    }
}
