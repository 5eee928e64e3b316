//! The `triggerhost` binary. The server (`triggerhost serve`) and the admin
//! verbs come with the server; until then it inspects components, which is
//! what a connector author needs to check a build.

use std::process::ExitCode;

use triggerhost::{Runtime, RuntimeConfig};

const USAGE: &str = "usage: triggerhost inspect <component.wasm>

Loads a connector component as the host would (checks the world, calls
describe, validates the manifest) and prints its manifest as JSON.";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["inspect", path] => match inspect(path).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn inspect(path: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = runtime.load(&bytes).await?;
    let report = serde_json::json!({
        "digest": plugin.digest(),
        "size": plugin.size(),
        "manifest": plugin.manifest(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
