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
