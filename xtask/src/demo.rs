//! `cargo xtask demo`: the server on 127.0.0.1:8080 with ./data, the bundled
//! connectors uploaded (the Python and JavaScript ones included), a sample trigger enabled, and two ready-to-paste
//! commands: one sends a correctly signed delivery, one lists the events.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{build_plugins, cargo, component_path, packages_under, run as run_command, workspace_root};

const ADDRESS: &str = "127.0.0.1:8080";
/// The Standard Webhooks spec's example secret; the demo signs with it.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Kills the server if the demo fails before handing it to the user.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run() -> Result<()> {
    build_plugins()?;
    cargo(&["build", "--quiet", "-p", "triggerhost"])?;
    let root = workspace_root();
    let bin = crate::target_dir().join("debug").join("triggerhost");
    let data = root.join("data");

    let child = Command::new(&bin)
        .args(["serve", "--listen", ADDRESS, "--data-dir"])
        .arg(&data)
        .current_dir(&root)
        .spawn()
        .context("starting triggerhost serve")?;
    let mut server = Server(child);
    wait_until_healthy(&mut server.0)?;

    let admin = |args: &[&str]| -> Command {
        let mut command = Command::new(&bin);
        command.args(args).arg("--data-dir").arg(&data).arg("--server").arg(format!("http://{ADDRESS}"));
        command
    };
    for connector in connectors(&root)? {
        run_command(admin(&["plugin", "push"]).arg(&connector))?;
    }
    let created = admin(&[
        "trigger",
        "create",
        "--plugin",
        "standard-webhooks",
        "--trigger",
        "message_received",
        "--secret",
        SECRET,
        "--enable",
    ])
    .output()
    .context("creating the sample trigger")?;
    let stdout = String::from_utf8_lossy(&created.stdout);
    if !created.status.success() {
        bail!("creating the sample trigger failed: {stdout}{}", String::from_utf8_lossy(&created.stderr));
    }
    let id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("id:"))
        .map(str::trim)
        .context("no trigger id in the CLI's output")?
        .to_owned();

    print_instructions(&id, &bin, &root);
    let status = server.0.wait()?;
    if !status.success() {
        bail!("the server exited with {status}");
    }
    Ok(())
}

/// The built components of the bundled connectors: the Rust ones under
/// `plugins/`, and those in other languages under `plugins/` and `examples/`.
fn connectors(root: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut components: Vec<_> = packages_under(&[root.join("plugins")])?.iter().map(|name| component_path(name)).collect();
    components.extend(crate::languages::bundled()?);
    Ok(components)
}

fn wait_until_healthy(server: &mut Child) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = server.try_wait()? {
            bail!("the server exited with {status} (is {ADDRESS} already in use?)");
        }
        if healthz().unwrap_or(false) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server did not answer on {ADDRESS} within 60 s")
}

fn healthz() -> std::io::Result<bool> {
    let mut stream = TcpStream::connect(ADDRESS)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.starts_with("HTTP/1.1 200"))
}

fn print_instructions(id: &str, bin: &Path, root: &Path) {
    let url = format!("http://{ADDRESS}/hooks/{id}");
    let key = &SECRET["whsec_".len()..];
    let cli = bin.strip_prefix(root).map(|p| format!("./{}", p.display())).unwrap_or_else(|_| bin.display().to_string());
    println!(
        r#"
triggerhost is running on http://{ADDRESS} (data in ./data, Ctrl-C to stop).

A Standard Webhooks trigger is enabled; its webhook URL is
  {url}

Send it a correctly signed delivery (bash; needs curl and openssl):

body='{{"type":"invoice.paid","data":{{"id":"inv_42","amount":1200}}}}'; id="msg_$(date +%s%N)"; ts=$(date +%s); key=$(printf %s '{key}' | base64 -d | od -An -tx1 | tr -d ' \n'); sig=$(printf %s "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64); curl -sS -w ' %{{http_code}}\n' -X POST '{url}' -H "webhook-id: $id" -H "webhook-timestamp: $ts" -H "webhook-signature: v1,$sig" -H 'content-type: application/json' -d "$body"

List the resulting events (from the repository root):

{cli} events list {id}

Or watch them arrive in the dashboard: open http://{ADDRESS}/ and sign in
with the admin token in ./data/admin_token.
"#
    );
}
