//! The per-call limits of DESIGN section 4 and the engine-wide settings.

use std::time::Duration;

/// Limits applied to every call of a plugin. The operator may override them
/// per plugin or per trigger; each one that trips has its own
/// [`CallErrorKind`](super::CallErrorKind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wasm fuel per call (roughly one unit per instruction).
    pub fuel: u64,
    /// Wall-clock time per call, instantiation and host I/O included.
    pub wall_clock: Duration,
    /// Bytes one linear memory may grow to (at most
    /// [`RuntimeConfig::max_memory_bytes`]).
    pub memory_bytes: usize,
    /// Events one `run` may return.
    pub max_events: usize,
    /// Bytes of guest data one call may return (payloads, keys, response).
    pub max_output_bytes: usize,
    /// Bytes of log (the `log` import plus stdout/stderr) kept per call.
    pub max_log_bytes: usize,
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
        }
    }
}

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
    /// Calls running at once across all plugins; more are shed as overloaded.
    pub max_concurrent_calls: usize,
    /// Calls running at once for one plugin, so one plugin cannot take every slot.
    pub max_concurrent_calls_per_plugin: usize,
    /// How often the epoch ticker runs: the granularity of wall-clock
    /// deadlines and of yielding a busy guest back to tokio.
    pub epoch_tick: Duration,
    /// Use the pooling allocator (falls back to on-demand if the address
    /// space for the pool cannot be reserved).
    pub pooling: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            default_limits: Limits::default(),
            max_memory_bytes: 1 << 30,
            max_wasm_stack: 512 << 10,
            max_component_bytes: MAX_COMPONENT_BYTES,
            max_concurrent_calls: 128,
            max_concurrent_calls_per_plugin: 32,
            epoch_tick: Duration::from_millis(10),
            pooling: true,
        }
    }
}
