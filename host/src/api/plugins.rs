//! `/api/v1/plugins`: upload, list, inspect, activate, delete a version, grant.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiJson};
use crate::capabilities::grant::{Allowance, Grant, LimitOverrides, Origin, Reuse};
use crate::app::AppState;
use crate::contract::Manifest;
use crate::store::{PluginRow, PluginVersionRow};
use crate::triggers::TriggerError;

/// `POST /api/v1/plugins?dry_run=true`: check and describe, store nothing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Answer 200 with `{digest, size_bytes, contract, manifest, registered}`
    /// (`registered`: `new`, `same` or `conflict`) and register nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/plugins` with the component as the body.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    params(UploadQuery),
    request_body(content = Vec<u8>, description = "The compiled component", content_type = "application/wasm"),
    responses(
        (status = 201, description = "Registered: `{name, version, digest, triggers, requested, created}`", body = Object),
        (status = 200, description = "The same bytes were registered before; with `dry_run`, what would be registered", body = Object),
        (status = 400, description = "Not a valid component or manifest (`invalid-component`, `invalid-manifest` with the problems)", body = crate::api::ErrorBody),
        (status = 409, description = "The same name and version with other bytes", body = crate::api::ErrorBody),
        (status = 413, description = "Larger than the component cap", body = crate::api::ErrorBody),
        (status = 415, description = "Not `application/wasm`", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn upload(
    State(app): State<Arc<AppState>>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let body = body.map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", e.body_text()))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.is_empty() && content_type != "application/wasm" && content_type != "application/octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the component as application/wasm",
        ));
    }
    if query.dry_run {
        return Ok(axum::Json(app.registry.inspect(&body).await?).into_response());
    }
    let registered = app.registry.register(&body).await?;
    // The other nodes load it now, so that its activation is a swap there too.
    app.cluster.announce(crate::cluster::changes::Change::Plugin(registered.name.clone())).await;
    let status = if registered.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(registered)).into_response())
}

#[derive(Debug, Serialize)]
struct VersionView {
    version: String,
    digest: String,
    size_bytes: i64,
    created_at_ms: i64,
    active: bool,
    triggers: serde_json::Value,
    /// What the manifest asks for.
    requested: serde_json::Value,
    /// What it may use, and what it asks for that is not granted.
    granted: serde_json::Value,
}

fn version_view(app: &AppState, row: PluginVersionRow, active: &str) -> VersionView {
    let manifest: serde_json::Value = serde_json::from_str(&row.manifest).unwrap_or_default();
    // From the stored manifest: the version need not be loaded.
    let granted = serde_json::from_str::<Manifest>(&row.manifest)
        .map(|stored| grant_view(&Grant::new(&stored.capabilities, &app.registry.allowance(&row.name))))
        .unwrap_or_default();
    VersionView {
        active: row.version == active,
        triggers: manifest.get("triggers").cloned().unwrap_or_default(),
        requested: manifest.get("capabilities").cloned().unwrap_or_default(),
        granted,
        version: row.version,
        digest: row.digest,
        size_bytes: row.size_bytes,
        created_at_ms: row.created_at_ms,
    }
}

/// Origins as the API writes them: `scheme://host:port`.
fn origins(outbound: &[Origin]) -> Vec<String> {
    outbound.iter().map(ToString::to_string).collect()
}

fn grant_view(grant: &Grant) -> serde_json::Value {
    json!({ "outbound_hosts": origins(&grant.outbound), "key_value": grant.key_value, "missing": grant.missing })
}

fn allowance_view(allowance: &Allowance) -> serde_json::Value {
    json!({
        "outbound_hosts": origins(&allowance.outbound),
        "key_value": allowance.key_value,
        "limits": allowance.limits,
        "reuse": allowance.reuse,
    })
}

async fn plugin_view(app: &AppState, plugin: PluginRow) -> Result<serde_json::Value, ApiError> {
    let versions: Vec<VersionView> = app
        .store
        .list_versions(&plugin.name)
        .await?
        .into_iter()
        .map(|row| version_view(app, row, &plugin.active_version))
        .collect();
    Ok(json!({
        "name": plugin.name,
        "active_version": plugin.active_version,
        "previous_version": plugin.previous_version,
        "allowed": allowance_view(&app.registry.allowance(&plugin.name)),
        "created_at_ms": plugin.created_at_ms,
        "updated_at_ms": plugin.updated_at_ms,
        "versions": versions,
    }))
}

/// `GET /api/v1/plugins`.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins",
    responses(
        (status = 200, description = "`{plugins: [...]}`: versions, digests, the active version, requested vs granted capabilities", body = Object),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn list(State(app): State<Arc<AppState>>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let mut plugins = Vec::new();
    for plugin in app.store.list_plugins().await? {
        plugins.push(plugin_view(&app, plugin).await?);
    }
    Ok(axum::Json(json!({ "plugins": plugins })))
}

/// `GET /api/v1/plugins/{name}`.
#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    responses(
        (status = 200, description = "The plugin with its versions and grants", body = Object),
        (status = 404, description = "No such plugin", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn get(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let plugin = app.store.get_plugin(&name).await.map_err(|_| ApiError::not_found(format!("no plugin {name}")))?;
    Ok(axum::Json(plugin_view(&app, plugin).await?))
}

/// `POST /api/v1/plugins/{name}/activate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    version: String,
    /// Disable the triggers the version would break instead of refusing.
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/plugins/{name}/activate`: hot swap or roll back. Refused
/// (409, with the list) when it would break triggers following the active
/// version, unless forced; answers with the plugin and the triggers a
/// forced activation disabled.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/activate", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = Activate,
    responses(
        (status = 200, description = "Activated; `disabled_triggers` lists what a forced activation disabled", body = Object),
        (status = 404, description = "No such plugin or version", body = crate::api::ErrorBody),
        (status = 409, description = "Would break triggers (`would-break-triggers`, with the list) or needs what is not granted (`not-granted`, with what is missing)", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn activate(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Activate>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let disabled = app.triggers.activate(&name, &body.version, body.force).await.map_err(|error| match error {
        // The version is this route's resource: missing, it is a 404.
        TriggerError::Plugin(registry) => ApiError::from(registry),
        other => ApiError::from(other),
    })?;
    let plugin = app.store.get_plugin(&name).await?;
    let mut view = plugin_view(&app, plugin).await?;
    view["disabled_triggers"] = json!(disabled);
    Ok(axum::Json(view))
}

/// `DELETE /api/v1/plugins/{name}/versions/{version}`: removes a version
/// that is neither active nor pinned by a trigger (409 otherwise).
#[utoipa::path(delete, path = "/api/v1/plugins/{name}/versions/{version}", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name"), ("version" = String, Path, description = "Plugin version")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such plugin or version", body = crate::api::ErrorBody),
        (status = 409, description = "Active or pinned by a trigger (`in-use`)", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn delete_version(
    State(app): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    app.registry.delete_version(&name, &version).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/plugins/{name}/grants` body: what the operator allows.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Origins: `https://host[:port]`, `https://*.suffix[:port]`, `http://host:port`.
    #[serde(default)]
    outbound_hosts: Vec<String>,
    /// Whether the key-value store may be used.
    #[serde(default)]
    key_value: bool,
    /// Per-plugin limits, within the host's maxima.
    #[serde(default)]
    #[schema(value_type = Object)]
    limits: LimitOverrides,
    /// Instance reuse: `{"max_calls": N, "max_age_s": T}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    reuse: Option<Reuse>,
}

/// `PUT /api/v1/plugins/{name}/grants`: replaces what the plugin is
/// allowed; answers with the allowance and the active version's grant.
#[utoipa::path(put, path = "/api/v1/plugins/{name}/grants", tag = "plugins",
    params(("name" = String, Path, description = "Plugin name")),
    request_body = Grants,
    responses(
        (status = 200, description = "The allowance and the active version's effective grant (`granted.missing` lists what it asks for beyond it)", body = Object),
        (status = 400, description = "An origin or limit that does not parse", body = crate::api::ErrorBody),
        (status = 404, description = "No such plugin", body = crate::api::ErrorBody),
        (status = 503, description = "The database is busy; retry after `Retry-After`", body = crate::api::ErrorBody),
    ))]
pub async fn put_grants(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Grants>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let outbound = body
        .outbound_hosts
        .iter()
        .map(|origin| Origin::parse(origin))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let allowance = Allowance { outbound, key_value: body.key_value, limits: body.limits, reuse: body.reuse };
    app.registry.set_allowance(&name, allowance.clone()).await?;
    let plugin = app.store.get_plugin(&name).await?;
    let grant = app.registry.grant(&name, &plugin.active_version)?;
    Ok(axum::Json(json!({
        "name": name,
        "allowed": allowance_view(&allowance),
        "active_version": plugin.active_version,
        "granted": grant_view(&grant),
    })))
}
