//! One call into a plugin: a fresh store and instance, every per-call limit
//! armed, and any failure classified into a typed [`CallErrorKind`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use super::Runtime;
use super::error::{CallError, CallErrorKind};
use super::limits::Limits;
use super::scope::CallScope;
use super::state::HostState;
use super::warm::{Warm, WarmInstances};
use crate::bindings::{Connector, ConnectorPre};
use crate::capabilities::CallCapabilities;
use crate::capabilities::http::{OutboundHttp, OutboundScope};
use crate::capabilities::kv::{KvWrites, TriggerKv};
use crate::capabilities::log::{CallLog, LogOutput};
use crate::contract::{HttpResponse, RunOutput};

/// Bytes of lifting overhead allowed beyond `max_output_bytes`: list and
/// record headers of the returned structure are counted too.
const HOSTCALL_FUEL_SLACK: usize = 256 << 10;

/// Component-model handles (the guest's own resources and the host's it
/// holds) one call may have live: the tables behind them grow in host memory.
const MAX_COMPONENT_HANDLES: usize = 4096;

/// What wasmtime's (private) hostcall-fuel error says.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Longest event type accepted.
const MAX_EVENT_TYPE_LEN: usize = 256;
/// Longest dedupe key accepted.
const MAX_DEDUPE_KEY_LEN: usize = 512;

/// One export's call on a fresh instance, typed: the closure names the
/// export and its arguments, and returns what the export returned.
pub(crate) type ExportCall<'a, T> = Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>;

/// A call that completed, with what it cost and logged.
#[derive(Debug, Clone)]
pub struct CallOutput<T> {
    /// What the export returned (a connector error is a normal return).
    pub value: T,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// What the guest logged.
    pub log: LogOutput,
    /// Wall-clock time of the call, instantiation included.
    pub duration: Duration,
    /// The key-value writes the call made, to commit only if it succeeded.
    pub kv_writes: KvWrites,
}

/// The error the epoch callback stops a guest with once its deadline passed.
#[derive(Debug)]
struct DeadlineReached;

impl std::fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wall-clock deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

/// Which plugin a call runs in, and what it shares with the plugin's other calls.
pub(crate) struct Caller<'a> {
    pub(crate) pre: &'a ConnectorPre<HostState>,
    pub(crate) label: &'a str,
    pub(crate) connections: &'a Arc<Semaphore>,
    /// The plugin's warm instances (none while loading).
    pub(crate) warm: Option<&'a WarmInstances>,
}

impl Runtime {
    /// Runs one export in a fresh instance under the limits and with the
    /// capabilities of `scope`; `check` bounds what the export returned.
    pub(crate) async fn invoke<T, F>(
        &self,
        caller: Caller<'_>,
        export: &'static str,
        scope: &CallScope,
        call: F,
        check: fn(&T, &Limits) -> Result<(), CallErrorKind>,
    ) -> Result<CallOutput<T>, CallError>
    where
        T: Send,
        F: for<'a> FnOnce(&'a mut Store<HostState>, &'a Connector) -> ExportCall<'a, T> + Send,
    {
        let started = Instant::now();
        // A limit above the pool's slot size could not be honoured: the pool
        // would refuse the growth without the limiter knowing why.
        let limits = &Limits {
            memory_bytes: scope.limits.memory_bytes.min(self.inner.config.max_memory_bytes),
            ..scope.limits.clone()
        };
        let log = CallLog::new(limits.max_log_bytes);
        let fail = |kind, log: &CallLog, fuel_used| CallError {
            plugin: caller.label.to_owned(),
            export,
            kind,
            log: log.output(),
            fuel_used,
        };

        let Ok(_slot) = self.inner.call_slots.try_acquire() else {
            let why = format!("{} calls already running", self.inner.config.max_concurrent_calls);
            return Err(fail(CallErrorKind::Overloaded(why), &log, 0));
        };

        let deadline = started + limits.wall_clock;
        // A reused instance keeps its store, and so the log its WASI stdout
        // writes to: emptied for this call.
        let reuse = scope.grant.reuse.filter(|_| !scope.trigger_id.is_empty());
        let warm = match (caller.warm, reuse) {
            (Some(warm), Some(reuse)) => warm.take(&scope.trigger_id, reuse),
            // Reuse revoked: what was kept goes, with its pool slots.
            (Some(warm), None) => {
                warm.clear();
                None
            }
            (None, _) => None,
        };
        let (mut store, log, prior) = match warm {
            Some(Warm { mut store, instance, calls, born }) => {
                let log = store.data().capabilities.log.clone();
                log.reset(limits.max_log_bytes);
                let capabilities = self.capabilities(&caller, scope, limits, deadline, log.clone());
                store.data_mut().begin_reused_call(capabilities, limits.memory_bytes, deadline);
                (store, log, Some((instance, calls, born)))
            }
            None => {
                let capabilities = self.capabilities(&caller, scope, limits, deadline, log.clone());
                let state = HostState::new(capabilities, limits.memory_bytes, self.inner.config.component_caps, deadline);
                let mut store = Store::new(&self.inner.engine, state);
                store.limiter(|state| &mut state.limiter);
                (store, log, None)
            }
        };
        store.set_hostcall_fuel(limits.max_output_bytes.saturating_add(HOSTCALL_FUEL_SLACK));
        store.set_max_component_handles(MAX_COMPONENT_HANDLES);
        if let Err(e) = store.set_fuel(limits.fuel) {
            return Err(fail(CallErrorKind::Host(e.to_string()), &log, 0));
        }
        // Every tick, either yield to tokio (so a busy guest cannot hog a
        // worker thread) or stop the guest once its deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if Instant::now() >= state.deadline {
                state.deadline_hit = true;
                return Err(wasmtime::Error::new(DeadlineReached));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        // The epoch callback stops running wasm; this outer timeout also
        // covers a guest parked in a host import (an outbound request, a
        // store read). Two ticks of grace let the epoch path, which records
        // the fuel used, win the race.
        let grace = self.inner.config.epoch_tick * 2;
        let work = async {
            let (instance, calls, born) = match prior {
                Some(prior) => prior,
                None => (caller.pre.instantiate(&mut store).await?, 0, Instant::now()),
            };
            let value = call(&mut store, &instance).await?;
            Ok::<_, wasmtime::Error>((value, instance, calls.saturating_add(1), born))
        };
        let outcome = tokio::time::timeout(limits.wall_clock + grace, work).await;
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));

        let value = match outcome {
            Err(_elapsed) => Err(CallErrorKind::Deadline { limit: limits.wall_clock }),
            Ok(Err(error)) => Err(classify(&error, store.data(), limits, self.inner.config.max_wasm_stack)),
            Ok(Ok((value, instance, calls, born))) => check(&value, limits).map(|()| (value, instance, calls, born)),
        };
        match value {
            Ok((value, instance, calls, born)) => {
                let kv_writes = store.data_mut().capabilities.kv.take_writes();
                let output = CallOutput { value, fuel_used, log: log.output(), duration: started.elapsed(), kv_writes };
                // Only a call that ended well leaves its instance for the next.
                if let (Some(instances), Some(reuse)) = (caller.warm, reuse) {
                    instances.put(&scope.trigger_id, Warm { store, instance, calls, born }, reuse);
                }
                Ok(output)
            }
            Err(kind) => Err(fail(kind, &log, fuel_used)),
        }
    }

    /// The capabilities of one call: what the scope's grant allows, served
    /// by this runtime's backends, denied where either is missing.
    fn capabilities(
        &self,
        caller: &Caller<'_>,
        scope: &CallScope,
        limits: &Limits,
        deadline: Instant,
        log: CallLog,
    ) -> CallCapabilities {
        let backends = &self.inner.backends;
        let kv = match &backends.kv {
            Some(backend) if scope.grant.key_value => TriggerKv::granted(Arc::clone(backend), &scope.trigger_id, limits.kv),
            _ => TriggerKv::denied(),
        };
        let http = self.outbound_http(caller.label, caller.connections, scope, limits, deadline);
        CallCapabilities { log, kv, http }
    }

    /// Outbound HTTP within `scope`'s grant, until `deadline`: a call's, or
    /// the host's own on a plugin's behalf (an OAuth2 token exchange).
    pub(crate) fn outbound_http(
        &self,
        label: &str,
        connections: &Arc<tokio::sync::Semaphore>,
        scope: &CallScope,
        limits: &Limits,
        deadline: Instant,
    ) -> OutboundHttp {
        match &self.inner.backends.outbound {
            Some(outbound) if !scope.grant.outbound.is_empty() => OutboundHttp::granted(
                OutboundScope {
                    outbound: Arc::clone(outbound),
                    origins: scope.grant.outbound.clone(),
                    limits: limits.outbound,
                    plugin: label.to_owned(),
                    connections: Arc::clone(connections),
                },
                deadline,
            ),
            _ => OutboundHttp::denied(),
        }
    }
}

/// Maps a wasmtime error to the limit or fault behind it.
fn classify(error: &wasmtime::Error, state: &HostState, limits: &Limits, max_stack: usize) -> CallErrorKind {
    if state.deadline_hit || error.downcast_ref::<DeadlineReached>().is_some() {
        return CallErrorKind::Deadline { limit: limits.wall_clock };
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => CallErrorKind::OutOfFuel { limit: limits.fuel },
            Trap::StackOverflow => CallErrorKind::StackOverflow { limit: max_stack },
            Trap::Interrupt => CallErrorKind::Deadline { limit: limits.wall_clock },
            // A denied memory.grow makes the guest abort (Rust's allocator
            // calls `unreachable`): the limiter's record names the real cause.
            _ if state.limiter.denied.is_some() => CallErrorKind::Memory { limit: limits.memory_bytes },
            other => CallErrorKind::Trap { message: other.to_string() },
        };
    }
    if state.limiter.denied.is_some() {
        return CallErrorKind::Memory { limit: limits.memory_bytes };
    }
    if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
        return CallErrorKind::Overloaded("instance pool exhausted".into());
    }
    // Hostcall fuel runs out while lifting what the guest hands the host,
    // whether as an export's result or as an import's arguments (then
    // wasmtime wraps it in a backtrace). Its error type is private to
    // wasmtime, so the cause is found by its message anywhere in the chain.
    if error.chain().any(|cause| cause.to_string().contains(HOSTCALL_FUEL_EXHAUSTED)) {
        return CallErrorKind::OutputTooLarge {
            detail: format!("the guest passed more than {} bytes to the host in one crossing", limits.max_output_bytes),
        };
    }
    // Anything else the guest caused while being lifted or lowered (an
    // out-of-bounds pointer, invalid UTF-8, a bad discriminant) is a guest
    // fault. Its text may quote guest-chosen names: cut it.
    let message = error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
    CallErrorKind::Trap { message: crate::contract::cut_guest_text(message) }
}

/// Accepts any return value: exports whose results are bounded by their types.
pub(crate) fn unchecked<T>(_: &T, _: &Limits) -> Result<(), CallErrorKind> {
    Ok(())
}

pub(crate) fn check_run_output(output: &RunOutput, limits: &Limits) -> Result<(), CallErrorKind> {
    if output.events.len() > limits.max_events {
        return Err(CallErrorKind::OutputTooLarge {
            detail: format!("{} events, limit {}", output.events.len(), limits.max_events),
        });
    }
    let bytes = output.size_bytes();
    if bytes > limits.max_output_bytes {
        return Err(CallErrorKind::OutputTooLarge {
            detail: format!("{bytes} bytes of output, limit {}", limits.max_output_bytes),
        });
    }
    for (i, event) in output.events.iter().enumerate() {
        let invalid = |detail: String| Err(CallErrorKind::InvalidOutput { detail: format!("events[{i}]: {detail}") });
        if event.event_type.is_empty() || event.event_type.len() > MAX_EVENT_TYPE_LEN {
            return invalid(format!("event-type must be 1 to {MAX_EVENT_TYPE_LEN} bytes"));
        }
        if event.dedupe_key.as_ref().is_some_and(|k| k.is_empty() || k.len() > MAX_DEDUPE_KEY_LEN) {
            return invalid(format!("dedupe-key must be 1 to {MAX_DEDUPE_KEY_LEN} bytes"));
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&event.payload).is_err() {
            return invalid("payload is not JSON".into());
        }
    }
    Ok(())
}

pub(crate) fn check_response(response: &HttpResponse, limits: &Limits) -> Result<(), CallErrorKind> {
    let bytes = response.size_bytes();
    if bytes > limits.max_output_bytes {
        return Err(CallErrorKind::OutputTooLarge {
            detail: format!("{bytes} bytes of response, limit {}", limits.max_output_bytes),
        });
    }
    Ok(())
}
