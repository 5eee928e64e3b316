//! What a `Store` holds for one call: a locked-down WASI context, the call's
//! log, its capabilities and the bookkeeping that classifies a failure.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::capabilities::http::OutboundHttp;
use crate::capabilities::kv::TriggerKv;
use crate::capabilities::log::CallLog;

/// Tables a guest may grow to (elements); generous for any real component.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The data of one call's `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) log: CallLog,
    pub(crate) kv: TriggerKv,
    pub(crate) http: OutboundHttp,
    /// When the call's wall-clock budget ends; read by the epoch callback.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it stops the guest, to tell a deadline
    /// from any other interruption.
    pub(crate) deadline_hit: bool,
}

impl HostState {
    pub(crate) fn new(log: CallLog, memory_limit: usize, deadline: Instant) -> Self {
        // No preopens, no env, no args, no network, stdin empty; stdout and
        // stderr go to the bounded call log.
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { limit: memory_limit, denied: None },
            log,
            kv: TriggerKv::denied(),
            http: OutboundHttp::denied(),
            deadline,
            deadline_hit: false,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory and remembers a denial: wasmtime reports a refused
/// `memory.grow` to the guest as -1, not as a trap, so without this record a
/// guest that then aborts would look like any other trap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    /// The size a denied growth asked for.
    pub(crate) denied: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.denied = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
