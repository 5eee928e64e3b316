//! A loaded plugin: a validated component, pre-linked and described, ready
//! for calls that each get a fresh instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use super::Runtime;
use super::precompiled::Lookup;
use super::warm::WarmInstances;
use super::call::{Caller, CallOutput, ExportCall, check_response, check_run_output, unchecked};
use super::error::{CallError, CallErrorKind, LoadError};
use super::limits::Limits;
use super::scope::CallScope;
use super::shape::ComponentShape;
use super::state::HostState;
use crate::bindings::{Connector, ConnectorPre, LinkError};
use crate::contract::{
    ConnectorError, ContractVersion, Delivery, EnableInfo, Manifest, RegistrationChange, RunInput, RunOutput, SyncReport,
    TriggerContext, Verdict, WebhookRequest,
};

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Version and layer of a core module (version 1, layer 0).
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// Layer 1 marks a component; its version field is still pre-1.0.
const COMPONENT_LAYER: [u8; 2] = [0x01, 0x00];

/// A plugin ready to call. Cheap to clone; calls may run concurrently.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Runtime,
    manifest: Manifest,
    digest: String,
    size: usize,
    label: String,
    shape: ComponentShape,
    pre: ConnectorPre<HostState>,
    slots: Semaphore,
    /// Outbound connections of all the plugin's calls.
    connections: Arc<Semaphore>,
    /// Instances kept between calls of a trigger, if reuse is granted.
    warm: WarmInstances,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("plugin", &self.inner.label).field("digest", &self.inner.digest).finish()
    }
}

impl Runtime {
    /// Validates and loads a component: checks it is a component of the
    /// `triggerhost:connector` world, calls `describe` and validates the
    /// manifest.
    pub async fn load(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge { size: bytes.len(), limit });
        }
        check_header(bytes)?;
        // Counted before compiling, so an obvious offender costs no compile;
        // counted again from the compiled component, which sees through
        // every alias and import.
        let caps = &self.inner.config.component_caps;
        let counted = super::shape::component_shape(bytes)?;
        counted.check(caps)?;
        let digest_hex = hex::encode(Sha256::digest(bytes));
        let component = self.compiled(bytes, &digest_hex).await?;
        let digest = format!("sha256:{digest_hex}");
        let shape = counted.refined(&component);
        shape.check(caps)?;

        let pre = ConnectorPre::new(&self.inner.linker, &component).map_err(|e| match e {
            LinkError::Import(why) => LoadError::UnsupportedImport(why),
            LinkError::Export(why) => LoadError::WrongWorld(why),
        })?;
        let scope = CallScope::ungranted("", self.inner.config.default_limits.clone());
        let connections = Arc::new(Semaphore::new(self.inner.config.outbound_connections_per_plugin));
        let caller = Caller { pre: &pre, label: "<loading>", connections: &connections, warm: None };
        let describe = self.invoke(caller, "describe", &scope, |store, c| Box::pin(c.describe(store)), unchecked);
        let manifest = match describe.await {
            Ok(output) => output.value,
            Err(error) => return Err(LoadError::Describe(Box::new(error))),
        };
        manifest.validate()?;

        let label = format!("{}@{}", manifest.name, manifest.version);
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.clone(),
                manifest,
                digest,
                size: bytes.len(),
                label,
                shape,
                pre,
                slots: Semaphore::new(self.inner.config.max_concurrent_calls_per_plugin),
                connections,
                warm: WarmInstances::new(Arc::clone(&self.inner.warm)),
            }),
        })
    }
}

/// How loads found their compiled code, since the runtime started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompileCounts {
    /// Components compiled.
    pub compiled: u64,
    /// Components loaded from the precompiled cache.
    pub cached: u64,
    /// Cached artifacts that failed a check and were compiled again.
    pub discarded: u64,
}

#[derive(Default)]
pub(super) struct CompileCounters {
    compiled: AtomicU64,
    cached: AtomicU64,
    discarded: AtomicU64,
}

impl CompileCounters {
    pub(super) fn snapshot(&self) -> CompileCounts {
        CompileCounts {
            compiled: self.compiled.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
            discarded: self.discarded.load(Ordering::Relaxed),
        }
    }
}

impl Runtime {
    /// The compiled component: from the precompiled cache if it holds a
    /// good artifact, else compiled (and then cached). The cache is read
    /// and written off the async workers.
    async fn compiled(&self, bytes: &[u8], digest_hex: &str) -> Result<Component, LoadError> {
        let counters = &self.inner.compiles;
        if let Some(cache) = self.inner.precompiled.clone() {
            let (engine, digest) = (self.inner.engine.clone(), digest_hex.to_owned());
            let lookup = tokio::task::spawn_blocking(move || cache.load(&engine, &digest))
                .await
                .map_err(|e| LoadError::Host(e.to_string()))?;
            match lookup {
                Lookup::Hit(component) => {
                    counters.cached.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                Lookup::Discarded(_) => {
                    counters.discarded.fetch_add(1, Ordering::Relaxed);
                }
                Lookup::Miss => {}
            }
        }
        let component = self.compile(bytes).await?;
        counters.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = self.inner.precompiled.clone() {
            let (component, digest) = (component.clone(), digest_hex.to_owned());
            let stored = tokio::task::spawn_blocking(move || cache.store(&digest, &component)).await;
            if let Ok(Err(error)) | Err(error) = stored.map_err(std::io::Error::other) {
                tracing::warn!(component = %digest_hex, %error, "cannot write the precompiled artifact");
            }
        }
        Ok(component)
    }

    /// Compiles off the async workers, a few at a time, within the compile
    /// timeout. Cranelift cannot be stopped midway: a compile past the
    /// timeout is refused at once and keeps its slot until it really ends,
    /// so runaway compiles cannot pile up.
    async fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        let timeout = self.inner.config.compile_timeout;
        let started = std::time::Instant::now();
        let slot = tokio::time::timeout(timeout, Arc::clone(&self.inner.compile_slots).acquire_owned())
            .await
            .map_err(|_| LoadError::CompileTimeout { limit: timeout })?
            .map_err(|e| LoadError::Host(e.to_string()))?;
        let engine = self.inner.engine.clone();
        let owned = bytes.to_vec();
        let compiling = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            Component::new(&engine, &owned)
        });
        let remaining = timeout.saturating_sub(started.elapsed());
        tokio::time::timeout(remaining, compiling)
            .await
            .map_err(|_| LoadError::CompileTimeout { limit: timeout })?
            .map_err(|e| LoadError::Host(e.to_string()))?
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))
    }
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    let (magic, version) = match (bytes.get(0..4), bytes.get(4..8)) {
        (Some(magic), Some(version)) => (magic, version),
        _ => return Err(LoadError::NotWasm),
    };
    if magic != WASM_MAGIC {
        return Err(LoadError::NotWasm);
    }
    if version == CORE_MODULE_VERSION {
        return Err(LoadError::CoreModule);
    }
    if version[2..] != COMPONENT_LAYER {
        return Err(LoadError::Invalid(format!("unknown WebAssembly version/layer {version:02x?}")));
    }
    Ok(())
}

impl Plugin {
    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// `sha256:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// What one instance holds: core instances, memories, tables.
    pub fn shape(&self) -> ComponentShape {
        self.inner.shape
    }

    /// `name@version`.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The WIT contract version the component implements.
    pub fn contract(&self) -> ContractVersion {
        self.inner.pre.version()
    }

    /// Outbound HTTP the host sends on the plugin's behalf (an OAuth2 token
    /// exchange or refresh): the same grant, address checks and connection
    /// slots as the plugin's calls, for at most the call wall clock.
    pub fn host_http(&self, scope: &CallScope) -> crate::capabilities::http::OutboundHttp {
        let deadline = std::time::Instant::now() + scope.limits.wall_clock;
        self.inner.runtime.outbound_http(&self.inner.label, &self.inner.connections, scope, &scope.limits, deadline)
    }

    /// Calls one export under the plugin's concurrency cap.
    async fn call<T, F>(
        &self,
        export: &'static str,
        scope: &CallScope,
        call: F,
        check: fn(&T, &Limits) -> Result<(), CallErrorKind>,
    ) -> Result<CallOutput<T>, CallError>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut wasmtime::Store<HostState>, &'a Connector) -> ExportCall<'a, T> + Send,
    {
        let Ok(_slot) = self.inner.slots.try_acquire() else {
            let kind = CallErrorKind::Overloaded(format!("plugin {} is at its concurrency cap", self.inner.label));
            return Err(CallError {
                plugin: self.inner.label.clone(),
                export,
                kind,
                log: Default::default(),
                fuel_used: 0,
            });
        };
        let caller = Caller { pre: &self.inner.pre, label: &self.inner.label, connections: &self.inner.connections, warm: Some(&self.inner.warm) };
        self.inner.runtime.invoke(caller, export, scope, call, check).await
    }

    /// Calls `on-enable`.
    pub async fn on_enable(
        &self,
        ctx: TriggerContext,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<EnableInfo, ConnectorError>>, CallError> {
        self.call("on-enable", &scope.into(), |store, c| Box::pin(c.on_enable(store, ctx)), unchecked).await
    }

    /// Calls `renew` (`on-enable` for a 0.1.0 connector, which has none).
    pub async fn renew(
        &self,
        ctx: TriggerContext,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<EnableInfo, ConnectorError>>, CallError> {
        self.call("renew", &scope.into(), |store, c| Box::pin(c.renew(store, ctx)), unchecked).await
    }

    /// Calls `on-update` (`on-disable` then `on-enable` before 0.3.0).
    pub async fn on_update(
        &self,
        ctx: TriggerContext,
        change: RegistrationChange,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<EnableInfo, ConnectorError>>, CallError> {
        self.call("on-update", &scope.into(), |store, c| Box::pin(c.on_update(store, ctx, change)), unchecked).await
    }

    /// Calls `sync` (`unchecked` before 0.3.0, which has none).
    pub async fn sync(
        &self,
        ctx: TriggerContext,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<SyncReport, ConnectorError>>, CallError> {
        self.call("sync", &scope.into(), |store, c| Box::pin(c.sync(store, ctx)), unchecked).await
    }

    /// Calls `on-disable`.
    pub async fn on_disable(
        &self,
        ctx: TriggerContext,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<(), ConnectorError>>, CallError> {
        self.call("on-disable", &scope.into(), |store, c| Box::pin(c.on_disable(store, ctx)), unchecked).await
    }

    /// Calls `verify` on a delivery.
    pub async fn verify(
        &self,
        ctx: TriggerContext,
        request: WebhookRequest,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<Verdict, ConnectorError>>, CallError> {
        let check = |verdict: &Result<Verdict, ConnectorError>, limits: &Limits| match verdict {
            Ok(Verdict::Respond(response)) => check_response(response, limits),
            _ => Ok(()),
        };
        self.call("verify", &scope.into(), |store, c| Box::pin(c.verify(store, ctx, request)), check).await
    }

    /// Calls `run` on an accepted delivery or a poll tick.
    pub async fn run(
        &self,
        ctx: TriggerContext,
        input: RunInput,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<RunOutput, ConnectorError>>, CallError> {
        let check = |output: &Result<RunOutput, ConnectorError>, limits: &Limits| match output {
            Ok(output) => check_run_output(output, limits),
            Err(_) => Ok(()),
        };
        self.call("run", &scope.into(), |store, c| Box::pin(c.run(store, ctx, input)), check).await
    }

    /// Handles a webhook delivery: `verify`, then `run` if it was accepted,
    /// both on one fresh instance and under one set of limits.
    pub async fn deliver(
        &self,
        ctx: TriggerContext,
        request: WebhookRequest,
        scope: impl Into<CallScope>,
    ) -> Result<CallOutput<Result<Delivery, ConnectorError>>, CallError> {
        let check = |delivery: &Result<Delivery, ConnectorError>, limits: &Limits| match delivery {
            Ok(Delivery::Accepted(output)) => check_run_output(output, limits),
            Ok(Delivery::Responded(response)) => check_response(response, limits),
            _ => Ok(()),
        };
        self.call("deliver", &scope.into(), |store, c| Box::pin(c.deliver(store, ctx, request)), check).await
    }
}
