//! Shopify's webhook signature scheme, free of any host binding so it is
//! unit-tested natively.
//!
//! From Shopify's documentation ("Verify webhooks"): `X-Shopify-Hmac-Sha256`
//! is the base64 HMAC-SHA256 of the raw body under the app's client secret.
//! Shopify signs no timestamp; redeliveries carry the same
//! `X-Shopify-Webhook-Id`, which is the dedupe key.

use triggerhost_sdk::signature::verify_hmac_sha256_base64;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `X-Shopify-Hmac-Sha256` header.
    MissingHeader,
    /// The signature does not match.
    BadSignature,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::MissingHeader => write!(f, "missing header x-shopify-hmac-sha256"),
            Rejection::BadSignature => write!(f, "x-shopify-hmac-sha256 does not match"),
        }
    }
}

/// Verifies the body against the `X-Shopify-Hmac-Sha256` value `header`.
pub fn verify(secret: &str, header: Option<&str>, body: &[u8]) -> Result<(), Rejection> {
    let signature = header.ok_or(Rejection::MissingHeader)?;
    if verify_hmac_sha256_base64(secret.as_bytes(), &[body], signature.trim()) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triggerhost_sdk::signature::hmac_sha256_base64;

    const SECRET: &str = "shpss_test_secret";
    const BODY: &[u8] = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;

    /// RFC 4231 test case 2, in base64: the HMAC the scheme relies on.
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(hmac_sha256_base64(b"Jefe", &[b"what do ya want for nothing?"]), "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
    }

    #[test]
    fn signed_tampered_wrong_secret_and_missing() {
        let signature = hmac_sha256_base64(SECRET.as_bytes(), &[BODY]);
        assert_eq!(verify(SECRET, Some(&signature), BODY), Ok(()));
        assert_eq!(verify(SECRET, Some(&signature), br#"{"id":820982911946154508,"email":"eve@example.com"}"#), Err(Rejection::BadSignature));
        assert_eq!(verify("shpss_other", Some(&signature), BODY), Err(Rejection::BadSignature));
        assert_eq!(verify(SECRET, Some("not base64!"), BODY), Err(Rejection::BadSignature));
        assert_eq!(verify(SECRET, None, BODY), Err(Rejection::MissingHeader));
    }
}
