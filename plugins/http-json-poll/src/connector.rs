//! The connector itself, apart from its export, so a test build can export
//! the same code under another version.

use serde::Deserialize;
use triggerhost_sdk::polling::guest::{load_cursor, new_events};
use triggerhost_sdk::polling::{Dedupe, Item, Strategy};
use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::*;

/// The connector.
pub struct HttpJsonPoll;

#[derive(Deserialize)]
struct Config {
    url: String,
    #[serde(default)]
    items_pointer: String,
    #[serde(default = "default_id_field")]
    id_field: String,
    #[serde(default)]
    time_field: Option<String>,
    #[serde(default = "default_lateness")]
    lateness_ms: u64,
    #[serde(default)]
    backfill: usize,
    /// A JSON pointer to the next page's URL in an answer (absolute, or a
    /// path on the same origin).
    #[serde(default)]
    next_pointer: Option<String>,
    /// A JSON pointer to the next page's cursor, sent as `cursor_param`.
    #[serde(default)]
    cursor_pointer: Option<String>,
    /// The query parameter the cursor goes in.
    #[serde(default = "default_cursor_param")]
    cursor_param: String,
    /// Pages one poll reads at most.
    #[serde(default = "default_max_pages")]
    max_pages: usize,
}

fn default_cursor_param() -> String {
    "cursor".into()
}

fn default_max_pages() -> usize {
    5
}

fn default_id_field() -> String {
    "id".into()
}

fn default_lateness() -> u64 {
    60_000
}

/// Most items one poll looks at: a bigger answer is cut.
const MAX_ITEMS: usize = 1000;

impl Connector for HttpJsonPoll {
    fn describe() -> Manifest {
        let config = ConfigSchema::new()
            .prop("url", Prop::string("Endpoint URL").required())
            .prop("items_pointer", Prop::string("JSON pointer to the items array").default_value(""))
            .prop("id_field", Prop::string("Field holding an item's id").default_value("id"))
            .prop("time_field", Prop::string("Field holding an item's time (ms or s)"))
            .prop("lateness_ms", Prop::integer("How late an item may appear").minimum(0))
            .prop("backfill", Prop::integer("Existing items the first poll emits").minimum(0).maximum(100))
            .prop("next_pointer", Prop::string("JSON pointer to the next page's URL"))
            .prop("cursor_pointer", Prop::string("JSON pointer to the next page's cursor"))
            .prop("cursor_param", Prop::string("Query parameter for the cursor").default_value("cursor"))
            .prop("max_pages", Prop::integer("Pages one poll reads at most").minimum(1).maximum(20));
        ManifestBuilder::new("http-json-poll", "HTTP JSON poll", env!("CARGO_PKG_VERSION"))
            .description("Polls a JSON endpoint and emits each new item once.")
            .outbound_host("*")
            .key_value()
            .trigger(
                TriggerBuilder::polling("new_item", "New item")
                    .description("An item appeared in the endpoint's list.")
                    .config(config)
                    .sample_event(&serde_json::json!({ "id": "42", "title": "Hello" })),
            )
            .build()
    }

    fn poll(ctx: TriggerContext, _tick: PollTick) -> Result<RunOutput, ConnectorError> {
        let config: Config = ctx.config()?;
        let dedupe = Dedupe::new(match config.time_field {
            Some(_) => Strategy::Watermark { lateness_ms: config.lateness_ms },
            None => Strategy::SeenSet,
        });
        let cursor = load_cursor()?;
        // Older pages a capped poll left unread come first, then the top of
        // the list. Each chain stops at a page with nothing new: what lies
        // past it was seen before.
        let resume = store::get_string(RESUME_KEY)?;
        let resuming = resume.is_some();
        let mut pages_left = config.max_pages.max(1);
        let mut items = Vec::new();
        let mut unread = None;
        for start in resume.into_iter().chain(std::iter::once(config.url.clone())) {
            let mut next = Some(start);
            while let Some(url) = next.take() {
                if pages_left == 0 || items.len() >= MAX_ITEMS {
                    unread = unread.or(Some(url));
                    break;
                }
                pages_left -= 1;
                let body = fetch(&url, ctx.secret.as_deref())?;
                let page = page_items(&body, &config)?;
                let anything_new = cursor.is_some() && !dedupe.new_items(cursor.clone(), page.clone(), 0).0.is_empty();
                items.extend(page);
                if anything_new {
                    next = next_page(&body, &config);
                }
            }
        }
        // A baseline is what is visible now; older pages are old.
        match unread.filter(|_| cursor.is_some()) {
            Some(url) => store::set_string(RESUME_KEY, &url)?,
            None if resuming => store::delete(RESUME_KEY)?,
            // An idle poll writes nothing.
            None => {}
        }
        Ok(RunOutput::from_events(new_events(&dedupe, items, config.backfill)?))
    }
}

/// Where a capped poll stopped reading older pages.
const RESUME_KEY: &str = "poll.resume";

/// One page of the endpoint, as JSON.
fn fetch(url: &str, token: Option<&str>) -> Result<serde_json::Value, ConnectorError> {
    let mut request = Request::get(url).header("accept", "application/json");
    if let Some(token) = token {
        request = request.bearer(token);
    }
    request.send()?.error_for_status()?.json()
}

/// The URL of the page after `body`, if the answer names one.
fn next_page(body: &serde_json::Value, config: &Config) -> Option<String> {
    if let Some(pointer) = &config.next_pointer {
        let next = body.pointer(pointer)?.as_str()?;
        if next.starts_with("https://") || next.starts_with("http://") {
            return Some(next.to_owned());
        }
        // A path on the endpoint's own origin.
        let after_scheme = config.url.find("://")? + 3;
        let origin_end = config.url[after_scheme..].find('/').map_or(config.url.len(), |i| after_scheme + i);
        return next.starts_with('/').then(|| format!("{}{next}", &config.url[..origin_end]));
    }
    let pointer = config.cursor_pointer.as_ref()?;
    let cursor = match body.pointer(pointer)? {
        serde_json::Value::String(cursor) if !cursor.is_empty() => cursor.clone(),
        serde_json::Value::Number(cursor) => cursor.to_string(),
        _ => return None,
    };
    let separator = if config.url.contains('?') { '&' } else { '?' };
    Some(format!("{}{separator}{}={}", config.url, config.cursor_param, encode(&cursor)))
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The items of one page, with their ids and times.
fn page_items(body: &serde_json::Value, config: &Config) -> Result<Vec<Item>, ConnectorError> {
    let list = body.pointer(&config.items_pointer).and_then(|v| v.as_array()).ok_or_else(|| {
        ConnectorError::new(ErrorCode::Upstream, format!("no array at {:?} in the answer", config.items_pointer))
    })?;
    let mut items = Vec::new();
    for value in list.iter().take(MAX_ITEMS) {
        let id = match value.get(&config.id_field) {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(serde_json::Value::Number(id)) => id.to_string(),
            _ => continue,
        };
        let time_ms = config.time_field.as_ref().and_then(|field| value.get(field)).and_then(|t| t.as_u64()).map(|t| {
            // Seconds until the year 5138 in milliseconds.
            if t < 100_000_000_000 { t * 1000 } else { t }
        });
        items.push(Item { id, time_ms, event_type: "item".into(), payload: value.clone() });
    }
    Ok(items)
}
