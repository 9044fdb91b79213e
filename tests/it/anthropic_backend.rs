//! `type: anthropic` backends: OpenAI clients are translated; Anthropic clients pass
//! through byte for byte (prompt caching, thinking and `anthropic-beta` included). The
//! upstream answers with the shapes of Anthropic's API documentation.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

const REPLY: &str = r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503}}"#;

const EVENTS: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

#[derive(Default)]
struct Seen {
    bodies: Vec<Bytes>,
    headers: Vec<HeaderMap>,
}

fn anthropic_upstream(seen: Arc<Mutex<Seen>>) -> axum::Router {
    axum::Router::new()
        .route("/v1/models", get(|| async { axum::Json(json!({"data": [{"id": "claude-sonnet-4-5", "type": "model"}], "has_more": false})) }))
        .route(
            "/v1/messages",
            post(move |headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    {
                        let mut s = seen.lock().unwrap();
                        s.bodies.push(body);
                        s.headers.push(headers.clone());
                    }
                    if headers.get("x-api-key").map(|k| k.as_bytes()) != Some(b"sk-ant-test") {
                        return (StatusCode::UNAUTHORIZED, [("content-type", "application/json")], Body::from(r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#));
                    }
                    if v["max_tokens"].as_u64().unwrap_or(0) > 100_000 {
                        return (StatusCode::BAD_REQUEST, [("content-type", "application/json")], Body::from(r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#));
                    }
                    if v["stream"] == json!(true) {
                        let chunks: Vec<Result<Bytes, Infallible>> = EVENTS.split_inclusive("\n\n").map(|e| Ok(Bytes::from(e.to_string()))).collect();
                        return (StatusCode::OK, [("content-type", "text/event-stream")], Body::from_stream(futures_util::stream::iter(chunks)));
                    }
                    (StatusCode::OK, [("content-type", "application/json")], Body::from(REPLY))
                }
            }),
        )
}

async fn setup() -> (continuum::RunningRouter, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Default::default();
    let up = spawn_upstream(anthropic_upstream(seen.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: claude, type: anthropic, url: \"http://{up}\", api_key: sk-ant-test, model_aliases: {{sonnet: claude-sonnet-4-5}}}}\n"
    ))
    .await;
    (router, seen)
}

#[tokio::test]
async fn openai_clients_are_translated_to_anthropic() {
    let (router, seen) = setup().await;
    let addr = router.tcp_addr().unwrap();
    // Models were discovered from GET /v1/models.
    assert_eq!(
        get_path(addr, "/v1/models").await.json()["data"][0]["id"],
        "claude-sonnet-4-5"
    );

    let r = chat(addr, r#"{"model":"sonnet","max_tokens":50,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}]}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hi! My name is Claude."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 2095);
    let sent: Value = serde_json::from_slice(seen.lock().unwrap().bodies.last().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]})
    );
    assert_eq!(
        seen.lock().unwrap().headers.last().unwrap()["anthropic-version"],
        "2023-06-01"
    );

    let r = chat(addr, r#"{"model":"claude-sonnet-4-5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello"}]}"#).await;
    assert_eq!(r.header("content-type"), "text/event-stream");
    let text = r.text();
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello!");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 15);
    assert!(text.ends_with("data: [DONE]\n\n"));

    // Anthropic's errors come back in OpenAI's shape with their message.
    let r = chat(addr, r#"{"model":"claude-sonnet-4-5","max_tokens":200000,"messages":[{"role":"user","content":"x"}]}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"]["message"], "max_tokens: too large");
}

#[tokio::test]
async fn anthropic_clients_pass_through_byte_for_byte() {
    let (router, seen) = setup().await;
    let addr = router.tcp_addr().unwrap();
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],"thinking":{"type":"enabled","budget_tokens":2048},"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}"#;
    let url = format!("http://{addr}/v1/messages");
    let beta = [(
        "anthropic-beta",
        "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
    )];
    let r = send(Method::POST, url.clone(), body, &beta).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.text(),
        REPLY,
        "the reply passes through as the backend sent it"
    );
    assert_eq!(r.header("x-continuum-backend"), "claude");
    {
        let s = seen.lock().unwrap();
        assert_eq!(
            &s.bodies.last().unwrap()[..],
            body.as_bytes(),
            "the request passes through byte for byte"
        );
        assert_eq!(s.headers.last().unwrap()["anthropic-beta"], beta[0].1);
    }

    // An alias is spliced into the original bytes; streams pass through untouched.
    let aliased = body.replace("claude-sonnet-4-5", "sonnet").replace(
        "\"max_tokens\":1024,",
        "\"max_tokens\":1024,\"stream\":true,",
    );
    let r = send(Method::POST, url, aliased.clone(), &[]).await;
    assert_eq!(r.text(), EVENTS);
    let sent = seen.lock().unwrap().bodies.last().unwrap().clone();
    assert_eq!(
        String::from_utf8(sent.to_vec()).unwrap(),
        aliased.replace("\"sonnet\"", "\"claude-sonnet-4-5\"")
    );
}
