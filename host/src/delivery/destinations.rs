//! Destinations as an operator configures them: a URL that passes the same
//! address checks as connectors' outbound HTTP, a `whsec_` secret sealed at
//! rest, an optional event-type filter, caps, and enabled or paused.

use serde::{Deserialize, Serialize};

use super::{Delivery, DeliveryError, not_found, signing};
use crate::capabilities::http::{Host, Target, non_public};
use crate::secrets::Secret;
use crate::store::{DestinationCounts, DestinationRow, now_ms};

/// Destination states.
pub mod status {
    /// Receives events.
    pub const ENABLED: &str = "enabled";
    /// Jobs are queued, not sent, until resumed.
    pub const PAUSED: &str = "paused";
    /// Stopped by a 410 or by failing too long; its jobs dead-lettered.
    pub const DISABLED: &str = "disabled";
}

/// Longest URL.
const MAX_URL: usize = 2048;
/// Event types in one filter at most.
const MAX_EVENT_TYPES: usize = 64;
/// Longest event type in a filter.
const MAX_EVENT_TYPE: usize = 256;
/// The highest per-destination in-flight cap.
const MAX_IN_FLIGHT: i64 = 256;
/// The highest per-destination rate, attempts a second.
const MAX_RATE: i64 = 10_000;

/// `POST /api/v1/triggers/{id}/destinations`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDestination {
    /// Where to POST.
    pub url: String,
    /// `whsec_...`; generated when left out.
    #[serde(default)]
    pub secret: Option<String>,
    /// Only these event types.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// One at a time, in event order.
    #[serde(default)]
    pub ordered: bool,
    /// Attempts in flight at most.
    #[serde(default)]
    pub max_in_flight: Option<i64>,
    /// Attempts started per second at most.
    #[serde(default)]
    pub rate_per_s: Option<i64>,
    /// Created paused.
    #[serde(default)]
    pub paused: bool,
}

/// `PATCH .../destinations/{id}`: fields left out stay; `null` clears the
/// filter and the caps.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationPatch {
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// `enabled` (also resumes a disabled one) or `paused`.
    #[serde(default)]
    pub status: Option<String>,
    /// A new filter, or `null` for every type.
    #[serde(default, deserialize_with = "crate::json::nullable")]
    pub event_types: Option<Option<Vec<String>>>,
    /// In order or not.
    #[serde(default)]
    pub ordered: Option<bool>,
    /// A new in-flight cap, or `null` for the host default.
    #[serde(default, deserialize_with = "crate::json::nullable")]
    pub max_in_flight: Option<Option<i64>>,
    /// A new rate, or `null` for none.
    #[serde(default, deserialize_with = "crate::json::nullable")]
    pub rate_per_s: Option<Option<i64>>,
}

/// A destination as the API shows it. The secret appears only in the
/// answers that set it (create and rotate).
#[derive(Debug, Clone, Serialize)]
pub struct DestinationView {
    /// `dst_<hex>`.
    pub id: String,
    /// Its trigger.
    pub trigger_id: String,
    /// Where events go.
    pub url: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: String,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// The filter.
    pub event_types: Option<Vec<String>>,
    /// In order.
    pub ordered: bool,
    /// In-flight cap, if its own.
    pub max_in_flight: Option<i64>,
    /// Rate cap.
    pub rate_per_s: Option<i64>,
    /// Since when every attempt has failed.
    pub failing_since_ms: Option<i64>,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// Until when the previous secret signs too, after a rotation.
    pub previous_secret_expires_at_ms: Option<i64>,
    /// Jobs pending, delivered and dead.
    pub deliveries: DestinationCounts,
    /// The signing secret (create and rotate only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Created.
    pub created_at_ms: i64,
    /// Last changed.
    pub updated_at_ms: i64,
}

/// What a destination's sealed secret is bound to.
pub(super) fn secret_field(id: &str) -> String {
    format!("destination {id} secret")
}

/// Reads a destination URL: `https`, or plain `http` and private addresses
/// only when the operator allows private destinations. A name is checked
/// again at each connection, against what it resolves to then.
pub fn check_url(url: &str, allow_private: bool) -> Result<Target, DeliveryError> {
    if url.len() > MAX_URL {
        return Err(DeliveryError::Invalid(format!("url: longer than {MAX_URL} bytes")));
    }
    let target = Target::parse(url).map_err(|e| DeliveryError::Invalid(format!("url: {e}")))?;
    if target.scheme != "https" && !allow_private {
        return Err(DeliveryError::Invalid(
            "url: only https destinations ([delivery] allow_private = true allows plain http)".into(),
        ));
    }
    if let Host::Ip(ip) = target.host
        && let Some(kind) = non_public(ip)
        && !allow_private
    {
        return Err(DeliveryError::Invalid(format!(
            "url: {ip} is a {kind} address ([delivery] allow_private = true allows it)"
        )));
    }
    Ok(target)
}

fn check_event_types(types: &Option<Vec<String>>) -> Result<Option<String>, DeliveryError> {
    let Some(types) = types else { return Ok(None) };
    if types.is_empty() || types.len() > MAX_EVENT_TYPES {
        return Err(DeliveryError::Invalid(format!("event_types: 1 to {MAX_EVENT_TYPES} types, or null for all")));
    }
    if types.iter().any(|t| t.is_empty() || t.len() > MAX_EVENT_TYPE) {
        return Err(DeliveryError::Invalid(format!("event_types: each 1 to {MAX_EVENT_TYPE} bytes")));
    }
    Ok(Some(serde_json::to_string(types).unwrap_or_default()))
}

fn check_cap(name: &str, value: Option<i64>, max: i64) -> Result<Option<i64>, DeliveryError> {
    match value {
        Some(v) if !(1..=max).contains(&v) => Err(DeliveryError::Invalid(format!("{name}: 1 to {max}"))),
        other => Ok(other),
    }
}

fn view(row: &DestinationRow, deliveries: DestinationCounts, secret: Option<Secret>) -> DestinationView {
    DestinationView {
        id: row.id.clone(),
        trigger_id: row.trigger_id.clone(),
        url: row.url.clone(),
        status: row.status.clone(),
        disabled_reason: row.disabled_reason.clone(),
        event_types: row.event_types.as_deref().and_then(|t| serde_json::from_str(t).ok()),
        ordered: row.ordered,
        max_in_flight: row.max_in_flight,
        rate_per_s: row.rate_per_s,
        failing_since_ms: row.failing_since_ms,
        last_error: row.last_error.clone(),
        previous_secret_expires_at_ms: row.previous_secret_until_ms.filter(|until| *until > now_ms()),
        deliveries,
        secret: secret.map(Secret::into_exposed),
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    }
}

impl Delivery {
    /// Adds a destination to a trigger; the answer carries its secret.
    pub async fn create(&self, trigger_id: &str, new: NewDestination) -> Result<DestinationView, DeliveryError> {
        self.store.get_trigger(trigger_id).await.map_err(|e| not_found(e, "trigger", trigger_id))?;
        check_url(&new.url, self.settings.allow_private)?;
        let secret = match new.secret {
            Some(given) => {
                signing::key_of(&given).map_err(|e| DeliveryError::Invalid(format!("secret: {e}")))?;
                Secret::new(given)
            }
            None => signing::generate_secret().map_err(|e| DeliveryError::Internal(e.to_string()))?,
        };
        let id = crate::ids::new_id("dst").map_err(|e| DeliveryError::Internal(format!("no randomness for an id: {e}")))?;
        let now = now_ms();
        let row = DestinationRow {
            secret: self.secrets.seal(secret.expose(), &secret_field(&id))?,
            id,
            trigger_id: trigger_id.to_owned(),
            url: new.url,
            previous_secret: None,
            previous_secret_until_ms: None,
            event_types: check_event_types(&new.event_types)?,
            status: if new.paused { status::PAUSED } else { status::ENABLED }.to_owned(),
            disabled_reason: None,
            ordered: new.ordered,
            max_in_flight: check_cap("max_in_flight", new.max_in_flight, MAX_IN_FLIGHT)?,
            rate_per_s: check_cap("rate_per_s", new.rate_per_s, MAX_RATE)?,
            failing_since_ms: None,
            last_error: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.insert_destination(&row).await?;
        self.follow(&row)?;
        Ok(view(&row, DestinationCounts::default(), Some(secret)))
    }

    /// A trigger's destinations.
    pub async fn list(&self, trigger_id: &str) -> Result<Vec<DestinationView>, DeliveryError> {
        self.store.get_trigger(trigger_id).await.map_err(|e| not_found(e, "trigger", trigger_id))?;
        let mut views = Vec::new();
        for row in self.store.list_destinations(trigger_id).await? {
            views.push(view(&row, self.store.destination_counts(&row.id).await?, None));
        }
        Ok(views)
    }

    /// One destination of a trigger.
    pub async fn get(&self, trigger_id: &str, id: &str) -> Result<DestinationView, DeliveryError> {
        let row = self.destination(trigger_id, id).await?;
        Ok(view(&row, self.store.destination_counts(id).await?, None))
    }

    pub(super) async fn destination(&self, trigger_id: &str, id: &str) -> Result<DestinationRow, DeliveryError> {
        match self.store.get_destination(id).await {
            Ok(row) if row.trigger_id == trigger_id => Ok(row),
            Ok(_) => Err(DeliveryError::NotFound(format!("trigger {trigger_id} has no destination {id}"))),
            Err(error) => Err(not_found(error, "destination", id)),
        }
    }

    /// Changes a destination. Enabling a disabled one resumes it afresh.
    pub async fn patch(&self, trigger_id: &str, id: &str, patch: DestinationPatch) -> Result<DestinationView, DeliveryError> {
        let mut row = self.destination(trigger_id, id).await?;
        let was = row.status.clone();
        if let Some(url) = patch.url {
            check_url(&url, self.settings.allow_private)?;
            row.url = url;
        }
        if let Some(types) = patch.event_types {
            row.event_types = check_event_types(&types)?;
        }
        if let Some(ordered) = patch.ordered {
            row.ordered = ordered;
        }
        if let Some(cap) = patch.max_in_flight {
            row.max_in_flight = check_cap("max_in_flight", cap, MAX_IN_FLIGHT)?;
        }
        if let Some(rate) = patch.rate_per_s {
            row.rate_per_s = check_cap("rate_per_s", rate, MAX_RATE)?;
        }
        match patch.status.as_deref() {
            None => {}
            Some(status::ENABLED) => {
                row.status = status::ENABLED.into();
                row.disabled_reason = None;
            }
            Some(status::PAUSED) => row.status = status::PAUSED.into(),
            Some(other) => return Err(DeliveryError::Invalid(format!("status: enabled or paused, not {other}"))),
        }
        let resumed = was == status::DISABLED && row.status == status::ENABLED;
        self.save(&mut row, &was, resumed).await?;
        self.get(trigger_id, id).await
    }

    /// Writes a changed destination, stamped now, if its status is still
    /// `was`, and makes its lane follow.
    async fn save(&self, row: &mut DestinationRow, was: &str, resumed: bool) -> Result<(), DeliveryError> {
        row.updated_at_ms = now_ms();
        if !self.store.update_destination(row, was, resumed).await? {
            return Err(DeliveryError::Conflict(format!(
                "destination {} changed meanwhile (an attempt may have disabled it); read it and try again",
                row.id
            )));
        }
        self.follow(row)
    }

    /// Removes a destination with its jobs.
    pub async fn delete(&self, trigger_id: &str, id: &str) -> Result<(), DeliveryError> {
        self.destination(trigger_id, id).await?;
        self.store.delete_destination(id).await?;
        self.forget(id);
        Ok(())
    }

    /// A new secret (given or generated); the old one keeps signing beside
    /// it for the grace period, so receivers can switch without a gap.
    pub async fn rotate(&self, trigger_id: &str, id: &str, secret: Option<String>) -> Result<DestinationView, DeliveryError> {
        let mut row = self.destination(trigger_id, id).await?;
        let secret = match secret {
            Some(given) => {
                signing::key_of(&given).map_err(|e| DeliveryError::Invalid(format!("secret: {e}")))?;
                Secret::new(given)
            }
            None => signing::generate_secret().map_err(|e| DeliveryError::Internal(e.to_string()))?,
        };
        let grace = i64::try_from(self.settings.rotation_grace.as_millis()).unwrap_or(i64::MAX);
        row.previous_secret = Some(std::mem::replace(&mut row.secret, self.secrets.seal(secret.expose(), &secret_field(id))?));
        row.previous_secret_until_ms = Some(now_ms().saturating_add(grace));
        let was = row.status.clone();
        self.save(&mut row, &was, false).await?;
        Ok(view(&row, self.store.destination_counts(id).await?, Some(secret)))
    }
}
