//! Claude Code conformance: the request shapes Claude Code sends
//! (`tests/fixtures/claude_code/session.json`) replayed through the router onto each backend
//! type. Anthropic backends get the bytes as sent (prompt caching, thinking signatures,
//! `anthropic-beta`); every other type gets a valid translation, and the client always gets
//! a valid Anthropic answer (event order for streams).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Path;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

type Log = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

fn session() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/claude_code/session.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn stream_of(text: String, content_type: &'static str) -> axum::response::Response {
    let s = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from(text))]);
    axum::response::IntoResponse::into_response((
        [("content-type", content_type)],
        Body::from_stream(s),
    ))
}

/// One upstream per backend type, answering in that type's wire format and logging requests.
fn upstream(kind: &'static str, log: Log) -> axum::Router {
    let handler = move |headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((headers, body.clone()));
            let v: Value = serde_json::from_slice(&body).unwrap();
            let stream = v["stream"].as_bool().unwrap_or(kind == "gemini-stream");
            match (kind, stream) {
                ("anthropic", true) => stream_of(concat!(
                    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"cc-model\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
                    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"done\"}}\n\n",
                    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
                    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
                    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n").to_string(), "text/event-stream"),
                ("anthropic", false) if v.get("max_tokens").is_none() => axum::response::IntoResponse::into_response(axum::Json(json!({"input_tokens": 42}))),
                ("anthropic", false) => axum::response::IntoResponse::into_response(axum::Json(json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "cc-model",
                    "content": [{"type": "text", "text": "Files listing"}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 2}}))),
                ("openai", true) => stream_of(
                    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"cc-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"done\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"cc-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"cc-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\ndata: [DONE]\n\n".to_string(),
                    "text/event-stream"),
                ("openai", false) => axum::response::IntoResponse::into_response(axum::Json(json!({"id": "c", "object": "chat.completion", "model": "cc-model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Files listing"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}))),
                ("ollama", true) => stream_of(
                    "{\"model\":\"cc-model\",\"message\":{\"role\":\"assistant\",\"content\":\"done\"},\"done\":false}\n{\"model\":\"cc-model\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":10,\"eval_count\":2}\n".to_string(),
                    "application/x-ndjson"),
                ("ollama", false) => axum::response::IntoResponse::into_response(axum::Json(json!({"model": "cc-model", "message": {"role": "assistant", "content": "Files listing"},
                    "done": true, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 2}))),
                _ => axum::response::IntoResponse::into_response(StatusCode::NOT_IMPLEMENTED),
            }
        }
    };
    match kind {
        "anthropic" => axum::Router::new()
            .route("/v1/messages", post(handler.clone()))
            .route("/v1/messages/count_tokens", post(handler)),
        "openai" => axum::Router::new().route("/v1/chat/completions", post(handler)),
        _ => axum::Router::new().route("/api/chat", post(handler)),
    }
}

/// A Gemini upstream answering with the documentation's fixtures and logging requests
/// (the method, e.g. `cc-model:countTokens`, stands in for the headers).
fn gemini_upstream(log: Log) -> axum::Router {
    let handler = move |Path(call): Path<String>, body: Bytes| {
        let log = log.clone();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("x-call", call.parse().unwrap());
            log.lock().unwrap().push((headers, body));
            match call.split_once(':').map(|(_, m)| m) {
                Some("countTokens") => stream_of(
                    fixture("gemini/count_tokens_response.json"),
                    "application/json",
                ),
                Some("streamGenerateContent") => stream_of(
                    fixture("gemini/function_call_stream.sse"),
                    "text/event-stream",
                ),
                _ => stream_of(
                    fixture("gemini/function_call_response.json"),
                    "application/json",
                ),
            }
        }
    };
    axum::Router::new().route("/v1beta/models/{call}", post(handler))
}

/// Replays the session for `model`; checks every answer is valid Anthropic.
async fn replay(addr: std::net::SocketAddr, model: &str) -> Vec<Bytes> {
    let s = session();
    let headers: Vec<(String, String)> = s["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut sent = Vec::new();
    for step in s["steps"].as_array().unwrap() {
        let body = step["body"].to_string().replace("MODEL", model);
        sent.push(Bytes::from(body.clone()));
        let path = step["path"].as_str().unwrap();
        let r = send(
            Method::POST,
            format!("http://{addr}{path}"),
            body,
            &header_refs,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{path} on {model}: {}", r.text());
        if path.ends_with("count_tokens") {
            assert!(r.json()["input_tokens"].as_u64().unwrap() > 0);
            assert!(!r.header("x-continuum-token-count").is_empty());
        } else if step["body"]["stream"] == json!(true) {
            let text = r.text();
            let names: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("event: "))
                .collect();
            assert_eq!(names.first(), Some(&"message_start"), "{text}");
            assert_eq!(names.last(), Some(&"message_stop"), "{text}");
            assert!(!names.contains(&"error"), "{text}");
        } else {
            let v = r.json();
            assert_eq!(v["type"], "message", "{v}");
            assert_eq!(v["content"][0]["type"], "text");
        }
    }
    sent
}

#[tokio::test]
async fn claude_code_sessions_pass_through_to_anthropic_backends_byte_for_byte() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream("anthropic", log.clone())).await;
    let router = start_router(&format!("backends:\n  - {{name: a, type: anthropic, url: \"http://{up}\", api_key: k, models: [cc-model]}}\n")).await;
    let sent = replay(router.tcp_addr().unwrap(), "cc-model").await;
    let log = log.lock().unwrap();
    assert_eq!(
        log.len(),
        sent.len(),
        "count_tokens is forwarded to Anthropic too"
    );
    let beta = session()["headers"]["anthropic-beta"]
        .as_str()
        .unwrap()
        .to_string();
    for ((headers, body), original) in log.iter().zip(&sent) {
        assert_eq!(body, original, "byte-faithful passthrough");
        assert_eq!(headers["anthropic-beta"], beta.as_str());
        assert_eq!(headers["x-api-key"], "k");
    }
}

#[tokio::test]
async fn claude_code_sessions_are_translated_for_other_backends() {
    for kind in ["openai", "ollama"] {
        let log: Log = Default::default();
        let up = spawn_upstream(upstream(kind, log.clone())).await;
        let backend_type = if kind == "openai" { "vllm" } else { "ollama" };
        let router = start_router(&format!("backends:\n  - {{name: b, type: {backend_type}, url: \"http://{up}\", models: [cc-model]}}\n")).await;
        replay(router.tcp_addr().unwrap(), "cc-model").await;
        let log = log.lock().unwrap();
        assert_eq!(
            log.len(),
            3,
            "{kind}: count_tokens is answered by the router"
        );
        // The tool-use turn: the assistant's tool call and the tool result arrive translated.
        let turn: Value = serde_json::from_slice(&log[1].1).unwrap();
        let messages = turn["messages"].as_array().unwrap();
        assert_eq!(messages[0]["role"], "system", "{kind}: {turn}");
        assert!(
            turn["tools"].as_array().is_some_and(|t| !t.is_empty()),
            "{kind}: {turn}"
        );
        let assistant = messages.iter().find(|m| m["role"] == "assistant").unwrap();
        assert_eq!(
            assistant["tool_calls"][0]["function"]["name"], "Bash",
            "{kind}: {turn}"
        );
        let tool = messages.iter().find(|m| m["role"] == "tool").unwrap();
        assert_eq!(tool["content"], "Cargo.toml\nsrc", "{kind}: {turn}");
        assert!(
            !turn.to_string().contains("cache_control") && !turn.to_string().contains("signature"),
            "{kind}: Anthropic-only fields are not sent on"
        );
    }
    // Gemini: count_tokens goes to countTokens (the provider tier), the rest is translated.
    let log: Log = Default::default();
    let up = spawn_upstream(gemini_upstream(log.clone())).await;
    let router = start_router(&format!("backends:\n  - {{name: g, type: gemini, url: \"http://{up}\", api_key: g, models: [cc-model]}}\n")).await;
    let addr = router.tcp_addr().unwrap();
    replay(addr, "cc-model").await;
    {
        let log = log.lock().unwrap();
        let calls: Vec<&str> = log
            .iter()
            .map(|(h, _)| h["x-call"].to_str().unwrap())
            .collect();
        assert_eq!(
            calls,
            [
                "cc-model:countTokens",
                "cc-model:streamGenerateContent",
                "cc-model:streamGenerateContent",
                "cc-model:generateContent"
            ]
        );
        let count: Value = serde_json::from_slice(&log[0].1).unwrap();
        let inner = &count["generateContentRequest"];
        assert_eq!(inner["model"], "models/cc-model", "{count}");
        assert!(
            inner["contents"].as_array().is_some_and(|c| !c.is_empty()),
            "{count}"
        );
        let turn: Value = serde_json::from_slice(&log[2].1).unwrap();
        assert!(
            turn["systemInstruction"]["parts"][0]["text"].is_string(),
            "{turn}"
        );
        assert!(
            turn["tools"][0]["functionDeclarations"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
            "{turn}"
        );
        let model_turn = turn["contents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["role"] == "model")
            .unwrap();
        assert!(
            model_turn["parts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["functionCall"]["name"] == "Bash"),
            "{turn}"
        );
        assert!(turn.to_string().contains("functionResponse"), "{turn}");
    }
    // The provider's count is what the client gets, and the header says who counted.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages/count_tokens"),
        r#"{"model":"cc-model","messages":[{"role":"user","content":"What's the weather in Paris?"}]}"#.to_string(),
        &[],
    )
    .await;
    assert_eq!(r.json(), json!({"input_tokens": 57}));
    assert_eq!(r.header("x-continuum-token-count"), "provider=gemini");

    // The built-in mock answers the whole session too.
    let router = start_router("backends:\n  - {name: m, type: mock, models: [cc-model], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n").await;
    replay(router.tcp_addr().unwrap(), "cc-model").await;
}

/// Claude Code's per-request billing block (first in `system`; `cch` changes every request).
const BILLING: &str =
    "x-anthropic-billing-header: cc_version=2.1.37.fbe; cc_entrypoint=cli; cch=a112b;";

/// A Claude Code request for a model id it does not know: the billing block first in
/// `system`, and system messages among the turns (as blocks and as a string).
fn with_system_messages() -> String {
    json!({
        "model": "cc-model", "max_tokens": 32000, "stream": true,
        "metadata": {"user_id": "user_abc123_account__session_0f1e"},
        "system": [
            {"type": "text", "text": BILLING},
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Working directory: /home/dev/project", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [{"type": "text", "text": "list the files"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Listing."}]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "user", "content": "go on"}
        ]
    })
    .to_string()
}

async fn send_with_session_headers(addr: std::net::SocketAddr, body: &str) -> Reply {
    let s = session();
    let headers: Vec<(&str, &str)> = s["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        body.to_string(),
        &headers,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    r
}

#[tokio::test]
async fn claude_code_system_messages_and_billing_block_are_translated_for_openai_backends() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream("openai", log.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: b, type: vllm, url: \"http://{up}\", models: [cc-model]}}\n"
    ))
    .await;
    send_with_session_headers(router.tcp_addr().unwrap(), &with_system_messages()).await;
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    let sent: Value = serde_json::from_slice(&log[0].1).unwrap();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"role": "system", "content": "Working directory: /home/dev/project"},
            {"role": "user", "content": [{"type": "text", "text": "list the files"}]},
            {"role": "assistant", "content": "Listing."},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "user", "content": "go on"}
        ]),
        "{sent}"
    );
    let text = String::from_utf8_lossy(&log[0].1);
    assert!(
        !text.contains("x-anthropic-billing-header") && !text.contains("cch="),
        "the per-request billing block would defeat the upstream's prompt cache: {text}"
    );
}

#[tokio::test]
async fn claude_code_system_messages_and_billing_block_reach_anthropic_backends_unchanged() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream("anthropic", log.clone())).await;
    let router = start_router(&format!("backends:\n  - {{name: a, type: anthropic, url: \"http://{up}\", api_key: k, models: [cc-model]}}\n")).await;
    let body = with_system_messages();
    send_with_session_headers(router.tcp_addr().unwrap(), &body).await;
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].1, body.as_bytes(), "byte-faithful passthrough");
}

/// PrefixAwareHash keeps one Claude Code conversation on one backend although its billing
/// block changes on every request: the block is not part of the key.
#[tokio::test]
async fn the_billing_block_does_not_move_a_conversation_under_prefix_aware_hash() {
    let mut backends = String::new();
    let mut logs = Vec::new();
    for i in 0..4 {
        let log: Log = Default::default();
        let up = spawn_upstream(upstream("openai", log.clone())).await;
        logs.push(log);
        backends.push_str(&format!(
            "  - {{name: b{i}, type: vllm, url: \"http://{up}\", models: [cc-model]}}\n"
        ));
    }
    let router = start_router(&format!(
        "selection_strategy: PrefixAwareHash\nbackends:\n{backends}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut chosen = std::collections::HashSet::new();
    for n in 0..12 {
        let body = with_system_messages().replace("cch=a112b", &format!("cch={n:05x}"));
        let r = send_with_session_headers(addr, &body).await;
        chosen.insert(r.header("x-continuum-backend").to_string());
    }
    assert_eq!(chosen.len(), 1, "one conversation, one backend: {chosen:?}");
}
