//! Slow and abusive senders: each gets its answer or a closed connection in
//! bounded time, and a well-behaved sender's signed deliveries keep being
//! answered 2xx meanwhile.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{WHSEC, signed_now};
use crate::host::{Host, spawn_host_with_config};

/// Longest any abusive connection may last in these tests: the configured
/// timeouts are 1 s, so this is their bound with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(15);

const CONFIG: &str = "[http]\nheader_read_timeout_ms = 1000\n[ingress]\nbody_timeout_ms = 1000\n";

async fn healthy_host(config: &str) -> (Host, String) {
    let host = spawn_host_with_config(config).await;
    host.upload_plugin("standard_webhooks").await;
    let id = host.enabled_trigger("standard-webhooks", "message_received", Some(WHSEC)).await;
    (host, id)
}

/// A signed delivery from a well-behaved client must be answered 200.
async fn well_behaved(host: &Host, id: &str, n: usize) {
    let body = format!(r#"{{"n":{n}}}"#);
    let response = host.deliver(id, &signed_now(&format!("msg_good_{n}"), body.as_bytes()), body.as_bytes()).await;
    assert_eq!(response.status(), StatusCode::OK, "well-behaved delivery {n}");
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

fn status_of(response: &[u8]) -> Option<u16> {
    let line = response.split(|b| *b == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_while_deliveries_go_on() {
    let (host, id) = healthy_host(CONFIG).await;
    let address = host.address();
    let mut lorises = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let address = address.clone();
        lorises.spawn(async move {
            let started = Instant::now();
            let mut stream = TcpStream::connect(&address).await.expect("connect");
            stream.write_all(b"POST /hooks/trg_x HTTP/1.1\r\nHost: loris\r\nX-Slow: ").await.expect("write");
            let mut buffer = [0u8; 1024];
            // One more header byte every 200 ms, never the end of the head.
            loop {
                tokio::select! {
                    read = stream.read(&mut buffer) => {
                        assert!(!matches!(read, Ok(n) if n > 0 && status_of(&buffer[..n]).is_some_and(|s| s < 400)));
                        return started.elapsed();
                    }
                    () = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stream.write_all(b"x").await.is_err() {
                            return started.elapsed();
                        }
                    }
                }
            }
        });
    }
    for n in 0..10 {
        well_behaved(&host, &id, n).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_closed = tokio::time::timeout(BOUND, async {
        let mut longest = Duration::ZERO;
        while let Some(lasted) = lorises.join_next().await {
            longest = longest.max(lasted.expect("loris task"));
        }
        longest
    })
    .await;
    let longest = all_closed.expect("every slowloris connection is closed in bounded time");
    assert!(longest < BOUND, "{longest:?}");
    well_behaved(&host, &id, 99).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_past_the_timeout_gets_408() {
    let (host, id) = healthy_host(CONFIG).await;
    let mut stream = TcpStream::connect(host.address()).await.expect("connect");
    let head = format!("POST /hooks/{id} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        until_closed(&mut stream).await
    };
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        well_behaved(&host, &id, 1).await;
    };
    let (response, ()) = tokio::time::timeout(BOUND, async { tokio::join!(trickle, stop) }).await.expect("bounded");
    assert_eq!(status_of(&response), Some(408), "{}", String::from_utf8_lossy(&response));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_bodies_are_refused_without_being_buffered() {
    let config = "[http]\nmax_headers = 50\nmax_header_bytes = 16384\n[ingress]\nbody_timeout_ms = 1000\n";
    let (host, id) = healthy_host(config).await;
    let headers = |n: usize| (0..n).map(|n| format!("X-Header-{n}: v\r\n")).collect::<String>();
    let big = |bytes: usize| format!("X-Big: {}\r\n", "a".repeat(bytes));
    // Past the configured caps (60 headers, a 32 KiB one), and far past
    // them (200 headers, a 1 MiB one): 431, or a closed connection when the
    // server answers before the client is done writing.
    for (what, extra, must_answer) in [
        ("60 headers", headers(60), true),
        ("a 32 KiB header", big(32 << 10), true),
        ("200 headers", headers(200), true),
        ("a 1 MiB header", big(1 << 20), false),
    ] {
        let mut stream = TcpStream::connect(host.address()).await.expect("connect");
        let request = format!("POST /hooks/{id} HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: 2\r\n\r\n{{}}");
        let _ = stream.write_all(request.as_bytes()).await;
        let response = tokio::time::timeout(BOUND, until_closed(&mut stream)).await.expect("bounded");
        match status_of(&response) {
            Some(status) => assert_eq!(status, 431, "{what}"),
            None => assert!(!must_answer, "{what}: closed without an answer"),
        }
        well_behaved(&host, &id, extra.len()).await;
    }

    // A chunked 10 MiB body against the 1 MiB cap: 413 or a closed
    // connection, long before the 10 MiB are through.
    let mut stream = TcpStream::connect(host.address()).await.expect("connect");
    let head = format!("POST /hooks/{id} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = format!("{:x}\r\n{}\r\n", 64 << 10, "c".repeat(64 << 10));
    let response = tokio::time::timeout(BOUND, async {
        for _ in 0..160 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        until_closed(&mut stream).await
    })
    .await
    .expect("bounded");
    if let Some(status) = status_of(&response) {
        assert_eq!(status, 413, "{}", String::from_utf8_lossy(&response));
    }

    // A Content-Length that claims more than is sent: the body timeout ends it.
    let mut stream = TcpStream::connect(host.address()).await.expect("connect");
    let lie = format!("POST /hooks/{id} HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{{}}");
    stream.write_all(lie.as_bytes()).await.expect("write");
    let response = tokio::time::timeout(BOUND, until_closed(&mut stream)).await.expect("bounded");
    assert_eq!(status_of(&response), Some(408), "{}", String::from_utf8_lossy(&response));
    // And one past the cap is refused before any of the body is read.
    let mut stream = TcpStream::connect(host.address()).await.expect("connect");
    let lie = format!("POST /hooks/{id} HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n{{}}");
    stream.write_all(lie.as_bytes()).await.expect("write");
    let response = tokio::time::timeout(BOUND, until_closed(&mut stream)).await.expect("bounded");
    assert_eq!(status_of(&response), Some(413), "{}", String::from_utf8_lossy(&response));
    well_behaved(&host, &id, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_slot() {
    let config = "[http]\nmax_connections = 4\nheader_read_timeout_ms = 1500\n";
    let (host, id) = healthy_host(config).await;
    // Four idle connections take every slot until the header timeout closes them.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(host.address()).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    // A fresh client, so its request needs a fifth connection.
    let client = reqwest::Client::new();
    let body = b"{}";
    let mut request = client.post(format!("{}/hooks/{id}", host.url)).body(body.to_vec());
    for (name, value) in signed_now("msg_queued", body) {
        request = request.header(name, value);
    }
    let response = tokio::time::timeout(BOUND, request.send()).await.expect("bounded").expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    // It was served only once the idle connections were closed.
    assert!(started.elapsed() >= Duration::from_millis(1000), "served after {:?}", started.elapsed());
    for mut stream in idle {
        assert!(tokio::time::timeout(BOUND, until_closed(&mut stream)).await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_connection() {
    // One connection slot. A client pipelines 60 000 requests and reads
    // none of the answers: once the socket buffers are full the server's
    // writes stall, and the write timeout must free the slot.
    let config = "[http]\nmax_connections = 1\nheader_read_timeout_ms = 1000\nwrite_timeout_ms = 1000\n";
    let host = spawn_host_with_config(config).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let address = host.address().parse().expect("address");
    let stream = socket.connect(address).await.expect("connect");
    let (_reader, mut writer) = stream.into_split();
    let pipelined = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".repeat(60_000);
    let flooding = tokio::spawn(async move {
        let _ = writer.write_all(pipelined.as_bytes()).await;
        writer
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let client = reqwest::Client::new();
    let answered = tokio::time::timeout(BOUND, client.get(format!("{}/healthz", host.url)).send()).await;
    let response = answered.expect("served once the stalled connection is cut").expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    flooding.abort();
}
