//! Load reported by the model servers themselves, for the load-aware strategies: requests
//! running and waiting, and KV-cache usage, read on an interval from
//! - vLLM's `/metrics`: `vllm:num_requests_running`, `vllm:num_requests_waiting`,
//!   `vllm:kv_cache_usage_perc` (before 0.12 `vllm:gpu_cache_usage_perc`);
//! - SGLang's `/metrics`: `sglang:num_running_reqs`, `sglang:num_queue_reqs`,
//!   `sglang:token_usage`;
//! - llama.cpp's `/metrics` (with `--metrics`): `llamacpp:requests_processing`,
//!   `llamacpp:requests_deferred`, `llamacpp:kv_cache_usage_ratio` (older builds); without
//!   `--metrics` (501), its `/slots`: the slots processing.
//!
//! A server's counts include requests from every client, this router's among them; the
//! load a strategy weighs is the larger of them and the router's own in-flight count.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// One reading of a server's load.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Requests being processed.
    pub running: u32,
    /// Requests queued, waiting for a slot.
    pub waiting: u32,
    /// KV-cache usage, 0.0 to 1.0, when the server says.
    pub kv_usage: Option<f64>,
}

/// The latest reading of one backend, shared by every worker.
#[derive(Debug, Default)]
pub struct ServerLoad {
    running: AtomicU32,
    waiting: AtomicU32,
    /// KV usage in millionths, plus one (0: unknown).
    kv_usage: AtomicU32,
    /// When it is no longer current: milliseconds since [`epoch`] (0: never read).
    fresh_until: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

impl ServerLoad {
    /// Records a reading, current for `valid_for` (a few scrape intervals).
    pub fn record(&self, r: Reading, valid_for: Duration) {
        self.running.store(r.running, Ordering::Relaxed);
        self.waiting.store(r.waiting, Ordering::Relaxed);
        let kv = r
            .kv_usage
            .map_or(0, |u| (u.clamp(0.0, 1.0) * 1e6) as u32 + 1);
        self.kv_usage.store(kv, Ordering::Relaxed);
        self.fresh_until
            .store(now_ms() + valid_for.as_millis() as u64, Ordering::Relaxed);
    }

    /// Forgets the reading (nothing reads this server's load any longer).
    pub fn clear(&self) {
        self.fresh_until.store(0, Ordering::Relaxed);
    }

    /// The latest reading, if it is still current.
    pub fn current(&self) -> Option<Reading> {
        let until = self.fresh_until.load(Ordering::Relaxed);
        if until == 0 || now_ms() > until {
            return None;
        }
        let kv = self.kv_usage.load(Ordering::Relaxed);
        Some(Reading {
            running: self.running.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            kv_usage: (kv > 0).then(|| f64::from(kv - 1) / 1e6),
        })
    }

    /// The load a strategy weighs: requests the server runs and queues, or the router's
    /// own `in_flight` to it when more (or when the server tells nothing).
    pub fn load(&self, in_flight: usize) -> usize {
        match self.current() {
            Some(r) => in_flight.max((r.running + r.waiting) as usize),
            None => in_flight,
        }
    }
}

/// Reads a Prometheus text exposition for the gauges of vLLM, SGLang or llama.cpp; `None`
/// when it has none of them. Samples of one gauge with several label sets (engines, data
/// parallel ranks) are summed; usage ratios are averaged.
pub fn parse_metrics(text: &str) -> Option<Reading> {
    let mut running = None::<f64>;
    let mut waiting = None::<f64>;
    let mut usage = (0.0f64, 0u32);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let value = match line.rfind('}') {
            Some(close) => line[close + 1..].split_whitespace().next(),
            None => line[name_end..].split_whitespace().next(),
        };
        let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if !v.is_finite() || v < 0.0 {
            continue;
        }
        match name {
            "vllm:num_requests_running"
            | "sglang:num_running_reqs"
            | "llamacpp:requests_processing" => *running.get_or_insert(0.0) += v,
            "vllm:num_requests_waiting"
            | "sglang:num_queue_reqs"
            | "llamacpp:requests_deferred" => *waiting.get_or_insert(0.0) += v,
            "vllm:kv_cache_usage_perc"
            | "vllm:gpu_cache_usage_perc"
            | "sglang:token_usage"
            | "llamacpp:kv_cache_usage_ratio" => {
                usage.0 += v;
                usage.1 += 1;
            }
            _ => {}
        }
    }
    if running.is_none() && waiting.is_none() {
        return None;
    }
    // vLLM 0.9.2–0.11 exports both names of its KV gauge; they average to the same value.
    let count = |v: Option<f64>| v.unwrap_or(0.0).min(f64::from(u32::MAX)) as u32;
    Some(Reading {
        running: count(running),
        waiting: count(waiting),
        kv_usage: (usage.1 > 0).then(|| usage.0 / f64::from(usage.1)),
    })
}

#[derive(Deserialize)]
struct Slot {
    #[serde(default)]
    is_processing: bool,
}

/// Reads llama.cpp's `/slots` (a JSON array of slots): the slots processing are the
/// requests running; what waits for a slot it does not say.
pub fn parse_slots(body: &[u8]) -> Option<Reading> {
    let slots: Vec<Slot> = serde_json::from_slice(body).ok()?;
    Some(Reading {
        running: slots.iter().filter(|s| s.is_processing).count() as u32,
        waiting: 0,
        kv_usage: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_metrics_with_labels_and_both_kv_names() {
        let text =
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
# TYPE vllm:num_requests_running gauge\n\
vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n\
vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 1.0\n\
vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 7.0\n\
vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n\
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n\
vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 1234.0\n";
        assert_eq!(
            parse_metrics(text),
            Some(Reading {
                running: 4,
                waiting: 7,
                kv_usage: Some(0.5)
            })
        );
    }

    #[test]
    fn reads_llama_cpp_and_sglang_metrics() {
        let llama = "# HELP llamacpp:requests_processing Number of requests processing.\n\
# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\n\
# TYPE llamacpp:requests_deferred gauge\nllamacpp:requests_deferred 5\n\
llamacpp:prompt_tokens_total 99\n";
        assert_eq!(
            parse_metrics(llama),
            Some(Reading {
                running: 2,
                waiting: 5,
                kv_usage: None
            })
        );
        let sglang = "sglang:num_running_reqs{model_name=\"q\"} 8.0\nsglang:num_queue_reqs{model_name=\"q\"} 0.0\nsglang:token_usage{model_name=\"q\"} 0.28\n";
        assert_eq!(
            parse_metrics(sglang),
            Some(Reading {
                running: 8,
                waiting: 0,
                kv_usage: Some(0.28)
            })
        );
    }

    #[test]
    fn other_servers_and_garbage_give_nothing() {
        assert_eq!(parse_metrics("process_cpu_seconds_total 5\n"), None);
        assert_eq!(
            parse_metrics("vllm:num_requests_running{x=\"}\"} NaN\n\u{0}"),
            None
        );
        assert_eq!(parse_metrics(""), None);
        // A negative or absurd value is not taken.
        assert_eq!(
            parse_metrics("llamacpp:requests_processing -3\nllamacpp:requests_deferred 1e30\n"),
            Some(Reading {
                running: 0,
                waiting: u32::MAX,
                kv_usage: None
            })
        );
    }

    #[test]
    fn reads_llama_cpp_slots() {
        let body = br#"[{"id":0,"n_ctx":2048,"speculative":false,"is_processing":true},{"id":1,"n_ctx":2048,"speculative":false,"is_processing":false}]"#;
        assert_eq!(
            parse_slots(body),
            Some(Reading {
                running: 1,
                waiting: 0,
                kv_usage: None
            })
        );
        assert_eq!(parse_slots(b"{\"error\":{}}"), None);
    }

    #[test]
    fn the_load_weighed_is_the_larger_count_while_the_reading_is_current() {
        let load = ServerLoad::default();
        assert_eq!(load.load(2), 2);
        load.record(
            Reading {
                running: 3,
                waiting: 4,
                kv_usage: Some(0.25),
            },
            Duration::from_secs(60),
        );
        assert_eq!(load.load(2), 7);
        assert_eq!(load.load(9), 9);
        assert_eq!(load.current().unwrap().kv_usage, Some(0.25));
    }
}
