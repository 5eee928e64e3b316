//! A connector that misbehaves on purpose, one way per trigger, to show the
//! host stops each attack with its own typed error. Never ship this.

use std::hint::black_box;

use triggerhost_sdk::schema::{ConfigSchema, Prop};
use triggerhost_sdk::*;

struct Hostile;

/// Knobs for the triggers that take a size.
#[derive(Debug, Default, serde::Deserialize)]
struct Config {
    #[serde(default)]
    events: usize,
    #[serde(default)]
    payload_bytes: usize,
    /// Attack in `on-enable` too (off, so ingress tests can enable triggers).
    #[serde(default)]
    on_enable: bool,
    /// The loopback port `escape` tries to reach over TCP.
    #[serde(default)]
    port: u16,
    /// Make `log_flood` trap once it has flooded the log.
    #[serde(default)]
    fail: bool,
    /// How long `on-enable` of `slow_enable` takes before it succeeds.
    #[serde(default)]
    enable_delay_ms: u64,
    /// Where `fetch` sends its requests.
    #[serde(default)]
    url: String,
    /// How many requests `fetch` sends in one call (at least one).
    #[serde(default)]
    repeat: usize,
    /// What `kv_probe` does: `write`, `read`, `list` or `fill`.
    #[serde(default)]
    op: String,
    /// The key `kv_probe` reads or writes, or the prefix it lists.
    #[serde(default)]
    key: String,
    /// The value `kv_probe` writes.
    #[serde(default)]
    value: String,
}

const TRIGGERS: &[&str] = &[
    "spin",
    "memory_bomb",
    "deep_recursion",
    "many_events",
    "huge_payload",
    "panic",
    "log_flood",
    "sleep",
    "escape",
    "bad_payload",
    "random_flood",
    "handle_flood",
    "huge_log_line",
    "long_error",
    "long_reject",
    "slow_enable",
    "echo",
    "fetch",
    "kv_probe",
    "stdout_flood",
    "stateful",
];

/// Bytes of the guest-chosen text in `long_error` and `long_reject`.
const LONG_TEXT: usize = 1 << 20;

fn spin() -> ! {
    let mut x: u64 = 0;
    loop {
        x = black_box(x.wrapping_add(1));
    }
}

fn memory_bomb() -> usize {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really used.
        hoard.push(vec![0xA5; 1 << 20]);
        black_box(&hoard);
    }
}

// Unbounded on purpose: the host's wasm stack limit is what must stop it.
// Frames stay small (one spilled u64) so the wasm stack, not Rust's shadow
// stack in linear memory, runs out first; the rotate keeps LLVM from turning
// the recursion into a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    black_box(depth).wrapping_add(recurse(depth + 1)).rotate_left(1)
}

/// Dials 127.0.0.1:`port` with `wasi:sockets` directly (Rust's standard
/// library has no TCP client on wasm32-wasip2 and would fail on its own).
fn tcp_connect(port: u16) -> &'static str {
    use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    let network = wasip2::sockets::instance_network::instance_network();
    let Ok(socket) = wasip2::sockets::tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) else {
        return "denied";
    };
    let address = IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: (127, 0, 0, 1) });
    if socket.start_connect(&network, address).is_err() {
        return "denied";
    }
    let ready = socket.subscribe();
    loop {
        match socket.finish_connect() {
            Ok(_) => return "connected",
            Err(ErrorCode::WouldBlock) => ready.block(),
            Err(_) => return "denied",
        }
    }
}

/// Tries every way out of the sandbox and reports what each attempt got.
fn escape(port: u16) -> serde_json::Value {
    let file = std::fs::read_to_string("/etc/passwd").map(|_| "read").unwrap_or_else(|_| "denied");
    let dir = std::fs::read_dir("/").map(|_| "listed").unwrap_or_else(|_| "denied");
    let env = std::env::vars().count();
    let tcp = tcp_connect(port);
    let http = outbound_http::send(&outbound_http::Request {
        method: "GET".into(),
        url: "http://169.254.169.254/latest/meta-data/".into(),
        headers: vec![],
        body: vec![],
        timeout_ms: None,
    });
    let http = match http {
        Ok(response) => format!("status {}", response.status),
        Err(outbound_http::HttpError::Denied(why)) => format!("denied: {why}"),
        Err(other) => format!("failed: {other:?}"),
    };
    let kv = match kv::set("stolen", b"secrets") {
        Ok(()) => "stored".to_owned(),
        Err(error) => format!("{error:?}"),
    };
    serde_json::json!({ "file": file, "dir": dir, "env_vars": env, "tcp": tcp, "http": http, "kv": kv })
}

/// The typed error a capability gave, as the connector's failure: its
/// variant is in the message, where the test and the operator read it.
fn failed(code: ErrorCode, error: impl std::fmt::Debug) -> ConnectorError {
    ConnectorError::new(code, format!("{error:?}"))
}

/// The output of a probe: no events, a JSON answer for the sender.
fn answer(body: serde_json::Value) -> RunOutput {
    let mut response = HttpResponse::text(200, body.to_string());
    response.headers = vec![("content-type".into(), "application/json".into())];
    RunOutput { events: Vec::new(), response: Some(response) }
}

/// Sends `repeat` GETs to `url`; the first failure fails the call.
fn fetch(config: &Config) -> Result<RunOutput, ConnectorError> {
    let mut last = serde_json::Value::Null;
    for _ in 0..config.repeat.max(1) {
        let response = Request::get(&config.url).send().map_err(|e| failed(ErrorCode::CapabilityDenied, e))?;
        last = serde_json::json!({ "status": response.status(), "bytes": response.body().len() });
    }
    Ok(answer(last))
}

/// Reads, writes, lists or fills the trigger's key-value store.
fn kv_probe(config: &Config) -> Result<RunOutput, ConnectorError> {
    let denied = |e| failed(ErrorCode::CapabilityDenied, e);
    Ok(answer(match config.op.as_str() {
        "write" => {
            kv::set(&config.key, config.value.as_bytes()).map_err(denied)?;
            serde_json::json!({ "written": config.key })
        }
        "read" => {
            let value = kv::get(&config.key).map_err(denied)?.map(|v| String::from_utf8_lossy(&v).into_owned());
            serde_json::json!({ "value": value })
        }
        "list" => serde_json::json!({ "keys": kv::list_keys(&config.key).map_err(denied)? }),
        "fill" => {
            for n in 0.. {
                kv::set(&format!("fill-{n:06}"), &[0; 1024]).map_err(denied)?;
            }
            serde_json::Value::Null
        }
        other => return Err(ConnectorError::new(ErrorCode::InvalidConfig, format!("unknown op {other}"))),
    }))
}

fn attack(ctx: &TriggerContext) -> Result<RunOutput, ConnectorError> {
    let config: Config = ctx.config()?;
    let events = match ctx.trigger_name.as_str() {
        "fetch" => return fetch(&config),
        // 100 MiB to stdout, then a failure, so the log is recorded.
        "stdout_flood" => {
            use std::io::Write;
            let chunk = vec![b'o'; 1 << 20];
            let mut stdout = std::io::stdout();
            for _ in 0..100 {
                let _ = stdout.write_all(&chunk);
            }
            return Err(ConnectorError::new(ErrorCode::Internal, "flooded stdout"));
        }
        "kv_probe" => return kv_probe(&config),
        "spin" => spin(),
        "memory_bomb" => vec![Event::json("never", &memory_bomb())?],
        "deep_recursion" => vec![Event::json("never", &recurse(0))?],
        "many_events" => (0..config.events)
            .map(|i| Event::json("item", &i).map(|e| e.dedupe_key(i.to_string())))
            .collect::<Result<_, _>>()?,
        "huge_payload" => vec![Event::raw("big", format!("\"{}\"", "x".repeat(config.payload_bytes)))],
        "panic" => panic!("hostile connector panicked on purpose"),
        "log_flood" => {
            let line = "flood ".repeat(100);
            for _ in 0..2000 {
                println!("{line}");
                eprintln!("{line}");
                log::info(&line);
            }
            if config.fail {
                panic!("failing after a flood");
            }
            vec![Event::json("flooded", &true)?]
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            vec![]
        }
        "escape" => vec![Event::json("escape", &escape(config.port))?],
        "bad_payload" => vec![Event::raw("bad", "{not json".into())],
        // Asks the host for 16 MiB of random bytes in one call (under
        // wasmtime's own 64 MiB default, over the host's cap).
        "random_flood" => vec![Event::json("random", &wasip2::random::random::get_random_bytes(16 << 20).len())?],
        // Opens 100 000 host-side streams and never drops them (under
        // wasmtime's own default table size, over the host's cap).
        "handle_flood" => {
            for _ in 0..100_000 {
                std::mem::forget(wasip2::cli::stdout::get_stdout());
            }
            vec![]
        }
        // One log line far past every cap, handed to a host import.
        "huge_log_line" => {
            log::info(&"x".repeat(config.payload_bytes));
            vec![]
        }
        "long_error" => {
            return Err(ConnectorError {
                code: ErrorCode::Internal,
                message: "e".repeat(LONG_TEXT),
                retryable: false,
            });
        }
        _ => vec![Event::json("echo", &ctx.trigger_name)?],
    };
    Ok(RunOutput::from_events(events))
}

/// Calls this instance has served, and the triggers it served them for:
/// globals, which live as long as the instance.
static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static SERVED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Reports what its globals hold: how many calls this instance served and
/// for which triggers. A body of `trap` traps afterwards.
fn stateful(ctx: &TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
    let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let served = {
        let mut served = SERVED.lock().unwrap_or_else(|p| p.into_inner());
        if !served.contains(&ctx.trigger_id) {
            served.push(ctx.trigger_id.clone());
        }
        served.clone()
    };
    if matches!(&input, RunInput::Webhook(request) if request.body == b"trap") {
        panic!("trapping on purpose after call {calls}");
    }
    Ok(RunOutput::from_events(vec![Event::json("state", &serde_json::json!({ "calls": calls, "served": served }))?]))
}

impl Connector for Hostile {
    fn describe() -> Manifest {
        let config = || {
            ConfigSchema::new()
                .prop("events", Prop::integer("Events to return").minimum(0))
                .prop("payload_bytes", Prop::integer("Payload size").minimum(0))
                .prop("on_enable", Prop::boolean("Attack in on-enable too"))
                .prop("port", Prop::integer("Loopback port escape dials").minimum(0))
                .prop("enable_delay_ms", Prop::integer("How long on-enable takes").minimum(0))
                .prop("fail", Prop::boolean("Trap after a log flood"))
                .prop("url", Prop::string("Where fetch sends requests"))
                .prop("repeat", Prop::integer("Requests fetch sends").minimum(0))
                .prop("op", Prop::one_of("What kv_probe does", &["write", "read", "list", "fill"]))
                .prop("key", Prop::string("Key or prefix of kv_probe"))
                .prop("value", Prop::string("Value kv_probe writes"))
        };
        TRIGGERS
            .iter()
            .fold(
                ManifestBuilder::new("hostile", "Hostile", "0.1.0")
                    .outbound_host("api.example.com")
                    .outbound_host("127.0.0.1")
                    .outbound_host("internal.test")
                    .key_value(),
                |m, name| m.trigger(TriggerBuilder::webhook(name, name).config(config())),
            )
            .build()
    }

    fn verify(ctx: TriggerContext, _request: WebhookRequest) -> Result<Verdict, ConnectorError> {
        match ctx.trigger_name.as_str() {
            // Holds its call slot (and its instance) until the deadline.
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "long_reject" => return Ok(Verdict::Reject("r".repeat(LONG_TEXT))),
            _ => {}
        }
        Ok(Verdict::Accept)
    }

    fn run(ctx: TriggerContext, input: RunInput) -> Result<RunOutput, ConnectorError> {
        if ctx.trigger_name == "stateful" {
            return stateful(&ctx, input);
        }
        attack(&ctx)
    }

    fn on_enable(ctx: TriggerContext) -> Result<EnableInfo, ConnectorError> {
        let config: Config = ctx.config()?;
        std::thread::sleep(std::time::Duration::from_millis(config.enable_delay_ms));
        if config.on_enable {
            attack(&ctx)?;
        }
        Ok(EnableInfo::never_expires())
    }
}

export_connector!(Hostile);
