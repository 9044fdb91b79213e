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
    /// No answer, a timeout or another 5xx.
    Down,
}

#[derive(Debug)]
struct Counters {
    probed: bool,
    ok_streak: u32,
    fail_streak: u32,
    warming_since: Option<Instant>,
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
            counters: Mutex::new(Counters {
                probed: false,
                ok_streak: 0,
                fail_streak: 0,
                warming_since: None,
            }),
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
        *c = Counters {
            probed: false,
            ok_streak: 0,
            fail_streak: 0,
            warming_since: None,
        };
        self.set(HealthStatus::Healthy);
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

    /// Applies a probe result; returns the new status if it changed, and the wait before
    /// the next probe.
    pub fn on_probe(
        &self,
        result: ProbeResult,
        now: Instant,
        cfg: &HealthChecksConfig,
    ) -> (Option<HealthStatus>, Duration) {
        let before = self.status();
        let Ok(mut c) = self.counters.lock() else {
            return (None, cfg.interval);
        };
        let first = !c.probed;
        c.probed = true;
        let mut next = cfg.interval;
        let after = match result {
            ProbeResult::Up => {
                c.ok_streak += 1;
                c.fail_streak = 0;
                c.warming_since = None;
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
                let since = *c.warming_since.get_or_insert(now);
                if now.duration_since(since) > cfg.max_warmup_duration {
                    c.fail_streak += 1;
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
                if first || c.fail_streak >= cfg.unhealthy_threshold {
                    HealthStatus::Unhealthy
                } else {
                    before
                }
            }
        };
        drop(c);
        self.set(after);
        ((after != before || first).then_some(after), next)
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
            h.on_probe(ProbeResult::Up, t, &c).0,
            Some(HealthStatus::Healthy)
        );
        assert_eq!(h.on_probe(ProbeResult::Down, t, &c).0, None);
        assert!(h.is_healthy(), "one failure is below unhealthy_threshold");
        assert_eq!(
            h.on_probe(ProbeResult::Down, t, &c).0,
            Some(HealthStatus::Unhealthy)
        );
        assert_eq!(h.on_probe(ProbeResult::Up, t, &c).0, None);
        assert_eq!(
            h.on_probe(ProbeResult::Up, t, &c).0,
            Some(HealthStatus::Healthy)
        );
        // 503 means warming up: no traffic, probed at the warm-up interval…
        let (s, next) = h.on_probe(ProbeResult::Loading, t, &c);
        assert_eq!(s, Some(HealthStatus::WarmingUp));
        assert_eq!(next, c.warmup_check_interval);
        assert!(!h.is_healthy());
        // …and healthy on its first good answer.
        assert_eq!(
            h.on_probe(ProbeResult::Up, t, &c).0,
            Some(HealthStatus::Healthy)
        );
        // Warming up for longer than max_warmup_duration is unhealthy.
        h.on_probe(ProbeResult::Loading, t, &c);
        let late = t + Duration::from_secs(11);
        assert_eq!(
            h.on_probe(ProbeResult::Loading, late, &c).0,
            Some(HealthStatus::Unhealthy)
        );
    }

    #[test]
    fn a_first_failed_probe_is_unhealthy_at_once() {
        let h = Health::default();
        assert_eq!(
            h.on_probe(ProbeResult::Down, Instant::now(), &cfg()).0,
            Some(HealthStatus::Unhealthy)
        );
    }
}
