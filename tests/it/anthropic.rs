//! The Anthropic Messages API in front of OpenAI-speaking backends.

use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

async fn messages(addr: std::net::SocketAddr, body: &str) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        body.to_string(),
        &[("anthropic-version", "2023-06-01")],
    )
    .await
}

#[tokio::test]
async fn messages_are_served_by_an_openai_backend_streamed_and_not() {
    let router = start_router("backends:\n  - {name: demo, type: mock, models: [mock-model], mock: {first_token_latency: 1ms, tokens_per_second: 0}}\n").await;
    let addr = router.tcp_addr().unwrap();
    let r = messages(addr, r#"{"model":"mock-model","max_tokens":64,"system":"be brief","messages":[{"role":"user","content":"hello claude"}]}"#).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "hello claude"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["output_tokens"], 2);

    let r = send(
        Method::POST,
        format!("http://{addr}/anthropic/v1/messages"),
        r#"{"model":"mock-model","max_tokens":64,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"stream this"}]}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/event-stream");
    let text = r.text();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.get(1), Some(&"ping"));
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let streamed: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(streamed, "stream this");
}

#[tokio::test]
async fn errors_come_in_anthropics_shape() {
    let router =
        start_router("backends:\n  - {name: demo, type: mock, models: [mock-model]}\n").await;
    let addr = router.tcp_addr().unwrap();
    for (body, status, kind) in [
        (
            r#"{"model":"nope","max_tokens":5,"messages":[]}"#,
            StatusCode::NOT_FOUND,
            "not_found_error",
        ),
        (
            r#"{"model":"mock-model","messages":[]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            r#"{not json"#,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
    ] {
        let r = messages(addr, body).await;
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert!(v["error"]["message"].as_str().unwrap().len() > 5);
    }
}

#[tokio::test]
async fn tool_use_round_trips_through_an_openai_backend() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let app = {
        let seen = seen.clone();
        axum::Router::new().route(
            "/v1/chat/completions",
            post(move |body: Bytes| {
                let seen = seen.clone();
                async move {
                    let req: Value = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().push(req.clone());
                    let last = req["messages"].as_array().unwrap().last().unwrap().clone();
                    if last["role"] == "tool" {
                        axum::Json(json!({"id": "c2", "object": "chat.completion", "model": "m",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("It is {}.", last["content"].as_str().unwrap())}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}}))
                    } else {
                        axum::Json(json!({"id": "c1", "object": "chat.completion", "model": "m",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                                {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
                                "finish_reason": "tool_calls"}],
                            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}}))
                    }
                }
            }),
        )
    };
    let up = spawn_upstream(app).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let tools = r#"[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}]"#;
    let first = messages(addr, &format!(r#"{{"model":"m","max_tokens":100,"tools":{tools},"messages":[{{"role":"user","content":"Weather in Paris?"}}]}}"#)).await.json();
    assert_eq!(first["stop_reason"], "tool_use");
    let tool_use = first["content"][0].clone();
    assert_eq!(
        tool_use,
        json!({"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"location": "Paris"}})
    );
    let second = messages(
        addr,
        &json!({"model": "m", "max_tokens": 100, "tools": serde_json::from_str::<Value>(tools).unwrap(), "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "15 degrees"}]}
        ]})
        .to_string(),
    )
    .await
    .json();
    assert_eq!(second["content"][0]["text"], "It is 15 degrees.");
    let sent = seen.lock().unwrap()[1].clone();
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        sent["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{\"location\":\"Paris\"}"
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_9", "content": "15 degrees"})
    );
}

#[tokio::test]
async fn count_tokens_says_how_it_counted() {
    let router =
        start_router("backends:\n  - {name: demo, type: mock, models: [mock-model, gpt-4o]}\n")
            .await;
    let addr = router.tcp_addr().unwrap();
    let url = format!("http://{addr}/v1/messages/count_tokens");
    let body = |model: &str| {
        format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hello, world!"}}]}}"#)
    };
    let r = send(Method::POST, url.clone(), body("gpt-4o"), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"input_tokens": 11}));
    assert_eq!(r.header("x-continuum-token-count"), "tokenizer=o200k_base");
    let r = send(Method::POST, url.clone(), body("mock-model"), &[]).await;
    assert_eq!(r.header("x-continuum-token-count"), "estimate=chars/4");
    assert_eq!(r.json()["input_tokens"], 11);
    let r = send(Method::POST, url, body("nope"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
}
