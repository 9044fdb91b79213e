//! Usage is made sure of on OpenAI-compatible backends: those that stream usage when asked
//! (OpenAI, vLLM, llama.cpp) are asked on every stream and the extra chunk is dropped for
//! clients that did not ask; for the others the router counts the usage a backend leaves
//! out, and says which tier counted it.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

type Log = Arc<Mutex<Vec<Value>>>;

/// An OpenAI-compatible upstream that sends usage only when asked (`honest`), or never.
fn upstream(log: Log, honest: bool) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move |body: Bytes| {
            let log = log.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap();
                log.lock().unwrap().push(v.clone());
                let wants = honest && v["stream_options"]["include_usage"] == true;
                if v["stream"] == true {
                    let mut text = String::from("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello there, friend\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
                    if wants {
                        text.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,\"total_tokens\":13}}\n\n");
                    }
                    text.push_str("data: [DONE]\n\n");
                    ([("content-type", "text/event-stream")], text)
                } else {
                    let mut reply = json!({"id": "c1", "object": "chat.completion", "model": "m",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there, friend"}, "finish_reason": "stop"}]});
                    if honest {
                        reply["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13});
                    }
                    ([("content-type", "application/json")], reply.to_string())
                }
            }
        }),
    )
}

const STREAM: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"Say hello to my friend please"}]}"#;
const STREAM_WITH_USAGE: &str = r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello to my friend please"}]}"#;

fn data_events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn backends_that_stream_usage_are_asked_and_the_chunk_dropped_unless_wanted() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream(log.clone(), true)).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let r = chat(addr, STREAM).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        log.lock().unwrap()[0]["stream_options"],
        json!({"include_usage": true})
    );
    let events = data_events(&r.text());
    assert_eq!(events.len(), 3, "the usage chunk is dropped: {events:?}");
    assert!(!r.text().contains("\"usage\""), "{}", r.text());

    let r = chat(addr, STREAM_WITH_USAGE).await;
    let events = data_events(&r.text());
    assert_eq!(events.len(), 4, "{events:?}");
    let usage: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 9);

    // Both streams' usage reached the metrics, the dropped chunk's included.
    let m = get_path(addr, "/metrics").await.text();
    assert!(
        m.contains("continuum_tokens_total{model=\"m\",backend=\"v\",direction=\"in\"} 18\n"),
        "{m}"
    );
    assert!(
        m.contains("continuum_tokens_total{model=\"m\",backend=\"v\",direction=\"out\"} 8\n"),
        "{m}"
    );
}

#[tokio::test]
async fn usage_a_backend_leaves_out_is_counted_by_the_router() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream(log.clone(), false)).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: l, type: lmstudio, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    // A stream: the client asked for usage, the backend sent none.
    let r = chat(addr, STREAM_WITH_USAGE).await;
    let events = data_events(&r.text());
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]), "{usage}");
    // "Hello there, friend" is 19 characters: 5 estimated tokens.
    assert_eq!(usage["usage"]["completion_tokens"], 5, "{usage}");
    assert!(
        usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "{usage}"
    );
    assert_eq!(usage["continuum"]["usage"], "estimate=chars/4");

    // A stream without include_usage gets no usage chunk.
    let r = chat(addr, STREAM).await;
    assert!(!r.text().contains("\"usage\""), "{}", r.text());

    // A whole reply without usage gets one.
    let r = chat(
        addr,
        r#"{"model":"m","messages":[{"role":"user","content":"Say hello to my friend please"}]}"#,
    )
    .await;
    let v = r.json();
    assert_eq!(v["usage"]["completion_tokens"], 5, "{v}");
    assert_eq!(v["continuum"]["usage"], "estimate=chars/4");

    // An Anthropic client's stream ends with the counted usage in message_delta.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Say hello to my friend please"}]}"#,
        &[],
    )
    .await;
    let text = r.text();
    let delta = text
        .split("\n\n")
        .find(|e| e.starts_with("event: message_delta"))
        .unwrap_or_else(|| panic!("{text}"));
    let data: Value = serde_json::from_str(
        delta
            .lines()
            .nth(1)
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["usage"]["output_tokens"], 5, "{text}");
    assert!(
        data["usage"]["input_tokens"].as_u64().unwrap() > 0,
        "{text}"
    );
}
