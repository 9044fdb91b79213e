//! OpenAI chat requests sent to an Anthropic backend (`/v1/messages`): the request,
//! reply, stream and errors translated between OpenAI's chat format and Anthropic's.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::openai::{self, text_of};
use super::reasoning::Effort;
use super::{object, push_turn};
use crate::error::ProxyError;

/// `max_tokens` is required by Anthropic; used when the client set none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

fn invalid(message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param: "messages",
        message: message.into(),
    }
}

fn user_blocks(content: &Value) -> Result<Vec<Value>, ProxyError> {
    match content {
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => Ok(json!({"type": "text", "text": p["text"]})),
                Some("image_url") => {
                    let url = p["image_url"]["url"].as_str().unwrap_or_default();
                    match url.strip_prefix("data:").and_then(|r| r.split_once(";base64,")) {
                        Some((media_type, data)) => Ok(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})),
                        None => Ok(json!({"type": "image", "source": {"type": "url", "url": url}})),
                    }
                }
                Some("file") => {
                    let (data, filename) = openai::pdf_file_part(p).map_err(invalid)?;
                    let mut block = json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}});
                    if let Some(name) = filename {
                        block["title"] = name.into();
                    }
                    Ok(block)
                }
                other => Err(invalid(format!("content part type {} is not supported by anthropic backends", other.unwrap_or("(none)")))),
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

/// Translates an OpenAI chat request into an Anthropic Messages request for `model`; also
/// says whether the client asked for a usage chunk.
pub fn from_openai_request(
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<(Bytes, bool), ProxyError> {
    let req = openai::parse_request(body)?;
    let (system, messages) = turns(openai::messages(&req))?;
    let max_tokens = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut out = object([
        ("model", model.into()),
        ("messages", Value::Array(messages)),
        ("max_tokens", max_tokens.into()),
    ]);
    if stream {
        out["stream"] = json!(true);
    }
    if !system.is_empty() {
        out["system"] = json!(system.join("\n\n"));
    }
    // Claude Sonnet 4.5 and later refuse `temperature` together with `top_p`; Anthropic
    // advises using `temperature` alone, so `top_p` goes only when it is the sole one.
    let sampling = |key| req.get(key).filter(|v: &&Value| !v.is_null());
    match (sampling("temperature"), sampling("top_p")) {
        (Some(t), _) => out["temperature"] = t.clone(),
        (None, Some(p)) => out["top_p"] = p.clone(),
        (None, None) => {}
    }
    if let Some(stop) = openai::stop_list(&req) {
        out["stop_sequences"] = stop;
    }
    if let Some(effort) = req
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(Effort::parse)
    {
        let budget = effort.anthropic_budget();
        out["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
        if max_tokens <= budget {
            out["max_tokens"] = json!(budget + DEFAULT_MAX_TOKENS);
        }
        // Extended thinking takes no sampling changes.
        if let Some(o) = out.as_object_mut() {
            o.remove("temperature");
            o.remove("top_p");
        }
    }
    if let Some(user) = req.get("user").filter(|u| u.is_string()) {
        out["metadata"] = json!({"user_id": user});
    }
    // Structured output: Anthropic's `output_config.format` takes a JSON schema.
    // (`json_object` has no schema-free counterpart there and is left to the prompt.)
    if let Some(schema) = req
        .get("response_format")
        .filter(|f| f["type"] == "json_schema")
        .map(|f| &f["json_schema"]["schema"])
        .filter(|s| s.is_object())
    {
        out["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
    }
    copy_tools(&req, &mut out);
    let include_usage = openai::include_usage(&req);
    serde_json::to_vec(&out)
        .map(|b| (Bytes::from(b), include_usage))
        .map_err(|e| ProxyError::InvalidJson(e.to_string()))
}

/// The OpenAI messages as Anthropic's system texts and `messages` turns.
fn turns(input: &[Value]) -> Result<(Vec<String>, Vec<Value>), ProxyError> {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in input {
        match m["role"].as_str() {
            Some("system") | Some("developer") => system.push(text_of(&m["content"])),
            Some("user") => push_turn(
                &mut messages,
                "user",
                "content",
                user_blocks(&m["content"])?,
            ),
            Some("assistant") => messages.push(assistant_turn(m)?),
            Some("tool") => {
                let block = json!({"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": text_of(&m["content"])});
                // Consecutive tool results go into one user turn, as Anthropic wants.
                push_turn(&mut messages, "user", "content", vec![block]);
            }
            other => {
                return Err(invalid(format!(
                    "role {} is not supported",
                    other.unwrap_or("(none)")
                )))
            }
        }
    }
    Ok((system, messages))
}

/// An assistant message as an `assistant` turn: its text and its tool calls as `tool_use`
/// blocks.
fn assistant_turn(m: &Value) -> Result<Value, ProxyError> {
    let mut blocks = Vec::new();
    let text = text_of(&m["content"]);
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for c in m["tool_calls"].as_array().into_iter().flatten() {
        let input: Value = c["function"]["arguments"]
            .as_str()
            .filter(|a| !a.trim().is_empty())
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| invalid("tool call arguments must be a JSON object"))?
            .unwrap_or_else(|| json!({}));
        blocks.push(object([
            ("type", "tool_use".into()),
            ("id", c["id"].clone()),
            ("name", c["function"]["name"].clone()),
            ("input", input),
        ]));
    }
    Ok(object([
        ("role", "assistant".into()),
        ("content", Value::Array(blocks)),
    ]))
}

/// `tools` as Anthropic tools, and `tool_choice`.
fn copy_tools(req: &Map<String, Value>, out: &mut Value) {
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        out["tools"] = Value::Array(
            tools
                .iter()
                .map(|t| {
                    let f = &t["function"];
                    object([
                        ("name", f["name"].clone()),
                        ("description", f["description"].clone()),
                        ("input_schema", f["parameters"].clone()),
                    ])
                })
                .collect(),
        );
        if let Some(choice) = req.get("tool_choice") {
            out["tool_choice"] = match choice {
                Value::String(s) if s == "required" => json!({"type": "any"}),
                Value::String(s) if s == "none" => json!({"type": "none"}),
                Value::Object(_) => json!({"type": "tool", "name": choice["function"]["name"]}),
                _ => json!({"type": "auto"}),
            };
        }
        // OpenAI's `parallel_tool_calls: false` is Anthropic's `disable_parallel_tool_use`,
        // a field of `tool_choice` (absent from `none`, which calls no tool anyway).
        if req.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
            if out.get("tool_choice").is_none() {
                out["tool_choice"] = json!({"type": "auto"});
            }
            if out["tool_choice"]["type"] != "none" {
                out["tool_choice"]["disable_parallel_tool_use"] = json!(true);
            }
        }
    }
}

fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        // Both truncate the answer.
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

fn usage(u: &Value) -> Value {
    let cached = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
    let prompt = u["input_tokens"].as_u64().unwrap_or(0)
        + cached
        + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    let completion = u["output_tokens"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
           "prompt_tokens_details": {"cached_tokens": cached}})
}

/// Translates an Anthropic message into an OpenAI chat completion.
pub fn to_openai_response(body: &[u8]) -> Result<Bytes, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable Anthropic reply: {e}"))?;
    let blocks = v["content"].as_array().cloned().unwrap_or_default();
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let calls: Vec<Value> = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| json!({"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": b["input"].to_string()}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let out = json!({
        "id": v["id"], "object": "chat.completion", "created": 0, "model": v["model"],
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(v["stop_reason"].as_str())}],
        "usage": usage(&v["usage"]),
    });
    Ok(Bytes::from(out.to_string()))
}

/// Turns Anthropic's event stream into OpenAI chat completion chunks.
#[derive(Debug)]
pub struct StreamTranslator {
    /// An error that came after text in one feed, held for the next.
    held: Option<String>,
    sse: super::sse::SseDecoder,
    id: String,
    model: String,
    include_usage: bool,
    input: Value,
    tool_index: Option<u64>,
    tools: u64,
    finish: Option<&'static str>,
    output_tokens: u64,
    done: bool,
}

impl StreamTranslator {
    /// A translator; `include_usage`: end with a usage chunk.
    pub fn new(include_usage: bool) -> StreamTranslator {
        StreamTranslator {
            sse: super::sse::SseDecoder::new(super::sse::DEFAULT_MAX_EVENT),
            include_usage,
            id: String::new(),
            model: String::new(),
            input: Value::Null,
            tool_index: None,
            tools: 0,
            finish: None,
            output_tokens: 0,
            done: false,
            held: None,
        }
    }

    /// Whether `message_stop` (or an error) was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn chunk(&self, delta: Value, finish: Value) -> String {
        openai::chunk(&self.id, &self.model, 0, delta, finish)
    }

    /// Feeds SSE bytes; returns the OpenAI chunks they complete, or an error an `error`
    /// event carried.
    ///
    /// Text completed before an error is kept: the error is held and returned by the next
    /// feed or by [`StreamTranslator::finish`].
    pub fn feed(&mut self, data: &[u8]) -> Result<String, String> {
        if let Some(e) = self.held.take() {
            return Err(e);
        }
        let mut out = String::new();
        let result = self.translate(data, &mut out);
        super::sse::keep_text_before_error(&mut self.held, out, result)
    }

    /// The end of the backend's stream: the error held back by [`StreamTranslator::feed`],
    /// if any.
    pub fn finish(&mut self) -> Result<String, String> {
        self.held.take().map_or(Ok(String::new()), Err)
    }

    fn translate(&mut self, data: &[u8], out: &mut String) -> Result<(), String> {
        self.sse.push(data).map_err(|e| e.to_string())?;
        while let Some(event) = self.sse.next_event() {
            let v = serde_json::from_slice::<Value>(event.data.trim_ascii())
                .map_err(|e| format!("unreadable Anthropic stream event: {e}"))?;
            let kind = v["type"].as_str().unwrap_or(event.name_str()).to_string();
            match kind.as_str() {
                "message_start" => {
                    self.id = v["message"]["id"].as_str().unwrap_or("msg").to_string();
                    self.model = v["message"]["model"].as_str().unwrap_or("").to_string();
                    self.input = v["message"]["usage"].clone();
                    out.push_str(
                        &self.chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                    );
                }
                "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                    let index = self.tools;
                    self.tools += 1;
                    self.tool_index = Some(index);
                    let b = &v["content_block"];
                    out.push_str(&self.chunk(
                        json!({"tool_calls": [{"index": index, "id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": ""}}]}),
                        Value::Null,
                    ));
                }
                "content_block_delta" => match v["delta"]["type"].as_str() {
                    Some("text_delta") => out
                        .push_str(&self.chunk(json!({"content": v["delta"]["text"]}), Value::Null)),
                    Some("input_json_delta") => {
                        let index = self.tool_index.unwrap_or(0);
                        out.push_str(&self.chunk(
                            json!({"tool_calls": [{"index": index, "function": {"arguments": v["delta"]["partial_json"]}}]}),
                            Value::Null,
                        ));
                    }
                    _ => {}
                },
                "message_delta" => {
                    self.finish = Some(finish_reason(v["delta"]["stop_reason"].as_str()));
                    self.output_tokens = v["usage"]["output_tokens"]
                        .as_u64()
                        .unwrap_or(self.output_tokens);
                }
                "message_stop" => {
                    out.push_str(&self.chunk(json!({}), json!(self.finish.unwrap_or("stop"))));
                    if self.include_usage {
                        let mut u = self.input.clone();
                        u["output_tokens"] = json!(self.output_tokens);
                        out.push_str(&openai::usage_chunk(&self.id, &self.model, 0, usage(&u)));
                    }
                    super::sse::write_event(out, None, "[DONE]");
                    self.done = true;
                }
                "error" => {
                    self.done = true;
                    return Err(v["error"]["message"]
                        .as_str()
                        .unwrap_or("the backend failed")
                        .to_string());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_translation() {
        let body = br#"{"model":"x","max_completion_tokens":300,"stop":"END","user":"u","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"user","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"call_2","type":"function","function":{"name":"g","arguments":""}}]},
            {"role":"tool","tool_call_id":"call_1","content":"one"},{"role":"tool","tool_call_id":"call_2","content":"two"}],
            "tools":[{"type":"function","function":{"name":"f","description":"F","parameters":{"type":"object"}}}],"tool_choice":"required"}"#;
        let v: Value = serde_json::from_slice(
            &from_openai_request(body, "claude-sonnet-4-5", true)
                .unwrap()
                .0,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "model": "claude-sonnet-4-5", "max_tokens": 300, "stream": true, "system": "Be brief.",
                "stop_sequences": ["END"], "metadata": {"user_id": "u"},
                "tools": [{"name": "f", "description": "F", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "any"},
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
                        {"type": "tool_use", "id": "call_2", "name": "g", "input": {}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                        {"type": "tool_result", "tool_use_id": "call_2", "content": "two"}]}
                ]
            })
        );
    }

    #[test]
    fn reply_and_stream_translation() {
        // Shapes from Anthropic's Messages API documentation.
        let reply = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi!"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":5}}"#;
        let v: Value = serde_json::from_slice(&to_openai_response(reply).unwrap()).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            r#"{"a":1}"#
        );
        assert_eq!(v["usage"]["prompt_tokens"], 100);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 90);
        let sse = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut t = StreamTranslator::new(true);
        let (a, b) = sse.split_at(333);
        let out = t.feed(a.as_bytes()).unwrap() + &t.feed(b.as_bytes()).unwrap();
        let content: String = out
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|e| *e != "[DONE]")
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(content, "Hello!");
        assert!(out.contains(r#""finish_reason":"stop""#));
        assert!(
            out.contains(r#""completion_tokens":15"#) && out.contains(r#""prompt_tokens":25"#),
            "{out}"
        );
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert!(t.is_done());
        let mut t = StreamTranslator::new(false);
        let err = t.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
        assert_eq!(err.unwrap_err(), "Overloaded");
    }
}
