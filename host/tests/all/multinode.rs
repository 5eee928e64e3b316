//! Three nodes on one PostgreSQL: webhooks taken by any node and stored
//! once, each poll run by one node at a time and taken over when its node
//! dies, an activation on one node used by the others within a second.
//! These run on PostgreSQL only (`cargo xtask test` runs them in its
//! PostgreSQL leg; the machine's server is used when the run names none).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{WHSEC, signed_now};
use crate::database::{Schema, postgres_base};
use crate::host::{Host, spawn_cluster, spawn_node};
use crate::server::polling::{Feed, Mode, emitted, setup};

/// Short leases and reconciles, so takeovers fit in a test; no per-trigger
/// rate limit in the way of the load.
const CLUSTER: &str = "[cluster]\nlease_ms = 2000\nreconcile_ms = 500\n\
                       [polling]\nmin_interval_s = 1\n\
                       [ingress]\nrate_per_second = 1000000\nburst = 1000000\n";

/// Waits until every node serves the webhook trigger `id` (a signed
/// delivery with a throwaway id is taken), at most 10 s.
async fn served_everywhere(hosts: &[Host], id: &str) {
    for (n, host) in hosts.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let probe = format!("msg_probe_{n}");
            if host.deliver(id, &signed_now(&probe, b"{}"), b"{}").await.status() == StatusCode::OK {
                break;
            }
            assert!(Instant::now() < deadline, "node {n} does not serve {id} 10 s after it was enabled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `nodes` nodes, a feed holding item `a`, and a trigger polling it every
/// second, created and enabled on the first node.
async fn polling_cluster(nodes: usize) -> (Vec<Host>, Feed, String) {
    let hosts = spawn_cluster(nodes, CLUSTER).await;
    let feed = Feed::start().await;
    feed.add("a", 0);
    let id = setup(&hosts[0], &feed, 1).await;
    assert_eq!(hosts[0].api(Method::POST, &format!("/triggers/{id}/enable"), None).await.0, StatusCode::OK);
    (hosts, feed, id)
}

/// The id of the node that answers `/cluster` at `host`.
async fn node_id(host: &Host) -> String {
    let (status, cluster) = host.api(Method::GET, "/cluster", None).await;
    assert_eq!(status, StatusCode::OK, "{cluster}");
    cluster["node"].as_str().expect("node id").to_owned()
}

/// The node holding lease `name`, as `/cluster` at `host` shows it.
async fn holder(host: &Host, name: &str) -> Option<String> {
    let (_, cluster) = host.api(Method::GET, "/cluster", None).await;
    cluster["leases"].as_array()?.iter().find(|l| l["name"] == name).and_then(|l| l["holder"].as_str()).map(str::to_owned)
}

#[tokio::test]
async fn webhooks_sent_round_robin_to_three_nodes_are_stored_exactly_once() {
    let hosts = spawn_cluster(3, CLUSTER).await;
    hosts[0].upload_plugin("standard_webhooks").await;
    let id = hosts[0].enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    served_everywhere(&hosts, &id).await;

    // Each message to all three nodes at once (a sender retrying on a
    // timeout, its retries reaching other nodes); one message after another,
    // so the load stays within each node's concurrent calls.
    for n in 0..60 {
        let sends: Vec<_> = hosts
            .iter()
            .map(|host| {
                let (delivery, body) = (format!("msg_rr_{n}"), format!(r#"{{"n":{n}}}"#));
                let (url, http, headers) = (format!("{}/hooks/{id}", host.url), host.http.clone(), signed_now(&delivery, body.as_bytes()));
                tokio::spawn(async move {
                    let mut request = http.post(url).body(body);
                    for (name, value) in headers {
                        request = request.header(name, value);
                    }
                    request.send().await.map(|r| r.status())
                })
            })
            .collect();
        for send in sends {
            assert_eq!(send.await.expect("send").ok(), Some(StatusCode::OK), "message {n}");
        }
    }
    for host in &hosts {
        let events = host.all_events(&id).await;
        let mut keys: Vec<String> =
            events.iter().filter_map(|e| e["dedupe_key"].as_str()).filter(|k| k.starts_with("msg_rr_")).map(str::to_owned).collect();
        keys.sort();
        keys.dedup();
        assert_eq!((keys.len(), events.iter().filter(|e| e["dedupe_key"].as_str().is_some_and(|k| k.starts_with("msg_rr_"))).count()), (60, 60));
    }
    let (_, stats) = hosts[1].api(Method::GET, &format!("/triggers/{id}/stats"), None).await;
    assert!(stats["duplicates"].as_i64() >= Some(120), "{stats}");
}

#[tokio::test]
async fn each_poll_runs_on_one_node_at_a_time_and_moves_when_its_node_is_killed() {
    let (mut hosts, feed, id) = polling_cluster(3).await;

    // Every poll holds the feed 300 ms; over many one-second ticks on three
    // nodes, the feed never sees two at once.
    feed.set_mode(Mode::Slow);
    let asked = feed.requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let polls = feed.requests.load(Ordering::SeqCst) - asked;
    assert_eq!(feed.slow_at_once[1].load(Ordering::SeqCst), 1, "two nodes polled at once");
    assert!((5..=10).contains(&polls), "{polls} polls in 8 s at one per second: not one node's ticks");

    // The holder dies: another node polls within the lease time, and the
    // items it missed are emitted once.
    let lease = format!("poll:{id}");
    let holding = holder(&hosts[0], &lease).await.expect("a node holds the poll lease");
    let mut killed = None;
    for (n, host) in hosts.iter_mut().enumerate() {
        if node_id(host).await == holding {
            host.kill9().await;
            killed = Some(n);
        }
    }
    let killed = killed.expect("the holder is one of the nodes");
    let survivor = &hosts[(killed + 1) % 3];
    feed.add("b", 100);
    feed.add("c", 200);
    let killed_at = Instant::now();
    let deadline = killed_at + Duration::from_secs(15);
    // `a` was there before the trigger was enabled: its baseline, not an event.
    while emitted(survivor, &id).await.len() < 2 {
        if Instant::now() > deadline {
            let (_, cluster) = survivor.api(Method::GET, "/cluster", None).await;
            let (_, health) = survivor.api(Method::GET, &format!("/triggers/{id}/health"), None).await;
            panic!("nobody polled 15 s after the holder died: {cluster} {health} {:?}", emitted(survivor, &id).await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = killed_at.elapsed();
    assert_ne!(holder(survivor, &lease).await.as_deref(), Some(holding.as_str()));
    // Taken over as the lease ends (2 s at most after the last renewal),
    // plus one poll at the slow feed; the slack is for a loaded machine.
    assert!(took < Duration::from_millis(2000 + 2000), "taken over {} ms after the kill; the lease is 2000 ms", took.as_millis());
    // Two more ticks: still once each.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(emitted(survivor, &id).await, ["b", "c"]);
    assert_eq!(feed.slow_at_once[1].load(Ordering::SeqCst), 1);
    eprintln!("{polls} polls in 8 s over 3 nodes; taken over {} ms after kill -9 (lease 2000 ms)", took.as_millis());
}

#[tokio::test]
async fn an_activation_on_one_node_is_used_by_the_others_within_a_second_under_load() {
    let hosts = spawn_cluster(3, CLUSTER).await;
    hosts[0].upload_plugin("standard_webhooks").await;
    let id = hosts[0].enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    hosts[1].upload_plugin("standard_webhooks_next").await;
    served_everywhere(&hosts, &id).await;

    // Four senders per node, each recording when it sent what, and to which node.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let log: Arc<std::sync::Mutex<Vec<(String, usize, u128)>>> = Arc::default();
    let failed: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for (node, host) in hosts.iter().enumerate() {
        for sender in 0..4 {
            let (stop, log, failed, http) = (Arc::clone(&stop), Arc::clone(&log), Arc::clone(&failed), host.http.clone());
            let url = format!("{}/hooks/{id}", host.url);
            senders.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (delivery, body) = (format!("msg_act_{node}_{sender}_{n}"), format!(r#"{{"n":{n}}}"#));
                    let sent_at = started.elapsed().as_millis();
                    let mut request = http.post(&url).body(body.clone());
                    for (name, value) in signed_now(&delivery, body.as_bytes()) {
                        request = request.header(name, value);
                    }
                    match request.send().await {
                        Ok(response) if response.status() == StatusCode::OK => log.lock().expect("log").push((delivery, node, sent_at)),
                        other => failed.lock().expect("failures").push(format!("{delivery}: {other:?}")),
                    }
                    n += 1;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let swap = json!({ "version": "0.2.0" });
    assert_eq!(hosts[2].api(Method::POST, "/plugins/standard-webhooks/activate", Some(swap)).await.0, StatusCode::OK);
    let activated_at = started.elapsed().as_millis();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("sender");
    }

    let failed = failed.lock().expect("failures").clone();
    let log = log.lock().expect("log").clone();
    assert!(failed.is_empty(), "{} of {} deliveries failed: {:?}", failed.len(), log.len(), &failed[..failed.len().min(5)]);
    let events = hosts[0].all_events(&id).await;
    let version: std::collections::HashMap<&str, &str> = events
        .iter()
        .filter_map(|e| Some((e["dedupe_key"].as_str()?, e["plugin_version"].as_str()?)))
        .collect();
    for node in 0..3 {
        // Sent a second or more after the activation returned: the new version.
        let late: Vec<&(String, usize, u128)> = log.iter().filter(|(_, n, at)| *n == node && *at > activated_at + 1000).collect();
        assert!(!late.is_empty(), "node {node} took nothing after the activation");
        let stale: Vec<&str> =
            late.iter().map(|(key, ..)| key.as_str()).filter(|key| version.get(key) != Some(&"standard-webhooks@0.2.0")).collect();
        assert!(stale.is_empty(), "node {node} still ran the old version a second after the activation: {:?}", &stale[..stale.len().min(5)]);
        let before = log.iter().filter(|(_, n, at)| *n == node && *at < activated_at.saturating_sub(100)).count();
        assert!(before > 0, "node {node} took nothing before the activation");
    }
    assert_eq!(events.iter().filter(|e| e["dedupe_key"].as_str().is_some_and(|k| k.starts_with("msg_act_"))).count(), log.len());
    let cluster: Value = hosts[1].api(Method::GET, "/cluster", None).await.1;
    assert_eq!(cluster["nodes"].as_array().map(Vec::len), Some(3), "{cluster}");
    // Each node's /metrics says which node answered.
    let node = cluster["node"].as_str().expect("node id");
    let raw = hosts[1].raw_metrics().await;
    assert!(raw.contains(&format!("\ntriggerhost_received_total{{node=\"{node}\"}} ")), "{raw}");
}

#[tokio::test]
async fn a_poll_whose_lease_changed_hands_meanwhile_commits_nothing() {
    let (hosts, feed, id) = polling_cluster(1).await;
    let host = &hosts[0];
    crate::server::polling::polled(host, &id, 1).await;

    // While a poll is at the feed (300 ms), another node takes the lease
    // over for two seconds, as if this node had stalled past its expiry.
    feed.set_mode(Mode::Slow);
    feed.add("b", 100);
    feed.next_request().await;
    let mut database = crate::database::connect(host).await;
    let until = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis())
        .expect("ms")
        + 2000;
    let taken = sqlx::query("UPDATE leases SET holder = 'node_elsewhere', expires_at_ms = $1 WHERE name = $2")
        .bind(until)
        .bind(format!("poll:{id}"))
        .execute(&mut database)
        .await
        .expect("take the lease over");
    assert_eq!(taken.rows_affected(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(emitted(host, &id).await.is_empty(), "a poll committed under a lease its node no longer held");

    // The lease expires, this node takes it again, and b comes once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while emitted(host, &id).await.is_empty() {
        assert!(Instant::now() < deadline, "b never came after the lease came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(emitted(host, &id).await, ["b"]);
}

#[tokio::test]
async fn a_node_stopped_with_sigterm_hands_its_leases_over_at_once() {
    let (mut hosts, _feed, id) = polling_cluster(2).await;
    let lease = format!("poll:{id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let holding = loop {
        if let Some(holding) = holder(&hosts[0], &lease).await {
            break holding;
        }
        assert!(Instant::now() < deadline, "no node took the poll lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stopping = if node_id(&hosts[0]).await == holding { 0 } else { 1 };
    let exit = hosts[stopping].terminate().await;
    assert!(exit.success(), "SIGTERM: {exit}");
    // Given back as it stopped, not left to expire.
    let (_, cluster) = hosts[1 - stopping].api(Method::GET, "/cluster", None).await;
    let held_by_stopped = cluster["leases"].as_array().map_or(0, |leases| leases.iter().filter(|l| l["holder"] == holding.as_str()).count());
    assert_eq!(held_by_stopped, 0, "{cluster}");
    assert!(cluster["nodes"].as_array().is_some_and(|nodes| nodes.iter().all(|n| n["id"] != holding.as_str())), "{cluster}");
}

#[tokio::test]
async fn three_nodes_starting_at_once_on_an_empty_database_migrate_it_once() {
    let base = postgres_base().unwrap_or_else(|| crate::database::MACHINE_POSTGRES.to_owned());
    let schema = Schema::create(&base).await;
    let node = || spawn_node(CLUSTER, Some(Arc::clone(&schema)));
    let (first, second, third) = tokio::join!(node(), node(), node());
    let hosts = [first, second, third];
    let mut database = crate::database::connect(&hosts[0]).await;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut database)
        .await
        .expect("migrations");
    // Every migration in the folder, each once, none failed.
    let mut expected: Vec<i64> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/postgres"))
        .expect("migrations folder")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    expected.sort_unstable();
    assert!(!expected.is_empty());
    assert_eq!(applied, expected, "each migration once");
    let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success")
        .fetch_one(&mut database)
        .await
        .expect("migrations");
    assert_eq!(failed, 0);
    for host in &hosts {
        let (status, cluster) = host.api(Method::GET, "/cluster", None).await;
        assert_eq!((status, cluster["nodes"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{cluster}");
    }
}

#[tokio::test]
async fn a_destination_is_pushed_to_by_one_node_each_event_once() {
    let hosts = spawn_cluster(3, &format!("{CLUSTER}[delivery]\nallow_private = true\nretry_scale = 0.0001\n")).await;
    let receiver = crate::receiver::Receiver::start().await;
    // Each push is held a while: lanes on several nodes would overlap.
    receiver.delay(Duration::from_millis(50));
    hosts[0].upload_plugin("standard_webhooks").await;
    let id = hosts[0].enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    let body = json!({ "url": receiver.url, "secret": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3" });
    let (status, created) = hosts[0].api(Method::POST, &format!("/triggers/{id}/destinations"), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    served_everywhere(&hosts, &id).await;

    // Thirty events, taken by the three nodes in turn.
    for n in 0..30 {
        let (delivery, body) = (format!("msg_push_{n}"), format!(r#"{{"n":{n}}}"#));
        let response = hosts[n % 3].deliver(&id, &signed_now(&delivery, body.as_bytes()), body.as_bytes()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    // The three probes of `served_everywhere` are events too.
    receiver.wait_for("every event pushed", Duration::from_secs(30), |p| p.len() >= 33).await;
    // Lanes on other nodes would push again within their second's re-check.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pushes = receiver.pushes();
    let mut ids: Vec<&str> = pushes.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    let all = ids.len();
    ids.dedup();
    assert_eq!((ids.len(), all), (33, 33), "each event pushed once by one node");
}
