//! The per-call limits of DESIGN section 4 and the engine-wide settings.

use std::time::Duration;

use crate::capabilities::http::OutboundLimits;
use crate::capabilities::kv::KvQuota;

/// Limits applied to every call of a plugin. The operator may override them
/// per plugin or per trigger; each one that trips has its own
/// [`CallErrorKind`](super::CallErrorKind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wasm fuel per call (roughly one unit per instruction).
    pub fuel: u64,
    /// Wall-clock time per call, instantiation and host I/O included.
    pub wall_clock: Duration,
    /// Bytes of linear memory one call may hold, all its memories together
    /// (at most [`RuntimeConfig::max_memory_bytes`]).
    pub memory_bytes: usize,
    /// Events one `run` may return.
    pub max_events: usize,
    /// Bytes of guest data one call may return (payloads, keys, response).
    pub max_output_bytes: usize,
    /// Bytes of log (the `log` import plus stdout/stderr) kept per call.
    pub max_log_bytes: usize,
    /// What a trigger may keep in its key-value store.
    pub kv: KvQuota,
    /// Requests and response bytes of outbound HTTP per call.
    pub outbound: OutboundLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 100_000_000,
            wall_clock: Duration::from_secs(5),
            memory_bytes: 64 << 20,
            max_events: 1000,
            max_output_bytes: 8 << 20,
            max_log_bytes: 16 << 10,
            kv: KvQuota::default(),
            outbound: OutboundLimits::default(),
        }
    }
}

impl Limits {
    /// Checks every limit is usable under `config`: a zero budget would fail
    /// every call, and a memory limit past the pool's slot could not be
    /// honoured.
    pub fn validate(&self, config: &RuntimeConfig) -> Result<(), LimitsError> {
        let invalid = |limit: &'static str, message: String| Err(LimitsError { limit, message });
        if self.fuel == 0 {
            return invalid("fuel", "must be at least 1".into());
        }
        if self.wall_clock.is_zero() {
            return invalid("wall_clock", "must be at least 1 ms".into());
        }
        if self.memory_bytes == 0 || self.memory_bytes > config.max_memory_bytes {
            return invalid(
                "memory",
                format!("must be 1 to {} bytes (the size of one memory slot)", config.max_memory_bytes),
            );
        }
        if self.max_output_bytes == 0 {
            return invalid("max_output_bytes", "must be at least 1".into());
        }
        if self.kv.max_keys == 0 || self.kv.max_key_bytes == 0 || self.kv.max_value_bytes == 0 {
            return invalid("kv", "every kv quota must be at least 1".into());
        }
        Ok(())
    }
}

/// A limit that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit {limit}: {message}")]
pub struct LimitsError {
    /// Which limit.
    pub limit: &'static str,
    /// Why.
    pub message: String,
}

/// How much of the instance pool one component may use. Every call holds one
/// component instance, so the pool is sized as these caps times the
/// concurrency cap: no plugin, however it is built, can drain the pool that
/// its neighbours' calls need. Components over a cap are refused at upload.
///
/// The defaults admit what real toolchains emit, with headroom. Measured
/// connectors: Rust (`wasm32-wasip2`) 3 core instances, 1 memory; jco /
/// componentize-js 0.23 4 core instances, 1 memory, 2 tables;
/// componentize-py 0.25 14 core instances (38 with `--stub-wasi`), 1 memory,
/// 2 tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentCaps {
    /// Core module instances per component.
    pub core_instances: usize,
    /// Linear memories defined per component.
    pub memories: usize,
    /// Tables defined per component.
    pub tables: usize,
}

impl Default for ComponentCaps {
    fn default() -> Self {
        ComponentCaps { core_instances: 64, memories: 4, tables: 16 }
    }
}

/// The most calls a runtime may run at once.
const MAX_CONCURRENT_CALLS: usize = 10_000;

/// The default cap on a component's size.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// Settings fixed for the life of a [`Runtime`](super::Runtime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Limits used when a call names none.
    pub default_limits: Limits,
    /// The largest memory limit any plugin may be given: the size of a
    /// pooling-allocator slot. Costs address space, not memory.
    pub max_memory_bytes: usize,
    /// Wasm stack per call (`Config::max_wasm_stack`).
    pub max_wasm_stack: usize,
    /// Largest component accepted for loading.
    pub max_component_bytes: usize,
    /// What one component may use of the instance pool.
    pub component_caps: ComponentCaps,
    /// Components compiled at once; more uploads wait their turn.
    pub max_concurrent_compiles: usize,
    /// Longest a component may take to compile before it is refused.
    pub compile_timeout: Duration,
    /// Calls running at once across all plugins; more are shed as overloaded.
    pub max_concurrent_calls: usize,
    /// Calls running at once for one plugin, so one plugin cannot take every slot.
    pub max_concurrent_calls_per_plugin: usize,
    /// Outbound connections open at once for one plugin, all its calls together.
    pub outbound_connections_per_plugin: usize,
    /// How often the epoch ticker runs: the granularity of wall-clock
    /// deadlines and of yielding a busy guest back to tokio.
    pub epoch_tick: Duration,
    /// Use the pooling allocator (falls back to on-demand if the address
    /// space for the pool cannot be reserved).
    pub pooling: bool,
}

impl RuntimeConfig {
    /// Checks the settings before an engine is built from them.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let invalid = |limit: &'static str, message: &str| Err(LimitsError { limit, message: message.into() });
        // The pool reserves address space for every concurrent call.
        if !(1..=MAX_CONCURRENT_CALLS).contains(&self.max_concurrent_calls) {
            return invalid("max_concurrent_calls", "must be 1 to 10000");
        }
        // Above the total it changes nothing, so it is allowed.
        if self.max_concurrent_calls_per_plugin == 0 {
            return invalid("max_concurrent_calls_per_plugin", "must be at least 1");
        }
        if self.max_concurrent_compiles == 0 || self.compile_timeout.is_zero() {
            return invalid("compiles", "max_concurrent_compiles and compile_timeout must be at least 1");
        }
        if self.epoch_tick.is_zero() {
            return invalid("epoch_tick", "must be at least 1 ms");
        }
        let caps = self.component_caps;
        if caps.core_instances == 0 || caps.memories == 0 || caps.tables == 0 {
            return invalid("component_caps", "every cap must be at least 1");
        }
        self.default_limits.validate(self)
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_limits: Limits::default(),
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
            max_component_bytes: MAX_COMPONENT_BYTES,
            component_caps: ComponentCaps::default(),
            max_concurrent_compiles: 2,
            compile_timeout: Duration::from_secs(120),
            max_concurrent_calls: 128,
            max_concurrent_calls_per_plugin: 32,
            outbound_connections_per_plugin: 16,
            epoch_tick: Duration::from_millis(10),
            pooling: true,
        }
    }
}
