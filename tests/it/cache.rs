//! The response cache: identical deterministic non-streamed requests are answered once
//! per tenant, in memory or in a Redis two routers share; other requests pass by it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use http::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

/// An OpenAI-compatible upstream counting its requests; each answer names its number.
fn counting(count: Arc<AtomicUsize>) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let count = count.clone();
            async move {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                axum::Json(json!({"id": format!("c{n}"), "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer {n}")}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}))
            }
        }),
    )
}

async fn post_as(addr: std::net::SocketAddr, path: &str, body: &str, key: Option<&str>) -> Reply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let r = send(
        Method::POST,
        format!("http://{addr}{path}"),
        body.to_string(),
        &headers,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r
}

#[tokio::test]
async fn deterministic_requests_are_answered_once_per_tenant() {
    let count = Arc::new(AtomicUsize::new(0));
    let up = spawn_upstream(counting(count.clone())).await;
    let router = start_router(&format!(
        "cache: {{enabled: true, ttl: 10m, max_entries: 100}}\napi_keys:\n  api_keys:\n    - {{key: sk-a, id: a, organization_id: org-1}}\n    - {{key: sk-b, id: b, organization_id: org-1}}\n    - {{key: sk-c, id: c}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let chat = "/v1/chat/completions";
    let body = r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#;

    let first = post_as(addr, chat, body, None).await;
    assert_eq!(first.header("x-continuum-cache"), "miss");
    let again = post_as(addr, chat, body, None).await;
    assert_eq!(again.header("x-continuum-cache"), "hit");
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("x-continuum-backend"), "up");
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert!(!again.header("x-request-id").is_empty());
    // Key order and spacing do not matter.
    let reordered =
        r#"{ "messages": [{"content": "hi", "role": "user"}], "temperature": 0.0, "model": "m" }"#;
    assert_eq!(
        post_as(addr, chat, reordered, None)
            .await
            .header("x-continuum-cache"),
        "hit"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Keys of one organisation share answers; another tenant does not see them.
    assert_eq!(
        post_as(addr, chat, body, Some("sk-a"))
            .await
            .header("x-continuum-cache"),
        "miss"
    );
    assert_eq!(
        post_as(addr, chat, body, Some("sk-b"))
            .await
            .header("x-continuum-cache"),
        "hit"
    );
    assert_eq!(
        post_as(addr, chat, body, Some("sk-c"))
            .await
            .header("x-continuum-cache"),
        "miss"
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);

    // Sampled and streamed requests pass by the cache.
    let sampled = r#"{"model":"m","temperature":0.8,"messages":[{"role":"user","content":"hi"}]}"#;
    for _ in 0..2 {
        assert_eq!(
            post_as(addr, chat, sampled, None)
                .await
                .header("x-continuum-cache"),
            ""
        );
    }
    let streamed = r#"{"model":"m","temperature":0,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(Method::POST, format!("http://{addr}{chat}"), streamed, &[]).await;
    assert_eq!(r.header("x-continuum-cache"), "");
    assert_eq!(count.load(Ordering::SeqCst), 6);

    // Anthropic clients are cached in their own form.
    let msg = r#"{"model":"m","max_tokens":10,"temperature":0,"messages":[{"role":"user","content":"hi"}]}"#;
    let a = post_as(addr, "/v1/messages", msg, None).await;
    assert_eq!(a.header("x-continuum-cache"), "miss");
    let b = post_as(addr, "/v1/messages", msg, None).await;
    assert_eq!(b.header("x-continuum-cache"), "hit");
    assert_eq!(b.json()["type"], "message");
    assert_eq!(a.body, b.body);
    assert_eq!(count.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn two_routers_share_answers_through_redis_until_the_ttl() {
    let redis = RedisServer::start();
    let count = Arc::new(AtomicUsize::new(0));
    let up = spawn_upstream(counting(count.clone())).await;
    let yaml = format!(
        "cache: {{enabled: true, storage: redis, redis: {{url: \"{}\", key_prefix: \"t{}:\"}}, ttl: 1s, only_deterministic: false}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n",
        redis.url,
        fastrand::u32(..)
    );
    let one = start_router(&yaml).await;
    let two = start_router(&yaml).await;
    let chat = "/v1/chat/completions";
    let body = r#"{"model":"m","messages":[{"role":"user","content":"shared"}]}"#;
    let a = post_as(one.tcp_addr().unwrap(), chat, body, None).await;
    assert_eq!(a.header("x-continuum-cache"), "miss");
    let b = post_as(two.tcp_addr().unwrap(), chat, body, None).await;
    assert_eq!(
        b.header("x-continuum-cache"),
        "hit",
        "the other router's answer"
    );
    assert_eq!(a.body, b.body);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // Redis expires the answer after the TTL.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let c = post_as(two.tcp_addr().unwrap(), chat, body, None).await;
    assert_eq!(c.header("x-continuum-cache"), "miss");
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_redis_cache_serves_uncached() {
    let count = Arc::new(AtomicUsize::new(0));
    let up = spawn_upstream(counting(count.clone())).await;
    let router = start_router(&format!(
        "cache: {{enabled: true, storage: redis, redis: {{url: \"redis://127.0.0.1:1\", timeout: 50ms}}, only_deterministic: false}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    for _ in 0..2 {
        let r = post_as(
            router.tcp_addr().unwrap(),
            "/v1/chat/completions",
            body,
            None,
        )
        .await;
        assert_eq!(r.header("x-continuum-cache"), "miss");
    }
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unstored_responses_are_cached_and_stored_ones_never() {
    let count = Arc::new(AtomicUsize::new(0));
    let up = spawn_upstream(counting(count.clone())).await;
    let dir = temp_dir("cache-responses");
    let router = start_router(&format!(
        "cache: {{enabled: true}}\nstore: {{path: \"{}\"}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n",
        dir.join("store.redb").display()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let unstored = r#"{"model":"m","temperature":0,"store":false,"input":"hi"}"#;
    let first = post_as(addr, "/v1/responses", unstored, None).await;
    assert_eq!(first.header("x-continuum-cache"), "miss");
    let again = post_as(addr, "/v1/responses", unstored, None).await;
    assert_eq!(again.header("x-continuum-cache"), "hit");
    assert_eq!(again.body, first.body);
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let stored = r#"{"model":"m","temperature":0,"input":"hi"}"#;
    let a = post_as(addr, "/v1/responses", stored, None).await.json();
    let b = post_as(addr, "/v1/responses", stored, None).await.json();
    assert_ne!(a["id"], b["id"], "each stored response is a new one");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}
