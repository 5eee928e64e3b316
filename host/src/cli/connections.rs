//! `triggerhost connection ...`: credentials shared by triggers. They are
//! read from a file or stdin, never from the command line, where other
//! users could see them in the process list.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Body, Client};
use super::text;

#[derive(Debug, Subcommand)]
pub(super) enum ConnectionCommand {
    /// Create a connection for a plugin's auth.
    Create {
        /// Plugin name.
        #[arg(long)]
        plugin: String,
        /// What operators call it.
        #[arg(long)]
        name: String,
        /// A file holding the credentials (`-` for stdin): JSON, or the API
        /// key as plain text.
        #[arg(long = "credentials-file")]
        credentials_file: PathBuf,
    },
    /// List connections (never their credentials).
    List,
    /// Rename a connection or replace its credentials.
    Update {
        /// Connection id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A file holding new credentials (`-` for stdin).
        #[arg(long = "credentials-file")]
        credentials_file: Option<PathBuf>,
    },
    /// Delete a connection no trigger uses.
    Delete {
        /// Connection id.
        id: String,
    },
    /// Register a plugin's OAuth2 app (the client the provider issued).
    OauthApp {
        /// Plugin name.
        #[arg(long)]
        plugin: String,
        /// The client id.
        #[arg(long)]
        client_id: String,
        /// A file holding the client secret (`-` for stdin).
        #[arg(long = "client-secret-file")]
        client_secret_file: PathBuf,
        /// Replaces the manifest's authorization endpoint.
        #[arg(long)]
        authorize_url: Option<String>,
        /// Replaces the manifest's token endpoint.
        #[arg(long)]
        token_url: Option<String>,
    },
    /// Start OAuth2: prints the URL to open in a browser. A new connection
    /// (--plugin and --name), or an existing one authorized again (--id).
    Authorize {
        /// Plugin name, for a new connection.
        #[arg(long, requires = "name", conflicts_with = "id")]
        plugin: Option<String>,
        /// Its name.
        #[arg(long)]
        name: Option<String>,
        /// The connection to authorize again.
        #[arg(long)]
        id: Option<String>,
    },
}

/// The credentials in `path` (`-`: stdin): JSON if it parses, else the
/// trimmed text.
pub(super) fn read_credentials(path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading credentials from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    Ok(serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.trim().to_owned())))
}

fn print_connection(v: &Value) {
    println!("id:      {}", text(&v["id"]));
    println!("plugin:  {} ({})", text(&v["plugin"]), text(&v["kind"]));
    println!("name:    {}", text(&v["display_name"]));
    println!("status:  {}", text(&v["status"]));
}

pub(super) async fn run(command: ConnectionCommand, client: &Client) -> anyhow::Result<()> {
    match command {
        ConnectionCommand::Create { plugin, name, credentials_file } => {
            let body = json!({ "plugin": plugin, "display_name": name, "credentials": read_credentials(&credentials_file)? });
            print_connection(&client.send(Method::POST, "/connections", Some(Body::Json(body))).await?);
        }
        ConnectionCommand::List => {
            let v = client.send(Method::GET, "/connections", None).await?;
            println!("{:<37} {:<13} {:<24} NAME", "ID", "STATUS", "PLUGIN");
            for c in v["connections"].as_array().into_iter().flatten() {
                println!("{:<37} {:<13} {:<24} {}", text(&c["id"]), text(&c["status"]), text(&c["plugin"]), text(&c["display_name"]));
            }
        }
        ConnectionCommand::Update { id, name, credentials_file } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["display_name"] = name.into();
            }
            if let Some(path) = credentials_file {
                body["credentials"] = read_credentials(&path)?;
            }
            print_connection(&client.send(Method::PATCH, &format!("/connections/{id}"), Some(Body::Json(body))).await?);
        }
        ConnectionCommand::Delete { id } => {
            client.send(Method::DELETE, &format!("/connections/{id}"), None).await?;
            println!("deleted {id}");
        }
        ConnectionCommand::OauthApp { plugin, client_id, client_secret_file, authorize_url, token_url } => {
            let Value::String(client_secret) = read_credentials(&client_secret_file)? else {
                anyhow::bail!("the client secret file must hold the secret as plain text");
            };
            let body = json!({
                "client_id": client_id, "client_secret": client_secret,
                "authorize_url": authorize_url, "token_url": token_url,
            });
            let v = client.send(Method::PUT, &format!("/plugins/{plugin}/oauth-app"), Some(Body::Json(body))).await?;
            println!("{plugin}: client {}", text(&v["client_id"]));
            println!("register this redirect URI with the provider: {}", text(&v["redirect_uri"]));
        }
        ConnectionCommand::Authorize { plugin, name, id } => {
            let query: Vec<(&str, String)> = match (id, plugin, name) {
                (Some(id), _, _) => vec![("connection", id)],
                (None, Some(plugin), Some(name)) => vec![("plugin", plugin), ("display_name", name)],
                _ => anyhow::bail!("give --plugin and --name, or --id"),
            };
            let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
            let v = client.send(Method::GET, &format!("/connections/oauth/start?{query}"), None).await?;
            println!("open this URL in a browser within {} s:", v["expires_in_s"]);
            println!("{}", text(&v["authorize_url"]));
        }
    }
    Ok(())
}
