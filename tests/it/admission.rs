//! Admission control: `server.max_concurrent_requests` slots, a queue as long, waits of at
//! most `server.queue_timeout`, then 503 with `Retry-After`; a backend's `max_concurrent`;
//! and a flood of 5,000 clients against a stalled backend: bounded memory, 503s beyond the
//! cap, full recovery when the backend comes back.

use std::sync::Arc;

use axum::routing::post;
use http::StatusCode;
use tokio::sync::Semaphore;

use crate::common::*;

const BODY: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

/// An OpenAI-compatible upstream that answers only when the test adds permits to `gate`.
fn stalled(gate: Arc<Semaphore>) -> axum::Router {
    axum::Router::new()
        .route(
            "/v1/models",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"object": "list", "data": [{"id": "m", "object": "model"}]}))
            }),
        )
        .route(
        "/v1/chat/completions",
        post(move || {
            let gate = gate.clone();
            async move {
                gate.acquire().await.unwrap().forget();
                (
                    [("content-type", "application/json")],
                    r#"{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
                )
            }
        }),
    )
}

#[tokio::test]
async fn beyond_the_slots_requests_queue_then_get_503() {
    let gate = Arc::new(Semaphore::new(0));
    let up = spawn_upstream(stalled(gate.clone())).await;
    let router = start_router(&format!(
        "server:\n  max_concurrent_requests: 2\n  queue_timeout: 300ms\nbackends:\n  - {{name: s, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let served: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { chat(addr, BODY).await }))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let queued: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { chat(addr, BODY).await }))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // The queue is full: refused at once.
    let r = chat(addr, BODY).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(r.json()["error"]["code"], "server_overloaded");
    assert!(r.text().contains("queue is full"), "{}", r.text());
    // The queued ones give up after queue_timeout.
    for q in queued {
        let r = q.await.unwrap();
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.text().contains("queue_timeout"), "{}", r.text());
    }
    gate.add_permits(100);
    for s in served {
        assert_eq!(s.await.unwrap().status, StatusCode::OK);
    }
    assert_eq!(
        chat(addr, BODY).await.status,
        StatusCode::OK,
        "slots are given back"
    );
}

#[tokio::test]
async fn a_backend_at_max_concurrent_is_passed_over() {
    let gate = Arc::new(Semaphore::new(0));
    let up = spawn_upstream(stalled(gate.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: one, type: vllm, url: \"http://{up}\", models: [m], max_concurrent: 1}}\n  - {{name: two, type: vllm, url: \"http://{up}\", models: [m], max_concurrent: 1}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let first = tokio::spawn(async move { chat(addr, BODY).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = tokio::spawn(async move { chat(addr, BODY).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = chat(addr, BODY).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.text().contains("max_concurrent"), "{}", r.text());
    gate.add_permits(10);
    let (a, b) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    assert_ne!(
        a.header("x-continuum-backend"),
        b.header("x-continuum-backend")
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

// Multi-threaded: the upstream must answer the router's probes while this thread waits
// for the router process to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_against_a_stalled_backend_stays_bounded_and_recovers() {
    let gate = Arc::new(Semaphore::new(0));
    let up = spawn_upstream(stalled(gate.clone())).await;
    let dir = temp_dir("flood");
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!("server:\n  bind_address: \"127.0.0.1:0\"\n  max_concurrent_requests: 100\n  queue_timeout: 2s\nbackends:\n  - {{name: s, type: vllm, url: \"http://{up}\", models: [m]}}\n"),
    )
    .unwrap();
    let p = ServeProcess::start(bin().args(["serve", "--config"]).arg(&config), 1);
    let addr = p.tcp_addr();
    let pid = p.child.id();
    gate.add_permits(1);
    let r = chat(addr, BODY).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let idle = rss_kib(pid);
    let flood: Vec<_> = (0..5_000)
        .map(|_| tokio::spawn(async move { chat(addr, BODY).await.status }))
        .collect();
    // Let the flood arrive, then look at memory while 200 requests are held.
    let mut peak = 0;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        peak = peak.max(rss_kib(pid));
    }
    gate.add_permits(100_000);
    let mut ok = 0;
    let mut refused = 0;
    for f in flood {
        match f.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    eprintln!("flood: {ok} ok, {refused} refused; RSS idle {idle} KiB, peak {peak} KiB");
    assert!(
        ok >= 100,
        "the requests holding slots are served: {ok} ok, {refused} refused"
    );
    assert!(
        refused >= 4_000,
        "the flood beyond slots and queue is refused: {ok} ok, {refused} refused"
    );
    assert!(
        peak < idle + 100 * 1024,
        "RSS stays bounded: idle {idle} KiB, peak {peak} KiB"
    );
    // Full recovery.
    for _ in 0..5 {
        assert_eq!(chat(addr, BODY).await.status, StatusCode::OK);
    }
}
