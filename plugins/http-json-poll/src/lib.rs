//! Polls a JSON endpoint and emits each new item once.
//!
//! Config: `url` (the endpoint), `items_pointer` (a JSON pointer to the
//! array of items; the root by default), `id_field` (default `id`),
//! `time_field` (optional: a number of milliseconds, or of seconds below
//! 10^11), `lateness_ms` (how late an item may appear behind the newest one
//! seen; default 60 000), `backfill` (how many existing items the first
//! poll emits; default 0). The trigger secret, if set, is sent as a bearer
//! token. Items with a time are told apart by a watermark, others by the
//! ids seen.

mod connector;

use connector::HttpJsonPoll;

triggerhost_sdk::export_connector!(HttpJsonPoll);
