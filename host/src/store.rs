//! Durable state in SQLite (WAL, one file under the data dir) via sqlx.
//! Multi-row changes run in transactions; migrations are embedded and run
//! at start.

mod committer;
mod connections;
mod deliveries;
mod destinations;
mod events;
mod kv;
mod paging;
mod plugins;
mod polls;
mod renewals;
mod retention;
mod sources;
mod stats;
mod triggers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use committer::{Committer, OnStored};
pub use connections::{ConnectionRow, OAuthAppRow};
pub use deliveries::{AttemptRecord, AttemptRow, DeliveryFilter, DeliveryRow, DueJob, JobOutcome, ReplayScope, job_status};
pub use destinations::{DestinationCounts, DestinationRow};
pub use events::{CommitOutcome, DeliveryCommit, EventRow, NewEvent};
pub use kv::KvEntryView;
pub use polls::{PollRecord, PollState};
pub use renewals::RenewalState;
pub use retention::RetentionOverride;
pub use sources::{SOURCE_ID_PREFIX, SourceKey, SourceRow};
pub use plugins::{PluginRow, PluginVersionRow, VersionDelete, VersionInsert};
pub use stats::{FailedCall, FailureRow, StatsRow, Tally};
pub use triggers::{TriggerPatch, TriggerRow};

/// A storage failure. `Busy` means try again later (503 with Retry-After).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database stayed locked past the busy timeout.
    #[error("the database is busy")]
    Busy,
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The writes would take a trigger past its kv quota.
    #[error("kv quota: {0}")]
    Quota(String),
    /// Anything else; the message is for logs, not for API responses.
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut => StoreError::Busy,
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| matches!(c.parse::<i32>().map(|c| c & 0xff), Ok(5 | 6))) =>
            {
                StoreError::Busy
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// The store: a connection pool on the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// One connection that commits without waiting for the disk
    /// (`synchronous=NORMAL`), for records whose loss costs a repeat and
    /// nothing else: a delivery attempt not recorded is attempted again,
    /// with the same `webhook-id`. Its commits become durable with the
    /// next commit of the main pool, which syncs the whole WAL.
    relaxed: SqlitePool,
    /// Whose turn it is to write; see [`Store::write_turn`].
    write_turns: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if missing) the database at `url` and runs migrations.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        create_private(options.get_filename())?;
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the 2xx that acknowledges it,
            // so an acknowledged event survives a crash or power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // 16 MiB of page cache per connection (the default is 2 MiB): the
            // events indexes outgrow 2 MiB quickly, and every page that falls
            // out is read again on the next insert near it.
            .pragma("cache_size", "-16384")
            .busy_timeout(busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(busy_timeout.max(Duration::from_secs(1)))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        let relaxed = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(busy_timeout.max(Duration::from_secs(1)))
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await?;
        Ok(Store { pool, relaxed, write_turns: std::sync::Arc::default() })
    }

    /// The pool, for the modules of this store.
    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Waits for this process's turn to write. SQLite lets one writer in at
    /// a time and its busy handler is not fair: the group committer, which
    /// begins its next batch as soon as the last one commits, could keep
    /// every other writer (an operator creating a trigger) waiting past the
    /// busy timeout. Tokio's mutex serves writers in the order they came.
    async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_turns.lock().await
    }

    /// Closes every connection (used at shutdown).
    pub async fn close(&self) {
        self.relaxed.close().await;
        self.pool.close().await;
    }
}

/// Creates a missing database file readable by its owner only (0600):
/// SQLite gives its WAL and shared-memory files the same mode.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    if path.as_os_str().is_empty() || path == std::path::Path::new(":memory:") || path.exists() {
        return Ok(());
    }
    match crate::private_file::create(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Database(format!("creating {}: {error}", path.display()))),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::time::Duration;

    use super::{Store, StoreError, TriggerRow};

    /// A store in a temp dir with plugin `p` and a trigger `id` of it.
    pub(crate) async fn store_with_trigger(id: &str) -> Result<(Store, tempfile::TempDir), StoreError> {
        let temp = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let store = Store::open(&format!("sqlite://{}", temp.path().join("t.db").display()), Duration::from_secs(5)).await?;
        sqlx::query("INSERT INTO plugins (name, active_version, created_at_ms, updated_at_ms) VALUES ('p', '1', 0, 0)")
            .execute(store.pool())
            .await?;
        let row = TriggerRow {
            id: id.into(),
            plugin: "p".into(),
            plugin_version: None,
            trigger_name: "t".into(),
            config: "{}".into(),
            secret: None,
            poll_interval_s: None,
            status: "disabled".into(),
            last_error: None,
            expires_at_ms: None,
            issued_secrets: None,
            connection_id: None,
            source_id: None,
            synced_at_ms: None,
            sync_error: None,
            filters: None,
            retention_s: None,
            retention_events: None,
            retry_at_ms: None,
            retry_failures: 0,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        store.insert_trigger(&row).await?;
        Ok((store, temp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ack-after-commit holds only if every connection the committer may
    /// use syncs on commit: read the setting on all of them at once.
    #[tokio::test]
    async fn every_pooled_connection_commits_with_synchronous_full() -> Result<(), StoreError> {
        let temp = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let url = format!("sqlite://{}", temp.path().join("t.db").display());
        let store = Store::open(&url, Duration::from_secs(5)).await?;
        let mut held = Vec::new();
        for _ in 0..store.pool().options().get_max_connections() {
            let mut connection = store.pool().acquire().await?;
            let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *connection).await?;
            assert_eq!(synchronous, 2, "FULL is 2");
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *connection).await?;
            assert_eq!(journal, "wal");
            held.push(connection);
        }
        assert_eq!(held.len(), 8);
        Ok(())
    }
}
