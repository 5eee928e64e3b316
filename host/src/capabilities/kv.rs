//! The per-trigger key-value store.
//!
//! The storage behind it arrives with the server's store; until the operator
//! can grant it, every operation is denied, which is also what a connector
//! sees when the operator has not granted `kv`.

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// Not granted.
    #[error("the key-value capability is not granted")]
    Denied,
    /// The trigger holds as many keys as it may.
    #[error("too many keys")]
    TooManyKeys,
    /// Key or value over the size cap.
    #[error("key or value too large")]
    TooLarge,
    /// The store failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// The key-value access of one call.
#[derive(Debug, Clone, Default)]
pub struct TriggerKv {
    _private: (),
}

impl TriggerKv {
    /// Access with nothing granted.
    pub fn denied() -> Self {
        TriggerKv::default()
    }

    /// Reads a key.
    pub async fn get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Err(KvError::Denied)
    }

    /// Sets a key.
    pub async fn set(&mut self, _key: &str, _value: &[u8]) -> Result<(), KvError> {
        Err(KvError::Denied)
    }

    /// Deletes a key.
    pub async fn delete(&mut self, _key: &str) -> Result<(), KvError> {
        Err(KvError::Denied)
    }

    /// Lists keys with a prefix.
    pub async fn list_keys(&mut self, _prefix: &str) -> Result<Vec<String>, KvError> {
        Err(KvError::Denied)
    }
}
