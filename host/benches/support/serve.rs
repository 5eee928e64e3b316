//! `triggerhost serve` in the benchmark's process, on a free port, and the
//! admin calls the benchmarks make of it.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The admin token of every benchmarked host.
pub const TOKEN: &str = "bench-admin-token-0123456789";

/// A running host.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    admin: reqwest::Client,
}

/// Starts a host on `data_dir` with `config` (a `triggerhost.toml` text).
pub async fn start(data_dir: &Path, config: &str) -> Served {
    start_on(data_dir, config, None).await
}

/// [`start`] on the database `database_url` (else SQLite in the data dir).
pub async fn start_on(data_dir: &Path, config: &str, database_url: Option<String>) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("address").port();
    let file: triggerhost::config::FileConfig = toml::from_str(config).expect("config");
    let args = triggerhost::config::ServeArgs {
        listen: Some(format!("127.0.0.1:{port}").parse().expect("address")),
        data_dir: Some(data_dir.to_owned()),
        admin_token: Some(TOKEN.into()),
        database_url,
        ..Default::default()
    };
    let settings = triggerhost::config::Settings::merge(file, &args).expect("settings");
    tokio::spawn(async move { triggerhost::server::serve(settings).await.expect("serve") });
    let served = Served { base: format!("http://127.0.0.1:{port}"), admin: reqwest::Client::new() };
    for _ in 0..100 {
        if served.admin.get(format!("{}/healthz", served.base)).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    served
}

impl Served {
    /// An admin API call that must succeed; returns its JSON.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.admin.request(method, format!("{}/api/v1{path}", self.base)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// Uploads a component.
    pub async fn upload(&self, component: &[u8]) {
        let uploaded = self.admin.post(format!("{}/api/v1/plugins", self.base)).bearer_auth(TOKEN);
        let uploaded = uploaded.header("content-type", "application/wasm").body(component.to_vec()).send().await;
        assert!(uploaded.expect("upload").status().is_success());
    }

    /// An enabled standard-webhooks trigger with `secret`; returns its id.
    pub async fn webhook_trigger(&self, secret: &str) -> String {
        let body = json!({ "plugin": "standard-webhooks", "trigger": "message_received", "secret": secret });
        let created = self.api(reqwest::Method::POST, "/triggers", Some(body)).await;
        let id = created["id"].as_str().expect("trigger id").to_owned();
        self.api(reqwest::Method::POST, &format!("/triggers/{id}/enable"), None).await;
        id
    }

    /// A trigger's webhook URL.
    pub fn hook(&self, trigger: &str) -> String {
        format!("{}/hooks/{trigger}", self.base)
    }
}
