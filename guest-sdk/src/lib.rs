//! The Rust SDK for triggerhost connectors, targeting contract
//! `triggerhost:connector@0.3.0`.
//!
//! A connector implements [`Connector`] on a unit struct and exports it with
//! [`export_connector!`]; `cargo build --release --target wasm32-wasip2` then
//! produces a component the host can load. A webhook connector writes
//! `describe`, `verify` and `receive`:
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
//!     fn verify(ctx: TriggerContext, req: WebhookRequest) -> Result<Verdict, ConnectorError> {
//!         let secret = ctx.require_secret()?;
//!         let signature = req.header("x-signature").unwrap_or_default();
//!         Ok(if signature::verify_hmac_sha256_hex(secret.as_bytes(), &[&req.body], signature) {
//!             Verdict::Accept
//!         } else {
//!             Verdict::Reject("bad signature".into())
//!         })
//!     }
//!     fn receive(_ctx: TriggerContext, req: WebhookRequest) -> Result<RunOutput, ConnectorError> {
//!         Ok(RunOutput::from_events(vec![Event::from_json_body("ping", req.body)?]))
//!     }
//! }
//!
//! export_connector!(Hello);
//! # fn main() {}
//! ```
//!
//! A polling connector writes `describe` and `poll`, and tells new items
//! from those already emitted with [`polling`]:
//!
//! ```no_run
//! use triggerhost_sdk::polling::{Dedupe, Item, Strategy, guest::new_events};
//! use triggerhost_sdk::*;
//!
//! struct Feed;
//!
//! impl Connector for Feed {
//!     fn describe() -> Manifest {
//!         ManifestBuilder::new("feed", "Feed", "0.1.0")
//!             .outbound_host("api.example.com")
//!             .key_value()
//!             .trigger(TriggerBuilder::polling("new_item", "New item"))
//!             .build()
//!     }
//!     fn poll(_ctx: TriggerContext, _tick: PollTick) -> Result<RunOutput, ConnectorError> {
//!         let list: Vec<serde_json::Value> = Request::get("https://api.example.com/items").send()?.error_for_status()?.json()?;
//!         let items = list.into_iter().filter_map(|item| {
//!             let id = item.get("id")?.as_str()?.to_owned();
//!             Some(Item { id, time_ms: None, event_type: "item".into(), payload: item })
//!         });
//!         Ok(RunOutput::from_events(new_events(&Dedupe::new(Strategy::SeenSet), items.collect(), 0)?))
//!     }
//! }
//!
//! export_connector!(Feed);
//! # fn main() {}
//! ```
//!
//! A connector whose registration at the provider expires reports
//! `expires_at_ms` from `on_enable` and writes `renew` (see
//! [`Connector::renew`]). One that registers a webhook writes `on_update`
//! and `sync` too, and may let triggers share a registration with
//! [`TriggerBuilder::shared`]. `plugins/` holds complete connectors.
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
        path: "../wit/0.3.0",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "triggerhost_sdk::bindings",
    });
}

#[cfg(feature = "guest")]
pub use bindings::triggerhost::connector::types::{
    AccessToken, Auth, CapabilityRequest, ConnectorError, Credentials, EnableInfo, ErrorCode, Event,
    Header, HttpResponse, Manifest, Oauth2Auth, PollTick, RegistrationChange, RunInput, RunOutput,
    SecretTextAuth, Sharing, Strategy, SyncReport, TriggerContext, TriggerDefinition, Verdict,
    WebhookRequest,
};
#[cfg(feature = "guest")]
pub use bindings::triggerhost::connector::{kv, outbound_http};

/// The contract version connectors built with this SDK implement.
pub const CONTRACT_VERSION: &str = "0.3.0";
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
        // Only a component exports: the export names
        // (`triggerhost:connector/plugin@0.3.0#run`) are not symbols a native
        // linker accepts, and a connector crate is also built natively for
        // its unit tests.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector_world!($connector with_types_in $crate::bindings);
        // Natively, the connector is still checked and its code counts as used.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(
            $crate::TriggerContext,
            $crate::RunInput,
        ) -> ::core::result::Result<$crate::RunOutput, $crate::ConnectorError> = <$connector as $crate::Connector>::run;
    };
}

/// The README's connector example, compiled as a doc test so it cannot rot.
#[cfg(all(doctest, feature = "guest"))]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
