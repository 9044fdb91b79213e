//! An LLM-aware load generator for OpenAI-compatible endpoints (`continuum bench`):
//! concurrent clients send chat completions (streamed or not) for a number of requests or
//! a duration, optionally capped to a request rate, and record latency, time to first
//! token, inter-token latency, output tokens and statuses. Each client records into its
//! own buffers (merged at the end), and the request body is serialised once, so the
//! generator stays far from being the bottleneck.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::client::{Client, SseLines};

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this many requests.
    Requests(u64),
    /// After this long.
    Duration(Duration),
}

/// What load to generate.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The model asked for.
    pub model: String,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// When to stop.
    pub stop: Stop,
    /// Streamed requests (`"stream": true`, usage asked for).
    pub stream: bool,
    /// Words in the prompt.
    pub prompt_words: usize,
    /// `max_tokens` of each request.
    pub max_tokens: Option<u32>,
    /// At most this many requests per second (all clients together).
    pub rate: Option<f64>,
}

impl LoadSpec {
    /// The chat request every client sends.
    pub fn body(&self) -> Bytes {
        let words: Vec<&str> = [
            "Tell", "me", "about", "routing", "requests", "between", "models",
        ]
        .iter()
        .copied()
        .cycle()
        .take(self.prompt_words.max(1))
        .collect();
        let mut body = serde_json::json!({
            "model": self.model,
            "messages": [{"role": "user", "content": words.join(" ")}],
            "stream": self.stream,
        });
        if self.stream {
            body["stream_options"] = serde_json::json!({"include_usage": true});
        }
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = n.into();
        }
        Bytes::from(body.to_string())
    }
}

/// Requests finished so far (for a progress bar).
#[derive(Debug, Default)]
pub struct Progress {
    /// Finished requests.
    pub done: AtomicU64,
    /// Failed ones among them.
    pub errors: AtomicU64,
}

/// Everything one run recorded.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Per-request latency (successes and failures).
    pub latencies: Vec<Duration>,
    /// Time to first token (streamed: first content chunk; else the whole answer).
    pub ttft: Vec<Duration>,
    /// Gaps between content chunks of streamed answers.
    pub inter_token: Vec<Duration>,
    /// Output tokens of successful answers (from usage, else content chunks).
    pub output_tokens: u64,
    /// Answers by status (`"200"`, `"503"`, or `"connection error"`, `"stream error"`).
    pub statuses: BTreeMap<String, u64>,
    /// Requests that failed.
    pub errors: u64,
}

impl Report {
    /// Adds another run's records (elapsed times add up).
    pub fn merge(&mut self, o: Report) {
        self.elapsed += o.elapsed;
        self.latencies.extend(o.latencies);
        self.ttft.extend(o.ttft);
        self.inter_token.extend(o.inter_token);
        self.output_tokens += o.output_tokens;
        self.errors += o.errors;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
    }

    /// Requests sent.
    pub fn requests(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// The figures of the run.
    pub fn summary(&self) -> Summary {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        Summary {
            requests: self.requests(),
            errors: self.errors,
            rps: self.requests() as f64 / secs,
            latency: Percentiles::of(&self.latencies),
            ttft: Percentiles::of(&self.ttft),
            inter_token: Percentiles::of(&self.inter_token),
            output_tokens_per_second: self.output_tokens as f64 / secs,
            statuses: self.statuses.clone(),
            elapsed: self.elapsed,
        }
    }
}

/// p50, p90, p99 and max, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `samples` (zeros when there are none).
    pub fn of(samples: &[Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        let mut v: Vec<Duration> = samples.to_vec();
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
            v[i].as_secs_f64() * 1000.0
        };
        Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Whole-request latency.
    pub latency: Percentiles,
    /// Time to first token.
    pub ttft: Percentiles,
    /// Inter-token latency (streamed runs).
    pub inter_token: Percentiles,
    /// Output tokens per second, all clients together.
    pub output_tokens_per_second: f64,
    /// Answers by status.
    pub statuses: BTreeMap<String, u64>,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// The `bench --json` shape.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "rps": self.rps,
            "latency_ms": self.latency,
            "ttft_ms": {"p50": self.ttft.p50, "p90": self.ttft.p90, "p99": self.ttft.p99},
            "inter_token_ms": {"p50": self.inter_token.p50, "p90": self.inter_token.p90, "p99": self.inter_token.p99},
            "output_tokens_per_second": self.output_tokens_per_second,
            "statuses": self.statuses,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
        })
    }
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    completion_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<Usage>,
}

/// Shared by the clients of one run.
struct Shared {
    body: Bytes,
    stream: bool,
    remaining: AtomicU64,
    deadline: Option<Instant>,
    /// Rate cap: nanoseconds since `started` of the next request's slot.
    next_slot: AtomicU64,
    interval_ns: Option<u64>,
    started: Instant,
}

impl Shared {
    /// Claims the next request, waiting for its slot under a rate cap; `false` when the
    /// run is over.
    async fn claim(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        if self.deadline.is_none()
            && self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_err()
        {
            return false;
        }
        if let Some(step) = self.interval_ns {
            let slot = self.next_slot.fetch_add(step, Ordering::Relaxed);
            let at = self.started + Duration::from_nanos(slot);
            if self.deadline.is_some_and(|d| at >= d) {
                return false;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        true
    }
}

/// Runs `spec` against `client`'s endpoint; `progress` is updated as requests finish.
/// Must run inside a tokio runtime (a multi-threaded one spreads the clients).
pub async fn run(client: &Client, spec: &LoadSpec, progress: Arc<Progress>) -> Report {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        body: spec.body(),
        stream: spec.stream,
        remaining: AtomicU64::new(match spec.stop {
            Stop::Requests(n) => n,
            Stop::Duration(_) => u64::MAX,
        }),
        deadline: match spec.stop {
            Stop::Duration(d) => Some(started + d),
            Stop::Requests(_) => None,
        },
        next_slot: AtomicU64::new(0),
        interval_ns: spec.rate.filter(|r| *r > 0.0).map(|r| (1e9 / r) as u64),
        started,
    });
    let tasks: Vec<_> = (0..spec.concurrency.max(1))
        .map(|_| {
            let client = client.clone();
            let shared = shared.clone();
            let progress = progress.clone();
            tokio::spawn(async move { client_loop(client, shared, progress).await })
        })
        .collect();
    let mut report = Report::default();
    for t in tasks {
        if let Ok(r) = t.await {
            report.merge(r);
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// A fast local OpenAI-compatible endpoint answering every chat completion with a fixed
/// reply (an SSE stream of a few chunks when asked to stream), on a thread of its own:
/// the "direct" side of `bench --overhead`. Returns its address.
pub fn spawn_fixed_upstream() -> std::io::Result<std::net::SocketAddr> {
    const REPLY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello!\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" How can I help?\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"bench-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\n",
        "data: [DONE]\n\n",
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("bench-upstream".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/v1/chat/completions",
                    axum::routing::post(|body: Bytes| async move {
                        let stream = body.windows(13).any(|w| w == b"\"stream\":true");
                        if stream {
                            ([("content-type", "text/event-stream")], STREAM)
                        } else {
                            ([("content-type", "application/json")], REPLY)
                        }
                    }),
                )
                .route(
                    "/v1/models",
                    axum::routing::get(|| async {
                        axum::Json(serde_json::json!({"object":"list","data":[{"id":"bench-model","object":"model"}]}))
                    }),
                );
                if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                    let _ = axum::serve(l, app).await;
                }
            });
        })?;
    Ok(addr)
}

async fn client_loop(client: Client, shared: Arc<Shared>, progress: Arc<Progress>) -> Report {
    let mut report = Report::default();
    while shared.claim().await {
        let req = client.request(Method::POST, "/v1/chat/completions", shared.body.clone());
        let sent = Instant::now();
        let outcome = one(&client, req, shared.stream, sent, &mut report).await;
        report.latencies.push(sent.elapsed());
        let key = match outcome {
            Ok(status) => {
                if !(200..300).contains(&status) {
                    report.errors += 1;
                    progress.errors.fetch_add(1, Ordering::Relaxed);
                }
                status.to_string()
            }
            Err(kind) => {
                report.errors += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
                kind.to_string()
            }
        };
        *report.statuses.entry(key).or_default() += 1;
        progress.done.fetch_add(1, Ordering::Relaxed);
    }
    report
}

/// Sends one request and reads its answer; the status, or what kind of failure.
async fn one(
    client: &Client,
    req: http::Request<http_body_util::Full<Bytes>>,
    stream: bool,
    sent: Instant,
    report: &mut Report,
) -> Result<u16, &'static str> {
    let resp = client
        .http()
        .request(req)
        .await
        .map_err(|_| "connection error")?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    if !(200..300).contains(&status) || !stream {
        let bytes = body.collect().await.map_err(|_| "read error")?.to_bytes();
        if (200..300).contains(&status) {
            report.ttft.push(sent.elapsed());
            if let Ok(u) = serde_json::from_slice::<UsageOnly>(&bytes) {
                report.output_tokens += u.usage.and_then(|u| u.completion_tokens).unwrap_or(0);
            }
        }
        return Ok(status);
    }
    let mut sse = SseLines::default();
    let mut last: Option<Instant> = None;
    let mut chunks = 0u64;
    let mut usage = None;
    let mut done = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "stream error")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in sse.push(&data) {
            if event == "[DONE]" {
                done = true;
                continue;
            }
            if event.contains("\"error\"") && !event.contains("\"choices\"") {
                return Err("stream error");
            }
            if event.contains("\"content\":\"") && !event.contains("\"content\":\"\"") {
                let now = Instant::now();
                match last {
                    None => report.ttft.push(now - sent),
                    Some(prev) => report.inter_token.push(now - prev),
                }
                last = Some(now);
                chunks += 1;
            }
            if event.contains("\"usage\"") {
                if let Ok(u) = serde_json::from_str::<UsageOnly>(&event) {
                    usage = u.usage.and_then(|u| u.completion_tokens).or(usage);
                }
            }
        }
    }
    if !done {
        return Err("stream error");
    }
    report.output_tokens += usage.unwrap_or(chunks);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&[]).max, 0.0);
    }

    #[test]
    fn bodies_have_the_asked_size_and_mode() {
        let spec = LoadSpec {
            model: "m".into(),
            concurrency: 1,
            stop: Stop::Requests(1),
            stream: true,
            prompt_words: 12,
            max_tokens: Some(5),
            rate: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&spec.body()).unwrap();
        assert_eq!(
            v["messages"][0]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            12
        );
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["max_tokens"], 5);
    }
}
