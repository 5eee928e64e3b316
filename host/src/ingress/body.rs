//! Reading a delivery's body: within the size cap, within the body
//! timeout, and within the memory budget all deliveries share, so neither
//! a slow sender nor many large ones make the host buffer without bound.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes past the body cap still read (and dropped, never buffered) before
/// answering 413: a server that answers without reading the body closes the
/// connection, and the sender then often sees a broken pipe instead of the 413.
const DRAIN_BYTES: usize = 4 << 20;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over the cap (413).
    TooLarge,
    /// Not received within the body timeout (408).
    TimedOut,
    /// The shared body budget is spent (503).
    OverBudget,
    /// The connection failed mid-body (400).
    Broken,
}

/// A body held in memory, with its share of the budget.
#[derive(Debug)]
pub(crate) struct BufferedBody {
    /// The bytes, at most the cap.
    pub(crate) bytes: Vec<u8>,
    /// Returned to the budget when the delivery is done with the body.
    pub(crate) _budget: Option<OwnedSemaphorePermit>,
}

/// How a body may be read.
#[derive(Debug, Clone)]
pub(crate) struct BodyLimits {
    /// Largest body accepted.
    pub(crate) cap: usize,
    /// Time to receive all of it.
    pub(crate) timeout: Duration,
    /// Bytes all deliveries may hold at once.
    pub(crate) budget: Arc<Semaphore>,
}

/// Reads `body` under `limits`. `declared` is the Content-Length, if any: a
/// declared size past the cap (and the drain allowance) is refused unread.
pub(crate) async fn read(body: Body, declared: Option<usize>, limits: &BodyLimits) -> Result<BufferedBody, BodyError> {
    if declared.is_some_and(|len| len > limits.cap.saturating_add(DRAIN_BYTES)) {
        return Err(BodyError::TooLarge);
    }
    tokio::time::timeout(limits.timeout, read_within_cap(body, limits)).await.map_err(|_| BodyError::TimedOut)?
}

async fn read_within_cap(mut body: Body, limits: &BodyLimits) -> Result<BufferedBody, BodyError> {
    let mut bytes = Vec::new();
    let mut budget: Option<OwnedSemaphorePermit> = None;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else { continue };
        seen = seen.saturating_add(data.len());
        if seen > limits.cap.saturating_add(DRAIN_BYTES) {
            return Err(BodyError::TooLarge);
        }
        if seen > limits.cap {
            // Past the cap: drop what was kept and only count from here.
            bytes = Vec::new();
            budget = None;
            continue;
        }
        let chunk = u32::try_from(data.len()).map_err(|_| BodyError::TooLarge)?;
        let permit = Arc::clone(&limits.budget).try_acquire_many_owned(chunk).map_err(|_| BodyError::OverBudget)?;
        match &mut budget {
            Some(held) => held.merge(permit),
            None => budget = Some(permit),
        }
        bytes.extend_from_slice(&data);
    }
    if seen > limits.cap {
        return Err(BodyError::TooLarge);
    }
    Ok(BufferedBody { bytes, _budget: budget })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(cap: usize, budget: usize) -> BodyLimits {
        BodyLimits { cap, timeout: Duration::from_secs(5), budget: Arc::new(Semaphore::new(budget)) }
    }

    #[tokio::test]
    async fn a_body_holds_its_bytes_of_the_budget_until_dropped() {
        let limits = limits(100, 150);
        let first = read(Body::from(vec![1u8; 100]), None, &limits).await.expect("fits");
        assert_eq!(first.bytes.len(), 100);
        assert_eq!(limits.budget.available_permits(), 50);
        let second = read(Body::from(vec![2u8; 100]), None, &limits).await;
        assert_eq!(second.map(|b| b.bytes.len()), Err(BodyError::OverBudget));
        drop(first);
        assert_eq!(limits.budget.available_permits(), 150);
    }

    #[tokio::test]
    async fn over_the_cap_is_too_large_and_releases_the_budget() {
        let limits = limits(100, 1000);
        assert_eq!(read(Body::from(vec![0u8; 101]), None, &limits).await.map(|b| b.bytes), Err(BodyError::TooLarge));
        assert_eq!(limits.budget.available_permits(), 1000);
        let declared = Some(100 + DRAIN_BYTES + 1);
        assert_eq!(read(Body::from(vec![0u8; 10]), declared, &limits).await.map(|b| b.bytes), Err(BodyError::TooLarge));
    }
}
