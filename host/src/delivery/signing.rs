//! Standard Webhooks: the `whsec_` secret, the signature over
//! `{webhook-id}.{webhook-timestamp}.{body}`, and the body the host sends.

use serde::Serialize;
use serde_json::value::RawValue;
use triggerhost_sdk::signature::{base64_decode, base64_encode, hmac_sha256_base64};

use crate::secrets::Secret;
use crate::store::DueJob;

/// How a signing secret starts.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret (Svix uses 24).
const SECRET_BYTES: usize = 24;
/// Shortest key a given secret may carry: 16 bytes (128 bits).
const MIN_KEY_BYTES: usize = 16;
/// Longest key a given secret may carry.
const MAX_KEY_BYTES: usize = 64;

/// Why a secret is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// Not `whsec_` then base64 of 16 to 64 bytes.
    #[error("a signing secret is whsec_ followed by base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")]
    Malformed,
    /// No randomness.
    #[error("no randomness for a secret: {0}")]
    Random(String),
}

/// A new random `whsec_` secret.
pub fn generate_secret() -> Result<Secret, SigningError> {
    let mut key = [0u8; SECRET_BYTES];
    getrandom::fill(&mut key).map_err(|e| SigningError::Random(e.to_string()))?;
    Ok(Secret::new(format!("{SECRET_PREFIX}{}", base64_encode(&key))))
}

/// The key a `whsec_` secret carries, checked.
pub fn key_of(secret: &str) -> Result<Vec<u8>, SigningError> {
    let key = secret.strip_prefix(SECRET_PREFIX).and_then(base64_decode).ok_or(SigningError::Malformed)?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err(SigningError::Malformed);
    }
    Ok(key)
}

/// The `webhook-signature` value: `v1,<base64>` under each key, space
/// separated (two while a rotated-out secret is still in its grace period).
pub fn signature_header(keys: &[Vec<u8>], webhook_id: &str, timestamp_s: u64, body: &[u8]) -> String {
    let timestamp = timestamp_s.to_string();
    keys.iter()
        .map(|key| format!("v1,{}", hmac_sha256_base64(key, &[webhook_id.as_bytes(), b".", timestamp.as_bytes(), b".", body])))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The JSON body of a push: the event, its payload under `data`.
#[derive(Serialize)]
struct PushBody<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    trigger: &'a str,
    occurred_at: Option<String>,
    received_at: String,
    data: &'a RawValue,
}

/// The body sent for `job`, its payload embedded as stored.
pub fn body(job: &DueJob) -> Vec<u8> {
    let data = crate::json::embed(&job.payload);
    let body = PushBody {
        id: &job.event_id,
        event_type: &job.event_type,
        trigger: &job.trigger_id,
        occurred_at: job.occurred_at_ms.map(crate::timestamp::rfc3339),
        received_at: crate::timestamp::rfc3339(job.received_at_ms),
        data: &data,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published example (`../shared/vectors/standard-webhooks.md`).
    #[test]
    fn signs_the_published_standard_webhooks_example() -> Result<(), SigningError> {
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
        let header = signature_header(&[key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        Ok(())
    }

    #[test]
    fn generated_secrets_carry_24_random_bytes() -> Result<(), SigningError> {
        let (a, b) = (generate_secret()?, generate_secret()?);
        assert_eq!(key_of(a.expose())?.len(), 24);
        assert_ne!(a, b);
        for bad in ["whsec_", "whsec_!!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAA"] {
            assert_eq!(key_of(bad), Err(SigningError::Malformed), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn two_keys_give_two_signatures() -> Result<(), SigningError> {
        let keys = [key_of(generate_secret()?.expose())?, key_of(generate_secret()?.expose())?];
        let header = signature_header(&keys, "evt_1", 1, b"{}");
        assert_eq!(header.split(' ').filter(|s| s.starts_with("v1,")).count(), 2, "{header}");
        Ok(())
    }

    #[test]
    fn the_body_carries_the_event_and_its_payload_as_data() {
        let job = DueJob {
            id: "dlv_1".into(),
            event_seq: 1,
            event_id: "evt_1".into(),
            trigger_id: "trg_1".into(),
            attempts: 0,
            next_attempt_at_ms: 0,
            event_type: "push".into(),
            occurred_at_ms: None,
            received_at_ms: 1_614_265_330_123,
            payload: r#"{"n":1}"#.into(),
        };
        let sent: serde_json::Value = serde_json::from_slice(&body(&job)).unwrap_or_default();
        assert_eq!(
            sent,
            serde_json::json!({ "id": "evt_1", "type": "push", "trigger": "trg_1", "occurred_at": null,
                                "received_at": "2021-02-25T15:02:10.123Z", "data": { "n": 1 } })
        );
    }
}
