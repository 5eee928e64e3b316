//! `spawn_host()`: the real `triggerhost serve` binary on 127.0.0.1, port 0,
//! with a temporary data dir and its own database (see [`crate::database`]);
//! killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::database::{Schema, postgres_base};
use crate::helpers::component_bytes;

pub const TOKEN: &str = "test-admin-token-0123456789";

/// A running server.
pub struct Host {
    child: Child,
    /// Where the server's stderr goes.
    pub log_path: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The data dir (kept across restarts).
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// A cluster's shared key file, kept by its first node.
    _keys: Option<tempfile::TempDir>,
    config: Option<PathBuf>,
    /// The PostgreSQL schema, when this run uses PostgreSQL (kept across
    /// restarts, shared with the other hosts of a cluster).
    pub schema: Option<Arc<Schema>>,
    pub http: reqwest::Client,
}

/// Starts a server on a fresh data dir.
pub async fn spawn_host() -> Host {
    spawn_host_with_config("").await
}

/// Starts a server on a fresh data dir with `toml` as its config file.
pub async fn spawn_host_with_config(toml: &str) -> Host {
    spawn_host_with_env(toml, &[]).await
}

/// Starts a server on a fresh data dir with `toml` as its config file and
/// `env` set in its environment (over the tests' `TRIGGERHOST_LOG=warn`).
pub async fn spawn_host_with_env(toml: &str, env: &[(&str, &str)]) -> Host {
    let schema = match postgres_base() {
        Some(base) => Some(Schema::create(&base).await),
        None => None,
    };
    spawn_node_with_env(toml, schema, env).await
}

/// Starts `nodes` servers on one new PostgreSQL schema (the run's server,
/// else the machine's), each with its own data dir, sharing one key file
/// (as the nodes of a cluster must), `toml` the config of each.
pub async fn spawn_cluster(nodes: usize, toml: &str) -> Vec<Host> {
    let base = postgres_base().unwrap_or_else(|| crate::database::MACHINE_POSTGRES.to_owned());
    let schema = Schema::create(&base).await;
    let keys = tempfile::tempdir().expect("temp dir");
    let config = format!("secret_key_file = {:?}\n{toml}", keys.path().join("secret.key").display().to_string());
    let mut hosts = Vec::with_capacity(nodes);
    // One after the other: the first creates the key file the others read.
    for _ in 0..nodes {
        hosts.push(spawn_node(&config, Some(Arc::clone(&schema))).await);
    }
    if let Some(first) = hosts.first_mut() {
        first._keys = Some(keys);
    }
    hosts
}

/// Starts a server on a fresh data dir (with its own key file) and the
/// PostgreSQL `schema`.
pub async fn spawn_node(toml: &str, schema: Option<Arc<Schema>>) -> Host {
    spawn_node_with_env(toml, schema, &[]).await
}

async fn spawn_node_with_env(toml: &str, schema: Option<Arc<Schema>>, env: &[(&str, &str)]) -> Host {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let config = (!toml.is_empty()).then(|| {
        let path = temp.path().join("triggerhost.toml");
        std::fs::write(&path, toml).expect("write config");
        path
    });
    let mut host = start(&data_dir, config.as_deref(), schema, env).await;
    host._temp = Some(temp);
    host
}

/// Starts a server on an existing data dir (say, a copy of another's) and
/// the database `schema` (on PostgreSQL) or the data dir's (on SQLite).
pub async fn spawn_host_in(data_dir: &Path, schema: Option<Arc<Schema>>) -> Host {
    start(data_dir, None, schema, &[]).await
}

async fn start(data_dir: &Path, config: Option<&Path>, schema: Option<Arc<Schema>>, env: &[(&str, &str)]) -> Host {
    let mut command = Command::new(env!("CARGO_BIN_EXE_triggerhost"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN, "--data-dir"]).arg(data_dir);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    if let Some(schema) = &schema {
        command.arg("--database-url").arg(schema.url());
    }
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TRIGGERHOST_")) {
        command.env_remove(name);
    }
    // The server creates the data dir itself (private to its user); the
    // log goes beside it.
    std::fs::create_dir_all(data_dir.parent().expect("data dir has a parent")).expect("data dir parent");
    // TRIGGERHOST_TEST_LOG_DIR keeps the logs past the test's temp dir.
    let log_path = match std::env::var_os("TRIGGERHOST_TEST_LOG_DIR") {
        Some(dir) => PathBuf::from(dir).join(format!("{:016x}.log", getrandom::u64().unwrap_or(0))),
        None => data_dir.with_extension("log"),
    };
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = command
        .env("TRIGGERHOST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start triggerhost");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("triggerhost listening on ") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("server did not start; see {}", log_path.display()));
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Host {
        child,
        log_path,
        url,
        data_dir: data_dir.to_owned(),
        _temp: None,
        _keys: None,
        config: config.map(Path::to_owned),
        schema,
        http: reqwest::Client::new(),
    }
}

impl Host {
    /// SIGKILL, no chance to flush anything (nothing if it has exited).
    pub async fn kill9(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().await.expect("kill -9");
        }
    }

    /// SIGTERM, then waits (at most 30 s) for the server to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the server is running");
        let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server exits within 30 s of SIGTERM")
            .expect("wait for the server")
    }

    /// Kills the server and starts a new one on the same data dir.
    pub async fn restart(mut self) -> Host {
        self.kill9().await;
        let mut next = start(&self.data_dir, self.config.as_deref(), self.schema.clone(), &[]).await;
        next._temp = self._temp.take();
        next._keys = self._keys.take();
        next
    }

    /// The text of `/metrics`, without the `node` label a node on a shared
    /// database adds (so one assertion reads both backends).
    pub async fn metrics(&self) -> String {
        let text = self.raw_metrics().await;
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let line = match (line.find("{node=\""), line.starts_with('#')) {
                (Some(start), false) => {
                    let end = line[start..].find('"').and_then(|q| line[start + q + 1..].find('"').map(|e| start + q + 1 + e + 1));
                    match end {
                        Some(end) if line[end..].starts_with(',') => format!("{}{{{}", &line[..start], &line[end + 1..]),
                        Some(end) => format!("{}{}", &line[..start], &line[end + 1..]),
                        None => line.to_owned(),
                    }
                }
                _ => line.to_owned(),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// The text of `/metrics` as served.
    pub async fn raw_metrics(&self) -> String {
        let response = self.http.get(format!("{}/metrics", self.url)).send().await.expect("metrics");
        response.text().await.expect("metrics text")
    }

    /// An admin API call with the token; returns status and JSON body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}/api/v1{path}", self.url)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Uploads raw bytes as a component.
    pub async fn upload(&self, bytes: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/plugins", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Uploads a built test component, which must succeed.
    pub async fn upload_plugin(&self, crate_name: &str) -> Value {
        let (status, body) = self.upload(component_bytes(crate_name)).await;
        assert!(status.is_success(), "upload {crate_name}: {status} {body}");
        body
    }

    /// Creates and enables a trigger; returns its id.
    pub async fn enabled_trigger(&self, plugin: &str, trigger: &str, secret: Option<&str>) -> String {
        self.enabled_trigger_with(plugin, trigger, secret, serde_json::json!({})).await
    }

    /// Creates a trigger with `config` and enables it; returns its id.
    pub async fn enabled_trigger_with(&self, plugin: &str, trigger: &str, secret: Option<&str>, config: Value) -> String {
        let body = serde_json::json!({ "plugin": plugin, "trigger": trigger, "secret": secret, "config": config });
        let (status, created) = self.api(Method::POST, "/triggers", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        let (status, enabled) = self.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
        assert_eq!((status, enabled["status"].as_str()), (StatusCode::OK, Some("enabled")), "{enabled}");
        id
    }

    /// `host:port` of the listener, for raw TCP.
    pub fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// Posts a webhook delivery.
    pub async fn deliver(&self, trigger_id: &str, headers: &[(String, String)], body: &[u8]) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/hooks/{trigger_id}", self.url)).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.expect("delivery")
    }

    /// Every event of a trigger, following cursors.
    pub async fn all_events(&self, trigger_id: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor = String::new();
        loop {
            let path = format!("/triggers/{trigger_id}/events?limit=500&cursor={cursor}");
            let (status, page) = self.api(Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            events.extend(page["events"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => return events,
            }
        }
    }
}
