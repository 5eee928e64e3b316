//! Destinations: where a trigger's events are pushed.

use super::dialect::Portable;
use super::{Store, StoreError};

/// A destination as stored (its secrets sealed).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DestinationRow {
    /// `dst_<hex>`.
    pub id: String,
    /// The trigger whose events it receives.
    pub trigger_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The signing secret, sealed.
    pub secret: String,
    /// The secret before the last rotation, sealed, while it still signs.
    pub previous_secret: Option<String>,
    /// Until when the previous secret signs too.
    pub previous_secret_until_ms: Option<i64>,
    /// JSON array of the event types it receives, or every type.
    pub event_types: Option<String>,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// One job at a time, in event order.
    #[sqlx(try_from = "super::Flag")]
    pub ordered: bool,
    /// Attempts in flight at once at most, over the host default.
    pub max_in_flight: Option<i64>,
    /// Attempts started per second at most.
    pub rate_per_s: Option<i64>,
    /// Since when every attempt has failed.
    pub failing_since_ms: Option<i64>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

/// Queue figures of one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DestinationCounts {
    /// Jobs waiting or being attempted.
    pub pending: i64,
    /// Jobs delivered.
    pub delivered: i64,
    /// Jobs dead-lettered.
    pub dead: i64,
}

impl Store {
    /// Stores a new destination.
    pub async fn insert_destination(&self, row: &DestinationRow) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO destinations (id, trigger_id, url, secret, previous_secret, previous_secret_until_ms, event_types,
                                       status, disabled_reason, ordered, max_in_flight, rate_per_s, failing_since_ms,
                                       last_error, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&row.id)
        .bind(&row.trigger_id)
        .bind(&row.url)
        .bind(&row.secret)
        .bind(&row.previous_secret)
        .bind(row.previous_secret_until_ms)
        .bind(&row.event_types)
        .bind(&row.status)
        .bind(&row.disabled_reason)
        .bind(i64::from(row.ordered))
        .bind(row.max_in_flight)
        .bind(row.rate_per_s)
        .bind(row.failing_since_ms)
        .bind(&row.last_error)
        .bind(row.created_at_ms)
        .bind(row.updated_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Writes back what an operator changes of a destination (not what
    /// attempts record), if its status is still `expected_status`: a
    /// destination an attempt disabled meanwhile is not silently enabled
    /// again by an unrelated change. `resumed` clears its failing time.
    /// Returns whether it was written.
    pub async fn update_destination(&self, row: &DestinationRow, expected_status: &str, resumed: bool) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE destinations SET url = $1, secret = $2, previous_secret = $3, previous_secret_until_ms = $4,
                    event_types = $5, status = $6, disabled_reason = $7, ordered = $8, max_in_flight = $9, rate_per_s = $10,
                    failing_since_ms = CASE WHEN $11 THEN NULL ELSE failing_since_ms END, updated_at_ms = $12
             WHERE id = $13 AND status = $14",
        )
        .bind(&row.url)
        .bind(&row.secret)
        .bind(&row.previous_secret)
        .bind(row.previous_secret_until_ms)
        .bind(&row.event_types)
        .bind(&row.status)
        .bind(&row.disabled_reason)
        .bind(i64::from(row.ordered))
        .bind(row.max_in_flight)
        .bind(row.rate_per_s)
        .bind(resumed)
        .bind(row.updated_at_ms)
        .bind(&row.id)
        .bind(expected_status)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One destination.
    pub async fn get_destination(&self, id: &str) -> Result<DestinationRow, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM destinations WHERE id = $1").bind(id).fetch_one(self.pool()).await?)
    }

    /// A trigger's destinations, oldest first.
    pub async fn list_destinations(&self, trigger_id: &str) -> Result<Vec<DestinationRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM destinations WHERE trigger_id = $1 ORDER BY created_at_ms, id")
            .bind(trigger_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Every destination, for the dispatcher at start.
    pub async fn all_destinations(&self) -> Result<Vec<DestinationRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM destinations ORDER BY id").fetch_all(self.pool()).await?)
    }

    /// Removes a destination with its jobs and their attempts.
    pub async fn delete_destination(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM destinations WHERE id = $1").bind(id).execute(self.pool()).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Pending, delivered and dead jobs of one destination.
    pub async fn destination_counts(&self, id: &str) -> Result<DestinationCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM deliveries WHERE destination_id = $1 GROUP BY status")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        let mut counts = DestinationCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "pending" => counts.pending = n,
                "delivered" => counts.delivered = n,
                _ => counts.dead += n,
            }
        }
        Ok(counts)
    }

    /// Pending jobs per destination (the queue depth), read from the
    /// pending-only index.
    pub async fn pending_counts(&self) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        static PENDING: Portable = Portable::new(
            "SELECT destination_id, COUNT(*) FROM deliveries {indexed_by:deliveries_due} WHERE status = 'pending'
             GROUP BY destination_id",
        );
        let rows: Vec<(String, i64)> = sqlx::query_as(PENDING.sql(self.dialect)).fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }
}
