//! Round trips through the Responses translations: chat → Responses → chat keeps a
//! conversation, a reply, and a stream's text, reasoning and tool calls.

use serde_json::{json, Value};

use super::*;

/// A tool call: id, name, arguments.
type Call = (String, String, String);
/// A message: role, text, tool calls, tool_call_id. For a stream: text, reasoning, tool
/// calls, finish reason.
type Essence = (String, String, Vec<Call>, String);

fn ctx() -> ResponseCtx {
    ResponseCtx::new("resp_t", 1700000000, "m")
}

fn delta(d: Value) -> Value {
    json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

/// What must survive a round trip of a conversation: role, text, tool calls, call answered.
fn chat_essence(body: &Value) -> Vec<Essence> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let calls = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["id"].as_str().unwrap().to_string(),
                        c["function"]["name"].as_str().unwrap().to_string(),
                        c["function"]["arguments"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (
                m["role"].as_str().unwrap().to_string(),
                crate::protocol::openai::text_of(&m["content"]),
                calls,
                m["tool_call_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn chat_to_responses_and_back_keeps_the_conversation() {
    let chat = json!({"model": "m", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{\"q\":1}"}},
            {"id": "c2", "type": "function", "function": {"name": "w", "arguments": "{\"q\":2}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sun"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        {"role": "assistant", "content": "Sun, then rain."},
        {"role": "user", "content": "Thanks"}]});
    let (responses, _) = from_chat_request(chat.to_string().as_bytes()).unwrap();
    let back = to_chat_request(&responses, &[]).unwrap();
    let back: Value = serde_json::from_slice(&back.body).unwrap();
    assert_eq!(chat_essence(&back), chat_essence(&chat));
}

#[test]
fn a_chat_reply_through_a_response_and_back_keeps_its_content() {
    let reply = json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Calling.", "reasoning_content": "Think.", "refusal": null,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}});
    let response = from_chat_response(reply.to_string().as_bytes(), &ctx()).unwrap();
    let back: Value =
        serde_json::from_slice(&to_chat_response(response.to_string().as_bytes(), "m").unwrap())
            .unwrap();
    assert_eq!(back["choices"][0]["message"]["content"], "Calling.");
    assert_eq!(back["choices"][0]["message"]["reasoning_content"], "Think.");
    assert_eq!(
        back["choices"][0]["message"]["tool_calls"],
        reply["choices"][0]["message"]["tool_calls"]
    );
    assert_eq!(back["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(back["usage"], reply["usage"]);
}

/// Text, reasoning and tool calls of a chat chunk stream, accumulated.
fn accumulate(sse: &str) -> Essence {
    let (mut text, mut reasoning, mut calls, mut finish) = (
        String::new(),
        String::new(),
        Vec::<Call>::new(),
        String::new(),
    );
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let choice = &v["choices"][0];
        let d = &choice["delta"];
        text.push_str(d["content"].as_str().unwrap_or(""));
        reasoning.push_str(d["reasoning_content"].as_str().unwrap_or(""));
        for c in d["tool_calls"].as_array().into_iter().flatten() {
            let i = c["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.push((
                    c["id"].as_str().unwrap().into(),
                    c["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            calls[i]
                .2
                .push_str(c["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.to_string();
        }
    }
    (text, reasoning, calls, finish)
}

#[test]
fn a_chat_stream_through_responses_events_and_back_keeps_its_content() {
    let mut rng = fastrand::Rng::with_seed(5);
    for case in 0..100 {
        let mut chat = String::new();
        let mut push = |v: Value| chat.push_str(&format!("data: {v}\n\n"));
        push(delta(json!({"role": "assistant", "content": ""})));
        for _ in 0..rng.usize(0..4) {
            push(delta(
                json!({"reasoning_content": format!("r{} ", rng.u8(..))}),
            ));
        }
        for _ in 0..rng.usize(0..4) {
            push(delta(json!({"content": format!("t{} ", rng.u8(..))})));
        }
        let calls = rng.usize(0..3);
        for i in 0..calls {
            push(delta(
                json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                "function": {"name": format!("f{i}"), "arguments": ""}}]}),
            ));
            for _ in 0..rng.usize(1..4) {
                push(delta(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": format!("{{{}}}", rng.u8(..))}}]}),
                ));
            }
        }
        let reason = if rng.bool() {
            "length"
        } else if calls > 0 {
            "tool_calls"
        } else {
            "stop"
        };
        push(finish(reason));
        push(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}));
        chat.push_str("data: [DONE]\n\n");

        let mut to_responses = StreamTranslator::new(ctx());
        let events = to_responses.feed(chat.as_bytes()) + &to_responses.finish();
        let mut back = ChatStreamTranslator::new("m", "x", true);
        let chunks = back.feed(events.as_bytes()).unwrap();
        assert!(back.is_done(), "case {case}: {events}");
        assert_eq!(
            accumulate(&chunks),
            accumulate(&chat),
            "case {case}: {events}"
        );
    }
}
