//! `triggerhost destination ...`: where a trigger's events are pushed. A
//! secret is read from a file or stdin, never from the command line; a
//! generated one is printed once.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Body, Client};
use super::text;

#[derive(Debug, Subcommand)]
pub(super) enum DestinationCommand {
    /// Push a trigger's events to a URL; prints the signing secret once.
    Add {
        /// Trigger id.
        trigger: String,
        /// The receiver's URL (https).
        url: String,
        /// A file holding the `whsec_...` secret (`-` for stdin) [default: generated].
        #[arg(long = "secret-file")]
        secret_file: Option<PathBuf>,
        /// Only this event type (repeat for more) [default: every type].
        #[arg(long = "event-type")]
        event_types: Vec<String>,
        /// One at a time, in event order.
        #[arg(long)]
        ordered: bool,
        /// Attempts in flight at most.
        #[arg(long)]
        max_in_flight: Option<u32>,
        /// Attempts started per second at most.
        #[arg(long)]
        rate: Option<u32>,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
    },
    /// A trigger's destinations.
    List {
        /// Trigger id.
        trigger: String,
    },
    /// Stop sending (events are queued until resumed).
    Pause {
        /// Trigger id.
        trigger: String,
        /// Destination id.
        id: String,
    },
    /// Send again (also re-enables a disabled destination).
    Resume {
        /// Trigger id.
        trigger: String,
        /// Destination id.
        id: String,
    },
    /// Remove a destination and its queued jobs.
    Delete {
        /// Trigger id.
        trigger: String,
        /// Destination id.
        id: String,
    },
    /// A new signing secret; the old one keeps signing for the grace period.
    Rotate {
        /// Trigger id.
        trigger: String,
        /// Destination id.
        id: String,
        /// A file holding the new secret (`-` for stdin) [default: generated].
        #[arg(long = "secret-file")]
        secret_file: Option<PathBuf>,
    },
    /// Delivery jobs, newest first.
    Deliveries {
        /// Of this trigger.
        #[arg(long)]
        trigger: Option<String>,
        /// To this destination.
        #[arg(long)]
        destination: Option<String>,
        /// pending, delivered or dead.
        #[arg(long)]
        status: Option<String>,
    },
}

pub(super) async fn run(command: DestinationCommand, client: &Client) -> anyhow::Result<()> {
    let path = |trigger: &str, id: &str| format!("/triggers/{trigger}/destinations/{id}");
    match command {
        DestinationCommand::Add { trigger, url, secret_file, event_types, ordered, max_in_flight, rate, paused } => {
            let mut body = json!({ "url": url, "ordered": ordered, "paused": paused });
            if let Some(file) = secret_file {
                body["secret"] = json!(read_secret(&file)?);
            }
            if !event_types.is_empty() {
                body["event_types"] = json!(event_types);
            }
            if let Some(cap) = max_in_flight {
                body["max_in_flight"] = json!(cap);
            }
            if let Some(rate) = rate {
                body["rate_per_s"] = json!(rate);
            }
            let v = client.send(Method::POST, &format!("/triggers/{trigger}/destinations"), Some(Body::Json(body))).await?;
            print_destination(&v);
            println!("secret:      {} (shown once)", text(&v["secret"]));
        }
        DestinationCommand::List { trigger } => {
            let v = client.send(Method::GET, &format!("/triggers/{trigger}/destinations"), None).await?;
            let list = v["destinations"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no destinations");
            }
            for d in &list {
                let counts = &d["deliveries"];
                println!(
                    "{}  {:<8}  {}  pending {} delivered {} dead {}",
                    text(&d["id"]),
                    text(&d["status"]),
                    text(&d["url"]),
                    counts["pending"],
                    counts["delivered"],
                    counts["dead"]
                );
            }
        }
        DestinationCommand::Pause { trigger, id } => {
            let body = Body::Json(json!({ "status": "paused" }));
            print_destination(&client.send(Method::PATCH, &path(&trigger, &id), Some(body)).await?);
        }
        DestinationCommand::Resume { trigger, id } => {
            let body = Body::Json(json!({ "status": "enabled" }));
            print_destination(&client.send(Method::PATCH, &path(&trigger, &id), Some(body)).await?);
        }
        DestinationCommand::Delete { trigger, id } => {
            client.send(Method::DELETE, &path(&trigger, &id), None).await?;
            println!("deleted {id}");
        }
        DestinationCommand::Rotate { trigger, id, secret_file } => {
            let mut body = json!({});
            if let Some(file) = secret_file {
                body["secret"] = json!(read_secret(&file)?);
            }
            let v = client.send(Method::POST, &format!("{}/rotate-secret", path(&trigger, &id)), Some(Body::Json(body))).await?;
            println!("secret:      {} (shown once)", text(&v["secret"]));
            if let Some(until) = v["previous_secret_expires_at_ms"].as_i64() {
                println!("the previous secret signs too until {}", crate::timestamp::utc(until));
            }
        }
        DestinationCommand::Deliveries { trigger, destination, status } => {
            let query: Vec<String> = [("trigger", trigger), ("destination", destination), ("status", status)]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
                .collect();
            let v = client.send(Method::GET, &format!("/deliveries?{}", query.join("&")), None).await?;
            let list = v["deliveries"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no deliveries");
            }
            for d in &list {
                let error = d["last_error"].as_str().map(|e| format!("  {e}")).unwrap_or_default();
                println!("{}  {:<9}  {}  attempts {}{error}", text(&d["id"]), text(&d["status"]), text(&d["event_id"]), d["attempts"]);
            }
        }
    }
    Ok(())
}

/// A `whsec_` secret from a file or stdin (`-`).
fn read_secret(file: &std::path::Path) -> anyhow::Result<String> {
    match super::connections::read_credentials(file)? {
        Value::String(secret) => Ok(secret),
        _ => anyhow::bail!("{} must hold the whsec_... secret as text", file.display()),
    }
}

fn print_destination(v: &Value) {
    println!("id:          {}", text(&v["id"]));
    println!("url:         {}", text(&v["url"]));
    println!("status:      {}", text(&v["status"]));
    if let Some(reason) = v["disabled_reason"].as_str() {
        println!("disabled:    {reason}");
    }
}
