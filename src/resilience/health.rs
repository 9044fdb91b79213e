//! Health of one backend from periodic probes: thresholds for going unhealthy and
//! healthy again, and "warming up" for a backend answering 503 while it loads.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::HealthChecksConfig;

/// A backend's health, as shown in `/admin/backends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// Takes traffic.
    Healthy,
    /// Failing its probes; no traffic.
    Unhealthy,
    /// Answering 503 while loading; no traffic, probed more often.
    WarmingUp,
}

impl HealthStatus {
    /// The spelling used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
            HealthStatus::WarmingUp => "warming_up",
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// The backend answered (any status but 5xx).
    Up,
    /// 503: loading.
    Loading,
    /// No answer, a timeout, a 404 (wrong URL) or another 5xx.
    Down,
}

/// What [`Health::on_probe`] concluded from one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The new status, if it changed (or this was the first probe).
    pub changed: Option<HealthStatus>,
    /// The wait before the next probe.
    pub next: Duration,
    /// The probe succeeded after failed ones and the backend takes traffic again: an open
    /// circuit should give it its half-open trial now rather than wait out its timeout.
    pub recovered: bool,
}

#[derive(Debug, Default)]
struct Counters {
    probed: bool,
    ok_streak: u32,
    fail_streak: u32,
    warming_since: Option<Instant>,
    /// A probe failed (or warmed up) since the backend last took traffic after one.
    recovering: bool,
    /// What the last failed probe found, for the 503 that names why a backend is passed
    /// over.
    last_failure: Option<String>,
}

/// The health of one backend, updated by its probe loop, read on every request.
#[derive(Debug)]
pub struct Health {
    status: AtomicU8,
    counters: Mutex<Counters>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            status: AtomicU8::new(0),
            counters: Mutex::new(Counters::default()),
        }
    }
}

impl Health {
    /// The current status (healthy until a probe says otherwise).
    pub fn status(&self) -> HealthStatus {
        match self.status.load(Ordering::Acquire) {
            1 => HealthStatus::Unhealthy,
            2 => HealthStatus::WarmingUp,
            _ => HealthStatus::Healthy,
        }
    }

    /// Forgets every probe (health checks were turned off): healthy again.
    pub fn reset(&self) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c = Counters::default();
        self.set(HealthStatus::Healthy);
    }

    /// What the last failed probe found (`None` before any failed, or once one succeeds).
    pub fn last_failure(&self) -> Option<String> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_failure
            .clone()
    }

    /// Whether the backend may take traffic.
    pub fn is_healthy(&self) -> bool {
        self.status.load(Ordering::Acquire) == 0
    }

    fn set(&self, s: HealthStatus) {
        let v = match s {
            HealthStatus::Healthy => 0,
            HealthStatus::Unhealthy => 1,
            HealthStatus::WarmingUp => 2,
        };
        self.status.store(v, Ordering::Release);
    }

    /// Applies a probe result (`why`: what a failed one found); says whether the status
    /// changed, when to probe next and whether the backend just recovered.
    pub fn on_probe(
        &self,
        result: ProbeResult,
        why: Option<String>,
        now: Instant,
        cfg: &HealthChecksConfig,
    ) -> Verdict {
        let before = self.status();
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let first = !c.probed;
        c.probed = true;
        let mut next = cfg.interval;
        let after = match result {
            ProbeResult::Up => {
                c.ok_streak += 1;
                c.fail_streak = 0;
                c.warming_since = None;
                c.last_failure = None;
                if first
                    || before == HealthStatus::WarmingUp
                    || c.ok_streak >= cfg.healthy_threshold
                {
                    HealthStatus::Healthy
                } else {
                    before
                }
            }
            ProbeResult::Loading => {
                c.ok_streak = 0;
                c.recovering = true;
                let since = *c.warming_since.get_or_insert(now);
                if now.duration_since(since) > cfg.max_warmup_duration {
                    c.fail_streak += 1;
                    c.last_failure = Some(format!(
                        "still loading after {:?} (health_checks.max_warmup_duration)",
                        cfg.max_warmup_duration
                    ));
                    HealthStatus::Unhealthy
                } else {
                    next = cfg.warmup_check_interval;
                    HealthStatus::WarmingUp
                }
            }
            ProbeResult::Down => {
                c.fail_streak += 1;
                c.ok_streak = 0;
                c.warming_since = None;
                c.recovering = true;
                c.last_failure = why;
                if first || c.fail_streak >= cfg.unhealthy_threshold {
                    HealthStatus::Unhealthy
                } else {
                    before
                }
            }
        };
        let recovered = result == ProbeResult::Up && after == HealthStatus::Healthy && c.recovering;
        if recovered {
            c.recovering = false;
        }
        drop(c);
        self.set(after);
        Verdict {
            changed: (after != before || first).then_some(after),
            next,
            recovered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HealthChecksConfig {
        HealthChecksConfig {
            unhealthy_threshold: 2,
            healthy_threshold: 2,
            max_warmup_duration: Duration::from_secs(10),
            ..HealthChecksConfig::default()
        }
    }

    #[test]
    fn thresholds_and_warm_up() {
        let h = Health::default();
        let c = cfg();
        let t = Instant::now();
        // The first probe decides at once.
        assert_eq!(
            h.on_probe(ProbeResult::Up, None, t, &c).changed,
            Some(HealthStatus::Healthy)
        );
        assert_eq!(h.on_probe(ProbeResult::Down, None, t, &c).changed, None);
        assert!(h.is_healthy(), "one failure is below unhealthy_threshold");
        assert_eq!(
            h.on_probe(ProbeResult::Down, None, t, &c).changed,
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(h.on_probe(ProbeResult::Up, None, t, &c).changed, None);
        assert_eq!(
            h.on_probe(ProbeResult::Up, None, t, &c).changed,
            Some(HealthStatus::Healthy)
        );
        // 503 means warming up: no traffic, probed at the warm-up interval…
        let v = h.on_probe(ProbeResult::Loading, None, t, &c);
        assert_eq!(v.changed, Some(HealthStatus::WarmingUp));
        assert_eq!(v.next, c.warmup_check_interval);
        assert!(!h.is_healthy());
        // …and healthy on its first good answer.
        assert_eq!(
            h.on_probe(ProbeResult::Up, None, t, &c).changed,
            Some(HealthStatus::Healthy)
        );
        // Warming up for longer than max_warmup_duration is unhealthy.
        h.on_probe(ProbeResult::Loading, None, t, &c);
        let late = t + Duration::from_secs(11);
        assert_eq!(
            h.on_probe(ProbeResult::Loading, None, late, &c).changed,
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn a_first_failed_probe_is_unhealthy_at_once() {
        let h = Health::default();
        assert_eq!(
            h.on_probe(ProbeResult::Down, None, Instant::now(), &cfg())
                .changed,
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn a_success_after_failures_is_a_recovery_once() {
        let h = Health::default();
        let c = cfg();
        let t = Instant::now();
        assert!(!h.on_probe(ProbeResult::Up, None, t, &c).recovered);
        let why = Some("GET http://x/v1/models answered 500".to_string());
        h.on_probe(ProbeResult::Down, why.clone(), t, &c);
        h.on_probe(ProbeResult::Down, why, t, &c);
        assert_eq!(
            h.last_failure().as_deref(),
            Some("GET http://x/v1/models answered 500")
        );
        // Below healthy_threshold the backend takes no traffic yet: not recovered.
        assert!(!h.on_probe(ProbeResult::Up, None, t, &c).recovered);
        assert!(h.on_probe(ProbeResult::Up, None, t, &c).recovered);
        assert_eq!(h.last_failure(), None);
        assert!(!h.on_probe(ProbeResult::Up, None, t, &c).recovered);
    }
}
