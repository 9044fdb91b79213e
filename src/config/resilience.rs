//! Reading the resilience sections: `health_checks`, `retry` (and `retry_override`),
//! `circuit_breaker`, `fallback`, `selection_strategy`.

use std::time::Duration;

use serde_json::{Map, Value};

use super::model::*;
use super::reader::{child, did_you_mean, Keys, Reader};

const HEALTH: Keys = Keys {
    known: &[
        "enabled",
        "interval",
        "timeout",
        "unhealthy_threshold",
        "healthy_threshold",
        "endpoint",
        "warmup_check_interval",
        "max_warmup_duration",
    ],
    unsupported: &[],
};

const RETRY: Keys = Keys {
    known: &[
        "max_attempts",
        "initial_delay",
        "max_delay",
        "backoff_multiplier",
        "jitter",
        "retryable_status_codes",
    ],
    unsupported: &[],
};

const BREAKER: Keys = Keys {
    known: &[
        "enabled",
        "failure_threshold",
        "failure_rate_threshold",
        "minimum_requests",
        "timeout",
        "half_open_max_requests",
        "half_open_success_threshold",
    ],
    unsupported: &[],
};

const FALLBACK: Keys = Keys {
    known: &[
        "enabled",
        "fallback_chains",
        "fallback_policy",
        "mid_stream",
    ],
    unsupported: &[],
};

const FALLBACK_POLICY: Keys = Keys {
    known: &["trigger_conditions", "max_fallback_attempts"],
    unsupported: &[],
};

const TRIGGERS: Keys = Keys {
    known: &[
        "error_codes",
        "timeout",
        "connection_error",
        "circuit_breaker_open",
        "model_not_found",
    ],
    unsupported: &[],
};

/// `selection_strategy` (absent: RoundRobin).
pub fn read_strategy(top: &Map<String, Value>, r: &mut Reader) -> Option<SelectionStrategy> {
    let Some(name) = r.string(top, "", "selection_strategy") else {
        return Some(SelectionStrategy::RoundRobin);
    };
    if let Some((_, s)) = SelectionStrategy::ALL.iter().find(|(n, _)| *n == name) {
        return Some(*s);
    }
    let names = SelectionStrategy::ALL.iter().map(|(n, _)| *n);
    let hint = did_you_mean(&name, names.clone())
        .map(|s| format!("did you mean '{s}'? "))
        .unwrap_or_default();
    r.error(
        "selection_strategy",
        format!(
            "unknown strategy '{name}'; {hint}(one of: {})",
            names.collect::<Vec<_>>().join(", ")
        ),
    );
    None
}

fn count(r: &mut Reader, m: &Map<String, Value>, path: &str, key: &str, min: u64) -> Option<u32> {
    let n = r.integer(m, path, key)?;
    if n < min || n > 1_000_000 {
        r.error(
            child(path, key),
            format!("{n} is out of range ({min} to 1000000)"),
        );
        return None;
    }
    Some(n as u32)
}

fn fraction(r: &mut Reader, m: &Map<String, Value>, path: &str, key: &str) -> Option<f64> {
    let f = r.number(m, path, key)?;
    if !(0.0..=1.0).contains(&f) {
        r.error(child(path, key), format!("{f} is not between 0.0 and 1.0"));
        return None;
    }
    Some(f)
}

fn positive(r: &mut Reader, m: &Map<String, Value>, path: &str, key: &str) -> Option<Duration> {
    let d = r.duration(m, path, key)?;
    if d.is_zero() {
        r.error(child(path, key), "must be longer than 0");
        return None;
    }
    Some(d)
}

fn status_codes(r: &mut Reader, m: &Map<String, Value>, path: &str, key: &str) -> Option<Vec<u16>> {
    let v = m.get(key).filter(|v| !v.is_null())?;
    let Value::Array(items) = v else {
        r.error(
            child(path, key),
            "expected a list of HTTP status codes such as [429, 503]",
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_u64().filter(|c| (100..=599).contains(c)) {
            Some(c) => out.push(c as u16),
            None => r.error(
                format!("{}[{i}]", child(path, key)),
                format!("{item} is not an HTTP status code (100-599)"),
            ),
        }
    }
    Some(out)
}

/// `health_checks:`; `legacy` is the seed's `timeouts.health_check` (timeout, interval),
/// used where `health_checks` does not set them.
pub fn read_health_checks(
    v: Option<&Value>,
    legacy: (Option<Duration>, Option<Duration>),
    r: &mut Reader,
) -> HealthChecksConfig {
    let mut h = HealthChecksConfig::default();
    if let Some(t) = legacy.0 {
        h.timeout = t;
    }
    if let Some(i) = legacy.1 {
        h.interval = i;
    }
    let p = "health_checks";
    let Some(m) = v.and_then(|v| r.section(v, p, &HEALTH)) else {
        return h;
    };
    if let Some(e) = r.boolean(m, p, "enabled") {
        h.enabled = e;
    }
    if let Some(d) = positive(r, m, p, "interval") {
        h.interval = d;
    }
    if let Some(d) = positive(r, m, p, "timeout") {
        h.timeout = d;
    }
    if let Some(n) = count(r, m, p, "unhealthy_threshold", 1) {
        h.unhealthy_threshold = n;
    }
    if let Some(n) = count(r, m, p, "healthy_threshold", 1) {
        h.healthy_threshold = n;
    }
    if let Some(e) = r.string(m, p, "endpoint") {
        if !e.starts_with('/') || e.parse::<http::uri::PathAndQuery>().is_err() {
            r.error(
                child(p, "endpoint"),
                format!("'{e}' is not a path such as \"/health\""),
            );
        } else {
            h.endpoint = Some(e);
        }
    }
    if let Some(d) = positive(r, m, p, "warmup_check_interval") {
        h.warmup_check_interval = d;
    }
    if let Some(d) = r.duration(m, p, "max_warmup_duration") {
        h.max_warmup_duration = d;
    }
    h
}

/// `retry:` or a `retry_override:` (whose missing keys come from `base`).
pub fn read_retry(v: &Value, p: &str, base: &RetryConfig, r: &mut Reader) -> Option<RetryConfig> {
    let mut c = base.clone();
    let m = r.section(v, p, &RETRY)?;
    if let Some(n) = count(r, m, p, "max_attempts", 1) {
        if n > 20 {
            r.error(
                child(p, "max_attempts"),
                format!("{n} attempts is more than the 20 allowed"),
            );
        }
        c.max_attempts = n;
    }
    if let Some(d) = r.duration(m, p, "initial_delay") {
        c.initial_delay = d;
    }
    if let Some(d) = r.duration(m, p, "max_delay") {
        c.max_delay = d;
    }
    if let Some(f) = r.number(m, p, "backoff_multiplier") {
        if !(1.0..=100.0).contains(&f) {
            r.error(
                child(p, "backoff_multiplier"),
                format!("{f} is out of range (1.0 to 100.0)"),
            );
        }
        c.backoff_multiplier = f;
    }
    if let Some(j) = r.boolean(m, p, "jitter") {
        c.jitter = j;
    }
    if let Some(codes) = status_codes(r, m, p, "retryable_status_codes") {
        c.retryable_status_codes = codes;
    }
    if c.initial_delay > c.max_delay {
        r.error(child(p, "initial_delay"), "is longer than max_delay");
    }
    Some(c)
}

/// `circuit_breaker:`.
pub fn read_circuit_breaker(v: Option<&Value>, r: &mut Reader) -> CircuitBreakerConfig {
    let mut c = CircuitBreakerConfig::default();
    let p = "circuit_breaker";
    let Some(m) = v.and_then(|v| r.section(v, p, &BREAKER)) else {
        return c;
    };
    if let Some(e) = r.boolean(m, p, "enabled") {
        c.enabled = e;
    }
    if let Some(n) = count(r, m, p, "failure_threshold", 1) {
        c.failure_threshold = n;
    }
    if let Some(f) = fraction(r, m, p, "failure_rate_threshold") {
        c.failure_rate_threshold = f;
    }
    if let Some(n) = count(r, m, p, "minimum_requests", 1) {
        c.minimum_requests = n;
    }
    if let Some(d) = positive(r, m, p, "timeout") {
        c.timeout = d;
    }
    if let Some(n) = count(r, m, p, "half_open_max_requests", 1) {
        c.half_open_max_requests = n;
    }
    if let Some(n) = count(r, m, p, "half_open_success_threshold", 1) {
        c.half_open_success_threshold = n;
    }
    if c.half_open_success_threshold > c.half_open_max_requests {
        r.error(
            child(p, "half_open_success_threshold"),
            "is more than half_open_max_requests, so the circuit could never close",
        );
    }
    c
}

/// `fallback:`.
pub fn read_fallback(v: Option<&Value>, r: &mut Reader) -> FallbackConfig {
    let mut c = FallbackConfig {
        max_fallback_attempts: 3,
        ..FallbackConfig::default()
    };
    let p = "fallback";
    let Some(m) = v.and_then(|v| r.section(v, p, &FALLBACK)) else {
        return c;
    };
    c.enabled = r.boolean(m, p, "enabled").unwrap_or(true);
    if let Some(chains) = m.get("fallback_chains").filter(|v| !v.is_null()) {
        let cp = child(p, "fallback_chains");
        match chains {
            Value::Object(map) => {
                for model in map.keys() {
                    if let Some(list) = r.string_list(map, &cp, model) {
                        if list.iter().any(|m| m == model) {
                            r.error(child(&cp, model), format!("'{model}' falls back to itself"));
                        }
                        c.chains.push((model.clone(), list));
                    }
                }
            }
            _ => r.error(
                cp,
                "expected a mapping of model to a list of fallback models",
            ),
        }
    }
    if let Some(policy) = m.get("fallback_policy") {
        let pp = child(p, "fallback_policy");
        if let Some(pm) = r.section(policy, &pp, &FALLBACK_POLICY) {
            if let Some(n) = count(r, pm, &pp, "max_fallback_attempts", 1) {
                c.max_fallback_attempts = n;
            }
            if let Some(t) = pm.get("trigger_conditions") {
                let tp = child(&pp, "trigger_conditions");
                if let Some(tm) = r.section(t, &tp, &TRIGGERS) {
                    if let Some(codes) = status_codes(r, tm, &tp, "error_codes") {
                        c.triggers.error_codes = codes;
                    }
                    let t = &mut c.triggers;
                    for (key, slot) in [
                        ("timeout", &mut t.timeout),
                        ("connection_error", &mut t.connection_error),
                        ("circuit_breaker_open", &mut t.circuit_breaker_open),
                        ("model_not_found", &mut t.model_not_found),
                    ] {
                        if let Some(b) = r.boolean(tm, &tp, key) {
                            *slot = b;
                        }
                    }
                }
            }
        }
    }
    match r.string(m, p, "mid_stream").as_deref() {
        None | Some("error") => {}
        Some("continue") => c.mid_stream_continue = true,
        Some(other) => r.error(
            child(p, "mid_stream"),
            format!("'{other}' is not one of: error, continue"),
        ),
    }
    c
}
