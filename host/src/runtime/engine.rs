//! The process-wide `Engine` and the epoch ticker behind wall-clock deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Fiber stack beyond `max_wasm_stack`, for host frames (wasmtime's default
/// async stack is 2 MiB for a 512 KiB wasm stack).
const ASYNC_STACK_HEADROOM: usize = 1 << 20;

/// Bytes of a freed memory slot kept mapped between calls (with PAGEMAP_SCAN):
/// enough for a Rust connector's shadow stack, data and first heap pages.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// Table bytes reset with memset rather than madvise.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;
/// Freed pool slots decommitted at once.
const DECOMMIT_BATCH: usize = 32;

use super::limits::RuntimeConfig;

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Slots reserved up front: cheap instantiation.
    Pooling,
    /// mmap per instance: used where the pool's address space is not available.
    OnDemand,
}

/// Builds the engine, preferring the pooling allocator. Either way each
/// call's store applies the same per-component caps (see `StoreLimiter`), so
/// falling back changes the cost of instantiation, not what a guest may hold.
pub(crate) fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<(Engine, Allocation)> {
    let base = base_config(config);
    let caps = config.component_caps;
    if config.pooling {
        let mut pooled = base.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(config)));
        match Engine::new(&pooled) {
            Ok(engine) => {
                tracing::info!(
                    calls = config.max_concurrent_calls,
                    core_instances_per_component = caps.core_instances,
                    memories_per_component = caps.memories,
                    tables_per_component = caps.tables,
                    "pooling allocator reserved"
                );
                return Ok((engine, Allocation::Pooling));
            }
            Err(error) => tracing::warn!(
                %error,
                core_instances_per_component = caps.core_instances,
                memories_per_component = caps.memories,
                tables_per_component = caps.tables,
                "pooling allocator unavailable; using on-demand allocation with the same per-call caps"
            ),
        }
    }
    Ok((Engine::new(&base)?, Allocation::OnDemand))
}

fn base_config(config: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.max_wasm_stack(config.max_wasm_stack);
    // One compile on one core: uploads run a few at a time (the compile
    // slots, one fewer than the cores), so a large upload cannot take the
    // cores ingress runs on.
    c.parallel_compilation(false);
    // Guests run on fibers whose stack must hold the wasm stack plus the
    // host frames below it.
    c.async_stack_size(config.max_wasm_stack.saturating_add(ASYNC_STACK_HEADROOM).max(2 << 20));
    c
}

fn pool_config(config: &RuntimeConfig) -> PoolingAllocationConfig {
    // Every call holds one component instance and no more calls run than
    // the concurrency cap, so a pool of the per-component caps times that
    // cap can never run dry: a plugin with heavy components takes at most
    // its per-plugin share of calls, and never its neighbours' slots.
    let calls = u32::try_from(config.max_concurrent_calls).unwrap_or(u32::MAX).max(1);
    // Idle warm instances hold their slots too (but no stack: fibers are per call).
    let instances = calls.saturating_add(u32::try_from(config.max_warm_instances).unwrap_or(u32::MAX));
    let caps = config.component_caps;
    let per_component = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(per_component(caps.core_instances)))
        .total_memories(instances.saturating_mul(per_component(caps.memories)))
        .total_tables(instances.saturating_mul(per_component(caps.tables)))
        .total_stacks(calls)
        .max_core_instances_per_component(per_component(caps.core_instances))
        .max_memories_per_component(per_component(caps.memories))
        .max_tables_per_component(per_component(caps.tables))
        // A multi-memory module may use its component's whole allowance; the
        // store limiter counts its memories together against the call's limit.
        .max_memories_per_module(per_component(caps.memories))
        .max_tables_per_module(per_component(caps.tables))
        .max_memory_size(config.max_memory_bytes);
    // Resetting a freed slot with madvise makes the next call fault its pages
    // in again; with Linux's PAGEMAP_SCAN (6.7+) wasmtime resets only the
    // dirty pages and keeps them mapped. Measured by the bench: 20.7 -> 16.0
    // us per delivery. Without the ioctl, keeping pages resident means
    // zeroing them all on every release, which measured slower (29.9 us), so
    // it is enabled only together.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes).linear_memory_keep_resident(KEEP_RESIDENT_BYTES).table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
    }
    // Each decommit is an madvise and a TLB shootdown on every core; freed
    // slots are decommitted in batches instead (a queued slot is not reused
    // before its batch is flushed).
    pool.decommit_batch_size(DECOMMIT_BATCH);
    pool
}

/// A thread that advances the engine's epoch every tick, so a store's epoch
/// deadline is reached in wall-clock time. Stopped when dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: std::time::Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("triggerhost-epoch".into()).spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
