//! The `Connector` trait and its bridge to the generated WIT exports.

use crate::bindings::exports::triggerhost::connector::plugin::Guest;
use crate::{
    ConnectorError, EnableInfo, ErrorCode, Manifest, PollTick, RegistrationChange, RunInput,
    RunOutput, SyncReport, TriggerContext, Verdict, WebhookRequest,
};

/// What a connector implements. Every method but `describe` has a default:
/// a webhook connector writes `describe`, `verify` and `receive`; a polling
/// connector writes `describe` and `poll`. The defaults fail closed: a
/// delivery is rejected unless `verify` is written, and an input whose
/// method is not written is an error.
///
/// Each call runs in a fresh instance: keep no state in statics, use the
/// [`kv`](crate::kv) store for anything that must outlive a call.
pub trait Connector {
    /// The connector's manifest: its name, version, capabilities and triggers.
    fn describe() -> Manifest;

    /// Called when a trigger is enabled, e.g. to register a webhook at the
    /// provider. By default there is nothing to do.
    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let _ = ctx;
        Ok(EnableInfo::never_expires())
    }

    /// Called ahead of the expiry `on_enable` (or the last `renew`)
    /// reported, to extend the subscription at the provider; returns the new
    /// expiry. Return an error with [`ErrorCode::Gone`] when the provider no
    /// longer knows the subscription (a 404 through
    /// [`Response::error_for_status`](crate::Response::error_for_status)
    /// is one): the host then calls `on_enable` to register again. Other
    /// errors are retried with backoff. By default renewing is enabling
    /// again.
    fn renew(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        Self::on_enable(ctx)
    }

    /// Called when the registration must follow a change: the trigger's
    /// config or connection was patched, or (for a shared registration) the
    /// union of the sharing triggers' events changed. `ctx` is as of now;
    /// `change` holds the previous config and the events added and removed.
    /// Update the provider's registration in place, so no delivery is
    /// missed. By default the registration is undone with the previous
    /// config and made again with the new one.
    fn on_update(ctx: TriggerContext, change: RegistrationChange) -> Result<EnableInfo, ConnectorError> {
        let previous = TriggerContext { config: change.previous_config, ..ctx.clone() };
        Self::on_disable(previous)?;
        Self::on_enable(ctx)
    }

    /// Called periodically, and when an operator asks, to check that the
    /// registration still exists and matches `ctx` at the provider: return
    /// [`SyncReport::InSync`], put a drifted registration back and return
    /// [`SyncReport::Repaired`], or return an error with [`ErrorCode::Gone`]
    /// when it no longer exists, and the host calls `on_enable` to register
    /// again (which should adopt a registration already pointing at
    /// `ctx.webhook_url` rather than create a second). By default nothing is
    /// checked: [`SyncReport::Unchecked`].
    fn sync(ctx: TriggerContext) -> Result<SyncReport, ConnectorError> {
        let _ = ctx;
        Ok(SyncReport::Unchecked)
    }

    /// Called when a trigger is disabled: undo `on_enable`. By default there
    /// is nothing to undo.
    fn on_disable(ctx: TriggerContext) -> Result<(), ConnectorError> {
        let _ = ctx;
        Ok(())
    }

    /// Decides whether a webhook delivery is authentic. The default rejects
    /// every delivery, so a connector that forgets to verify fails closed.
    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        let _ = (ctx, request);
        Ok(Verdict::Reject("this connector does not verify webhook deliveries".into()))
    }

    /// Turns a delivery that `verify` accepted into events (and, if wanted,
    /// the response for the sender).
    fn receive(ctx: TriggerContext, request: WebhookRequest) -> Result<RunOutput, ConnectorError> {
        let _ = (ctx, request);
        Err(ConnectorError::new(ErrorCode::BadRequest, "this connector does not take webhook deliveries"))
    }

    /// Turns a scheduled poll into events; see [`polling`](crate::polling).
    fn poll(ctx: TriggerContext, tick: PollTick) -> Result<RunOutput, ConnectorError> {
        let _ = (ctx, tick);
        Err(ConnectorError::new(ErrorCode::BadRequest, "this connector is not polled"))
    }

    /// Turns an accepted delivery or a poll tick into events. By default it
    /// hands a delivery to `receive` and a tick to `poll`; write it only to
    /// treat both alike.
    fn run(ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        match input {
            RunInput::Webhook(request) => Self::receive(ctx, request),
            RunInput::Poll(tick) => Self::poll(ctx, tick),
        }
    }
}

impl<T: Connector> Guest for T {
    fn describe() -> Manifest {
        T::describe()
    }

    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        T::on_enable(ctx)
    }

    fn renew(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        T::renew(ctx)
    }

    fn on_update(ctx: TriggerContext, change: RegistrationChange) -> Result<EnableInfo, ConnectorError> {
        T::on_update(ctx, change)
    }

    fn sync(ctx: TriggerContext) -> Result<SyncReport, ConnectorError> {
        T::sync(ctx)
    }

    fn on_disable(ctx: TriggerContext) -> Result<(), ConnectorError> {
        T::on_disable(ctx)
    }

    fn verify(ctx: TriggerContext, request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        T::verify(ctx, request)
    }

    fn run(ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        T::run(ctx, input)
    }
}
