//! The plugin registry: uploaded versions (blobs + rows), the loaded plugin
//! of each version, and which version is active. Activation swaps the active
//! version for new calls while calls in flight finish on the one they hold:
//! hot swap and roll back with no restart and no failed request.

mod blobs;
mod schema;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::Serialize;

pub use blobs::BlobStore;
pub use schema::{ConfigProblem, check as check_config, compile_config_schema};

use crate::capabilities::grant::{Allowance, Grant};
use crate::runtime::{Limits, LoadError, Plugin, Runtime};
use crate::store::{PluginVersionRow, Store, StoreError, VersionDelete, VersionInsert, now_ms};

/// Why an upload or a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The bytes are not a valid connector component.
    #[error(transparent)]
    Invalid(#[from] LoadError),
    /// A trigger's config schema is not a usable JSON Schema.
    #[error("trigger {trigger}: config-schema is not a valid JSON Schema: {message}")]
    BadSchema {
        /// The trigger.
        trigger: String,
        /// The schema compiler's message.
        message: String,
    },
    /// The same name and version were uploaded with other bytes.
    #[error("{name}@{version} already exists with digest {existing_digest}; bump the version")]
    Conflict {
        /// Plugin.
        name: String,
        /// Version.
        version: String,
        /// The digest registered first.
        existing_digest: String,
    },
    /// No such plugin or version.
    #[error("no plugin {0}")]
    NotFound(String),
    /// The version cannot be deleted: something uses it.
    #[error("{plugin} is in use: {reason}")]
    InUse {
        /// `name@version`.
        plugin: String,
        /// What uses it.
        reason: String,
    },
    /// The version requests capabilities the operator has not granted.
    #[error("{plugin} requests more than is granted: {}", missing.join(", "))]
    NotGranted {
        /// `name@version`.
        plugin: String,
        /// What is requested and not granted.
        missing: Vec<String>,
    },
    /// A granted limit is past the host's maximum.
    #[error("grant: {0}")]
    Limits(crate::runtime::LimitsError),
    /// A granted reuse policy is out of bounds.
    #[error("grant: {0}")]
    Reuse(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Blob I/O failed.
    #[error("component storage: {0}")]
    Blob(#[from] std::io::Error),
}

/// A loaded version with its compiled config validators.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The callable plugin.
    pub plugin: Plugin,
    schemas: Arc<HashMap<String, jsonschema::Validator>>,
    /// Per trigger, the config properties its schema marks secret.
    secret_properties: Arc<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("plugin", &self.plugin).finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    fn new(plugin: Plugin) -> Result<Self, RegistryError> {
        let mut schemas = HashMap::new();
        let mut secret_properties = HashMap::new();
        for trigger in &plugin.manifest().triggers {
            let bad = |message: String| RegistryError::BadSchema { trigger: trigger.name.clone(), message };
            let validator = compile_config_schema(&trigger.config_schema).map_err(bad)?;
            schemas.insert(trigger.name.clone(), validator);
            let schema = serde_json::from_str(&trigger.config_schema).unwrap_or(serde_json::Value::Null);
            secret_properties.insert(trigger.name.clone(), crate::secrets::secret_properties(&schema));
        }
        Ok(LoadedPlugin { plugin, schemas: Arc::new(schemas), secret_properties: Arc::new(secret_properties) })
    }

    /// The config properties of `trigger` that are sealed at rest.
    pub fn secret_properties(&self, trigger: &str) -> &[String] {
        self.secret_properties.get(trigger).map_or(&[], Vec::as_slice)
    }

    /// Checks `config` against the trigger's schema; the error names the
    /// failing field's JSON pointer.
    pub fn validate_config(&self, trigger: &str, config: &serde_json::Value) -> Result<(), ConfigProblem> {
        let Some(validator) = self.schemas.get(trigger) else {
            return Err(ConfigProblem { path: String::new(), message: format!("no trigger named {trigger}") });
        };
        schema::check(validator, config)
    }
}

/// What an upload registered.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    /// Plugin name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The WIT contract version the component implements, e.g. `0.2.0`.
    pub contract: crate::contract::ContractVersion,
    /// Trigger names.
    pub triggers: Vec<String>,
    /// The capabilities the manifest asks for (granted only by the operator).
    pub requested: crate::contract::CapabilityRequest,
    /// Whether this version is now active.
    pub active: bool,
    /// False when the same bytes were already registered.
    #[serde(skip)]
    pub created: bool,
}

/// What an upload would register, checked and not stored.
#[derive(Debug, Clone, Serialize)]
pub struct Inspected {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size_bytes: usize,
    /// The WIT contract version the component implements.
    pub contract: crate::contract::ContractVersion,
    /// The whole manifest: triggers with their config schemas, capabilities.
    pub manifest: crate::contract::Manifest,
    /// `new`, `same` (these bytes are registered under this version) or
    /// `conflict` (this version is registered with other bytes).
    pub registered: &'static str,
}

/// The registry.
pub struct Registry {
    runtime: Runtime,
    store: Store,
    blobs: BlobStore,
    /// `(name, version)` to its loaded plugin.
    loaded: RwLock<HashMap<(String, String), LoadedPlugin>>,
    /// Plugin name to its active version.
    active: RwLock<HashMap<String, String>>,
    /// Plugin name to what the operator allows it (nothing when absent).
    allowances: RwLock<HashMap<String, Allowance>>,
    /// Uploads store their blob and row one at a time, so a refused
    /// upload's blob is removed only if no row, however recent, names it.
    uploads: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the registry and loads every stored version. A version whose
    /// blob is missing or corrupt is logged and left unloaded: its triggers
    /// answer 503 rather than the host refusing to start.
    pub async fn open(runtime: Runtime, store: Store, data_dir: &Path) -> Result<Registry, RegistryError> {
        let registry = Registry {
            runtime,
            blobs: BlobStore::open(data_dir)?,
            store,
            loaded: RwLock::default(),
            active: RwLock::default(),
            allowances: RwLock::default(),
            uploads: tokio::sync::Mutex::new(()),
        };
        // Only the versions triggers serve: another is loaded when first
        // needed (an activation, a pin), from the precompiled cache if it is there.
        let in_use: std::collections::HashSet<(String, String)> = registry.store.versions_in_use().await?.into_iter().collect();
        for row in registry.store.all_versions().await? {
            if !in_use.contains(&(row.name.clone(), row.version.clone())) {
                continue;
            }
            match registry.load_stored(&row).await {
                Ok(loaded) => {
                    write(&registry.loaded).insert((row.name.clone(), row.version.clone()), loaded);
                }
                Err(error) => tracing::error!(plugin = %row.name, version = %row.version, %error, "cannot load stored plugin"),
            }
        }
        for plugin in registry.store.list_plugins().await? {
            write(&registry.active).insert(plugin.name, plugin.active_version);
        }
        registry.reload_allowances().await?;
        Ok(registry)
    }

    /// Loads a stored version from its blob here, or, on a shared
    /// database, from the bytes the node that took the upload stored (kept
    /// here for next time).
    async fn load_stored(&self, row: &PluginVersionRow) -> Result<LoadedPlugin, RegistryError> {
        let bytes = match self.blobs.get(&row.digest) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let bytes = self.store.shared_blob(&row.digest).await.map_err(|e| match e {
                    StoreError::NotFound => RegistryError::Blob(error),
                    other => other.into(),
                })?;
                // Checked against the digest as it is kept.
                self.keep_blob(&row.digest, bytes.clone()).await?;
                bytes
            }
            Err(error) => return Err(error.into()),
        };
        LoadedPlugin::new(self.runtime.load(&bytes).await?)
    }

    /// Stores `bytes` under `digest` in this node's blob folder (which
    /// checks them against it), on a blocking thread: it syncs to disk.
    async fn keep_blob(&self, digest: &str, bytes: Vec<u8>) -> Result<(), RegistryError> {
        let (blobs, digest) = (self.blobs.clone(), digest.to_owned());
        tokio::task::spawn_blocking(move || blobs.put(&digest, &bytes))
            .await
            .map_err(|e| RegistryError::Blob(std::io::Error::other(e)))??;
        Ok(())
    }

    /// Another node changed plugin `name` (a version uploaded, activated,
    /// rolled back, or its grants): this node follows the database, and
    /// loads the active version now rather than on its first call.
    pub async fn reload(&self, name: &str) -> Result<(), RegistryError> {
        let active = match self.store.get_plugin(name).await {
            Ok(plugin) => plugin.active_version,
            Err(StoreError::NotFound) => {
                write(&self.active).remove(name);
                write(&self.allowances).remove(name);
                write(&self.loaded).retain(|key, _| key.0 != name);
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        self.reload_allowances().await?;
        self.follow_versions(name, active).await
    }

    /// Loads what the node that changed plugin `name` holds loaded, then
    /// makes `active` the active version here.
    async fn follow_versions(&self, name: &str, active: String) -> Result<(), RegistryError> {
        // What the node that made the change holds loaded: the active
        // version, those triggers pin, and the newest upload (the likely
        // next activation, loaded now so that activation is a swap here
        // too). Loaded before the switch: calls meanwhile keep the version
        // they had, none finds the new one missing.
        let mut wanted: std::collections::HashSet<String> = self
            .store
            .versions_in_use()
            .await?
            .into_iter()
            .filter_map(|(plugin, version)| (plugin == name).then_some(version))
            .collect();
        wanted.insert(active.clone());
        if let Some(newest) = self.store.list_versions(name).await?.into_iter().max_by_key(|row| row.created_at_ms) {
            wanted.insert(newest.version);
        }
        for version in &wanted {
            self.resolve_or_load(name, Some(version)).await?;
        }
        write(&self.active).insert(name.to_owned(), active);
        write(&self.loaded).retain(|key, _| key.0 != name || wanted.contains(&key.1));
        Ok(())
    }

    /// Follows every plugin whose active version differs from the one
    /// here, and every grant (announcements missed).
    pub async fn reconcile(&self) -> Result<(), RegistryError> {
        self.reload_allowances().await?;
        for plugin in self.store.list_plugins().await? {
            if read(&self.active).get(&plugin.name) != Some(&plugin.active_version)
                && let Err(error) = self.follow_versions(&plugin.name, plugin.active_version.clone()).await
            {
                tracing::warn!(plugin = %plugin.name, %error, "cannot follow another node's change");
            }
        }
        Ok(())
    }

    /// Every plugin's grant as stored.
    async fn reload_allowances(&self) -> Result<(), RegistryError> {
        let mut allowances = HashMap::new();
        for (name, json) in self.store.all_allowances().await? {
            match serde_json::from_str::<Allowance>(&json) {
                Ok(allowance) => {
                    allowances.insert(name, allowance);
                }
                // Allowing nothing is the safe reading of a row that cannot be read.
                Err(error) => tracing::error!(plugin = %name, %error, "unreadable grant; the plugin is allowed nothing"),
            }
        }
        *write(&self.allowances) = allowances;
        Ok(())
    }

    /// Validates and registers an upload. The first version of a plugin
    /// becomes active; re-uploading identical bytes is a no-op.
    pub async fn register(&self, bytes: &[u8]) -> Result<Registered, RegistryError> {
        let loaded = LoadedPlugin::new(self.runtime.load(bytes).await?)?;
        let manifest = loaded.plugin.manifest().clone();
        let digest = loaded.plugin.digest().to_owned();
        let contract = loaded.plugin.contract();
        let _one_upload = self.uploads.lock().await;
        self.keep_blob(&digest, bytes.to_vec()).await?;
        // Before the version row: another node that sees the row finds the bytes.
        self.store.put_shared_blob(&digest, bytes).await?;
        let row = PluginVersionRow {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: digest.clone(),
            size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            manifest: serde_json::to_string(&manifest).map_err(|e| StoreError::Database(e.to_string()))?,
            created_at_ms: now_ms(),
        };
        let created = match self.store.insert_plugin_version(&row).await? {
            VersionInsert::Created { first } => {
                write(&self.loaded).insert((manifest.name.clone(), manifest.version.clone()), loaded);
                if first {
                    write(&self.active).insert(manifest.name.clone(), manifest.version.clone());
                }
                true
            }
            VersionInsert::AlreadyPresent => false,
            VersionInsert::Conflict { existing_digest } => {
                // Leave nothing behind, unless another version has these
                // bytes (a `describe` may answer differently each time).
                if !self.store.digest_in_use(&digest).await?
                    && let Err(error) = self.blobs.remove(&digest)
                {
                    tracing::warn!(%digest, %error, "cannot remove the blob of a refused upload");
                }
                return Err(RegistryError::Conflict { name: manifest.name, version: manifest.version, existing_digest });
            }
        };
        let active = read(&self.active).get(&manifest.name) == Some(&manifest.version);
        Ok(Registered {
            triggers: manifest.triggers.iter().map(|t| t.name.clone()).collect(),
            requested: manifest.capabilities.clone(),
            name: manifest.name,
            version: manifest.version,
            digest,
            contract,
            active,
            created,
        })
    }

    /// Checks an upload as [`Registry::register`] does and says what it
    /// would register, storing nothing: the operator confirms the manifest
    /// before uploading.
    pub async fn inspect(&self, bytes: &[u8]) -> Result<Inspected, RegistryError> {
        let plugin = self.runtime.load(bytes).await?;
        let manifest = plugin.manifest().clone();
        let existing = self.store.list_versions(&manifest.name).await?.into_iter().find(|row| row.version == manifest.version);
        let registered = match existing {
            None => "new",
            Some(row) if row.digest == plugin.digest() => "same",
            Some(_) => "conflict",
        };
        Ok(Inspected { digest: plugin.digest().to_owned(), size_bytes: bytes.len(), contract: plugin.contract(), manifest, registered })
    }

    /// The runtime the versions are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What the operator allows `name`.
    pub fn allowance(&self, name: &str) -> Allowance {
        read(&self.allowances).get(name).cloned().unwrap_or_default()
    }

    /// What `name@version` may use: its request narrowed to the allowance.
    pub fn grant(&self, name: &str, version: &str) -> Result<Grant, RegistryError> {
        Ok(self.grant_of(&self.resolve(name, Some(version))?))
    }

    /// What a loaded version may use now: read at every call, so a changed
    /// allowance applies to the next call.
    pub fn grant_of(&self, loaded: &LoadedPlugin) -> Grant {
        let manifest = loaded.plugin.manifest();
        Grant::new(&manifest.capabilities, &self.allowance(&manifest.name))
    }

    /// The limits of `name`'s calls: `defaults` with the operator's
    /// overrides. Overrides were checked when they were granted; should
    /// they no longer fit (the host's defaults changed), the defaults apply.
    pub fn limits(&self, name: &str, defaults: &Limits) -> Limits {
        let overrides = read(&self.allowances).get(name).map(|a| a.limits).unwrap_or_default();
        defaults.with_overrides(&overrides, self.runtime.config()).unwrap_or_else(|error| {
            tracing::warn!(plugin = %name, %error, "granted limits no longer fit; using the defaults");
            defaults.clone()
        })
    }

    /// Sets what the operator allows `name`; it applies to every version.
    /// Limit overrides past the host's maxima are refused.
    pub async fn set_allowance(&self, name: &str, allowance: Allowance) -> Result<(), RegistryError> {
        let defaults = &self.runtime.config().default_limits;
        defaults.with_overrides(&allowance.limits, self.runtime.config()).map_err(RegistryError::Limits)?;
        if let Some(reuse) = &allowance.reuse {
            reuse.check().map_err(RegistryError::Reuse)?;
        }
        let json = serde_json::to_string(&allowance).map_err(|e| StoreError::Database(e.to_string()))?;
        self.store.set_allowance(name, &json).await.map_err(|e| match e {
            StoreError::NotFound => RegistryError::NotFound(name.to_owned()),
            other => other.into(),
        })?;
        write(&self.allowances).insert(name.to_owned(), allowance);
        Ok(())
    }

    /// Makes `version` the active one for new calls, if everything it
    /// requests is granted.
    pub async fn activate(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        let grant = self.grant(name, version)?;
        if !grant.is_complete() {
            return Err(RegistryError::NotGranted { plugin: format!("{name}@{version}"), missing: grant.missing });
        }
        self.store.set_active_version(name, version).await.map_err(|e| match e {
            StoreError::NotFound => RegistryError::NotFound(format!("{name}@{version}")),
            other => other.into(),
        })?;
        write(&self.active).insert(name.to_owned(), version.to_owned());
        // The swap is done; what is left in memory is only a cost.
        if let Err(error) = self.evict_unused(name).await {
            tracing::warn!(plugin = %name, %error, "cannot drop the versions no trigger serves");
        }
        Ok(())
    }

    /// Deletes a version that is neither active nor pinned by a trigger:
    /// its row, its loaded plugin and, unless another version has the same
    /// bytes, its blob. Calls in flight finish on the plugin they hold.
    pub async fn delete_version(&self, name: &str, version: &str) -> Result<(), RegistryError> {
        let plugin = format!("{name}@{version}");
        // Not while an upload may be storing the same bytes.
        let _one_upload = self.uploads.lock().await;
        let deleted = self.store.delete_plugin_version(name, version).await.map_err(|e| match e {
            StoreError::NotFound => RegistryError::NotFound(plugin.clone()),
            other => other.into(),
        })?;
        let (digest, digest_unused) = match deleted {
            VersionDelete::Deleted { digest, digest_unused } => (digest, digest_unused),
            VersionDelete::InUse(reason) => return Err(RegistryError::InUse { plugin, reason }),
        };
        write(&self.loaded).remove(&(name.to_owned(), version.to_owned()));
        if digest_unused && let Err(error) = self.blobs.remove(&digest) {
            tracing::warn!(%plugin, %digest, %error, "cannot remove the blob of a deleted version");
        }
        if digest_unused && let Err(error) = self.store.remove_shared_blob(&digest).await {
            tracing::warn!(%plugin, %digest, %error, "cannot remove the shared bytes of a deleted version");
        }
        Ok(())
    }

    /// [`Registry::resolve`], loading a stored version that is not in
    /// memory (one no trigger used when the host started, or evicted since).
    pub async fn resolve_or_load(&self, name: &str, pinned: Option<&str>) -> Result<LoadedPlugin, RegistryError> {
        if let Ok(loaded) = self.resolve(name, pinned) {
            return Ok(loaded);
        }
        let version = match pinned {
            Some(version) => version.to_owned(),
            None => read(&self.active).get(name).cloned().ok_or_else(|| RegistryError::NotFound(name.to_owned()))?,
        };
        let row = self.store.get_version(name, &version).await.map_err(|e| match e {
            StoreError::NotFound => RegistryError::NotFound(format!("{name}@{version}")),
            other => other.into(),
        })?;
        let loaded = self.load_stored(&row).await?;
        Ok(write(&self.loaded).entry((name.to_owned(), version)).or_insert(loaded).clone())
    }

    /// Drops from memory `name`'s versions no trigger serves any more (calls
    /// in flight keep the plugin they hold); they load again when needed.
    async fn evict_unused(&self, name: &str) -> Result<(), RegistryError> {
        let in_use: std::collections::HashSet<(String, String)> = self.store.versions_in_use().await?.into_iter().collect();
        write(&self.loaded).retain(|key, _| key.0 != name || in_use.contains(key));
        Ok(())
    }

    /// Versions loaded in memory now.
    pub fn loaded_versions(&self) -> usize {
        read(&self.loaded).len()
    }

    /// The plugin serving `name`: the pinned version if given, else the active one.
    pub fn resolve(&self, name: &str, pinned: Option<&str>) -> Result<LoadedPlugin, RegistryError> {
        let version = match pinned {
            Some(version) => version.to_owned(),
            None => read(&self.active).get(name).cloned().ok_or_else(|| RegistryError::NotFound(name.to_owned()))?,
        };
        read(&self.loaded)
            .get(&(name.to_owned(), version.clone()))
            .cloned()
            .ok_or_else(|| RegistryError::NotFound(format!("{name}@{version}")))
    }
}

// The maps are only ever held for a clone or an insert, so a poisoned lock
// (a panic elsewhere mid-insert) still holds consistent data.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}
