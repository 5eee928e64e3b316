//! The connector itself, apart from its export, so a test build can export
//! the same code under another version.

use serde::Deserialize;
use triggerhost_sdk::polling::{Dedupe, Item, Strategy, guest::new_events};
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
            .prop("backfill", Prop::integer("Existing items the first poll emits").minimum(0).maximum(100));
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

    fn run(ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        let RunInput::Poll(_tick) = input else {
            return Err(ConnectorError::new(ErrorCode::BadRequest, "this connector polls; it takes no webhooks"));
        };
        let config: Config = ctx.config()?;
        let mut request = Request::get(&config.url).header("accept", "application/json");
        if let Some(token) = &ctx.secret {
            request = request.bearer(token);
        }
        let body: serde_json::Value = request.send()?.error_for_status()?.json()?;
        let items = items(&body, &config)?;
        let dedupe = Dedupe::new(match config.time_field {
            Some(_) => Strategy::Watermark { lateness_ms: config.lateness_ms },
            None => Strategy::SeenSet,
        });
        Ok(RunOutput::from_events(new_events(&dedupe, items, config.backfill)?))
    }
}

/// The items of an answer, with their ids and times.
fn items(body: &serde_json::Value, config: &Config) -> Result<Vec<Item>, ConnectorError> {
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
