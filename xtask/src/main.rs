//! `cargo xtask <command>`: the project's build, test, bench and demo steps,
//! so a fresh clone needs nothing installed by hand beyond rustup.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod browser;
mod demo;
mod languages;
mod postgres;

const WASM_TARGET: &str = "wasm32-wasip2";

const USAGE: &str = "usage: cargo xtask <command>

commands:
  build-plugins  install the wasm32-wasip2 target if missing, build every connector
                 (plugins/) and test plugin (tests/plugins/) into
                 target/wasm32-wasip2/release/<crate_name>.wasm; directories with an
                 app.py (Python) or app.js (JavaScript) are built with componentize-py
                 or componentize-js, installed into cargo's target directory on first use
  test           build-plugins, install chromium and chromium-driver if missing
                 (the dashboard test drives a headless browser), then run every
                 test in the workspace, then the integration suite again on PostgreSQL (the server in
                 TRIGGERHOST_TEST_POSTGRES, else 127.0.0.1:5432, else one installed
                 and started from the distribution's packages) with the multi-node
                 tests (three hosts on one database)
  lint           clippy on the whole workspace, warnings denied
  bench          build-plugins, then the benchmarks (release build): the per-call
                 cost, the host's cost per outbound request, the poll scheduler
                 with 2,000 triggers polling every second, webhook ingest against a
                 native axum handler with and without a durable insert, and the
                 heavy (Python, JavaScript) connectors' compile, cached restart and
                 per-call cost, push delivery (webhook in to signed POST out)
                 against ingest alone, and ingest on 1, 2 and 3 nodes on one
                 PostgreSQL against the SQLite single node
  fuzz [SECS]    build-plugins, then each fuzz target (manifest validation, config
                 schemas, the HTTP request path) for SECS seconds (default 60),
                 printing executions and failures per target
  demo           build everything, start the server on 127.0.0.1:8080 with ./data,
                 upload the bundled connectors, create a sample trigger and print
                 the commands that send it a signed webhook and list its events";

fn main() -> Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "build-plugins" => build_plugins(),
        "test" => {
            build_plugins()?;
            // Not --all-targets: the benchmark is a harness-less binary that
            // would run in full, unoptimised, as a "test". Lint compiles it.
            // The multi-node tests need PostgreSQL: they run in its leg.
            let browser = browser::ensure()?;
            run(Command::new(cargo_bin())
                .args(["test", "--workspace", "--lib", "--bins", "--tests", "--", "--skip", "multinode::"])
                .envs(browser.clone())
                .current_dir(workspace_root()))?;
            cargo(&["test", "--workspace", "--doc"])?;
            // The whole integration suite again on PostgreSQL, with the
            // multi-node tests.
            let postgres = postgres::ensure()?;
            postgres::drop_leftover_schemas(&postgres)?;
            eprintln!("xtask: the integration suite again, on PostgreSQL ({postgres})");
            run(Command::new(cargo_bin())
                .args(["test", "-p", "triggerhost", "--test", "all"])
                .env(postgres::VAR, &postgres)
                .envs(browser)
                .current_dir(workspace_root()))
        }
        "lint" => cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
        "bench" => {
            build_plugins()?;
            cargo(&["bench", "-p", "triggerhost", "--bench", "call", "--bench", "outbound", "--bench", "scheduler", "--bench", "ingest", "--bench", "heavy", "--bench", "delivery"])?;
            // Ingest on 1, 2 and 3 nodes on one PostgreSQL, against SQLite.
            let postgres = postgres::ensure()?;
            run(Command::new(cargo_bin())
                .args(["bench", "-p", "triggerhost", "--bench", "cluster"])
                .env(postgres::VAR, &postgres)
                .current_dir(workspace_root()))
        }
        "fuzz" => {
            let secs = std::env::args().nth(2).unwrap_or_else(|| "60".into());
            if secs.parse::<u64>().map_or(true, |s| s == 0) {
                bail!("fuzz takes a number of seconds per target, got {secs:?}");
            }
            build_plugins()?;
            // One target at a time, so each gets both cores for its budget.
            run(Command::new(cargo_bin())
                .args(["test", "-p", "triggerhost", "--test", "all", "fuzz::", "--", "--nocapture", "--test-threads=1"])
                .env("TRIGGERHOST_FUZZ_SECS", &secs)
                .current_dir(workspace_root()))
        }
        "demo" => demo::run(),
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

pub(crate) fn build_plugins() -> Result<()> {
    ensure_wasm_target()?;
    let plugins = plugin_packages()?;
    let mut args = vec!["build", "--release", "--target", WASM_TARGET];
    for name in &plugins {
        args.extend(["--package", name.as_str()]);
    }
    cargo(&args)?;
    for name in &plugins {
        let file = component_path(name);
        if !file.is_file() {
            bail!("{name} built, but {} is missing", file.display());
        }
        eprintln!("built {}", file.display());
    }
    for file in languages::build()? {
        eprintln!("built {}", file.display());
    }
    Ok(())
}

/// Where `cargo build --target wasm32-wasip2 --release` puts a package's component.
pub(crate) fn component_path(package: &str) -> PathBuf {
    components_dir().join(format!("{}.wasm", package.replace('-', "_")))
}

/// Where cargo puts wasm32-wasip2 release builds: under the target
/// directory cargo itself reports, so `CARGO_TARGET_DIR` and
/// `build.target-dir` are honoured.
pub(crate) fn components_dir() -> PathBuf {
    target_dir().join(WASM_TARGET).join("release")
}

/// Cargo's target directory, as `cargo metadata` reports it.
pub(crate) fn target_dir() -> PathBuf {
    static TARGET_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TARGET_DIR
        .get_or_init(|| {
            let metadata = Command::new(cargo_bin())
                .args(["metadata", "--no-deps", "--format-version", "1"])
                .current_dir(workspace_root())
                .output()
                .ok()
                .and_then(|output| serde_json::from_slice::<serde_json::Value>(&output.stdout).ok());
            metadata
                .and_then(|m| m["target_directory"].as_str().map(PathBuf::from))
                .unwrap_or_else(|| workspace_root().join("target"))
        })
        .clone()
}

/// Workspace members under `plugins/` and `tests/plugins/`.
fn plugin_packages() -> Result<Vec<String>> {
    let root = workspace_root();
    packages_under(&[root.join("plugins"), root.join("tests").join("plugins")])
}

/// Workspace members whose manifest is under one of `dirs`, sorted.
pub(crate) fn packages_under(dirs: &[PathBuf]) -> Result<Vec<String>> {
    let output = Command::new(cargo_bin())
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace_root())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let mut names: Vec<String> = metadata["packages"]
        .as_array()
        .context("cargo metadata has no packages")?
        .iter()
        .filter(|package| {
            let manifest = Path::new(package["manifest_path"].as_str().unwrap_or_default());
            dirs.iter().any(|dir| manifest.starts_with(dir))
        })
        .filter_map(|package| package["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no workspace crates found under {dirs:?}");
    }
    Ok(names)
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup (needed to install the wasm32-wasip2 target)")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("installing the {WASM_TARGET} target with rustup");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

pub(crate) fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new(cargo_bin()).args(args).current_dir(workspace_root()))
}

pub(crate) fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}
