//! The admin verbs' HTTP client.

use anyhow::{Context as _, bail};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Talks to a running server's admin API.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `server` (e.g. `http://127.0.0.1:8080`) with `token`.
    pub fn new(server: &str, token: String) -> Client {
        Client { base: format!("{}/api/v1", server.trim_end_matches('/')), token, http: reqwest::Client::new() }
    }

    /// Sends a request; the server's error message becomes the error.
    pub async fn send(&self, method: Method, path: &str, body: Option<Body>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        request = match body {
            Some(Body::Json(json)) => request.json(&json),
            Some(Body::Wasm(bytes)) => request.header("content-type", "application/wasm").body(bytes),
            None => request,
        };
        let response = request.send().await.with_context(|| format!("cannot reach {url}; is `triggerhost serve` running?"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let message = value["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
            match value["error"]["details"].as_array() {
                // The message joins the same problems; one per line reads better.
                Some(problems) => {
                    let code = value["error"]["code"].as_str().unwrap_or("error");
                    let list: Vec<String> = problems.iter().map(|p| format!("  - {}", p.as_str().unwrap_or_default())).collect();
                    bail!("{status}: {code}\n{}", list.join("\n"))
                }
                None => bail!("{status}: {message}"),
            }
        }
        Ok(value)
    }
}

/// A request body.
#[derive(Debug)]
pub enum Body {
    /// JSON.
    Json(Value),
    /// A component.
    Wasm(Vec<u8>),
}
