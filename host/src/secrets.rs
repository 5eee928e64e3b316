//! Secrets at rest: the trigger secret and every config property a
//! trigger's schema marks secret (`"x-secret": true`, or `writeOnly`) are
//! stored sealed with XChaCha20-Poly1305 under a key kept outside the
//! database (`<data-dir>/secret.key`, 0600). A copy of the database without
//! that file yields no secret. Each sealed value is bound to its trigger and
//! field, so it cannot be moved to another trigger and opened there.
//!
//! [`Secret`] holds an opened value and never prints it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// How a sealed value starts; the rest is hex of nonce and ciphertext.
const SEALED_PREFIX: &str = "sealed:v1:";
/// XChaCha20 nonces: random 192 bits, safe to draw at random per value.
const NONCE_BYTES: usize = 24;
/// Bytes of the key.
pub const KEY_BYTES: usize = 32;

/// A secret value in memory. `Debug` and `Display` print a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for the one place that needs it (the call's context).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value, moved out.
    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Why a secret cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The key file is missing, unreadable or malformed.
    #[error("secret key: {0}")]
    Key(String),
    /// The value was sealed under another key, or altered, or moved to
    /// another trigger or field.
    #[error("{field} cannot be decrypted with this host's key file (was the database copied without it?)")]
    Undecryptable {
        /// Which value, e.g. `trigger trg_x secret`.
        field: String,
    },
    /// No randomness for a nonce.
    #[error("no randomness for a nonce: {0}")]
    Random(String),
}

/// Seals and opens secrets with the host's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

impl SecretBox {
    /// A box with this key.
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        SecretBox { cipher: XChaCha20Poly1305::new(Key::from_slice(key)) }
    }

    /// Reads a key written by [`SecretBox::key_file_text`]: 64 hex digits.
    pub fn from_key_file_text(text: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::Key("not hex".into()))?;
        let key: [u8; KEY_BYTES] =
            bytes.try_into().map_err(|_| SecretError::Key(format!("must be {KEY_BYTES} bytes ({} hex digits)", KEY_BYTES * 2)))?;
        Ok(SecretBox::new(&key))
    }

    /// A new random key, as the text of a key file.
    pub fn key_file_text() -> Result<String, SecretError> {
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(format!("{}\n", hex::encode(key)))
    }

    /// Whether `text` is a sealed value (it may still not open).
    pub fn is_sealed(text: &str) -> bool {
        text.starts_with(SEALED_PREFIX)
    }

    /// Seals `plaintext` for `field` (the binding: trigger and field name).
    pub fn seal(&self, plaintext: &str, field: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: field.as_bytes() })
            .map_err(|_| SecretError::Key("encryption failed".into()))?;
        Ok(format!("{SEALED_PREFIX}{}{}", hex::encode(nonce), hex::encode(sealed)))
    }

    /// Opens a value sealed for `field`.
    pub fn open(&self, sealed: &str, field: &str) -> Result<Secret, SecretError> {
        let undecryptable = || SecretError::Undecryptable { field: field.to_owned() };
        let bytes = sealed.strip_prefix(SEALED_PREFIX).and_then(|h| hex::decode(h).ok()).ok_or_else(undecryptable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(undecryptable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let plaintext = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: field.as_bytes() })
            .map_err(|_| undecryptable())?;
        String::from_utf8(plaintext).map(Secret).map_err(|_| undecryptable())
    }
}

/// The top-level properties a config schema marks secret: `"x-secret": true`
/// (or `"writeOnly": true`, which means the same to a user interface).
pub fn secret_properties(schema: &serde_json::Value) -> Vec<String> {
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    let marked = |prop: &serde_json::Value, key: &str| prop.get(key).and_then(|v| v.as_bool()) == Some(true);
    properties
        .iter()
        .filter(|(_, prop)| marked(prop, "x-secret") || marked(prop, "writeOnly"))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_box() -> SecretBox {
        SecretBox::from_key_file_text(&SecretBox::key_file_text().expect("key")).expect("box")
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_field() -> Result<(), SecretError> {
        let one = sealed_box();
        let sealed = one.seal("whsec_top", "trigger trg_a secret")?;
        assert!(SecretBox::is_sealed(&sealed) && !sealed.contains("whsec_top"));
        assert_eq!(one.open(&sealed, "trigger trg_a secret")?.expose(), "whsec_top");
        assert!(one.open(&sealed, "trigger trg_b secret").is_err(), "moved to another trigger");
        assert!(sealed_box().open(&sealed, "trigger trg_a secret").is_err(), "another key");
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(one.open(&altered, "trigger trg_a secret").is_err(), "altered");
        assert_ne!(one.seal("whsec_top", "f")?, one.seal("whsec_top", "f")?, "fresh nonce per seal");
        Ok(())
    }

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret} {secret:?}"), "<redacted> Secret(<redacted>)");
        assert!(!format!("{:?}", sealed_box()).contains(char::is_numeric));
    }

    #[test]
    fn secret_properties_are_read_from_the_schema() {
        let schema = serde_json::json!({ "properties": {
            "token": { "type": "string", "x-secret": true },
            "password": { "type": "string", "writeOnly": true },
            "channel": { "type": "string" }
        }});
        let mut found = secret_properties(&schema);
        found.sort();
        assert_eq!(found, ["password", "token"]);
        assert!(secret_properties(&serde_json::json!(true)).is_empty());
    }

    #[test]
    fn malformed_key_files_are_refused() {
        assert!(SecretBox::from_key_file_text("zz").is_err());
        assert!(SecretBox::from_key_file_text("abcd").is_err());
    }
}
