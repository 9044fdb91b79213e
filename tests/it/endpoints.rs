//! `POST /v1/completions` and `POST /v1/embeddings`: routed like chat to OpenAI-compatible
//! backends and passed through; other backend types refuse them by name; embeddings need
//! the `write` or `embeddings` scope.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

fn upstream(seen: Arc<Mutex<Vec<(String, Value)>>>) -> axum::Router {
    let log = |path: &'static str, seen: Arc<Mutex<Vec<(String, Value)>>>| {
        move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push((path.to_string(), v.clone()));
                if path == "/v1/embeddings" {
                    return axum::response::IntoResponse::into_response(axum::Json(json!({
                        "object": "list", "model": v["model"],
                        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]}],
                        "usage": {"prompt_tokens": 2, "total_tokens": 2}})));
                }
                if v["stream"] == true {
                    let text = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\"Hi\",\"index\":0,\"finish_reason\":null}]}\n\ndata: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"text\":\"!\",\"index\":0,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
                    return axum::response::IntoResponse::into_response((
                        [("content-type", "text/event-stream")],
                        text,
                    ));
                }
                axum::response::IntoResponse::into_response(axum::Json(json!({
                    "id": "cmpl-1", "object": "text_completion", "model": v["model"],
                    "choices": [{"text": "Hi!", "index": 0, "finish_reason": "stop", "logprobs": null}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})))
            }
        }
    };
    axum::Router::new()
        .route(
            "/v1/completions",
            post(log("/v1/completions", seen.clone())),
        )
        .route("/v1/embeddings", post(log("/v1/embeddings", seen)))
}

#[tokio::test]
async fn completions_and_embeddings_reach_openai_compatible_backends() {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Default::default();
    let up = spawn_upstream(upstream(seen.clone())).await;
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-chat, id: chat-only, scopes: [chat]}}\n    - {{key: sk-emb, id: emb, scopes: [embeddings]}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [text-model, shared], model_aliases: {{alias: text-model}}}}\n  - {{name: m, type: mock, models: [mock-only, shared], mock: {{first_token_latency: 0ms}}}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let url = |p: &str| format!("http://{addr}{p}");

    let r = send(
        Method::POST,
        url("/v1/completions"),
        r#"{"model":"alias","prompt":"Say hi","max_tokens":4}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["text"], "Hi!");
    assert_eq!(r.header("x-continuum-backend"), "up");
    let (path, sent) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(path, "/v1/completions");
    assert_eq!(sent["model"], "text-model", "the alias is resolved");
    assert_eq!(sent["prompt"], "Say hi");

    let r = send(
        Method::POST,
        url("/v1/completions"),
        r#"{"model":"text-model","prompt":"x","stream":true}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().contains("\"text\":\"Hi\"") && r.text().trim_end().ends_with("[DONE]"),
        "{}",
        r.text()
    );

    let r = send(
        Method::POST,
        url("/v1/embeddings"),
        r#"{"model":"text-model","input":"hello"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["data"][0]["embedding"], json!([0.1, -0.2, 0.3]));
    assert_eq!(seen.lock().unwrap().last().unwrap().0, "/v1/embeddings");

    // A backend type that has no such endpoint is named in the refusal.
    let r = send(
        Method::POST,
        url("/v1/embeddings"),
        r#"{"model":"mock-only","input":"x"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("backend 'm' (type mock) does not serve /v1/embeddings"),
        "{}",
        r.text()
    );
    // Refusals never count against the backend's circuit: chat to it still works.
    for _ in 0..8 {
        let r = send(
            Method::POST,
            url("/v1/embeddings"),
            r#"{"model":"mock-only","input":"x"}"#,
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = chat(
        addr,
        r#"{"model":"mock-only","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A model served by both kinds: embeddings always reach the OpenAI-compatible one.
    for _ in 0..6 {
        let r = send(
            Method::POST,
            url("/v1/embeddings"),
            r#"{"model":"shared","input":"x"}"#,
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("x-continuum-backend"), "up");
    }
    let r = send(
        Method::POST,
        url("/v1/completions"),
        r#"{"prompt":"x"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "model is required");

    // Scopes: `chat` may not embed; `embeddings` may, and may not complete.
    let embed = r#"{"model":"text-model","input":"x"}"#;
    let complete = r#"{"model":"text-model","prompt":"x"}"#;
    for (path, body, key, status) in [
        (
            "/v1/embeddings",
            embed,
            "Bearer sk-chat",
            StatusCode::FORBIDDEN,
        ),
        ("/v1/embeddings", embed, "Bearer sk-emb", StatusCode::OK),
        (
            "/v1/completions",
            complete,
            "Bearer sk-emb",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let r = send(Method::POST, url(path), body, &[("authorization", key)]).await;
        assert_eq!(r.status, status, "{path} with {key}: {}", r.text());
    }

    let metrics = get_path(addr, "/metrics").await.text();
    assert!(metrics.contains("endpoint=\"/v1/embeddings\""), "{metrics}");
}
