//! Every (client protocol × backend type) pair, streamed and not, with tools and images:
//! an OpenAI or Anthropic client sends one conversation (system prompt, a user turn with an
//! image, an earlier tool call and its result, tool definitions); each backend type answers
//! with the tool-call reply of its provider's documentation (`tests/fixtures/`). The tests
//! assert what the backend received, in its own format, and what the client got, in its own
//! format — text, tool call, finish reason and exact usage.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Path;
use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

const IMAGE: &str = "iVBORw0KGgo=";
const SYSTEM: &str = "You are a weather bot.";
const RESULT: &str = "15 degrees, sunny";
const AGAIN: &str = "And again?";

type Log = Arc<Mutex<Vec<(String, Value)>>>;

fn reply(body: String, content_type: &'static str) -> axum::response::Response {
    axum::response::IntoResponse::into_response((
        [("content-type", content_type)],
        Body::from(body),
    ))
}

/// An upstream of `kind` answering with its documented tool-call reply.
fn upstream(kind: &'static str, log: Log) -> axum::Router {
    let record = move |path: String, body: Bytes| {
        let v: Value = serde_json::from_slice(&body).unwrap();
        let stream = v["stream"].as_bool() == Some(true) || path.contains("streamGenerate");
        log.lock().unwrap().push((path, v));
        stream
    };
    match kind {
        "openai" => axum::Router::new().route(
            "/v1/chat/completions",
            post(move |body: Bytes| {
                let stream = record("/v1/chat/completions".into(), body);
                async move {
                    if stream {
                        reply(
                            fixture("openai/chat_tool_call_stream.sse"),
                            "text/event-stream",
                        )
                    } else {
                        reply(
                            fixture("openai/chat_tool_call_response.json"),
                            "application/json",
                        )
                    }
                }
            }),
        ),
        "anthropic" => axum::Router::new().route(
            "/v1/messages",
            post(move |body: Bytes| {
                let stream = record("/v1/messages".into(), body);
                async move {
                    if stream {
                        reply(
                            fixture("anthropic/tool_use_stream.sse"),
                            "text/event-stream",
                        )
                    } else {
                        reply(
                            fixture("anthropic/tool_use_response.json"),
                            "application/json",
                        )
                    }
                }
            }),
        ),
        "gemini" => axum::Router::new().route(
            "/v1beta/models/{call}",
            post(move |Path(call): Path<String>, body: Bytes| {
                let stream = record(call, body);
                async move {
                    if stream {
                        reply(
                            fixture("gemini/function_call_stream.sse"),
                            "text/event-stream",
                        )
                    } else {
                        reply(
                            fixture("gemini/function_call_response.json"),
                            "application/json",
                        )
                    }
                }
            }),
        ),
        _ => axum::Router::new().route(
            "/api/chat",
            post(move |body: Bytes| {
                let stream = record("/api/chat".into(), body);
                async move {
                    if stream {
                        reply(
                            fixture("ollama/chat_tool_call_stream.ndjson"),
                            "application/x-ndjson",
                        )
                    } else {
                        reply(
                            fixture("ollama/chat_tool_call_response.json"),
                            "application/json",
                        )
                    }
                }
            }),
        ),
    }
}

fn tool_schema() -> Value {
    json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})
}

fn openai_request(stream: bool) -> String {
    let mut v = json!({"model": "m", "max_tokens": 200, "stream": stream, "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{IMAGE}")}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": RESULT},
            {"role": "user", "content": AGAIN}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city", "parameters": tool_schema()}}]});
    if stream {
        v["stream_options"] = json!({"include_usage": true});
    }
    v.to_string()
}

fn anthropic_request(stream: bool) -> String {
    json!({"model": "m", "max_tokens": 200, "stream": stream, "system": SYSTEM, "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": RESULT},
                {"type": "text", "text": AGAIN}]}],
        "tools": [{"name": "get_weather", "description": "Weather for a city", "input_schema": tool_schema()}]})
    .to_string()
}

/// What every backend must have received, whatever its format.
#[derive(Debug, PartialEq)]
struct Received {
    system: String,
    image: String,
    call: (String, Value),
    result: String,
    last_user: String,
    tools: Vec<(String, Value)>,
}

fn expected_received() -> Received {
    Received {
        system: SYSTEM.into(),
        image: IMAGE.into(),
        call: ("get_weather".into(), json!({"location": "Paris"})),
        result: RESULT.into(),
        last_user: AGAIN.into(),
        tools: vec![("get_weather".into(), tool_schema())],
    }
}

fn find(list: &Value, pred: impl Fn(&Value) -> bool) -> &Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| pred(v))
        .unwrap_or_else(|| panic!("nothing matched in {list}"))
}

/// The text of an OpenAI message content: a string or a list of text parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        other => other.as_str().unwrap().into(),
    }
}

fn received(kind: &str, v: &Value) -> Received {
    match kind {
        "openai" => {
            let m = &v["messages"];
            let call = &find(m, |x| x["role"] == "assistant")["tool_calls"][0]["function"];
            Received {
                system: find(m, |x| x["role"] == "system")["content"]
                    .as_str()
                    .unwrap()
                    .into(),
                image: find(&m[1]["content"], |p| p["type"] == "image_url")["image_url"]["url"]
                    .as_str()
                    .unwrap()
                    .rsplit(',')
                    .next()
                    .unwrap()
                    .into(),
                call: (
                    call["name"].as_str().unwrap().into(),
                    serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap(),
                ),
                result: find(m, |x| x["role"] == "tool")["content"]
                    .as_str()
                    .unwrap()
                    .into(),
                last_user: text_of(&m.as_array().unwrap().last().unwrap()["content"]),
                tools: v["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        (
                            t["function"]["name"].as_str().unwrap().into(),
                            t["function"]["parameters"].clone(),
                        )
                    })
                    .collect(),
            }
        }
        "anthropic" => {
            let m = &v["messages"];
            let blocks = |i: usize| &m[i]["content"];
            let last = m.as_array().unwrap().last().unwrap();
            let use_ = find(blocks(1), |b| b["type"] == "tool_use");
            Received {
                system: v["system"].as_str().unwrap().into(),
                image: find(blocks(0), |b| b["type"] == "image")["source"]["data"]
                    .as_str()
                    .unwrap()
                    .into(),
                call: (use_["name"].as_str().unwrap().into(), use_["input"].clone()),
                result: find(&last["content"], |b| b["type"] == "tool_result")["content"]
                    .as_str()
                    .unwrap()
                    .into(),
                last_user: find(&last["content"], |b| b["type"] == "text")["text"]
                    .as_str()
                    .unwrap()
                    .into(),
                tools: v["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        (
                            t["name"].as_str().unwrap().into(),
                            t["input_schema"].clone(),
                        )
                    })
                    .collect(),
            }
        }
        "gemini" => {
            let c = &v["contents"];
            let parts = |x: &Value| x["parts"].clone();
            let model_turn = find(c, |x| x["role"] == "model");
            let call =
                &find(&model_turn["parts"], |p| p.get("functionCall").is_some())["functionCall"];
            let all_parts: Vec<Value> = c
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|x| parts(x).as_array().unwrap().clone())
                .collect();
            let all_parts = Value::Array(all_parts);
            Received {
                system: v["systemInstruction"]["parts"][0]["text"]
                    .as_str()
                    .unwrap()
                    .into(),
                image: find(&all_parts, |p| p.get("inlineData").is_some())["inlineData"]["data"]
                    .as_str()
                    .unwrap()
                    .into(),
                call: (call["name"].as_str().unwrap().into(), call["args"].clone()),
                result: find(&all_parts, |p| p.get("functionResponse").is_some())
                    ["functionResponse"]["response"]["result"]
                    .as_str()
                    .unwrap()
                    .into(),
                last_user: c.as_array().unwrap().last().unwrap()["parts"]
                    .as_array()
                    .unwrap()
                    .last()
                    .unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .into(),
                tools: v["tools"][0]["functionDeclarations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| (t["name"].as_str().unwrap().into(), t["parameters"].clone()))
                    .collect(),
            }
        }
        _ => {
            let m = &v["messages"];
            let call = &find(m, |x| x["role"] == "assistant")["tool_calls"][0]["function"];
            Received {
                system: find(m, |x| x["role"] == "system")["content"]
                    .as_str()
                    .unwrap()
                    .into(),
                image: find(m, |x| x.get("images").is_some())["images"][0]
                    .as_str()
                    .unwrap()
                    .into(),
                call: (
                    call["name"].as_str().unwrap().into(),
                    call["arguments"].clone(),
                ),
                result: find(m, |x| x["role"] == "tool")["content"]
                    .as_str()
                    .unwrap()
                    .into(),
                last_user: text_of(&m.as_array().unwrap().last().unwrap()["content"]),
                tools: v["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        (
                            t["function"]["name"].as_str().unwrap().into(),
                            t["function"]["parameters"].clone(),
                        )
                    })
                    .collect(),
            }
        }
    }
}

/// What a client got, whatever its protocol.
#[derive(Debug, PartialEq)]
struct Answer {
    text: String,
    calls: Vec<(String, Value)>,
    finish: String,
    /// (input, output) tokens in the client's own accounting.
    usage: (u64, u64),
}

fn openai_answer(r: &Reply, stream: bool) -> Answer {
    if !stream {
        let v = r.json();
        let c = &v["choices"][0];
        return Answer {
            text: c["message"]["content"].as_str().unwrap_or("").into(),
            calls: c["message"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    assert!(t["id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
                    (
                        t["function"]["name"].as_str().unwrap().into(),
                        serde_json::from_str(t["function"]["arguments"].as_str().unwrap()).unwrap(),
                    )
                })
                .collect(),
            finish: c["finish_reason"].as_str().unwrap().into(),
            usage: (
                v["usage"]["prompt_tokens"].as_u64().unwrap(),
                v["usage"]["completion_tokens"].as_u64().unwrap(),
            ),
        };
    }
    let text = r.text();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let mut answer = Answer {
        text: String::new(),
        calls: Vec::new(),
        finish: String::new(),
        usage: (0, 0),
    };
    let mut args: Vec<(String, String)> = Vec::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v.get("error").is_none(), "{text}");
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            answer.usage = (
                u["prompt_tokens"].as_u64().unwrap(),
                u["completion_tokens"].as_u64().unwrap(),
            );
        }
        let Some(c) = v["choices"].get(0) else {
            continue;
        };
        if let Some(t) = c["delta"]["content"].as_str() {
            answer.text.push_str(t);
        }
        for t in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let i = t["index"].as_u64().unwrap() as usize;
            if args.len() <= i {
                assert!(t["id"].as_str().is_some_and(|id| !id.is_empty()), "{text}");
                args.push((
                    t["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            args[i]
                .1
                .push_str(t["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = c["finish_reason"].as_str() {
            answer.finish = f.into();
        }
    }
    answer.calls = args
        .into_iter()
        .map(|(n, a)| (n, serde_json::from_str(&a).unwrap()))
        .collect();
    answer
}

fn anthropic_answer(r: &Reply, stream: bool) -> Answer {
    if !stream {
        let v = r.json();
        assert_eq!(v["type"], "message", "{v}");
        let blocks = v["content"].as_array().unwrap();
        return Answer {
            text: blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
            calls: blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| {
                    assert!(b["id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
                    (b["name"].as_str().unwrap().into(), b["input"].clone())
                })
                .collect(),
            finish: v["stop_reason"].as_str().unwrap().into(),
            usage: (
                v["usage"]["input_tokens"].as_u64().unwrap(),
                v["usage"]["output_tokens"].as_u64().unwrap(),
            ),
        };
    }
    let text = r.text();
    let mut names = Vec::new();
    let mut answer = Answer {
        text: String::new(),
        calls: Vec::new(),
        finish: String::new(),
        usage: (0, 0),
    };
    let mut args: Vec<(String, String)> = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap();
        let data: Value = serde_json::from_str(
            block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["type"], name, "{block}");
        names.push(name.to_string());
        match name {
            "message_start" => {
                answer.usage.0 = data["message"]["usage"]["input_tokens"].as_u64().unwrap()
            }
            "content_block_start" if data["content_block"]["type"] == "tool_use" => {
                assert!(
                    data["content_block"]["id"]
                        .as_str()
                        .is_some_and(|id| !id.is_empty()),
                    "{text}"
                );
                args.push((
                    data["content_block"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            "content_block_delta" => match data["delta"]["type"].as_str().unwrap() {
                "text_delta" => answer
                    .text
                    .push_str(data["delta"]["text"].as_str().unwrap()),
                "input_json_delta" => args
                    .last_mut()
                    .unwrap()
                    .1
                    .push_str(data["delta"]["partial_json"].as_str().unwrap()),
                other => panic!("unexpected delta {other}: {text}"),
            },
            "message_delta" => {
                answer.finish = data["delta"]["stop_reason"].as_str().unwrap().into();
                answer.usage.1 = data["usage"]["output_tokens"].as_u64().unwrap();
                if let Some(input) = data["usage"]["input_tokens"].as_u64() {
                    answer.usage.0 = input;
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        names.first().map(String::as_str),
        Some("message_start"),
        "{text}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("message_stop"),
        "{text}"
    );
    assert!(!names.iter().any(|n| n == "error"), "{text}");
    // Every block opened is closed, in order.
    let opened = names.iter().filter(|n| *n == "content_block_start").count();
    let closed = names.iter().filter(|n| *n == "content_block_stop").count();
    assert_eq!(opened, closed, "{text}");
    answer.calls = args
        .into_iter()
        .map(|(n, a)| (n, serde_json::from_str(&a).unwrap()))
        .collect();
    answer
}

/// What the client must get from `backend`, in the client's protocol.
fn expected_answer(client: &str, backend: &str, stream: bool) -> Answer {
    let weather = vec![("get_weather".to_string(), json!({"location": "Paris"}))];
    let check = "Let me check the weather.".to_string();
    let (text, usage) = match (client, backend) {
        // OpenAI counts cached prompt tokens in prompt_tokens and reasoning in completion_tokens.
        ("openai", "openai") => (String::new(), (1117, 81)),
        ("openai", "anthropic") => (check, (403 + 1500 + 2048, 71)),
        ("openai", "gemini") => (check, (57, 21 + 106)),
        ("openai", _) if stream => (check, (169, 15)),
        ("openai", _) => (String::new(), (169, 18)),
        // Anthropic's input_tokens leaves out cache reads.
        (_, "openai") => (String::new(), (1117 - 1024, 81)),
        (_, "anthropic") => (check, (403, 71)),
        (_, "gemini") => (check, (57, 21 + 106)),
        (_, _) if stream => (check, (169, 15)),
        (_, _) => (String::new(), (169, 18)),
    };
    let finish = if client == "openai" {
        "tool_calls"
    } else {
        "tool_use"
    };
    Answer {
        text,
        calls: weather,
        finish: finish.into(),
        usage,
    }
}

async fn run_pair(client: &'static str, backend: &'static str, stream: bool) {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream(backend, log.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: b, type: {backend}, url: \"http://{up}\", api_key: k, models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let (path, body) = match client {
        "openai" => ("/v1/chat/completions", openai_request(stream)),
        _ => ("/v1/messages", anthropic_request(stream)),
    };
    let r = send(
        Method::POST,
        format!("http://{addr}{path}"),
        body,
        &[("anthropic-version", "2023-06-01")],
    )
    .await;
    let case = format!("{client} client -> {backend} backend, stream={stream}");
    assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text());
    let got = match client {
        "openai" => openai_answer(&r, stream),
        _ => anthropic_answer(&r, stream),
    };
    assert_eq!(
        got,
        expected_answer(client, backend, stream),
        "{case}: {}",
        r.text()
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "{case}");
    let (call, sent) = &log[0];
    assert_eq!(
        received(backend, sent),
        expected_received(),
        "{case}: {sent}"
    );
    if backend == "gemini" {
        let method = if stream {
            "m:streamGenerateContent"
        } else {
            "m:generateContent"
        };
        assert_eq!(call, method, "{case}");
    }
}

/// One test per pair, so a failure names its pair.
macro_rules! pairs {
    ($($name:ident: $client:literal, $backend:literal, $stream:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run_pair($client, $backend, $stream).await;
            }
        )*
    };
}

pairs! {
    openai_to_openai: "openai", "openai", false;
    openai_to_openai_streamed: "openai", "openai", true;
    openai_to_anthropic: "openai", "anthropic", false;
    openai_to_anthropic_streamed: "openai", "anthropic", true;
    openai_to_gemini: "openai", "gemini", false;
    openai_to_gemini_streamed: "openai", "gemini", true;
    openai_to_ollama: "openai", "ollama", false;
    openai_to_ollama_streamed: "openai", "ollama", true;
    anthropic_to_openai: "anthropic", "openai", false;
    anthropic_to_openai_streamed: "anthropic", "openai", true;
    anthropic_to_anthropic: "anthropic", "anthropic", false;
    anthropic_to_anthropic_streamed: "anthropic", "anthropic", true;
    anthropic_to_gemini: "anthropic", "gemini", false;
    anthropic_to_gemini_streamed: "anthropic", "gemini", true;
    anthropic_to_ollama: "anthropic", "ollama", false;
    anthropic_to_ollama_streamed: "anthropic", "ollama", true;
}

/// An upstream answering every request with `status` and a fixture body.
fn failing_upstream(status: u16, body: String) -> axum::Router {
    axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            axum::response::IntoResponse::into_response((
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            ))
        }
    })
}

/// Provider errors (from the providers' documentation) reach each client with the status
/// and error type its SDK understands, and the provider's message.
#[tokio::test]
async fn provider_errors_reach_each_client_in_its_own_shape() {
    // (backend, fixture, upstream status, OpenAI status, OpenAI code, Anthropic status, Anthropic type)
    let cases = [
        (
            "anthropic",
            "anthropic/error_overloaded.json",
            529,
            503,
            "overloaded",
            529,
            "overloaded_error",
        ),
        (
            "anthropic",
            "anthropic/error_rate_limit.json",
            429,
            429,
            "rate_limit_exceeded",
            429,
            "rate_limit_error",
        ),
        (
            "anthropic",
            "anthropic/error_invalid_request_too_long.json",
            400,
            400,
            "context_length_exceeded",
            400,
            "invalid_request_error",
        ),
        (
            "gemini",
            "gemini/error_resource_exhausted.json",
            429,
            429,
            "rate_limit_exceeded",
            429,
            "rate_limit_error",
        ),
        (
            "gemini",
            "gemini/error_invalid_argument.json",
            400,
            400,
            "context_length_exceeded",
            400,
            "invalid_request_error",
        ),
        (
            "gemini",
            "gemini/error_unavailable.json",
            503,
            503,
            "overloaded",
            529,
            "overloaded_error",
        ),
        (
            "openai",
            "openai/error_context_length.json",
            400,
            400,
            "context_length_exceeded",
            400,
            "invalid_request_error",
        ),
        (
            "openai",
            "openai/error_rate_limit.json",
            429,
            429,
            "rate_limit_exceeded",
            429,
            "rate_limit_error",
        ),
        (
            "ollama",
            "ollama/error_model_not_found.json",
            404,
            404,
            "model_not_found",
            404,
            "not_found_error",
        ),
    ];
    for (
        backend,
        file,
        upstream_status,
        openai_status,
        openai_code,
        anthropic_status,
        anthropic_type,
    ) in cases
    {
        let body = fixture(file);
        let provider: Value = serde_json::from_str(&body).unwrap();
        let message = match &provider["error"] {
            Value::String(s) => s.clone(),
            e => e["message"].as_str().unwrap().to_string(),
        };
        let up = spawn_upstream(failing_upstream(upstream_status, body)).await;
        let router = start_router(&format!(
            "health_checks:\n  enabled: false\nretry:\n  max_attempts: 1\nbackends:\n  - {{name: b, type: {backend}, url: \"http://{up}\", api_key: k, models: [m]}}\n"
        ))
        .await;
        let addr = router.tcp_addr().unwrap();
        let case = format!("{backend} {file}");

        let r = chat(addr, &openai_request(false)).await;
        assert_eq!(r.status.as_u16(), openai_status, "{case}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["message"], message.as_str(), "{case}: {v}");
        assert_eq!(v["error"]["code"], openai_code, "{case}: {v}");

        let r = send(
            Method::POST,
            format!("http://{addr}/v1/messages"),
            anthropic_request(false),
            &[],
        )
        .await;
        assert_eq!(r.status.as_u16(), anthropic_status, "{case}: {}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "error", "{case}: {v}");
        assert_eq!(v["error"]["type"], anthropic_type, "{case}: {v}");
        assert_eq!(v["error"]["message"], message.as_str(), "{case}: {v}");
    }
}

/// A Gemini safety block is a `content_filter` finish for OpenAI clients and a `refusal`
/// stop for Anthropic clients; a blocked prompt likewise.
#[tokio::test]
async fn gemini_safety_blocks_become_content_filter_and_refusal() {
    for file in [
        "gemini/safety_blocked_response.json",
        "gemini/safety_prompt_blocked_response.json",
    ] {
        let up = spawn_upstream(failing_upstream(200, fixture(file))).await;
        let router = start_router(&format!(
            "backends:\n  - {{name: b, type: gemini, url: \"http://{up}\", api_key: k, models: [m]}}\n"
        ))
        .await;
        let addr = router.tcp_addr().unwrap();
        let r = chat(addr, &openai_request(false)).await;
        assert_eq!(r.status, StatusCode::OK, "{file}: {}", r.text());
        assert_eq!(
            r.json()["choices"][0]["finish_reason"],
            "content_filter",
            "{file}: {}",
            r.text()
        );
        let r = send(
            Method::POST,
            format!("http://{addr}/v1/messages"),
            anthropic_request(false),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{file}: {}", r.text());
        assert_eq!(r.json()["stop_reason"], "refusal", "{file}: {}", r.text());
    }
}

/// An Anthropic client's request reaches an Anthropic backend untranslated, so blocks that
/// have no OpenAI form (here a `document` by URL, which the router does not fetch) pass; a
/// backend that needs the translation refuses them clearly, in Anthropic's error shape.
#[tokio::test]
async fn anthropic_only_blocks_pass_to_anthropic_and_are_refused_elsewhere() {
    let body = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}},
        {"type": "text", "text": "Summarise this."}]}]})
    .to_string();
    let log: Log = Default::default();
    let up = spawn_upstream(upstream("anthropic", log.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: a, type: anthropic, url: \"http://{up}\", api_key: k, models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        body.clone(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent = log.lock().unwrap()[0].1.clone();
    assert_eq!(sent, serde_json::from_str::<Value>(&body).unwrap());

    let log: Log = Default::default();
    let up = spawn_upstream(upstream("openai", log.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: v, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        body,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("document"),
        "{v}"
    );
    assert!(log.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Embeddings, reranking and sparse embeddings × every backend type. The test upstream of
// `operations.rs` answers each provider's documented wire format by path; each type that
// serves an operation must be sent it in its own wire (passed through, or translated) and
// its reply must reach the client exactly; each type that does not must be refused by name
// with nothing sent upstream.

/// Where a backend type takes each operation (`None`: it does not serve it).
struct Serves {
    embed: Option<&'static str>,
    rerank: Option<&'static str>,
    sparse: Option<&'static str>,
    /// The server encodes `encoding_format: base64` itself (else the router does).
    native_base64: bool,
}

fn serves(kind: &str) -> Serves {
    let openai_compatible = matches!(
        kind,
        "openai"
            | "vllm"
            | "localai"
            | "lmstudio"
            | "llamacpp"
            | "generic"
            | "mlxcel"
            | "continuum"
            | "tei"
    );
    Serves {
        embed: match kind {
            "gemini" => Some("/v1beta/models/m:batchEmbedContents"),
            "ollama" => Some("/api/embed"),
            _ if openai_compatible => Some("/v1/embeddings"),
            _ => None,
        },
        rerank: match kind {
            "vllm" | "llamacpp" | "generic" | "continuum" | "localai" => Some("/v1/rerank"),
            "tei" => Some("/rerank"),
            _ => None,
        },
        sparse: (kind == "tei").then_some("/embed_sparse"),
        native_base64: matches!(kind, "openai" | "vllm" | "llamacpp" | "tei" | "continuum"),
    }
}

/// The OpenAI float reply the client must get for two texts from a backend of `kind`.
fn expected_float_embeddings(kind: &str) -> Value {
    use crate::operations::{fixture_json, with_model};
    match kind {
        "gemini" => {
            let mut v = with_model(fixture_json("embeddings/openai_from_gemini.json"), "m");
            v["data"].as_array_mut().unwrap().truncate(2);
            v
        }
        "ollama" => with_model(fixture_json("embeddings/openai_from_ollama.json"), "m"),
        // Passed through: the backend's own reply.
        _ => fixture_json("embeddings/openai_float_reply.json"),
    }
}

async fn run_operations(kind: &'static str) {
    use crate::operations::{
        as_f32, decode_f32, error_message, fixture_json, post_to, with_model, without_generated_id,
        Upstream,
    };
    let up = Upstream::start().await;
    let backend = if kind == "mock" {
        "{name: b, type: mock, models: [m], mock: {first_token_latency: 0ms}}".to_string()
    } else {
        format!(
            "{{name: b, type: {kind}, url: \"{}\", api_key: k, models: [m]}}",
            up.url()
        )
    };
    let router = start_router(&format!("backends:\n  - {backend}\n")).await;
    let addr = router.tcp_addr().unwrap();
    let s = serves(kind);
    let refused = |r: &Reply, endpoint: &str, case: &str| {
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{case}: {}", r.text());
        let expected = format!("backend 'b' (type {kind}) does not serve {endpoint}");
        assert!(
            error_message(r).contains(&expected),
            "{case}: expected \"{expected}\" in {}",
            r.text()
        );
    };

    // Dense embeddings, as floats and as base64.
    let texts = ["Why is the sky blue?", "Why is the grass green?"];
    for base64 in [false, true] {
        let case = format!("{kind} backend, /v1/embeddings, base64={base64}");
        let mut request = json!({"model": "m", "input": texts});
        if base64 {
            request["encoding_format"] = json!("base64");
        }
        let r = post_to(addr, "/v1/embeddings", &request).await;
        let Some(path) = s.embed else {
            refused(&r, "/v1/embeddings", &case);
            continue;
        };
        assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text());
        assert_eq!(r.header("x-continuum-backend"), "b", "{case}");
        let seen = up.take_one();
        assert_eq!(seen.path, path, "{case}");
        let sent = match kind {
            "gemini" => {
                json!({"requests": texts.map(|t| json!({"model": "models/m", "content": {"parts": [{"text": t}]}}))})
            }
            "ollama" => json!({"model": "m", "input": texts}),
            _ if base64 && !s.native_base64 => json!({"model": "m", "input": texts}),
            _ => request.clone(),
        };
        assert_eq!(seen.body, sent, "{case}");
        let expected = expected_float_embeddings(kind);
        if !base64 {
            if seen.path == "/v1/embeddings" {
                assert_eq!(
                    r.text(),
                    fixture("embeddings/openai_float_reply.json"),
                    "{case}"
                );
            }
            assert_eq!(r.json(), expected, "{case}");
            continue;
        }
        // base64 (from the backend or encoded by the router): the same f32s, the rest as is.
        let mut got = r.json();
        for (i, item) in got["data"].as_array_mut().unwrap().iter_mut().enumerate() {
            let b64 = item["embedding"]
                .as_str()
                .unwrap_or_else(|| panic!("{case}: not base64: {item}"));
            assert_eq!(
                decode_f32(b64),
                as_f32(&expected["data"][i]["embedding"]),
                "{case}: embedding {i}"
            );
            item["embedding"] = expected["data"][i]["embedding"].clone();
        }
        assert_eq!(got, expected, "{case}");
        if seen.path == "/v1/embeddings" {
            assert_eq!(
                r.json(),
                fixture_json("embeddings/openai_base64_reply.json"),
                "{case}"
            );
        }
    }

    // Rerank (Cohere/Jina shape).
    let case = format!("{kind} backend, /v1/rerank");
    let request = with_model(fixture_json("rerank/cohere_v2_request.json"), "m");
    let r = post_to(addr, "/v1/rerank", &request).await;
    match s.rerank {
        None => refused(&r, "/v1/rerank", &case),
        Some(path) => {
            assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text());
            assert_eq!(r.header("x-continuum-backend"), "b", "{case}");
            let seen = up.take_one();
            assert_eq!(seen.path, path, "{case}");
            if path == "/rerank" {
                assert_eq!(seen.body, fixture_json("rerank/tei_request.json"), "{case}");
                assert_eq!(
                    without_generated_id(r.json()),
                    with_model(fixture_json("rerank/tei_normalised.json"), "m"),
                    "{case}"
                );
            } else {
                assert_eq!(seen.body, request, "{case}");
                assert_eq!(
                    r.json(),
                    with_model(fixture_json("rerank/cohere_v2_normalised.json"), "m"),
                    "{case}"
                );
            }
        }
    }

    // Sparse embeddings, in the router's envelope and in TEI's own shape (no model).
    let case = format!("{kind} backend, /v1/sparse-embeddings");
    let r = post_to(
        addr,
        "/v1/sparse-embeddings",
        with_model(fixture_json("sparse/envelope_request.json"), "m"),
    )
    .await;
    match s.sparse {
        None => refused(&r, "/v1/sparse-embeddings", &case),
        Some(path) => {
            assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text());
            let seen = up.take_one();
            assert_eq!(seen.path, path, "{case}");
            assert_eq!(seen.body, fixture_json("sparse/tei_request.json"), "{case}");
            assert_eq!(
                r.json(),
                with_model(fixture_json("sparse/envelope_reply.json"), "m"),
                "{case}"
            );
        }
    }
    let case = format!("{kind} backend, /embed_sparse");
    let r = post_to(addr, "/embed_sparse", fixture("sparse/tei_request.json")).await;
    match s.sparse {
        None => {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{case}: {}", r.text());
            assert_eq!(
                error_message(&r),
                "no backend serves /embed_sparse (a backend of type tei does)",
                "{case}"
            );
        }
        Some(path) => {
            assert_eq!(r.status, StatusCode::OK, "{case}: {}", r.text());
            assert_eq!(r.header("x-continuum-model"), "m", "{case}");
            let seen = up.take_one();
            assert_eq!(seen.path, path, "{case}");
            assert_eq!(seen.body, fixture_json("sparse/tei_request.json"), "{case}");
            assert_eq!(r.json(), fixture_json("sparse/tei_reply.json"), "{case}");
        }
    }
    assert!(
        up.seen().is_empty(),
        "{kind}: nothing else reaches the backend: {:?}",
        up.seen()
    );
}

/// One test per backend type, so a failure names its type.
macro_rules! operations {
    ($($name:ident: $kind:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                run_operations($kind).await;
            }
        )*
    };
}

operations! {
    operations_on_openai: "openai";
    operations_on_anthropic: "anthropic";
    operations_on_gemini: "gemini";
    operations_on_ollama: "ollama";
    operations_on_vllm: "vllm";
    operations_on_localai: "localai";
    operations_on_lmstudio: "lmstudio";
    operations_on_llamacpp: "llamacpp";
    operations_on_generic: "generic";
    operations_on_mlxcel: "mlxcel";
    operations_on_continuum: "continuum";
    operations_on_tei: "tei";
    operations_on_mock: "mock";
}
