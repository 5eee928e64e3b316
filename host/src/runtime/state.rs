//! What a `Store` holds for one call: a locked-down WASI context, the call's
//! log, its capabilities and the bookkeeping that classifies a failure.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limits::ComponentCaps;
use crate::capabilities::CallCapabilities;

/// Table elements one call may hold across all its tables; generous for any
/// real component (each element is a pointer on the host).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Bytes one `get-random-bytes` call may ask the host to allocate.
pub(crate) const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// Host-side resources (streams, pollables, ...) one call may hold open.
pub(crate) const MAX_HOST_RESOURCES: usize = 1024;

/// The data of one call's `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: StoreLimiter,
    /// What the host imports serve, built from the call's scope.
    pub(crate) capabilities: CallCapabilities,
    /// When the call's wall-clock budget ends; read by the epoch callback.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it stops the guest, to tell a deadline
    /// from any other interruption.
    pub(crate) deadline_hit: bool,
}

impl HostState {
    pub(crate) fn new(capabilities: CallCapabilities, memory_limit: usize, caps: ComponentCaps, deadline: Instant) -> Self {
        // No preopens, no env, no args, no network, stdin empty; stdout and
        // stderr go to the bounded call log.
        let wasi = WasiCtxBuilder::new()
            .stdout(capabilities.log.clone())
            .stderr(capabilities.log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HOST_RESOURCES);
        HostState {
            wasi,
            table,
            limiter: StoreLimiter::new(memory_limit, caps),
            capabilities,
            deadline,
            deadline_hit: false,
        }
    }
}

impl HostState {
    /// Arms a reused instance's state for its next call: this call's
    /// capabilities (built around the same log, which its WASI stdout
    /// writes to), its memory limit and its deadline. What the instance
    /// holds in memory stays; what it may do is this call's.
    pub(crate) fn begin_reused_call(&mut self, capabilities: CallCapabilities, memory_limit: usize, deadline: Instant) {
        self.capabilities = capabilities;
        self.limiter.memory.limit = memory_limit;
        self.limiter.denied = None;
        self.deadline = deadline;
        self.deadline_hit = false;
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps what one call's store may hold, whichever allocator is in use: the
/// bytes of all its linear memories together, the elements of all its
/// tables together, and how many instances, memories and tables it creates.
///
/// It remembers a denial: wasmtime reports a refused `memory.grow` to the
/// guest as -1, not as a trap, so without this record a guest that then
/// aborts would look like any other trap.
#[derive(Debug)]
pub(crate) struct StoreLimiter {
    caps: ComponentCaps,
    /// Bytes of all the call's memories.
    memory: Total,
    /// Elements of all the call's tables.
    tables: Total,
    /// The total a denied memory growth would have reached.
    pub(crate) denied: Option<usize>,
}

/// A running total under a limit, which undoes the last growth it allowed
/// when that growth then fails.
#[derive(Debug)]
struct Total {
    limit: usize,
    used: usize,
    pending: usize,
}

impl Total {
    fn new(limit: usize) -> Self {
        Total { limit, used: 0, pending: 0 }
    }

    /// Grows one item from `current` to `desired`; `Err` with the total it
    /// would have reached if that passes the limit.
    fn grow(&mut self, current: usize, desired: usize) -> Result<(), usize> {
        let growth = desired.saturating_sub(current);
        let total = self.used.saturating_add(growth);
        if total > self.limit {
            return Err(total);
        }
        self.used = total;
        self.pending = growth;
        Ok(())
    }

    fn undo_last(&mut self) {
        self.used = self.used.saturating_sub(std::mem::take(&mut self.pending));
    }
}

impl StoreLimiter {
    fn new(memory_limit: usize, caps: ComponentCaps) -> Self {
        StoreLimiter { caps, memory: Total::new(memory_limit), tables: Total::new(MAX_TABLE_ELEMENTS), denied: None }
    }
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Called for a memory's initial size too (current = 0), so the total
        // covers every memory the call ever created.
        match self.memory.grow(current, desired) {
            Ok(()) => Ok(true),
            Err(total) => {
                self.denied = Some(total);
                Ok(false)
            }
        }
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.undo_last();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.tables.grow(current, desired).is_ok())
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tables.undo_last();
        Ok(())
    }

    // One call instantiates one component: the store may hold no more than
    // the per-component caps the pool is sized by, so the on-demand
    // allocator enforces the same bounds as the pool.
    fn instances(&self) -> usize {
        self.caps.core_instances
    }

    fn memories(&self) -> usize {
        self.caps.memories
    }

    fn tables(&self) -> usize {
        self.caps.tables
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: usize) -> StoreLimiter {
        StoreLimiter::new(limit, ComponentCaps::default())
    }

    #[test]
    fn memories_count_together_against_one_limit() -> wasmtime::Result<()> {
        let mut l = limiter(100);
        assert!(l.memory_growing(0, 40, None)?);
        assert!(l.memory_growing(0, 40, None)?);
        // Each memory alone is under the limit; together they are not.
        assert!(!l.memory_growing(0, 40, None)?);
        assert_eq!(l.denied, Some(120));
        // Growing one of the first two still counts the other.
        assert!(l.memory_growing(40, 60, None)?);
        assert!(!l.memory_growing(60, 61, None)?);
        assert_eq!(l.memory.used, 100);
        Ok(())
    }

    #[test]
    fn a_failed_growth_gives_its_bytes_back() -> wasmtime::Result<()> {
        let mut l = limiter(100);
        assert!(l.memory_growing(0, 90, None)?);
        l.memory_grow_failed(wasmtime::Error::msg("os refused"))?;
        assert!(l.memory_growing(0, 90, None)?);
        Ok(())
    }

    #[test]
    fn table_elements_count_together() -> wasmtime::Result<()> {
        let mut l = limiter(100);
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS - 1, None)?);
        assert!(!l.table_growing(0, 2, None)?);
        Ok(())
    }
}
