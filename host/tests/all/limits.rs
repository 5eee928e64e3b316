//! Each hostile trigger trips one limit and gets its own typed error, fast;
//! the runtime goes on serving healthy plugins right after and meanwhile.

use std::time::Duration;

use triggerhost::contract::{RunInput, Verdict};
use triggerhost::{CallError, CallErrorKind, Limits, Plugin, Runtime, RuntimeConfig};
use crate::helpers::{NO_HEADERS, WHSEC, component_bytes, context, load, post, runtime, signed_now};

/// Runs one hostile trigger and returns the call's error.
async fn attack(plugin: &Plugin, trigger: &str, config: &str, limits: &Limits) -> CallError {
    let ctx = context(trigger, config, None);
    match plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), limits).await {
        Ok(output) => panic!("{trigger} was not stopped: {:?}", output.value.map(|o| o.events.len())),
        Err(error) => error,
    }
}

/// A signed Standard Webhooks delivery goes through verify and run.
async fn healthy_call_succeeds() {
    let plugin = load("standard_webhooks").await;
    let request = post(&signed_now("msg_ok", b"{}"), b"{}");
    let ctx = context("message_received", "{}", Some(WHSEC));
    let limits = Limits::default();
    let verdict = plugin.verify(ctx.clone(), request.clone(), &limits).await.expect("healthy verify");
    assert_eq!(verdict.value, Ok(Verdict::Accept));
    let output = plugin.run(ctx, RunInput::Webhook(request), &limits).await.expect("healthy run");
    assert_eq!(output.value.expect("events").events.len(), 1);
}

#[tokio::test]
async fn an_infinite_loop_runs_out_of_fuel() {
    let plugin = load("hostile").await;
    let limits = Limits { fuel: 20_000_000, ..Limits::default() };
    let error = attack(&plugin, "spin", "{}", &limits).await;
    assert_eq!(error.kind, CallErrorKind::OutOfFuel { limit: 20_000_000 });
    assert_eq!(error.kind.code(), "out-of-fuel");
    assert_eq!(error.export, "run");
    assert!(error.plugin.starts_with("hostile@"));
    assert!(error.fuel_used >= 20_000_000 - 1000, "used {}", error.fuel_used);
    healthy_call_succeeds().await;
}

/// Runs `trigger` under a 200 ms deadline and checks it was stopped by the
/// deadline, not before it and not long after. The call runs on a thread of
/// its own, so a guest that is never interrupted fails the test at the
/// bound instead of hanging it.
async fn stopped_at_the_deadline(trigger: &'static str, limits: Limits) {
    let plugin = load("hostile").await;
    let limit = Duration::from_millis(200);
    let limits = Limits { wall_clock: limit, ..limits };
    let (done, outcome) = std::sync::mpsc::channel();
    let started = std::time::Instant::now();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _ = done.send(runtime.block_on(attack(&plugin, trigger, "{}", &limits)));
    });
    let error = outcome
        .recv_timeout(limit + Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{trigger} was not interrupted within 5 s of its deadline"));
    let elapsed = started.elapsed();
    assert_eq!(error.kind, CallErrorKind::Deadline { limit });
    assert!(elapsed >= limit, "stopped after {elapsed:?}, before its deadline");
    healthy_call_succeeds().await;
}

#[tokio::test]
async fn an_infinite_loop_with_fuel_to_spare_hits_the_deadline() {
    stopped_at_the_deadline("spin", Limits { fuel: u64::MAX / 2, ..Limits::default() }).await;
}

#[tokio::test]
async fn a_guest_parked_in_a_host_call_hits_the_deadline() {
    // `sleep` blocks in wasi:io/poll, where no epoch check runs: the outer
    // wall-clock timeout must stop it.
    stopped_at_the_deadline("sleep", Limits::default()).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let plugin = load("hostile").await;
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    let error = attack(&plugin, "memory_bomb", "{}", &limits).await;
    assert_eq!(error.kind, CallErrorKind::Memory { limit: 32 << 20 });
    // The guest's allocator reports the failure before aborting.
    assert!(error.log.text.contains("memory allocation"), "log: {:?}", error.log.text);
    healthy_call_succeeds().await;
}

#[tokio::test]
async fn deep_recursion_overflows_the_wasm_stack() {
    let plugin = load("hostile").await;
    let error = attack(&plugin, "deep_recursion", "{}", &Limits::default()).await;
    let limit = runtime().config().max_wasm_stack;
    assert_eq!(error.kind, CallErrorKind::StackOverflow { limit });
    healthy_call_succeeds().await;
}

#[tokio::test]
async fn too_many_events_are_refused() {
    let plugin = load("hostile").await;
    let limits = Limits { max_events: 100, ..Limits::default() };
    let error = attack(&plugin, "many_events", r#"{"events": 101}"#, &limits).await;
    assert_eq!(error.kind, CallErrorKind::OutputTooLarge { detail: "101 events, limit 100".into() });

    // At the limit it is fine.
    let ctx = context("many_events", r#"{"events": 100}"#, None);
    let output = plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), &limits).await.expect("100 events pass");
    assert_eq!(output.value.expect("events").events.len(), 100);
}

#[tokio::test]
async fn a_huge_payload_is_stopped_while_being_copied_out() {
    // 4 MiB against a 1 MiB cap: hostcall fuel stops the copy into the host
    // long before the whole list is lifted.
    let plugin = load("hostile").await;
    let limits = Limits { max_output_bytes: 1 << 20, ..Limits::default() };
    let error = attack(&plugin, "huge_payload", r#"{"payload_bytes": 4194304}"#, &limits).await;
    // Stopped in the crossing, not by the size check after a full copy.
    let detail = "the guest passed more than 1048576 bytes to the host in one crossing";
    assert_eq!(error.kind, CallErrorKind::OutputTooLarge { detail: detail.into() });
}

#[tokio::test]
async fn output_just_over_the_cap_is_refused_after_lifting() {
    // Within hostcall fuel's slack, so the host's own size check catches it.
    let plugin = load("hostile").await;
    let limits = Limits { max_output_bytes: 1 << 20, ..Limits::default() };
    let error = attack(&plugin, "huge_payload", r#"{"payload_bytes": 1048600}"#, &limits).await;
    let CallErrorKind::OutputTooLarge { detail } = &error.kind else { panic!("{:?}", error.kind) };
    assert!(detail.contains("limit 1048576"), "{detail}");
}

#[tokio::test]
async fn a_guest_panic_is_a_trap_with_its_message_in_the_log() {
    let plugin = load("hostile").await;
    let error = attack(&plugin, "panic", "{}", &Limits::default()).await;
    let CallErrorKind::Trap { message } = &error.kind else { panic!("{:?}", error.kind) };
    assert!(message.contains("unreachable"), "{message}");
    assert!(error.log.text.contains("hostile connector panicked on purpose"), "{:?}", error.log.text);
    healthy_call_succeeds().await;
}

#[tokio::test]
async fn a_log_flood_is_truncated_not_fatal() {
    let plugin = load("hostile").await;
    let limits = Limits { max_log_bytes: 16 << 10, ..Limits::default() };
    let ctx = context("log_flood", "{}", None);
    let output = plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), &limits).await.expect("flood is not fatal");
    assert_eq!(output.value.expect("events").events.len(), 1);
    assert!(output.log.text.len() <= 16 << 10, "kept {}", output.log.text.len());
    assert!(output.log.text.len() > 15 << 10, "kept {}", output.log.text.len());
    // 2000 x 3 lines of ~600 bytes were written.
    assert!(output.log.dropped_bytes > 3_000_000, "dropped {}", output.log.dropped_bytes);
}

#[tokio::test]
async fn limits_trip_in_on_enable_too() {
    let plugin = load("hostile").await;
    let error = plugin
        .on_enable(context("spin", r#"{"on_enable": true}"#, None), &Limits { fuel: 5_000_000, ..Limits::default() })
        .await
        .expect_err("spin is stopped");
    assert_eq!(error.export, "on-enable");
    assert_eq!(error.kind, CallErrorKind::OutOfFuel { limit: 5_000_000 });
}

/// On a single-threaded runtime, a guest spinning until its deadline still
/// yields every epoch tick, so a healthy call completes while it spins.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_starve_other_calls() {
    let hostile = load("hostile").await;
    load("standard_webhooks").await;
    let limits = Limits { fuel: u64::MAX / 2, wall_clock: Duration::from_secs(30), ..Limits::default() };
    let spinner = tokio::spawn(async move { attack(&hostile, "spin", "{}", &limits).await });
    tokio::task::yield_now().await;
    healthy_call_succeeds().await;
    assert!(!spinner.is_finished(), "the healthy call finished first, while the spinner still runs");
    spinner.abort();
}

/// Starts a call that sleeps until its 2 s deadline, holding a call slot.
fn occupy(plugin: &Plugin) -> tokio::task::JoinHandle<CallError> {
    let plugin = plugin.clone();
    tokio::spawn(async move {
        let limits = Limits { wall_clock: Duration::from_secs(2), ..Limits::default() };
        attack(&plugin, "sleep", "{}", &limits).await
    })
}

async fn wait_until_running(sleeper: &tokio::task::JoinHandle<CallError>) {
    // The sleeper is in its call once it has parked; yielding a few times
    // on this single thread gets it there.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!sleeper.is_finished());
}

#[tokio::test(flavor = "current_thread")]
async fn calls_past_the_runtime_cap_are_shed_as_overloaded() {
    let config = RuntimeConfig { max_concurrent_calls: 1, pooling: false, ..RuntimeConfig::default() };
    let small = Runtime::new(config).expect("runtime");
    let plugin = small.load(&component_bytes("hostile")).await.expect("loads");
    let sleeper = occupy(&plugin);
    wait_until_running(&sleeper).await;

    let error = attack(&plugin, "echo_never_reached", "{}", &Limits::default()).await;
    let CallErrorKind::Overloaded(why) = &error.kind else { panic!("{:?}", error.kind) };
    assert!(why.contains("1 calls already running"), "{why}");
    assert!(error.kind.is_retryable());
    sleeper.abort();
}

#[tokio::test(flavor = "current_thread")]
async fn one_plugin_cannot_take_every_slot() {
    let config = RuntimeConfig { max_concurrent_calls_per_plugin: 1, pooling: false, ..RuntimeConfig::default() };
    let small = Runtime::new(config).expect("runtime");
    let hostile = small.load(&component_bytes("hostile")).await.expect("loads");
    let sleeper = occupy(&hostile);
    wait_until_running(&sleeper).await;

    let error = attack(&hostile, "echo_never_reached", "{}", &Limits::default()).await;
    assert_eq!(error.export, "run");
    let CallErrorKind::Overloaded(why) = &error.kind else { panic!("{:?}", error.kind) };
    assert!(why.contains("concurrency cap"), "{why}");

    // Another plugin on the same runtime still gets a slot.
    let healthy = small.load(&component_bytes("standard_webhooks")).await.expect("loads");
    let out = healthy.on_disable(context("message_received", "{}", None), &Limits::default()).await;
    assert!(out.expect("healthy plugin is served").value.is_ok());
    sleeper.abort();
}

#[tokio::test]
async fn a_guest_cannot_reach_files_env_network_or_ungranted_capabilities() {
    let plugin = load("hostile").await;
    // Something listens where the guest dials, so a refused connection
    // means the sandbox refused it, not that nothing was there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let port = listener.local_addr().expect("address").port();
    let ctx = context("escape", &format!(r#"{{"port": {port}}}"#), None);
    let output = plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), &Limits::default()).await.expect("call succeeds");
    let events = output.value.expect("run succeeds").events;
    let report: serde_json::Value = serde_json::from_str(&events[0].payload).expect("JSON report");
    assert_eq!(report["file"], "denied", "{report}");
    assert_eq!(report["dir"], "denied", "{report}");
    assert_eq!(report["env_vars"], 0, "{report}");
    assert_eq!(report["tcp"], "denied", "{report}");
    let http = report["http"].as_str().unwrap_or_default();
    assert!(http.starts_with("denied: outbound HTTP is not granted"), "{report}");
    assert_eq!(report["kv"], "KvError::Denied", "{report}");
    let arrived = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(arrived.is_err(), "a connection from the guest arrived");
}

#[tokio::test]
async fn a_memory_limit_above_the_runtime_ceiling_is_clamped_to_it() {
    let config = RuntimeConfig {
        max_memory_bytes: 16 << 20,
        default_limits: Limits { memory_bytes: 16 << 20, ..Limits::default() },
        pooling: false,
        ..RuntimeConfig::default()
    };
    let small = Runtime::new(config).expect("runtime");
    let plugin = small.load(&component_bytes("hostile")).await.expect("loads");
    let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
    let error = attack(&plugin, "memory_bomb", "{}", &limits).await;
    assert_eq!(error.kind, CallErrorKind::Memory { limit: 16 << 20 });
}

#[tokio::test]
async fn an_event_payload_that_is_not_json_is_invalid_output() {
    let plugin = load("hostile").await;
    let error = attack(&plugin, "bad_payload", "{}", &Limits::default()).await;
    assert_eq!(error.kind, CallErrorKind::InvalidOutput { detail: "events[0]: payload is not JSON".into() });
    assert_eq!(error.kind.code(), "invalid-output");
}
