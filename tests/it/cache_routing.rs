//! The load- and cache-aware strategies against backends that behave like vLLM: each keeps
//! the prompts it was sent (its "KV cache") and reports, per reply, how much of the prompt
//! it found there (`usage.prompt_tokens_details.cached_tokens`), and its queue on
//! `/metrics`; a llama.cpp without `--metrics` is read through `/slots`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{json, Value};

use crate::common::*;

/// One simulated model server.
#[derive(Default)]
struct Server {
    /// Prompts it was sent (its cache).
    seen: Mutex<Vec<String>>,
    /// What its `/metrics` reports as waiting.
    waiting: AtomicU32,
    /// Streams are held open until this is notified.
    release: tokio::sync::Notify,
    /// Requests it served.
    served: AtomicU32,
}

/// A prompt's "tokens": 4 bytes each.
fn tokens(bytes: usize) -> u64 {
    (bytes / 4) as u64
}

async fn chat(server: Arc<Server>, body: Bytes) -> axum::response::Response {
    server.served.fetch_add(1, Ordering::Relaxed);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let prompt = v["messages"].to_string();
    let cached = {
        let mut seen = server.seen.lock().unwrap();
        let best = seen
            .iter()
            .map(|p| {
                p.bytes()
                    .zip(prompt.bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .max()
            .unwrap_or(0);
        seen.push(prompt.clone());
        best
    };
    if v["stream"] == true {
        // Held open (in flight) until released.
        let first = Bytes::from(
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
        );
        let stream = futures_util::stream::unfold((server, Some(first)), |(s, next)| async move {
            match next {
                Some(b) => Some((Ok::<_, std::convert::Infallible>(b), (s, None))),
                None => {
                    s.release.notified().await;
                    None
                }
            }
        });
        return axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    axum::Json(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": tokens(prompt.len()),
            "completion_tokens": 1,
            "total_tokens": tokens(prompt.len()) + 1,
            "prompt_tokens_details": {"cached_tokens": tokens(cached)}
        }
    }))
    .into_response()
}

async fn vllm(server: Arc<Server>) -> std::net::SocketAddr {
    let s = server.clone();
    let m = server.clone();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(move |b: Bytes| chat(s.clone(), b)))
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    format!(
                        "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{{engine=\"0\",model_name=\"m\"}} 0.0\n# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{{engine=\"0\",model_name=\"m\"}} {}.0\nvllm:kv_cache_usage_perc{{engine=\"0\",model_name=\"m\"}} 0.5\n",
                        m.waiting.load(Ordering::Relaxed)
                    )
                }
            }),
        );
    spawn_upstream(app).await
}

/// Starts `servers` and returns their `backends:` entries (`v0`, `v1`, …).
async fn fleet(servers: &[Arc<Server>]) -> String {
    let mut backends = String::new();
    for (i, s) in servers.iter().enumerate() {
        let addr = vllm(s.clone()).await;
        backends.push_str(&format!(
            "  - {{name: v{i}, type: vllm, url: \"http://{addr}\", models: [m]}}\n"
        ));
    }
    backends
}

async fn admin_backends(addr: std::net::SocketAddr) -> Vec<Value> {
    let r = get_path(addr, "/admin/backends").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["backends"].as_array().cloned().unwrap_or_default()
}

/// The conversation so far for `session`: a long system prompt of its group, then turns.
fn conversation(group: usize, session: usize, turns: usize) -> String {
    let system = format!("You are helper number {group}. Follow rule {group}. ").repeat(60);
    let mut messages = vec![json!({"role": "system", "content": system})];
    for t in 0..turns {
        messages.push(json!({"role": "user", "content": format!("Session {session} question {t}: tell me more.")}));
        if t + 1 < turns {
            messages.push(json!({"role": "assistant", "content": "ok"}));
        }
    }
    json!({"model": "m", "messages": messages}).to_string()
}

async fn ask(addr: std::net::SocketAddr, body: String) -> (String, String) {
    let r = send(
        http::Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        body,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    (
        r.header("x-continuum-backend").to_string(),
        r.header("x-continuum-route-reason").to_string(),
    )
}

const ADMIN: &str = "admin:\n  auth: {method: ip_whitelist, allowed_ips: [\"127.0.0.0/8\"]}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aware_keeps_each_session_on_its_cache_and_reports_the_hits() {
    let servers: Vec<Arc<Server>> = (0..3).map(|_| Arc::default()).collect();
    let backends = fleet(&servers).await;
    let router = start_router(&format!(
        "{ADMIN}server: {{expose_backend_header: true}}\nselection_strategy: CacheAware\nhealth_checks: {{enabled: false}}\nbackends:\n{backends}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    // Three sessions on three system prompts, three turns each, one after another.
    let mut homes = Vec::new();
    for session in 0..3 {
        let (home, reason) = ask(addr, conversation(session, session, 1)).await;
        assert!(reason.starts_with("least-loaded;"), "{reason}");
        for turn in 2..=3 {
            let (b, reason) = ask(addr, conversation(session, session, turn)).await;
            assert_eq!(b, home, "session {session} turn {turn} left its cache");
            assert!(
                reason.starts_with("cache-match; matched_bytes="),
                "{reason}"
            );
        }
        homes.push(home);
    }
    let mut distinct = homes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "new prompts spread over the idle backends: {homes:?}"
    );
    // A new session on session 0's system prompt goes where that prompt is cached.
    let (b, reason) = ask(addr, conversation(0, 9, 1)).await;
    assert_eq!(b, homes[0]);
    assert!(reason.starts_with("cache-match;"), "{reason}");
    // So does session 1's conversation sent by an Anthropic client (the system prompt a
    // field, the content in blocks): the server caches the same text.
    let first: Value = serde_json::from_str(&conversation(1, 1, 1)).unwrap();
    let anthropic = json!({
        "model": "m",
        "max_tokens": 10,
        "system": first["messages"][0]["content"],
        "messages": [{"role": "user", "content": [{"type": "text", "text": first["messages"][1]["content"]}]}],
    });
    let r = send(
        http::Method::POST,
        format!("http://{addr}/v1/messages"),
        anthropic.to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), homes[1]);
    let reason = r.header("x-continuum-route-reason");
    assert!(reason.starts_with("cache-match;"), "{reason}");

    // Hits are counted per backend from the replies' usage.
    for b in admin_backends(addr).await {
        let (prompt, cached) = (
            b["prompt_tokens"].as_u64().unwrap(),
            b["cached_prompt_tokens"].as_u64().unwrap(),
        );
        assert!(prompt > 0 && cached > prompt / 2, "{b}");
        assert!(b["cache_hit_ratio"].as_f64().unwrap() > 0.5, "{b}");
        assert!(b["prefix_nodes"].as_u64().unwrap() > 0, "{b}");
        // Its /metrics was read: vLLM's gauges, KV usage included.
        let load = &b["server_load"];
        if !load.is_null() {
            assert_eq!(load["kv_cache_usage"], 0.5, "{b}");
        }
    }
    let m = get_path(addr, "/metrics").await.text();
    assert!(
        m.contains(&format!(
            "continuum_backend_prompt_tokens_total{{backend=\"{}\",cache=\"hit\"}}",
            homes[0]
        )),
        "{m}"
    );
    let stats = get_path(addr, "/admin/stats").await.json();
    let rows = stats["prompt_cache"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{stats}");
    assert!(
        rows.iter()
            .all(|r| r["cache_hit_ratio"].as_f64().unwrap() > 0.5),
        "{stats}"
    );
}

/// Waits until the router has read `waiting` from backend `name`'s `/metrics`.
async fn until_scraped(addr: std::net::SocketAddr, name: &str, waiting: u32) {
    for _ in 0..200 {
        let list = admin_backends(addr).await;
        let b = list.iter().find(|b| b["name"] == name).unwrap();
        if b["server_load"]["waiting"].as_u64() == Some(u64::from(waiting)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the router never read waiting={waiting} from {name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_whose_server_reports_a_deep_queue_is_passed_over() {
    let servers: Vec<Arc<Server>> = (0..2).map(|_| Arc::default()).collect();
    let backends = fleet(&servers).await;
    let router = start_router(&format!(
        "{ADMIN}server: {{expose_backend_header: true}}\nselection_strategy: CacheAware\nrouting: {{load_signals: {{interval: 100ms}}}}\nhealth_checks: {{enabled: false}}\nbackends:\n{backends}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let (home, _) = ask(addr, conversation(0, 0, 1)).await;
    let (b, _) = ask(addr, conversation(0, 0, 2)).await;
    assert_eq!(b, home);
    // Its server queues 3 requests from other clients: over the load bound and
    // balance_abs_threshold, but within twice the latter, so the conversation keeps its
    // history there.
    let i: usize = home[1..].parse().unwrap();
    servers[i].waiting.store(3, Ordering::Relaxed);
    until_scraped(addr, &home, 3).await;
    let (b, reason) = ask(addr, conversation(0, 0, 3)).await;
    assert_eq!(b, home);
    assert!(
        reason.starts_with("history-kept; matched_bytes="),
        "{reason}"
    );
    assert!(reason.ends_with("; load=3; bound=3"), "{reason}");
    // Now 8: passed over.
    servers[i].waiting.store(8, Ordering::Relaxed);
    until_scraped(addr, &home, 8).await;
    let (b, reason) = ask(addr, conversation(0, 0, 4)).await;
    assert_ne!(b, home, "the deep queue was not passed over");
    assert!(reason.starts_with("least-loaded; load=0"), "{reason}");
    // The queue drains: the session's longest prefix is now on the other backend, which
    // keeps it.
    servers[i].waiting.store(0, Ordering::Relaxed);
    until_scraped(addr, &home, 0).await;
    let m = get_path(addr, "/metrics").await.text();
    assert!(
        m.contains(&format!(
            "continuum_backend_server_requests{{backend=\"{home}\",state=\"waiting\"}} 0"
        )),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_load_hash_moves_a_hot_prefix_off_a_full_backend() {
    let servers: Vec<Arc<Server>> = (0..2).map(|_| Arc::default()).collect();
    let backends = fleet(&servers).await;
    let router = start_router(&format!(
        "server: {{expose_backend_header: true}}\nselection_strategy: BoundedLoadHash\nhealth_checks: {{enabled: false}}\nbackends:\n{backends}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    // Six streams on one prompt prefix, all held open: PrefixAwareHash would put all six
    // on one backend; bounded by ⌈1.25 · (m + 1) / 2⌉ they split 4 and 2.
    let mut body: Value = serde_json::from_str(&conversation(0, 0, 1)).unwrap();
    body["stream"] = json!(true);
    let client = continuum::backend::build_client(8, Duration::from_secs(5));
    let mut open = Vec::new();
    let mut reasons = Vec::new();
    for _ in 0..6 {
        let mut req = http::Request::new(http_body_util::Full::new(Bytes::from(body.to_string())));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = format!("http://{addr}/v1/chat/completions")
            .parse()
            .unwrap();
        req.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        reasons.push(
            resp.headers()["x-continuum-route-reason"]
                .to_str()
                .unwrap()
                .to_string(),
        );
        open.push(resp);
    }
    let served: Vec<u32> = servers
        .iter()
        .map(|s| s.served.load(Ordering::Relaxed))
        .collect();
    let mut sorted = served.clone();
    sorted.sort();
    assert_eq!(sorted, [2, 4], "{served:?} {reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("bounded-load; skipped=1")),
        "{reasons:?}"
    );
    for s in &servers {
        s.release.notify_waiters();
    }
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_without_metrics_is_read_through_its_slots() {
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    http::StatusCode::NOT_IMPLEMENTED,
                    axum::Json(json!({"error": {"code": 501, "message": "This server does not support metrics endpoint. Start it with `--metrics`", "type": "not_supported_error"}})),
                )
            }),
        )
        .route(
            "/slots",
            get(|| async {
                axum::Json(json!([
                    {"id": 0, "n_ctx": 2048, "speculative": false, "is_processing": true},
                    {"id": 1, "n_ctx": 2048, "speculative": false, "is_processing": true},
                    {"id": 2, "n_ctx": 2048, "speculative": false, "is_processing": false}
                ]))
            }),
        );
    let up = spawn_upstream(app).await;
    let router = start_router(&format!(
        "{ADMIN}selection_strategy: CacheAware\nrouting: {{load_signals: {{interval: 100ms}}}}\nhealth_checks: {{enabled: false}}\nbackends:\n  - {{name: llama, type: llamacpp, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    for _ in 0..200 {
        let list = admin_backends(addr).await;
        if list[0]["server_load"]["running"] == 2 {
            assert_eq!(list[0]["load"], 2);
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the router never read llama.cpp's /slots");
}
