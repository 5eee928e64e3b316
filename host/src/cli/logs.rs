//! `triggerhost trigger logs ID [--follow]`: what a trigger's connector
//! wrote on its calls, oldest first, as `tail` would show it.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::client::Client;
use super::text;

/// How often `--follow` asks for new entries.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// Prints the newest `lines` calls' logs; with `follow`, then every new one
/// until interrupted.
pub(super) async fn show(client: &Client, id: &str, lines: u32, follow: bool) -> anyhow::Result<()> {
    let page = client.send(Method::GET, &format!("/triggers/{id}/logs?limit={lines}"), None).await?;
    let newest_first = page["logs"].as_array().cloned().unwrap_or_default();
    let mut last_seq = newest_first.first().and_then(|log| log["seq"].as_i64()).unwrap_or(0);
    for log in newest_first.iter().rev() {
        print_log(log);
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let page = client.send(Method::GET, &format!("/triggers/{id}/logs?after={last_seq}&limit=500"), None).await?;
        for log in page["logs"].as_array().into_iter().flatten() {
            print_log(log);
            last_seq = log["seq"].as_i64().unwrap_or(last_seq);
        }
    }
}

/// One call's log: a header line, then its text.
fn print_log(log: &Value) {
    let at = log["at_ms"].as_i64().map(crate::timestamp::rfc3339).unwrap_or_default();
    let mut header = format!("--- {at} {} {} {}", text(&log["export"]), text(&log["outcome"]), text(&log["plugin_version"]));
    if let Some(skipped) = log["skipped_calls"].as_i64().filter(|n| *n > 0) {
        header.push_str(&format!(" ({skipped} calls before not kept: over the rate)"));
    }
    if let Some(dropped) = log["dropped_bytes"].as_i64().filter(|n| *n > 0) {
        header.push_str(&format!(" ({dropped} bytes past the cap dropped)"));
    }
    println!("{header}");
    let body = log["text"].as_str().unwrap_or_default();
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
}
