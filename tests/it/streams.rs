//! Streams through the one SSE framer: an event larger than `server.max_stream_event_size`
//! ends the client's stream with an explicit error event in its own protocol (never a clean
//! end, never unbounded buffering), and a large event under the limit passes byte for byte
//! however the backend splits it.

use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::common::*;

/// An OpenAI-compatible upstream streaming one role chunk, then one event whose content is
/// `size` bytes long sent in 4 KB frames, then `[DONE]`.
fn upstream(size: usize) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let head = Bytes::from_static(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
            let mut big = Vec::with_capacity(size + 200);
            big.extend_from_slice(b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
            big.resize(big.len() + size, b'a');
            big.extend_from_slice(b"\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
            let mut frames: Vec<Result<Bytes, std::convert::Infallible>> = vec![Ok(head)];
            frames.extend(big.chunks(4096).map(|c| Ok(Bytes::copy_from_slice(c))));
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(futures_util::stream::iter(frames)),
            )
        }),
    )
}

const CHAT: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const MESSAGES: &str =
    r#"{"model":"m","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn an_oversized_event_ends_the_stream_with_an_error_event() {
    let up = spawn_upstream(upstream(200 << 10)).await;
    let router = start_router(&format!(
        "server: {{max_stream_event_size: 64KB}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        CHAT,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(
        text.starts_with("data: {\"id\":\"c\""),
        "{}",
        &text[..200.min(text.len())]
    );
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("data: {\"error\"") && last.contains("max_stream_event_size"),
        "{last}"
    );
    assert!(!text.contains("[DONE]"));
    assert!(
        text.len() < 64 << 10,
        "the oversized event was not passed on"
    );

    // An Anthropic client on the same backend gets Anthropic's error event.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        MESSAGES,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("max_stream_event_size"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
}

#[tokio::test]
async fn a_large_event_under_the_limit_passes_byte_for_byte() {
    let size = 4 << 20;
    let up = spawn_upstream(upstream(size)).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        CHAT,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "role chunk, the large chunk, [DONE]");
    let expected = format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":\"stop\"}}]}}",
        "a".repeat(size)
    );
    assert!(events[1] == expected, "the large event changed on its way");
    assert_eq!(events[2], "data: [DONE]");

    // Translated for an Anthropic client: the text arrives whole.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        MESSAGES,
        &[],
    )
    .await;
    let text = r.text();
    assert!(
        text.contains("event: message_stop"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    assert!(text.len() > size);
}

/// An Anthropic upstream whose stream breaks after `message_start` and one text delta.
fn breaking_anthropic() -> axum::Router {
    axum::Router::new().route(
        "/v1/messages",
        post(|| async {
            let events = [
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            ];
            let mut frames: Vec<Result<Bytes, std::io::Error>> =
                events.iter().map(|e| Ok(Bytes::from_static(e.as_bytes()))).collect();
            frames.push(Err(std::io::Error::other("backend died")));
            // Each frame a moment after the last, so they leave as separate chunks.
            let paced = futures_util::stream::unfold(frames.into_iter(), |mut it| async move {
                let next = it.next()?;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Some((next, it))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(paced),
            )
        }),
    )
}

#[tokio::test]
async fn a_broken_anthropic_passthrough_stream_ends_with_anthropics_error_event() {
    let up = spawn_upstream(breaking_anthropic()).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: claude, type: anthropic, url: \"http://{up}\", api_key: k, models: [claude-x]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let body = r#"{"model":"claude-x","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        body,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(text.contains("\"text\":\"Hel\""), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let data = last
        .strip_prefix("event: error\ndata: ")
        .unwrap_or_else(|| {
            panic!("the passthrough stream must end with Anthropic's error event: {last}")
        });
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "api_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("broke off"),
        "{v}"
    );
    assert!(!text.contains("message_stop"), "{text}");
    assert!(
        !text.contains("\"code\":\"backend_error\""),
        "no OpenAI-shaped error line: {text}"
    );
}

/// An Ollama upstream sending some content and then Ollama's mid-stream error, all in one
/// frame (one network read).
fn ollama_failing_upstream() -> axum::Router {
    axum::Router::new().route(
        "/api/chat",
        post(|| async {
            let ndjson = concat!(
                r#"{"model":"m","created_at":"2025-10-26T17:21:21.196249Z","message":{"role":"assistant","content":" Yes"},"done":false}"#,
                "\n",
                r#"{"model":"m","created_at":"2025-10-26T17:21:21.207235Z","message":{"role":"assistant","content":"."},"done":false}"#,
                "\n",
                r#"{"error":"an error was encountered while running the model"}"#,
                "\n",
            );
            (
                [("content-type", "application/x-ndjson")],
                Body::from(ndjson),
            )
        }),
    )
}

#[tokio::test]
async fn text_before_an_error_in_the_same_read_reaches_the_client() {
    let up = spawn_upstream(ollama_failing_upstream()).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: up, type: ollama, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        CHAT,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(text.contains(r#""content":" Yes""#), "{text}");
    assert!(text.contains(r#""content":".""#), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("data: {\"error\"")
            && last.contains("an error was encountered while running the model"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");
}
