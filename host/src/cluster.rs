//! Several nodes on one PostgreSQL database. Every node takes webhooks; a
//! job that must run on one node at a time (a trigger's polls, a
//! destination's deliveries, the sweeps) runs on the node holding its
//! lease, which it renews while it lives and gives back when it stops; a
//! node that dies loses its leases when they expire. Changes an operator
//! makes on one node reach the others through [`changes`].
//!
//! On SQLite there is one node: every lease is its own, nothing is
//! announced, and nothing here touches the database.

pub mod changes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::{LeaseFence, LeaseRow, NodeRow, Store, StoreError, now_ms};

/// How leases and propagation run (`[cluster]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSettings {
    /// How long a lease lasts unless renewed: the longest a job stays
    /// without a node after its node dies.
    pub lease: Duration,
    /// How often every node compares what it serves with the database, in
    /// case an announcement was missed (the listener reconnecting).
    pub reconcile: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings { lease: Duration::from_secs(15), reconcile: Duration::from_secs(5) }
    }
}

/// This node, and the leases it holds.
#[derive(Debug)]
pub struct Cluster {
    node: NodeRow,
    store: Store,
    settings: ClusterSettings,
    /// Whether other nodes may share the database (PostgreSQL).
    shared: bool,
    /// The leases this node holds, renewed by its heartbeat, each with the
    /// time until which its last claim or renewal vouches for it: half a
    /// lease after that write, so always before the database lets another
    /// node take it.
    held: Mutex<HashMap<String, Instant>>,
    /// Set while the node stops: it claims nothing more.
    leaving: std::sync::atomic::AtomicBool,
    /// The database URL, for the listener's own connection.
    database_url: String,
}

/// A lease that could not be claimed because the database failed.
fn log_claim_failure(lease: &str, error: &StoreError) {
    tracing::warn!(%lease, %error, "cannot claim a lease; the job waits for its next turn");
}

impl Cluster {
    /// Joins the cluster on `store` as node `id` listening at `address`,
    /// and starts its heartbeat (on a shared database).
    pub async fn join(
        store: Store,
        database_url: &str,
        id: String,
        address: String,
        settings: ClusterSettings,
    ) -> Result<Arc<Cluster>, StoreError> {
        let now = now_ms();
        let node = NodeRow { id, address, started_at_ms: now, heartbeat_at_ms: now };
        let shared = store.dialect() == crate::store::Dialect::Postgres;
        let cluster = Arc::new(Cluster {
            node,
            store,
            settings,
            shared,
            held: Mutex::default(),
            leaving: std::sync::atomic::AtomicBool::new(false),
            database_url: database_url.to_owned(),
        });
        if shared {
            cluster.store.node_heartbeat(&cluster.node).await?;
            let weak = Arc::downgrade(&cluster);
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(settings.lease / 3);
                beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                beat.tick().await;
                loop {
                    beat.tick().await;
                    let Some(cluster) = weak.upgrade() else { return };
                    cluster.heartbeat().await;
                }
            });
        }
        Ok(cluster)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node.id
    }

    /// Whether other nodes may share the database.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The settings.
    pub fn settings(&self) -> ClusterSettings {
        self.settings
    }

    fn until(&self) -> i64 {
        now_ms().saturating_add(i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX))
    }

    /// Takes or renews `lease`; whether this node holds it now. Always true
    /// on a database no other node shares.
    pub async fn claim(&self, lease: &str) -> bool {
        self.try_claim(lease).await.is_ok()
    }

    /// [`Cluster::claim`], saying when to try again when another node
    /// holds the lease: `Err(Some(at))` when it expires (Unix ms) unless
    /// renewed, `Err(None)` when the database did not answer. A lease this
    /// node claimed or renewed recently is held without asking the
    /// database again.
    pub async fn try_claim(&self, lease: &str) -> Result<(), Option<i64>> {
        if !self.shared {
            return Ok(());
        }
        if self.leaving.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(None);
        }
        if self.held.lock().unwrap_or_else(|p| p.into_inner()).get(lease).is_some_and(|until| Instant::now() < *until) {
            return Ok(());
        }
        let written = Instant::now();
        let claimed = match self.store.claim_lease(lease, &self.node.id, now_ms(), self.until()).await {
            Ok(None) => Ok(()),
            Ok(Some(until)) => Err(Some(until)),
            Err(error) => {
                log_claim_failure(lease, &error);
                Err(None)
            }
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if claimed.is_ok() {
            held.insert(lease.to_owned(), written + self.settings.lease / 2);
        } else {
            held.remove(lease);
        }
        claimed
    }

    /// What a commit made under `lease` must prove (on a shared database).
    pub fn fence(&self, lease: &str) -> Option<LeaseFence> {
        self.shared.then(|| LeaseFence { name: lease.to_owned(), holder: self.node.id.clone() })
    }

    /// Gives `lease` back (the job is gone from this node).
    pub async fn release(&self, lease: &str) {
        if !self.shared || self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(lease).is_none() {
            return;
        }
        if let Err(error) = self.store.release_leases(&self.node.id, Some(&[lease.to_owned()])).await {
            tracing::warn!(%lease, %error, "cannot give a lease back; it expires");
        }
    }

    /// Renews this node's heartbeat and leases; forgets those another node
    /// took meanwhile.
    async fn heartbeat(&self) {
        let beat = NodeRow { heartbeat_at_ms: now_ms(), ..self.node.clone() };
        if let Err(error) = self.store.node_heartbeat(&beat).await {
            tracing::warn!(%error, "cannot record the node's heartbeat");
        }
        let names: Vec<String> = self.held.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        let written = Instant::now();
        match self.store.renew_leases(&names, &self.node.id, self.until()).await {
            Ok(lost) => {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                for lease in &lost {
                    tracing::warn!(%lease, "a lease expired before it was renewed; another node may hold it");
                    held.remove(lease);
                }
                for name in &names {
                    if let Some(until) = held.get_mut(name) {
                        *until = written + self.settings.lease / 2;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot renew the node's leases"),
        }
    }

    /// Stops claiming and gives every lease back, so other nodes take the
    /// jobs over at once instead of after the leases expire.
    pub async fn leave(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::SeqCst);
        if !self.shared {
            return;
        }
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Err(error) = self.store.release_leases(&self.node.id, None).await {
            tracing::warn!(%error, "cannot give the leases back; they expire");
        }
    }

    /// The nodes alive (a heartbeat within three lease periods) and every
    /// lease; on SQLite, this node and no lease.
    pub async fn overview(&self) -> Result<(Vec<NodeRow>, Vec<LeaseRow>), StoreError> {
        if !self.shared {
            return Ok((vec![NodeRow { heartbeat_at_ms: now_ms(), ..self.node.clone() }], Vec::new()));
        }
        let lease_ms = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        let nodes = self.store.live_nodes(now_ms().saturating_sub(lease_ms.saturating_mul(3))).await?;
        Ok((nodes, self.store.all_leases().await?))
    }
}
