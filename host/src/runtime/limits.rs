//! The per-call limits of DESIGN section 4 and the engine-wide settings.

use std::time::Duration;

use crate::capabilities::grant::LimitOverrides;
use crate::capabilities::http::OutboundLimits;
use crate::capabilities::kv::KvQuota;

/// The most an operator may grant one plugin, whatever the defaults.
const MAX_FUEL: u64 = 10_000_000_000;
const MAX_WALL_CLOCK: Duration = Duration::from_secs(60);
const MAX_EVENTS: u64 = 10_000;
const MAX_LOG_BYTES: u64 = 1 << 20;
const MAX_KV_KEYS: u64 = 100_000;
const MAX_KV_VALUE_BYTES: u64 = 16 << 20;
const MAX_KV_TOTAL_BYTES: u64 = 1 << 30;
const MAX_OUTBOUND_REQUESTS: u64 = 1000;
const MAX_OUTBOUND_RESPONSE_BYTES: u64 = 64 << 20;

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

impl Limits {
    /// These limits with a plugin's overrides applied, each within the
    /// host's maximum for it (and output within these limits, since the
    /// ingress buffers are sized by the default).
    pub fn with_overrides(&self, o: &LimitOverrides, config: &RuntimeConfig) -> Result<Limits, LimitsError> {
        fn pick(limit: &'static str, value: Option<u64>, default: u64, max: u64) -> Result<u64, LimitsError> {
            match value {
                None => Ok(default),
                Some(v) if (1..=max).contains(&v) => Ok(v),
                Some(_) => Err(LimitsError { limit, message: format!("must be 1 to {max}") }),
            }
        }
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let max_memory_mib = wide(config.max_memory_bytes >> 20);
        let limits = Limits {
            fuel: pick("fuel", o.fuel, self.fuel, MAX_FUEL)?,
            wall_clock: Duration::from_millis(pick(
                "wall_clock_ms",
                o.wall_clock_ms,
                u64::try_from(self.wall_clock.as_millis()).unwrap_or(u64::MAX),
                u64::try_from(MAX_WALL_CLOCK.as_millis()).unwrap_or(u64::MAX),
            )?),
            memory_bytes: match o.memory_mib {
                None => self.memory_bytes,
                Some(_) => size(pick("memory_mib", o.memory_mib, 0, max_memory_mib)? << 20),
            },
            max_events: size(pick("max_events", o.max_events, wide(self.max_events), MAX_EVENTS)?),
            max_output_bytes: size(pick("max_output_bytes", o.max_output_bytes, wide(self.max_output_bytes), wide(self.max_output_bytes))?),
            max_log_bytes: size(pick("max_log_bytes", o.max_log_bytes, wide(self.max_log_bytes), MAX_LOG_BYTES)?),
            kv: KvQuota {
                max_keys: size(pick("kv_max_keys", o.kv_max_keys, wide(self.kv.max_keys), MAX_KV_KEYS)?),
                max_value_bytes: size(pick("kv_max_value_bytes", o.kv_max_value_bytes, wide(self.kv.max_value_bytes), MAX_KV_VALUE_BYTES)?),
                max_total_bytes: size(pick("kv_max_total_bytes", o.kv_max_total_bytes, wide(self.kv.max_total_bytes), MAX_KV_TOTAL_BYTES)?),
                ..self.kv
            },
            outbound: OutboundLimits {
                requests_per_call: size(pick(
                    "outbound_requests_per_call",
                    o.outbound_requests_per_call,
                    wide(self.outbound.requests_per_call),
                    MAX_OUTBOUND_REQUESTS,
                )?),
                max_response_bytes: size(pick(
                    "outbound_max_response_bytes",
                    o.outbound_max_response_bytes,
                    wide(self.outbound.max_response_bytes),
                    MAX_OUTBOUND_RESPONSE_BYTES,
                )?),
            },
        };
        limits.validate(config)?;
        Ok(limits)
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
    /// Where compiled components are kept across restarts; none when `None`.
    pub precompiled_cache: Option<std::path::PathBuf>,
    /// Idle instances kept for reuse at most, across all plugins; the pool
    /// has room for them besides the calls running.
    pub max_warm_instances: usize,
}

impl RuntimeConfig {
    /// Checks the settings before an engine is built from them.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let invalid = |limit: &'static str, message: &str| Err(LimitsError { limit, message: message.into() });
        // The pool reserves address space for every concurrent call.
        if !(1..=MAX_CONCURRENT_CALLS).contains(&self.max_concurrent_calls) {
            return invalid("max_concurrent_calls", "must be 1 to 10000");
        }
        // Each one reserves a pool slot's address space, like a call.
        if self.max_warm_instances > MAX_CONCURRENT_CALLS {
            return invalid("max_warm_instances", "must be at most 10000");
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
            // One core left for everything else.
            max_concurrent_compiles: std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
            compile_timeout: Duration::from_secs(120),
            max_concurrent_calls: 128,
            max_concurrent_calls_per_plugin: 32,
            outbound_connections_per_plugin: 16,
            epoch_tick: Duration::from_millis(10),
            pooling: true,
            precompiled_cache: None,
            max_warm_instances: 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_within_the_host_maxima() -> Result<(), LimitsError> {
        let config = RuntimeConfig::default();
        let defaults = Limits::default();
        assert_eq!(defaults.with_overrides(&LimitOverrides::default(), &config)?, defaults);
        let raised = LimitOverrides { fuel: Some(500_000_000), kv_max_keys: Some(5000), memory_mib: Some(128), ..Default::default() };
        let limits = defaults.with_overrides(&raised, &config)?;
        assert_eq!((limits.fuel, limits.kv.max_keys, limits.memory_bytes), (500_000_000, 5000, 128 << 20));
        for (over, limit) in [
            (LimitOverrides { fuel: Some(MAX_FUEL + 1), ..Default::default() }, "fuel"),
            (LimitOverrides { wall_clock_ms: Some(0), ..Default::default() }, "wall_clock_ms"),
            (LimitOverrides { memory_mib: Some(4096), ..Default::default() }, "memory_mib"),
            (LimitOverrides { max_output_bytes: Some(64 << 20), ..Default::default() }, "max_output_bytes"),
            (LimitOverrides { outbound_requests_per_call: Some(100_000), ..Default::default() }, "outbound_requests_per_call"),
        ] {
            assert_eq!(defaults.with_overrides(&over, &config).map_err(|e| e.limit), Err(limit));
        }
        Ok(())
    }
}
