//! Usage statistics for `GET /admin/stats` (`admin.stats`): requests, errors, latency
//! percentiles and tokens per model, backend and API key, over a sliding window kept as
//! a ring of time buckets. Each worker records into its own shard (an uncontended lock);
//! a query merges them. With `persistence`, the buckets are written to a JSON file every
//! `snapshot_interval` (and at shutdown) and read back at start unless too old.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::operations::StatsConfig;

/// Buckets a window is cut into (a bucket is at least a minute).
const BUCKETS_PER_WINDOW: u64 = 144;

/// Latency histogram: bucket `i` holds latencies up to `1ms × 1.25^i`; the last is open.
const LATENCY_BUCKETS: usize = 64;

fn latency_bucket(d: Duration) -> usize {
    let ms = d.as_secs_f64() * 1000.0;
    if ms <= 1.0 {
        return 0;
    }
    ((ms.ln() / 1.25f64.ln()).ceil() as usize).min(LATENCY_BUCKETS - 1)
}

fn latency_bound_ms(i: usize) -> f64 {
    1.25f64.powi(i as i32)
}

/// What one dimension (a model, a backend or a key) did in one bucket.
#[derive(Clone, Serialize, Deserialize)]
struct Agg {
    requests: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    latency_sum_ms: f64,
    #[serde(with = "latency_serde")]
    latency: [u32; LATENCY_BUCKETS],
    /// Time to the first byte of the answer, where it was measured (snapshots written
    /// before it was kept read as none).
    #[serde(default = "no_buckets", with = "latency_serde")]
    ttft: [u32; LATENCY_BUCKETS],
}

fn no_buckets() -> [u32; LATENCY_BUCKETS] {
    [0; LATENCY_BUCKETS]
}

impl Default for Agg {
    fn default() -> Agg {
        Agg {
            requests: 0,
            errors: 0,
            input_tokens: 0,
            output_tokens: 0,
            latency_sum_ms: 0.0,
            latency: [0; LATENCY_BUCKETS],
            ttft: [0; LATENCY_BUCKETS],
        }
    }
}

mod latency_serde {
    use super::LATENCY_BUCKETS;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u32; LATENCY_BUCKETS], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[u32; LATENCY_BUCKETS], D::Error> {
        let v: Vec<u32> = Vec::deserialize(d)?;
        let mut out = [0; LATENCY_BUCKETS];
        for (o, x) in out.iter_mut().zip(v) {
            *o = x;
        }
        Ok(out)
    }
}

impl Agg {
    fn add(&mut self, o: &Agg) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.latency_sum_ms += o.latency_sum_ms;
        for (a, b) in self.latency.iter_mut().zip(o.latency.iter()) {
            *a += b;
        }
        for (a, b) in self.ttft.iter_mut().zip(o.ttft.iter()) {
            *a += b;
        }
    }

    fn record(&mut self, r: &Record<'_>) {
        self.requests += 1;
        if r.status >= 400 {
            self.errors += 1;
        }
        if let Some((i, o)) = r.tokens {
            self.input_tokens += i;
            self.output_tokens += o;
        }
        self.latency_sum_ms += r.latency.as_secs_f64() * 1000.0;
        self.latency[latency_bucket(r.latency)] += 1;
        if let Some(t) = r.ttft {
            self.ttft[latency_bucket(t)] += 1;
        }
    }

    fn percentile_ms(&self, q: f64) -> Option<f64> {
        percentile_ms(&self.latency, q)
    }

    fn ttft_ms(&self) -> serde_json::Value {
        serde_json::json!({"p50": percentile_ms(&self.ttft, 0.5), "p99": percentile_ms(&self.ttft, 0.99)})
    }
}

/// The `q` quantile of a latency histogram (its bucket's upper bound); `None` when empty.
fn percentile_ms(histogram: &[u32; LATENCY_BUCKETS], q: f64) -> Option<f64> {
    let total: u64 = histogram.iter().map(|n| u64::from(*n)).sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += u64::from(*n);
        if seen >= rank {
            return Some(latency_bound_ms(i));
        }
    }
    Some(latency_bound_ms(LATENCY_BUCKETS - 1))
}

/// Which table a row belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Total,
    Model,
    Backend,
    Key,
}

/// One bucket's rows: the total and one table per kind.
#[derive(Default)]
struct Rows {
    total: Agg,
    models: HashMap<Arc<str>, Agg>,
    backends: HashMap<Arc<str>, Agg>,
    keys: HashMap<Arc<str>, Agg>,
}

impl Rows {
    fn table(&self, kind: Kind) -> Option<&HashMap<Arc<str>, Agg>> {
        match kind {
            Kind::Total => None,
            Kind::Model => Some(&self.models),
            Kind::Backend => Some(&self.backends),
            Kind::Key => Some(&self.keys),
        }
    }

    fn add(&mut self, kind: Kind, name: &Arc<str>, agg: &Agg) {
        let table = match kind {
            Kind::Total => return self.total.add(agg),
            Kind::Model => &mut self.models,
            Kind::Backend => &mut self.backends,
            Kind::Key => &mut self.keys,
        };
        match table.get_mut(&**name) {
            Some(a) => a.add(agg),
            None => {
                table.insert(name.clone(), agg.clone());
            }
        }
    }

    fn merge(&mut self, other: &Rows) {
        self.total.add(&other.total);
        for kind in [Kind::Model, Kind::Backend, Kind::Key] {
            if let Some(t) = other.table(kind) {
                for (name, agg) in t {
                    self.add(kind, name, agg);
                }
            }
        }
    }

    fn rows(&self) -> impl Iterator<Item = (Kind, &Arc<str>, &Agg)> {
        [Kind::Model, Kind::Backend, Kind::Key]
            .into_iter()
            .flat_map(move |k| {
                self.table(k)
                    .into_iter()
                    .flatten()
                    .map(move |(n, a)| (k, n, a))
            })
    }
}

fn record_in(table: &mut HashMap<Arc<str>, Agg>, name: &str, r: &Record<'_>) {
    match table.get_mut(name) {
        Some(a) => a.record(r),
        None => {
            let mut a = Agg::default();
            a.record(r);
            table.insert(Arc::from(name), a);
        }
    }
}

/// One time bucket: its start (in bucket units since the epoch) and its rows.
#[derive(Default)]
struct Shard {
    buckets: VecDeque<(u64, Rows)>,
}

/// One finished request, as recorded.
pub struct Record<'a> {
    /// HTTP status answered.
    pub status: u16,
    /// The model the backend was sent (`None`: no backend answered).
    pub model: Option<&'a str>,
    /// The backend's name.
    pub backend: Option<&'a str>,
    /// The API key's id.
    pub key: Option<&'a str>,
    /// Whole-request latency.
    pub latency: Duration,
    /// (input, output) tokens when the usage was seen.
    pub tokens: Option<(u64, u64)>,
    /// Time to the first byte of the answer, when measured.
    pub ttft: Option<Duration>,
}

/// The statistics collector.
pub struct Stats {
    config: StatsConfig,
    width: u64,
    started: SystemTime,
    shards: Box<[Mutex<Shard>]>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Stats {
    /// A collector with `shards` shards (one per worker plus one); made only when
    /// `admin.stats.enabled`.
    pub fn new(config: StatsConfig, shards: usize) -> Stats {
        let window = config.retention_window.as_secs().max(60);
        Stats {
            width: (window / BUCKETS_PER_WINDOW).max(60),
            config,
            started: SystemTime::now(),
            shards: (0..shards.max(1)).map(|_| Mutex::default()).collect(),
        }
    }

    fn buckets_kept(&self) -> u64 {
        self.config.retention_window.as_secs().div_ceil(self.width) + 1
    }

    /// Records a finished request in `shard`.
    pub fn record(&self, shard: usize, r: Record<'_>) {
        let slot = now_secs() / self.width;
        let tokens = r.tokens.filter(|_| self.config.token_tracking);
        let r = Record { tokens, ..r };
        let keep = self.buckets_kept();
        let mut s = self.shards[shard % self.shards.len()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if s.buckets.back().is_none_or(|(t, _)| *t != slot) {
            s.buckets.push_back((slot, Rows::default()));
            while s.buckets.front().is_some_and(|(t, _)| *t + keep <= slot) {
                s.buckets.pop_front();
            }
        }
        let Some((_, rows)) = s.buckets.back_mut() else {
            return;
        };
        rows.total.record(&r);
        if let Some(m) = r.model {
            record_in(&mut rows.models, m, &r);
        }
        if let Some(b) = r.backend {
            record_in(&mut rows.backends, b, &r);
        }
        if let Some(k) = r.key {
            record_in(&mut rows.keys, k, &r);
        }
    }

    /// The `series` of `GET /admin/stats?series=1`: each time bucket over `window` (at
    /// most the retention window), oldest first, with its totals and per-model and
    /// per-backend counts; buckets without requests are left out.
    pub fn series(&self, window: Option<Duration>) -> serde_json::Value {
        use serde_json::json;
        let window = window
            .unwrap_or(self.config.retention_window)
            .min(self.config.retention_window);
        let mut slots: std::collections::BTreeMap<u64, Rows> = Default::default();
        self.each_bucket(window, |t, rows| slots.entry(t).or_default().merge(rows));
        let counts = |table: &HashMap<Arc<str>, Agg>| {
            let mut m = serde_json::Map::new();
            for (name, a) in table {
                m.insert(
                    name.to_string(),
                    json!({"requests": a.requests, "errors": a.errors}),
                );
            }
            m
        };
        let points: Vec<_> = slots
            .iter()
            .map(|(t, rows)| {
                let a = &rows.total;
                json!({
                    "t": t * self.width,
                    "requests": a.requests,
                    "errors": a.errors,
                    "latency_ms": {"p50": a.percentile_ms(0.5), "p99": a.percentile_ms(0.99)},
                    "ttft_ms": {"p50": percentile_ms(&a.ttft, 0.5)},
                    "models": counts(&rows.models),
                    "backends": counts(&rows.backends),
                })
            })
            .collect();
        json!({"bucket_seconds": self.width, "points": points})
    }

    /// Every row over the last `window` (at most the retention window), merged.
    fn merged(&self, window: Duration) -> Rows {
        let mut out = Rows::default();
        self.each_bucket(window, |_, rows| out.merge(rows));
        out
    }

    /// Calls `f` with every bucket of every shard over the last `window`.
    fn each_bucket(&self, window: Duration, mut f: impl FnMut(u64, &Rows)) {
        let now = now_secs() / self.width;
        let span = window.as_secs().div_ceil(self.width).max(1);
        for shard in self.shards.iter() {
            let s = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (t, rows) in s.buckets.iter().filter(|(t, _)| t + span > now) {
                f(*t, rows);
            }
        }
    }

    /// The `GET /admin/stats` body over `window` (`None`: the retention window); `price`
    /// gives a model's (input, output) price per 1,000 tokens.
    pub fn report(
        &self,
        window: Option<Duration>,
        price: impl Fn(&str) -> Option<(f64, f64)>,
    ) -> serde_json::Value {
        use serde_json::json;
        let window = window
            .unwrap_or(self.config.retention_window)
            .min(self.config.retention_window);
        let rows = self.merged(window);
        let uptime = self.started.elapsed().unwrap_or_default().as_secs();
        let cost = |model: &str, a: &Agg| {
            price(model)
                .map(|(i, o)| (a.input_tokens as f64 * i + a.output_tokens as f64 * o) / 1000.0)
        };
        let row = |name: &str, a: &Agg, cost: Option<f64>| {
            json!({
                "name": name,
                "requests": a.requests,
                "errors": a.errors,
                "error_rate": if a.requests == 0 { 0.0 } else { a.errors as f64 / a.requests as f64 },
                "latency_ms": {
                    "mean": if a.requests == 0 { 0.0 } else { a.latency_sum_ms / a.requests as f64 },
                    "p50": a.percentile_ms(0.5),
                    "p90": a.percentile_ms(0.9),
                    "p99": a.percentile_ms(0.99),
                },
                "ttft_ms": a.ttft_ms(),
                "tokens": {"input": a.input_tokens, "output": a.output_tokens},
                "estimated_cost": cost,
            })
        };
        let mut total_cost: Option<f64> = None;
        let mut table = |kind: Kind| {
            let mut list: Vec<_> = rows.table(kind).into_iter().flatten().collect();
            list.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
            list.into_iter()
                .map(|(name, a)| {
                    let c = if kind == Kind::Model {
                        cost(name, a)
                    } else {
                        None
                    };
                    if let Some(c) = c {
                        *total_cost.get_or_insert(0.0) += c;
                    }
                    row(name, a, c)
                })
                .collect::<Vec<_>>()
        };
        let models = table(Kind::Model);
        let backends = table(Kind::Backend);
        let keys = table(Kind::Key);
        let total = &rows.total;
        json!({
            "uptime": uptime,
            "window_seconds": window.as_secs(),
            "total_requests": total.requests,
            "total_errors": total.errors,
            "tokens": {"input": total.input_tokens, "output": total.output_tokens},
            "token_tracking": self.config.token_tracking,
            "latency_ms": {"p50": total.percentile_ms(0.5), "p90": total.percentile_ms(0.9), "p99": total.percentile_ms(0.99)},
            "ttft_ms": total.ttft_ms(),
            "estimated_cost": total_cost,
            "models": models,
            "backends": backends,
            "keys": keys,
        })
    }

    /// Writes every bucket to `path` (through a temporary file, so a reader never sees a
    /// half-written snapshot).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut buckets: Vec<SavedBucket> = Vec::new();
        for shard in self.shards.iter() {
            let s = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (slot, rows) in &s.buckets {
                buckets.push(SavedBucket {
                    start: slot * self.width,
                    rows: std::iter::once((Kind::Total, "all", &rows.total))
                        .chain(rows.rows().map(|(k, n, a)| (k, &**n, a)))
                        .map(|(kind, name, agg)| SavedRow {
                            kind,
                            name: name.to_string(),
                            agg: agg.clone(),
                        })
                        .collect(),
                });
            }
        }
        let snapshot = Saved {
            saved_at: now_secs(),
            bucket_seconds: self.width,
            buckets,
        };
        let text = serde_json::to_vec(&snapshot).map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Loads a snapshot written by [`Stats::save`] unless it is older than `max_age`
    /// (or of another bucket width). Returns whether it was loaded.
    pub fn load(&self, path: &Path, max_age: Duration) -> Result<bool, String> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let saved: Saved = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not a stats snapshot: {e}", path.display()))?;
        if now_secs().saturating_sub(saved.saved_at) > max_age.as_secs()
            || saved.bucket_seconds != self.width
        {
            return Ok(false);
        }
        let oldest = (now_secs() / self.width).saturating_sub(self.buckets_kept());
        let mut s = self.shards[0].lock().unwrap_or_else(|e| e.into_inner());
        let mut merged: std::collections::BTreeMap<u64, Rows> = Default::default();
        for b in saved.buckets {
            let slot = b.start / self.width;
            if slot <= oldest {
                continue;
            }
            let rows = merged.entry(slot).or_default();
            for r in b.rows {
                rows.add(r.kind, &Arc::from(r.name), &r.agg);
            }
        }
        s.buckets = merged.into_iter().collect();
        Ok(true)
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    saved_at: u64,
    bucket_seconds: u64,
    buckets: Vec<SavedBucket>,
}

#[derive(Serialize, Deserialize)]
struct SavedBucket {
    start: u64,
    rows: Vec<SavedRow>,
}

#[derive(Serialize, Deserialize)]
struct SavedRow {
    kind: Kind,
    name: String,
    agg: Agg,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stats: &Stats, ms: u64, status: u16) {
        stats.record(
            0,
            Record {
                status,
                model: Some("m"),
                backend: Some("b"),
                key: Some("team"),
                latency: Duration::from_millis(ms),
                tokens: Some((10, 5)),
                ttft: Some(Duration::from_millis(ms / 2)),
            },
        );
    }

    #[test]
    fn percentiles_errors_tokens_and_cost() {
        let stats = Stats::new(StatsConfig::default(), 2);
        for ms in 1..=100 {
            record(&stats, ms, if ms % 10 == 0 { 500 } else { 200 });
        }
        let r = stats.report(None, |m| (m == "m").then_some((1.0, 2.0)));
        assert_eq!(r["total_requests"], 100);
        assert_eq!(r["total_errors"], 10);
        let p50 = r["latency_ms"]["p50"].as_f64().unwrap();
        assert!((50.0..=63.0).contains(&p50), "{p50}");
        let p99 = r["models"][0]["latency_ms"]["p99"].as_f64().unwrap();
        assert!((99.0..=125.0).contains(&p99), "{p99}");
        assert_eq!(r["models"][0]["tokens"]["input"], 1000);
        // 1000 input × 1.0 + 500 output × 2.0 per 1,000 tokens.
        assert_eq!(r["estimated_cost"], 2.0);
        assert_eq!(r["backends"][0]["name"], "b");
        assert_eq!(r["keys"][0]["requests"], 100);
        let ttft = r["ttft_ms"]["p50"].as_f64().unwrap();
        assert!((25.0..=32.0).contains(&ttft), "{ttft}");
    }

    #[test]
    fn the_series_has_one_point_per_bucket_with_its_counts() {
        let stats = Stats::new(StatsConfig::default(), 2);
        for ms in 1..=30 {
            record(&stats, ms, if ms % 10 == 0 { 500 } else { 200 });
        }
        let s = stats.series(None);
        assert_eq!(s["bucket_seconds"], stats.width);
        let points = s["points"].as_array().unwrap();
        let total: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
        assert_eq!(total, 30);
        let last = points.last().unwrap();
        assert!(last["t"].as_u64().unwrap() <= now_secs());
        assert!(last["models"]["m"]["requests"].as_u64().unwrap() > 0);
        assert!(last["backends"]["b"]["errors"].is_u64());
        assert!(last["ttft_ms"]["p50"].is_f64());
    }

    #[test]
    fn snapshots_round_trip_and_old_ones_are_ignored() {
        let dir = std::env::temp_dir().join(format!("continuum-stats-{}", fastrand::u64(..)));
        let path = dir.join("stats.json");
        let stats = Stats::new(StatsConfig::default(), 1);
        record(&stats, 5, 200);
        stats.save(&path).unwrap();
        let again = Stats::new(StatsConfig::default(), 1);
        assert!(again.load(&path, Duration::from_secs(3600)).unwrap());
        assert_eq!(again.report(None, |_| None)["total_requests"], 1);
        let text = std::fs::read_to_string(&path).unwrap();
        let old = text.replacen("\"saved_at\":", "\"saved_at\":1,\"x\":", 1);
        std::fs::write(&path, old).unwrap();
        let fresh = Stats::new(StatsConfig::default(), 1);
        assert!(!fresh.load(&path, Duration::from_secs(3600)).unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}
