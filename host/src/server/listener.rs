//! The accept loop: HTTP/1.1 connections under caps that a slow or abusive
//! client cannot stretch. A connection must send its request head within
//! the header timeout, with at most so many headers and bytes of head, and
//! must keep reading what it is sent (a write stalled past the write
//! timeout ends it); no more connections are served at once than the cap,
//! and past it new connections wait in the kernel's backlog until a slot
//! frees.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::stall::WriteStallTimeout;
use crate::config::HttpSettings;

/// How long connections get to finish their request at shutdown.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// requests in flight finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(listener: TcpListener, router: Router, settings: HttpSettings, shutdown: impl Future<Output = ()>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_headers(settings.max_headers)
        .max_header_size(settings.max_header_bytes);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        // Take a slot before accepting: over the cap, connections queue in
        // the backlog instead of each costing a task and a buffer.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // One connection's trouble (reset, unreachable, ...): the
                // next one may be fine.
                Err(error) if is_per_connection(&error) => continue,
                Err(error) => {
                    // Out of file descriptors or memory: back off instead
                    // of spinning, unless shutting down.
                    tracing::warn!(%error, "accept failed");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let stream = WriteStallTimeout::new(stream, settings.write_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }

    // Refuse new connections at once rather than leave them in the backlog.
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(left = connections.len(), "connections still open after the shutdown grace period");
        connections.shutdown().await;
    }
}

/// Errors `accept` reports about one incoming connection, not the listener.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | HostUnreachable | NetworkUnreachable | NetworkDown | TimedOut
    )
}
