//! In-memory rate limiting by GCRA (the generic cell rate algorithm, equivalent to a token
//! bucket): one atomic "theoretical arrival time" per limited subject, updated with a
//! compare-and-swap, so a decision takes no lock and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::access::Rate;

/// The answer to "may this request pass?", with what the `x-ratelimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request passes.
    pub allowed: bool,
    /// The burst size (`x-ratelimit-limit`).
    pub limit: u32,
    /// Requests that could pass right now after this one (`x-ratelimit-remaining`).
    pub remaining: u32,
    /// Until the limiter is full again (`x-ratelimit-reset`).
    pub reset: Duration,
    /// Until a refused request would pass (`Retry-After`); zero when allowed.
    pub retry_after: Duration,
}

/// One GCRA limiter.
#[derive(Debug)]
pub struct Gcra {
    /// Nanoseconds between two requests at the sustained rate.
    interval: u64,
    /// Requests allowed at once.
    burst: u32,
    /// Theoretical arrival time, in nanoseconds since `epoch`.
    tat: AtomicU64,
    epoch: Instant,
}

impl Gcra {
    /// A full limiter for `rate`.
    pub fn new(rate: Rate, epoch: Instant) -> Gcra {
        let interval = (1e9 / rate.per_second).clamp(1.0, u64::MAX as f64 / 4.0) as u64;
        Gcra {
            interval,
            burst: rate.burst.max(1),
            tat: AtomicU64::new(0),
            epoch,
        }
    }

    /// Decides one request arriving at `now`, taking its slot when it passes.
    pub fn check(&self, now: Instant) -> Decision {
        let now = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let window = self.interval.saturating_mul(u64::from(self.burst));
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let new_tat = tat.max(now) + self.interval;
            let ahead = new_tat - now;
            if ahead > window {
                let ahead_now = tat.max(now) - now;
                return Decision {
                    allowed: false,
                    limit: self.burst,
                    remaining: 0,
                    reset: Duration::from_nanos(ahead_now),
                    retry_after: Duration::from_nanos(ahead - window),
                };
            }
            match self
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Decision {
                        allowed: true,
                        limit: self.burst,
                        remaining: ((window - ahead) / self.interval) as u32,
                        reset: Duration::from_nanos(ahead),
                        retry_after: Duration::ZERO,
                    }
                }
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let epoch = Instant::now();
        let g = Gcra::new(
            Rate {
                per_second: 10.0,
                burst: 3,
            },
            epoch,
        );
        let t = epoch + Duration::from_secs(1);
        let passed: Vec<u32> = (0..4)
            .map(|_| g.check(t))
            .filter(|d| d.allowed)
            .map(|d| d.remaining)
            .collect();
        assert_eq!(passed, [2, 1, 0]);
        let refused = g.check(t);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.reset, Duration::from_millis(300));
        // One interval later, one more passes.
        assert!(g.check(t + Duration::from_millis(100)).allowed);
        assert!(!g.check(t + Duration::from_millis(100)).allowed);
        // Idle long enough, the burst is back.
        let later = t + Duration::from_secs(10);
        assert_eq!(g.check(later).remaining, 2);
    }
}
