//! A fake provider on 127.0.0.1, port 0: the hooks API a registering
//! connector calls, and the answers hostile tests need (redirects, a huge
//! body, a stall). It records every request it gets.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

/// One request the provider got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Recorded>,
    hooks: Vec<String>,
    next_id: usize,
    failing: bool,
    /// Subscriptions by id, with their expiry (Unix ms).
    subscriptions: std::collections::BTreeMap<String, u64>,
    /// How long a subscription lives, ms.
    subscription_ttl_ms: u64,
    failing_renewals: bool,
    /// Authorization codes issued: code -> (PKCE challenge, redirect URI).
    oauth_codes: std::collections::HashMap<String, (String, String)>,
    /// Form bodies the token endpoint received.
    token_requests: Vec<std::collections::HashMap<String, String>>,
    /// The access token `/api/items` accepts now, if any.
    access_token: Option<String>,
    /// Refresh tokens the token endpoint still honours.
    refresh_tokens: std::collections::HashSet<String>,
    /// How long access tokens live, seconds (0: an hour).
    token_lifetime_s: u64,
    /// How long `POST /hooks` takes to answer, ms.
    stall_creates_ms: u64,
    /// `GET /repos/{owner}/{repo}/hooks/{id}` answers 500.
    failing_hook_reads: bool,
    /// GitHub-shaped repository hooks by id: `{id, active, events, config}`.
    repo_hooks: std::collections::BTreeMap<u64, Value>,
}

/// The running provider; stops when dropped.
pub struct Provider {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = Arc<Mutex<Inner>>;

impl Provider {
    pub async fn start() -> Provider {
        let inner: Shared = Arc::default();
        let app = Router::new()
            .route("/hooks", post(create_hook))
            .route("/hooks/{id}", delete(delete_hook))
            .route("/oauth/authorize", get(oauth_authorize))
            .route("/oauth/token", post(oauth_token))
            .route("/api/items", get(api_items))
            .route("/subscriptions", post(subscribe))
            .route("/subscriptions/{id}/renew", post(renew_subscription))
            .route("/subscriptions/{id}", delete(unsubscribe))
            .route("/repos/{owner}/{repo}/hooks", post(create_repo_hook).get(list_repo_hooks))
            .route(
                "/repos/{owner}/{repo}/hooks/{id}",
                delete(delete_repo_hook).get(get_repo_hook).patch(patch_repo_hook),
            )
            .route("/ok", get(|| async { "hello" }))
            .route("/redirect", get(redirect))
            .route("/big", get(|| async { vec![b'x'; 100 << 20] }))
            .route("/stall", get(stall))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind provider");
        let port = listener.local_addr().expect("provider address").port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider {
            port,
            inner,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes hook creation fail (503 with a message) or succeed again.
    pub fn fail_creates(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Makes reading one repository hook fail with 500.
    pub fn fail_hook_reads(&self, failing: bool) {
        self.lock().failing_hook_reads = failing;
    }

    /// Makes `POST /hooks` take `ms` to answer.
    pub fn stall_creates(&self, ms: u64) {
        self.lock().stall_creates_ms = ms;
    }

    /// Subscriptions live `ttl_ms` from their creation or last renewal.
    pub fn set_subscription_ttl(&self, ttl_ms: u64) {
        self.lock().subscription_ttl_ms = ttl_ms;
    }

    /// Forgets every subscription, as a provider does that expired or
    /// dropped them: renewing one answers 404.
    pub fn drop_subscriptions(&self) {
        self.lock().subscriptions.clear();
    }

    /// Makes renewals fail (503) or succeed again.
    pub fn fail_renewals(&self, failing: bool) {
        self.lock().failing_renewals = failing;
    }

    /// Live subscriptions, by id.
    pub fn subscriptions(&self) -> Vec<String> {
        self.lock().subscriptions.keys().cloned().collect()
    }

    /// Requests so far to paths starting with `prefix` and ending with `suffix`.
    pub fn count(&self, method: &str, prefix: &str, suffix: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.method == method && c.path.starts_with(prefix) && c.path.ends_with(suffix)).count()
    }

    /// The current access token stops working (it expired early, say).
    pub fn expire_access_token(&self) {
        self.lock().access_token = None;
    }

    /// Access tokens issued from now on live `seconds`.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.lock().token_lifetime_s = seconds;
    }

    /// Every refresh token is revoked.
    pub fn revoke_refresh_tokens(&self) {
        self.lock().refresh_tokens.clear();
    }

    /// The form bodies the token endpoint received.
    pub fn token_requests(&self) -> Vec<std::collections::HashMap<String, String>> {
        self.lock().token_requests.clone()
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.lock().calls.clone()
    }

    /// Hooks registered now.
    pub fn hooks(&self) -> Vec<String> {
        self.lock().hooks.clone()
    }

    /// GitHub-shaped repository hooks now, by id.
    pub fn repo_hooks(&self) -> Vec<Value> {
        self.lock().repo_hooks.values().cloned().collect()
    }

    /// A repository hook someone made by hand (or an earlier registration
    /// left): its id.
    pub fn add_repo_hook(&self, url: &str, events: &[&str]) -> u64 {
        let mut state = self.lock();
        state.next_id += 1;
        let id = 400_000_000 + state.next_id as u64;
        let hook = json!({ "id": id, "active": true, "events": events, "config": { "url": url, "content_type": "json" } });
        state.repo_hooks.insert(id, hook);
        state.hooks.push(id.to_string());
        id
    }

    /// Deletes a repository hook behind the host's back.
    pub fn remove_repo_hook(&self, id: u64) {
        let mut state = self.lock();
        state.repo_hooks.remove(&id);
        state.hooks.retain(|hook| *hook != id.to_string());
    }

    /// Changes a repository hook's events behind the host's back.
    pub fn edit_repo_hook_events(&self, id: u64, events: &[&str]) {
        if let Some(hook) = self.lock().repo_hooks.get_mut(&id) {
            hook["events"] = json!(events);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("provider lock")
    }
}

/// Recorded as it arrives, then never answers.
async fn stall(State(inner): State<Shared>, headers: HeaderMap) {
    record(&inner, "GET", "/stall".into(), &headers, Value::Null);
    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
}

fn record(inner: &Shared, method: &str, path: String, headers: &HeaderMap, body: Value) {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let recorded = Recorded {
        method: method.into(),
        path,
        authorization: text(header::AUTHORIZATION),
        user_agent: text(header::USER_AGENT),
        body,
    };
    inner.lock().expect("provider lock").calls.push(recorded);
}

async fn create_hook(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    record(
        &inner,
        "POST",
        "/hooks".into(),
        &headers,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    );
    let stall = inner.lock().expect("provider lock").stall_creates_ms;
    tokio::time::sleep(std::time::Duration::from_millis(stall)).await;
    let mut state = inner.lock().expect("provider lock");
    if state.failing {
        let message = json!({ "message": "hook quota exceeded for this account" });
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(message)).into_response();
    }
    state.next_id += 1;
    let id = format!("hook_{}", state.next_id);
    state.hooks.push(id.clone());
    // Asked to sign, the provider generates the secret, as Stripe does
    // when a webhook endpoint is created.
    let signed = serde_json::from_str::<Value>(&body).is_ok_and(|b| b["signed"] == true);
    let secret = signed.then(|| issued_secret(&id));
    (StatusCode::CREATED, axum::Json(json!({ "id": id, "secret": secret }))).into_response()
}

async fn delete_hook(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    record(
        &inner,
        "DELETE",
        format!("/hooks/{id}"),
        &headers,
        Value::Null,
    );
    let mut state = inner.lock().expect("provider lock");
    let before = state.hooks.len();
    state.hooks.retain(|hook| *hook != id);
    if state.hooks.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// The client the fake OAuth2 provider knows.
pub const OAUTH_CLIENT: (&str, &str) = ("client_42", "client_secret_c0ffee");

/// The approval page, approved at once: a redirect back with a code, the
/// PKCE challenge remembered for the token request.
async fn oauth_authorize(State(inner): State<Shared>, Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    if param("client_id") != OAUTH_CLIENT.0 || param("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let mut state = inner.lock().expect("provider lock");
    state.next_id += 1;
    let code = format!("code_{}", state.next_id);
    state.oauth_codes.insert(code.clone(), (param("code_challenge"), param("redirect_uri")));
    let back = format!("{}?code={code}&state={}", param("redirect_uri"), param("state"));
    (StatusCode::FOUND, [(header::LOCATION, back)]).into_response()
}

/// RFC 6749's token endpoint for the authorization-code grant, checking
/// the client, the code, the redirect URI and the PKCE verifier.
async fn oauth_token(State(inner): State<Shared>, body: String) -> Response {
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut state = inner.lock().expect("provider lock");
    state.token_requests.push(form.clone());
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let invalid = |error: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error }))).into_response();
    if (field("client_id").as_str(), field("client_secret").as_str()) != OAUTH_CLIENT {
        return invalid("invalid_client");
    }
    let refresh_token = match field("grant_type").as_str() {
        "authorization_code" => {
            let Some((challenge, redirect_uri)) = state.oauth_codes.remove(&field("code")) else {
                return invalid("invalid_grant");
            };
            let verified = triggerhost::connections::pkce_challenge(&field("code_verifier")) == challenge;
            if field("redirect_uri") != redirect_uri || !verified {
                return invalid("invalid_grant");
            }
            state.next_id += 1;
            let refresh_token = format!("rt_{}_zz", state.next_id);
            state.refresh_tokens.insert(refresh_token.clone());
            Some(refresh_token)
        }
        // The refresh token stays the same (no rotation), as Google's does.
        "refresh_token" if state.refresh_tokens.contains(&field("refresh_token")) => None,
        _ => return invalid("invalid_grant"),
    };
    state.next_id += 1;
    let access_token = format!("at_{}_zz", state.next_id);
    state.access_token = Some(access_token.clone());
    let expires_in = if state.token_lifetime_s == 0 { 3600 } else { state.token_lifetime_s };
    axum::Json(json!({
        "access_token": access_token, "refresh_token": refresh_token,
        "token_type": "Bearer", "expires_in": expires_in, "scope": "read events",
    }))
    .into_response()
}

/// An API that wants the current access token.
async fn api_items(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let current = inner.lock().expect("provider lock").access_token.clone();
    match current {
        Some(token) if given == format!("Bearer {token}") => axum::Json(json!([])).into_response(),
        _ => (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "invalid_token" }))).into_response(),
    }
}

/// The signing secret the provider generates for hook `id`.
pub fn issued_secret(id: &str) -> String {
    format!("whsec_issued_for_{id}_k7Qx")
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn subscribe(State(inner): State<Shared>, headers: HeaderMap, body: String) -> Response {
    record(&inner, "POST", "/subscriptions".into(), &headers, serde_json::from_str(&body).unwrap_or(Value::Null));
    let mut state = inner.lock().expect("provider lock");
    state.next_id += 1;
    let id = format!("sub_{}", state.next_id);
    let expires_at_ms = unix_ms() + state.subscription_ttl_ms;
    state.subscriptions.insert(id.clone(), expires_at_ms);
    (StatusCode::CREATED, axum::Json(json!({ "id": id, "expires_at_ms": expires_at_ms }))).into_response()
}

async fn renew_subscription(State(inner): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    record(&inner, "POST", format!("/subscriptions/{id}/renew"), &headers, Value::Null);
    let mut state = inner.lock().expect("provider lock");
    if state.failing_renewals {
        return (StatusCode::SERVICE_UNAVAILABLE, "renewals are down").into_response();
    }
    let ttl = state.subscription_ttl_ms;
    match state.subscriptions.get_mut(&id) {
        Some(expires) => {
            *expires = unix_ms() + ttl;
            axum::Json(json!({ "id": id, "expires_at_ms": *expires })).into_response()
        }
        None => (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no such subscription" }))).into_response(),
    }
}

async fn unsubscribe(State(inner): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> StatusCode {
    record(&inner, "DELETE", format!("/subscriptions/{id}"), &headers, Value::Null);
    match inner.lock().expect("provider lock").subscriptions.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

/// GitHub's `POST /repos/{owner}/{repo}/hooks`: numeric hook ids.
async fn create_repo_hook(
    State(inner): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/hooks");
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(&inner, "POST", path, &headers, body.clone());
    let mut state = inner.lock().expect("provider lock");
    state.next_id += 1;
    let id = 400_000_000 + state.next_id as u64;
    state.hooks.push(id.to_string());
    let hook = github_hook(id, &body);
    state.repo_hooks.insert(id, hook.clone());
    (StatusCode::CREATED, axum::Json(hook)).into_response()
}

/// A hook as GitHub shows it: the secret masked.
fn github_hook(id: u64, body: &Value) -> Value {
    let mut config = body["config"].clone();
    if config.get("secret").is_some() {
        config["secret"] = json!("********");
    }
    json!({ "id": id, "type": "Repository", "active": body["active"].as_bool().unwrap_or(true), "events": body["events"], "config": config })
}

async fn list_repo_hooks(State(inner): State<Shared>, Path((owner, repo)): Path<(String, String)>, headers: HeaderMap) -> Response {
    record(&inner, "GET", format!("/repos/{owner}/{repo}/hooks"), &headers, Value::Null);
    let hooks: Vec<Value> = inner.lock().expect("provider lock").repo_hooks.values().cloned().collect();
    axum::Json(hooks).into_response()
}

async fn get_repo_hook(
    State(inner): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    record(&inner, "GET", format!("/repos/{owner}/{repo}/hooks/{id}"), &headers, Value::Null);
    let state = inner.lock().expect("provider lock");
    if state.failing_hook_reads {
        return (StatusCode::INTERNAL_SERVER_ERROR, "GitHub is having a bad day").into_response();
    }
    match state.repo_hooks.get(&id) {
        Some(hook) => axum::Json(hook.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn patch_repo_hook(
    State(inner): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(&inner, "PATCH", format!("/repos/{owner}/{repo}/hooks/{id}"), &headers, body.clone());
    let mut state = inner.lock().expect("provider lock");
    match state.repo_hooks.get_mut(&id) {
        Some(hook) => {
            *hook = github_hook(id, &body);
            axum::Json(hook.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_repo_hook(
    State(inner): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> StatusCode {
    record(&inner, "DELETE", format!("/repos/{owner}/{repo}/hooks/{id}"), &headers, Value::Null);
    let mut state = inner.lock().expect("provider lock");
    if let Ok(number) = id.parse::<u64>() {
        state.repo_hooks.remove(&number);
    }
    let before = state.hooks.len();
    state.hooks.retain(|hook| *hook != id);
    if state.hooks.len() < before { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND }
}

async fn redirect(Query(query): Query<std::collections::HashMap<String, String>>) -> Response {
    let to = query.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}
