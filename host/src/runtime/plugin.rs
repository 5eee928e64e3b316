//! A loaded plugin: a validated component, pre-linked and described, ready
//! for calls that each get a fresh instance.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::Component;

use super::call::{Call, CallOutput, Reply};
use super::error::{CallError, CallErrorKind, LoadError};
use super::limits::Limits;
use super::shape::ComponentShape;
use super::Runtime;
use crate::bindings::{ConnectorPre, LinkError};
use crate::contract::{
    ConnectorError, Delivery, EnableInfo, Manifest, RunInput, RunOutput, TriggerContext, Verdict, WebhookRequest,
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
    pre: ConnectorPre,
    slots: Semaphore,
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
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));

        let component = self.compile(bytes).await?;
        let shape = counted.refined(&component);
        shape.check(caps)?;

        let pre = ConnectorPre::new(&self.inner.linker, &component).map_err(|e| match e {
            LinkError::Import(why) => LoadError::UnsupportedImport(why),
            LinkError::Export(why) => LoadError::WrongWorld(why),
        })?;
        let limits = &self.inner.config.default_limits;
        let manifest = match self.invoke(&pre, "<loading>", Call::Describe, limits).await {
            Ok(CallOutput { value: Reply::Describe(manifest), .. }) => manifest,
            Ok(_) => return Err(LoadError::Host("describe returned another export's reply".into())),
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
            }),
        })
    }
}

impl Runtime {
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

/// Pulls the expected reply out of a call, or calls a mismatch a host error.
macro_rules! expect_reply {
    ($output:expr, $plugin:expr, $export:literal, $variant:path) => {{
        let output = $output?;
        match output.value {
            $variant(value) => Ok(CallOutput {
                value,
                fuel_used: output.fuel_used,
                log: output.log,
                duration: output.duration,
            }),
            _ => Err(CallError {
                plugin: $plugin.inner.label.clone(),
                export: $export,
                kind: CallErrorKind::Host("mismatched reply".into()),
                log: output.log,
                fuel_used: output.fuel_used,
            }),
        }
    }};
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

    async fn call(&self, call: Call, limits: &Limits) -> Result<CallOutput<Reply>, CallError> {
        let Ok(_slot) = self.inner.slots.try_acquire() else {
            let kind = CallErrorKind::Overloaded(format!("plugin {} is at its concurrency cap", self.inner.label));
            return Err(CallError {
                plugin: self.inner.label.clone(),
                export: call.export(),
                kind,
                log: Default::default(),
                fuel_used: 0,
            });
        };
        self.inner.runtime.invoke(&self.inner.pre, &self.inner.label, call, limits).await
    }

    /// Calls `on-enable`.
    pub async fn on_enable(
        &self,
        ctx: TriggerContext,
        limits: &Limits,
    ) -> Result<CallOutput<Result<EnableInfo, ConnectorError>>, CallError> {
        expect_reply!(self.call(Call::OnEnable(ctx), limits).await, self, "on-enable", Reply::OnEnable)
    }

    /// Calls `on-disable`.
    pub async fn on_disable(
        &self,
        ctx: TriggerContext,
        limits: &Limits,
    ) -> Result<CallOutput<Result<(), ConnectorError>>, CallError> {
        expect_reply!(self.call(Call::OnDisable(ctx), limits).await, self, "on-disable", Reply::OnDisable)
    }

    /// Calls `verify` on a delivery.
    pub async fn verify(
        &self,
        ctx: TriggerContext,
        request: WebhookRequest,
        limits: &Limits,
    ) -> Result<CallOutput<Result<Verdict, ConnectorError>>, CallError> {
        expect_reply!(self.call(Call::Verify(ctx, request), limits).await, self, "verify", Reply::Verify)
    }

    /// Calls `run` on an accepted delivery or a poll tick.
    pub async fn run(
        &self,
        ctx: TriggerContext,
        input: RunInput,
        limits: &Limits,
    ) -> Result<CallOutput<Result<RunOutput, ConnectorError>>, CallError> {
        expect_reply!(self.call(Call::Run(ctx, input), limits).await, self, "run", Reply::Run)
    }

    /// Handles a webhook delivery: `verify`, then `run` if it was accepted,
    /// both on one fresh instance and under one set of limits.
    pub async fn deliver(
        &self,
        ctx: TriggerContext,
        request: WebhookRequest,
        limits: &Limits,
    ) -> Result<CallOutput<Result<Delivery, ConnectorError>>, CallError> {
        expect_reply!(self.call(Call::Deliver(ctx, request), limits).await, self, "deliver", Reply::Deliver)
    }
}
