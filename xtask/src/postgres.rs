//! The PostgreSQL server the integration suite's second run uses: the one
//! named by `TRIGGERHOST_TEST_POSTGRES`, else the machine's own on
//! 127.0.0.1:5432 (started if installed and stopped), else one this
//! command installs from the distribution's packages and runs from a
//! directory under the target dir. Never skipped: a machine where none of
//! that works fails the test command, saying why.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The variable the test suite reads (see `host/tests/all/database.rs`).
pub(crate) const VAR: &str = "TRIGGERHOST_TEST_POSTGRES";

const MACHINE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The port of a server this command runs itself.
const OWN_PORT: u16 = 54329;

/// The URL of a running server with a database the tests may use.
pub(crate) fn ensure() -> Result<String> {
    if let Ok(url) = std::env::var(VAR)
        && !url.is_empty()
    {
        return Ok(url);
    }
    if accepts(5432) || start_machine_service() {
        ensure_database(5432, "test")?;
        return Ok(MACHINE_URL.to_owned());
    }
    eprintln!("xtask: no PostgreSQL on 127.0.0.1:5432; running one from the distribution's packages");
    start_own()?;
    ensure_database(OWN_PORT, "test")?;
    Ok(format!("postgres://postgres@127.0.0.1:{OWN_PORT}/test"))
}

/// Drops the schemas earlier runs left behind (a test or a benchmark
/// killed before its cleanup ran).
pub(crate) fn drop_leftover_schemas(url: &str) -> Result<()> {
    let sql = "DO $$ DECLARE s text; BEGIN
                 FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE 'th\\_test\\_%' OR nspname LIKE 'th\\_bench\\_%' LOOP
                   EXECUTE format('DROP SCHEMA %I CASCADE', s);
                 END LOOP;
               END $$";
    crate::run(Command::new(psql()).args(["-q", "-X", "-v", "ON_ERROR_STOP=1", url, "-c", sql]))
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).is_ok()
}

fn wait_for(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if accepts(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Debian's own cluster, installed but not running.
fn start_machine_service() -> bool {
    let started = Command::new("service").args(["postgresql", "start"]).status().is_ok_and(|s| s.success());
    started && wait_for(5432, Duration::from_secs(30))
}

/// The directory of `initdb` and `pg_ctl` (Debian keeps them off the PATH).
fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    versions.sort();
    versions.into_iter().rev().map(|v| v.join("bin")).find(|bin| bin.join("initdb").exists())
}

/// The distribution's `psql` beside `initdb`, else the one on the PATH.
fn psql() -> PathBuf {
    bin_dir().map(|dir| dir.join("psql")).filter(|path| path.exists()).unwrap_or_else(|| "psql".into())
}

/// Installs the server package if missing, then initialises and starts a
/// cluster of its own (trust auth, loopback only) under the target dir.
fn start_own() -> Result<()> {
    if bin_dir().is_none() {
        crate::run(Command::new("apt-get").args(["install", "-y", "-q", "postgresql"]).env("DEBIAN_FRONTEND", "noninteractive"))
            .context("installing PostgreSQL with apt-get")?;
    }
    let bin = bin_dir().context("PostgreSQL is installed but initdb was not found under /usr/lib/postgresql")?;
    let data = crate::target_dir().join("postgres-test");
    let path = data.to_string_lossy().into_owned();
    // initdb and the server refuse to run as root: they run as `postgres`.
    let as_postgres = |program: &Path, args: &[&str]| {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program).args(args);
        command
    };
    if !data.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&data)?;
        crate::run(Command::new("chown").args(["postgres:postgres"]).arg(&data))?;
        crate::run(&mut as_postgres(&bin.join("initdb"), &["-D", &path, "-U", "postgres", "--auth=trust"]))?;
    }
    let options = format!("-p {OWN_PORT} -c listen_addresses=127.0.0.1 -k {path}");
    let log = format!("{path}/server.log");
    crate::run(&mut as_postgres(&bin.join("pg_ctl"), &["-D", &path, "-o", &options, "-l", &log, "-w", "start"]))?;
    if !wait_for(OWN_PORT, Duration::from_secs(30)) {
        bail!("the PostgreSQL started under {path} does not accept connections; see {log}");
    }
    Ok(())
}

/// Creates the database if the server lacks it.
fn ensure_database(port: u16, name: &str) -> Result<()> {
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let exists = Command::new(psql())
        .args(["-tAX", &url, "-c", &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'")])
        .output()
        .context("running psql")?;
    if String::from_utf8_lossy(&exists.stdout).trim() != "1" {
        crate::run(Command::new(psql()).args(["-qX", &url, "-c", &format!("CREATE DATABASE {name}")]))?;
    }
    Ok(())
}
