//! Renewal state: when each trigger's provider subscription is renewed
//! next, and how its renewals went.

use std::collections::HashMap;

use serde::Serialize;

use super::{Store, StoreError, now_ms};

/// A trigger's renewal state (all empty before it first reports an expiry).
#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow, Serialize)]
pub struct RenewalState {
    /// When the next renewal or retry is due (Unix ms).
    pub renew_at_ms: Option<i64>,
    /// Renewals that succeeded.
    pub renewals: i64,
    /// Failures since the last success.
    pub failures: i64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// When the last renewal succeeded.
    pub last_renewed_at_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct KeyedState {
    trigger_id: String,
    #[sqlx(flatten)]
    state: RenewalState,
}

impl Store {
    /// Records a subscription that now expires at `expires_at_ms` (`None`:
    /// never), renewed next at `renew_at_ms`; clears the failures. `renewed`
    /// counts it as a renewal (rather than the first enable).
    pub async fn schedule_renewal(
        &self,
        trigger_id: &str,
        expires_at_ms: Option<i64>,
        renew_at_ms: Option<i64>,
        renewed: bool,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE triggers SET expires_at_ms = $1 WHERE id = $2")
            .bind(expires_at_ms)
            .bind(trigger_id)
            .execute(&mut *tx)
            .await?;
        let renewed_at = renewed.then(now_ms);
        sqlx::query(
            "INSERT INTO trigger_renewals (trigger_id, renew_at_ms, renewals, failures, last_error, last_renewed_at_ms)
             VALUES ($1, $2, $3, 0, NULL, $4)
             ON CONFLICT (trigger_id) DO UPDATE SET
                 renew_at_ms = $2, renewals = trigger_renewals.renewals + $3, failures = 0, last_error = NULL,
                 last_renewed_at_ms = COALESCE($4, trigger_renewals.last_renewed_at_ms)",
        )
        .bind(trigger_id)
        .bind(renew_at_ms)
        .bind(i64::from(renewed))
        .bind(renewed_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed renewal, retried at `retry_at_ms`.
    pub async fn renewal_failed(&self, trigger_id: &str, message: &str, retry_at_ms: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO trigger_renewals (trigger_id, renew_at_ms, failures, last_error) VALUES ($1, $2, 1, $3)
             ON CONFLICT (trigger_id) DO UPDATE SET renew_at_ms = $2, failures = trigger_renewals.failures + 1, last_error = $3",
        )
        .bind(trigger_id)
        .bind(retry_at_ms)
        .bind(message)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Enabled triggers whose renewal is due at `now_ms`, soonest first. A
    /// trigger with an expiry but no renewal row (the host stopped between
    /// enabling it and scheduling) is due `margin_ms` before it expires.
    pub async fn due_renewals(&self, now_ms: i64, margin_ms: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT t.id FROM triggers t LEFT JOIN trigger_renewals r ON r.trigger_id = t.id
             WHERE t.status = 'enabled' AND t.expires_at_ms IS NOT NULL
               AND COALESCE(r.renew_at_ms, t.expires_at_ms - $1) <= $2
             ORDER BY COALESCE(r.renew_at_ms, t.expires_at_ms - $1) LIMIT $3",
        )
        .bind(margin_ms)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A trigger's renewal state.
    pub async fn renewal_state(&self, trigger_id: &str) -> Result<RenewalState, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM trigger_renewals WHERE trigger_id = $1")
            .bind(trigger_id)
            .fetch_optional(self.pool())
            .await?
            .unwrap_or_default())
    }

    /// Every trigger's renewal state, by trigger id.
    pub async fn all_renewal_states(&self) -> Result<HashMap<String, RenewalState>, StoreError> {
        let rows: Vec<KeyedState> = sqlx::query_as("SELECT * FROM trigger_renewals").fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(|row| (row.trigger_id, row.state)).collect())
    }
}
