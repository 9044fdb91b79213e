//! Retry timing: exponential backoff from `initial_delay` to `max_delay`, with optional
//! full jitter, and a backend's `Retry-After` honoured (up to `max_delay`).

use std::time::Duration;

use http::HeaderMap;

use crate::config::RetryConfig;

/// The wait before attempt number `attempt + 1` (after `attempt` failed attempts, ≥ 1).
pub fn backoff(policy: &RetryConfig, attempt: u32) -> Duration {
    let exp = policy
        .backoff_multiplier
        .powi(attempt.saturating_sub(1).min(60) as i32);
    let base = policy.initial_delay.as_secs_f64() * exp;
    let capped = base.min(policy.max_delay.as_secs_f64());
    let wait = if policy.jitter {
        fastrand::f64() * capped
    } else {
        capped
    };
    Duration::from_secs_f64(wait.max(0.0))
}

/// The `Retry-After` of a response, in seconds (the HTTP-date form is not used by LLM
/// providers and is ignored).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// The wait before retrying the same backend: the backoff, or longer if the backend asked,
/// never more than `max_delay`.
pub fn wait_before_retry(policy: &RetryConfig, attempt: u32, asked: Option<Duration>) -> Duration {
    let b = backoff(policy, attempt);
    match asked {
        Some(a) => a.max(b).min(policy.max_delay),
        None => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: bool) -> RetryConfig {
        RetryConfig {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            backoff_multiplier: 2.0,
            jitter,
            retryable_status_codes: vec![503],
        }
    }

    #[test]
    fn grows_and_caps() {
        let p = policy(false);
        let waits: Vec<u128> = (1..=6).map(|a| backoff(&p, a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn full_jitter_stays_within_the_backoff() {
        let p = policy(true);
        for attempt in 1..=6 {
            let cap = backoff(&policy(false), attempt);
            for _ in 0..200 {
                assert!(backoff(&p, attempt) <= cap);
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_max_delay() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "0.5".parse().unwrap());
        let p = policy(false);
        assert_eq!(
            wait_before_retry(&p, 1, retry_after(&h)),
            Duration::from_millis(500)
        );
        h.insert(http::header::RETRY_AFTER, "30".parse().unwrap());
        assert_eq!(
            wait_before_retry(&p, 1, retry_after(&h)),
            Duration::from_secs(1)
        );
        h.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        for absurd in ["1e300", "-5", "NaN", "inf"] {
            h.insert(http::header::RETRY_AFTER, absurd.parse().unwrap());
            assert!(
                wait_before_retry(&p, 1, retry_after(&h)) <= p.max_delay,
                "{absurd}"
            );
        }
    }
}
