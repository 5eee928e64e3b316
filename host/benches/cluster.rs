//! Webhook ingest on several nodes: 1, 2 and 3 `triggerhost serve` nodes on
//! one PostgreSQL (each its own host, in this process), and the SQLite
//! single node, under the same load generator (32 connections, spread
//! round-robin over a cluster's nodes), the four targets alternating in
//! rounds. Printed as requests per second, with the CPU time the
//! benchmark's process (nodes and load generator) and PostgreSQL's
//! processes spent per request: where the time goes on this machine.

use std::time::Duration;

// The connector's signature scheme, compiled natively: the same source the
// component is built from.
#[path = "../../plugins/standard-webhooks/src/scheme.rs"]
#[allow(dead_code)]
mod scheme;

#[path = "support/component.rs"]
mod component;
#[path = "support/load.rs"]
mod load;
#[path = "support/serve.rs"]
mod serve;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"type":"invoice.paid","data":{"id":"inv_42","amount":1200,"currency":"eur"}}"#;
const CONNECTIONS: usize = 32;
const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(4);
const HOST_CONFIG: &str = "[ingress]\nrate_per_second = 1000000\nburst = 1000000\n";

fn main() {
    let postgres = std::env::var("TRIGGERHOST_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let component = component::bytes("standard_webhooks");
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    tokio.block_on(async move {
        let temp = tempfile::tempdir().expect("temp dir");
        let sqlite = serve::start(&temp.path().join("sqlite"), HOST_CONFIG).await;
        sqlite.upload(&component).await;
        let trigger = sqlite.webhook_trigger(SECRET).await;
        let mut targets = vec![("SQLite, 1 node".to_owned(), vec![sqlite.hook(&trigger)])];
        let mut schemas = Vec::new();
        for nodes in 1..=3 {
            let (schema, urls) = cluster(&temp, &postgres, nodes, &component).await;
            schemas.push(schema);
            targets.push((format!("PostgreSQL, {nodes} node{}", if nodes == 1 { "" } else { "s" }), urls));
        }
        let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().expect("client");
        let mut sequence = 0u64;
        for (_, urls) in &targets {
            load::signed(&client, urls, SECRET, CONNECTIONS, Duration::from_secs(1), &mut sequence, || BODY.to_owned()).await;
        }
        let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); targets.len()];
        for _ in 0..ROUNDS {
            for (i, (_, urls)) in targets.iter().enumerate() {
                let (own, database) = (cpu_seconds(std::process::id()), postgres_cpu_seconds());
                let (ok, took) = load::signed(&client, urls, SECRET, CONNECTIONS, ROUND, &mut sequence, || BODY.to_owned()).await;
                let requests = ok.max(1) as f64;
                rounds[i].push(Round {
                    rate: ok as f64 / took.as_secs_f64(),
                    own_us: (cpu_seconds(std::process::id()) - own) / requests * 1e6,
                    postgres_us: (postgres_cpu_seconds() - database) / requests * 1e6,
                });
            }
        }
        println!("signed deliveries, {CONNECTIONS} connections over the nodes, median of {ROUNDS} rounds of {ROUND:?}, targets alternating:\n");
        println!("{:<24} {:>12} {:>26} {:>22}", "", "requests/s", "CPU/request: this process", "PostgreSQL");
        let mut medians = Vec::new();
        for ((name, _), rounds) in targets.iter().zip(&rounds) {
            let median = median(rounds);
            let all: Vec<String> = rounds.iter().map(|r| format!("{:.0}", r.rate)).collect();
            println!(
                "{name:<24} {:>12.0} {:>23.0} µs {:>19.0} µs   (rounds: {})",
                median.rate,
                median.own_us,
                median.postgres_us,
                all.join(", ")
            );
            medians.push(median.rate);
        }
        if let [sqlite, one, two, three] = medians[..] {
            println!(
                "\n2 nodes / 1 node: {:.2}x   3 nodes / 1 node: {:.2}x   PostgreSQL 1 node / SQLite: {:.2}x\n\
                 (every node, PostgreSQL and the load generator share this machine's {} cores)",
                two / one,
                three / one,
                one / sqlite,
                std::thread::available_parallelism().map_or(0, usize::from)
            );
        }
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&postgres).await.expect("connect to PostgreSQL");
        for schema in schemas {
            let drop = format!("DROP SCHEMA {schema} CASCADE");
            if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut admin).await {
                eprintln!("could not drop {schema}: {error}");
            }
        }
    });
}

#[derive(Debug, Clone, Copy)]
struct Round {
    rate: f64,
    own_us: f64,
    postgres_us: f64,
}

/// The round with the median rate.
fn median(rounds: &[Round]) -> Round {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted[sorted.len() / 2]
}

/// `nodes` hosts on a new schema of `postgres`, sharing one key file, the
/// connector uploaded and a trigger enabled on the first; the trigger's
/// webhook URL on each node, once every node serves it, and the schema.
async fn cluster(temp: &tempfile::TempDir, postgres: &str, nodes: usize, component: &[u8]) -> (String, Vec<String>) {
    use sqlx::Connection;
    let schema = format!("th_bench_{nodes}_{:08x}", getrandom::u32().expect("random"));
    let mut admin = sqlx::PgConnection::connect(postgres).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("schema");
    let separator = if postgres.contains('?') { '&' } else { '?' };
    let url = format!("{postgres}{separator}options=-c%20search_path%3D{schema}");
    let key = temp.path().join(format!("{schema}.key"));
    let config = format!("secret_key_file = {:?}\n{HOST_CONFIG}", key.display().to_string());
    let mut served = Vec::new();
    for node in 0..nodes {
        served.push(serve::start_on(&temp.path().join(format!("{schema}_{node}")), &config, Some(url.clone())).await);
    }
    served[0].upload(component).await;
    let trigger = served[0].webhook_trigger(SECRET).await;
    let urls: Vec<String> = served.iter().map(|node| node.hook(&trigger)).collect();
    // Every node serves it within a second or so (NOTIFY, else the reconcile).
    let client = reqwest::Client::new();
    for url in &urls {
        for _ in 0..200 {
            let probe = client.post(url).body("{}").send().await.map(|r| r.status());
            // Unsigned: 401 once the node serves the trigger, 404 before.
            if probe.is_ok_and(|status| status != reqwest::StatusCode::NOT_FOUND) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (schema, urls)
}

/// User and system CPU seconds of process `pid` so far (Linux `/proc`).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which may hold spaces): utime is the
    // 12th, stime the 13th.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of every process named `postgres` so far.
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres"))
        .map(cpu_seconds)
        .sum()
}
