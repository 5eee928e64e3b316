//! Push delivery to a receiver on 127.0.0.1: signed, once per event,
//! retried with the same `webhook-id`, `Retry-After` honoured, 410 and
//! long failure disabling, dead letters replayed, nothing lost to
//! `kill -9`, and loopback refused without the operator's allowance.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host, spawn_host_with_config};
use crate::receiver::Receiver;

/// Loopback allowed; the retry schedule shrunk ten thousand times (5 s is
/// half a millisecond, the whole schedule about ten seconds).
const PRIVATE_FAST: &str = "[delivery]\nallow_private = true\nretry_scale = 0.0001\n";

async fn webhook_trigger(host: &Host) -> String {
    host.upload_plugin("standard_webhooks").await;
    host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await
}

async fn add_destination(host: &Host, trigger: &str, body: Value) -> Value {
    let (status, created) = host.api(Method::POST, &format!("/triggers/{trigger}/destinations"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// Sends a signed webhook of `event_type` as message `id`.
async fn send(host: &Host, trigger: &str, id: &str, event_type: &str) {
    let body = json!({ "type": event_type, "data": { "message": id } }).to_string();
    let response = host.deliver(trigger, &signed_now(id, body.as_bytes()), body.as_bytes()).await;
    assert_eq!(response.status(), StatusCode::OK, "{id}");
}

/// The stored event ids of a trigger by dedupe key (the message id).
async fn event_ids(host: &Host, trigger: &str) -> HashMap<String, String> {
    let events = host.all_events(trigger).await;
    events.iter().map(|e| (e["dedupe_key"].as_str().unwrap_or_default().to_owned(), e["id"].as_str().unwrap_or_default().to_owned())).collect()
}

async fn deliveries(host: &Host, query: &str) -> Vec<Value> {
    let (status, page) = host.api(Method::GET, &format!("/deliveries?limit=500&{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

async fn attempts(host: &Host, delivery: &str) -> Vec<Value> {
    let (status, page) = host.api(Method::GET, &format!("/deliveries/{delivery}/attempts"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["attempts"].as_array().cloned().unwrap_or_default()
}

/// Waits up to 30 s for `check` of the trigger's deliveries.
async fn deliveries_until(host: &Host, query: &str, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..300 {
        let rows = deliveries(host, query).await;
        if check(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}: {:?}", deliveries(host, query).await);
}

#[tokio::test]
async fn every_event_is_pushed_once_signed_with_its_event_id() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let created = add_destination(&host, &trigger, json!({ "url": receiver.url })).await;
    let secret = created["secret"].as_str().expect("a generated secret");
    assert!(secret.starts_with("whsec_"), "{created}");
    receiver.trust(secret);
    let destination = created["id"].as_str().unwrap_or_default().to_owned();
    // A second destination takes only another type: it gets nothing.
    let other = Receiver::start().await;
    add_destination(&host, &trigger, json!({ "url": other.url, "event_types": ["invoice.paid"] })).await;

    for n in 0..20 {
        send(&host, &trigger, &format!("m{n}"), "user.created").await;
    }
    let pushes = receiver.wait_for("20 pushes", Duration::from_secs(30), |p| p.len() >= 20).await;
    let ids = event_ids(&host, &trigger).await;
    assert_eq!(ids.len(), 20);
    assert!(pushes.iter().all(|p| p.verified && p.signatures == 1), "{pushes:?}");
    let pushed: HashSet<&str> = pushes.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(pushed.len(), 20, "each once");
    assert_eq!(pushed, ids.values().map(String::as_str).collect(), "webhook-id is the event id");
    let now = i64::try_from(triggerhost_sdk::signature::now_secs()).unwrap_or_default();
    assert!(pushes.iter().all(|p| (now - 60..=now + 1).contains(&p.timestamp)), "signed at the time of the attempt");
    let body = &pushes[0].body;
    assert_eq!((body["id"].as_str(), body["type"].as_str(), body["trigger"].as_str()), (Some(pushes[0].id.as_str()), Some("user.created"), Some(trigger.as_str())));
    assert!(body["received_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{body}");
    assert!(body["data"].is_object(), "{body}");

    let rows = deliveries_until(&host, &format!("trigger={trigger}&status=delivered"), "20 delivered", |r| r.len() == 20).await;
    assert!(rows.iter().all(|r| r["destination_id"] == destination.as_str() && r["attempts"] == 1), "{rows:?}");
    let first = attempts(&host, rows[0]["id"].as_str().unwrap_or_default()).await;
    assert_eq!((first.len(), &first[0]["status_code"]), (1, &json!(200)), "{first:?}");
    let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}/destinations/{destination}"), None).await;
    assert_eq!(view["deliveries"], json!({ "pending": 0, "delivered": 20, "dead": 0 }), "{view}");
    assert!(view.get("secret").is_none(), "the secret is shown once: {view}");
    let text = host.metrics().await;
    assert!(text.contains(&format!("triggerhost_delivery_delivered_total{{destination=\"{destination}\",trigger=\"{trigger}\"}} 20")), "{text}");
    assert!(text.contains(&format!("triggerhost_delivery_latency_ms_count{{destination=\"{destination}\",trigger=\"{trigger}\"}} 20")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(other.pushes().is_empty(), "filtered out by type");
    assert_eq!(receiver.pushes().len(), 20, "nothing more");
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_again_with_the_same_webhook_id_and_retry_after_is_honoured() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let created = add_destination(&host, &trigger, json!({ "url": receiver.url })).await;
    receiver.trust(created["secret"].as_str().unwrap_or_default());

    // Three failures, then the fourth attempt succeeds.
    receiver.script(|_, nth| if nth < 3 { (500, None) } else { (200, None) });
    send(&host, &trigger, "m1", "user.created").await;
    let pushes = receiver.wait_for("4 attempts", Duration::from_secs(30), |p| p.len() >= 4).await;
    assert!(pushes.iter().all(|p| p.id == pushes[0].id && p.verified), "{pushes:?}");
    let rows = deliveries_until(&host, &format!("trigger={trigger}"), "delivered", |r| r.first().is_some_and(|r| r["status"] == "delivered")).await;
    let tried = attempts(&host, rows[0]["id"].as_str().unwrap_or_default()).await;
    let statuses: Vec<&Value> = tried.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(500), &json!(200)]);
    assert_eq!(tried[0]["response_excerpt"], "scripted", "a bounded excerpt of the answer is kept");

    // 429 with Retry-After: 2 waits two seconds, not the schedule's 0.5 ms.
    receiver.script(|_, nth| if nth == 0 { (429, Some("2".into())) } else { (200, None) });
    send(&host, &trigger, "m2", "user.created").await;
    let pushes = receiver.wait_for("the retry", Duration::from_secs(30), |p| p.len() >= 6).await;
    let (first, retry) = (&pushes[4], &pushes[5]);
    assert_eq!(first.id, retry.id);
    let waited = retry.at.duration_since(first.at);
    assert!(waited >= Duration::from_millis(1900), "retried after {waited:?}");
}

#[tokio::test]
async fn a_410_disables_the_destination_and_its_jobs_are_replayed_once_resumed() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let created = add_destination(&host, &trigger, json!({ "url": receiver.url })).await;
    let destination = created["id"].as_str().unwrap_or_default().to_owned();
    let path = format!("/triggers/{trigger}/destinations/{destination}");

    receiver.script(|_, _| (410, None));
    send(&host, &trigger, "m1", "user.created").await;
    deliveries_until(&host, &format!("destination={destination}&status=dead"), "dead-lettered", |r| r.len() == 1).await;
    let (_, view) = host.api(Method::GET, &path, None).await;
    assert_eq!(view["status"], "disabled", "{view}");
    assert!(view["disabled_reason"].as_str().is_some_and(|r| r.contains("410")), "{view}");
    assert_eq!(receiver.pushes().len(), 1, "not retried");

    // Disabled: new events queue nothing for it.
    send(&host, &trigger, "m2", "user.created").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries(&host, &format!("destination={destination}")).await.len(), 1);

    // Resumed, the dead letter is replayed and delivered.
    receiver.script(|_, _| (200, None));
    let (status, resumed) = host.api(Method::PATCH, &path, Some(json!({ "status": "enabled" }))).await;
    assert_eq!((status, resumed["status"].as_str()), (StatusCode::OK, Some("enabled")), "{resumed}");
    let (status, replayed) =
        host.api(Method::POST, &format!("/triggers/{trigger}/events/replay"), Some(json!({ "dead_letters": true }))).await;
    assert_eq!((status, &replayed["queued"]), (StatusCode::OK, &json!(1)), "{replayed}");
    let pushes = receiver.wait_for("the replay", Duration::from_secs(30), |p| p.len() >= 2).await;
    assert_eq!(pushes[0].id, pushes[1].id, "the same webhook-id");
}

#[tokio::test]
async fn exhausted_jobs_are_dead_lettered_with_the_failure_visible_then_replayed() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let created = add_destination(&host, &trigger, json!({ "url": receiver.url })).await;
    receiver.trust(created["secret"].as_str().unwrap_or_default());
    let destination = created["id"].as_str().unwrap_or_default().to_owned();
    receiver.script(|_, _| (500, None));
    send(&host, &trigger, "m1", "user.created").await;

    let dead = deliveries_until(&host, "status=dead", "a dead letter", |r| r.len() == 1).await;
    assert_eq!(dead[0]["attempts"], 8, "the whole schedule: {dead:?}");
    let job = dead[0]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(attempts(&host, &job).await.len(), 8);
    assert_eq!(receiver.pushes().len(), 8);
    let (_, view) = host.api(Method::GET, &format!("/triggers/{trigger}/destinations/{destination}"), None).await;
    assert_eq!(view["status"], "enabled", "failing for seconds is not failing for days: {view}");
    assert!(view["failing_since_ms"].is_i64() && view["last_error"].as_str().is_some_and(|e| e.contains("500")), "{view}");
    assert_eq!(view["deliveries"]["dead"], 1, "{view}");
    assert!(host.metrics().await.contains(&format!("triggerhost_delivery_dead_letters_total{{destination=\"{destination}\",trigger=\"{trigger}\"}} 1")));

    // The receiver recovers: the dead letter is retried, and the event is
    // replayed once more by id; both carry the same webhook-id.
    receiver.script(|_, _| (200, None));
    let (status, retried) = host.api(Method::POST, &format!("/deliveries/{job}/retry"), None).await;
    assert_eq!((status, retried["status"].as_str()), (StatusCode::OK, Some("pending")), "{retried}");
    deliveries_until(&host, "status=delivered", "the retry delivered", |r| r.len() == 1).await;
    let (status, again) = host.api(Method::POST, &format!("/deliveries/{job}/retry"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "only dead letters are retried: {again}");
    let event = event_ids(&host, &trigger).await["m1"].clone();
    let body = json!({ "event_id": event, "destination_id": destination });
    let (status, replayed) = host.api(Method::POST, &format!("/triggers/{trigger}/events/replay"), Some(body)).await;
    assert_eq!((status, &replayed["queued"]), (StatusCode::OK, &json!(1)), "{replayed}");
    let pushes = receiver.wait_for("the replay", Duration::from_secs(30), |p| p.len() >= 10).await;
    assert!(pushes.iter().all(|p| p.id == event && p.verified), "{pushes:?}");
    let view = host.api(Method::GET, &format!("/triggers/{trigger}/destinations/{destination}"), None).await.1;
    assert_eq!(view["failing_since_ms"], Value::Null, "a success ends the failing time: {view}");
}

#[tokio::test]
async fn a_destination_failing_longer_than_allowed_is_disabled_and_says_why() {
    let host = spawn_host_with_config(&format!("{PRIVATE_FAST}disable_after_s = 1\n")).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let destination = add_destination(&host, &trigger, json!({ "url": receiver.url })).await["id"].as_str().unwrap_or_default().to_owned();
    receiver.script(|_, _| (503, None));
    send(&host, &trigger, "m1", "user.created").await;
    let path = format!("/triggers/{trigger}/destinations/{destination}");
    for _ in 0..300 {
        if host.api(Method::GET, &path, None).await.1["status"] == "disabled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, view) = host.api(Method::GET, &path, None).await;
    assert_eq!(view["status"], "disabled", "{view}");
    assert!(view["disabled_reason"].as_str().is_some_and(|r| r.starts_with("every attempt failed for")), "{view}");
    assert_eq!(view["deliveries"]["dead"], 1, "its job is dead-lettered: {view}");
    let attempts_then = receiver.pushes().len();
    assert!((2..8).contains(&attempts_then), "disabled before the schedule ran out: {attempts_then}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.pushes().len(), attempts_then, "no attempt after");
}

#[tokio::test]
async fn pending_jobs_survive_kill_9_and_are_delivered_after_restart() {
    let mut host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let created = add_destination(&host, &trigger, json!({ "url": receiver.url, "max_in_flight": 4 })).await;
    receiver.trust(created["secret"].as_str().unwrap_or_default());
    // A slow receiver: jobs queue up behind four in flight.
    receiver.delay(Duration::from_millis(100));
    for n in 0..60 {
        send(&host, &trigger, &format!("m{n}"), "user.created").await;
    }
    receiver.wait_for("some pushes", Duration::from_secs(30), |p| p.len() >= 8).await;
    host.kill9().await;
    let before_kill: HashSet<String> = receiver.pushes().iter().map(|p| p.id.clone()).collect();
    assert!(before_kill.len() < 60, "the kill must leave jobs pending: {} pushed", before_kill.len());

    receiver.delay(Duration::ZERO);
    let host = host.restart().await;
    let ids: HashSet<String> = event_ids(&host, &trigger).await.into_values().collect();
    assert_eq!(ids.len(), 60, "every acknowledged event is stored");
    let pushes = receiver
        .wait_for("every event", Duration::from_secs(60), |p| ids.iter().all(|id| p.iter().any(|push| &push.id == id)))
        .await;
    assert!(pushes.iter().all(|p| p.verified), "signed after the restart too");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for push in &pushes {
        *seen.entry(push.id.as_str()).or_default() += 1;
    }
    for (id, times) in &seen {
        assert!(*times == 1 || before_kill.contains(*id), "{id} sent {times} times though the receiver never had it before the kill");
    }
    deliveries_until(&host, "status=delivered", "all recorded", |r| r.len() == 60).await;
}

#[tokio::test]
async fn a_destination_on_loopback_is_refused_without_the_operators_allowance() {
    let host = spawn_host_with_config("[outbound]\nresolve = { \"hooks.internal.test\" = [\"127.0.0.1\"] }\n").await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let path = format!("/triggers/{trigger}/destinations");
    let port = receiver.address.port();
    for (url, expected) in [
        (receiver.url.clone(), "only https"),
        (format!("https://127.0.0.1:{port}/hook"), "loopback"),
        (format!("https://[::ffff:127.0.0.1]:{port}/hook"), "loopback"),
        ("https://169.254.169.254/latest".to_owned(), "link-local"),
        ("https://10.0.0.8/hook".to_owned(), "private"),
        ("ftp://example.com/".to_owned(), "http and https"),
    ] {
        let (status, refused) = host.api(Method::POST, &path, Some(json!({ "url": url }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {refused}");
        assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains(expected)), "{url}: {refused}");
    }
    // A name that resolves to loopback passes creation and is refused at
    // connection time, against what it resolves to then.
    let created = add_destination(&host, &trigger, json!({ "url": format!("https://hooks.internal.test:{port}/hook") })).await;
    send(&host, &trigger, "m1", "user.created").await;
    let rows = deliveries_until(&host, &format!("trigger={trigger}"), "a failed attempt", |r| r.first().is_some_and(|r| r["attempts"].as_i64() >= Some(1))).await;
    let tried = attempts(&host, rows[0]["id"].as_str().unwrap_or_default()).await;
    assert!(tried[0]["error"].as_str().is_some_and(|e| e.contains("127.0.0.1, a loopback address")), "{tried:?}");
    assert!(receiver.pushes().is_empty(), "nothing reached loopback");
    assert_eq!(created["status"], "enabled");
}

#[tokio::test]
async fn destinations_are_paused_resumed_rotated_and_checked() {
    let host = spawn_host_with_config(&format!("{PRIVATE_FAST}rotation_grace_s = 3600\n")).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let path = format!("/triggers/{trigger}/destinations");
    let given = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3";
    let created = add_destination(&host, &trigger, json!({ "url": receiver.url, "secret": given, "paused": true })).await;
    assert_eq!((created["secret"].as_str(), created["status"].as_str()), (Some(given), Some("paused")));
    let destination = created["id"].as_str().unwrap_or_default().to_owned();
    receiver.trust(given);

    // Paused: queued, not sent; resumed: sent.
    send(&host, &trigger, "m1", "user.created").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.pushes().is_empty());
    assert_eq!(deliveries(&host, "status=pending").await.len(), 1);
    // A replay skips an event whose job to the destination is still pending.
    let replay = format!("/triggers/{trigger}/events/replay");
    let (status, replayed) = host.api(Method::POST, &replay, Some(json!({ "since_ms": 0 }))).await;
    assert_eq!((status, replayed), (StatusCode::OK, json!({ "queued": 0, "more": false })));
    let (status, _) = host.api(Method::PATCH, &format!("{path}/{destination}"), Some(json!({ "status": "enabled" }))).await;
    assert_eq!(status, StatusCode::OK);
    receiver.wait_for("the queued push", Duration::from_secs(30), |p| p.len() == 1).await;

    // Rotated: both secrets sign during the grace period.
    let (status, rotated) = host.api(Method::POST, &format!("{path}/{destination}/rotate-secret"), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap_or_default().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != given, "{rotated}");
    assert!(rotated["previous_secret_expires_at_ms"].is_i64(), "{rotated}");
    send(&host, &trigger, "m2", "user.created").await;
    let pushes = receiver.wait_for("a push after rotation", Duration::from_secs(30), |p| p.len() == 2).await;
    assert_eq!(pushes[1].signatures, 2, "{:?}", pushes[1]);
    assert!(pushes[1].verifies_with(given) && pushes[1].verifies_with(&new_secret), "either secret verifies");
    assert!(!pushes[0].verifies_with(&new_secret), "the earlier push was signed with the old one only");

    // Bad input is refused with the field at fault; unknown ids are 404.
    for (body, expected) in [
        (json!({ "url": receiver.url, "secret": "not-whsec" }), "secret:"),
        (json!({ "url": receiver.url, "event_types": [] }), "event_types:"),
        (json!({ "url": receiver.url, "max_in_flight": 0 }), "max_in_flight:"),
        (json!({ "url": receiver.url, "rate_per_s": 100000 }), "rate_per_s:"),
        (json!({ "url": "not a url" }), "url:"),
    ] {
        let (status, refused) = host.api(Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
        assert!(refused["error"]["message"].as_str().is_some_and(|m| m.starts_with(expected)), "{body}: {refused}");
    }
    let (status, _) = host.api(Method::PATCH, &format!("{path}/{destination}"), Some(json!({ "status": "disabled" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(host.api(Method::GET, "/triggers/trg_nope/destinations", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(host.api(Method::GET, &format!("{path}/dst_nope"), None).await.0, StatusCode::NOT_FOUND);

    let (status, _) = host.api(Method::DELETE, &format!("{path}/{destination}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = host.api(Method::GET, &path, None).await;
    assert_eq!(list["destinations"].as_array().map(Vec::len), Some(0), "{list}");
    assert_eq!(deliveries(&host, &format!("destination={destination}")).await.len(), 0, "its jobs went with it");
}

#[tokio::test]
async fn an_ordered_destination_gets_events_in_order_behind_a_failing_one() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    add_destination(&host, &trigger, json!({ "url": receiver.url, "ordered": true })).await;
    // The first event fails twice; the others must wait for it.
    receiver.script(|push, nth| if push.body["data"]["data"]["message"] == "m0" && nth < 2 { (500, None) } else { (200, None) });
    for n in 0..5 {
        send(&host, &trigger, &format!("m{n}"), "user.created").await;
    }
    let pushes = receiver.wait_for("all five", Duration::from_secs(30), |p| p.len() >= 7).await;
    let order: Vec<&str> = pushes.iter().filter_map(|p| p.body["data"]["data"]["message"].as_str()).collect();
    assert_eq!(order, ["m0", "m0", "m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(receiver.most_in_flight(), 1);
}

#[tokio::test]
async fn a_destination_never_has_more_attempts_in_flight_than_its_cap() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(50));
    let trigger = webhook_trigger(&host).await;
    add_destination(&host, &trigger, json!({ "url": receiver.url, "max_in_flight": 2 })).await;
    for n in 0..20 {
        send(&host, &trigger, &format!("m{n}"), "user.created").await;
    }
    receiver.wait_for("all twenty", Duration::from_secs(30), |p| p.len() >= 20).await;
    assert_eq!(receiver.most_in_flight(), 2, "two at a time, never more");
}

#[tokio::test]
async fn a_rate_cap_spaces_attempts() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    add_destination(&host, &trigger, json!({ "url": receiver.url, "rate_per_s": 5 })).await;
    for n in 0..6 {
        send(&host, &trigger, &format!("m{n}"), "user.created").await;
    }
    let started = Instant::now();
    let pushes = receiver.wait_for("all six", Duration::from_secs(30), |p| p.len() >= 6).await;
    // One token at once, then one per 200 ms: the sixth no sooner than 1 s
    // after the first.
    let spread = pushes[5].at.duration_since(pushes[0].at);
    assert!(spread >= Duration::from_millis(950), "six pushes within {spread:?} ({:?} in all)", started.elapsed());
}

#[tokio::test]
async fn an_unknown_trigger_or_bad_replay_is_refused() {
    let host = spawn_host().await;
    let trigger = webhook_trigger(&host).await;
    let replay = format!("/triggers/{trigger}/events/replay");
    for body in [json!({}), json!({ "dead_letters": true, "event_id": "evt_x" })] {
        assert_eq!(host.api(Method::POST, &replay, Some(body)).await.0, StatusCode::BAD_REQUEST);
    }
    let (status, _) = host.api(Method::POST, "/triggers/trg_nope/events/replay", Some(json!({ "since_ms": 0 }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(host.api(Method::GET, "/deliveries?status=lost", None).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(host.api(Method::GET, "/deliveries/dlv_nope/attempts", None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn destinations_and_replays_from_the_command_line() {
    use crate::server::cli::{cli, stdout};
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3\n").expect("write secret");
    receiver.trust("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3");

    let secret_path = secret_file.to_str().expect("utf-8 path");
    let added = cli(&host, &["destination", "add", &trigger, &receiver.url, "--secret-file", secret_path, "--paused"]).await;
    assert!(added.status.success(), "{added:?}");
    let text = stdout(&added);
    assert!(text.contains("status:      paused") && text.contains("whsec_MDEy"), "{text}");
    let id = text.lines().find_map(|l| l.strip_prefix("id:")).map(str::trim).expect("id line").to_owned();

    send(&host, &trigger, "m1", "user.created").await;
    let listed = stdout(&cli(&host, &["destination", "list", &trigger]).await);
    assert!(listed.contains(&id) && listed.contains("pending 1"), "{listed}");
    assert!(cli(&host, &["destination", "resume", &trigger, &id]).await.status.success());
    receiver.wait_for("the push", Duration::from_secs(30), |p| p.len() == 1 && p[0].verified).await;
    // A replay skips events with a job still pending: wait for the record.
    deliveries_until(&host, &format!("trigger={trigger}&status=delivered"), "the delivery recorded", |r| r.len() == 1).await;

    let replayed = cli(&host, &["events", "replay", &trigger, "--since-ms", "0"]).await;
    assert_eq!(stdout(&replayed).trim(), "queued 1", "{replayed:?}");
    let pushes = receiver.wait_for("the replay", Duration::from_secs(30), |p| p.len() == 2).await;
    assert_eq!(pushes[0].id, pushes[1].id);

    let rotated = stdout(&cli(&host, &["destination", "rotate", &trigger, &id]).await);
    assert!(rotated.starts_with("secret:      whsec_") && rotated.contains("signs too until"), "{rotated}");
    let jobs = stdout(&cli(&host, &["destination", "deliveries", "--trigger", &trigger, "--status", "delivered"]).await);
    assert_eq!(jobs.lines().filter(|l| l.contains("delivered")).count(), 2, "{jobs}");
    assert!(cli(&host, &["destination", "pause", &trigger, &id]).await.status.success());
    let deleted = cli(&host, &["destination", "delete", &trigger, &id]).await;
    assert!(deleted.status.success(), "{deleted:?}");
    let refused = cli(&host, &["destination", "add", &trigger, "https://127.0.0.1/x", "--rate", "0"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("rate_per_s"), "{refused:?}");
}

#[tokio::test]
async fn a_destination_the_operator_no_longer_allows_is_disabled_at_start_not_fatal() {
    let host = spawn_host_with_config(PRIVATE_FAST).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let destination = add_destination(&host, &trigger, json!({ "url": receiver.url })).await["id"].as_str().unwrap_or_default().to_owned();
    // The operator turns private destinations off and restarts.
    let config = host.data_dir.parent().expect("temp dir").join("triggerhost.toml");
    std::fs::write(&config, "[delivery]\nretry_scale = 0.0001\n").expect("rewrite config");
    let host = host.restart().await;
    let (status, view) = host.api(Method::GET, &format!("/triggers/{trigger}/destinations/{destination}"), None).await;
    assert_eq!((status, view["status"].as_str()), (StatusCode::OK, Some("disabled")), "{view}");
    assert!(view["disabled_reason"].as_str().is_some_and(|r| r.contains("allow_private")), "{view}");
    send(&host, &trigger, "m1", "user.created").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.pushes().is_empty(), "nothing sent to it");
}

#[tokio::test]
async fn retention_keeps_an_event_until_its_pending_delivery_is_done() {
    let config = format!("{PRIVATE_FAST}[retention]\nmax_age_s = 1\nsweep_every_s = 1\n");
    let host = spawn_host_with_config(&config).await;
    let receiver = Receiver::start().await;
    let trigger = webhook_trigger(&host).await;
    let bare = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let destination = add_destination(&host, &trigger, json!({ "url": receiver.url, "paused": true })).await;
    send(&host, &trigger, "m1", "user.created").await;
    send(&host, &bare, "m1", "user.created").await;
    // The sweep removes the event nobody waits for, and keeps the other.
    for _ in 0..100 {
        if host.all_events(&bare).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(host.all_events(&bare).await.is_empty(), "the sweep ran");
    assert_eq!(host.all_events(&trigger).await.len(), 1, "kept while its delivery is pending");

    let path = format!("/triggers/{trigger}/destinations/{}", destination["id"].as_str().unwrap_or_default());
    assert_eq!(host.api(Method::PATCH, &path, Some(json!({ "status": "enabled" }))).await.0, StatusCode::OK);
    receiver.wait_for("the push", Duration::from_secs(30), |p| p.len() == 1).await;
    for _ in 0..100 {
        if host.all_events(&trigger).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(host.all_events(&trigger).await.is_empty(), "removed once delivered");
}

#[tokio::test]
async fn all_destinations_share_the_hosts_worker_pool() {
    let host = spawn_host_with_config(&format!("{PRIVATE_FAST}workers = 2\n")).await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(50));
    let trigger = webhook_trigger(&host).await;
    // Three destinations, sixteen attempts each at once allowed, one receiver.
    for _ in 0..3 {
        add_destination(&host, &trigger, json!({ "url": receiver.url })).await;
    }
    for n in 0..8 {
        send(&host, &trigger, &format!("m{n}"), "user.created").await;
    }
    receiver.wait_for("every push", Duration::from_secs(30), |p| p.len() >= 24).await;
    assert_eq!(receiver.most_in_flight(), 2, "two workers over all destinations");
}
