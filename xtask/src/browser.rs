//! The headless browser the dashboard test drives: Chromium and its
//! WebDriver server from the distribution's packages, installed here when
//! missing. Never skipped: a machine where that fails fails the test
//! command, saying why.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The variables the test suite reads (see `host/tests/all/browser.rs`).
pub(crate) const CHROMIUM_VAR: &str = "TRIGGERHOST_TEST_CHROMIUM";
pub(crate) const CHROMEDRIVER_VAR: &str = "TRIGGERHOST_TEST_CHROMEDRIVER";

/// `[(variable, path)]` for Chromium and chromedriver, installed if needed.
pub(crate) fn ensure() -> Result<[(&'static str, PathBuf); 2]> {
    if let (Some(chromium), Some(driver)) = (find(CHROMIUM_VAR, "chromium"), find(CHROMEDRIVER_VAR, "chromedriver")) {
        return Ok([(CHROMIUM_VAR, chromium), (CHROMEDRIVER_VAR, driver)]);
    }
    eprintln!("xtask: installing chromium and chromium-driver from the distribution's packages (the dashboard test needs them)");
    let install = || {
        crate::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends", "chromium", "chromium-driver"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        // A fresh machine may not have read the package lists yet.
        crate::run(Command::new("apt-get").args(["update", "-q"])).context("apt-get update")?;
        install().context("installing chromium and chromium-driver with apt-get")?;
    }
    match (find(CHROMIUM_VAR, "chromium"), find(CHROMEDRIVER_VAR, "chromedriver")) {
        (Some(chromium), Some(driver)) => Ok([(CHROMIUM_VAR, chromium), (CHROMEDRIVER_VAR, driver)]),
        _ => bail!("chromium and chromium-driver were installed, but chromium or chromedriver is not on PATH"),
    }
}

/// `$variable` if set, else `name` on PATH.
fn find(variable: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|path| path.is_file())
}
