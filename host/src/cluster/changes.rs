//! Propagation: a node that changes what the nodes serve (a trigger, a
//! plugin's active version or grants, a trigger's destinations, a
//! connection's credentials) announces
//! it with PostgreSQL's NOTIFY after its commit; every other node LISTENs
//! and reloads that one thing from the database. Announcements can be
//! missed (a listener reconnecting), so every node also reconciles
//! everything periodically, and at once after a reconnect.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::Cluster;

/// The NOTIFY channel.
const CHANNEL: &str = "triggerhost_changes";

/// What changed. Payloads are ids the host made, never operator text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A trigger was created, patched, enabled, disabled or deleted.
    Trigger(String),
    /// A plugin's active version or grants changed, or a version came.
    Plugin(String),
    /// A trigger's destinations changed.
    Destinations(String),
    /// A connection was created, changed, refreshed or deleted.
    Connection(String),
}

impl Change {
    fn encode(&self) -> String {
        match self {
            Change::Trigger(id) => format!("trigger {id}"),
            Change::Plugin(name) => format!("plugin {name}"),
            Change::Destinations(trigger) => format!("destinations {trigger}"),
            Change::Connection(id) => format!("connection {id}"),
        }
    }

    fn decode(text: &str) -> Option<Change> {
        let (kind, id) = text.split_once(' ')?;
        let id = id.to_owned();
        match kind {
            "trigger" => Some(Change::Trigger(id)),
            "plugin" => Some(Change::Plugin(id)),
            "destinations" => Some(Change::Destinations(id)),
            "connection" => Some(Change::Connection(id)),
            _ => None,
        }
    }
}

/// A future the applier returns.
pub type Applying<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a node does with changes made elsewhere.
pub trait ApplyChanges: Send + Sync + 'static {
    /// Reloads the one thing that changed.
    fn apply(&self, change: Change) -> Applying<'_>;
    /// Compares everything served with the database.
    fn reconcile(&self) -> Applying<'_>;
}

impl Cluster {
    /// Tells the other nodes about `change` (after it is committed).
    pub async fn announce(&self, change: Change) {
        if !self.shared {
            return;
        }
        let payload = format!("{} {}", self.node.id, change.encode());
        if let Err(error) = self.store.notify(CHANNEL, &payload).await {
            // The others' reconcile picks it up within its period.
            tracing::warn!(%error, ?change, "cannot announce a change");
        }
    }

    /// Applies the other nodes' changes with `applier`, as they come and
    /// every reconcile period, for as long as the node runs.
    pub fn follow(self: &Arc<Self>, applier: Arc<dyn ApplyChanges>) {
        if !self.shared {
            return;
        }
        let cluster = Arc::clone(self);
        tokio::spawn(async move {
            let mut reconcile = tokio::time::interval(cluster.settings.reconcile);
            reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let mut listener = match sqlx::postgres::PgListener::connect(&cluster.database_url).await {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for other nodes' changes; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(error) = listener.listen(CHANNEL).await {
                    tracing::warn!(%error, "cannot listen for other nodes' changes; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                // Whatever was announced before the listener was up.
                applier.reconcile().await;
                loop {
                    tokio::select! {
                        received = listener.try_recv() => match received {
                            Ok(Some(notification)) => {
                                let Some((from, change)) = notification.payload().split_once(' ') else { continue };
                                if from == cluster.node.id {
                                    continue;
                                }
                                if let Some(change) = Change::decode(change) {
                                    applier.apply(change).await;
                                }
                            }
                            // The connection dropped: announcements may be lost.
                            Ok(None) => applier.reconcile().await,
                            Err(error) => {
                                tracing::warn!(%error, "lost the listener for other nodes' changes");
                                break;
                            }
                        },
                        _ = reconcile.tick() => applier.reconcile().await,
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn changes_read_back_as_written_and_nothing_else_reads() {
        for change in [Change::Trigger("trg_1".into()), Change::Plugin("p".into()), Change::Destinations("trg_2".into()), Change::Connection("con_1".into())] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("drop everything"), None);
        assert_eq!(Change::decode("trigger"), None);
    }
}
