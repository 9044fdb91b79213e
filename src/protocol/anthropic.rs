//! Anthropic's Messages API (`POST /v1/messages`) translated to and from OpenAI's chat
//! format, so Anthropic clients (Claude Code, the Anthropic SDKs) work against every
//! backend: system prompt, text and image blocks, tool use and tool results, tool choice,
//! stop sequences, usage; streams become Anthropic's event sequence (`message_start`,
//! `content_block_start`, `ping`, deltas, `content_block_stop`, `message_delta`,
//! `message_stop`). Thinking blocks in the history are dropped (OpenAI-compatible servers
//! cannot take them back).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::object;
use super::openai::text_of;
use crate::error::ProxyError;

fn invalid(message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param: "messages",
        message: message.into(),
    }
}

fn image_part(block: &Value) -> Result<Value, ProxyError> {
    let src = &block["source"];
    let url = match src["type"].as_str() {
        Some("base64") => format!(
            "data:{};base64,{}",
            src["media_type"].as_str().unwrap_or("image/png"),
            src["data"].as_str().unwrap_or_default()
        ),
        Some("url") => src["url"].as_str().unwrap_or_default().to_string(),
        other => {
            return Err(invalid(format!(
                "image source type {} is not supported",
                other.unwrap_or("(none)")
            )))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Translates an Anthropic Messages request into an OpenAI chat request body. Returns the
/// body and the requested model.
pub fn to_openai_request(body: &[u8]) -> Result<(Bytes, String, bool), ProxyError> {
    let req: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(ProxyError::InvalidJson(
                "the body must be a JSON object".into(),
            ))
        }
        Err(e) => return Err(ProxyError::InvalidJson(e.to_string())),
    };
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(ProxyError::MissingModel),
    };
    let max_tokens = req
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| ProxyError::InvalidField {
            param: "max_tokens",
            message: "max_tokens: Field required (a positive integer)".into(),
        })?;
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut messages = Vec::new();
    match req.get("system") {
        None | Some(Value::Null) => {}
        Some(s @ (Value::String(_) | Value::Array(_))) => {
            messages.push(json!({"role": "system", "content": text_of(s)}))
        }
        Some(_) => return Err(invalid("system must be a string or a list of text blocks")),
    }
    let input = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: Field required (a list)"))?;
    for (i, m) in input.iter().enumerate() {
        let role = m["role"]
            .as_str()
            .ok_or_else(|| invalid(format!("messages.{i}.role: Field required")))?;
        match (role, &m["content"]) {
            ("user" | "assistant", Value::String(s)) => {
                messages.push(json!({"role": role, "content": s}))
            }
            ("user", Value::Array(blocks)) => {
                let mut parts = Vec::new();
                for b in blocks {
                    match b["type"].as_str() {
                        Some("text") => parts.push(json!({"type": "text", "text": b["text"]})),
                        Some("image") => parts.push(image_part(b)?),
                        Some("tool_result") => {
                            let mut content = text_of(&b["content"]);
                            if b["is_error"].as_bool() == Some(true) {
                                content = format!("Error: {content}");
                            }
                            messages.push(json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": content}));
                        }
                        Some("document") => {
                            return Err(invalid(format!(
                                "messages.{i}: document blocks are not supported for this backend"
                            )))
                        }
                        _ => {}
                    }
                }
                if !parts.is_empty() {
                    messages.push(object([
                        ("role", "user".into()),
                        ("content", Value::Array(parts)),
                    ]));
                }
            }
            ("assistant", Value::Array(blocks)) => {
                let text = blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("");
                let calls: Vec<Value> = blocks
                    .iter()
                    .filter(|b| b["type"] == "tool_use")
                    .map(|b| {
                        object([
                            ("id", b["id"].clone()),
                            ("type", "function".into()),
                            (
                                "function",
                                object([
                                    ("name", b["name"].clone()),
                                    ("arguments", b["input"].to_string().into()),
                                ]),
                            ),
                        ])
                    })
                    .collect();
                let mut msg = object([("role", "assistant".into()), ("content", text.into())]);
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
            (r, _) => {
                return Err(invalid(format!(
                    "messages.{i}: role '{r}' with this content is not valid"
                )))
            }
        }
    }
    let mut out = object([
        ("model", model.as_str().into()),
        ("messages", Value::Array(messages)),
        ("max_tokens", max_tokens.into()),
        ("stream", stream.into()),
    ]);
    if stream {
        out["stream_options"] = json!({"include_usage": true});
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = req.get(key) {
            out[key] = v.clone();
        }
    }
    if let Some(budget) = req
        .get("thinking")
        .filter(|t| t["type"] == "enabled")
        .and_then(|t| t["budget_tokens"].as_u64())
    {
        out["reasoning_effort"] = json!(super::reasoning::Effort::from_budget(budget).as_str());
    }
    if let Some(stops) = req.get("stop_sequences").filter(|v| v.is_array()) {
        out["stop"] = stops.clone();
    }
    if let Some(user) = req
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.is_string())
    {
        out["user"] = user.clone();
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter(|t| t.get("input_schema").is_some())
            .map(|t| {
                object([
                    ("type", "function".into()),
                    (
                        "function",
                        object([
                            ("name", t["name"].clone()),
                            ("description", t["description"].clone()),
                            ("parameters", t["input_schema"].clone()),
                        ]),
                    ),
                ])
            })
            .collect();
        if !tools.is_empty() {
            out["tools"] = Value::Array(tools);
        }
    }
    // A tool_choice without tools would be refused by OpenAI-compatible servers.
    if let Some(choice) = req
        .get("tool_choice")
        .filter(|_| out.get("tools").is_some())
    {
        out["tool_choice"] = match choice["type"].as_str() {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
            _ => {
                return Err(ProxyError::InvalidField {
                    param: "tool_choice",
                    message: "tool_choice.type must be auto, any, tool or none".into(),
                })
            }
        };
    }
    let bytes = serde_json::to_vec(&out).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    Ok((Bytes::from(bytes), model, stream))
}

fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Translates an OpenAI chat completion into an Anthropic message.
pub fn from_openai_response(body: &[u8], requested_model: &str) -> Result<Bytes, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable backend reply: {e}"))?;
    let choice = &v["choices"][0];
    let msg = &choice["message"];
    let mut content = Vec::new();
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": t}));
    }
    if let Some(calls) = msg["tool_calls"].as_array() {
        for c in calls {
            let input: Value = c["function"]["arguments"]
                .as_str()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_else(|| json!({}));
            content.push(json!({"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": input}));
        }
    }
    let out = json!({
        "id": format!("msg_{}", v["id"].as_str().unwrap_or("continuum")),
        "type": "message", "role": "assistant",
        "model": v["model"].as_str().unwrap_or(requested_model),
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str()),
        "stop_sequence": null,
        "usage": Usage::from_openai(&v["usage"]).to_json(),
    });
    Ok(Bytes::from(out.to_string()))
}

/// Token usage in Anthropic's terms.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    /// Prompt tokens that were not read from the prompt cache.
    input: u64,
    output: u64,
    cache_read: u64,
}

impl Usage {
    /// OpenAI's `prompt_tokens` includes cached tokens; Anthropic's `input_tokens` does
    /// not (they are `cache_read_input_tokens`).
    fn from_openai(u: &Value) -> Usage {
        let prompt = u["prompt_tokens"].as_u64().unwrap_or(0);
        let cache_read = u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0)
            .min(prompt);
        Usage {
            input: prompt - cache_read,
            output: u["completion_tokens"].as_u64().unwrap_or(0),
            cache_read,
        }
    }

    fn to_json(self) -> Value {
        let mut v = json!({"input_tokens": self.input, "output_tokens": self.output});
        if self.cache_read > 0 {
            v["cache_read_input_tokens"] = json!(self.cache_read);
        }
        v
    }
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        413 => "request_too_large",
        400 | 405 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error body.
pub fn error_body(status: u16, message: &str) -> Bytes {
    Bytes::from(
        json!({"type": "error", "error": {"type": error_type(status), "message": message}})
            .to_string(),
    )
}

fn event(name: &str, data: &Value) -> String {
    let mut out = String::new();
    super::sse::write_event(&mut out, Some(name), &data.to_string());
    out
}

/// Turns an OpenAI chat completion stream (SSE bytes) into Anthropic's event stream.
#[derive(Debug)]
pub struct StreamTranslator {
    model: String,
    sse: super::sse::SseDecoder,
    started: bool,
    /// The open content block: its index and whether it is text.
    open: Option<(usize, bool)>,
    next_index: usize,
    /// OpenAI tool-call index → our content block index.
    tools: Vec<(u64, usize)>,
    stop: Option<&'static str>,
    usage: Usage,
    finished: bool,
}

impl StreamTranslator {
    /// A translator for a stream answering `model`.
    pub fn new(model: &str) -> StreamTranslator {
        StreamTranslator {
            model: model.to_string(),
            sse: super::sse::SseDecoder::new(super::sse::DEFAULT_MAX_EVENT),
            started: false,
            open: None,
            next_index: 0,
            tools: Vec::new(),
            stop: None,
            usage: Usage::default(),
            finished: false,
        }
    }

    /// Whether `message_stop` was sent.
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn start(&mut self, out: &mut String, id: &str) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({"type": "message_start", "message": {
            "id": format!("msg_{id}"), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.usage.input, "output_tokens": 0}}});
        out.push_str(&event("message_start", &message));
        out.push_str(&event("ping", &json!({"type": "ping"})));
    }

    fn close_block(&mut self, out: &mut String) {
        if let Some((index, _)) = self.open.take() {
            out.push_str(&event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn finish(&mut self, out: &mut String) {
        if self.finished {
            return;
        }
        self.start(out, "continuum");
        self.close_block(out);
        out.push_str(&event(
            "message_delta",
            &json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": self.usage.to_json()}),
        ));
        out.push_str(&event("message_stop", &json!({"type": "message_stop"})));
        self.finished = true;
    }

    /// An error event that ends the stream (Anthropic's `event: error`).
    pub fn error_event(message: &str) -> String {
        event(
            "error",
            &json!({"type": "error", "error": {"type": "api_error", "message": message}}),
        )
    }

    /// Ends the stream with an `error` event (after `message_start` when none was sent).
    fn fail(&mut self, out: &mut String, message: &str) {
        self.start(out, "continuum");
        out.push_str(&Self::error_event(message));
        self.finished = true;
    }

    /// Feeds OpenAI SSE bytes; returns the Anthropic events they complete.
    pub fn feed(&mut self, data: &[u8]) -> String {
        let mut out = String::new();
        if self.finished {
            return out;
        }
        if let Err(e) = self.sse.push(data) {
            self.fail(&mut out, &e.to_string());
            return out;
        }
        while let Some(incoming) = self.sse.next_event() {
            let payload = incoming.data.trim_ascii();
            if payload == b"[DONE]" {
                self.finish(&mut out);
                continue;
            }
            let chunk = match serde_json::from_slice::<Value>(payload) {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.fail(
                        &mut out,
                        &format!("unreadable stream event from the backend: {e}"),
                    );
                    break;
                }
            };
            if let Some(e) = chunk.get("error") {
                let message = e["message"]
                    .as_str()
                    .unwrap_or("the backend failed")
                    .to_string();
                self.fail(&mut out, &message);
                break;
            }
            if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
                self.usage = Usage::from_openai(u);
            }
            let id = chunk["id"].as_str().unwrap_or("continuum").to_string();
            self.start(&mut out, &id);
            let choice = &chunk["choices"][0];
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                if !matches!(self.open, Some((_, true))) {
                    self.close_block(&mut out);
                    let index = self.next_index;
                    self.next_index += 1;
                    self.open = Some((index, true));
                    out.push_str(&event(
                        "content_block_start",
                        &json!({"type": "content_block_start", "index": index,
                        "content_block": {"type": "text", "text": ""}}),
                    ));
                }
                let index = self.open.map(|(i, _)| i).unwrap_or(0);
                out.push_str(&event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            if let Some(calls) = delta["tool_calls"].as_array() {
                for c in calls {
                    let tool_index = c["index"].as_u64().unwrap_or(0);
                    let known = self
                        .tools
                        .iter()
                        .find(|(t, _)| *t == tool_index)
                        .map(|(_, b)| *b);
                    let block = match known {
                        Some(b) => b,
                        None => {
                            self.close_block(&mut out);
                            let index = self.next_index;
                            self.next_index += 1;
                            self.tools.push((tool_index, index));
                            self.open = Some((index, false));
                            out.push_str(&event("content_block_start", &json!({"type": "content_block_start", "index": index,
                                "content_block": {"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": {}}})));
                            index
                        }
                    };
                    if let Some(args) = c["function"]["arguments"]
                        .as_str()
                        .filter(|a| !a.is_empty())
                    {
                        out.push_str(&event(
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": block,
                            "delta": {"type": "input_json_delta", "partial_json": args}}),
                        ));
                    }
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                self.stop = Some(stop_reason(Some(f)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
