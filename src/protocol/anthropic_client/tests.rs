use serde_json::{json, Value};

use super::*;
use crate::error::ProxyError;

#[test]
fn request_translation_covers_system_images_tools_and_results() {
    // Shapes from Anthropic's Messages API documentation.
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],
          "stop_sequences":["\n\nHuman:"],"temperature":0.5,"metadata":{"user_id":"u-1"},"stream":true,
          "tools":[{"name":"get_weather","description":"Get the weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}],
          "tool_choice":{"type":"any"},
          "messages":[
            {"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},{"type":"text","text":"Weather where this is?"}]},
            {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"x"},{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"location":"Paris"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"15 degrees"}]}]}"#;
    let (out, model, stream) = to_openai_request(body).unwrap();
    assert_eq!((model.as_str(), stream), ("claude-sonnet-4-5", true));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({
            "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true, "stream_options": {"include_usage": true},
            "temperature": 0.5, "stop": ["\n\nHuman:"], "user": "u-1", "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}],
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                    {"type": "text", "text": "Weather where this is?"}]},
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_01", "content": "15 degrees"}
            ]
        })
    );
    assert!(matches!(
        to_openai_request(br#"{"model":"m","messages":[]}"#),
        Err(ProxyError::InvalidField {
            param: "max_tokens",
            ..
        })
    ));
    assert!(matches!(
        to_openai_request(br#"{"max_tokens":5,"messages":[]}"#),
        Err(ProxyError::MissingModel)
    ));
}

fn messages_of(body: &str) -> Value {
    let (out, _, _) = to_openai_request(body.as_bytes()).unwrap();
    serde_json::from_slice::<Value>(&out).unwrap()["messages"].clone()
}

const BILLING: &str =
    "x-anthropic-billing-header: cc_version=2.1.37.fbe; cc_entrypoint=cli; cch=a112b;";

#[test]
fn system_messages_inside_messages_stay_in_place() {
    // Claude Code's shape for model ids it does not know: system messages among the
    // turns, as a string or as text blocks with cache_control.
    let body = r#"{"model":"m","max_tokens":10,"system":"Top.","messages":[
            {"role":"system","content":"First."},
            {"role":"user","content":"hi"},
            {"role":"system","content":[{"type":"text","text":"Mid a.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Mid b."}]},
            {"role":"assistant","content":"hello"},
            {"role":"system","content":[{"type":"text","text":"Last."}]}]}"#;
    assert_eq!(
        messages_of(body),
        json!([
            {"role": "system", "content": "Top."},
            {"role": "system", "content": "First."},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "Mid a.\nMid b."},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": "Last."}
        ])
    );
    for (content, what) in [
        ("42", "a number"),
        (r#"{"type":"text","text":"x"}"#, "a lone block"),
        (
            r#"[{"type":"image","source":{"type":"url","url":"http://x"}}]"#,
            "an image",
        ),
        (r#"[{"type":"text"}]"#, "a block without text"),
    ] {
        let body = format!(
            r#"{{"model":"m","max_tokens":10,"messages":[{{"role":"user","content":"hi"}},{{"role":"system","content":{content}}}]}}"#
        );
        match to_openai_request(body.as_bytes()) {
            Err(ProxyError::InvalidField {
                param: "messages",
                message,
            }) => assert!(
                message.starts_with("messages.1.content: "),
                "{what}: {message}"
            ),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn billing_block_is_left_out_of_the_system_prompt() {
    let body = format!(
        r#"{{"model":"m","max_tokens":10,"system":[{{"type":"text","text":"{BILLING}"}},
              {{"type":"text","text":"You are Claude Code.","cache_control":{{"type":"ephemeral"}}}},
              {{"type":"text","text":"Be careful."}}],"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    assert_eq!(
        messages_of(&body),
        json!([
            {"role": "system", "content": "You are Claude Code.\nBe careful."},
            {"role": "user", "content": "hi"}
        ])
    );
    // Only the billing block: no empty system message.
    let only = format!(
        r#"{{"model":"m","max_tokens":10,"system":[{{"type":"text","text":"{BILLING}"}}],"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    assert_eq!(
        messages_of(&only),
        json!([{"role": "user", "content": "hi"}])
    );
    // A plain-string system starting with the header line loses that line; the
    // header alone (also without cch, as some versions send it) leaves nothing.
    for (system, expected) in [
        (format!("{BILLING}\nYou are terse."), Some("You are terse.")),
        (BILLING.to_string(), None),
        (
            "x-anthropic-billing-header: cc_version=2.1.181.0d9; cc_entrypoint=cli;".into(),
            None,
        ),
        (
            "Mentions x-anthropic-billing-header: later on.".into(),
            Some("Mentions x-anthropic-billing-header: later on."),
        ),
    ] {
        let body = json!({"model": "m", "max_tokens": 10, "system": system,
            "messages": [{"role": "user", "content": "hi"}]});
        let mut expected_messages: Vec<Value> = expected
            .map(|t| json!({"role": "system", "content": t}))
            .into_iter()
            .collect();
        expected_messages.push(json!({"role": "user", "content": "hi"}));
        assert_eq!(
            messages_of(&body.to_string()),
            Value::Array(expected_messages),
            "{system}"
        );
    }
    assert!(is_billing_block(BILLING));
    assert!(!is_billing_block("You are Claude Code."));
    assert!(!is_billing_block(&format!("{BILLING}\nYou are terse.")));
}

#[test]
fn strip_billing_header_keeps_everything_else_byte_for_byte() {
    let with = |system: &str| {
        format!(
            r#"{{"model":"m", "system": {system},"max_tokens":10,"messages":[{{"role":"user","content":"hi"}}]}}"#
        )
    };
    let billing = format!(r#"{{"type":"text","text":"{BILLING}"}}"#);
    let identity =
        r#"{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}"#;
    let stripped =
        strip_billing_header(with(&format!("[{billing}, {identity}]")).as_bytes()).unwrap();
    assert_eq!(
        std::str::from_utf8(&stripped).unwrap(),
        format!(
            r#"{{"model":"m","system":[{identity}],"max_tokens":10,"messages":[{{"role":"user","content":"hi"}}]}}"#
        )
    );
    // A system made only of the billing block goes away.
    let stripped = strip_billing_header(with(&format!("[{billing}]")).as_bytes()).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&stripped).unwrap(),
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    );
    // The string form loses its first line.
    let string = Value::from(format!("{BILLING}\nYou are terse.")).to_string();
    let stripped = strip_billing_header(with(&string).as_bytes()).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&stripped).unwrap()["system"],
        "You are terse."
    );
    // Nothing to strip, or no JSON object: None.
    assert_eq!(
        strip_billing_header(with(&format!("[{identity}]")).as_bytes()),
        None
    );
    assert_eq!(
        strip_billing_header(with(r#""Be brief.""#).as_bytes()),
        None
    );
    assert_eq!(
        strip_billing_header(br#"{"model":"m","messages":[]}"#),
        None
    );
    assert_eq!(strip_billing_header(b"not json"), None);
    assert_eq!(strip_billing_header(b"[1]"), None);
}

#[test]
fn response_translation() {
    let reply = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
    let v: Value = serde_json::from_slice(&from_openai_response(reply, "m").unwrap()).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"][0],
        json!({"type": "text", "text": "Checking."})
    );
    assert_eq!(
        v["content"][1],
        json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}})
    );
    assert_eq!(v["usage"], json!({"input_tokens": 12, "output_tokens": 7}));
}

#[test]
fn stream_translation_follows_anthropics_event_order() {
    let mut t = StreamTranslator::new("m");
    let sse = concat!(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}\n\n",
        "data: [DONE]\n\n"
    );
    // Fed in two pieces split mid-line.
    let (a, b) = sse.split_at(100);
    let out = t.feed(a.as_bytes()) + &t.feed(b.as_bytes());
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(
        out.contains(r#""delta":{"partial_json":"{\"a\":1}","type":"input_json_delta"}"#),
        "{out}"
    );
    assert!(out.contains(r#""delta":{"stop_reason":"tool_use","stop_sequence":null},"type":"message_delta","usage":{"input_tokens":5,"output_tokens":9}"#), "{out}");
    assert!(t.finished());
}
