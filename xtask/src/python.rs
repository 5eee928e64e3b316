//! Connectors written in Python: every directory under `plugins/`,
//! `tests/plugins/` or `examples/` with an `app.py` is built with
//! componentize-py, which the xtask installs into a virtualenv in cargo's
//! target directory (pinned, so a fresh machine builds the same components).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{components_dir, run, target_dir, workspace_root};

/// The componentize-py release the Python connectors are built with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The contract version the Python connectors implement.
const WIT: &str = "wit/0.1.0";

/// Builds every Python connector; returns the components written.
pub(crate) fn build() -> Result<Vec<PathBuf>> {
    let root = workspace_root();
    let mut apps = Vec::new();
    for dir in [root.join("plugins"), root.join("tests").join("plugins"), root.join("examples")] {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.join("app.py").is_file() {
                apps.push(path);
            }
        }
    }
    apps.sort();
    if apps.is_empty() {
        return Ok(Vec::new());
    }
    let componentize = componentize_py()?;
    std::fs::create_dir_all(components_dir())?;
    let mut built = Vec::new();
    for app in apps {
        let name = app.file_name().and_then(|n| n.to_str()).context("connector directory name")?.replace('-', "_");
        let output = components_dir().join(format!("{name}.wasm"));
        if is_fresh(&app, &output)? {
            built.push(output);
            continue;
        }
        run(Command::new(&componentize)
            .args(["-d"])
            .arg(root.join(WIT))
            .args(["-w", "connector", "componentize", "app", "-o"])
            .arg(&output)
            // No __pycache__ left in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&app))?;
        built.push(output);
    }
    Ok(built)
}

/// componentize-py from the virtualenv, installed there first if missing.
fn componentize_py() -> Result<PathBuf> {
    let venv = target_dir().join("componentize-py");
    let binary = venv.join("bin").join("componentize-py");
    let installed = Command::new(&binary).arg("--version").output().is_ok_and(|o| {
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(COMPONENTIZE_PY.trim_start_matches("componentize-py=="))
    });
    if installed {
        return Ok(binary);
    }
    eprintln!("installing {COMPONENTIZE_PY} into {}", venv.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("python3 -m venv (componentize-py needs Python 3.10 or newer)")?;
    run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", COMPONENTIZE_PY]))?;
    if !binary.is_file() {
        bail!("{COMPONENTIZE_PY} installed, but {} is missing", binary.display());
    }
    Ok(binary)
}

/// Whether `output` is newer than every file of the connector and the WIT.
fn is_fresh(app: &Path, output: &Path) -> Result<bool> {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    let wit = workspace_root().join(WIT);
    for dir in [app.to_path_buf(), wit] {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name() == "__pycache__" {
                continue;
            }
            let modified = entry.metadata()?.modified()?;
            if modified > built {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
