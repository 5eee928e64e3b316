//! Typed errors of loading and calling plugins.

use std::time::Duration;

use crate::capabilities::log::LogOutput;
use crate::contract::ManifestError;

/// Why a component could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Over the size cap.
    #[error("component is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// Not WebAssembly at all.
    #[error("not a WebAssembly binary (no \\0asm header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build with `--target wasm32-wasip2` \
         or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    /// One instance would hold more of the instance pool than a component
    /// may (see [`ComponentCaps`](super::ComponentCaps)).
    #[error("component instantiates {count} {what}, over the limit of {limit} per component")]
    TooComplex {
        /// `core instances`, `linear memories` or `tables`.
        what: &'static str,
        /// How many one instance would hold.
        count: u64,
        /// The cap.
        limit: usize,
    },
    /// Compiling took longer than the runtime allows.
    #[error("component did not compile within {limit:?}")]
    CompileTimeout {
        /// The compile timeout.
        limit: Duration,
    },
    /// The bytes do not compile.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// Imports something the host does not provide.
    #[error("component imports something triggerhost does not provide: {0}")]
    UnsupportedImport(String),
    /// Does not export the `triggerhost:connector` world.
    #[error("component does not implement the triggerhost:connector@0.1.0 world: {0}")]
    WrongWorld(String),
    /// `describe` failed.
    #[error("describe failed: {0}")]
    Describe(#[source] Box<CallError>),
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The host itself failed (not the component's fault).
    #[error("host error while loading: {0}")]
    Host(String),
}

/// A failed call into a plugin: which plugin and export, what went wrong, and
/// what the guest logged before it did.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}, {export}: {kind}")]
pub struct CallError {
    /// `name@version` of the plugin, or `<loading>` during `describe` at load.
    pub plugin: String,
    /// The export called (`verify`, `run`, ...).
    pub export: &'static str,
    /// What went wrong.
    pub kind: CallErrorKind,
    /// The guest's log up to the failure (a panic message lands here).
    pub log: LogOutput,
    /// Fuel consumed before the failure.
    pub fuel_used: u64,
}

/// What went wrong in a call. Each limit has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallErrorKind {
    /// Fuel ran out: too much computation.
    #[error("out of fuel ({limit} units)")]
    OutOfFuel {
        /// The fuel limit.
        limit: u64,
    },
    /// The wall-clock deadline passed.
    #[error("deadline of {limit:?} exceeded")]
    Deadline {
        /// The wall-clock limit.
        limit: Duration,
    },
    /// Linear memory would grow past the cap.
    #[error("memory limit of {limit} bytes exceeded")]
    Memory {
        /// The memory limit.
        limit: usize,
    },
    /// The wasm stack overflowed.
    #[error("wasm stack overflow (limit {limit} bytes)")]
    StackOverflow {
        /// The stack limit.
        limit: usize,
    },
    /// The call returned more than allowed.
    #[error("output too large: {detail}")]
    OutputTooLarge {
        /// Which bound and by how much.
        detail: String,
    },
    /// The call returned something malformed (a payload that is not JSON,
    /// an empty event type, ...).
    #[error("invalid output: {detail}")]
    InvalidOutput {
        /// What and where.
        detail: String,
    },
    /// The guest trapped (a panic, `unreachable`, a bad memory access, ...).
    #[error("guest trapped: {message}")]
    Trap {
        /// The trap, without host internals.
        message: String,
    },
    /// Too many calls in flight: shed, try again later.
    #[error("overloaded: {0}")]
    Overloaded(String),
    /// The host failed, not the guest.
    #[error("host error: {0}")]
    Host(String),
}

impl CallErrorKind {
    /// A stable kebab-case code for stats, logs and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            CallErrorKind::OutOfFuel { .. } => "out-of-fuel",
            CallErrorKind::Deadline { .. } => "deadline",
            CallErrorKind::Memory { .. } => "memory",
            CallErrorKind::StackOverflow { .. } => "stack-overflow",
            CallErrorKind::OutputTooLarge { .. } => "output-too-large",
            CallErrorKind::InvalidOutput { .. } => "invalid-output",
            CallErrorKind::Trap { .. } => "guest-trap",
            CallErrorKind::Overloaded(_) => "overloaded",
            CallErrorKind::Host(_) => "host-error",
        }
    }

    /// Whether a sandbox limit stopped the call (fuel, deadline, memory,
    /// stack, output size), as opposed to a fault of the guest or the host.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            CallErrorKind::OutOfFuel { .. }
                | CallErrorKind::Deadline { .. }
                | CallErrorKind::Memory { .. }
                | CallErrorKind::StackOverflow { .. }
                | CallErrorKind::OutputTooLarge { .. }
        )
    }

    /// Whether the same call may succeed later (a webhook sender should retry).
    pub fn is_retryable(&self) -> bool {
        matches!(self, CallErrorKind::Overloaded(_) | CallErrorKind::Host(_))
    }
}
