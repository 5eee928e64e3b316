//! Polls an RSS 2.0 or Atom feed and emits each new entry once.
//!
//! Config: `url` (the feed), `backfill` (how many existing entries the
//! first poll emits; default 0). Entries are told apart by the ids seen
//! (`guid`, Atom `id`, else the link); each event carries the entry's id as
//! its dedupe key and its published (else updated) time.

mod date;
pub mod feed;

use serde::Deserialize;
use triggerhost_sdk::polling::{Dedupe, Item, Strategy, guest::new_events};
use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::*;

struct Rss;

#[derive(Deserialize)]
struct Config {
    url: String,
    #[serde(default)]
    backfill: usize,
}

impl Connector for Rss {
    fn describe() -> Manifest {
        let config = ConfigSchema::new()
            .prop("url", Prop::string("Feed URL").required())
            .prop("backfill", Prop::integer("Existing entries the first poll emits").minimum(0).maximum(100));
        ManifestBuilder::new("rss", "RSS and Atom", env!("CARGO_PKG_VERSION"))
            .description("Polls an RSS 2.0 or Atom feed and emits each new entry once.")
            .outbound_host("*")
            .key_value()
            .trigger(
                TriggerBuilder::polling("new_entry", "New entry")
                    .description("An entry appeared in the feed.")
                    .config(config)
                    .sample_event(&serde_json::json!({
                        "id": "https://example.com/posts/1",
                        "title": "Hello",
                        "link": "https://example.com/posts/1",
                        "published_ms": 1_700_000_000_000u64
                    })),
            )
            .build()
    }

    fn poll(ctx: TriggerContext, _tick: PollTick) -> Result<RunOutput, ConnectorError> {
        let config: Config = ctx.config()?;
        let response = Request::get(&config.url)
            .header("accept", "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8")
            .send()?
            .error_for_status()?;
        let xml = String::from_utf8_lossy(response.body());
        let entries = feed::entries(&xml).map_err(|e| ConnectorError::new(ErrorCode::Upstream, e))?;
        let items = entries
            .into_iter()
            .map(|entry| Item {
                id: entry.id.clone(),
                time_ms: entry.published_ms.or(entry.updated_ms),
                event_type: "entry".into(),
                payload: serde_json::to_value(&entry).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        let dedupe = Dedupe::new(Strategy::SeenSet);
        Ok(RunOutput::from_events(new_events(&dedupe, items, config.backfill)?))
    }
}

export_connector!(Rss);
