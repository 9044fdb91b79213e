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

/// Distinct error messages kept per run; further ones are counted under [`OTHER_ERRORS`].
const MAX_ERROR_MESSAGES: usize = 32;

/// The key that counts error messages beyond [`MAX_ERROR_MESSAGES`] distinct ones.
pub const OTHER_ERRORS: &str = "(other error messages)";

/// Everything one run recorded.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The requests were streamed (time to first token and inter-token gaps exist only then).
    pub streamed: bool,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Per-request latency (successes and failures).
    pub latencies: Vec<Duration>,
    /// Time to the first content chunk of streamed answers.
    pub ttft: Vec<Duration>,
    /// Gaps between content chunks of streamed answers.
    pub inter_token: Vec<Duration>,
    /// Output tokens of successful answers (from usage, else content chunks).
    pub output_tokens: u64,
    /// Answers by status (`"200"`, `"503"`, or `"connection error"`, `"stream error"`).
    pub statuses: BTreeMap<String, u64>,
    /// Requests that failed.
    pub errors: u64,
    /// Failures by what the server (or the connection) said, e.g.
    /// `"404 model 'x' not found"`.
    pub error_messages: BTreeMap<String, u64>,
}

impl Report {
    /// Adds another run's records (elapsed times add up).
    pub fn merge(&mut self, o: Report) {
        self.streamed |= o.streamed;
        self.elapsed += o.elapsed;
        self.latencies.extend(o.latencies);
        self.ttft.extend(o.ttft);
        self.inter_token.extend(o.inter_token);
        self.output_tokens += o.output_tokens;
        self.errors += o.errors;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.error_messages {
            self.count_error(k, v);
        }
    }

    /// Counts `n` failures that said `message` (bounded: past [`MAX_ERROR_MESSAGES`]
    /// distinct messages, new ones are counted together).
    fn count_error(&mut self, message: String, n: u64) {
        let key = if self.error_messages.contains_key(&message)
            || self.error_messages.len() < MAX_ERROR_MESSAGES
        {
            message
        } else {
            OTHER_ERRORS.to_string()
        };
        *self.error_messages.entry(key).or_default() += n;
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
            ttft: self.streamed.then(|| Percentiles::of(&self.ttft)),
            inter_token: self.streamed.then(|| Percentiles::of(&self.inter_token)),
            output_tokens_per_second: self.output_tokens as f64 / secs,
            statuses: self.statuses.clone(),
            error_messages: self.error_messages.clone(),
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
    /// Time to first token (`None`: the run was not streamed, so there is none).
    pub ttft: Option<Percentiles>,
    /// Inter-token latency (`None`: the run was not streamed).
    pub inter_token: Option<Percentiles>,
    /// Output tokens per second, all clients together.
    pub output_tokens_per_second: f64,
    /// Answers by status.
    pub statuses: BTreeMap<String, u64>,
    /// Failures by message.
    pub error_messages: BTreeMap<String, u64>,
    /// Wall time.
    pub elapsed: Duration,
}

/// `v` rounded to `places` decimals, for figures printed as JSON.
fn round(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}

impl Percentiles {
    /// `{"p50","p90","p99","max"}` in milliseconds to 3 decimals (µs resolution).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": round(self.p50, 3),
            "p90": round(self.p90, 3),
            "p99": round(self.p99, 3),
            "max": round(self.max, 3),
        })
    }
}

impl Summary {
    /// The most frequent failure message and how many requests failed with it.
    pub fn top_error(&self) -> Option<(&str, u64)> {
        self.error_messages
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(m, n)| (m.as_str(), *n))
    }

    /// The `bench --json` figures (SPEC's keys): latencies in ms to 3 decimals, rates to
    /// 2; `ttft_ms` and `inter_token_ms` are `null` for a run that was not streamed.
    pub fn to_json(&self) -> serde_json::Value {
        let ttft = |p: &Option<Percentiles>| match p {
            Some(p) => {
                serde_json::json!({"p50": round(p.p50, 3), "p90": round(p.p90, 3), "p99": round(p.p99, 3)})
            }
            None => serde_json::Value::Null,
        };
        serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 2),
            "latency_ms": self.latency.to_json(),
            "ttft_ms": ttft(&self.ttft),
            "inter_token_ms": ttft(&self.inter_token),
            "output_tokens_per_second": round(self.output_tokens_per_second, 2),
            "statuses": self.statuses,
            "error_messages": self.error_messages,
            "elapsed_seconds": round(self.elapsed.as_secs_f64(), 3),
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
    let mut report = Report {
        streamed: spec.stream,
        ..Report::default()
    };
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
            Ok(status) => status.to_string(),
            Err(failure) => {
                report.errors += 1;
                progress.errors.fetch_add(1, Ordering::Relaxed);
                report.count_error(failure.message, 1);
                failure.key
            }
        };
        *report.statuses.entry(key).or_default() += 1;
        progress.done.fetch_add(1, Ordering::Relaxed);
    }
    report
}

/// Why one request failed: its status key (`"404"`, `"connection error"`) and what was
/// said (`"404 model 'x' not found"`).
struct Failure {
    key: String,
    message: String,
}

impl Failure {
    fn new(key: &str, message: String) -> Failure {
        Failure {
            key: key.to_string(),
            message,
        }
    }
}

/// The message of an error reply: OpenAI's and Anthropic's `error.message`, a top-level
/// `message` or `error` string, else the start of the body; prefixed with the status.
pub fn error_message(status: u16, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let said = parsed.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or_else(|| v["message"].as_str())
            .or_else(|| v["error"].as_str())
            .or_else(|| v["detail"].as_str())
            .map(str::to_string)
    });
    let said = said.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &text[..at]),
            None => text.to_string(),
        }
    });
    if said.is_empty() {
        status.to_string()
    } else {
        format!("{status} {said}")
    }
}

/// The innermost cause of an error, as text.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    crate::http::innermost_cause(e).to_string()
}

/// Sends one request and reads its answer: the status of a success, else what failed.
async fn one(
    client: &Client,
    req: http::Request<http_body_util::Full<Bytes>>,
    stream: bool,
    sent: Instant,
    report: &mut Report,
) -> Result<u16, Failure> {
    let resp = client.http().request(req).await.map_err(|e| {
        Failure::new(
            "connection error",
            format!("connection error: {}", root_cause(&e)),
        )
    })?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    if !(200..300).contains(&status) {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(Failure::new(
            &status.to_string(),
            error_message(status, &bytes),
        ));
    }
    if !stream {
        let bytes = body
            .collect()
            .await
            .map_err(|e| Failure::new("read error", format!("read error: {}", root_cause(&e))))?
            .to_bytes();
        if let Ok(u) = serde_json::from_slice::<UsageOnly>(&bytes) {
            report.output_tokens += u.usage.and_then(|u| u.completion_tokens).unwrap_or(0);
        }
        return Ok(status);
    }
    let mut sse = SseLines::default();
    let mut last: Option<Instant> = None;
    let mut chunks = 0u64;
    let mut usage = None;
    let mut done = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Failure::new("stream error", format!("stream error: {}", root_cause(&e)))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        for event in sse.push(&data) {
            if event == "[DONE]" {
                done = true;
                continue;
            }
            if event.contains("\"error\"") && !event.contains("\"choices\"") {
                let said = error_message(status, event.as_bytes());
                let said = said.strip_prefix(&format!("{status} ")).unwrap_or(&said);
                return Err(Failure::new(
                    "stream error",
                    format!("stream error: {said}"),
                ));
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
        return Err(Failure::new(
            "stream error",
            "stream error: the stream ended without [DONE]".to_string(),
        ));
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
    fn error_messages_come_from_the_reply_body() {
        assert_eq!(
            error_message(
                404,
                br#"{"error":{"message":"model 'x' not found","type":"invalid_request_error"}}"#
            ),
            "404 model 'x' not found"
        );
        assert_eq!(
            error_message(
                529,
                br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#
            ),
            "529 busy"
        );
        assert_eq!(error_message(502, b"Bad Gateway\n"), "502 Bad Gateway");
        assert_eq!(error_message(500, b""), "500");
    }

    #[test]
    fn distinct_error_messages_are_bounded() {
        let mut r = Report::default();
        for i in 0..(MAX_ERROR_MESSAGES + 5) {
            r.count_error(format!("500 failure {i}"), 1);
        }
        r.count_error("500 failure 0".into(), 2);
        assert_eq!(r.error_messages.len(), MAX_ERROR_MESSAGES + 1);
        assert_eq!(r.error_messages[OTHER_ERRORS], 5);
        assert_eq!(r.error_messages["500 failure 0"], 3);
    }

    #[test]
    fn a_run_that_was_not_streamed_has_no_ttft() {
        let r = Report {
            latencies: vec![Duration::from_millis(5)],
            elapsed: Duration::from_secs(1),
            ..Report::default()
        };
        let s = r.summary();
        assert!(s.ttft.is_none() && s.inter_token.is_none());
        assert!(s.to_json()["ttft_ms"].is_null());
        let streamed = Report {
            streamed: true,
            ..r
        };
        assert!(streamed.summary().to_json()["ttft_ms"]["p50"].is_number());
    }

    #[test]
    fn json_figures_are_rounded() {
        let r = Report {
            latencies: vec![Duration::from_nanos(1_234_567)],
            elapsed: Duration::from_secs(3),
            output_tokens: 10,
            ..Report::default()
        };
        let v = r.summary().to_json();
        assert_eq!(v["latency_ms"]["p50"], 1.235);
        assert_eq!(v["rps"], 0.33);
        assert_eq!(v["output_tokens_per_second"], 3.33);
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
