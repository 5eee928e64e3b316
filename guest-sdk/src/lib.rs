//! The Rust SDK for triggerhost connectors.
//!
//! A connector implements [`Connector`] on a unit struct and exports it with
//! [`export_connector!`]; `cargo build --release --target wasm32-wasip2` then
//! produces a component the host can load. See `plugins/standard-webhooks`
//! for a complete connector.
//!
//! ```no_run
//! use triggerhost_sdk::*;
//!
//! struct Hello;
//!
//! impl Connector for Hello {
//!     fn describe() -> Manifest {
//!         ManifestBuilder::new("hello", "Hello", "0.1.0")
//!             .trigger(TriggerBuilder::webhook("ping", "Ping"))
//!             .build()
//!     }
//!     fn verify(_ctx: TriggerContext, _req: WebhookRequest) -> Result<Verdict, ConnectorError> {
//!         Ok(Verdict::Accept)
//!     }
//!     fn run(_ctx: TriggerContext, _input: RunInput) -> Result<RunOutput, ConnectorError> {
//!         Ok(RunOutput::from_events(vec![Event::json("ping", &serde_json::json!({}))?]))
//!     }
//! }
//!
//! export_connector!(Hello);
//! # fn main() {}
//! ```
//!
//! Without the default `guest` feature only the pure helpers are built:
//! [`naming`], [`polling`] (its strategies), [`schema`] and [`signature`].

pub mod naming;
pub mod polling;
pub mod schema;
pub mod signature;

#[cfg(feature = "guest")]
mod connector;
#[cfg(feature = "guest")]
mod helpers;
#[cfg(feature = "guest")]
mod manifest;
#[cfg(feature = "guest")]
mod outbound;

#[cfg(feature = "guest")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated lowering of wide records
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/0.2.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "triggerhost_sdk::bindings",
    });
}

#[cfg(feature = "guest")]
pub use bindings::triggerhost::connector::types::{
    CapabilityRequest, ConnectorError, EnableInfo, ErrorCode, Event, Header, HttpResponse,
    Manifest, PollTick, RunInput, RunOutput, Strategy, TriggerContext, TriggerDefinition, Verdict,
    WebhookRequest,
};
#[cfg(feature = "guest")]
pub use bindings::triggerhost::connector::{kv, outbound_http};

/// The contract version connectors built with this SDK implement.
pub const CONTRACT_VERSION: &str = "0.2.0";
#[cfg(feature = "guest")]
pub use connector::Connector;
#[cfg(feature = "guest")]
pub use helpers::log;
#[cfg(feature = "guest")]
pub use manifest::{ManifestBuilder, TriggerBuilder};
#[cfg(feature = "guest")]
pub use outbound::{Request, Response, registration, store};

/// Exports a type implementing [`Connector`] as the component's `connector`
/// world. Invoke it once, in the connector crate's root.
#[cfg(feature = "guest")]
#[macro_export]
macro_rules! export_connector {
    ($connector:ident) => {
        $crate::bindings::__export_connector_world!($connector with_types_in $crate::bindings);
    };
}

/// The README's connector example, compiled as a doc test so it cannot rot.
#[cfg(all(doctest, feature = "guest"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
