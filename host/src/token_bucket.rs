//! A token bucket: at most `rate` takes a second, in bursts of up to
//! `burst`. Ingress limits each trigger's deliveries with one; push
//! delivery spaces each destination's attempts with another.

use std::time::{Duration, Instant};

/// Tokens, refilled by the time since the last take.
#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A bucket holding `tokens` now (no more than the burst counts).
    pub fn holding(tokens: f64) -> Self {
        TokenBucket { tokens, refilled: Instant::now() }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, rate: u32, burst: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let rate = f64::from(rate);
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate).min(f64::from(burst.max(1)));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::try_from_secs_f64((1.0 - self.tokens) / rate).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_token_per_interval() {
        let mut bucket = TokenBucket::holding(f64::MAX);
        assert!((0..3).all(|_| bucket.take(1, 3).is_ok()), "the burst");
        let wait = bucket.take(1, 3).expect_err("empty");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(TokenBucket::holding(0.0).take(0, 1), Err(Duration::MAX), "no rate, no token");
    }
}
