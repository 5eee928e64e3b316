//! Changes another node made: the live table follows the database, without
//! calling any connector (the node that made the change did).

use super::{Triggers, status};
use crate::store::{SOURCE_ID_PREFIX, StoreError};

impl Triggers {
    /// Serves trigger `id` as the database has it now: live if enabled
    /// (its plugin version loaded first, so its first delivery here finds
    /// it), dark otherwise or if it is gone.
    pub async fn reload(&self, id: &str) -> Result<(), StoreError> {
        let _serial = self.serialize(id).await;
        let row = match self.store.get_trigger(id).await {
            Ok(row) => row,
            Err(StoreError::NotFound) => {
                self.go_dark(id);
                self.forget(id);
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let source = row.source_id.clone();
        if row.status == status::ENABLED {
            // A plugin uploaded on another node is not known here yet.
            if self.registry.resolve(&row.plugin, None).is_err()
                && let Err(error) = self.registry.reload(&row.plugin).await
            {
                tracing::warn!(trigger = %id, %error, "the trigger's plugin cannot be loaded here");
            }
            if let Err(error) = self.registry.resolve_or_load(&row.plugin, row.plugin_version.as_deref()).await {
                tracing::warn!(trigger = %id, %error, "the trigger's plugin version cannot be loaded here");
            }
            if let Err(error) = self.go_live(row) {
                tracing::error!(trigger = %id, %error, "cannot serve the trigger another node enabled");
                self.go_dark(id);
            }
        } else {
            self.go_dark(id);
        }
        if let Some(source) = source
            && let Err(error) = self.refresh_source(&source).await
        {
            tracing::warn!(%source, %error, "cannot refresh the trigger's source");
        }
        Ok(())
    }

    /// Reloads every trigger whose stored row differs from the one served
    /// (an announcement missed), and drops those gone.
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        let rows = self.store.list_triggers().await?;
        let mut stale = Vec::new();
        for row in &rows {
            let live = self.live(&row.id);
            let differs = match &live {
                Some(live) => row.status != status::ENABLED || live.row.updated_at_ms != row.updated_at_ms,
                None => row.status == status::ENABLED,
            };
            if differs {
                stale.push(row.id.clone());
            }
        }
        let stored: std::collections::HashSet<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        for live in self.all_live() {
            let id = &live.row.id;
            if !id.starts_with(SOURCE_ID_PREFIX) && !stored.contains(id.as_str()) {
                stale.push(id.clone());
            }
        }
        for id in stale {
            self.reload(&id).await?;
        }
        Ok(())
    }
}
