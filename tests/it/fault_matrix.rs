//! The fault matrix: for each way a backend can misbehave, and each kind of client (OpenAI
//! and Anthropic protocol, streamed and not), the client gets the documented outcome — a
//! retried success, an error status in its own error shape, or a stream that ends with an
//! error event in its own protocol — the router's in-flight count returns to zero, its
//! live tasks to their baseline, its resident memory to within a few MiB of its baseline,
//! and the next request succeeds. The router runs as a process of its own (`continuum
//! serve`), so the memory and tasks read from its `/metrics` are its alone.
//! docs/RELIABILITY.md has the table this test checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use serde_json::Value;

use crate::common::*;

/// One way the backend misbehaves (on its next request only; then it answers well).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The connection is reset before any answer.
    ResetBeforeHeaders,
    /// Headers and half the body, then the connection breaks.
    ResetMidBody,
    /// No answer at all (beyond the first-byte deadline).
    StallBeforeHeaders,
    /// A first chunk, then silence (beyond the chunk and total deadlines).
    StallMidStream,
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with an SSE event whose data is not JSON.
    MalformedSse,
    /// A streamed request answered with `text/html`.
    WrongContentType,
    /// 429 with `Retry-After: 1`, once.
    RateLimitedWithRetryAfter,
    /// 429 without `Retry-After`, once.
    RateLimited,
    /// 504, 502 and 503 in a row, then an answer.
    ServerErrorBurst,
    /// The answer dripped a few bytes at a time (within the deadlines).
    SlowDrip,
    /// One SSE event larger than `server.max_stream_event_size`.
    OversizedEvent,
}

/// What the client must get.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// A normal answer (retried, or passed through whole).
    Answer,
    /// This status, in the client's error shape.
    Status(u16),
    /// 200, then the stream ends with an error event in the client's protocol.
    StreamError,
    /// The backend's bytes passed on unchanged (OpenAI passthrough never parses them).
    Passed,
}

struct Upstream {
    /// Faults still to inject, first first.
    faults: Mutex<Vec<Fault>>,
}

const TEXT: &str = "hello from the backend";

/// `retry.max_attempts` of the router under test.
const ATTEMPTS: usize = 4;

fn chunk(text: &str) -> String {
    format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn stop_chunk() -> String {
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n".to_string()
}

fn whole() -> String {
    format!(
        "{{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{TEXT}\"}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}}}"
    )
}

type Chunks = Vec<Result<Bytes, std::io::Error>>;

/// A body of `chunks`, each after `gap`, then (when `stall`) no end.
fn dripped(chunks: Chunks, gap: Duration, stall: bool) -> Body {
    let s = futures_util::stream::unfold(chunks.into_iter(), move |mut it| async move {
        tokio::time::sleep(gap).await;
        match it.next() {
            Some(c) => Some((c, it)),
            None if stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                None
            }
            None => None,
        }
    });
    Body::from_stream(s)
}

fn respond(status: u16, headers: &[(&str, &str)], body: Body) -> axum::response::Response {
    let mut r = axum::response::Response::new(body);
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        r.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

async fn answer(up: Arc<Upstream>, body: Bytes) -> axum::response::Response {
    let stream = serde_json::from_slice::<Value>(&body).unwrap_or_default()["stream"] == true;
    let fault = {
        let mut f = up.faults.lock().unwrap();
        (!f.is_empty()).then(|| f.remove(0))
    };
    let sse = [("content-type", "text/event-stream")];
    let json = [("content-type", "application/json")];
    let ok = |c: String| Ok::<_, std::io::Error>(Bytes::from(c));
    let cut = || Err(std::io::Error::other("cut"));
    let error_body = |status: u16| {
        format!("{{\"error\":{{\"message\":\"backend says {status}\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}")
    };
    let fast = Duration::from_millis(1);
    match fault {
        None if stream => respond(
            200,
            &sse,
            dripped(vec![ok(chunk(TEXT)), ok(stop_chunk())], fast, false),
        ),
        None => respond(200, &json, Body::from(whole())),
        // The connection's task ends without an answer: the connection closes (quietly:
        // `resume_unwind` skips the panic message).
        Some(Fault::ResetBeforeHeaders) => std::panic::resume_unwind(Box::new("reset")),
        Some(Fault::ResetMidBody) if stream => respond(
            200,
            &sse,
            dripped(vec![ok(chunk("half")), cut()], fast, false),
        ),
        Some(Fault::ResetMidBody) => {
            let w = whole();
            respond(
                200,
                &json,
                dripped(vec![ok(w[..w.len() / 2].to_string()), cut()], fast, false),
            )
        }
        Some(Fault::StallBeforeHeaders) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            respond(200, &json, Body::from(whole()))
        }
        Some(Fault::StallMidStream) if stream => {
            respond(200, &sse, dripped(vec![ok(chunk("half"))], fast, true))
        }
        Some(Fault::StallMidStream) => {
            let w = whole();
            respond(
                200,
                &json,
                dripped(vec![ok(w[..10].to_string())], fast, true),
            )
        }
        Some(Fault::MalformedJson) if stream => respond(
            200,
            &sse,
            dripped(
                vec![ok("data: {not json\n\n".into()), ok(stop_chunk())],
                fast,
                false,
            ),
        ),
        Some(Fault::MalformedJson) => respond(200, &json, Body::from("{not json")),
        Some(Fault::MalformedSse) => respond(
            200,
            &sse,
            dripped(
                vec![
                    ok(chunk("a")),
                    ok("data: [1, 2\n\n".into()),
                    ok(stop_chunk()),
                ],
                fast,
                false,
            ),
        ),
        Some(Fault::WrongContentType) => respond(
            200,
            &[("content-type", "text/html")],
            Body::from("<html>maintenance</html>"),
        ),
        Some(Fault::RateLimitedWithRetryAfter) => respond(
            429,
            &[("content-type", "application/json"), ("retry-after", "1")],
            Body::from(error_body(429)),
        ),
        Some(Fault::RateLimited) => respond(429, &json, Body::from(error_body(429))),
        Some(Fault::ServerErrorBurst) => {
            // 504, 502, 503 in turn (statuses `retry.retryable_status_codes` has).
            let f = up.faults.lock().unwrap();
            let done = f.iter().filter(|x| **x == Fault::ServerErrorBurst).count();
            let status = [503, 502, 504][done.min(2)];
            respond(status, &json, Body::from(error_body(status)))
        }
        Some(Fault::SlowDrip) if stream => {
            let mut pieces: Chunks = Vec::new();
            let all = format!("{}{}", chunk(TEXT), stop_chunk());
            for c in all.as_bytes().chunks(7) {
                pieces.push(Ok(Bytes::copy_from_slice(c)));
            }
            respond(200, &sse, dripped(pieces, Duration::from_millis(2), false))
        }
        Some(Fault::SlowDrip) => {
            let pieces: Chunks = whole()
                .as_bytes()
                .chunks(7)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            respond(200, &json, dripped(pieces, Duration::from_millis(2), false))
        }
        Some(Fault::OversizedEvent) if stream => {
            let big = "x".repeat(8 << 10);
            respond(
                200,
                &sse,
                dripped(
                    vec![ok(chunk("a")), ok(chunk(&big)), ok(stop_chunk())],
                    fast,
                    false,
                ),
            )
        }
        Some(Fault::OversizedEvent) => {
            // Not a stream: a long whole reply, passed through (or translated) as it is.
            let mut w = whole();
            w.insert_str(
                w.len() - 1,
                &format!(",\"padding\":\"{}\"", "x".repeat(3 << 20)),
            );
            respond(200, &json, Body::from(w))
        }
    }
}

/// Starts the backend (its own accept loop, so a handler's panic closes its connection).
async fn start_upstream(up: Arc<Upstream>) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post({
            let up = up.clone();
            move |body: Bytes| answer(up.clone(), body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = hyper_util::service::TowerToHyperService::new(app);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = service.clone();
            tokio::spawn(async move {
                // One request per connection: the router keeps no idle connection to it,
                // so the router's task count is exact between requests.
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Which client, and whether it streams.
#[derive(Clone, Copy, Debug)]
struct Client {
    anthropic: bool,
    stream: bool,
}

fn request(c: Client) -> (&'static str, String) {
    if c.anthropic {
        (
            "/v1/messages",
            format!(
                r#"{{"model":"m","max_tokens":50,"stream":{},"messages":[{{"role":"user","content":"hi"}}]}}"#,
                c.stream
            ),
        )
    } else {
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"m","stream":{},"messages":[{{"role":"user","content":"hi"}}]}}"#,
                c.stream
            ),
        )
    }
}

/// The documented outcome of `fault` for client `c` (docs/RELIABILITY.md): `persistent`
/// when every attempt meets the fault, else only the first (the first three for a burst).
fn expected(fault: Fault, c: Client, persistent: bool) -> Outcome {
    use Fault::*;
    use Outcome::*;
    match fault {
        // After the first streamed byte nothing is retried: the stream ends with an error.
        ResetMidBody | StallMidStream if c.stream => StreamError,
        // A reply that stalls uses up the request's one deadline (retries share it).
        StallMidStream => Status(504),
        // A Retry-After (1 s) longer than what is left of the request's deadline (800 ms
        // unstreamed, 2 s streamed here) is not waited out: the 429 goes to the client.
        RateLimitedWithRetryAfter if !c.stream => Status(429),
        // Before the response is committed, a failed attempt is retried.
        ResetBeforeHeaders
        | ResetMidBody
        | StallBeforeHeaders
        | RateLimitedWithRetryAfter
        | RateLimited
        | ServerErrorBurst
            if !persistent =>
        {
            Answer
        }
        ResetBeforeHeaders | ResetMidBody => Status(502),
        StallBeforeHeaders => Status(504),
        RateLimitedWithRetryAfter | RateLimited => Status(429),
        // Anthropic's clients know an overloaded backend as 529 overloaded_error.
        ServerErrorBurst if c.anthropic => Status(529),
        ServerErrorBurst => Status(503),
        SlowDrip => Answer,
        // OpenAI clients of an OpenAI backend get its bytes as sent (passthrough never
        // parses); an Anthropic client's translation refuses them.
        MalformedJson | MalformedSse | WrongContentType if !c.anthropic => Passed,
        MalformedJson | MalformedSse | WrongContentType if c.stream => StreamError,
        MalformedJson | MalformedSse | WrongContentType => Status(502),
        OversizedEvent if c.stream => StreamError,
        OversizedEvent => Answer,
    }
}

async fn check(addr: std::net::SocketAddr, fault: Fault, c: Client, outcome: Outcome) {
    let (path, body) = request(c);
    let r = send(
        http::Method::POST,
        format!("http://{addr}{path}"),
        body,
        &[],
    )
    .await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let what = format!(
        "{fault:?} {c:?} {outcome:?}: {} {}",
        r.status,
        &text[..text.len().min(3000)]
    );
    match outcome {
        Outcome::Answer => {
            assert_eq!(r.status, 200, "{what}");
            assert!(text.contains(TEXT) || text.contains("padding"), "{what}");
            assert!(!text.contains("\"error\""), "{what}");
        }
        Outcome::Passed => assert_eq!(r.status, 200, "{what}"),
        Outcome::Status(s) => {
            assert_eq!(r.status, s, "{what}");
            if s == 429 {
                let after: u64 = r.header("retry-after").parse().unwrap_or(0);
                assert!(after >= 1, "a 429 without an integer Retry-After: {what}");
            }
            let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{what}"));
            if c.anthropic {
                assert_eq!(v["type"], "error", "{what}");
                assert!(v["error"]["type"].is_string(), "{what}");
            } else {
                assert!(v["error"]["message"].is_string(), "{what}");
            }
        }
        Outcome::StreamError => {
            assert_eq!(r.status, 200, "{what}");
            if c.anthropic {
                let event = text.split("event: error\ndata: ").nth(1).unwrap_or("");
                let data: Value = serde_json::from_str(event.lines().next().unwrap_or(""))
                    .unwrap_or_else(|_| panic!("no Anthropic error event: {what}"));
                assert_eq!(data["type"], "error", "{what}");
                assert!(!text.contains("message_stop"), "{what}");
            } else {
                assert!(text.contains("data: {\"error\":"), "{what}");
                assert!(!text.contains("[DONE]"), "{what}");
            }
        }
    }
}

/// A gauge of the router's `/metrics`.
async fn gauge(addr: std::net::SocketAddr, name: &str) -> f64 {
    let m = get_path(addr, "/metrics").await;
    let text = String::from_utf8_lossy(&m.body).into_owned();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// `name` once it is at most `limit` (checked for 5 s, 15 s for memory); its last value.
async fn settled(addr: std::net::SocketAddr, name: &str, limit: f64) -> f64 {
    // Freed memory goes back on the workers' 5 s heartbeat: wait for up to three of them.
    let tries = if name == "process_resident_memory_bytes" {
        300
    } else {
        100
    };
    let mut last = f64::NAN;
    for _ in 0..tries {
        last = gauge(addr, name).await;
        if last <= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

/// The router's resident memory may grow this much over its baseline (allocator pages
/// kept for reuse); a leaked stream buffer or task per case would pass it within a few
/// dozen cases.
const RSS_SLACK: f64 = 8.0 * 1024.0 * 1024.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_for_every_client_has_its_documented_outcome() {
    let up = Arc::new(Upstream {
        faults: Mutex::new(Vec::new()),
    });
    let upstream = start_upstream(up.clone()).await;
    let dir = temp_dir("fault-matrix");
    let config = dir.join("c.yaml");
    std::fs::write(&config, format!(
        "server:\n  max_stream_event_size: 4KB\n  workers: 2\ntimeouts:\n  request:\n    standard: {{first_byte: 400ms, total: 800ms}}\n    streaming: {{first_byte: 400ms, chunk_interval: 300ms, total: 2s}}\nretry: {{max_attempts: {ATTEMPTS}, initial_delay: 1ms, max_delay: 1500ms, jitter: false}}\ncircuit_breaker: {{enabled: false}}\nhealth_checks: {{enabled: false}}\nbackends:\n  - {{name: flaky, url: 'http://{upstream}', models: [m]}}\n"
    )).unwrap();
    // A process of its own, so its memory and tasks are the router's alone.
    let router = ServeProcess::start(
        bin()
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(&config),
        1,
    );
    let addr = router.tcp_addr();
    // The baseline: after every kind of request has been served once.
    for anthropic in [false, true] {
        for stream in [false, true] {
            check(
                addr,
                Fault::SlowDrip,
                Client { anthropic, stream },
                Outcome::Answer,
            )
            .await;
        }
    }
    let tasks = settled(addr, "continuum_runtime_alive_tasks", 0.0).await;
    let tasks = settled(addr, "continuum_runtime_alive_tasks", tasks).await;
    let rss = gauge(addr, "process_resident_memory_bytes").await;
    let mut peak = rss;
    let faults = [
        Fault::ResetBeforeHeaders,
        Fault::ResetMidBody,
        Fault::StallBeforeHeaders,
        Fault::StallMidStream,
        Fault::MalformedJson,
        Fault::MalformedSse,
        Fault::WrongContentType,
        Fault::RateLimitedWithRetryAfter,
        Fault::RateLimited,
        Fault::ServerErrorBurst,
        Fault::SlowDrip,
        Fault::OversizedEvent,
    ];
    for (fault, persistent) in faults.iter().flat_map(|f| [(*f, false), (*f, true)]) {
        for anthropic in [false, true] {
            for stream in [false, true] {
                let c = Client { anthropic, stream };
                let injected = match (persistent, fault) {
                    (true, _) => ATTEMPTS,
                    (false, Fault::ServerErrorBurst) => 3,
                    (false, _) => 1,
                };
                *up.faults.lock().unwrap() = vec![fault; injected];
                check(addr, fault, c, expected(fault, c, persistent)).await;
                up.faults.lock().unwrap().clear();
                assert_eq!(
                    settled(addr, "continuum_in_flight_requests", 0.0).await,
                    0.0,
                    "{fault:?} {c:?}: requests left in flight"
                );
                let now = settled(addr, "continuum_runtime_alive_tasks", tasks).await;
                assert_eq!(now, tasks, "{fault:?} {c:?}: tasks left behind");
                let now = settled(addr, "process_resident_memory_bytes", rss + RSS_SLACK).await;
                assert!(
                    now <= rss + RSS_SLACK,
                    "{fault:?} {c:?}: RSS {now} over baseline {rss}"
                );
                peak = peak.max(now);
                // The next request is served normally.
                check(addr, fault, c, Outcome::Answer).await;
            }
        }
    }
    let after = settled(addr, "process_resident_memory_bytes", rss + RSS_SLACK).await;
    let mib = |b: f64| b / 1048576.0;
    eprintln!(
        "fault matrix: router RSS baseline {:.1} MiB, highest after a case {:.1} MiB, at the end {:.1} MiB; {tasks} tasks alive between requests",
        mib(rss),
        mib(peak),
        mib(after)
    );
}
