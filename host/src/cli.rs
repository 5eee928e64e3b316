//! The command line: `triggerhost serve` and the admin verbs, which talk to
//! a running server over its admin API.

mod client;
mod connections;
mod destinations;
mod logs;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::config::{ServeArgs, Settings};
use client::{Body, Client};

/// triggerhost: run trigger connectors as sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "triggerhost", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How the process's own log lines are written (on stderr).
    #[arg(long, global = true, env = "TRIGGERHOST_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: crate::telemetry::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Config file [default: ./triggerhost.toml if present].
        #[arg(long, env = "TRIGGERHOST_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Upload, list and activate connector versions.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create and manage triggers.
    Trigger {
        #[command(subcommand)]
        command: TriggerCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create and manage connections: credentials shared by triggers.
    Connection {
        #[command(subcommand)]
        command: connections::ConnectionCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Push a trigger's events to receivers: destinations and their deliveries.
    Destination {
        #[command(subcommand)]
        command: destinations::DestinationCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Read a trigger's events, or replay them to its destinations.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Load a component as the server would and print its manifest (no server needed).
    Inspect {
        /// The component.
        file: PathBuf,
    },
}

/// Where the server is and how to authenticate.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// Server base URL.
    #[arg(long, global = true, env = "TRIGGERHOST_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Admin token [default: read from <data-dir>/admin_token].
    #[arg(long, global = true, env = "TRIGGERHOST_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Data dir holding a generated admin token.
    #[arg(long, global = true, env = "TRIGGERHOST_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
}

impl ServerArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let token = match &self.admin_token {
            Some(token) => token.clone(),
            None => {
                let path = self.data_dir.join("admin_token");
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no --admin-token given and cannot read {}", path.display()))?
                    .trim()
                    .to_owned()
            }
        };
        Ok(Client::new(&self.server, token))
    }
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Upload a component (the first version of a plugin becomes active).
    Push {
        /// The `.wasm` component.
        file: PathBuf,
    },
    /// List plugins and their active versions.
    List,
    /// List a plugin's versions.
    Versions {
        /// Plugin name.
        name: String,
    },
    /// Make a version active (hot swap or roll back). Refused, with the
    /// list, if it would break triggers that follow the active version.
    Activate {
        /// Plugin name.
        name: String,
        /// Version.
        version: String,
        /// Disable the triggers the version would break instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Activate the version that was active before the last activation.
    Rollback {
        /// Plugin name.
        name: String,
        /// Disable the triggers it would break instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Delete a version that is neither active nor pinned by a trigger.
    DeleteVersion {
        /// Plugin name.
        name: String,
        /// Version.
        version: String,
    },
    /// Set what a plugin is allowed (replaces the previous allowance).
    Grant {
        /// Plugin name.
        name: String,
        /// An origin outbound HTTP may reach: https://host[:port],
        /// https://*.suffix[:port] or http://host:port. Repeatable.
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// Allow the per-trigger key-value store.
        #[arg(long)]
        kv: bool,
        /// A per-plugin limit, as in the `[limits]` config: `fuel=500000000`,
        /// `kv_max_keys=5000`. Repeatable.
        #[arg(long = "limit", value_name = "NAME=VALUE")]
        limits: Vec<String>,
        /// Let a trigger's calls reuse one instance for up to this many calls
        /// (for connectors slow to start, such as Python ones).
        #[arg(long, requires = "reuse_secs")]
        reuse_calls: Option<u32>,
        /// ... and up to this many seconds.
        #[arg(long, requires = "reuse_calls")]
        reuse_secs: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum TriggerCommand {
    /// Create a trigger (disabled until enabled).
    Create {
        /// Plugin name.
        #[arg(long)]
        plugin: String,
        /// Trigger name within the plugin.
        #[arg(long)]
        trigger: String,
        /// Config as JSON.
        #[arg(long, default_value = "{}")]
        config: String,
        /// Signing secret shared with the sender.
        #[arg(long)]
        secret: Option<String>,
        /// Seconds between polls (polling triggers; default 60).
        #[arg(long = "poll-interval")]
        poll_interval_s: Option<u32>,
        /// The connection (credentials) its calls use.
        #[arg(long)]
        connection: Option<String>,
        /// Host-side filters as a JSON list of rules, e.g.
        /// '[{"pointer":"/action","equals":"opened"}]'.
        #[arg(long)]
        filters: Option<String>,
        /// Keep its events this many seconds (default: `[retention] max_age_s`).
        #[arg(long = "retention")]
        retention_s: Option<u32>,
        /// Keep at most this many of its newest events.
        #[arg(long)]
        retention_events: Option<u32>,
        /// Enable it right away.
        #[arg(long)]
        enable: bool,
    },
    /// List triggers.
    List,
    /// Enable a trigger (calls the connector's on-enable).
    Enable {
        /// Trigger id.
        id: String,
    },
    /// Disable a trigger (calls the connector's on-disable).
    Disable {
        /// Trigger id.
        id: String,
    },
    /// Delete a trigger and its events.
    Delete {
        /// Trigger id.
        id: String,
        /// Keep its events readable until retention removes them.
        #[arg(long)]
        keep_events: bool,
    },
    /// Check the trigger's registration at the provider now (its source's,
    /// when it shares one), registering it again if the provider lost it.
    Sync {
        /// Trigger id.
        id: String,
    },
    /// List the registrations triggers share (sources).
    Sources,
    /// Poll a polling trigger now and show what it stored.
    Poll {
        /// Trigger id.
        id: String,
        /// Forget the cursor first: start from a new baseline.
        #[arg(long)]
        reset: bool,
    },
    /// Show what a poll would emit now (nothing stored), or the sample event.
    Test {
        /// Trigger id.
        id: String,
    },
    /// Show how polling goes: last poll, last success, failures, next poll.
    Health {
        /// Trigger id.
        id: String,
    },
    /// Show what the connector wrote on its newest calls (`log`, stdout, stderr).
    Logs {
        /// Trigger id.
        id: String,
        /// How many of the newest calls to show first.
        #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        lines: u32,
        /// Keep printing new calls' logs as they come, until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// A trigger's events, newest first.
    List {
        /// Trigger id.
        trigger: String,
        /// Events per page.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Continue from a previous page's cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Queue events again for the trigger's destinations (same webhook-id).
    Replay {
        /// Trigger id.
        trigger: String,
        /// One event.
        #[arg(long)]
        event: Option<String>,
        /// Events received at or after this Unix time, milliseconds.
        #[arg(long)]
        since_ms: Option<i64>,
        /// Events received before this Unix time, milliseconds.
        #[arg(long)]
        until_ms: Option<i64>,
        /// Only to this destination.
        #[arg(long)]
        destination: Option<String>,
        /// The dead-lettered jobs instead.
        #[arg(long)]
        dead_letters: bool,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, args } => crate::server::serve(Settings::resolve(config.as_deref(), &args)?).await,
        Command::Inspect { file } => inspect(&file).await,
        Command::Plugin { command, server } => plugin(command, &server.client()?).await,
        Command::Trigger { command, server } => trigger(command, &server.client()?).await,
        Command::Connection { command, server } => connections::run(command, &server.client()?).await,
        Command::Destination { command, server } => destinations::run(command, &server.client()?).await,
        Command::Events { command, server } => events(command, &server.client()?).await,
    }
}

async fn inspect(file: &std::path::Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = crate::Runtime::new(crate::RuntimeConfig::default())?;
    let plugin = runtime.load(&bytes).await?;
    let shape = plugin.shape();
    let report = json!({
        "digest": plugin.digest(),
        "size": plugin.size(),
        "instance": { "core_instances": shape.core_instances, "memories": shape.memories, "tables": shape.tables },
        "manifest": plugin.manifest(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn plugin(command: PluginCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        PluginCommand::Push { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let v = client.send(Method::POST, "/plugins", Some(Body::Wasm(bytes))).await?;
            let active = if v["active"] == true { " (active)" } else { "" };
            println!("{}@{}{active}  {}", text(&v["name"]), text(&v["version"]), text(&v["digest"]));
            println!("triggers: {}", list_of(&v["triggers"]));
        }
        PluginCommand::List => {
            let v = client.send(Method::GET, "/plugins", None).await?;
            println!("{:<32} {:<12} VERSIONS", "NAME", "ACTIVE");
            for p in v["plugins"].as_array().into_iter().flatten() {
                let versions = p["versions"].as_array().map_or(0, Vec::len);
                println!("{:<32} {:<12} {versions}", text(&p["name"]), text(&p["active_version"]));
            }
        }
        PluginCommand::Versions { name } => {
            let v = client.send(Method::GET, &format!("/plugins/{name}"), None).await?;
            println!("{:<12} {:<8} {:<10} DIGEST", "VERSION", "ACTIVE", "SIZE");
            for version in v["versions"].as_array().into_iter().flatten() {
                let active = if version["active"] == true { "*" } else { "" };
                println!(
                    "{:<12} {:<8} {:<10} {}",
                    text(&version["version"]),
                    active,
                    version["size_bytes"],
                    text(&version["digest"])
                );
            }
        }
        PluginCommand::Activate { name, version, force } => activate(client, &name, &version, force).await?,
        PluginCommand::Rollback { name, force } => {
            let plugin = client.send(Method::GET, &format!("/plugins/{name}"), None).await?;
            let Some(previous) = plugin["previous_version"].as_str() else {
                anyhow::bail!("{name} has no previous version to roll back to");
            };
            activate(client, &name, previous, force).await?;
        }
        PluginCommand::DeleteVersion { name, version } => {
            client.send(Method::DELETE, &format!("/plugins/{name}/versions/{version}"), None).await?;
            println!("{name}@{version} deleted");
        }
        PluginCommand::Grant { name, allow_hosts, kv, limits, reuse_calls, reuse_secs } => {
            let mut overrides = serde_json::Map::new();
            for limit in &limits {
                let (key, value) = limit.split_once('=').context("--limit takes NAME=VALUE")?;
                let value: u64 = value.parse().with_context(|| format!("--limit {key}: not a whole number"))?;
                overrides.insert(key.to_owned(), value.into());
            }
            let reuse = reuse_calls.zip(reuse_secs).map(|(calls, secs)| json!({ "max_calls": calls, "max_age_s": secs }));
            let body = json!({ "outbound_hosts": allow_hosts, "key_value": kv, "limits": overrides, "reuse": reuse });
            let v = client.send(Method::PUT, &format!("/plugins/{name}/grants"), Some(Body::Json(body))).await?;
            let granted = &v["granted"];
            println!("{name}@{}: outbound {}, key-value {}", text(&v["active_version"]), list_of(&granted["outbound_hosts"]), granted["key_value"]);
            if let Some(missing) = granted["missing"].as_array().filter(|m| !m.is_empty()) {
                println!("still missing: {}", list_of(&Value::Array(missing.clone())));
            }
        }
    }
    Ok(())
}

/// Activates a version and says which triggers a forced activation disabled.
async fn activate(client: &Client, name: &str, version: &str, force: bool) -> anyhow::Result<()> {
    let body = json!({ "version": version, "force": force });
    let v = client.send(Method::POST, &format!("/plugins/{name}/activate"), Some(Body::Json(body))).await?;
    println!("{name}@{version} is active");
    for disabled in v["disabled_triggers"].as_array().into_iter().flatten() {
        println!("disabled {} ({}): {}", text(&disabled["trigger_id"]), text(&disabled["trigger"]), text(&disabled["problem"]));
    }
    Ok(())
}

async fn trigger(command: TriggerCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        TriggerCommand::Create {
            plugin,
            trigger,
            config,
            secret,
            poll_interval_s,
            connection,
            filters,
            retention_s,
            retention_events,
            enable,
        } => {
            let config: Value = serde_json::from_str(&config).context("--config is not valid JSON")?;
            let filters: Option<Value> =
                filters.map(|f| serde_json::from_str(&f)).transpose().context("--filters is not valid JSON")?;
            let mut body = json!({
                "plugin": plugin, "trigger": trigger, "config": config, "secret": secret, "connection": connection,
                "filters": filters, "retention_s": retention_s, "retention_events": retention_events,
            });
            if let Some(interval) = poll_interval_s {
                body["poll_interval_s"] = interval.into();
            }
            let mut v = client.send(Method::POST, "/triggers", Some(Body::Json(body))).await?;
            if enable {
                v = client.send(Method::POST, &format!("/triggers/{}/enable", text(&v["id"])), None).await?;
            }
            print_trigger(&v);
        }
        TriggerCommand::List => {
            let v = client.send(Method::GET, "/triggers", None).await?;
            println!("{:<37} {:<13} {:<40} WEBHOOK URL", "ID", "STATUS", "PLUGIN/TRIGGER");
            for t in v["triggers"].as_array().into_iter().flatten() {
                let what = format!("{}/{}", text(&t["plugin"]), text(&t["trigger"]));
                println!("{:<37} {:<13} {what:<40} {}", text(&t["id"]), text(&t["status"]), text(&t["webhook_url"]));
            }
        }
        TriggerCommand::Enable { id } => print_trigger(&client.send(Method::POST, &format!("/triggers/{id}/enable"), None).await?),
        TriggerCommand::Disable { id } => print_trigger(&client.send(Method::POST, &format!("/triggers/{id}/disable"), None).await?),
        TriggerCommand::Delete { id, keep_events } => {
            client.send(Method::DELETE, &format!("/triggers/{id}?keep_events={keep_events}"), None).await?;
            println!("deleted {id}{}", if keep_events { " (events kept for the retention period)" } else { "" });
        }
        TriggerCommand::Sync { id } => {
            let v = client.send(Method::POST, &format!("/triggers/{id}/sync"), None).await?;
            match v["error"].as_str() {
                Some(error) => println!("{}: {error}", text(&v["outcome"])),
                None => println!("{}", text(&v["outcome"])),
            }
        }
        TriggerCommand::Sources => {
            let v = client.send(Method::GET, "/sources", None).await?;
            println!("{:<37} {:<9} {:<24} {:<8} KEY", "ID", "STATUS", "PLUGIN/TRIGGER", "TRIGGERS");
            for s in v["sources"].as_array().into_iter().flatten() {
                let what = format!("{}/{}", text(&s["plugin"]), text(&s["trigger"]));
                let members = s["triggers"].as_array().map_or(0, Vec::len);
                println!("{:<37} {:<9} {what:<24} {members:<8} {}", text(&s["id"]), text(&s["status"]), s["key"]);
            }
        }
        TriggerCommand::Poll { id, reset } => {
            let v = client.send(Method::POST, &format!("/triggers/{id}/poll"), Some(Body::Json(json!({ "reset": reset })))).await?;
            match v["outcome"].as_str() {
                Some("stored") => println!("stored {} (duplicates {})", v["stored"], v["duplicates"]),
                _ => println!("poll failed: {} {}", text(&v["code"]), text(&v["error"])),
            }
        }
        TriggerCommand::Test { id } => {
            let v = client.send(Method::POST, &format!("/triggers/{id}/test"), None).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        TriggerCommand::Health { id } => {
            let v = client.send(Method::GET, &format!("/triggers/{id}/health"), None).await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        TriggerCommand::Logs { id, lines, follow } => logs::show(client, &id, lines, follow).await?,
    }
    Ok(())
}

async fn events(command: EventsCommand, client: &Client) -> anyhow::Result<()> {
    let (trigger, limit, cursor) = match command {
        EventsCommand::List { trigger, limit, cursor } => (trigger, limit, cursor),
        EventsCommand::Replay { trigger, event, since_ms, until_ms, destination, dead_letters } => {
            let body = json!({
                "event_id": event, "since_ms": since_ms, "until_ms": until_ms,
                "destination_id": destination, "dead_letters": dead_letters,
            });
            let v = client.send(Method::POST, &format!("/triggers/{trigger}/events/replay"), Some(Body::Json(body))).await?;
            println!("queued {}", v["queued"]);
            return Ok(());
        }
    };
    let mut path = format!("/triggers/{trigger}/events?limit={limit}");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    let v = client.send(Method::GET, &path, None).await?;
    let events = v["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        println!("no events");
    }
    for e in &events {
        let at = e["received_at_ms"].as_i64().map(crate::timestamp::utc).unwrap_or_default();
        println!("{at}  {}  {}  {}", text(&e["type"]), text(&e["id"]), e["payload"]);
    }
    if let Some(next) = v["next_cursor"].as_str() {
        println!("more: --cursor {next}");
    }
    Ok(())
}

fn print_trigger(v: &Value) {
    println!("id:          {}", text(&v["id"]));
    println!("trigger:     {}/{}", text(&v["plugin"]), text(&v["trigger"]));
    println!("status:      {}", text(&v["status"]));
    println!("webhook url: {}", text(&v["webhook_url"]));
    if let Some(error) = v["last_error"].as_str() {
        println!("last error:  {error}");
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn list_of(value: &Value) -> String {
    value.as_array().map(|a| a.iter().map(|v| text(v).to_owned()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}
