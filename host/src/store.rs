//! Durable state via sqlx, on SQLite (WAL, one file under the data dir,
//! the embedded default) or PostgreSQL (several nodes on one database).
//! One implementation serves both: the queries are written in the SQL the
//! two share, with `$N` parameters, and the few that cannot be are built
//! per backend by [`dialect`]. Multi-row changes run in transactions;
//! migrations, one set per backend, are embedded and run at start.

mod cluster;
mod committer;
mod connections;
mod deliveries;
mod destinations;
mod dialect;
mod events;
mod kv;
mod logs;
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

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;

pub use cluster::{LeaseFence, LeaseRow, NodeRow};
pub use committer::{Committer, OnStored};
pub use connections::{ConnectionRow, OAuthAppRow};
pub use deliveries::{AttemptRecord, AttemptRow, DeliveryFilter, DeliveryRow, DueJob, JobOutcome, ReplayScope, job_status};
pub use destinations::{DestinationCounts, DestinationRow};
pub use dialect::Dialect;
pub use events::{CommitOutcome, DeliveryCommit, EventRow, NewEvent};
pub use kv::KvEntryView;
pub use logs::{LogRow, NewLog};
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
    /// The database stayed locked past the busy timeout, or PostgreSQL
    /// gave up on a lock or a conflicting transaction.
    #[error("the database is busy")]
    Busy,
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The writes would take a trigger past its kv quota.
    #[error("kv quota: {0}")]
    Quota(String),
    /// The commit was fenced by a lease this node no longer holds: another
    /// node took the job over, and commits it.
    #[error("lease {0} is held by another node now")]
    LeaseLost(String),
    /// Anything else; the message is for logs, not for API responses.
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut => StoreError::Busy,
            sqlx::Error::Database(db) if db.code().is_some_and(|code| is_busy(&code)) => StoreError::Busy,
            _ => StoreError::Database(error.to_string()),
        }
    }
}

/// PostgreSQL's serialization failure, deadlock and lock timeout, and
/// SQLite's SQLITE_BUSY (5) and SQLITE_LOCKED (6) with extended codes.
fn is_busy(code: &str) -> bool {
    matches!(code, "40001" | "40P01" | "55P03")
        || (code.len() < 5 && code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, 5 | 6)))
}

/// The store: a connection pool on the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Connections that commit without waiting for the disk, for records
    /// whose loss costs a repeat and nothing else: a delivery attempt not
    /// recorded is attempted again, with the same `webhook-id`. On SQLite
    /// one connection with `synchronous=NORMAL`, whose commits become
    /// durable with the next commit of the main pool (which syncs the whole
    /// WAL); on PostgreSQL `synchronous_commit=off`.
    relaxed: AnyPool,
    dialect: Dialect,
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
    /// Opens the database at `url` (`sqlite://...`, created if missing, or
    /// `postgres://...`) and runs the migrations. On PostgreSQL the
    /// migrator holds an advisory lock, so nodes starting at once migrate
    /// one after the other.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)
            .ok_or_else(|| StoreError::Database("the database URL is neither sqlite:// nor postgres://".into()))?;
        let acquire_timeout = busy_timeout.max(Duration::from_secs(1));
        let (pool, relaxed) = match dialect {
            Dialect::Sqlite => open_sqlite(url, busy_timeout, acquire_timeout).await?,
            Dialect::Postgres => open_postgres(url, busy_timeout, acquire_timeout).await?,
        };
        let migrator = match dialect {
            Dialect::Sqlite => sqlx::migrate!("../migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("../migrations/postgres"),
        };
        migrator.run(&pool).await.map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        Ok(Store { pool, relaxed, dialect, write_turns: std::sync::Arc::default() })
    }

    /// The pool, for the modules of this store.
    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which SQL the database speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Begins a transaction that writes. SQLite takes the write lock at
    /// once (`BEGIN IMMEDIATE`): a transaction that reads first and writes
    /// later would fail on a lock, not wait for it.
    async fn begin_write<'p>(&self, pool: &'p AnyPool) -> Result<sqlx::Transaction<'p, sqlx::Any>, StoreError> {
        Ok(match self.dialect {
            Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => pool.begin().await?,
        })
    }

    /// Waits for this process's turn to write, on SQLite. SQLite lets one
    /// writer in at a time and its busy handler is not fair: the group
    /// committer, which begins its next batch as soon as the last one
    /// commits, could keep every other writer (an operator creating a
    /// trigger) waiting past the busy timeout. Tokio's mutex serves writers
    /// in the order they came. PostgreSQL locks rows, not the database, and
    /// queues its waiters itself: there, no turn is taken.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.dialect {
            Dialect::Sqlite => Some(self.write_turns.lock().await),
            Dialect::Postgres => None,
        }
    }

    /// Closes every connection (used at shutdown).
    pub async fn close(&self) {
        self.relaxed.close().await;
        self.pool.close().await;
    }
}

/// The SQLite pools: eight connections that sync on commit, and the one
/// relaxed connection.
async fn open_sqlite(url: &str, busy_timeout: Duration, acquire_timeout: Duration) -> Result<(AnyPool, AnyPool), StoreError> {
    let native = SqliteConnectOptions::from_str(url)?;
    create_private(native.get_filename())?;
    // FULL: a commit is on disk before the 2xx that acknowledges it, so an
    // acknowledged event survives a crash or power loss. 16 MiB of page
    // cache per connection (the default is 2 MiB): the events indexes
    // outgrow 2 MiB quickly, and every page that falls out is read again on
    // the next insert near it.
    let busy_ms = busy_timeout.as_millis();
    let pragmas = |relaxed: bool| {
        vec![
            "PRAGMA journal_mode = WAL".to_owned(),
            format!("PRAGMA synchronous = {}", if relaxed { "NORMAL" } else { "FULL" }),
            "PRAGMA foreign_keys = ON".to_owned(),
            "PRAGMA cache_size = -16384".to_owned(),
            format!("PRAGMA busy_timeout = {busy_ms}"),
        ]
    };
    open_pools(&with_create_mode(url), (8, 1), acquire_timeout, pragmas).await
}

/// The PostgreSQL pools. A statement waits for a lock at most the busy
/// timeout, as SQLite's busy handler does, and then fails as `Busy`.
async fn open_postgres(url: &str, busy_timeout: Duration, acquire_timeout: Duration) -> Result<(AnyPool, AnyPool), StoreError> {
    let lock_ms = busy_timeout.as_millis();
    let settings = |relaxed: bool| {
        let synchronous_commit = if relaxed { "off" } else { "on" };
        vec![format!("SET lock_timeout = {lock_ms}"), format!("SET synchronous_commit = {synchronous_commit}")]
    };
    open_pools(url, (16, 2), acquire_timeout, settings).await
}

/// The main pool and the relaxed one, of `sizes` connections, each
/// connection set up with `settings(relaxed)` as it opens (the settings
/// are per connection).
async fn open_pools(
    url: &str,
    sizes: (u32, u32),
    acquire_timeout: Duration,
    settings: impl Fn(bool) -> Vec<String>,
) -> Result<(AnyPool, AnyPool), StoreError> {
    let pool = |size: u32, relaxed: bool| {
        AnyPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(acquire_timeout)
            .after_connect(run_on_connect(settings(relaxed)))
            .connect(url)
    };
    Ok((pool(sizes.0, false).await?, pool(sizes.1, true).await?))
}

/// What a pool runs on each connection it opens, before handing it out.
type OnConnect<'c> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// A pool's `after_connect` that runs `statements` (settings of ours,
/// never input) in order.
fn run_on_connect(
    statements: Vec<String>,
) -> impl for<'c> Fn(&'c mut sqlx::AnyConnection, sqlx::pool::PoolConnectionMetadata) -> OnConnect<'c> + Send + Sync + 'static {
    let statements = std::sync::Arc::new(statements);
    move |conn, _| {
        let statements = std::sync::Arc::clone(&statements);
        Box::pin(async move {
            for statement in statements.iter() {
                sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&mut *conn).await?;
            }
            Ok(())
        })
    }
}

/// The SQLite URL with `mode=rwc` (create the file if missing) unless it
/// names a mode itself.
fn with_create_mode(url: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
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

/// `VALUES ($1, $2), ($3, $4)` for `rows` rows of `columns` values each:
/// a multi-row insert or update, its values bound in row order. Read as a
/// subquery (`FROM (VALUES ...) AS v`), its columns are `column1`, ... on
/// both backends.
fn values_list(rows: usize, columns: usize) -> String {
    let mut sql = String::from("VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// A yes-or-no column: an integer, 0 or 1, on both backends (SQLite has no
/// boolean type, and one column type keeps one query for both).
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
struct Flag(i64);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
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
