//! Prometheus metrics (`GET /metrics`, text format 0.0.4). Each worker thread records into
//! its own shard (an uncontended lock), so the hot path never waits on another thread;
//! a scrape merges the shards and reads backend health and circuit state live.
//!
//! Names: `continuum_requests_total{endpoint,model,backend,status}`,
//! `continuum_request_duration_seconds` and `continuum_time_to_first_token_seconds`
//! histograms (same labels without status for TTFT), `continuum_tokens_total{model,backend,direction}`,
//! `continuum_backend_healthy{backend}`, `continuum_circuit_state{backend}` (0 closed,
//! 1 half-open, 2 open), `continuum_retries_total`, `continuum_fallbacks_total`,
//! `continuum_in_flight_requests`, `continuum_reasoning_effort_adjusted_total{backend,model,requested,applied}`,
//! and the process gauges of [`process`].

pub mod process;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::Backend;

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A cumulative-on-scrape histogram: counts per bucket, sum and count.
#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.counts[i] += 1;
        }
        self.sum += s;
        self.count += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// A backend identified by its `Arc` (labels are read from it at scrape time).
#[derive(Clone)]
struct BackendKey(Arc<Backend>);

impl PartialEq for BackendKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for BackendKey {}
impl Hash for BackendKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

/// Who answered a request: put on the response by the proxy, read when it is recorded.
#[derive(Clone)]
pub struct Served {
    /// The backend that answered.
    pub backend: Arc<Backend>,
    /// The model name the backend was sent.
    pub model: Arc<str>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    endpoint: &'static str,
    served: Option<(BackendKey, Arc<str>)>,
    status: u16,
}

#[derive(Default)]
struct RequestSeries {
    duration: Histogram,
    ttft: Histogram,
}

#[derive(Default)]
struct Shard {
    requests: HashMap<RequestKey, RequestSeries>,
    tokens: HashMap<(BackendKey, Arc<str>), (u64, u64)>,
    reasoning: HashMap<(BackendKey, Arc<str>, &'static str, &'static str), u64>,
    retries: u64,
    fallbacks: u64,
    rate_limited: u64,
    store_fail_open: u64,
    store_fail_closed: u64,
}

/// The router's metrics registry.
pub struct Metrics {
    /// `admin.stats`, fed by the same recording point.
    pub stats: Option<crate::stats::Stats>,
    shards: Box<[Mutex<Shard>]>,
    next_shard: AtomicUsize,
    in_flight: AtomicI64,
    /// The runtimes whose live tasks a scrape counts.
    pub runtimes: process::Runtimes,
}

impl Metrics {
    /// A registry with one shard per worker thread (plus one for other callers), feeding
    /// `stats` too when given.
    pub fn new(workers: usize, stats: Option<crate::stats::Stats>) -> Metrics {
        Metrics {
            stats,
            shards: (0..workers.max(1) + 1)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            next_shard: AtomicUsize::new(0),
            in_flight: AtomicI64::new(0),
            runtimes: process::Runtimes::default(),
        }
    }

    /// A shard index for a new worker.
    pub fn assign_shard(&self) -> usize {
        self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    fn with_shard(&self, shard: usize, f: impl FnOnce(&mut Shard)) {
        let mut s = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    /// Counts a retry.
    pub fn retry(&self, shard: usize) {
        self.with_shard(shard, |s| s.retries += 1);
    }

    /// Counts a rate-limit decision Redis could not make: the request passed
    /// (`fail_open`) or was refused.
    pub fn rate_limit_store_error(&self, shard: usize, passed: bool) {
        self.with_shard(shard, |s| {
            if passed {
                s.store_fail_open += 1;
            } else {
                s.store_fail_closed += 1;
            }
        });
    }

    /// Counts a request refused by a rate limit.
    pub fn rate_limited(&self, shard: usize) {
        self.with_shard(shard, |s| s.rate_limited += 1);
    }

    /// Counts a fallback to another model.
    pub fn fallback(&self, shard: usize) {
        self.with_shard(shard, |s| s.fallbacks += 1);
    }

    /// Counts a reasoning level clamped or dropped for a backend.
    pub fn reasoning_adjusted(
        &self,
        shard: usize,
        served: &Served,
        requested: &'static str,
        applied: &'static str,
    ) {
        let key = (
            BackendKey(served.backend.clone()),
            served.model.clone(),
            requested,
            applied,
        );
        self.with_shard(shard, |s| *s.reasoning.entry(key).or_default() += 1);
    }

    /// Starts timing a request to `endpoint` (and counts it in flight).
    pub fn start(self: &Arc<Self>, shard: usize, endpoint: &'static str) -> RequestTimer {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestTimer {
            metrics: self.clone(),
            shard,
            endpoint,
            started: Instant::now(),
            key: None,
        }
    }

    /// The Prometheus text exposition of everything recorded, with backend gauges.
    pub fn render(&self, backends: &[Arc<Backend>]) -> String {
        let Totals {
            requests,
            tokens,
            reasoning,
            retries,
            fallbacks,
            rate_limited,
            fail_open,
            fail_closed,
        } = self.totals();
        let mut out = String::with_capacity(4096);
        render_requests(&mut out, &requests);
        render_tokens(&mut out, &tokens);
        render_backends(&mut out, backends);
        let _ = write!(
            out,
            "# HELP continuum_retries_total Attempts retried after a failure.\n# TYPE continuum_retries_total counter\ncontinuum_retries_total {retries}\n\
             # HELP continuum_fallbacks_total Requests handed to a fallback model.\n# TYPE continuum_fallbacks_total counter\ncontinuum_fallbacks_total {fallbacks}\n\
             # HELP continuum_rate_limited_total Requests refused by a rate limit.\n# TYPE continuum_rate_limited_total counter\ncontinuum_rate_limited_total {rate_limited}\n\
             # HELP continuum_rate_limit_store_errors_total Rate-limit decisions Redis could not make, by what happened to the request.\n# TYPE continuum_rate_limit_store_errors_total counter\ncontinuum_rate_limit_store_errors_total{{outcome=\"fail_open\"}} {fail_open}\ncontinuum_rate_limit_store_errors_total{{outcome=\"fail_closed\"}} {fail_closed}\n\
             # HELP continuum_in_flight_requests Chat requests being served now.\n# TYPE continuum_in_flight_requests gauge\ncontinuum_in_flight_requests {}\n",
            self.in_flight.load(Ordering::Relaxed).max(0)
        );
        out.push_str("# HELP continuum_reasoning_effort_adjusted_total Reasoning levels clamped or dropped because the backend cannot take them.\n# TYPE continuum_reasoning_effort_adjusted_total counter\n");
        for ((backend, model, req, app), n) in &reasoning {
            let _ = writeln!(
                out,
                "continuum_reasoning_effort_adjusted_total{{backend=\"{}\",model=\"{}\",requested=\"{req}\",applied=\"{app}\"}} {n}",
                escape(backend),
                escape(model)
            );
        }
        process::render(&mut out, &self.runtimes);
        out
    }

    /// Every shard's records, merged.
    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let labels = |served: &Option<(BackendKey, Arc<str>)>| match served {
            Some((b, m)) => (m.to_string(), b.0.name().to_string()),
            None => (String::new(), String::new()),
        };
        for shard in self.shards.iter() {
            let s = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in &s.requests {
                let (model, backend) = labels(&k.served);
                let e = t
                    .requests
                    .entry((k.endpoint.to_string(), model, backend, k.status))
                    .or_default();
                e.duration.merge(&v.duration);
                e.ttft.merge(&v.ttft);
            }
            for ((b, m), (i, o)) in &s.tokens {
                let e = t
                    .tokens
                    .entry((m.to_string(), b.0.name().to_string()))
                    .or_default();
                e.0 += i;
                e.1 += o;
            }
            for ((b, m, req, app), n) in &s.reasoning {
                *t.reasoning
                    .entry((b.0.name().to_string(), m.to_string(), req, app))
                    .or_default() += n;
            }
            t.retries += s.retries;
            t.fallbacks += s.fallbacks;
            t.rate_limited += s.rate_limited;
            t.fail_open += s.store_fail_open;
            t.fail_closed += s.store_fail_closed;
        }
        t
    }
}

/// Request series by endpoint, model, backend and status.
type RequestTotals = BTreeMap<(String, String, String, u16), RequestSeries>;

/// What the shards recorded, summed, with labels read from the backends.
#[derive(Default)]
struct Totals {
    requests: RequestTotals,
    /// By model and backend: prompt and completion tokens.
    tokens: BTreeMap<(String, String), (u64, u64)>,
    /// By backend, model, requested and applied level.
    reasoning: BTreeMap<(String, String, &'static str, &'static str), u64>,
    retries: u64,
    fallbacks: u64,
    rate_limited: u64,
    fail_open: u64,
    fail_closed: u64,
}

/// The request counters and the duration and time-to-first-token histograms.
fn render_requests(out: &mut String, requests: &RequestTotals) {
    out.push_str("# HELP continuum_requests_total Requests answered, by endpoint, model, backend and HTTP status.\n# TYPE continuum_requests_total counter\n");
    for ((endpoint, model, backend, status), s) in requests {
        let _ = writeln!(
            out,
            "continuum_requests_total{{endpoint=\"{}\",model=\"{}\",backend=\"{}\",status=\"{status}\"}} {}",
            escape(endpoint),
            escape(model),
            escape(backend),
            s.duration.count
        );
    }
    out.push_str("# HELP continuum_request_duration_seconds Time from request to the last byte of the response.\n# TYPE continuum_request_duration_seconds histogram\n");
    for ((endpoint, model, backend, status), s) in requests {
        let labels = format!(
            "endpoint=\"{}\",model=\"{}\",backend=\"{}\",status=\"{status}\"",
            escape(endpoint),
            escape(model),
            escape(backend)
        );
        histogram(
            out,
            "continuum_request_duration_seconds",
            &labels,
            &s.duration,
        );
    }
    let mut ttft: BTreeMap<(&str, &str, &str), Histogram> = BTreeMap::new();
    for ((endpoint, model, backend, _), s) in requests {
        if s.ttft.count > 0 {
            ttft.entry((endpoint, model, backend))
                .or_default()
                .merge(&s.ttft);
        }
    }
    out.push_str("# HELP continuum_time_to_first_token_seconds Time from request to the first byte of the response body.\n# TYPE continuum_time_to_first_token_seconds histogram\n");
    for ((endpoint, model, backend), h) in &ttft {
        let labels = format!(
            "endpoint=\"{}\",model=\"{}\",backend=\"{}\"",
            escape(endpoint),
            escape(model),
            escape(backend)
        );
        histogram(out, "continuum_time_to_first_token_seconds", &labels, h);
    }
}

/// The token counters.
fn render_tokens(out: &mut String, tokens: &BTreeMap<(String, String), (u64, u64)>) {
    out.push_str("# HELP continuum_tokens_total Tokens reported in responses' usage, by direction (in: prompt, out: completion).\n# TYPE continuum_tokens_total counter\n");
    for ((model, backend), (i, o)) in tokens {
        for (dir, n) in [("in", i), ("out", o)] {
            let _ = writeln!(
                out,
                "continuum_tokens_total{{model=\"{}\",backend=\"{}\",direction=\"{dir}\"}} {n}",
                escape(model),
                escape(backend)
            );
        }
    }
}

/// The backends' health and circuit state gauges, read now.
fn render_backends(out: &mut String, backends: &[Arc<Backend>]) {
    out.push_str("# HELP continuum_backend_healthy Whether a backend is healthy (1) or not (0).\n# TYPE continuum_backend_healthy gauge\n");
    for b in backends {
        let _ = writeln!(
            out,
            "continuum_backend_healthy{{backend=\"{}\"}} {}",
            escape(b.name()),
            u8::from(b.state.health.is_healthy())
        );
    }
    out.push_str("# HELP continuum_circuit_state A backend's circuit breaker: 0 closed, 1 half-open, 2 open.\n# TYPE continuum_circuit_state gauge\n");
    for b in backends {
        let _ = writeln!(
            out,
            "continuum_circuit_state{{backend=\"{}\"}} {}",
            escape(b.name()),
            match b.state.breaker.state(tokio::time::Instant::now()) {
                crate::resilience::breaker::CircuitState::Closed => 0,
                crate::resilience::breaker::CircuitState::HalfOpen => 1,
                crate::resilience::breaker::CircuitState::Open => 2,
            }
        );
    }
    out.push_str("# HELP continuum_backend_load Requests a backend carries as the load-aware strategies weigh it (the router's in flight, or what the server reports running and queued when more).\n# TYPE continuum_backend_load gauge\n");
    for b in backends {
        let _ = writeln!(
            out,
            "continuum_backend_load{{backend=\"{}\"}} {}",
            escape(b.name()),
            b.state.load()
        );
    }
    let with_signals: Vec<_> = backends
        .iter()
        .filter_map(|b| Some((b, b.state.server_load.current()?)))
        .collect();
    if !with_signals.is_empty() {
        out.push_str("# HELP continuum_backend_server_requests Requests a backend's server reports (its /metrics or /slots), by state.\n# TYPE continuum_backend_server_requests gauge\n");
        for (b, r) in &with_signals {
            let name = escape(b.name());
            let _ = writeln!(
                out,
                "continuum_backend_server_requests{{backend=\"{name}\",state=\"running\"}} {}",
                r.running
            );
            let _ = writeln!(
                out,
                "continuum_backend_server_requests{{backend=\"{name}\",state=\"waiting\"}} {}",
                r.waiting
            );
        }
        out.push_str("# HELP continuum_backend_kv_cache_usage KV-cache usage a backend's server reports (0 to 1).\n# TYPE continuum_backend_kv_cache_usage gauge\n");
        for (b, r) in &with_signals {
            if let Some(u) = r.kv_usage {
                let _ = writeln!(
                    out,
                    "continuum_backend_kv_cache_usage{{backend=\"{}\"}} {u}",
                    escape(b.name())
                );
            }
        }
    }
    out.push_str("# HELP continuum_backend_prompt_tokens_total Prompt tokens a backend reported, on routes of the cache-seeking strategies, by whether its cache served them.\n# TYPE continuum_backend_prompt_tokens_total counter\n");
    for b in backends {
        let (prompt, cached) = b.state.cache.totals();
        let name = escape(b.name());
        let _ = writeln!(
            out,
            "continuum_backend_prompt_tokens_total{{backend=\"{name}\",cache=\"hit\"}} {cached}"
        );
        let _ = writeln!(
            out,
            "continuum_backend_prompt_tokens_total{{backend=\"{name}\",cache=\"miss\"}} {}",
            prompt.saturating_sub(cached)
        );
    }
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (bound, n) in BUCKETS.iter().zip(h.counts.iter()) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// A label value escaped for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A request being timed, recorded by [`RequestTimer::record`] once its response ends.
pub struct RequestTimer {
    metrics: Arc<Metrics>,
    shard: usize,
    endpoint: &'static str,
    started: Instant,
    key: Option<Arc<str>>,
}

impl RequestTimer {
    /// Names the API key the request came with (for `admin.stats`).
    pub fn with_key(mut self, key: Option<Arc<str>>) -> RequestTimer {
        self.key = key;
        self
    }

    /// Time since the request started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records the finished request: its status, who answered, time to first byte and
    /// the (input, output) tokens its usage reported.
    pub fn record(
        self,
        status: u16,
        served: Option<&Served>,
        ttft: Option<Duration>,
        tokens: Option<(u64, u64)>,
    ) {
        let elapsed = self.started.elapsed();
        if let Some(stats) = &self.metrics.stats {
            stats.record(
                self.shard,
                crate::stats::Record {
                    status,
                    model: served.map(|s| &*s.model),
                    backend: served.map(|s| s.backend.name()),
                    key: self.key.as_deref(),
                    latency: elapsed,
                    tokens,
                    ttft,
                },
            );
        }
        let served = served.map(|s| (BackendKey(s.backend.clone()), s.model.clone()));
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        let key = RequestKey {
            endpoint: self.endpoint,
            served,
            status,
        };
        self.metrics.with_shard(self.shard, |s| {
            if let (Some(served), Some((i, o))) = (&key.served, tokens) {
                let t = s.tokens.entry(served.clone()).or_default();
                t.0 += i;
                t.1 += o;
            }
            let series = s.requests.entry(key).or_default();
            series.duration.observe(elapsed);
            if let Some(t) = ttft {
                series.ttft.observe(t);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_in_the_text() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(30));
        let mut out = String::new();
        histogram(&mut out, "x", "a=\"b\"", &h);
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.05\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 2\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 2\n"), "{out}");
    }
}
