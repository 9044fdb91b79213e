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

/// Why a breaker turns requests away (for the 503 that says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Open: no request until this instant.
    OpenUntil(Instant),
    /// Half-open, with every one of its trial slots taken.
    TrialsBusy(u32),
}

/// What [`CircuitBreaker::try_acquire`] granted: a plain pass (closed circuit) or one of
/// the half-open trial slots of a given half-open period. Outcomes are recorded with it, so
/// only real trials of the current period count towards closing the circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The circuit was closed (or the breaker is off).
    Free,
    /// A trial slot of half-open period `generation`.
    Trial(u64),
}

#[derive(Debug)]
struct Inner {
    generation: u64,
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
                generation: 0,
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
    pub fn try_acquire(&self, now: Instant) -> Option<Permit> {
        if !self.config.enabled || self.state.load(Ordering::Acquire) == 0 {
            return Some(Permit::Free);
        }
        let Ok(mut inner) = self.inner.lock() else {
            return Some(Permit::Free);
        };
        let mut state = CircuitState::from_u8(self.state.load(Ordering::Acquire));
        if state == CircuitState::Open {
            if inner
                .opened_at
                .is_some_and(|at| now >= at + self.config.timeout)
            {
                self.set(CircuitState::HalfOpen);
                inner.generation += 1;
                inner.trials_in_flight = 0;
                inner.trial_successes = 0;
                state = CircuitState::HalfOpen;
            } else {
                return None;
            }
        }
        match state {
            CircuitState::HalfOpen
                if inner.trials_in_flight < self.config.half_open_max_requests =>
            {
                inner.trials_in_flight += 1;
                Some(Permit::Trial(inner.generation))
            }
            CircuitState::HalfOpen | CircuitState::Open => None,
            CircuitState::Closed => Some(Permit::Free),
        }
    }

    /// Why the breaker would turn a request away now (`None`: it would let one through).
    pub fn refusal(&self, now: Instant) -> Option<Refusal> {
        if !self.config.enabled || self.state.load(Ordering::Acquire) == 0 {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match CircuitState::from_u8(self.state.load(Ordering::Acquire)) {
            CircuitState::Open => match inner.opened_at.map(|at| at + self.config.timeout) {
                Some(until) if now < until => Some(Refusal::OpenUntil(until)),
                _ => None,
            },
            CircuitState::HalfOpen
                if inner.trials_in_flight >= self.config.half_open_max_requests =>
            {
                Some(Refusal::TrialsBusy(inner.trials_in_flight))
            }
            _ => None,
        }
    }

    /// The backend's health probe succeeded again after failing: an open circuit turns
    /// half-open now, so its trial requests go out without waiting out the timeout.
    pub fn probe_recovered(&self) {
        if !self.config.enabled || self.state.load(Ordering::Acquire) != 2 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.state.load(Ordering::Acquire) != 2 {
            return;
        }
        inner.generation += 1;
        inner.trials_in_flight = 0;
        inner.trial_successes = 0;
        self.state.store(1, Ordering::Release);
        tracing::info!(backend = %self.name, "health probe succeeded again: circuit half-open, letting trial requests through now");
    }

    /// Frees a half-open trial slot whose request ended without a verdict (cancelled).
    pub fn release(&self, permit: Permit) {
        let Permit::Trial(generation) = permit else {
            return;
        };
        if let Ok(mut inner) = self.inner.lock() {
            if inner.generation == generation && self.state.load(Ordering::Acquire) == 1 {
                inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
            }
        }
    }

    /// Records the outcome of a request to this backend, made under `permit`. While
    /// half-open only the current period's trials count; other outcomes are ignored.
    pub fn record(&self, permit: Permit, success: bool, now: Instant) {
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
                if permit != Permit::Trial(inner.generation) {
                    return;
                }
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
        inner.generation += 1;
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

    fn fail(b: &CircuitBreaker, t: Instant) {
        b.record(Permit::Free, false, t);
    }

    #[test]
    fn every_transition() {
        let b = breaker();
        let t0 = Instant::now();
        // Consecutive failures open it.
        fail(&b, t0);
        fail(&b, t0);
        assert_eq!(b.state(t0), CircuitState::Closed);
        fail(&b, t0);
        assert_eq!(b.state(t0), CircuitState::Open);
        assert!(b.try_acquire(t0 + Duration::from_secs(9)).is_none());
        // After the timeout: half-open with two trial slots.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(b.state(t1), CircuitState::HalfOpen);
        let p1 = b.try_acquire(t1).unwrap();
        let _p2 = b.try_acquire(t1).unwrap();
        assert!(
            b.try_acquire(t1).is_none(),
            "only half_open_max_requests trials at once"
        );
        // A failed trial opens it again.
        b.record(p1, false, t1);
        assert_eq!(b.state(t1), CircuitState::Open);
        // Two successful trials close it.
        let t2 = t1 + Duration::from_secs(10);
        let p = b.try_acquire(t2).unwrap();
        b.record(p, true, t2);
        assert_eq!(b.state(t2), CircuitState::HalfOpen);
        let p = b.try_acquire(t2).unwrap();
        b.record(p, true, t2);
        assert_eq!(b.state(t2), CircuitState::Closed);
        assert_eq!(b.try_acquire(t2), Some(Permit::Free));
    }

    #[test]
    fn only_current_trials_count_while_half_open() {
        let b = breaker();
        let t = Instant::now();
        let old = b.try_acquire(t).unwrap(); // admitted while closed
        for _ in 0..3 {
            fail(&b, t);
        }
        let t = t + Duration::from_secs(10);
        let trial = b.try_acquire(t).unwrap();
        // A slow request admitted while closed neither closes the circuit nor frees a slot.
        b.record(old, true, t);
        b.record(old, true, t);
        b.release(old);
        assert_eq!(b.state(t), CircuitState::HalfOpen);
        let second = b.try_acquire(t).unwrap();
        assert!(b.try_acquire(t).is_none());
        b.record(trial, true, t);
        b.record(second, true, t);
        assert_eq!(b.state(t), CircuitState::Closed);
    }

    #[test]
    fn failure_rate_over_minimum_requests_opens() {
        let b = breaker();
        let t = Instant::now();
        // ok, fail, ok, fail: 50 % over 4 requests, never 3 in a row.
        for ok in [true, false, true] {
            b.record(Permit::Free, ok, t);
            assert_eq!(b.state(t), CircuitState::Closed);
        }
        fail(&b, t);
        assert_eq!(b.state(t), CircuitState::Open);
    }

    #[test]
    fn lock_free_successes_still_count_in_the_failure_rate() {
        let b = breaker();
        let t = Instant::now();
        // Many successes, then failures: 2 failures in the last 4 requests is 50 %.
        for _ in 0..100 {
            b.record(Permit::Free, true, t);
        }
        fail(&b, t);
        assert_eq!(b.state(t), CircuitState::Closed);
        fail(&b, t);
        assert_eq!(b.state(t), CircuitState::Open);
    }

    #[test]
    fn a_recovered_probe_half_opens_an_open_circuit_at_once() {
        let b = breaker();
        let t = Instant::now();
        assert_eq!(b.refusal(t), None);
        for _ in 0..3 {
            fail(&b, t);
        }
        let until = t + Duration::from_secs(10);
        assert_eq!(b.refusal(t), Some(Refusal::OpenUntil(until)));
        assert!(b.try_acquire(t).is_none());
        b.probe_recovered();
        assert_eq!(b.state(t), CircuitState::HalfOpen);
        let p = b.try_acquire(t).expect("a trial at once");
        let _q = b.try_acquire(t).unwrap();
        assert_eq!(b.refusal(t), Some(Refusal::TrialsBusy(2)));
        b.record(p, true, t);
        // A closed circuit is left alone.
        let c = breaker();
        c.probe_recovered();
        assert_eq!(c.state(t), CircuitState::Closed);
    }

    #[test]
    fn cancelled_trials_free_their_slot() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            fail(&b, t);
        }
        let t = t + Duration::from_secs(10);
        let first = b.try_acquire(t).unwrap();
        assert!(b.try_acquire(t).is_some());
        assert!(b.try_acquire(t).is_none());
        b.release(first);
        assert!(b.try_acquire(t).is_some());
    }
}
