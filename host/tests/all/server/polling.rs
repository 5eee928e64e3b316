//! Polling over the real server: a feed on 127.0.0.1 whose content changes
//! between polls, the http-json-poll connector, and every item emitted
//! exactly once through shared timestamps, late items, edits, disable and
//! enable, a restart, a reset and a failing feed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Response};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::host::{Host, spawn_host, spawn_host_with_config};

/// Item times, in milliseconds (November 2023).
const T0: u64 = 1_700_000_000_000;

/// How the feed answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Items,
    Error,
    Garbage,
    /// Never answers.
    Hang,
    /// Answers after 300 ms, counting the requests it holds at once in
    /// [`Feed::slow_at_once`].
    Slow,
}

#[derive(Clone)]
pub(crate) struct Feed {
    items: Arc<Mutex<Vec<Value>>>,
    pub(crate) requests: Arc<std::sync::atomic::AtomicUsize>,
    mode: Arc<Mutex<Mode>>,
    /// Requests held by [`Mode::Slow`] now, and the most at any time.
    pub(crate) slow_at_once: Arc<[std::sync::atomic::AtomicUsize; 2]>,
    url: String,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

impl Feed {
    pub(crate) async fn start() -> Feed {
        let items: Arc<Mutex<Vec<Value>>> = Arc::default();
        let mode = Arc::new(Mutex::new(Mode::Items));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let slow_at_once: Arc<[std::sync::atomic::AtomicUsize; 2]> = Arc::default();
        let app = axum::Router::new()
            .route("/items", axum::routing::get(answer))
            .route("/rss", axum::routing::get(rss))
            .route("/paged", axum::routing::get(paged))
            .with_state((Arc::clone(&items), Arc::clone(&mode), Arc::clone(&requests), Arc::clone(&slow_at_once)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind feed");
        let url = format!("http://127.0.0.1:{}", listener.local_addr().expect("address").port());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Feed { items, requests, mode, slow_at_once, url, _server: Arc::new(server) }
    }

    /// Adds an item `offset_ms` after [`T0`], newest first as feeds list them.
    pub(crate) fn add(&self, id: &str, offset_ms: i64) {
        let t = T0.saturating_add_signed(offset_ms);
        self.items.lock().expect("feed").insert(0, json!({ "id": id, "t": t, "title": format!("item {id}") }));
    }

    fn edit(&self, id: &str, title: &str) {
        for item in self.items.lock().expect("feed").iter_mut() {
            if item["id"] == id {
                item["title"] = json!(title);
            }
        }
    }

    /// Waits until the feed gets its next request.
    pub(crate) async fn next_request(&self) {
        let asked = self.requests.load(std::sync::atomic::Ordering::SeqCst);
        for _ in 0..100 {
            if self.requests.load(std::sync::atomic::Ordering::SeqCst) > asked {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no poll reached the feed");
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.mode.lock().expect("feed") = mode;
    }
}

/// The same items as an RSS 2.0 feed: a guid, a CDATA title and a date for
/// items with a time, only a link for the others.
async fn rss(State((items, ..)): State<FeedState>) -> Response {
    let items = items.lock().expect("feed").clone();
    let mut xml = String::from(r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Feed &amp; Co</title>"#);
    for item in items {
        let id = item["id"].as_str().unwrap_or_default();
        if id.starts_with("nodate") {
            xml.push_str(&format!("<item><title>{id}</title><link>https://example.com/{id}</link></item>"));
        } else {
            xml.push_str(&format!(
                "<item><title><![CDATA[{id} & more]]></title><guid>{id}</guid><dc:date>2023-11-14T22:13:20Z</dc:date></item>"
            ));
        }
    }
    xml.push_str("</channel></rss>");
    ([("content-type", "application/rss+xml")], xml).into_response()
}

/// The items two per page, newest first, each page naming the next.
async fn paged(
    State((items, ..)): State<FeedState>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, usize>>,
) -> Response {
    let items = items.lock().expect("feed").clone();
    let page = query.get("page").copied().unwrap_or(1).max(1);
    let slice: Vec<Value> = items.iter().skip((page - 1) * 2).take(2).cloned().collect();
    let next = (items.len() > page * 2).then(|| format!("/paged?page={}", page + 1));
    axum::Json(json!({ "data": slice, "next": next })).into_response()
}

type FeedState = (
    Arc<Mutex<Vec<Value>>>,
    Arc<Mutex<Mode>>,
    Arc<std::sync::atomic::AtomicUsize>,
    Arc<[std::sync::atomic::AtomicUsize; 2]>,
);

async fn answer(State((items, mode, requests, slow_at_once)): State<FeedState>) -> Response {
    requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mode = *mode.lock().expect("feed");
    match mode {
        Mode::Hang => std::future::pending().await,
        Mode::Slow => {
            use std::sync::atomic::Ordering::SeqCst;
            /// Counts the request out however it ends: answered, or
            /// dropped with its connection (a killed host's poll).
            struct Held(Arc<[std::sync::atomic::AtomicUsize; 2]>);
            impl Drop for Held {
                fn drop(&mut self) {
                    self.0[0].fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let now = slow_at_once[0].fetch_add(1, SeqCst) + 1;
            let _held = Held(Arc::clone(&slow_at_once));
            slow_at_once[1].fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            axum::Json(json!({ "data": items.lock().expect("feed").clone() })).into_response()
        }
        Mode::Items => axum::Json(json!({ "data": items.lock().expect("feed").clone() })).into_response(),
        Mode::Error => (AxumStatus::INTERNAL_SERVER_ERROR, "feed down").into_response(),
        Mode::Garbage => (AxumStatus::OK, "<html>not json").into_response(),
    }
}

/// Uploads `crate_name` (the plugin `plugin`), grants it the feed and kv,
/// and creates a disabled `trigger` of it with `config`; returns its id.
async fn polling_trigger(host: &Host, feed: &Feed, crate_name: &str, (plugin, trigger): (&str, &str), config: Value, interval_s: u32) -> String {
    host.upload_plugin(crate_name).await;
    let allow = json!({ "outbound_hosts": [feed.url], "key_value": true });
    assert_eq!(host.api(Method::PUT, &format!("/plugins/{plugin}/grants"), Some(allow)).await.0, StatusCode::OK);
    let body = json!({ "plugin": plugin, "trigger": trigger, "config": config, "poll_interval_s": interval_s });
    let (status, created) = host.api(Method::POST, "/triggers", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

/// An http-json-poll trigger on the feed's items (10 s lateness).
pub(crate) async fn setup(host: &Host, feed: &Feed, interval_s: u32) -> String {
    let config = json!({ "url": format!("{}/items", feed.url), "items_pointer": "/data", "time_field": "t", "lateness_ms": 10_000 });
    polling_trigger(host, feed, "http_json_poll", ("http-json-poll", "new_item"), config, interval_s).await
}

/// A feed holding item `a`, and a host (with `host_config` as its config
/// file) polling it every `interval_s` through an enabled trigger that has
/// taken its baseline.
async fn enabled_feed_trigger(host_config: &str, interval_s: u32) -> (Feed, Host, String) {
    let feed = Feed::start().await;
    feed.add("a", 0);
    let host = spawn_host_with_config(host_config).await;
    let id = setup(&host, &feed, interval_s).await;
    host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    polled(&host, &id, 1).await;
    (feed, host, id)
}

/// [`enabled_feed_trigger`] polling every second; `config` is added to the
/// host's config file.
async fn polling_every_second(config: &str) -> (Feed, Host, String) {
    enabled_feed_trigger(&format!("[polling]\nmin_interval_s = 1\n{config}"), 1).await
}

pub(crate) async fn health(host: &Host, id: &str) -> Value {
    let (status, health) = host.api(Method::GET, &format!("/triggers/{id}/health"), None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    health
}

/// Waits until the trigger has polled `polls` times.
pub(crate) async fn polled(host: &Host, id: &str, polls: i64) -> Value {
    for _ in 0..200 {
        let health = health(host, id).await;
        if health["polls"].as_i64() >= Some(polls) {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} did not poll {polls} times: {}", health(host, id).await);
}

async fn poll_now(host: &Host, id: &str, body: Option<Value>) -> Value {
    let (status, answer) = host.api(Method::POST, &format!("/triggers/{id}/poll"), body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// The ids of every event the trigger stored, oldest first.
pub(crate) async fn emitted(host: &Host, id: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        host.all_events(id).await.iter().map(|e| e["payload"]["id"].as_str().unwrap_or_default().to_owned()).collect();
    ids.reverse();
    ids
}

#[tokio::test]
async fn each_item_is_emitted_once_across_shared_times_late_items_edits_disable_and_restart() {
    let feed = Feed::start().await;
    feed.add("a", 0);
    feed.add("b", 0);
    let host = spawn_host().await;
    let id = setup(&host, &feed, 3600).await;
    let (_, enabled) = host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!(enabled["status"], "enabled", "{enabled}");

    // Enabling polls once at once: a baseline, nothing old emitted.
    let baseline = polled(&host, &id, 1).await;
    assert_eq!((baseline["events"].as_i64(), baseline["consecutive_failures"].as_i64()), (Some(0), Some(0)), "{baseline}");
    assert!(baseline["next_poll_at_ms"].as_i64() > baseline["last_poll_at_ms"].as_i64());
    assert_eq!(host.deliver(&id, &[], b"{}").await.status(), StatusCode::NOT_FOUND, "a polling trigger takes no webhooks");
    for (interval, field) in [(json!(5), "at least 10 seconds"), (json!(null), "needs a poll interval")] {
        let patch = json!({ "poll_interval_s": interval });
        let (status, refused) = host.api(Method::PATCH, &format!("/triggers/{id}"), Some(patch)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains(field)), "{refused}");
    }

    // c shares the watermark's timestamp, d is 5 s late: both are new.
    feed.add("c", 0);
    feed.add("d", -5_000);
    // A test run shows them, and stores nothing or moves nothing.
    let (status, test) = host.api(Method::POST, &format!("/triggers/{id}/test"), None).await;
    assert_eq!(status, StatusCode::OK, "{test}");
    let shown: Vec<&str> = test["events"].as_array().into_iter().flatten().filter_map(|e| e["payload"]["id"].as_str()).collect();
    assert_eq!(shown, ["d", "c"], "{test}");
    assert_eq!(test["sample_event"], json!({ "id": "42", "title": "Hello" }));
    assert!(emitted(&host, &id).await.is_empty());
    let answer = poll_now(&host, &id, None).await;
    assert_eq!(answer["stored"], 2, "{answer}");
    assert_eq!(poll_now(&host, &id, None).await["stored"], 0);

    // An edit is not a new item.
    feed.edit("c", "edited");
    assert_eq!(poll_now(&host, &id, None).await["stored"], 0);

    // Items added while disabled are emitted once enabled again.
    host.api(Method::POST, &format!("/triggers/{id}/disable"), None).await;
    feed.add("e", 500);
    host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    assert_eq!(poll_now(&host, &id, None).await["stored"], 1);

    // A restart keeps the cursor.
    let host = host.restart().await;
    let polled_now = crate::server::cli::cli(&host, &["trigger", "poll", &id]).await;
    assert_eq!(crate::server::cli::stdout(&polled_now), "stored 0 (duplicates 0)\n", "{polled_now:?}");
    let health = crate::server::cli::cli(&host, &["trigger", "health", &id]).await;
    let health: Value = serde_json::from_str(&crate::server::cli::stdout(&health)).expect("health is JSON");
    assert_eq!((health["polling"].as_bool(), health["events"].as_i64()), (Some(true), Some(3)), "{health}");
    feed.add("f", 1_000);
    let answer = poll_now(&host, &id, None).await;
    assert_eq!((answer["stored"].as_i64(), answer["events"][0]["payload"]["id"].as_str()), (Some(1), Some("f")), "{answer}");

    assert_eq!(emitted(&host, &id).await, ["d", "c", "e", "f"]);

    // Resetting is the operator's call: a new baseline, nothing old again.
    assert_eq!(poll_now(&host, &id, Some(json!({ "reset": true }))).await["stored"], 0);
    feed.add("g", 2_000);
    assert_eq!(poll_now(&host, &id, None).await["stored"], 1);
    assert_eq!(emitted(&host, &id).await, ["d", "c", "e", "f", "g"]);
}

#[tokio::test]
async fn a_failing_feed_backs_off_visibly_and_loses_nothing_when_it_recovers() {
    let (feed, host, id) = polling_every_second("").await;

    feed.set_mode(Mode::Error);
    feed.add("b", 100);
    let before = health(&host, &id).await["polls"].as_i64().unwrap_or(0);
    let failing = polled(&host, &id, before + 2).await;
    assert!(failing["consecutive_failures"].as_i64() >= Some(1), "{failing}");
    assert!(failing["last_error"].as_str().is_some_and(|e| e.contains("500")), "{failing}");
    assert_eq!(failing["healthy"], false);
    // Backed off: the next poll is at least two intervals after the last.
    let wait = failing["next_poll_at_ms"].as_i64().unwrap_or(0) - failing["last_poll_at_ms"].as_i64().unwrap_or(0);
    assert!(wait >= 1_900, "no backoff after {} failures: next poll {wait} ms after the last", failing["consecutive_failures"]);
    let (_, failures) = host.api(Method::GET, &format!("/triggers/{id}/failures"), None).await;
    assert_eq!(failures["failures"][0]["export"], "poll");
    // Unhealthy in the list and in /metrics too.
    let (_, list) = host.api(Method::GET, "/triggers", None).await;
    assert_eq!(list["triggers"][0]["health"]["healthy"], false, "{list}");
    let metrics = host.metrics().await;
    assert!(metrics.contains(&format!("triggerhost_trigger_healthy{{trigger=\"{id}\",plugin=\"http-json-poll\"}} 0")), "{metrics}");
    assert!(metrics.contains(&format!("triggerhost_trigger_poll_failures_total{{trigger=\"{id}\"")), "{metrics}");
    // The scheduler's polls are timed against when they were due.
    let late_polls = metrics
        .lines()
        .find_map(|line| line.strip_prefix("triggerhost_poll_lateness_seconds_count{plugin=\"http-json-poll\"} "))
        .and_then(|count| count.parse::<u64>().ok());
    assert!(late_polls.is_some_and(|count| count >= 2), "{late_polls:?}");
    let failed_polls = format!("triggerhost_calls_total{{plugin=\"http-json-poll\",trigger=\"{id}\",export=\"poll\",outcome=\"upstream\"}}");
    assert!(metrics.contains(&failed_polls), "{metrics}");

    feed.set_mode(Mode::Garbage);
    let answer = poll_now(&host, &id, None).await;
    assert_eq!(answer["outcome"], "failed");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("not the JSON expected")), "{answer}");

    // Hanging past the call's deadline: a timeout, recorded, nothing stored.
    feed.set_mode(Mode::Hang);
    let answer = poll_now(&host, &id, None).await;
    assert_eq!(answer["outcome"], "failed");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("did not answer in time")), "{answer}");

    feed.set_mode(Mode::Items);
    feed.add("c", 200);
    // The scheduler's own poll may get there first: what counts is that b
    // and c are stored, once each.
    assert_eq!(poll_now(&host, &id, None).await["outcome"], "stored");
    assert_eq!(emitted(&host, &id).await, ["b", "c"]);
    let recovered = health(&host, &id).await;
    assert_eq!((recovered["consecutive_failures"].as_i64(), recovered["healthy"].as_bool()), (Some(0), Some(true)));
    let (_, view) = host.api(Method::GET, &format!("/triggers/{id}"), None).await;
    assert_eq!(view["health"]["healthy"], true, "{view}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(emitted(&host, &id).await, ["b", "c"], "each item once, the scheduler's polls included");
}

#[tokio::test]
async fn a_host_killed_during_a_poll_emits_its_items_once_after_restart() {
    let (feed, mut host, id) = polling_every_second("").await;

    // The next poll is in flight, waiting for the feed, when the host dies.
    feed.add("b", 100);
    feed.set_mode(Mode::Hang);
    feed.next_request().await;
    host.kill9().await;
    feed.set_mode(Mode::Items);
    feed.add("c", 200);

    // After the restart the trigger catches up once: b and c, once each.
    let host = host.restart().await;
    let before = health(&host, &id).await["polls"].as_i64().unwrap_or(0);
    polled(&host, &id, before + 2).await;
    assert_eq!(emitted(&host, &id).await, ["b", "c"]);
    let health = health(&host, &id).await;
    assert_eq!(health["events"].as_i64(), Some(2), "{health}");
}

#[tokio::test]
async fn a_host_killed_between_a_poll_and_its_commit_emits_its_items_once_after_restart() {
    use sqlx::Connection;
    // A commit waits for a locked database far longer than this test takes.
    let (feed, mut host, id) = polling_every_second("[database]\nbusy_timeout_ms = 60000\n").await;

    // The test holds the database's write lock: the next poll reads the
    // feed, its connector returns b and the new cursor, and its commit
    // waits for the lock when the host dies.
    let mut lock = crate::database::connect(&host).await;
    crate::database::hold_write_lock(&mut lock).await;
    feed.add("b", 100);
    feed.next_request().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.kill9().await;
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE trigger_id = $1").bind(&id).fetch_one(&mut lock).await.expect("count");
    assert_eq!(stored, 0, "the poll's commit was still waiting when the host died");
    sqlx::query("ROLLBACK").execute(&mut lock).await.expect("release the lock");
    lock.close().await.expect("close");
    feed.add("c", 200);

    // Nothing of the killed poll was kept, its cursor included: the first
    // poll after the restart emits b and c, once each.
    let host = host.restart().await;
    let before = health(&host, &id).await["polls"].as_i64().unwrap_or(0);
    polled(&host, &id, before + 2).await;
    assert_eq!(emitted(&host, &id).await, ["b", "c"]);
    assert_eq!(health(&host, &id).await["events"].as_i64(), Some(2));
}

#[tokio::test]
async fn swapping_the_connector_version_between_polls_keeps_the_cursor() {
    let (feed, host, id) = enabled_feed_trigger("", 3600).await;

    feed.add("b", 100);
    let uploaded = host.upload_plugin("http_json_poll_next").await;
    assert_eq!((uploaded["version"].as_str(), uploaded["active"].as_bool()), (Some("0.2.0"), Some(false)));
    let activate = |version: &str| json!({ "version": version });
    assert_eq!(host.api(Method::POST, "/plugins/http-json-poll/activate", Some(activate("0.2.0"))).await.0, StatusCode::OK);
    feed.add("c", 200);
    let answer = poll_now(&host, &id, None).await;
    assert_eq!(answer["stored"], 2, "{answer}");
    assert_eq!(answer["events"][0]["plugin_version"], "http-json-poll@0.2.0");

    // Rolled back, the old version goes on from the new cursor.
    assert_eq!(host.api(Method::POST, "/plugins/http-json-poll/activate", Some(activate("0.1.0"))).await.0, StatusCode::OK);
    assert_eq!(poll_now(&host, &id, None).await["stored"], 0);
    feed.add("d", 300);
    assert_eq!(poll_now(&host, &id, None).await["events"][0]["plugin_version"], "http-json-poll@0.1.0");
    assert_eq!(emitted(&host, &id).await, ["b", "c", "d"]);
}

#[tokio::test]
async fn an_rss_feed_emits_each_entry_once() {
    let feed = Feed::start().await;
    feed.add("a", 0);
    let host = spawn_host().await;
    let config = json!({ "url": format!("{}/rss", feed.url) });
    let id = polling_trigger(&host, &feed, "rss", ("rss", "new_entry"), config, 3600).await;
    host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    polled(&host, &id, 1).await;

    feed.add("b", 0);
    feed.add("nodate-c", 0);
    let answer = poll_now(&host, &id, None).await;
    assert_eq!(answer["stored"], 2, "{answer}");
    assert_eq!(poll_now(&host, &id, None).await["stored"], 0);
    let events = host.all_events(&id).await;
    let titles: Vec<&str> = events.iter().filter_map(|e| e["payload"]["title"].as_str()).collect();
    assert_eq!(titles.len(), 2);
    assert!(titles.contains(&"b & more") && titles.contains(&"nodate-c"), "{titles:?}");
    let dated = events.iter().find(|e| e["payload"]["id"] == "b").expect("b");
    assert_eq!(dated["occurred_at_ms"], 1_700_000_000_000u64);
    assert_eq!(dated["dedupe_key"], "b");
}

#[tokio::test]
async fn more_new_items_than_one_page_are_all_emitted_once() {
    let feed = Feed::start().await;
    feed.add("a", 0);
    let host = spawn_host().await;
    let config = json!({
        "url": format!("{}/paged", feed.url), "items_pointer": "/data", "time_field": "t", "next_pointer": "/next", "max_pages": 3
    });
    let id = polling_trigger(&host, &feed, "http_json_poll", ("http-json-poll", "new_item"), config, 3600).await;
    host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;
    polled(&host, &id, 1).await;

    // Seven new items: three pages of two in the first poll, the rest next.
    for (n, item) in ["b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        feed.add(item, 100 * (n as i64 + 1));
    }
    assert_eq!(poll_now(&host, &id, None).await["stored"], 6);
    assert_eq!(poll_now(&host, &id, None).await["stored"], 1);
    assert_eq!(poll_now(&host, &id, None).await["stored"], 0);
    let mut emitted = emitted(&host, &id).await;
    emitted.sort();
    assert_eq!(emitted, ["b", "c", "d", "e", "f", "g", "h"]);
}

#[tokio::test]
async fn polls_of_one_trigger_never_overlap() {
    let (feed, host, id) = enabled_feed_trigger("", 3600).await;

    // Four polls asked for at once, each taking 300 ms at the feed: they
    // run one after the other, and the item is stored once.
    feed.set_mode(Mode::Slow);
    feed.add("b", 100);
    let polls: Vec<_> = (0..4)
        .map(|_| {
            let (url, http) = (format!("{}/api/v1/triggers/{id}/poll", host.url), host.http.clone());
            tokio::spawn(async move { http.post(url).bearer_auth(crate::host::TOKEN).send().await.map(|r| r.status()) })
        })
        .collect();
    for poll in polls {
        assert_eq!(poll.await.expect("poll").ok(), Some(StatusCode::OK));
    }
    assert_eq!(feed.slow_at_once[1].load(std::sync::atomic::Ordering::SeqCst), 1, "polls overlapped at the feed");
    assert_eq!(emitted(&host, &id).await, ["b"]);
}

#[tokio::test]
async fn a_backfill_emits_that_many_existing_items_once() {
    let feed = Feed::start().await;
    for (item, at) in [("a", 0), ("b", 100), ("c", 200)] {
        feed.add(item, at);
    }
    let host = spawn_host().await;
    let config = json!({ "url": format!("{}/items", feed.url), "items_pointer": "/data", "time_field": "t", "backfill": 2 });
    let id = polling_trigger(&host, &feed, "http_json_poll", ("http-json-poll", "new_item"), config, 3600).await;
    host.api(Method::POST, &format!("/triggers/{id}/enable"), None).await;

    // The first poll emits the two newest of the three items, then only
    // what is new.
    polled(&host, &id, 1).await;
    assert_eq!(emitted(&host, &id).await, ["b", "c"]);
    assert_eq!(poll_now(&host, &id, None).await["stored"], 0);
    feed.add("d", 300);
    assert_eq!(poll_now(&host, &id, None).await["stored"], 1);
    assert_eq!(emitted(&host, &id).await, ["b", "c", "d"]);
}

#[tokio::test]
async fn sigterm_lets_a_poll_in_flight_commit_before_the_host_exits() {
    use sqlx::Connection;
    let (feed, mut host, id) = polling_every_second("").await;

    // The next poll waits 300 ms for the feed when the host is told to stop.
    feed.set_mode(Mode::Slow);
    feed.add("b", 100);
    feed.next_request().await;
    let exit = host.terminate().await;
    assert!(exit.success(), "SIGTERM: {exit}");

    // Its event was committed before the host exited.
    let mut db = crate::database::connect(&host).await;
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM events WHERE trigger_id = $1")
        .bind(&id)
        .fetch_all(&mut db)
        .await
        .expect("events");
    let ids: Vec<Value> = payloads.iter().map(|p| serde_json::from_str::<Value>(p).expect("json")["id"].clone()).collect();
    assert_eq!(ids, ["b"]);
    db.close().await.expect("close");
}
