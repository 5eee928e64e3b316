//! The sandboxed component runtime: one `Engine` per process, a linker with
//! exactly the imports connectors may use, and calls that each run in a fresh
//! instance under per-call limits.

pub(crate) mod call;
mod engine;
mod error;
mod limits;
mod plugin;
mod precompiled;
mod scope;
mod shape;
mod state;
mod warm;

use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::capabilities::Backends;

pub use call::CallOutput;
pub use engine::Allocation;
pub use error::{CallError, CallErrorKind, LoadError};
pub use limits::{ComponentCaps, Limits, LimitsError, MAX_COMPONENT_BYTES, RuntimeConfig};
pub use plugin::{CompileCounts, Plugin};
pub use precompiled::{Lookup, PrecompiledCache};
pub use scope::CallScope;
pub use shape::{ComponentShape, component_shape};
pub(crate) use state::HostState;

/// The runtime. Cheap to clone; create one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    backends: Backends,
    allocation: Allocation,
    call_slots: Semaphore,
    compile_slots: Arc<Semaphore>,
    precompiled: Option<PrecompiledCache>,
    /// Warm instances held across all plugins, against the pool's room.
    warm: Arc<warm::WarmBudget>,
    compiles: plugin::CompileCounters,
    _ticker: engine::EpochTicker,
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm runtime: {0}")]
pub struct RuntimeError(String);

impl Runtime {
    /// Builds the engine and linker and starts the epoch ticker. No
    /// capability has a backend: every call is denied kv and outbound HTTP.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        Runtime::with_backends(config, Backends::default())
    }

    /// [`Runtime::new`], with the backends that granted capabilities use.
    pub fn with_backends(config: RuntimeConfig, backends: Backends) -> Result<Self, RuntimeError> {
        config.validate().map_err(|e| RuntimeError(e.to_string()))?;
        let (engine, allocation) = engine::build_engine(&config).map_err(|e| RuntimeError(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        crate::bindings::add_to_linker(&mut linker, |state: &mut HostState| &mut state.capabilities)
            .map_err(|e| RuntimeError(e.to_string()))?;
        let ticker = engine::EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| RuntimeError(format!("epoch ticker: {e}")))?;
        let precompiled = match &config.precompiled_cache {
            Some(root) => Some(
                PrecompiledCache::open(root, &engine)
                    .map_err(|e| RuntimeError(format!("precompiled cache at {}: {e}", root.display())))?,
            ),
            None => None,
        };
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                call_slots: Semaphore::new(config.max_concurrent_calls),
                compile_slots: Arc::new(Semaphore::new(config.max_concurrent_compiles)),
                precompiled,
                warm: warm::WarmBudget::new(config.max_warm_instances),
                compiles: plugin::CompileCounters::default(),
                engine,
                linker,
                config,
                backends,
                allocation,
                _ticker: ticker,
            }),
        })
    }

    /// Whether the pooling allocator is in use.
    pub fn allocation(&self) -> Allocation {
        self.inner.allocation
    }

    /// The precompiled cache, if the runtime keeps one.
    pub fn precompiled_cache(&self) -> Option<&PrecompiledCache> {
        self.inner.precompiled.as_ref()
    }

    /// Warm instances held now, across all plugins.
    pub fn warm_instances(&self) -> usize {
        self.inner.warm.held()
    }

    /// How loads have found their compiled code so far.
    pub fn compile_counts(&self) -> CompileCounts {
        self.inner.compiles.snapshot()
    }

    /// The settings the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("allocation", &self.inner.allocation).finish_non_exhaustive()
    }
}
