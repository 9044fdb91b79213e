//! Resilience: the live state of each backend (health, circuit, latency, load) and the
//! small state machines that maintain it.

pub mod breaker;
pub mod health;
pub mod retry;
pub mod usage;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

pub use breaker::{CircuitBreaker, CircuitState, Permit, Refusal};
pub use health::{Health, HealthStatus, ProbeResult, Verdict};

/// Weight of the newest sample in the latency average.
const EWMA_ALPHA: f64 = 0.3;

/// Live state of one backend, shared by every worker.
#[derive(Debug)]
pub struct BackendState {
    /// Result of health probes.
    pub health: Health,
    /// Circuit breaker fed by request outcomes.
    pub breaker: CircuitBreaker,
    /// Prompt tokens and cache hits (counted for routes of the cache-seeking strategies).
    pub cache: usage::CacheStats,
    /// Load the server itself reports (`routing.load_signals`).
    pub server_load: crate::backend::load::ServerLoad,
    /// The prompts it was recently sent (`CacheAware`).
    pub prefixes: crate::routing::prefix_index::PrefixIndex,
    ewma_micros: AtomicU64,
    in_flight: AtomicUsize,
}

impl BackendState {
    /// Fresh state: healthy, closed, no latency known.
    pub fn new(breaker: CircuitBreaker) -> BackendState {
        BackendState {
            health: Health::default(),
            breaker,
            cache: usage::CacheStats::default(),
            server_load: Default::default(),
            prefixes: Default::default(),
            ewma_micros: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Whether a request may be sent now (healthy, circuit lets it through). Takes a
    /// half-open trial slot when it says yes to a half-open circuit.
    pub fn try_acquire(&self, now: Instant) -> Option<Permit> {
        if !self.health.is_healthy() {
            return None;
        }
        self.breaker.try_acquire(now)
    }

    /// Why this backend takes no request now, in words for a 503 ("is unhealthy (last
    /// probe: …)", "is warming up …", "has its circuit open until … (for another Ns)");
    /// `None` when it would take one.
    pub fn unavailable(&self, now: Instant) -> Option<String> {
        match self.health.status() {
            HealthStatus::Unhealthy => {
                return Some(match self.health.last_failure() {
                    Some(why) => format!("is unhealthy (last probe: {why})"),
                    None => "is unhealthy (its health probes fail)".to_string(),
                })
            }
            HealthStatus::WarmingUp => {
                return Some("is warming up (its health probe answers 503 while it loads)".into())
            }
            HealthStatus::Healthy => {}
        }
        Some(match self.breaker.refusal(now)? {
            Refusal::OpenUntil(until) => {
                let left = until.saturating_duration_since(now);
                let at = std::time::SystemTime::now() + left;
                format!(
                    "has its circuit open until {} (for another {}s) after repeated failures",
                    crate::config::access::rfc3339(at),
                    left.as_secs_f64().ceil() as u64
                )
            }
            Refusal::TrialsBusy(n) => {
                format!("has its circuit half-open with its {n} trial request(s) in flight")
            }
        })
    }

    /// Exponentially weighted average of time to response headers; `None` before the
    /// first response.
    pub fn latency_ewma(&self) -> Option<Duration> {
        match self.ewma_micros.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Adds a latency sample.
    pub fn record_latency(&self, d: Duration) {
        let sample = d.as_micros().clamp(1, u64::MAX as u128) as f64;
        let old = self.ewma_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            EWMA_ALPHA * sample + (1.0 - EWMA_ALPHA) * old as f64
        };
        self.ewma_micros
            .store(new.max(1.0) as u64, Ordering::Relaxed);
    }

    /// Requests being served by this backend now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The load the load-aware strategies weigh: the router's own requests in flight, or
    /// what the server reports running and queued when more.
    pub fn load(&self) -> usize {
        self.server_load.load(self.in_flight())
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn start_request(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(std::sync::Arc::clone(self))
    }
}

/// Counts one in-flight request on a backend while alive.
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<BackendState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
