//! The per-trigger key-value store, as one call sees it.
//!
//! A call reads through to the trigger's stored entries and keeps its own
//! writes aside: it reads them back at once, and they reach the store only
//! if the call succeeds, in the same transaction as the events it produced
//! ([`KvWrites`] travels with the commit). The store itself sits behind
//! [`KvBackend`], so nothing here knows the database.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// Not granted.
    #[error("the key-value capability is not granted")]
    Denied,
    /// The trigger holds as many keys as it may.
    #[error("the trigger already holds {limit} keys")]
    TooManyKeys {
        /// Keys per trigger.
        limit: usize,
    },
    /// Key, value or the trigger's total over its cap.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// `key`, `value` or `the trigger's entries`.
        what: &'static str,
        /// Bytes it would take.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The store failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// How much one trigger may keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuota {
    /// Keys per trigger.
    pub max_keys: usize,
    /// Bytes of one key.
    pub max_key_bytes: usize,
    /// Bytes of one value.
    pub max_value_bytes: usize,
    /// Bytes of all of a trigger's keys and values together.
    pub max_total_bytes: usize,
}

impl Default for KvQuota {
    fn default() -> Self {
        KvQuota { max_keys: 1000, max_key_bytes: 512, max_value_bytes: 64 << 10, max_total_bytes: 8 << 20 }
    }
}

/// What a trigger holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KvUsage {
    /// Keys.
    pub keys: usize,
    /// Bytes of keys and values.
    pub bytes: usize,
}

/// A boxed future, so the backend stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where entries are stored. Every method is scoped to one trigger: a
/// backend never lists or reads across triggers, and a prefix is a literal
/// prefix (no wildcards).
pub trait KvBackend: Send + Sync {
    /// One entry's value.
    fn get<'a>(&'a self, trigger: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>>;
    /// The keys starting with `prefix`, sorted.
    fn list_keys<'a>(&'a self, trigger: &'a str, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>>;
    /// The size of one stored entry (key and value bytes), if any.
    fn entry_size<'a>(&'a self, trigger: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>>;
    /// What the trigger holds.
    fn usage<'a>(&'a self, trigger: &'a str) -> BoxFuture<'a, Result<KvUsage, String>>;
}

/// The writes of one successful call, in key order: `None` deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvWrites {
    /// The trigger written to.
    pub trigger_id: String,
    /// Key to its new value, or `None` for a delete.
    pub entries: BTreeMap<String, Option<Vec<u8>>>,
    /// The quota the writes were checked against, checked again at commit:
    /// concurrent calls of one trigger each stay within it alone.
    pub quota: KvQuota,
}

impl KvWrites {
    /// Whether the call wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The key-value access of one call.
pub struct TriggerKv {
    access: Option<Access>,
}

struct Access {
    backend: Arc<dyn KvBackend>,
    quota: KvQuota,
    writes: KvWrites,
    /// The stored usage, read at the first write, plus this call's writes.
    usage: Option<KvUsage>,
}

impl std::fmt::Debug for TriggerKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerKv").field("granted", &self.access.is_some()).finish()
    }
}

impl TriggerKv {
    /// Access with nothing granted: every operation is `Denied`.
    pub fn denied() -> Self {
        TriggerKv { access: None }
    }

    /// Access to `trigger_id`'s entries under `quota`.
    pub fn granted(backend: Arc<dyn KvBackend>, trigger_id: &str, quota: KvQuota) -> Self {
        let writes = KvWrites { trigger_id: trigger_id.to_owned(), entries: BTreeMap::new(), quota };
        TriggerKv { access: Some(Access { backend, quota, writes, usage: None }) }
    }

    /// The call's writes, to commit if it succeeded.
    pub fn take_writes(&mut self) -> KvWrites {
        match self.access.as_mut() {
            Some(access) => KvWrites { entries: std::mem::take(&mut access.writes.entries), ..access.writes.clone() },
            None => KvWrites::default(),
        }
    }

    fn access(&mut self) -> Result<&mut Access, KvError> {
        self.access.as_mut().ok_or(KvError::Denied)
    }

    /// Reads a key: this call's own write first, then the store.
    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let access = self.access()?;
        access.check_key(key)?;
        if let Some(written) = access.writes.entries.get(key) {
            return Ok(written.clone());
        }
        access.backend.get(&access.writes.trigger_id, key).await.map_err(KvError::Unavailable)
    }

    /// Sets a key, within the quota.
    pub async fn set(&mut self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let access = self.access()?;
        access.check_key(key)?;
        if value.len() > access.quota.max_value_bytes {
            return Err(KvError::TooLarge { what: "value", size: value.len(), limit: access.quota.max_value_bytes });
        }
        let before = access.current_size(key).await?;
        let mut usage = access.usage().await?;
        if before.is_none() {
            if usage.keys >= access.quota.max_keys {
                return Err(KvError::TooManyKeys { limit: access.quota.max_keys });
            }
            usage.keys += 1;
        }
        let bytes = usage.bytes.saturating_sub(before.unwrap_or(0)).saturating_add(key.len() + value.len());
        if bytes > access.quota.max_total_bytes {
            return Err(KvError::TooLarge { what: "the trigger's entries", size: bytes, limit: access.quota.max_total_bytes });
        }
        usage.bytes = bytes;
        access.usage = Some(usage);
        access.writes.entries.insert(key.to_owned(), Some(value.to_vec()));
        Ok(())
    }

    /// Deletes a key; deleting a missing key succeeds.
    pub async fn delete(&mut self, key: &str) -> Result<(), KvError> {
        let access = self.access()?;
        access.check_key(key)?;
        if let Some(size) = access.current_size(key).await? {
            let mut usage = access.usage().await?;
            usage.keys = usage.keys.saturating_sub(1);
            usage.bytes = usage.bytes.saturating_sub(size);
            access.usage = Some(usage);
        }
        access.writes.entries.insert(key.to_owned(), None);
        Ok(())
    }

    /// The keys starting with `prefix` (a literal prefix), sorted, this
    /// call's writes included.
    pub async fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, KvError> {
        let access = self.access()?;
        if prefix.len() > access.quota.max_key_bytes {
            return Ok(Vec::new());
        }
        let stored = access.backend.list_keys(&access.writes.trigger_id, prefix).await.map_err(KvError::Unavailable)?;
        let mut keys: std::collections::BTreeSet<String> = stored.into_iter().collect();
        for (key, value) in access.writes.entries.range(prefix.to_owned()..) {
            if !key.starts_with(prefix) {
                break;
            }
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
        Ok(keys.into_iter().collect())
    }
}

impl Access {
    fn check_key(&self, key: &str) -> Result<(), KvError> {
        if key.len() > self.quota.max_key_bytes {
            return Err(KvError::TooLarge { what: "key", size: key.len(), limit: self.quota.max_key_bytes });
        }
        Ok(())
    }

    /// Bytes the key's entry takes now (this call's write, else the store).
    async fn current_size(&self, key: &str) -> Result<Option<usize>, KvError> {
        match self.writes.entries.get(key) {
            Some(Some(value)) => Ok(Some(key.len() + value.len())),
            Some(None) => Ok(None),
            None => self.backend.entry_size(&self.writes.trigger_id, key).await.map_err(KvError::Unavailable),
        }
    }

    async fn usage(&mut self) -> Result<KvUsage, KvError> {
        if let Some(usage) = self.usage {
            return Ok(usage);
        }
        let usage = self.backend.usage(&self.writes.trigger_id).await.map_err(KvError::Unavailable)?;
        self.usage = Some(usage);
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Entries of many triggers in one map, as the database holds them.
    #[derive(Default)]
    struct Memory(Mutex<BTreeMap<(String, String), Vec<u8>>>);

    impl Memory {
        fn with(entries: &[(&str, &str, &str)]) -> Arc<Self> {
            let memory = Memory::default();
            for (trigger, key, value) in entries {
                memory.0.lock().expect("lock").insert(((*trigger).into(), (*key).into()), value.as_bytes().to_vec());
            }
            Arc::new(memory)
        }
    }

    impl KvBackend for Memory {
        fn get<'a>(&'a self, trigger: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
            Box::pin(async move { Ok(self.0.lock().expect("lock").get(&(trigger.into(), key.into())).cloned()) })
        }
        fn list_keys<'a>(&'a self, trigger: &'a str, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
            Box::pin(async move {
                let map = self.0.lock().expect("lock");
                Ok(map.keys().filter(|(t, k)| t == trigger && k.starts_with(prefix)).map(|(_, k)| k.clone()).collect())
            })
        }
        fn entry_size<'a>(&'a self, trigger: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<usize>, String>> {
            Box::pin(async move {
                Ok(self.0.lock().expect("lock").get(&(trigger.into(), key.into())).map(|v| key.len() + v.len()))
            })
        }
        fn usage<'a>(&'a self, trigger: &'a str) -> BoxFuture<'a, Result<KvUsage, String>> {
            Box::pin(async move {
                let map = self.0.lock().expect("lock");
                let mine = map.iter().filter(|((t, _), _)| t == trigger);
                Ok(mine.fold(KvUsage::default(), |u, ((_, k), v)| KvUsage { keys: u.keys + 1, bytes: u.bytes + k.len() + v.len() }))
            })
        }
    }

    #[tokio::test]
    async fn a_call_reads_its_own_writes_and_only_its_trigger() -> Result<(), KvError> {
        let backend = Memory::with(&[("a", "cursor", "1"), ("b", "secret", "theirs")]);
        let mut kv = TriggerKv::granted(backend, "a", KvQuota::default());
        assert_eq!(kv.get("cursor").await?, Some(b"1".to_vec()));
        assert_eq!(kv.get("secret").await?, None);
        kv.set("cursor", b"2").await?;
        kv.set("new", b"x").await?;
        assert_eq!(kv.get("cursor").await?, Some(b"2".to_vec()));
        kv.delete("new").await?;
        assert_eq!(kv.list_keys("").await?, ["cursor"]);
        assert!(kv.list_keys("%").await?.is_empty());
        let writes = kv.take_writes();
        assert_eq!(writes.entries.len(), 2);
        assert_eq!(writes.entries.get("new"), Some(&None));
        Ok(())
    }

    #[tokio::test]
    async fn quotas_count_stored_entries_and_this_calls_writes() -> Result<(), KvError> {
        let quota = KvQuota { max_keys: 2, max_key_bytes: 8, max_value_bytes: 10, max_total_bytes: 19 };
        let backend = Memory::with(&[("a", "k1", "12345")]);
        let mut kv = TriggerKv::granted(backend, "a", quota);
        assert_eq!(kv.set("toolongkey", b"").await, Err(KvError::TooLarge { what: "key", size: 10, limit: 8 }));
        assert_eq!(kv.set("k2", &[0; 11]).await, Err(KvError::TooLarge { what: "value", size: 11, limit: 10 }));
        kv.set("k2", b"1").await?;
        assert_eq!(kv.set("k3", b"1").await, Err(KvError::TooManyKeys { limit: 2 }));
        // Replacing a key is not a new key; deleting one frees its place.
        kv.set("k2", b"123456").await?;
        assert!(matches!(kv.set("k1", b"1234567890").await, Err(KvError::TooLarge { what: "the trigger's entries", .. })));
        kv.delete("k1").await?;
        kv.set("k3", b"1").await?;
        Ok(())
    }

    #[tokio::test]
    async fn nothing_granted_denies_everything() {
        let mut kv = TriggerKv::denied();
        assert_eq!(kv.get("k").await, Err(KvError::Denied));
        assert_eq!(kv.set("k", b"v").await, Err(KvError::Denied));
        assert_eq!(kv.list_keys("").await, Err(KvError::Denied));
        assert!(kv.take_writes().is_empty());
    }
}
