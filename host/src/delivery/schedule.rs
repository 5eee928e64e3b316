//! When a failed attempt is tried again, and what an answer means.

use std::time::Duration;

/// Waits after the 1st, 2nd, ... failed attempt (Svix's schedule; the
/// first attempt goes at once): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
/// After the last, the job is dead-lettered: eight attempts in all.
pub const RETRY_WAITS_S: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// The longest `Retry-After` honoured: a receiver cannot park a job for
/// longer than the schedule's longest wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(36_000);

/// What an attempt's answer means for its job and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx in time.
    Delivered,
    /// Failed; may be retried, no sooner than the receiver asked.
    Failed {
        /// `Retry-After` of a 429 or 503.
        retry_after: Option<Duration>,
    },
    /// 410 Gone: the receiver is gone for good; disable the destination.
    Gone,
}

/// The verdict on an answer with `status` and its `Retry-After` value.
pub fn verdict(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        429 | 503 => Verdict::Failed { retry_after: retry_after.and_then(parse_retry_after) },
        _ => Verdict::Failed { retry_after: None },
    }
}

/// `Retry-After` as delay-seconds (an HTTP date is read as no hint).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones,
/// or `None` when the schedule is spent. `scale` shrinks the schedule for
/// tests; a receiver's `Retry-After` is honoured unscaled when longer.
pub fn next_wait(attempts: u32, scale: f64, retry_after: Option<Duration>) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    let scheduled = Duration::from_secs(*RETRY_WAITS_S.get(index)?).mul_f64(scale);
    Some(retry_after.map_or(scheduled, |asked| asked.max(scheduled)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_svixs_then_spent() {
        let waits: Vec<Option<u64>> = (1..=8).map(|n| next_wait(n, 1.0, None).map(|d| d.as_secs())).collect();
        assert_eq!(waits, [Some(5), Some(300), Some(1800), Some(7200), Some(18_000), Some(36_000), Some(36_000), None]);
        assert_eq!(next_wait(0, 1.0, None), None, "no wait before a first attempt");
        assert_eq!(next_wait(2, 0.001, None), Some(Duration::from_millis(300)));
    }

    #[test]
    fn retry_after_is_honoured_when_longer_and_capped() {
        assert_eq!(next_wait(1, 0.001, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)));
        assert_eq!(next_wait(2, 1.0, Some(Duration::from_secs(2))), Some(Duration::from_secs(300)));
        assert_eq!(verdict(429, Some("7")), Verdict::Failed { retry_after: Some(Duration::from_secs(7)) });
        assert_eq!(verdict(503, Some("99999999")), Verdict::Failed { retry_after: Some(MAX_RETRY_AFTER) });
        assert_eq!(verdict(503, Some("Wed, 21 Oct 2015 07:28:00 GMT")), Verdict::Failed { retry_after: None });
        assert_eq!(verdict(500, Some("7")), Verdict::Failed { retry_after: None }, "only on 429 and 503");
    }

    #[test]
    fn answers_are_read_as_delivered_gone_or_failed() {
        assert_eq!(verdict(204, None), Verdict::Delivered);
        assert_eq!(verdict(410, None), Verdict::Gone);
        assert_eq!(verdict(301, None), Verdict::Failed { retry_after: None }, "redirects are not followed");
    }
}
