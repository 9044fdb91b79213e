//! `reasoning_effort` normalised per backend, and said when clamped or dropped.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// An upstream that records request bodies and answers in OpenAI's or Anthropic's shape.
fn recorder(seen: Arc<Mutex<Vec<Value>>>) -> axum::Router {
    let chat = {
        let seen = seen.clone();
        move |body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                axum::Json(json!({"id": "c", "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
            }
        }
    };
    let messages = move |body: Bytes| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            axum::Json(
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 1, "output_tokens": 1}}),
            )
        }
    };
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
}

#[tokio::test]
async fn reasoning_effort_is_normalised_per_backend_and_clamps_are_said() {
    let seen: Arc<Mutex<Vec<Value>>> = Default::default();
    let up = spawn_upstream(recorder(seen.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: oa, type: openai, url: \"http://{up}\", api_key: k, models: [o3-mini, gpt-4o]}}\n  - {{name: an, type: anthropic, url: \"http://{up}\", api_key: k, models: [claude-x]}}\n  - {{name: local, type: vllm, url: \"http://{up}\", models: [qwen3]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let last = || seen.lock().unwrap().last().unwrap().clone();

    // o-series: xhigh is clamped to high, and the response says so.
    let r = chat(addr, r#"{"model":"o3-mini","reasoning_effort":"xhigh","messages":[{"role":"user","content":"think"}]}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("x-continuum-reasoning-effort"),
        "requested=xhigh; applied=high"
    );
    assert_eq!(last()["reasoning_effort"], "high");

    // A model without reasoning: dropped, and said.
    let r = chat(addr, r#"{"model":"gpt-4o","reasoning":{"effort":"low"},"messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(
        r.header("x-continuum-reasoning-effort"),
        "requested=low; applied=none"
    );
    assert!(
        last().get("reasoning_effort").is_none() && last().get("reasoning").is_none(),
        "{}",
        last()
    );

    // Anthropic: a thinking budget, max_tokens raised above it, no header (nothing clamped).
    let r = chat(addr, r#"{"model":"claude-x","max_tokens":1000,"temperature":0.5,"reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.headers.get("x-continuum-reasoning-effort").is_none());
    let sent = last();
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert!(sent["max_tokens"].as_u64().unwrap() > 16384);
    assert!(sent.get("temperature").is_none());

    // An Anthropic client's thinking budget reaches an OpenAI-compatible server as a level.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"qwen3","max_tokens":3000,"thinking":{"type":"enabled","budget_tokens":2000},"messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(last()["reasoning_effort"], "low");
}
