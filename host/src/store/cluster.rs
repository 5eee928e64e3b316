//! Nodes, their heartbeats and their leases, and component bytes shared
//! between nodes (PostgreSQL only: on SQLite one node has them on disk).

use super::dialect::{Dialect, Portable, json_array};
use super::{Store, StoreError};

/// A node as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct NodeRow {
    /// `node_<hex>`, new at every start.
    pub id: String,
    /// Where it listens.
    pub address: String,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// Its last heartbeat (Unix ms).
    pub heartbeat_at_ms: i64,
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct LeaseRow {
    /// What it is for: `poll:<trigger>`, `deliver:<destination>`, `retention`.
    pub name: String,
    /// The node holding it.
    pub holder: String,
    /// When another node may take it (Unix ms).
    pub expires_at_ms: i64,
}

/// Proof, checked in a commit's transaction, that the committing node
/// still holds a lease: a node that lost it (stalled past its expiry while
/// another took over) commits nothing, so a poll's cursor never goes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    /// The lease.
    pub name: String,
    /// The node that must hold it.
    pub holder: String,
}

impl Store {
    /// Records a node's start or heartbeat.
    pub async fn node_heartbeat(&self, node: &NodeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, address, started_at_ms, heartbeat_at_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at_ms = excluded.heartbeat_at_ms",
        )
        .bind(&node.id)
        .bind(&node.address)
        .bind(node.started_at_ms)
        .bind(node.heartbeat_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Nodes whose heartbeat is newer than `since_ms`, and forgets the
    /// others (their leases have long expired).
    pub async fn live_nodes(&self, since_ms: i64) -> Result<Vec<NodeRow>, StoreError> {
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at_ms < $1").bind(since_ms).execute(self.pool()).await?;
        Ok(sqlx::query_as("SELECT * FROM nodes ORDER BY started_at_ms, id").fetch_all(self.pool()).await?)
    }

    /// Every lease, expired or not.
    pub async fn all_leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM leases ORDER BY name").fetch_all(self.pool()).await?)
    }

    /// Takes or renews lease `name` for `holder` until `until_ms`, if it is
    /// free, expired at `now_ms` or already `holder`'s. `Ok(None)`: `holder`
    /// holds it now; `Ok(Some(at))`: another node holds it until `at`.
    pub async fn claim_lease(&self, name: &str, holder: &str, now_ms: i64, until_ms: i64) -> Result<Option<i64>, StoreError> {
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at_ms) VALUES ($1, $2, $4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
             WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= $3
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now_ms)
        .bind(until_ms)
        .fetch_optional(self.pool())
        .await?;
        if held.is_some() {
            return Ok(None);
        }
        let until: Option<i64> =
            sqlx::query_scalar("SELECT expires_at_ms FROM leases WHERE name = $1").bind(name).fetch_optional(self.pool()).await?;
        // Gone meanwhile: free now.
        Ok(Some(until.unwrap_or(now_ms)))
    }

    /// Renews every lease of `names` that `holder` still holds; returns
    /// those it no longer holds (taken over after they expired).
    pub async fn renew_leases(&self, names: &[String], holder: &str, until_ms: i64) -> Result<Vec<String>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        static RENEW: Portable = Portable::new(
            "UPDATE leases SET expires_at_ms = $1 WHERE holder = $2 AND name IN (SELECT value FROM {json:$3}) RETURNING name",
        );
        let renewed: Vec<String> = sqlx::query_scalar(RENEW.sql(self.dialect))
            .bind(until_ms)
            .bind(holder)
            .bind(json_array(names)?)
            .fetch_all(self.pool())
            .await?;
        let renewed: std::collections::HashSet<String> = renewed.into_iter().collect();
        Ok(names.iter().filter(|name| !renewed.contains(*name)).cloned().collect())
    }

    /// Gives leases back: `names`; or, with `None`, every lease of `holder`
    /// and its node row (the node is leaving).
    pub async fn release_leases(&self, holder: &str, names: Option<&[String]>) -> Result<(), StoreError> {
        match names {
            None => {
                sqlx::query("DELETE FROM leases WHERE holder = $1").bind(holder).execute(self.pool()).await?;
                sqlx::query("DELETE FROM nodes WHERE id = $1").bind(holder).execute(self.pool()).await?;
            }
            Some(names) => {
                static RELEASE: Portable =
                    Portable::new("DELETE FROM leases WHERE holder = $1 AND name IN (SELECT value FROM {json:$2})");
                sqlx::query(RELEASE.sql(self.dialect)).bind(holder).bind(json_array(names)?).execute(self.pool()).await?;
            }
        }
        Ok(())
    }

    /// Sends `payload` to the nodes listening on `channel` when the
    /// statement commits (PostgreSQL; a no-op on SQLite).
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(());
        }
        // A function scan: pg_notify runs once, and its `void` result is
        // not among the columns read back.
        sqlx::query("SELECT 1 FROM pg_notify($1, $2) AS sent").bind(channel).bind(payload).execute(self.pool()).await?;
        Ok(())
    }

    /// Stores component bytes for the other nodes (PostgreSQL; a no-op on
    /// SQLite, whose one node has them on disk).
    pub async fn put_shared_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(());
        }
        sqlx::query("INSERT INTO plugin_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING")
            .bind(digest)
            .bind(bytes)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Component bytes another node stored (`NotFound` on SQLite).
    pub async fn shared_blob(&self, digest: &str) -> Result<Vec<u8>, StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Err(StoreError::NotFound);
        }
        Ok(sqlx::query_scalar("SELECT bytes FROM plugin_blobs WHERE digest = $1").bind(digest).fetch_one(self.pool()).await?)
    }

    /// Forgets component bytes no version uses any more.
    pub async fn remove_shared_blob(&self, digest: &str) -> Result<(), StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(());
        }
        sqlx::query("DELETE FROM plugin_blobs WHERE digest = $1 AND NOT EXISTS (SELECT 1 FROM plugin_versions WHERE digest = $1)")
            .bind(digest)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Checks `fence` inside a commit's transaction, locking the lease row
/// until the commit ends so it cannot change hands meanwhile.
pub(super) async fn check_fence(conn: &mut sqlx::AnyConnection, fence: &LeaseFence, now_ms: i64) -> Result<(), StoreError> {
    let held: Option<String> =
        sqlx::query_scalar("UPDATE leases SET holder = holder WHERE name = $1 AND holder = $2 AND expires_at_ms > $3 RETURNING name")
            .bind(&fence.name)
            .bind(&fence.holder)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(fence.name.clone())),
    }
}
