//! Connectors written in other languages: every directory under `plugins/`,
//! `tests/plugins/` or `examples/` with an `app.py` (Python, componentize-py)
//! or an `app.js` (JavaScript, componentize-js) is built into a component.
//! The xtask installs each toolchain, pinned, from its package registry into
//! cargo's target directory (a virtualenv, a node_modules): a fresh machine
//! builds the same components and needs nothing installed by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{components_dir, run, target_dir, workspace_root};

/// The contract version these connectors implement.
const WIT: &str = "wit/0.2.0";

/// A language's toolchain.
struct Toolchain {
    /// The source file that marks a connector directory.
    source: &'static str,
    /// Installs the tool if missing; returns its binary.
    install: fn() -> Result<PathBuf>,
    /// The build command for a connector directory, writing `output`.
    command: fn(tool: &Path, wit: &Path, output: &Path) -> Command,
}

const TOOLCHAINS: [Toolchain; 2] = [
    Toolchain { source: "app.py", install: componentize_py, command: python_command },
    Toolchain { source: "app.js", install: componentize_js, command: javascript_command },
];

/// Builds every connector in another language; returns the components written.
pub(crate) fn build() -> Result<Vec<PathBuf>> {
    let root = workspace_root();
    std::fs::create_dir_all(components_dir())?;
    let mut built = Vec::new();
    for toolchain in &TOOLCHAINS {
        let apps = connector_dirs(&root, toolchain.source)?;
        if apps.is_empty() {
            continue;
        }
        let tool = (toolchain.install)()?;
        for app in apps {
            let name = app.file_name().and_then(|n| n.to_str()).context("connector directory name")?.replace('-', "_");
            let output = components_dir().join(format!("{name}.wasm"));
            if !is_fresh(&app, &output)? {
                run((toolchain.command)(&tool, &root.join(WIT), &output).current_dir(&app))?;
            }
            built.push(output);
        }
    }
    Ok(built)
}

/// The components of the bundled connectors in other languages (under
/// `plugins/` and `examples/`, not the tests'), as [`build`] writes them.
pub(crate) fn bundled() -> Result<Vec<PathBuf>> {
    let root = workspace_root();
    let mut components = Vec::new();
    for toolchain in &TOOLCHAINS {
        for app in connector_dirs(&root, toolchain.source)? {
            if app.starts_with(root.join("tests")) {
                continue;
            }
            let name = app.file_name().and_then(|n| n.to_str()).context("connector directory name")?.replace('-', "_");
            components.push(components_dir().join(format!("{name}.wasm")));
        }
    }
    Ok(components)
}

/// Directories holding `source`, sorted.
fn connector_dirs(root: &Path, source: &str) -> Result<Vec<PathBuf>> {
    let mut apps = Vec::new();
    for dir in [root.join("plugins"), root.join("tests").join("plugins"), root.join("examples")] {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.join(source).is_file() {
                apps.push(path);
            }
        }
    }
    apps.sort();
    Ok(apps)
}

/// The componentize-py release the Python connectors are built with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn python_command(tool: &Path, wit: &Path, output: &Path) -> Command {
    let mut command = Command::new(tool);
    command.arg("-d").arg(wit).args(["-w", "connector", "componentize", "app", "-o"]).arg(output);
    // No __pycache__ left in the source tree.
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// componentize-py from a virtualenv, installed there first if missing.
fn componentize_py() -> Result<PathBuf> {
    let venv = target_dir().join("componentize-py");
    let binary = venv.join("bin").join("componentize-py");
    if reports_version(&binary, COMPONENTIZE_PY.trim_start_matches("componentize-py==")) {
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

/// The componentize-js release the JavaScript connectors are built with.
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

fn javascript_command(tool: &Path, wit: &Path, output: &Path) -> Command {
    let mut command = Command::new(tool);
    // Without wasi:http: the host links no HTTP but its own outbound import.
    command.arg("app.js").arg("--wit").arg(wit).args(["--world-name", "connector", "-d", "http", "fetch-event", "-o"]).arg(output);
    command
}

/// componentize-js from a node_modules folder, installed there first if missing.
fn componentize_js() -> Result<PathBuf> {
    let prefix = target_dir().join("componentize-js");
    let binary = prefix.join("node_modules").join(".bin").join("componentize-js");
    if reports_version(&binary, COMPONENTIZE_JS.rsplit('@').next().unwrap_or_default()) {
        return Ok(binary);
    }
    eprintln!("installing {COMPONENTIZE_JS} into {}", prefix.display());
    std::fs::create_dir_all(&prefix)?;
    run(Command::new("npm").args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"]).arg(&prefix).arg(COMPONENTIZE_JS))
        .context("npm install (componentize-js needs Node.js 18 or newer)")?;
    if !binary.is_file() {
        bail!("{COMPONENTIZE_JS} installed, but {} is missing", binary.display());
    }
    Ok(binary)
}

/// Whether `binary --version` runs and names `version`: the pinned tool is installed.
fn reports_version(binary: &Path, version: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(version))
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
            if entry.file_name() == "__pycache__" || entry.file_name() == "node_modules" {
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
