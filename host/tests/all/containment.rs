//! What a hostile component may make the runtime hold: the pool share of
//! one component, memory over all its memories, host-side allocations,
//! and the strings it hands over. Each test trips one bound.

use std::time::Duration;

use triggerhost::contract::{RunInput, Verdict};
use triggerhost::{CallErrorKind, ComponentShape, Limits, LoadError, Runtime, RuntimeConfig};

use crate::helpers::{NO_HEADERS, component_bytes, context, post, runtime, with_extra_instances};

/// Three memories whose start function grows each to 20 MiB: under a
/// 32 MiB limit one by one, over it together (and under the 64 MiB default
/// that `describe` runs with at load).
const THREE_MEMORIES: &str = r#"(module
    (memory $a 0) (memory $b 0) (memory $c 0)
    (func $grow
        (if (i32.eq (memory.grow $a (i32.const 320)) (i32.const -1)) (then unreachable))
        (if (i32.eq (memory.grow $b (i32.const 320)) (i32.const -1)) (then unreachable))
        (if (i32.eq (memory.grow $c (i32.const 320)) (i32.const -1)) (then unreachable)))
    (start $grow))"#;

async fn run_echo(runtime: &Runtime, bytes: &[u8], limits: &Limits) -> Result<usize, CallErrorKind> {
    let plugin = runtime.load(bytes).await.map_err(|e| CallErrorKind::Host(e.to_string()))?;
    let ctx = context("echo", "{}", None);
    match plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), limits).await {
        Ok(output) => Ok(output.value.map(|o| o.events.len()).unwrap_or(0)),
        Err(error) => Err(error.kind),
    }
}

#[tokio::test]
async fn memories_of_one_call_count_together_against_its_limit() {
    let bytes = with_extra_instances(&component_bytes("hostile"), THREE_MEMORIES, 1);
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    // Pooled and on-demand allocation apply the same per-call total.
    let on_demand = Runtime::new(RuntimeConfig { pooling: false, ..RuntimeConfig::default() }).expect("runtime");
    for runtime in [runtime(), &on_demand] {
        let outcome = run_echo(runtime, &bytes, &limits).await;
        assert_eq!(outcome, Err(CallErrorKind::Memory { limit: 32 << 20 }), "{:?}", runtime.allocation());
    }
    // With room for all three, the same component runs.
    let roomy = Limits { memory_bytes: 128 << 20, ..Limits::default() };
    assert_eq!(run_echo(runtime(), &bytes, &roomy).await, Ok(1));
}

#[tokio::test]
async fn a_component_over_a_pool_cap_is_refused_at_load_with_its_count() {
    let hostile = component_bytes("hostile");
    let rust = runtime().load(&hostile).await.expect("loads").shape();
    let caps = runtime().config().component_caps;

    let many = with_extra_instances(&hostile, "(module)", 65);
    let error = runtime().load(&many).await.expect_err("too many core instances");
    let count = rust.core_instances + 65;
    assert!(
        matches!(error, LoadError::TooComplex { what: "core instances", count: c, limit } if c == count && limit == caps.core_instances),
        "{error}"
    );
    assert!(error.to_string().contains(&format!("{count} core instances")), "{error}");

    let memories = with_extra_instances(&hostile, "(module (memory 0) (memory 0) (memory 0) (memory 0))", 1);
    let error = runtime().load(&memories).await.expect_err("too many memories");
    assert!(matches!(error, LoadError::TooComplex { what: "linear memories", .. }), "{error}");

    // Just under the cap loads, and reports its shape.
    let under = with_extra_instances(&hostile, "(module)", (caps.core_instances as u64 - rust.core_instances) as u32);
    let plugin = runtime().load(&under).await.expect("at the cap loads");
    assert_eq!(plugin.shape(), ComponentShape { core_instances: caps.core_instances as u64, ..rust });
}

#[tokio::test]
async fn a_guest_cannot_make_the_host_allocate_megabytes_of_random_bytes() {
    let plugin = crate::helpers::load("hostile").await;
    let started = std::time::Instant::now();
    let error = plugin
        .run(context("random_flood", "{}", None), RunInput::Webhook(post(NO_HEADERS, b"")), &Limits::default())
        .await
        .expect_err("refused");
    let CallErrorKind::Trap { message } = &error.kind else { panic!("{:?}", error.kind) };
    assert!(message.contains("len") || message.contains("random"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn host_handles_a_guest_opens_are_capped() {
    let plugin = crate::helpers::load("hostile").await;
    let error = plugin
        .run(context("handle_flood", "{}", None), RunInput::Webhook(post(NO_HEADERS, b"")), &Limits::default())
        .await
        .expect_err("capped");
    let CallErrorKind::Trap { message } = &error.kind else { panic!("{:?}", error.kind) };
    assert!(message.contains("resource table"), "{message}");
}

#[tokio::test]
async fn too_much_data_handed_to_a_host_import_is_output_too_large() {
    // 4 MiB in one `log` call, against a 1 MiB output cap: hostcall fuel
    // stops the copy while lifting the import's argument.
    let plugin = crate::helpers::load("hostile").await;
    let limits = Limits { max_output_bytes: 1 << 20, ..Limits::default() };
    let ctx = context("huge_log_line", r#"{"payload_bytes": 4194304}"#, None);
    let error = plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), &limits).await.expect_err("stopped");
    assert_eq!(
        error.kind,
        CallErrorKind::OutputTooLarge {
            detail: "the guest passed more than 1048576 bytes to the host in one crossing".into()
        }
    );
}

#[tokio::test]
async fn a_long_log_line_is_cut_before_it_is_kept() {
    let plugin = crate::helpers::load("hostile").await;
    let limits = Limits { max_log_bytes: 1 << 20, ..Limits::default() };
    let ctx = context("huge_log_line", r#"{"payload_bytes": 100000}"#, None);
    let output = plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), &limits).await.expect("runs");
    let line_bytes = output.log.text.len();
    assert!(line_bytes <= triggerhost::contract::MAX_GUEST_TEXT + 16, "kept {line_bytes}");
}

#[tokio::test]
async fn connector_errors_and_reject_reasons_are_cut_to_a_few_kib() {
    let plugin = crate::helpers::load("hostile").await;
    let limits = Limits::default();
    let ctx = context("long_error", "{}", None);
    let output = plugin.run(ctx, RunInput::Webhook(post(NO_HEADERS, b"")), &limits).await.expect("returns");
    let error = output.value.expect_err("a connector error");
    assert!(error.message.len() <= triggerhost::contract::MAX_GUEST_TEXT + 32, "{}", error.message.len());
    assert!(error.message.ends_with("bytes cut]"), "{}", &error.message[error.message.len() - 30..]);

    let ctx = context("long_reject", "{}", None);
    let verdict = plugin.verify(ctx, post(NO_HEADERS, b""), &limits).await.expect("returns").value;
    let Ok(Verdict::Reject(reason)) = verdict else { panic!("{verdict:?}") };
    assert!(reason.len() <= triggerhost::contract::MAX_GUEST_TEXT + 32, "{}", reason.len());
}

/// A nested component whose core start function makes 50 000 handles of
/// its own resource type: under wasmtime's default of 100 000 live
/// handles, far over the host's cap.
const HANDLE_MAKER: &str = r#"(component
    (type $r (resource (rep i32)))
    (core func $new (canon resource.new $r))
    (core module $m
        (import "" "new" (func $new (param i32) (result i32)))
        (func $start (local $i i32)
            (loop $more
                (drop (call $new (local.get $i)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $more (i32.lt_u (local.get $i) (i32.const 50000)))))
        (start $start))
    (core instance $imports (export "new" (func $new)))
    (core instance (instantiate $m (with "" (instance $imports))))
)"#;

#[tokio::test]
async fn component_handles_a_guest_makes_are_capped() {
    let bytes = crate::helpers::with_extra_component(&component_bytes("hostile"), HANDLE_MAKER);
    // Instantiation itself makes the handles, so `describe` at load trips it.
    let error = runtime().load(&bytes).await.expect_err("capped");
    let LoadError::Describe(call) = &error else { panic!("{error}") };
    let CallErrorKind::Trap { message } = &call.kind else { panic!("{:?}", call.kind) };
    assert!(message.contains("handle"), "{message}");
}

/// Memories a static count cannot see: a module exported by one nested
/// component and instantiated five times by another.
const HIDDEN_MEMORIES: &str = r#"(component
    (component $c
        (core module $m (memory 0))
        (export "m" (core module $m)))
    (instance $i (instantiate $c))
    (alias export $i "m" (core module $x))
    (core instance (instantiate $x))
    (core instance (instantiate $x))
    (core instance (instantiate $x))
    (core instance (instantiate $x))
    (core instance (instantiate $x))
)"#;

#[tokio::test]
async fn memories_hidden_behind_aliases_are_counted_from_the_compiled_component() {
    let bytes = crate::helpers::with_extra_component(&component_bytes("hostile"), HIDDEN_MEMORIES);
    let on_demand = Runtime::new(RuntimeConfig { pooling: false, ..RuntimeConfig::default() }).expect("runtime");
    let error = on_demand.load(&bytes).await.expect_err("6 memories");
    assert!(matches!(error, LoadError::TooComplex { what: "linear memories", count: 6, .. }), "{error}");
    // The pool refuses it too, when compiling.
    let error = runtime().load(&bytes).await.expect_err("6 memories");
    assert!(error.to_string().contains("memories"), "{error}");
}
