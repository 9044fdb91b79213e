//! OpenAI's Responses API (`POST /v1/responses`, `GET`/`DELETE /v1/responses/{id}`,
//! `/input_items`) over raw HTTP: the event stream's order and numbering, incomplete and
//! failed responses, hosted tools, `previous_response_id` (unknown ids, a router restart),
//! global prompts, chat and Anthropic clients on `responses_only_models`, scopes and
//! metrics.
//!
//! [`Provider`] is a test upstream of each kind — an OpenAI server that takes
//! `/v1/responses` itself (and keeps its responses: retrieve, delete, input items), an
//! OpenAI-compatible chat server, Anthropic Messages, Gemini `generateContent` and Ollama
//! `/api/chat` — answering in its own documented wire format, streamed and not, and
//! recording every request. `tests/it/sdk.rs` drives it with the official `openai` SDK.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::IntoResponse;
use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use serde_json::{json, Value};

use crate::common::*;

/// The arguments of the test model's `get_weather` call.
pub const CALL_ARGS: &str = r#"{"location":"Paris"}"#;
/// The thought signature the Gemini upstream puts on its function call.
pub const SIGNATURE: &str = "CiQB0e2Kb7Xv3a1qZ8kq0m2d9eW9yRj3sQ0pZpGmS1dBq0R4p3g=";
/// The structured answer, in the two pieces it streams in.
pub const WEATHER_JSON: [&str; 2] = [r#"{"city": "Paris", "#, r#""temperature": 15}"#];

/// One request a [`Provider`] received.
#[derive(Debug, Clone)]
pub struct Got {
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The body as JSON (`null` when empty or not JSON).
    pub body: Value,
}

type Log = Arc<Mutex<Vec<Got>>>;

/// What the test model says, decided from the conversation it is given:
///
/// - the last turn is a tool result `R`: "It is R in Paris.";
/// - the last user text mentions `JSON`: [`WEATHER_JSON`];
/// - tools are offered: a `get_weather` call with [`CALL_ARGS`];
/// - the last user text mentions `LONG`: "This answer is cut", cut by the length limit;
/// - it mentions `BREAK`: "Half an answer", then the stream breaks (a whole reply is the
///   text alone);
/// - else "Hello from KIND." in three pieces.
#[derive(Debug, Clone)]
enum Say {
    Text(Vec<String>, /* cut by length */ bool),
    Call,
    Break(String),
}

impl Say {
    fn text(&self) -> String {
        match self {
            Say::Text(pieces, _) => pieces.concat(),
            Say::Break(s) => s.clone(),
            Say::Call => String::new(),
        }
    }
    fn cut(&self) -> bool {
        matches!(self, Say::Text(_, true))
    }
}

/// What a request asked, read from any provider's wire.
#[derive(Debug, Default)]
struct Asked {
    user: String,
    tool_result: Option<String>,
    tools: bool,
}

fn decide(kind: &str, a: &Asked) -> Say {
    let pieces = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if let Some(r) = &a.tool_result {
        return Say::Text(pieces(&["It is ", r, " in Paris."]), false);
    }
    if a.user.contains("JSON") {
        return Say::Text(pieces(&WEATHER_JSON), false);
    }
    if a.tools {
        return Say::Call;
    }
    if a.user.contains("LONG") {
        return Say::Text(pieces(&["This answer", " is cut"]), true);
    }
    if a.user.contains("BREAK") {
        return Say::Break("Half an answer".into());
    }
    Say::Text(pieces(&["Hello", " from ", &format!("{kind}.")]), false)
}

/// A string, or the concatenated `text` of a list of parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

fn non_empty(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// What a chat-shaped request (`vllm`, `ollama`, `anthropic`: `messages`; `gemini`:
/// `contents`) asked.
fn asked(kind: &str, body: &Value) -> Asked {
    let tools = non_empty(&body["tools"]);
    match kind {
        "gemini" => {
            let contents = body["contents"].as_array().cloned().unwrap_or_default();
            let last = contents.last().cloned().unwrap_or(Value::Null);
            let tool_result = last["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|p| p.get("functionResponse"))
                .map(|f| match &f["response"]["result"] {
                    Value::String(s) => s.clone(),
                    _ => f["response"].to_string(),
                });
            let user = contents
                .iter()
                .rev()
                .find(|c| c["role"] == "user" && !text_of(&c["parts"]).is_empty())
                .map(|c| text_of(&c["parts"]))
                .unwrap_or_default();
            Asked {
                user,
                tool_result,
                tools,
            }
        }
        _ => {
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            let last = messages.last().cloned().unwrap_or(Value::Null);
            let tool_result = if last["role"] == "tool" {
                Some(text_of(&last["content"]))
            } else {
                last["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|b| b["type"] == "tool_result")
                    .map(|b| text_of(&b["content"]))
            };
            let user = messages
                .iter()
                .rev()
                .find(|m| m["role"] == "user" && !text_of(&m["content"]).is_empty())
                .map(|m| text_of(&m["content"]))
                .unwrap_or_default();
            Asked {
                user,
                tool_result,
                tools,
            }
        }
    }
}

type Frames = Vec<Result<Bytes, std::io::Error>>;

/// A streamed body: the frames one after the other, a few milliseconds apart (so an error
/// frame comes after the data before it has gone out).
fn paced(frames: Frames, content_type: &'static str) -> axum::response::Response {
    paced_by(frames, content_type, Duration::from_millis(3))
}

fn paced_by(frames: Frames, content_type: &'static str, gap: Duration) -> axum::response::Response {
    let s = futures_util::stream::unfold(frames.into_iter(), move |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(gap).await;
        Some((next, it))
    });
    ([("content-type", content_type)], Body::from_stream(s)).into_response()
}

fn json_reply(status: u16, v: Value) -> axum::response::Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn cut() -> Result<Bytes, std::io::Error> {
    Err(std::io::Error::other("upstream connection lost"))
}

fn sse_data(v: &Value) -> Result<Bytes, std::io::Error> {
    Ok(Bytes::from(format!("data: {v}\n\n")))
}

// ---------------------------------------------------------------------------------------
// OpenAI-compatible chat (vLLM)

fn chat_answer(
    model: &Value,
    say: &Say,
    stream: bool,
    include_usage: bool,
) -> axum::response::Response {
    let call = json!({"id": "call_up_1", "type": "function", "function": {"name": "get_weather", "arguments": CALL_ARGS}});
    let finish = match say {
        Say::Call => "tool_calls",
        _ if say.cut() => "length",
        _ => "stop",
    };
    let usage = json!({"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16});
    if !stream {
        let message = match say {
            Say::Call => json!({"role": "assistant", "content": null, "tool_calls": [call]}),
            _ => json!({"role": "assistant", "content": say.text()}),
        };
        return json_reply(
            200,
            json!({"id": "chatcmpl-up", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}], "usage": usage}),
        );
    }
    let chunk = |delta: Value, finish: Value| {
        sse_data(
            &json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}),
        )
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    match say {
        Say::Text(pieces, _) => {
            for p in pieces {
                frames.push(chunk(json!({"content": p}), Value::Null));
            }
        }
        Say::Call => {
            frames.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_up_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null,
            ));
            for piece in [r#"{"location":"#, r#""Paris"}"#] {
                frames.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
        }
        Say::Break(text) => {
            frames.push(chunk(json!({"content": text}), Value::Null));
            frames.push(cut());
            return paced(frames, "text/event-stream");
        }
    }
    frames.push(chunk(json!({}), json!(finish)));
    if include_usage {
        frames.push(sse_data(&json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": model, "choices": [], "usage": usage})));
    }
    frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    paced(frames, "text/event-stream")
}

// ---------------------------------------------------------------------------------------
// Anthropic Messages

fn anthropic_answer(model: &Value, say: &Say, stream: bool) -> axum::response::Response {
    let stop = match say {
        Say::Call => "tool_use",
        _ if say.cut() => "max_tokens",
        _ => "end_turn",
    };
    if !stream {
        let content = match say {
            Say::Call => {
                json!([{"type": "tool_use", "id": "toolu_up_1", "name": "get_weather", "input": {"location": "Paris"}}])
            }
            _ => json!([{"type": "text", "text": say.text()}]),
        };
        return json_reply(
            200,
            json!({"id": "msg_up_1", "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": stop, "stop_sequence": null, "usage": {"input_tokens": 11, "output_tokens": 5}}),
        );
    }
    let event =
        |name: &str, data: Value| Ok(Bytes::from(format!("event: {name}\ndata: {data}\n\n")));
    let mut frames = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_up_1", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
    )];
    let pieces: Vec<(String, &str)> = match say {
        Say::Call => {
            frames.push(event("content_block_start", json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_up_1", "name": "get_weather", "input": {}}})));
            vec![
                (r#"{"location":"#.to_string(), "input_json_delta"),
                (r#" "Paris"}"#.to_string(), "input_json_delta"),
            ]
        }
        Say::Text(p, _) => {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ));
            p.iter().map(|s| (s.clone(), "text_delta")).collect()
        }
        Say::Break(text) => {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ));
            vec![(text.clone(), "text_delta")]
        }
    };
    for (piece, kind) in pieces {
        let delta = if kind == "text_delta" {
            json!({"type": kind, "text": piece})
        } else {
            json!({"type": kind, "partial_json": piece})
        };
        frames.push(event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ));
    }
    if matches!(say, Say::Break(_)) {
        frames.push(cut());
        return paced(frames, "text/event-stream");
    }
    frames.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 5}}),
    ));
    frames.push(event("message_stop", json!({"type": "message_stop"})));
    paced(frames, "text/event-stream")
}

// ---------------------------------------------------------------------------------------
// Gemini generateContent / streamGenerateContent

fn gemini_answer(model: &str, say: &Say, stream: bool) -> axum::response::Response {
    let finish = if say.cut() { "MAX_TOKENS" } else { "STOP" };
    let usage = json!({"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16});
    let candidate = |parts: Value, finish: Option<&str>| {
        let mut c = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(f) = finish {
            c["finishReason"] = f.into();
        }
        json!({"candidates": [c], "usageMetadata": usage, "modelVersion": model, "responseId": "gem_up_1"})
    };
    let call = json!([{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": SIGNATURE}]);
    if !stream {
        let parts = match say {
            Say::Call => call,
            _ => json!([{"text": say.text()}]),
        };
        return json_reply(200, candidate(parts, Some(finish)));
    }
    let mut frames = Vec::new();
    match say {
        Say::Call => frames.push(sse_data(&candidate(call, Some(finish)))),
        Say::Text(pieces, _) => {
            for (i, p) in pieces.iter().enumerate() {
                let last = i + 1 == pieces.len();
                frames.push(sse_data(&candidate(
                    json!([{ "text": p }]),
                    last.then_some(finish),
                )));
            }
        }
        Say::Break(text) => {
            frames.push(sse_data(&candidate(json!([{ "text": text }]), None)));
            frames.push(cut());
        }
    }
    paced(frames, "text/event-stream")
}

// ---------------------------------------------------------------------------------------
// Ollama /api/chat

fn ollama_answer(model: &Value, say: &Say, stream: bool) -> axum::response::Response {
    let reason = if say.cut() { "length" } else { "stop" };
    let calls = json!([{"function": {"name": "get_weather", "arguments": {"location": "Paris"}}}]);
    let done = |message: Value| {
        json!({"model": model, "created_at": "2025-07-07T20:22:19.19314Z", "message": message, "done": true,
            "done_reason": reason, "total_duration": 182242375, "load_duration": 41295167,
            "prompt_eval_count": 11, "prompt_eval_duration": 24573166, "eval_count": 5, "eval_duration": 115959084})
    };
    if !stream {
        let message = match say {
            Say::Call => json!({"role": "assistant", "content": "", "tool_calls": calls}),
            _ => json!({"role": "assistant", "content": say.text()}),
        };
        return json_reply(200, done(message));
    }
    let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
    let part = |message: Value| {
        line(
            json!({"model": model, "created_at": "2025-07-07T20:22:19.101234Z", "message": message, "done": false}),
        )
    };
    let mut frames = Vec::new();
    match say {
        Say::Call => frames.push(part(
            json!({"role": "assistant", "content": "", "tool_calls": calls}),
        )),
        Say::Text(pieces, _) => {
            for p in pieces {
                frames.push(part(json!({"role": "assistant", "content": p})));
            }
        }
        Say::Break(text) => {
            frames.push(part(json!({"role": "assistant", "content": text})));
            frames.push(cut());
            return paced(frames, "application/x-ndjson");
        }
    }
    frames.push(line(done(json!({"role": "assistant", "content": ""}))));
    paced(frames, "application/x-ndjson")
}

// ---------------------------------------------------------------------------------------
// OpenAI Responses (a server that keeps its own responses)

#[derive(Default)]
struct Kept {
    n: usize,
    /// id → (response, input items with ids).
    responses: HashMap<String, (Value, Vec<Value>)>,
}

fn not_found(message: String, param: Value, code: Value) -> axum::response::Response {
    json_reply(
        404,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}),
    )
}

/// `POST /v1/responses` as OpenAI answers it (ids `resp_up_N`), the response kept.
fn responses_create(kept: &Mutex<Kept>, body: &Value) -> axum::response::Response {
    let mut kept = kept.lock().unwrap();
    if let Some(prev) = body["previous_response_id"].as_str() {
        if !kept.responses.contains_key(prev) {
            return not_found(
                format!("Previous response with id '{prev}' not found."),
                json!("previous_response_id"),
                json!("previous_response_not_found"),
            );
        }
    }
    kept.n += 1;
    let n = kept.n;
    let id = format!("resp_up_{n}");
    let input: Vec<Value> = match &body["input"] {
        Value::String(s) => vec![json!({"type": "message", "role": "user", "content": s})],
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    };
    let input_items: Vec<Value> = input
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut item = item.clone();
            item["id"] = format!("in_up_{n}_{i}").into();
            if item["type"].is_null() {
                item["type"] = "message".into();
            }
            if item["type"] == "message" {
                if let Value::String(s) = &item["content"] {
                    item["content"] = json!([{"type": "input_text", "text": s}]);
                }
                item["status"] = "completed".into();
            }
            item
        })
        .collect();
    let last = input.last().cloned().unwrap_or(Value::Null);
    let a = Asked {
        user: input
            .iter()
            .rev()
            .find(|i| i["role"] == "user")
            .map(|i| text_of(&i["content"]))
            .unwrap_or_default(),
        tool_result: (last["type"] == "function_call_output").then(|| text_of(&last["output"])),
        tools: body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["type"] == "function"),
    };
    let say = decide("openai", &a);
    let (msg_id, fc_id, call_id) = (
        format!("msg_up_{n}"),
        format!("fc_up_{n}"),
        format!("call_up_{n}"),
    );
    let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
    let message = |status: &str, content: Value| json!({"id": msg_id, "type": "message", "status": status, "role": "assistant", "content": content});
    let function_call = |status: &str, arguments: &str| json!({"id": fc_id, "type": "function_call", "status": status, "call_id": call_id, "name": "get_weather", "arguments": arguments});
    let (status, item_status) = if say.cut() {
        ("incomplete", "incomplete")
    } else {
        ("completed", "completed")
    };
    let output = match &say {
        Say::Call => vec![function_call("completed", CALL_ARGS)],
        _ => vec![message(item_status, json!([part(&say.text())]))],
    };
    let response = |status: &str, output: Vec<Value>, usage: Value| {
        json!({"id": id, "object": "response", "created_at": 1_741_476_542, "status": status, "background": false,
            "error": null, "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
            "instructions": body["instructions"], "max_output_tokens": body["max_output_tokens"], "model": body["model"],
            "output": output, "parallel_tool_calls": true, "previous_response_id": body["previous_response_id"],
            "reasoning": {"effort": null, "summary": null}, "store": true, "temperature": 1.0,
            "text": body.get("text").cloned().unwrap_or(json!({"format": {"type": "text"}})),
            "tool_choice": body.get("tool_choice").cloned().unwrap_or(json!("auto")),
            "tools": body.get("tools").cloned().unwrap_or(json!([])), "top_p": 1.0, "truncation": "disabled",
            "usage": usage, "user": null, "metadata": {}})
    };
    let usage = json!({"input_tokens": 11, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 16});
    let whole = response(status, output.clone(), usage);
    kept.responses
        .insert(id.clone(), (whole.clone(), input_items));
    if body["stream"] != true {
        return json_reply(200, whole);
    }
    let mut seq = 0;
    let mut frames = Vec::new();
    let mut event = |kind: &str, mut data: Value| {
        data["type"] = kind.into();
        data["sequence_number"] = seq.into();
        seq += 1;
        frames.push(Ok(Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))));
    };
    event(
        "response.created",
        json!({"response": response("in_progress", vec![], Value::Null)}),
    );
    event(
        "response.in_progress",
        json!({"response": response("in_progress", vec![], Value::Null)}),
    );
    match &say {
        Say::Call => {
            event(
                "response.output_item.added",
                json!({"output_index": 0, "item": function_call("in_progress", "")}),
            );
            for piece in [r#"{"location":"#, r#""Paris"}"#] {
                event(
                    "response.function_call_arguments.delta",
                    json!({"item_id": fc_id, "output_index": 0, "delta": piece}),
                );
            }
            event(
                "response.function_call_arguments.done",
                json!({"item_id": fc_id, "output_index": 0, "arguments": CALL_ARGS}),
            );
        }
        _ => {
            let pieces = match &say {
                Say::Text(p, _) => p.clone(),
                _ => vec![say.text()],
            };
            event(
                "response.output_item.added",
                json!({"output_index": 0, "item": message("in_progress", json!([]))}),
            );
            event(
                "response.content_part.added",
                json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": part("")}),
            );
            for p in &pieces {
                event(
                    "response.output_text.delta",
                    json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": p, "logprobs": []}),
                );
            }
            let text = pieces.concat();
            event(
                "response.output_text.done",
                json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
            );
            event(
                "response.content_part.done",
                json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": part(&text)}),
            );
        }
    }
    event(
        "response.output_item.done",
        json!({"output_index": 0, "item": output[0]}),
    );
    let terminal = if say.cut() {
        "response.incomplete"
    } else {
        "response.completed"
    };
    event(terminal, json!({"response": whole}));
    if body["metadata"]["delivery"] == "at_once" {
        // The whole stream in one write.
        let all: Vec<u8> = frames
            .into_iter()
            .flat_map(|f| f.unwrap().to_vec())
            .collect();
        return ([("content-type", "text/event-stream")], all).into_response();
    }
    // Slowly enough that the router has noted the response (it does so when the first
    // event passes, without waiting for it) before the client can use its id: see
    // a_passed_through_stream_can_be_continued_as_soon_as_it_ends for the race.
    paced_by(frames, "text/event-stream", Duration::from_millis(15))
}

fn responses_read(kept: &Mutex<Kept>, method: &Method, path: &str) -> axum::response::Response {
    let mut kept = kept.lock().unwrap();
    let rest = path.strip_prefix("/v1/responses/").unwrap_or_default();
    let (id, items) = match rest.split_once('/') {
        Some((id, "input_items")) => (id.split('?').next().unwrap_or(id), true),
        Some(_) => return json_reply(404, json!({"error": {"message": "no such route"}})),
        None => (rest.split('?').next().unwrap_or(rest), false),
    };
    let missing = || {
        not_found(
            format!("Response with id '{id}' not found."),
            Value::Null,
            Value::Null,
        )
    };
    match (method.as_str(), items) {
        ("GET", false) => match kept.responses.get(id) {
            Some((r, _)) => json_reply(200, r.clone()),
            None => missing(),
        },
        ("DELETE", false) => match kept.responses.remove(id) {
            Some(_) => json_reply(
                200,
                json!({"id": id, "object": "response", "deleted": true}),
            ),
            None => missing(),
        },
        ("GET", true) => match kept.responses.get(id) {
            Some((_, items)) => {
                let data: Vec<Value> = items.iter().rev().cloned().collect();
                json_reply(
                    200,
                    json!({"object": "list", "data": data, "first_id": data.first().map(|i| i["id"].clone()),
                        "last_id": data.last().map(|i| i["id"].clone()), "has_more": false}),
                )
            }
            None => missing(),
        },
        _ => json_reply(405, json!({"error": {"message": "method not allowed"}})),
    }
}

/// The provider's documented error for a prompt that mentions `TOO LONG` (Ollama: its
/// model-not-found error), if this one does.
fn refusal(kind: &str, body: &Value) -> Option<axum::response::Response> {
    let user = match kind {
        "openai" => match &body["input"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        _ => asked(kind, body).user,
    };
    if !user.contains("TOO LONG") {
        return None;
    }
    let (status, file) = match kind {
        "openai" | "vllm" => (400, "openai/error_context_length.json"),
        "anthropic" => (400, "anthropic/error_invalid_request_too_long.json"),
        "gemini" => (400, "gemini/error_invalid_argument.json"),
        _ => (404, "ollama/error_model_not_found.json"),
    };
    let v: Value = serde_json::from_str(&fixture(file)).unwrap();
    Some(json_reply(status, v))
}

/// A test upstream of one kind: `openai` (takes `/v1/responses` and keeps its responses),
/// `vllm` (OpenAI-compatible chat), `anthropic`, `gemini` or `ollama`, each answering in
/// its own wire format, streamed and not (see [`Say`] for what it says). Every request is
/// recorded but the health probes (GETs outside `/v1/responses`, answered 404).
pub struct Provider {
    pub addr: SocketAddr,
    log: Log,
}

impl Provider {
    pub async fn start(kind: &'static str) -> Provider {
        let log: Log = Default::default();
        let kept: Arc<Mutex<Kept>> = Default::default();
        let record = log.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let record = record.clone();
            let kept = kept.clone();
            async move {
                let path = uri
                    .path_and_query()
                    .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
                if method == Method::GET && !path.starts_with("/v1/responses") {
                    return json_reply(404, json!({"error": "not found"}));
                }
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                record.lock().unwrap().push(Got {
                    method: method.clone(),
                    path: path.clone(),
                    body: body.clone(),
                });
                let model = body["model"].clone();
                if let Some(error) = refusal(kind, &body) {
                    return error;
                }
                match (kind, uri.path()) {
                    ("openai", "/v1/responses") if method == Method::POST => {
                        responses_create(&kept, &body)
                    }
                    ("openai", p) if p.starts_with("/v1/responses/") => {
                        responses_read(&kept, &method, &path)
                    }
                    ("vllm", "/v1/chat/completions") => {
                        let say = decide(kind, &asked(kind, &body));
                        let usage = body["stream_options"]["include_usage"] == true;
                        chat_answer(&model, &say, body["stream"] == true, usage)
                    }
                    ("anthropic", "/v1/messages") => {
                        let say = decide(kind, &asked(kind, &body));
                        anthropic_answer(&model, &say, body["stream"] == true)
                    }
                    ("ollama", "/api/chat") => {
                        let say = decide(kind, &asked(kind, &body));
                        ollama_answer(&model, &say, body["stream"] != false)
                    }
                    ("gemini", p) if p.starts_with("/v1beta/models/") => {
                        let call = p.trim_start_matches("/v1beta/models/");
                        let (model, method) = call.split_once(':').unwrap_or((call, ""));
                        let say = decide(kind, &asked(kind, &body));
                        gemini_answer(model, &say, method == "streamGenerateContent")
                    }
                    _ => json_reply(
                        404,
                        json!({"error": format!("{kind} does not serve {path}")}),
                    ),
                }
            }
        });
        Provider {
            addr: spawn_upstream(app).await,
            log,
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn got(&self) -> Vec<Got> {
        self.log.lock().unwrap().clone()
    }

    /// The bodies of the POSTs received so far.
    pub fn posted(&self) -> Vec<Value> {
        self.got()
            .into_iter()
            .filter(|g| g.method == Method::POST)
            .map(|g| g.body)
            .collect()
    }
}

/// The `backends:` entry for a [`Provider`] of `kind` serving `model`.
pub fn backend_yaml(kind: &str, url: &str, model: &str) -> String {
    match kind {
        "openai" => format!(
            "{{name: up, type: openai, url: \"{url}\", api_key: sk-upstream, models: [{model}]}}"
        ),
        "anthropic" | "gemini" => format!(
            "{{name: up, type: {kind}, url: \"{url}\", api_key: up-key, models: [{model}]}}"
        ),
        _ => format!("{{name: up, type: {kind}, url: \"{url}\", models: [{model}]}}"),
    }
}

/// A store file in a fresh temporary directory (every router here has its own).
pub fn store_yaml(name: &str) -> String {
    format!(
        "store: {{path: \"{}\"}}\n",
        temp_dir(name).join("store.redb").display()
    )
}

/// The events of an SSE text: (event name, data as JSON).
pub fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let v = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (name, v)
        })
        .collect()
}

async fn post(addr: SocketAddr, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}{path}"),
        body.to_string(),
        headers,
    )
    .await
}

async fn create(addr: SocketAddr, body: Value) -> Reply {
    post(addr, "/v1/responses", body, &[]).await
}

/// A router in front of one upstream of `kind` serving model `m`, with its own store.
async fn router_for(kind: &str, up: &Provider, extra: &str) -> continuum::RunningRouter {
    start_router(&format!(
        "{}{extra}backends:\n  - {}\n",
        store_yaml("responses"),
        backend_yaml(kind, &up.url(), "m")
    ))
    .await
}

/// The `type` of every event, after checking each event's name is its type and the
/// sequence numbers run 0, 1, 2….
fn checked_types(events: &[(String, Value)]) -> Vec<String> {
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "event {i}: {data}");
        assert_eq!(data["sequence_number"], i, "event {i}: {data}");
    }
    events.iter().map(|(n, _)| n.clone()).collect()
}

const TEXT_EVENTS: [&str; 11] = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
];

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["type"] == "message")
        .flat_map(|o| o["content"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["type"] == "output_text")
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The event stream

#[tokio::test]
async fn a_streamed_response_is_numbered_events_in_order_for_each_backend_type() {
    for kind in ["vllm", "anthropic", "gemini", "ollama", "openai"] {
        let up = Provider::start(kind).await;
        let router = router_for(kind, &up, "").await;
        let addr = router.tcp_addr().unwrap();
        let r = create(
            addr,
            json!({"model": "m", "input": "Say hello", "stream": true}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{kind}: {}", r.text());
        assert!(
            r.header("content-type").starts_with("text/event-stream"),
            "{kind}: {:?}",
            r.headers
        );
        let events = sse_events(&r.text());
        assert_eq!(checked_types(&events), TEXT_EVENTS, "{kind}: {}", r.text());
        let (_, created) = &events[0];
        let (_, done) = &events[10];
        let id = created["response"]["id"].as_str().unwrap().to_string();
        assert_eq!(created["response"]["status"], "in_progress", "{kind}");
        assert_eq!(created["response"]["output"], json!([]), "{kind}");
        assert_eq!(done["response"]["id"], id.as_str(), "{kind}");
        assert_eq!(done["response"]["status"], "completed", "{kind}");
        assert_eq!(done["response"]["model"], "m", "{kind}");
        let hello = format!("Hello from {kind}.");
        assert_eq!(output_text(&done["response"]), hello, "{kind}");
        assert_eq!(done["response"]["usage"]["input_tokens"], 11, "{kind}");
        assert_eq!(done["response"]["usage"]["output_tokens"], 5, "{kind}");
        assert_eq!(done["response"]["usage"]["total_tokens"], 16, "{kind}");
        let deltas: Vec<&str> = events
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, ["Hello", " from ", &format!("{kind}.")], "{kind}");
        // Every item event names the one message item.
        let item_id = events[2].1["item"]["id"].as_str().unwrap().to_string();
        for (name, data) in &events[2..10] {
            let named = data["item_id"].as_str().or(data["item"]["id"].as_str());
            assert_eq!(named, Some(item_id.as_str()), "{kind} {name}: {data}");
            assert_eq!(data["output_index"], 0, "{kind} {name}");
        }
        assert_eq!(events[7].1["text"], hello.as_str(), "{kind}");
        assert_eq!(events[8].1["part"]["text"], hello.as_str(), "{kind}");
        assert_eq!(events[9].1["item"]["status"], "completed", "{kind}");
        if kind == "openai" {
            assert_eq!(id, "resp_up_1", "passed through as the backend sent it");
        } else {
            assert!(
                id.len() == 37
                    && id.starts_with("resp_")
                    && id[5..].chars().all(|c| c.is_ascii_hexdigit()),
                "{id}"
            );
            assert!(item_id.starts_with("msg_"), "{item_id}");
        }

        // The streamed response is stored: retrieved whole, as the last event carried it
        // (a passed-through one: a_passed_through_stream_can_be_continued_as_soon_as_it_ends).
        if kind != "openai" {
            let got = get_path(addr, &format!("/v1/responses/{id}")).await;
            assert_eq!(got.status, StatusCode::OK, "{kind}: {}", got.text());
            assert_eq!(got.json(), done["response"], "{kind}");
        }
    }
}

#[tokio::test]
async fn a_streamed_function_call_is_added_argued_and_done() {
    let up = Provider::start("vllm").await;
    let router = router_for("vllm", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}]);
    let r = create(
        addr,
        json!({"model": "m", "input": "Weather in Paris?", "tools": tools, "stream": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = sse_events(&r.text());
    assert_eq!(
        checked_types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ],
        "{}",
        r.text()
    );
    let added = &events[2].1["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(added["status"], "in_progress");
    assert_eq!(added["call_id"], "call_up_1");
    assert_eq!(added["name"], "get_weather");
    assert_eq!(added["arguments"], "");
    assert_eq!(events[3].1["delta"], r#"{"location":"#);
    assert_eq!(events[4].1["delta"], r#""Paris"}"#);
    assert_eq!(events[5].1["arguments"], CALL_ARGS);
    let done = &events[6].1["item"];
    assert_eq!(done["id"], added["id"]);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["arguments"], CALL_ARGS);
    let response = &events[7].1["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"], json!([done]));
    assert_eq!(response["tools"], tools, "the request's tools are echoed");
    // The chat backend got the function tool in chat form.
    let sent = up.posted();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}])
    );
    assert_eq!(sent[0]["stream"], true);
    assert_eq!(sent[0]["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn a_length_finish_is_an_incomplete_response_streamed_and_not() {
    for kind in ["vllm", "anthropic", "gemini", "ollama"] {
        let up = Provider::start(kind).await;
        let router = router_for(kind, &up, "").await;
        let addr = router.tcp_addr().unwrap();

        let r = create(
            addr,
            json!({"model": "m", "input": "A LONG answer please", "max_output_tokens": 3}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{kind}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "incomplete", "{kind}: {v}");
        assert_eq!(
            v["incomplete_details"],
            json!({"reason": "max_output_tokens"}),
            "{kind}"
        );
        assert_eq!(v["output"][0]["status"], "incomplete", "{kind}: {v}");
        assert_eq!(output_text(&v), "This answer is cut", "{kind}");
        assert_eq!(v["max_output_tokens"], 3, "{kind}");

        let r = create(addr, json!({"model": "m", "input": "A LONG answer please", "max_output_tokens": 3, "stream": true})).await;
        assert_eq!(r.status, StatusCode::OK, "{kind}: {}", r.text());
        let events = sse_events(&r.text());
        let types = checked_types(&events);
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.incomplete",
            ],
            "{kind}: {}",
            r.text()
        );
        assert_eq!(events[8].1["item"]["status"], "incomplete", "{kind}");
        let last = &events[9].1["response"];
        assert_eq!(last["status"], "incomplete", "{kind}");
        assert_eq!(
            last["incomplete_details"],
            json!({"reason": "max_output_tokens"}),
            "{kind}"
        );
        assert_eq!(output_text(last), "This answer is cut", "{kind}");
        // What each backend was asked: the limit in its own words.
        let sent = up.posted();
        let limit = match kind {
            "vllm" => sent[0]["max_tokens"].clone(),
            "anthropic" => sent[0]["max_tokens"].clone(),
            "gemini" => sent[0]["generationConfig"]["maxOutputTokens"].clone(),
            _ => sent[0]["options"]["num_predict"].clone(),
        };
        assert_eq!(limit, 3, "{kind}: {}", sent[0]);
    }
}

#[tokio::test]
async fn an_upstream_stream_that_breaks_is_a_failed_response() {
    for kind in ["vllm", "anthropic", "gemini", "ollama"] {
        let up = Provider::start(kind).await;
        let router = router_for(kind, &up, "").await;
        let addr = router.tcp_addr().unwrap();
        let r = create(
            addr,
            json!({"model": "m", "input": "BREAK now", "stream": true}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{kind}: {}", r.text());
        let events = sse_events(&r.text());
        let types = checked_types(&events);
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.failed",
            ],
            "{kind}: {}",
            r.text()
        );
        assert_eq!(events[4].1["delta"], "Half an answer", "{kind}");
        let failed = &events[5].1["response"];
        assert_eq!(failed["status"], "failed", "{kind}: {failed}");
        assert_eq!(failed["error"]["code"], "server_error", "{kind}: {failed}");
        assert!(
            failed["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{kind}: {failed}"
        );
        assert_eq!(
            failed["output"][0]["status"], "incomplete",
            "{kind}: {failed}"
        );
        assert_eq!(output_text(failed), "Half an answer", "{kind}");
    }
}

#[tokio::test]
async fn a_backend_error_is_an_openai_error_with_its_status_streamed_or_not() {
    let context = "This model's maximum context length is 200000 tokens. However, your messages resulted in 204308 tokens. Please reduce the length of the messages.";
    for (kind, status, message, code) in [
        ("vllm", 400, context, "context_length_exceeded"),
        ("openai", 400, context, "context_length_exceeded"),
        ("anthropic", 400, "prompt is too long: 208656 tokens > 200000 maximum", "context_length_exceeded"),
        ("gemini", 400, "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).", "context_length_exceeded"),
        ("ollama", 404, "model 'llama3.2' not found", "model_not_found"),
    ] {
        let up = Provider::start(kind).await;
        let router = router_for(kind, &up, "").await;
        let addr = router.tcp_addr().unwrap();
        for stream in [false, true] {
            let r = create(
                addr,
                json!({"model": "m", "input": "A prompt that is TOO LONG", "stream": stream}),
            )
            .await;
            assert_eq!(r.status.as_u16(), status, "{kind} stream={stream}: {}", r.text());
            assert!(
                r.header("content-type").starts_with("application/json"),
                "{kind} stream={stream}: {:?}",
                r.headers
            );
            let e = &r.json()["error"];
            assert_eq!(e["message"], message, "{kind} stream={stream}: {e}");
            assert_eq!(e["code"], code, "{kind} stream={stream}: {e}");
            assert_eq!(e["type"], "invalid_request_error", "{kind} stream={stream}: {e}");
        }
        let sent = up.posted();
        assert_eq!(sent.len(), 2, "{kind}: one attempt each, no retries of a 4xx");
    }
}

// ---------------------------------------------------------------------------------------
// Hosted tools

#[tokio::test]
async fn a_hosted_tool_is_left_out_when_tool_choice_is_auto() {
    let up = Provider::start("vllm").await;
    let router = router_for("vllm", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    let weather =
        json!({"type": "function", "name": "get_weather", "parameters": {"type": "object"}});
    for choice in [None, Some("auto")] {
        let mut body =
            json!({"model": "m", "input": "Say hello", "tools": [{"type": "web_search"}, weather]});
        if let Some(c) = choice {
            body["tool_choice"] = c.into();
        }
        let r = create(addr, body).await;
        assert_eq!(r.status, StatusCode::OK, "{choice:?}: {}", r.text());
        assert_eq!(r.header("x-continuum-dropped-tools"), "web_search");
        assert_eq!(r.json()["output"][0]["type"], "function_call");
    }
    // Streamed alike.
    let r = create(
        addr,
        json!({"model": "m", "input": "Say hello", "stream": true, "tools": [{"type": "web_search"}, weather]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-dropped-tools"), "web_search");
    let events = sse_events(&r.text());
    assert_eq!(
        events.last().unwrap().0,
        "response.completed",
        "{}",
        r.text()
    );
    // Alone, it leaves no tools at all.
    let r = create(
        addr,
        json!({"model": "m", "input": "Say hello", "tools": [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.header("x-continuum-dropped-tools"),
        "web_search, file_search"
    );
    assert_eq!(output_text(&r.json()), "Hello from vllm.");
    // Without hosted tools there is no header.
    let r = create(
        addr,
        json!({"model": "m", "input": "Say hello", "tools": [weather]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-continuum-dropped-tools").is_none());

    let sent = up.posted();
    assert_eq!(sent.len(), 5);
    let chat_weather = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    assert_eq!(sent[0]["tools"], chat_weather);
    assert_eq!(sent[1]["tools"], chat_weather);
    assert_eq!(sent[1]["tool_choice"], "auto");
    assert_eq!(sent[2]["tools"], chat_weather);
    assert!(sent[3].get("tools").is_none(), "{}", sent[3]);
    assert!(sent[3].get("tool_choice").is_none(), "{}", sent[3]);
    assert_eq!(sent[4]["tools"], chat_weather);
}

#[tokio::test]
async fn a_hosted_tool_the_model_must_use_is_a_400_naming_it() {
    let up = Provider::start("vllm").await;
    let router = router_for("vllm", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    let weather =
        json!({"type": "function", "name": "get_weather", "parameters": {"type": "object"}});
    for stream in [false, true] {
        let r = create(
            addr,
            json!({"model": "m", "input": "Search", "stream": stream, "tool_choice": "required", "tools": [weather, {"type": "web_search"}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["param"], "tools", "{e}");
        assert_eq!(e["type"], "invalid_request_error", "{e}");
        assert_eq!(
            e["message"],
            "the hosted tool 'web_search' cannot run on backend 'up' (type vllm); remove it or let tool_choice be auto",
        );
    }
    // Forcing the hosted tool itself.
    let r = create(
        addr,
        json!({"model": "m", "input": "Search", "tool_choice": {"type": "web_search"}, "tools": [{"type": "web_search"}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "tool_choice");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'web_search'"),
        "{}",
        r.text()
    );
    assert!(up.got().is_empty(), "{:?}", up.got());
}

/// A client that streams a function call from a backend that keeps its own responses,
/// then at once sends the tool's output with `previous_response_id` (every agent loop does),
/// must find the response: the router must have noted where it lives by the time the
/// stream ends, as it stores the responses it makes before their terminal event.
#[tokio::test]
async fn a_passed_through_stream_can_be_continued_as_soon_as_it_ends() {
    let up = Provider::start("openai").await;
    let router = router_for("openai", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    let tools =
        json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    for round in 1..=5 {
        let r = create(
            addr,
            json!({"model": "m", "input": "Weather?", "tools": tools, "stream": true, "metadata": {"delivery": "at_once"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let events = sse_events(&r.text());
        let done = &events.last().unwrap().1["response"];
        let id = format!("resp_up_{}", 2 * round - 1);
        assert_eq!(done["id"], id.as_str(), "{}", r.text());
        let call_id = done["output"][0]["call_id"].as_str().unwrap();
        let next = create(
            addr,
            json!({"model": "m", "previous_response_id": id, "tools": tools,
                "input": [{"type": "function_call_output", "call_id": call_id, "output": "15 degrees"}]}),
        )
        .await;
        assert_eq!(
            next.status,
            StatusCode::OK,
            "round {round}: the response streamed a moment ago is not found: {}",
            next.text()
        );
        assert_eq!(output_text(&next.json()), "It is 15 degrees in Paris.");
        let got = get_path(addr, &format!("/v1/responses/{id}")).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    }
}

#[tokio::test]
async fn hosted_tools_pass_through_to_a_backend_that_takes_responses() {
    let up = Provider::start("openai").await;
    let router = router_for("openai", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    let body = json!({"model": "m", "input": "Say hello", "tool_choice": "required", "tools": [{"type": "web_search"}]});
    let r = create(addr, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.headers.get("x-continuum-dropped-tools").is_none());
    assert_eq!(up.posted(), [body]);
}

// ---------------------------------------------------------------------------------------
// previous_response_id

#[tokio::test]
async fn a_response_made_with_store_false_is_not_kept() {
    let up = Provider::start("vllm").await;
    let router = router_for("vllm", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    for stream in [false, true] {
        let r = create(
            addr,
            json!({"model": "m", "input": "Say hello", "store": false, "stream": stream}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let response = if stream {
            sse_events(&r.text()).last().unwrap().1["response"].clone()
        } else {
            r.json()
        };
        assert_eq!(response["store"], false, "{response}");
        assert_eq!(output_text(&response), "Hello from vllm.");
        let id = response["id"].as_str().unwrap();
        let got = get_path(addr, &format!("/v1/responses/{id}")).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{}", got.text());
        let r = create(
            addr,
            json!({"model": "m", "input": "Again", "previous_response_id": id}),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    }
    assert_eq!(up.posted().len(), 2);
}

#[tokio::test]
async fn an_unknown_previous_response_id_is_a_404() {
    for kind in ["vllm", "openai"] {
        let up = Provider::start(kind).await;
        let router = router_for(kind, &up, "").await;
        let addr = router.tcp_addr().unwrap();
        for stream in [false, true] {
            let r = create(
                addr,
                json!({"model": "m", "input": "Again", "previous_response_id": "resp_nope", "stream": stream}),
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{kind}: {}", r.text());
            let e = &r.json()["error"];
            assert_eq!(e["message"], "no response found with id 'resp_nope'", "{e}");
            assert_eq!(e["code"], "not_found", "{e}");
        }
        for path in [
            "/v1/responses/resp_nope",
            "/v1/responses/resp_nope/input_items",
        ] {
            let r = get_path(addr, path).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        }
        let r = send(
            Method::DELETE,
            format!("http://{addr}/v1/responses/resp_nope"),
            Bytes::new(),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
        assert!(up.got().is_empty(), "{kind}: {:?}", up.got());
    }
}

#[tokio::test]
async fn a_conversation_survives_a_router_restart() {
    let up = Provider::start("vllm").await;
    let store = store_yaml("restart");
    let config = format!(
        "{store}backends:\n  - {}\n",
        backend_yaml("vllm", &up.url(), "m")
    );

    let router = start_router(&config).await;
    let addr = router.tcp_addr().unwrap();
    let r = create(
        addr,
        json!({"model": "m", "input": "Say hello", "instructions": "Be brief."}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = r.json();
    let id = first["id"].as_str().unwrap().to_string();
    assert!(
        router.shutdown().await,
        "the first router did not stop cleanly"
    );

    let router = start_router(&config).await;
    let addr = router.tcp_addr().unwrap();
    let got = get_path(addr, &format!("/v1/responses/{id}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.json(), first);

    let r = create(
        addr,
        json!({"model": "m", "input": "Say hello again", "previous_response_id": id, "stream": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = sse_events(&r.text());
    let done = &events.last().unwrap().1;
    assert_eq!(done["type"], "response.completed", "{}", r.text());
    assert_eq!(done["response"]["previous_response_id"], id.as_str());
    let second = done["response"]["id"].as_str().unwrap().to_string();
    // The backend got the whole conversation (the instructions belong to the first turn
    // only, as OpenAI does it).
    let sent = up.posted();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1]["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
            {"role": "assistant", "content": "Hello from vllm."},
            {"role": "user", "content": "Say hello again"},
        ])
    );
    let got = get_path(addr, &format!("/v1/responses/{second}")).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    assert_eq!(got.json(), done["response"]);
    let items = get_path(addr, &format!("/v1/responses/{second}/input_items")).await;
    assert_eq!(items.status, StatusCode::OK, "{}", items.text());
    let own = second.strip_prefix("resp_").unwrap();
    assert_eq!(
        items.json(),
        json!({"object": "list", "first_id": format!("msg_{own}_in0"), "last_id": format!("msg_{own}_in0"), "has_more": false,
            "data": [{"id": format!("msg_{own}_in0"), "type": "message", "role": "user", "status": "completed",
                "content": [{"type": "input_text", "text": "Say hello again"}]}]})
    );
}

// ---------------------------------------------------------------------------------------
// Global prompts

#[tokio::test]
async fn a_global_prompt_is_the_system_message_on_chat_and_the_instructions_on_passthrough() {
    let chat = Provider::start("vllm").await;
    let pass = Provider::start("openai").await;
    let router = start_router(&format!(
        "{}global_prompts: {{default: RULES}}\nbackends:\n  - {{name: chat, type: vllm, url: \"{}\", models: [chat-m]}}\n  - {{name: pass, type: openai, url: \"{}\", api_key: k, models: [pass-m]}}\n",
        store_yaml("prompts"),
        chat.url(),
        pass.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    for model in ["chat-m", "pass-m"] {
        for instructions in [None, Some("Be brief.")] {
            let mut body = json!({"model": model, "input": "Say hello"});
            if let Some(i) = instructions {
                body["instructions"] = i.into();
            }
            let r = create(addr, body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            if model == "chat-m" {
                // The client is told its own instructions, not the router's prompt.
                assert_eq!(r.json()["instructions"], json!(instructions));
            }
        }
    }
    let sent = chat.posted();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0]["messages"],
        json!([{"role": "system", "content": "RULES"}, {"role": "user", "content": "Say hello"}])
    );
    assert_eq!(
        sent[1]["messages"],
        json!([{"role": "system", "content": "RULES\n\nBe brief."}, {"role": "user", "content": "Say hello"}])
    );
    let sent = pass.posted();
    assert_eq!(
        sent,
        [
            json!({"model": "pass-m", "input": "Say hello", "instructions": "RULES"}),
            json!({"model": "pass-m", "input": "Say hello", "instructions": "RULES\n\nBe brief."}),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Chat and Anthropic clients on Responses-only models

async fn responses_only_router(up: &Provider) -> continuum::RunningRouter {
    start_router(&format!(
        "{}backends:\n  - {{name: pro, type: openai, url: \"{}\", api_key: k, models: [gpt-pro, gpt-chat], responses_only_models: [gpt-pro]}}\n",
        store_yaml("responses-only"),
        up.url()
    ))
    .await
}

#[tokio::test]
async fn a_chat_client_gets_answers_from_a_responses_only_model() {
    let up = Provider::start("openai").await;
    let router = responses_only_router(&up).await;
    let addr = router.tcp_addr().unwrap();
    let messages = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]);

    let r = chat(
        addr,
        &json!({"model": "gpt-pro", "messages": messages}).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["model"], "gpt-pro");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello from openai.", "refusal": null})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 11);
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["usage"]["total_tokens"], 16);

    let r = chat(
        addr,
        &json!({"model": "gpt-pro", "messages": messages, "stream": true, "stream_options": {"include_usage": true}}).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = sse_events(&r.text());
    assert_eq!(events.last().unwrap().1, "[DONE]", "{}", r.text());
    let chunks: Vec<&Value> = events[..events.len() - 1].iter().map(|(_, d)| d).collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["model"], "gpt-pro", "{c}");
    }
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from openai.");
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, [&json!("stop")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 11, "{}", r.text());
    assert_eq!(usage["completion_tokens"], 5);

    // A tool call, and its result in the next turn.
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let r = chat(addr, &json!({"model": "gpt-pro", "tools": tools, "messages": [{"role": "user", "content": "Weather?"}]}).to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"],
        json!([{"id": "call_up_3", "type": "function", "function": {"name": "get_weather", "arguments": CALL_ARGS}}])
    );
    let r = chat(addr, &json!({"model": "gpt-pro", "tools": tools, "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": v["choices"][0]["message"]["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_up_3", "content": "15 degrees"}]}).to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "It is 15 degrees in Paris."
    );

    let got = up.got();
    assert!(got.iter().all(|g| g.path == "/v1/responses"), "{got:?}");
    let sent = up.posted();
    let input = json!([{"type": "message", "role": "system", "content": "Be brief."}, {"type": "message", "role": "user", "content": "Say hello"}]);
    assert_eq!(
        sent[0],
        json!({"model": "gpt-pro", "input": input, "store": false})
    );
    assert_eq!(
        sent[1],
        json!({"model": "gpt-pro", "input": input, "store": false, "stream": true})
    );
    assert_eq!(
        sent[2]["tools"],
        json!([{"type": "function", "name": "get_weather", "strict": false, "parameters": {"type": "object"}}])
    );
    assert_eq!(
        sent[3]["input"],
        json!([
            {"type": "message", "role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "call_up_3", "name": "get_weather", "arguments": CALL_ARGS},
            {"type": "function_call_output", "call_id": "call_up_3", "output": "15 degrees"},
        ])
    );

    // The other model on the same backend is chat as usual.
    let r = chat(
        addr,
        &json!({"model": "gpt-chat", "messages": messages}).to_string(),
    )
    .await;
    assert_eq!(
        up.got().last().unwrap().path,
        "/v1/chat/completions",
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn an_anthropic_client_gets_answers_from_a_responses_only_model() {
    let up = Provider::start("openai").await;
    let router = responses_only_router(&up).await;
    let addr = router.tcp_addr().unwrap();
    let body = json!({"model": "gpt-pro", "max_tokens": 100, "system": "Be brief.", "messages": [{"role": "user", "content": "Say hello"}]});

    let r = post(addr, "/v1/messages", body.clone(), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt-pro");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from openai."}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 11, "{v}");
    assert_eq!(v["usage"]["output_tokens"], 5, "{v}");

    let mut streamed = body.clone();
    streamed["stream"] = true.into();
    let r = post(addr, "/v1/messages", streamed, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let events = sse_events(&r.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{}", r.text());
    assert_eq!(names.last(), Some(&"message_stop"), "{}", r.text());
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from openai.");
    let stop: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "message_delta")
        .map(|(_, d)| &d["delta"]["stop_reason"])
        .collect();
    assert_eq!(stop, [&json!("end_turn")], "{}", r.text());

    let sent = up.posted();
    assert_eq!(up.got().len(), 2);
    let input = json!([{"type": "message", "role": "system", "content": "Be brief."}, {"type": "message", "role": "user", "content": "Say hello"}]);
    assert_eq!(
        sent[0],
        json!({"model": "gpt-pro", "input": input, "store": false, "max_output_tokens": 100})
    );
    assert_eq!(
        sent[1],
        json!({"model": "gpt-pro", "input": input, "store": false, "max_output_tokens": 100, "stream": true})
    );
}

// ---------------------------------------------------------------------------------------
// Structured output on an Anthropic backend

#[tokio::test]
async fn structured_output_reaches_an_anthropic_backend_as_its_output_format() {
    let up = Provider::start("anthropic").await;
    let router = router_for("anthropic", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
        "required": ["city", "temperature"], "additionalProperties": false});
    let r = create(
        addr,
        json!({"model": "m", "input": "The weather in Paris as JSON",
            "text": {"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": true}}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent = up.posted();
    assert_eq!(sent.len(), 1);
    // Anthropic's structured outputs: `output_config.format` (Messages API reference).
    assert_eq!(
        sent[0]["output_config"]["format"],
        json!({"type": "json_schema", "schema": schema}),
        "the schema was not sent to the Anthropic backend: {}",
        sent[0]
    );
}

// ---------------------------------------------------------------------------------------
// Scopes and metrics

#[tokio::test]
async fn the_responses_endpoints_need_the_chat_scope() {
    let up = Provider::start("vllm").await;
    let router = router_for(
        "vllm",
        &up,
        "api_keys:\n  mode: blocking\n  api_keys:\n    - {key: sk-embed-only-1, id: embedder, scopes: [embeddings]}\n    - {key: sk-chatter-0001, id: chatter, scopes: [chat]}\n",
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let embedder = [("authorization", "Bearer sk-embed-only-1")];
    let chatter = [("authorization", "Bearer sk-chatter-0001")];
    let body = json!({"model": "m", "input": "Say hello"});

    let r = post(addr, "/v1/responses", body.clone(), &embedder).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        r.json()["error"]["type"],
        "permission_error",
        "{}",
        r.text()
    );
    let r = post(addr, "/v1/responses", body.clone(), &chatter).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    for (method, path) in [
        (Method::GET, format!("/v1/responses/{id}")),
        (Method::GET, format!("/v1/responses/{id}/input_items")),
        (Method::DELETE, format!("/v1/responses/{id}")),
    ] {
        let r = send(
            method.clone(),
            format!("http://{addr}{path}"),
            Bytes::new(),
            &embedder,
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            r.text()
        );
        let r = send(
            method.clone(),
            format!("http://{addr}{path}"),
            Bytes::new(),
            &chatter,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{method} {path}: {}", r.text());
        if method == Method::DELETE {
            assert_eq!(
                r.json(),
                json!({"id": id, "object": "response", "deleted": true})
            );
        }
    }
    let r = get_path(addr, &format!("/v1/responses/{id}")).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "blocking mode: {}",
        r.text()
    );
    let r = post(addr, "/v1/responses", body, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(up.posted().len(), 1);
}

#[tokio::test]
async fn metrics_count_responses_under_their_endpoint() {
    let up = Provider::start("vllm").await;
    let router = router_for("vllm", &up, "").await;
    let addr = router.tcp_addr().unwrap();
    for stream in [false, true, false] {
        let r = create(
            addr,
            json!({"model": "m", "input": "Say hello", "stream": stream}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = create(
        addr,
        json!({"model": "m", "input": "Again", "previous_response_id": "resp_nope"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let text = get_path(addr, "/metrics").await.text();
    assert!(
        text.contains("continuum_requests_total{endpoint=\"/v1/responses\",model=\"m\",backend=\"up\",status=\"200\"} 3\n"),
        "{text}"
    );
    let n404 = text
        .lines()
        .find(|l| {
            l.starts_with("continuum_requests_total{endpoint=\"/v1/responses\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no 404 counted for /v1/responses:\n{text}"));
    assert!(n404.ends_with(" 1"), "{n404}");
    assert!(
        !text.contains("endpoint=\"/v1/chat/completions\""),
        "a Responses call is not counted as chat:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------
// Conversations across backends

/// A conversation the router holds (made on a chat backend) continued on a model whose
/// backend takes Responses itself: the backend never saw those ids, so it gets the earlier
/// items inlined before the new input, and no `previous_response_id`. The response it
/// issues lives there; the next turn goes to it with its id.
#[tokio::test]
async fn a_router_held_conversation_continues_on_a_responses_backend() {
    let chat = Provider::start("vllm").await;
    let pass = Provider::start("openai").await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: chat, type: vllm, url: \"{}\", models: [chat-m]}}\n  - {{name: pass, type: openai, url: \"{}\", api_key: k, models: [pass-m]}}\n",
        store_yaml("across"),
        chat.url(),
        pass.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = create(addr, json!({"model": "chat-m", "input": "Say hello"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let first = r.json()["id"].as_str().unwrap().to_string();

    let r = create(
        addr,
        json!({"model": "pass-m", "input": "And again", "previous_response_id": first}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["id"], "resp_up_1");
    let sent = pass.posted();
    assert_eq!(sent.len(), 1);
    let mut body = sent[0].clone();
    for item in body["input"].as_array_mut().unwrap() {
        item.as_object_mut().unwrap().remove("id");
    }
    assert_eq!(
        body,
        json!({"model": "pass-m", "input": [
            {"type": "message", "role": "user", "status": "completed", "content": [{"type": "input_text", "text": "Say hello"}]},
            {"type": "message", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "Hello from vllm.", "annotations": [], "logprobs": []}]},
            {"role": "user", "content": "And again"},
        ]})
    );

    let r = create(
        addr,
        json!({"model": "pass-m", "input": "Once more", "previous_response_id": "resp_up_1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        pass.posted()[1],
        json!({"model": "pass-m", "input": "Once more", "previous_response_id": "resp_up_1"})
    );
}

/// A conversation held by a backend that keeps its own responses cannot move to a model
/// that backend does not serve (the router has none of its items): the client is told so
/// (400, naming `previous_response_id`), not that the model has no healthy backend.
#[tokio::test]
async fn a_backend_held_conversation_cannot_move_to_a_model_its_backend_does_not_serve() {
    let chat = Provider::start("vllm").await;
    let pass = Provider::start("openai").await;
    let router = start_router(&format!(
        "{}backends:\n  - {{name: chat, type: vllm, url: \"{}\", models: [chat-m]}}\n  - {{name: pass, type: openai, url: \"{}\", api_key: k, models: [pass-m]}}\n",
        store_yaml("pinned"),
        chat.url(),
        pass.url()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = create(addr, json!({"model": "pass-m", "input": "Say hello"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = create(
        addr,
        json!({"model": "chat-m", "input": "And again", "previous_response_id": "resp_up_1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(
        r.json()["error"]["param"],
        "previous_response_id",
        "{}",
        r.text()
    );
    assert!(chat.posted().is_empty());
    assert_eq!(pass.posted().len(), 1);
}
