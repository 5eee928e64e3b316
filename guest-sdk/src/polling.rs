//! Telling a poll's new items from those already emitted, with the
//! strategies connector authors know from Activepieces:
//!
//! - [`Strategy::Watermark`]: items carry a time; an item is new if it is
//!   not older than the newest time seen, less a lateness window, and its
//!   id has not been seen. Items sharing the watermark's timestamp, or
//!   arriving up to `lateness_ms` behind it, are not lost.
//! - [`Strategy::LastItem`]: the API lists newest first; the items before
//!   the last one emitted are new.
//! - [`Strategy::SeenSet`]: a bounded set of the ids emitted; anything else
//!   is new.
//!
//! The first poll (no cursor yet: a new trigger, or the operator reset it)
//! records a baseline and emits nothing old, except the newest `backfill`
//! items if asked. The cursor lives in the trigger's key-value store and is
//! written only if the poll succeeds, with the events it covers; events
//! carry the item id as their dedupe key, so the host drops a repeat as a
//! second line of defence.

use serde::{Deserialize, Serialize};

/// One item a poll found.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The provider's id for the item, unique within the feed.
    pub id: String,
    /// When the item was created or published (Unix ms), if known.
    pub time_ms: Option<u64>,
    /// The event type to emit it as.
    pub event_type: String,
    /// The item, as the event's payload.
    pub payload: serde_json::Value,
}

/// How new items are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// By time, with a window for items that arrive late.
    Watermark {
        /// How far behind the newest time seen an item may still arrive.
        lateness_ms: u64,
    },
    /// By the id of the newest item emitted (lists are newest first).
    LastItem,
    /// By a bounded set of the ids emitted.
    SeenSet,
}

/// Where polling stands, kept between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The newest item time seen.
    #[serde(default)]
    pub watermark_ms: Option<u64>,
    /// Ids seen, oldest first, with their times.
    #[serde(default)]
    pub seen: Vec<(String, Option<u64>)>,
    /// The newest item's id, for [`Strategy::LastItem`].
    #[serde(default)]
    pub last_id: Option<String>,
}

/// A strategy with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dedupe {
    /// The strategy.
    pub strategy: Strategy,
    /// Ids remembered at most.
    pub seen_capacity: usize,
}

impl Dedupe {
    /// `strategy`, remembering up to 1000 ids.
    pub fn new(strategy: Strategy) -> Self {
        Dedupe { strategy, seen_capacity: 1000 }
    }

    /// The items of this poll not emitted before, oldest first, and the
    /// cursor moved past them. Without a cursor, records a baseline and
    /// returns only the newest `backfill` items.
    pub fn new_items(&self, cursor: Option<Cursor>, items: Vec<Item>, backfill: usize) -> (Vec<Item>, Cursor) {
        let baseline = cursor.is_none();
        let mut cursor = cursor.unwrap_or_default();
        let mut fresh: Vec<Item> = match self.strategy {
            _ if baseline => newest(items.clone(), backfill),
            Strategy::Watermark { lateness_ms } => {
                let floor = cursor.watermark_ms.map(|w| w.saturating_sub(lateness_ms));
                items
                    .iter()
                    .filter(|item| !cursor.has_seen(&item.id))
                    .filter(|item| match (floor, item.time_ms) {
                        (Some(floor), Some(time)) => time >= floor,
                        _ => true,
                    })
                    .cloned()
                    .collect()
            }
            Strategy::LastItem => match &cursor.last_id {
                Some(last) => items.iter().take_while(|item| &item.id != last).cloned().collect(),
                None => items.clone(),
            },
            Strategy::SeenSet => items.iter().filter(|item| !cursor.has_seen(&item.id)).cloned().collect(),
        };
        // Within one poll an id counts once.
        let mut ids = std::collections::HashSet::new();
        fresh.retain(|item| ids.insert(item.id.clone()));
        let recorded = if baseline { &items } else { &fresh };
        for item in recorded {
            cursor.remember(item, self.seen_capacity);
        }
        if let Some(first) = items.first()
            && (baseline || self.strategy == Strategy::LastItem)
        {
            cursor.last_id = Some(first.id.clone());
        }
        if let Strategy::Watermark { lateness_ms } = self.strategy {
            cursor.forget_before(lateness_ms);
        }
        if fresh.iter().all(|item| item.time_ms.is_some()) {
            fresh.sort_by_key(|item| item.time_ms);
        } else if self.strategy == Strategy::LastItem {
            fresh.reverse();
        }
        (fresh, cursor)
    }
}

/// The newest `count` items: by time if every item has one, else the first.
fn newest(mut items: Vec<Item>, count: usize) -> Vec<Item> {
    if items.iter().all(|item| item.time_ms.is_some()) {
        items.sort_by_key(|item| std::cmp::Reverse(item.time_ms));
    }
    items.truncate(count);
    items
}

impl Cursor {
    fn has_seen(&self, id: &str) -> bool {
        self.seen.iter().any(|(seen, _)| seen == id)
    }

    fn remember(&mut self, item: &Item, capacity: usize) {
        if let Some(time) = item.time_ms {
            self.watermark_ms = Some(self.watermark_ms.map_or(time, |w| w.max(time)));
        }
        if !self.has_seen(&item.id) {
            self.seen.push((item.id.clone(), item.time_ms));
        }
        let excess = self.seen.len().saturating_sub(capacity);
        self.seen.drain(..excess);
    }

    /// Ids older than the lateness window cannot come back as new: the
    /// watermark already keeps them out.
    fn forget_before(&mut self, lateness_ms: u64) {
        if let Some(floor) = self.watermark_ms.map(|w| w.saturating_sub(lateness_ms)) {
            self.seen.retain(|(_, time)| time.is_none_or(|t| t >= floor));
        }
    }
}

/// The guest side: the cursor in the trigger's key-value store, new items
/// as events.
#[cfg(feature = "guest")]
pub mod guest {
    use super::{Cursor, Dedupe, Item};
    use crate::{ConnectorError, ErrorCode, Event, kv};

    /// The key the cursor is kept under.
    pub const CURSOR_KEY: &str = "poll.cursor";

    /// The cursor as the last successful poll left it; `None` before the
    /// first one (the next poll is a baseline). Useful to tell, page by
    /// page, whether reading further can find anything new.
    pub fn load_cursor() -> Result<Option<Cursor>, ConnectorError> {
        Ok(kv::get(CURSOR_KEY)?.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// The events for this poll's new items, oldest first, with the cursor
    /// moved past them in the key-value store (stored only if the poll
    /// succeeds, together with these events).
    pub fn new_events(dedupe: &Dedupe, items: Vec<Item>, backfill: usize) -> Result<Vec<Event>, ConnectorError> {
        let stored = kv::get(CURSOR_KEY)?;
        let previous = stored.as_deref().and_then(|bytes| serde_json::from_slice(bytes).ok());
        let (fresh, cursor) = dedupe.new_items(previous, items, backfill);
        let bytes = serde_json::to_vec(&cursor)
            .map_err(|e| ConnectorError::new(ErrorCode::Internal, format!("poll cursor: {e}")))?;
        // A poll that moved nothing writes nothing: idle polls cost the
        // store no write.
        if stored.as_deref() != Some(bytes.as_slice()) {
            kv::set(CURSOR_KEY, &bytes)?;
        }
        fresh
            .into_iter()
            .map(|item| {
                let mut event = Event::json(&item.event_type, &item.payload)?.dedupe_key(item.id);
                event.occurred_at_ms = item.time_ms;
                Ok(event)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, time: Option<u64>) -> Item {
        Item { id: id.into(), time_ms: time, event_type: "item".into(), payload: serde_json::json!({ "id": id }) }
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn the_first_poll_is_a_baseline_with_optional_backfill() {
        let dedupe = Dedupe::new(Strategy::Watermark { lateness_ms: 0 });
        let items = vec![item("a", Some(1)), item("b", Some(3)), item("c", Some(2))];
        let (fresh, cursor) = dedupe.new_items(None, items.clone(), 0);
        assert!(fresh.is_empty());
        assert_eq!(cursor.watermark_ms, Some(3));
        let (fresh, _) = dedupe.new_items(None, items, 2);
        assert_eq!(ids(&fresh), ["c", "b"]);
    }

    #[test]
    fn items_sharing_the_watermark_or_arriving_late_are_not_lost_nor_repeated() {
        let dedupe = Dedupe::new(Strategy::Watermark { lateness_ms: 10 });
        let (_, cursor) = dedupe.new_items(None, vec![item("a", Some(100))], 0);
        // b shares a's timestamp; c is late but within the window; d is too old.
        let poll = vec![item("a", Some(100)), item("b", Some(100)), item("c", Some(95)), item("d", Some(80))];
        let (fresh, cursor) = dedupe.new_items(Some(cursor), poll.clone(), 0);
        assert_eq!(ids(&fresh), ["c", "b"]);
        let (fresh, _) = dedupe.new_items(Some(cursor), poll, 0);
        assert!(fresh.is_empty(), "{:?}", ids(&fresh));
    }

    #[test]
    fn last_item_and_seen_set() {
        let last = Dedupe::new(Strategy::LastItem);
        let (_, cursor) = last.new_items(None, vec![item("2", None), item("1", None)], 0);
        let (fresh, cursor) = last.new_items(Some(cursor), vec![item("4", None), item("3", None), item("2", None)], 0);
        assert_eq!(ids(&fresh), ["3", "4"]);
        assert_eq!(cursor.last_id.as_deref(), Some("4"));

        let seen = Dedupe { strategy: Strategy::SeenSet, seen_capacity: 3 };
        let (_, cursor) = seen.new_items(None, vec![item("x", None)], 0);
        let (fresh, cursor) = seen.new_items(Some(cursor), vec![item("y", None), item("x", None), item("y", None)], 0);
        assert_eq!(ids(&fresh), ["y"]);
        assert_eq!(cursor.seen.len(), 2);
    }
}
