//! Edge cases of the Responses translations, and round trips through them (the golden
//! cases in `tests/fixtures/golden/*responses*` cover the documented shapes).

use serde_json::{json, Value};

use super::*;
use crate::error::ProxyError;
use crate::protocol::codec::ChunkTranslator;

fn chat_body(request: Value) -> Value {
    let r = to_chat_request(request.to_string().as_bytes(), &[]).unwrap();
    serde_json::from_slice(&r.body).unwrap()
}

/// The refusal of `request`: its field and message.
fn refusal(request: Value) -> (&'static str, String) {
    match to_chat_request(request.to_string().as_bytes(), &[]) {
        Err(ProxyError::InvalidField { param, message }) => (param, message),
        other => panic!("{request} is not refused with a field: {other:?}"),
    }
}

#[test]
fn requests_are_refused_naming_the_field() {
    assert!(matches!(
        to_chat_request(br#"{"input":"hi"}"#, &[]),
        Err(ProxyError::MissingModel)
    ));
    assert!(matches!(
        to_chat_request(b"[1]", &[]),
        Err(ProxyError::InvalidJson(_))
    ));
    let cases = [
        (
            json!({"model": 5, "input": "hi"}),
            "model",
            "'model' must be a string",
        ),
        (json!({"model": "m"}), "input", "'input' is required"),
        (json!({"model": "m", "input": 3}), "input", "not a number"),
        (
            json!({"model": "m", "input": ["hi"]}),
            "input",
            "input[0] must be an object",
        ),
        (
            json!({"model": "m", "input": [{"content": "x"}]}),
            "input",
            "input[0].type: Field required",
        ),
        (
            json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
            "input",
            "input[0].role: 'tool'",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": 7}]}),
            "input",
            "input[0].content must be",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
            "input",
            "input[0].call_id: Field required",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "data:,"}]}]}),
            "input",
            "input[0].output[0].type: 'input_image'",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input",
            "'item_reference'",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]}),
            "input",
            "input[0].content[0].file_id",
        ),
        (
            json!({"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]}),
            "input",
            "in a system message",
        ),
        (
            json!({"model": "m", "input": "hi", "instructions": ["x"]}),
            "instructions",
            "'instructions' must be a string",
        ),
        (
            json!({"model": "m", "input": "hi", "background": true}),
            "background",
            "background",
        ),
        (
            json!({"model": "m", "input": "hi", "conversation": "conv_1"}),
            "conversation",
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": "hi", "prompt": {"id": "pmpt_1"}}),
            "prompt",
            "templates",
        ),
        (
            json!({"model": "m", "input": "hi", "tools": {}}),
            "tools",
            "'tools' must be a list",
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [{"type": "function"}]}),
            "tools",
            "tools[0].name",
        ),
        (
            json!({"model": "m", "input": "hi", "tools": [{"name": "f"}]}),
            "tools",
            "tools[0].type",
        ),
        (
            json!({"model": "m", "input": "hi", "tool_choice": "any"}),
            "tool_choice",
            "'any' is not one of",
        ),
        (
            json!({"model": "m", "input": "hi", "tool_choice": {"type": "function"}}),
            "tool_choice",
            "tool_choice.name",
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}),
            "text",
            "text.format.name",
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}),
            "text",
            "text.format.schema",
        ),
        (
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "yaml"}}}),
            "text",
            "'yaml'",
        ),
        (
            json!({"model": "m", "input": "hi", "max_output_tokens": "many"}),
            "max_output_tokens",
            "positive integer",
        ),
        (
            json!({"model": "m", "input": "hi", "reasoning": "high"}),
            "reasoning",
            "must be an object",
        ),
        (
            json!({"model": "m", "input": "hi", "stream": "yes"}),
            "stream",
            "must be a boolean",
        ),
        (
            json!({"model": "m", "input": "hi", "store": 1}),
            "store",
            "must be a boolean",
        ),
    ];
    for (request, param, needle) in cases {
        let (p, message) = refusal(request.clone());
        assert_eq!(p, param, "{request}: {message}");
        assert!(message.contains(needle), "{request}: {message}");
    }
}

#[test]
fn function_calls_join_the_assistant_turn_before_them() {
    let call =
        |id: &str| json!({"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"});
    let output = |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "ok"});
    let body = chat_body(json!({"model": "m", "input": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "On "}, {"type": "output_text", "text": "it."}]},
        call("c1"), call("c2"), output("c1"), output("c2"),
        call("c3"), output("c3"),
    ]}));
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "tool", "assistant", "tool"]
    );
    let first = &body["messages"][1];
    assert_eq!(first["content"], "On it.");
    assert_eq!(first["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(body["messages"][4]["content"], Value::Null);
    assert_eq!(body["messages"][4]["tool_calls"][0]["id"], "c3");
}

#[test]
fn allowed_tools_keeps_only_the_named_functions() {
    let f =
        |name: &str| json!({"type": "function", "name": name, "parameters": {"type": "object"}});
    let r = to_chat_request(
        json!({"model": "m", "input": "hi", "tools": [f("a"), f("b"), {"type": "web_search"}],
            "tool_choice": {"type": "allowed_tools", "mode": "required",
                "tools": [{"type": "function", "name": "b"}, {"type": "web_search"}]}})
        .to_string()
        .as_bytes(),
        &[],
    )
    .unwrap();
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
    assert_eq!(body["tools"][0]["function"]["name"], "b");
    assert_eq!(r.hosted_tools, ["web_search"]);
    assert!(!r.tool_choice_auto);
    // A choice and parallel_tool_calls without any function tool left are not sent.
    let body = chat_body(
        json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}],
        "tool_choice": "none", "parallel_tool_calls": false}),
    );
    assert!(body.get("tool_choice").is_none() && body.get("parallel_tool_calls").is_none());
}

fn ctx() -> ResponseCtx {
    ResponseCtx::new("resp_t", 1700000000, "m")
}

#[test]
fn chat_replies_that_cannot_be_read_are_errors() {
    assert!(from_chat_response(b"{", &ctx())
        .unwrap_err()
        .starts_with("unreadable backend reply"));
    assert_eq!(
        from_chat_response(br#"{"error":{"message":"boom","code":"x"}}"#, &ctx()).unwrap_err(),
        "boom"
    );
    assert_eq!(
        from_chat_response(br#"{"choices":[]}"#, &ctx()).unwrap_err(),
        "the backend's reply has no choices"
    );
}

#[test]
fn a_tool_call_without_id_gets_one_and_a_reply_without_usage_has_none() {
    let reply = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,
        "tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
    let v = from_chat_response(reply, &ctx()).unwrap();
    assert_eq!(v["output"][0]["call_id"], "call_t_0");
    assert_eq!(v["output"][0]["id"], "fc_t_0");
    assert_eq!(v["usage"], Value::Null);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "m");
}

/// Feeds a chat stream given as SSE data payloads.
fn stream(t: &mut StreamTranslator, payloads: &[Value]) -> String {
    let mut out = String::new();
    for p in payloads {
        out.push_str(&t.feed(format!("data: {p}\n\n").as_bytes()));
    }
    out
}

fn names(events: &str) -> Vec<String> {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_string)
        .collect()
}

fn delta(d: Value) -> Value {
    json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

#[test]
fn a_refusal_streams_as_its_own_content_part() {
    let mut t = StreamTranslator::new(ctx());
    let mut out = stream(
        &mut t,
        &[
            delta(json!({"content": "Well"})),
            delta(json!({"refusal": "I can't"})),
            finish("stop"),
        ],
    );
    out.push_str(&t.feed(b"data: [DONE]\n\n"));
    assert_eq!(
        names(&out),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.content_part.added",
            "response.refusal.delta",
            "response.refusal.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let content = &t.response().unwrap()["output"][0]["content"];
    assert_eq!(content[1], json!({"type": "refusal", "refusal": "I can't"}));
    assert!(out.contains(r#""content_index":1"#));
}

#[test]
fn a_failure_seen_by_the_caller_ends_the_stream_once() {
    let mut t = StreamTranslator::new(ctx());
    assert!(t.response().is_none());
    let out = stream(&mut t, &[delta(json!({"content": "Hel"}))]);
    assert!(!t.is_done());
    let end = t.finish_error("connection reset");
    assert_eq!(names(&end), ["response.failed"]);
    let r = t.response().unwrap();
    assert_eq!(
        r["error"],
        json!({"code": "server_error", "message": "connection reset"})
    );
    assert_eq!(r["output"][0]["status"], "incomplete");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hel");
    // Nothing more after the terminal event; sequence numbers went on from the text's.
    assert!(end.contains(r#""sequence_number":5"#), "{out}{end}");
    assert_eq!(t.feed(b"data: [DONE]\n\n"), "");
    assert_eq!(t.finish(), "");
    assert_eq!(t.finish_error("again"), "");
}

#[test]
fn stream_errors_keep_known_codes_and_unreadable_chunks_fail() {
    let mut t = StreamTranslator::new(ctx());
    let out = stream(
        &mut t,
        &[json!({"error": {"message": "slow down", "code": "rate_limit_exceeded"}})],
    );
    assert_eq!(
        names(&out),
        [
            "response.created",
            "response.in_progress",
            "response.failed"
        ]
    );
    assert_eq!(
        t.response().unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );
    let mut t = StreamTranslator::new(ctx());
    let out = t.feed(b"data: {not json\n\n");
    assert!(
        out.contains("unreadable stream event from the backend"),
        "{out}"
    );
    assert!(t.is_done());
}

#[test]
fn the_last_event_may_lack_its_blank_line() {
    let mut t = StreamTranslator::new(ctx());
    let mut out = stream(&mut t, &[delta(json!({"content": "ok"})), finish("stop")]);
    out.push_str(&t.feed(b"data: [DONE]\n"));
    assert!(!t.is_done());
    out.push_str(&t.finish());
    assert_eq!(names(&out).last().unwrap(), "response.completed");
    assert_eq!(t.response().unwrap()["status"], "completed");
}

#[test]
fn a_late_fragment_of_a_finished_call_reaches_the_final_response() {
    let call = |index: u64, id: Option<&str>, args: &str| {
        let mut c = json!({"index": index, "function": {"arguments": args}});
        if let Some(id) = id {
            c["id"] = id.into();
            c["function"]["name"] = "f".into();
        }
        delta(json!({"tool_calls": [c]}))
    };
    let mut t = StreamTranslator::new(ctx());
    let mut out = stream(
        &mut t,
        &[
            call(0, Some("a"), "{\"x\":"),
            call(1, Some("b"), "{}"),
            call(0, None, "1}"),
            finish("tool_calls"),
        ],
    );
    out.push_str(&t.feed(b"data: [DONE]\n\n"));
    let r = t.response().unwrap();
    assert_eq!(r["output"][0]["arguments"], "{\"x\":1}");
    assert_eq!(r["output"][1]["arguments"], "{}");
    assert_eq!(
        names(&out)
            .iter()
            .filter(|n| *n == "response.output_item.added")
            .count(),
        2
    );
}

#[test]
fn an_error_after_chunks_in_the_same_bytes_comes_with_the_next_feed() {
    let mut t = ChatStreamTranslator::new("m", "x", false);
    let events = concat!(
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\",\"sequence_number\":0}\n\n",
        "event: error\n",
        "data: {\"type\":\"error\",\"message\":\"boom\",\"sequence_number\":1}\n\n",
    );
    let boxed: &mut dyn ChunkTranslator = &mut t;
    let out = boxed.feed(events.as_bytes()).unwrap();
    assert!(out.contains(r#""content":"Hi""#), "{out}");
    assert_eq!(boxed.feed(b"").unwrap_err(), "boom");
    assert!(!boxed.is_done());
}

#[test]
fn chat_requests_the_responses_api_cannot_express_are_refused() {
    for (body, param) in [
        (
            json!({"model": "m", "messages": [], "logit_bias": {"50256": -100}}),
            "logit_bias",
        ),
        (json!({"model": "m", "messages": [], "n": 2}), "n"),
        (
            json!({"model": "m", "messages": [], "logprobs": true}),
            "logprobs",
        ),
        (
            json!({"model": "m", "messages": [], "presence_penalty": 0.5}),
            "presence_penalty",
        ),
        (
            json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            "messages",
        ),
        (
            json!({"model": "m", "messages": [], "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools",
        ),
        (
            json!({"model": "m", "messages": [], "response_format": {"type": "grammar"}}),
            "response_format",
        ),
    ] {
        match from_chat_request(body.to_string().as_bytes()) {
            Err(ProxyError::InvalidField { param: p, .. }) => assert_eq!(p, param, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // Zero penalties and seed are harmless.
    let (out, include_usage) = from_chat_request(
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"presence_penalty":0,"seed":7}"#,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert!(!include_usage);
    assert!(v.get("seed").is_none() && v.get("presence_penalty").is_none());
}
