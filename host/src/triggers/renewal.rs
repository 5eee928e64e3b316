//! One renewal of a trigger's provider subscription, and what `on-enable`
//! and `renew` share: a reported expiry is kept and its renewal scheduled;
//! a failure is recorded on the trigger.

use crate::connections::said_unauthorized;
use crate::contract::{ConnectorError, EnableInfo, ErrorCode};
use crate::failures::{call_failure, connector_failure};
use crate::runtime::{CallError, CallOutput};
use crate::store::now_ms;

use super::{TriggerError, Triggers, status};

/// How one renewal went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalOutcome {
    /// `renew` extended the subscription.
    Renewed,
    /// The provider had dropped the subscription; `on-enable` registered it again.
    Reenabled,
    /// It failed and is retried with backoff; the message says why.
    Failed(String),
    /// The trigger is no longer enabled.
    Skipped,
}

/// A lifecycle call that did not succeed.
pub(super) struct LifecycleFailure {
    /// For the trigger's `last_error`: `<export>: <why>`.
    pub(super) message: String,
    /// The connector said the subscription is gone.
    pub(super) gone: bool,
}

/// What `on-enable` or `renew` returned.
pub(super) type LifecycleCall = Result<CallOutput<Result<EnableInfo, ConnectorError>>, CallError>;

impl Triggers {
    /// Settles a lifecycle call (`on-enable`, `renew`, `on-update`, `sync`,
    /// `on-disable`): on success its kv writes are committed and what it
    /// returned is returned; a failure is recorded on trigger `id`.
    pub(super) async fn settle<T>(
        &self,
        id: &str,
        export: &str,
        call: Result<CallOutput<Result<T, ConnectorError>>, CallError>,
    ) -> Result<Result<T, LifecycleFailure>, TriggerError> {
        self.settle_on(Some(id), export, call).await
    }

    /// [`settle`](Self::settle), recording a failure on trigger `record_on`
    /// if there is one (a source's last trigger may be gone).
    pub(super) async fn settle_on<T>(
        &self,
        record_on: Option<&str>,
        export: &str,
        call: Result<CallOutput<Result<T, ConnectorError>>, CallError>,
    ) -> Result<Result<T, LifecycleFailure>, TriggerError> {
        let failure = match call {
            Ok(output) => match output.value {
                // What the call stored (say, the provider's hook id) counts
                // only if it is stored.
                Ok(value) => match self.store.commit_kv(&output.kv_writes).await {
                    Ok(()) => return Ok(Ok(value)),
                    Err(error) => LifecycleFailure { message: format!("{export}: {error}"), gone: false },
                },
                Err(error) => {
                    if let Some(id) = record_on {
                        self.record(id, connector_failure(export, &error, &output.log.text), output.fuel_used).await?;
                    }
                    LifecycleFailure { message: format!("{export}: {error}"), gone: error.code == ErrorCode::Gone }
                }
            },
            Err(error) => {
                if let Some(id) = record_on {
                    self.record(id, call_failure(&error), error.fuel_used).await?;
                }
                LifecycleFailure { message: format!("{export}: {}", error.kind), gone: false }
            }
        };
        Ok(Err(failure))
    }

    /// Keeps what `on-enable` or `renew` reported: the secrets the provider
    /// issued (sealed), and the expiry, with the next renewal scheduled
    /// ahead of it.
    pub(super) async fn keep(&self, id: &str, info: &EnableInfo, renewed: bool) -> Result<(), TriggerError> {
        if let Some(secrets) = &info.issued_secrets {
            let sealed = if secrets.is_empty() { None } else { Some(self.seal_issued(id, secrets)?) };
            self.store.set_issued_secrets(id, sealed.as_deref()).await?;
        }
        let expires_at_ms = info.expires_at_ms.and_then(|ms| i64::try_from(ms).ok());
        let renew_at = expires_at_ms.map(|expires| self.renewal.renew_at(now_ms(), expires));
        Ok(self.store.schedule_renewal(id, expires_at_ms, renew_at, renewed).await?)
    }

    /// After a renewal: serves the secrets it issued, if it issued any.
    async fn serve_issued(&self, id: &str, info: &EnableInfo) -> Result<(), TriggerError> {
        if info.issued_secrets.is_some() {
            self.go_live(self.get(id).await?)?;
        }
        Ok(())
    }

    /// `on-enable`, tried once more with a refreshed token when it says
    /// `unauthorized` on an OAuth2 connection.
    pub(super) async fn on_enable_retrying(
        &self,
        row: &crate::store::TriggerRow,
        loaded: &crate::registry::LoadedPlugin,
        context: crate::contract::TriggerContext,
    ) -> LifecycleCall {
        let enabled = loaded.plugin.on_enable(context.clone(), self.scope(&row.id, loaded)).await;
        if said_unauthorized(&enabled)
            && self.connections.refreshed_after_unauthorized(row.connection_id.as_deref(), &context).await
        {
            return match self.context(row) {
                Ok(fresh) => loaded.plugin.on_enable(fresh, self.scope(&row.id, loaded)).await,
                Err(_) => enabled,
            };
        }
        enabled
    }

    /// Renews trigger `id`'s subscription: `renew`, or `on-enable` again when
    /// the connector says the subscription is gone. A failure is recorded,
    /// counted and retried with backoff; the trigger stays enabled (its
    /// health shows the failure) until the operator disables it.
    pub async fn renew(&self, id: &str) -> Result<RenewalOutcome, TriggerError> {
        let _serialized = self.serialize(id).await;
        let row = self.get(id).await?;
        if row.status != status::ENABLED {
            return Ok(RenewalOutcome::Skipped);
        }
        let attempt = async {
            let loaded = self.registry.resolve_or_load(&row.plugin, row.plugin_version.as_deref()).await?;
            let context = self.context(&row)?;
            let mut renewed = loaded.plugin.renew(context.clone(), self.scope(id, &loaded)).await;
            if said_unauthorized(&renewed)
                && self.connections.refreshed_after_unauthorized(row.connection_id.as_deref(), &context).await
            {
                renewed = loaded.plugin.renew(self.context(&row)?, self.scope(id, &loaded)).await;
            }
            match self.settle(id, "renew", renewed).await? {
                Ok(info) => {
                    self.keep(id, &info, true).await?;
                    self.serve_issued(id, &info).await?;
                    return Ok(Ok(RenewalOutcome::Renewed));
                }
                Err(failure) if !failure.gone => return Ok(Err(failure.message)),
                Err(failure) => tracing::info!(trigger = %id, reason = %failure.message, "subscription gone; enabling again"),
            }
            let enabled = self.on_enable_retrying(&row, &loaded, context).await;
            Ok::<_, TriggerError>(match self.settle(id, "on-enable", enabled).await? {
                Ok(info) => {
                    self.keep(id, &info, true).await?;
                    self.serve_issued(id, &info).await?;
                    Ok(RenewalOutcome::Reenabled)
                }
                Err(failure) => Err(failure.message),
            })
        };
        let message = match attempt.await {
            Ok(Ok(outcome)) => return Ok(outcome),
            Ok(Err(message)) => message,
            Err(TriggerError::Store(error)) => return Err(TriggerError::Store(error)),
            Err(other) => format!("renew: {other}"),
        };
        let failures = self.store.renewal_state(id).await?.failures.saturating_add(1);
        self.store.renewal_failed(id, &message, self.renewal.retry_at(now_ms(), failures)).await?;
        tracing::warn!(trigger = %id, failures, error = %message, "renewal failed");
        Ok(RenewalOutcome::Failed(message))
    }
}
