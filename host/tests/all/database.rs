//! The database a test's hosts use. SQLite in the data dir by default; with
//! `TRIGGERHOST_TEST_POSTGRES` set to a server's URL (as `cargo xtask test`
//! does for its second run of this suite), a schema of its own on that
//! server, dropped when the test ends.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;

/// The variable naming the PostgreSQL server of the second run.
pub const POSTGRES_VAR: &str = "TRIGGERHOST_TEST_POSTGRES";

/// The machine's own server, for the cluster tests when the run names none.
pub const MACHINE_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server this run uses, if any.
pub fn postgres_base() -> Option<String> {
    std::env::var(POSTGRES_VAR).ok().filter(|url| !url.is_empty())
}

/// A schema of one test on the PostgreSQL server, shared by its hosts.
#[derive(Debug)]
pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// A new, empty schema.
    pub async fn create(base: &str) -> Arc<Schema> {
        let name = format!("th_test_{:016x}", getrandom::u64().expect("random"));
        let mut conn = sqlx::PgConnection::connect(base).await.expect("connect to the test PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test schema");
        Arc::new(Schema { base: base.to_owned(), name })
    }

    /// The URL a host connects with: the server, with the schema first on
    /// the search path.
    pub fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop runs outside any runtime the test may still be using.
        let (base, name) = (self.base.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                let drop = format!("SET lock_timeout = 10000; DROP SCHEMA IF EXISTS {name} CASCADE");
                tokio::time::timeout(Duration::from_secs(30), sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn))
                    .await
                    .ok()?
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop test schema {}; `cargo xtask test` drops leftovers", self.name);
        }
    }
}

/// A connection to `host`'s database, for tests that read or change it
/// behind the host's back. Its queries are written in the SQL both
/// backends share, with `$N` parameters.
pub async fn connect(host: &crate::host::Host) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = match &host.schema {
        Some(schema) => schema.url(),
        None => format!("sqlite://{}", host.data_dir.join("triggerhost.db").display()),
    };
    sqlx::AnyConnection::connect(&url).await.expect("open the host's database")
}

/// Takes the database's write lock on `conn`, in a transaction the caller
/// ends with `ROLLBACK`: SQLite's one writer lock, or on PostgreSQL every
/// table a webhook, a poll or a trigger change writes, locked against
/// writers (readers go on).
pub async fn hold_write_lock(conn: &mut sqlx::AnyConnection) {
    let statements: &[&'static str] = if conn.backend_name() == "PostgreSQL" {
        &["BEGIN", "LOCK TABLE events, trigger_stats, triggers, trigger_polls, kv_entries IN EXCLUSIVE MODE"]
    } else {
        &["BEGIN IMMEDIATE"]
    };
    for statement in statements {
        sqlx::query(*statement).execute(&mut *conn).await.expect("take the write lock");
    }
}
