//! A per-backend circuit breaker: closed → open after `failure_threshold` consecutive
//! failures or a failure rate over `failure_rate_threshold` across at least
//! `minimum_requests` recent requests; open for `timeout`; then half-open, letting
//! `half_open_max_requests` trials through at once and closing after
//! `half_open_success_threshold` successes (any failed trial opens it again).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::Mutex;

use tokio::time::Instant;

use crate::config::CircuitBreakerConfig;

/// The breaker's state, as shown in `/admin/backends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Requests flow.
    Closed,
    /// Trial requests only.
    HalfOpen,
    /// No requests until the timeout passes.
    Open,
}

impl CircuitState {
    /// The spelling used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::HalfOpen => "half_open",
            CircuitState::Open => "open",
        }
    }

    fn from_u8(v: u8) -> CircuitState {
        match v {
            1 => CircuitState::HalfOpen,
            2 => CircuitState::Open,
            _ => CircuitState::Closed,
        }
    }
}

#[derive(Debug)]
struct Inner {
    consecutive_failures: u32,
    window: VecDeque<bool>,
    opened_at: Option<Instant>,
    trials_in_flight: u32,
    trial_successes: u32,
}

/// One backend's breaker. The state is mirrored in an atomic so the closed fast path
/// takes no lock.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: CircuitBreakerConfig,
    name: String,
    state: AtomicU8,
    /// Closed with no failure in the window: a success changes nothing, so it is recorded
    /// without taking the lock (the common case on the request path).
    clean: AtomicBool,
    /// Successes seen while clean, counted up to `minimum_requests` (then left alone).
    clean_successes: AtomicU32,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker for the backend `name`.
    pub fn new(name: &str, config: CircuitBreakerConfig) -> CircuitBreaker {
        CircuitBreaker {
            inner: Mutex::new(Inner {
                consecutive_failures: 0,
                window: VecDeque::with_capacity(config.minimum_requests as usize),
                opened_at: None,
                trials_in_flight: 0,
                trial_successes: 0,
            }),
            name: name.to_string(),
            config,
            state: AtomicU8::new(0),
            clean: AtomicBool::new(true),
            clean_successes: AtomicU32::new(0),
        }
    }

    /// The current state (an open breaker past its timeout reports half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        let s = CircuitState::from_u8(self.state.load(Ordering::Acquire));
        if s == CircuitState::Open {
            if let Ok(inner) = self.inner.lock() {
                if inner
                    .opened_at
                    .is_some_and(|at| now >= at + self.config.timeout)
                {
                    return CircuitState::HalfOpen;
                }
            }
        }
        s
    }

    /// Whether a request may go to this backend now. In half-open state this takes one of
    /// the trial slots, which [`CircuitBreaker::record`] or [`CircuitBreaker::release`] frees.
    pub fn try_acquire(&self, now: Instant) -> bool {
        if !self.config.enabled || self.state.load(Ordering::Acquire) == 0 {
            return true;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return true;
        };
        let mut state = CircuitState::from_u8(self.state.load(Ordering::Acquire));
        if state == CircuitState::Open {
            if inner
                .opened_at
                .is_some_and(|at| now >= at + self.config.timeout)
            {
                self.set(CircuitState::HalfOpen);
                inner.trials_in_flight = 0;
                inner.trial_successes = 0;
                state = CircuitState::HalfOpen;
            } else {
                return false;
            }
        }
        match state {
            CircuitState::HalfOpen
                if inner.trials_in_flight < self.config.half_open_max_requests =>
            {
                inner.trials_in_flight += 1;
                true
            }
            CircuitState::HalfOpen | CircuitState::Open => false,
            CircuitState::Closed => true,
        }
    }

    /// Frees a half-open trial slot whose request ended without a verdict (cancelled).
    pub fn release(&self) {
        if self.state.load(Ordering::Acquire) == 1 {
            if let Ok(mut inner) = self.inner.lock() {
                inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
            }
        }
    }

    /// Records the outcome of a request to this backend.
    pub fn record(&self, success: bool, now: Instant) {
        if !self.config.enabled {
            return;
        }
        if success && self.clean.load(Ordering::Acquire) {
            if self.clean_successes.load(Ordering::Relaxed) < self.config.minimum_requests {
                self.clean_successes.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        match CircuitState::from_u8(self.state.load(Ordering::Acquire)) {
            CircuitState::Closed => {
                if !success && self.clean.swap(false, Ordering::AcqRel) {
                    // Put back the successes recorded lock-free while clean.
                    let seen = self.clean_successes.swap(0, Ordering::Relaxed) as usize;
                    let fill = seen.min((self.config.minimum_requests as usize).saturating_sub(1));
                    inner.window.clear();
                    inner.window.extend(std::iter::repeat_n(true, fill));
                }
                if inner.window.len() >= self.config.minimum_requests as usize {
                    inner.window.pop_front();
                }
                inner.window.push_back(success);
                if success {
                    inner.consecutive_failures = 0;
                    if inner.window.iter().all(|ok| *ok) {
                        self.clean_successes
                            .store(inner.window.len() as u32, Ordering::Relaxed);
                        self.clean.store(true, Ordering::Release);
                    }
                    return;
                }
                inner.consecutive_failures += 1;
                let failures = inner.window.iter().filter(|ok| !**ok).count();
                let enough = inner.window.len() >= self.config.minimum_requests as usize;
                let rate = failures as f64 / inner.window.len() as f64;
                if inner.consecutive_failures >= self.config.failure_threshold
                    || (enough && rate >= self.config.failure_rate_threshold)
                {
                    self.open(&mut inner, now);
                }
            }
            CircuitState::HalfOpen => {
                inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
                if !success {
                    self.open(&mut inner, now);
                    return;
                }
                inner.trial_successes += 1;
                if inner.trial_successes >= self.config.half_open_success_threshold {
                    inner.consecutive_failures = 0;
                    inner.window.clear();
                    inner.opened_at = None;
                    self.set(CircuitState::Closed);
                    self.clean_successes.store(0, Ordering::Relaxed);
                    self.clean.store(true, Ordering::Release);
                    tracing::info!(backend = %self.name, "circuit closed");
                }
            }
            CircuitState::Open => {}
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        self.clean.store(false, Ordering::Release);
        inner.opened_at = Some(now);
        inner.trials_in_flight = 0;
        inner.trial_successes = 0;
        self.set(CircuitState::Open);
        tracing::warn!(backend = %self.name, open_for = ?self.config.timeout, "circuit opened");
    }

    fn set(&self, s: CircuitState) {
        let v = match s {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        };
        if self.state.swap(v, Ordering::AcqRel) == 2 && s == CircuitState::HalfOpen {
            tracing::info!(backend = %self.name, "circuit half-open: letting trial requests through");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "b",
            CircuitBreakerConfig {
                enabled: true,
                failure_threshold: 3,
                failure_rate_threshold: 0.5,
                minimum_requests: 4,
                timeout: Duration::from_secs(10),
                half_open_max_requests: 2,
                half_open_success_threshold: 2,
            },
        )
    }

    #[test]
    fn every_transition() {
        let b = breaker();
        let t0 = Instant::now();
        // Consecutive failures open it.
        for _ in 0..2 {
            b.record(false, t0);
        }
        assert_eq!(b.state(t0), CircuitState::Closed);
        b.record(false, t0);
        assert_eq!(b.state(t0), CircuitState::Open);
        assert!(!b.try_acquire(t0 + Duration::from_secs(9)));
        // After the timeout: half-open with two trial slots.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), CircuitState::HalfOpen);
        assert!(b.try_acquire(t1));
        assert!(b.try_acquire(t1));
        assert!(
            !b.try_acquire(t1),
            "only half_open_max_requests trials at once"
        );
        // A failed trial opens it again.
        b.record(false, t1);
        assert_eq!(b.state(t1), CircuitState::Open);
        // Two successful trials close it.
        let t2 = t1 + Duration::from_secs(10);
        assert!(b.try_acquire(t2));
        b.record(true, t2);
        assert_eq!(b.state(t2), CircuitState::HalfOpen);
        assert!(b.try_acquire(t2));
        b.record(true, t2);
        assert_eq!(b.state(t2), CircuitState::Closed);
        assert!(b.try_acquire(t2));
    }

    #[test]
    fn failure_rate_over_minimum_requests_opens() {
        let b = breaker();
        let t = Instant::now();
        // ok, fail, ok, fail: 50 % over 4 requests, never 3 in a row.
        for ok in [true, false, true] {
            b.record(ok, t);
            assert_eq!(b.state(t), CircuitState::Closed);
        }
        b.record(false, t);
        assert_eq!(b.state(t), CircuitState::Open);
    }

    #[test]
    fn lock_free_successes_still_count_in_the_failure_rate() {
        let b = breaker();
        let t = Instant::now();
        // Many successes, then failures: 2 failures in the last 4 requests is 50 %.
        for _ in 0..100 {
            b.record(true, t);
        }
        b.record(false, t);
        assert_eq!(b.state(t), CircuitState::Closed);
        b.record(false, t);
        assert_eq!(b.state(t), CircuitState::Open);
    }

    #[test]
    fn cancelled_trials_free_their_slot() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            b.record(false, t);
        }
        let t = t + Duration::from_secs(10);
        assert!(b.try_acquire(t) && b.try_acquire(t));
        b.release();
        assert!(b.try_acquire(t));
    }
}
