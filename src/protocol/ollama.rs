//! Ollama's native chat API (`POST /api/chat`, NDJSON streaming) translated to and from
//! OpenAI's chat format: messages (text, images as base64, tool calls and results), tools,
//! `options` (temperature, top_p, seed, stop, num_predict from max_tokens /
//! max_completion_tokens, penalties) and `format` from `response_format`; replies and
//! streams back into OpenAI's chat completion (chunks).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::openai;
use crate::error::ProxyError;

#[derive(Serialize)]
struct ChatRequest {
    model: String,
    messages: Vec<Value>,
    stream: bool,
    #[serde(skip_serializing_if = "Map::is_empty")]
    options: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    /// Thinking: `true`, or a level for gpt-oss models.
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
}

fn invalid(param: &'static str, message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param,
        message: message.into(),
    }
}

/// Translates an OpenAI chat request into Ollama's `/api/chat` body for `model`; also says
/// whether the client asked for a usage chunk (`stream_options.include_usage`).
pub fn translate_request(
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<(Bytes, bool), ProxyError> {
    let req = openai::parse_request(body)?;
    let messages = openai::messages(&req);
    let mut out_messages = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let mut out = translate_message(m)?;
        // A standard tool result names only its `tool_call_id`; Ollama wants `tool_name`,
        // the name of the assistant's call with that id (as Ollama's own OpenAI layer does).
        if m["role"] == "tool" && out.get("tool_name").is_none() {
            let name = m["tool_call_id"].as_str().and_then(|id| {
                messages[..i]
                    .iter()
                    .rev()
                    .flat_map(|prev| prev["tool_calls"].as_array().into_iter().flatten())
                    .find(|c| c["id"] == id)
                    .and_then(|c| c["function"]["name"].as_str())
            });
            if let Some(name) = name {
                out["tool_name"] = Value::String(name.to_string());
            }
        }
        out_messages.push(out);
    }
    let mut options = Map::new();
    openai::copy_renamed(
        &req,
        &[
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("seed", "seed"),
            ("frequency_penalty", "frequency_penalty"),
            ("presence_penalty", "presence_penalty"),
            ("max_completion_tokens", "num_predict"),
            ("max_tokens", "num_predict"),
        ],
        &mut options,
    );
    if let Some(stop) = openai::stop_list(&req) {
        options.insert("stop".into(), stop);
    }
    let format = match req.get("response_format") {
        Some(rf) => match rf["type"].as_str() {
            Some("json_object") => Some(json!("json")),
            Some("json_schema") => rf["json_schema"].get("schema").cloned(),
            Some("text") | None => None,
            Some(other) => {
                return Err(invalid(
                    "response_format",
                    format!("response_format type '{other}' is not supported by ollama backends"),
                ))
            }
        },
        None => None,
    };
    let out = ChatRequest {
        model: model.to_string(),
        messages: out_messages,
        stream,
        options,
        tools: req.get("tools").filter(|t| !t.is_null()).cloned(),
        format,
        think: req
            .get("reasoning_effort")
            .and_then(Value::as_str)
            .and_then(crate::protocol::reasoning::Effort::parse)
            .map(|e| {
                if model.starts_with("gpt-oss") {
                    json!(e.as_str())
                } else {
                    json!(true)
                }
            }),
    };
    let include_usage = openai::include_usage(&req);
    serde_json::to_vec(&out)
        .map(|b| (Bytes::from(b), include_usage))
        .map_err(|e| ProxyError::InvalidJson(e.to_string()))
}

fn translate_message(m: &Value) -> Result<Value, ProxyError> {
    let role = m["role"]
        .as_str()
        .ok_or_else(|| invalid("messages", "every message needs a 'role'"))?;
    let role = if role == "developer" { "system" } else { role };
    let mut out = json!({"role": role});
    let mut images = Vec::new();
    let content = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(parts) => {
            let mut text = Vec::new();
            for p in parts {
                match p["type"].as_str() {
                    Some("text") => text.push(p["text"].as_str().unwrap_or_default().to_string()),
                    Some("image_url") => {
                        let url = p["image_url"]["url"].as_str().unwrap_or_default();
                        let data = url
                            .strip_prefix("data:")
                            .and_then(|rest| rest.split_once(";base64,"))
                            .map(|(_, d)| d)
                            .ok_or_else(|| {
                                invalid(
                                    "messages",
                                    "ollama backends take images as data: URLs (base64), not links",
                                )
                            })?;
                        images.push(Value::String(data.to_string()));
                    }
                    Some("file") => {
                        return Err(invalid(
                            "messages",
                            "ollama backends take no files or documents (content part type file); send the document's text instead",
                        ))
                    }
                    other => {
                        return Err(invalid(
                            "messages",
                            format!(
                                "content part type {} is not supported by ollama backends",
                                other.unwrap_or("(none)")
                            ),
                        ))
                    }
                }
            }
            text.join("\n")
        }
        _ => {
            return Err(invalid(
                "messages",
                "message content must be a string or a list of parts",
            ))
        }
    };
    out["content"] = Value::String(content);
    if !images.is_empty() {
        out["images"] = Value::Array(images);
    }
    if let Some(calls) = m["tool_calls"].as_array() {
        let mut translated = Vec::with_capacity(calls.len());
        for c in calls {
            let args = match &c["function"]["arguments"] {
                Value::String(s) if s.trim().is_empty() => json!({}),
                Value::String(s) => serde_json::from_str(s).map_err(|_| {
                    invalid("messages", "tool call arguments must be a JSON object")
                })?,
                other => other.clone(),
            };
            translated.push(crate::protocol::object([(
                "function",
                crate::protocol::object([
                    ("name", c["function"]["name"].clone()),
                    ("arguments", args),
                ]),
            )]));
        }
        out["tool_calls"] = Value::Array(translated);
    }
    if let Some(name) = m["name"].as_str().filter(|_| role == "tool") {
        out["tool_name"] = Value::String(name.to_string());
    }
    Ok(out)
}

/// Ollama's reply (a whole answer, or one NDJSON line of a stream).
#[derive(Deserialize, Default)]
pub struct ChatReply {
    #[serde(default)]
    message: ReplyMessage,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct ReplyMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<ReplyToolCall>,
}

#[derive(Deserialize)]
struct ReplyToolCall {
    function: ReplyFunction,
}

#[derive(Deserialize)]
struct ReplyFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn tool_calls(calls: &[ReplyToolCall], with_index: bool, first: usize) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let i = first + i;
                let mut v = json!({
                    "id": format!("call_{i}"),
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments.to_string()},
                });
                if with_index {
                    v["index"] = json!(i);
                }
                v
            })
            .collect(),
    )
}

fn finish_reason(reply: &ChatReply) -> &'static str {
    if !reply.message.tool_calls.is_empty() {
        return "tool_calls";
    }
    match reply.done_reason.as_deref() {
        Some("length") => "length",
        _ => "stop",
    }
}

fn usage(reply: &ChatReply) -> Value {
    let p = reply.prompt_eval_count.unwrap_or(0);
    let c = reply.eval_count.unwrap_or(0);
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// Translates a whole (non-streamed) Ollama reply into an OpenAI chat completion.
pub fn translate_response(body: &[u8], model: &str, id: &str) -> Result<Bytes, String> {
    let reply: ChatReply =
        serde_json::from_slice(body).map_err(|e| format!("not an Ollama chat reply: {e}"))?;
    if let Some(e) = &reply.error {
        return Err(e.clone());
    }
    let mut message = json!({"role": "assistant", "content": reply.message.content});
    if !reply.message.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls(&reply.message.tool_calls, false, 0);
    }
    let out = json!({
        "id": format!("chatcmpl-{id}"), "object": "chat.completion", "created": now(), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(&reply)}],
        "usage": usage(&reply),
    });
    Ok(Bytes::from(out.to_string()))
}

/// Turns Ollama's NDJSON stream lines into OpenAI chat completion chunks (SSE).
#[derive(Debug)]
pub struct StreamTranslator {
    /// An error that came after text in one feed, held for the next.
    held: Option<String>,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    lines: crate::protocol::sse::LineDecoder,
    /// Tool calls sent so far (they are numbered across the whole stream).
    tool_calls: usize,
    done: bool,
}

impl StreamTranslator {
    /// A translator for one stream.
    pub fn new(model: &str, id: &str, include_usage: bool) -> StreamTranslator {
        StreamTranslator {
            id: format!("chatcmpl-{id}"),
            model: model.to_string(),
            created: now(),
            include_usage,
            started: false,
            lines: crate::protocol::sse::LineDecoder::new(crate::protocol::sse::DEFAULT_MAX_EVENT),
            tool_calls: 0,
            done: false,
            held: None,
        }
    }

    /// Whether Ollama's final (`done: true`) line was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn chunk(&self, delta: Value, finish: Value) -> String {
        openai::chunk(&self.id, &self.model, self.created, delta, finish)
    }

    /// Feeds bytes; returns the SSE text they complete (possibly empty), or the error a
    /// line reported.
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
        self.lines.push(data).map_err(|e| e.to_string())?;
        while let Some(line) = self.lines.next_line() {
            let reply: ChatReply = serde_json::from_slice(&line)
                .map_err(|e| format!("unreadable stream line from ollama: {e}"))?;
            if let Some(e) = reply.error {
                return Err(e);
            }
            if !self.started {
                self.started = true;
                out.push_str(&self.chunk(json!({"role": "assistant", "content": ""}), Value::Null));
            }
            if !reply.message.content.is_empty() {
                out.push_str(&self.chunk(json!({"content": reply.message.content}), Value::Null));
            }
            if !reply.message.tool_calls.is_empty() {
                let calls = tool_calls(&reply.message.tool_calls, true, self.tool_calls);
                self.tool_calls += reply.message.tool_calls.len();
                out.push_str(&self.chunk(json!({"tool_calls": calls}), Value::Null));
            }
            if reply.done {
                self.done = true;
                let finish = if self.tool_calls > 0 {
                    "tool_calls"
                } else {
                    finish_reason(&reply)
                };
                out.push_str(&self.chunk(json!({}), json!(finish)));
                if self.include_usage {
                    let u = usage(&reply);
                    out.push_str(&openai::usage_chunk(&self.id, &self.model, self.created, u));
                }
                crate::protocol::sse::write_event(out, None, "[DONE]");
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
        let body = br#"{"model":"fast","stream":true,"max_tokens":50,"temperature":0.2,"stop":"END","seed":7,
            "response_format":{"type":"json_object"},
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
            "messages":[{"role":"developer","content":"be brief"},
              {"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Seoul\"}"}}]},
              {"role":"tool","tool_call_id":"c1","name":"get_weather","content":"sunny"}]}"#;
        let out: Value =
            serde_json::from_slice(&translate_request(body, "llama3.2", true).unwrap().0).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "llama3.2", "stream": true,
                "options": {"temperature": 0.2, "seed": 7, "num_predict": 50, "stop": ["END"]},
                "format": "json",
                "tools": [{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]},
                    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Seoul"}}}]},
                    {"role": "tool", "content": "sunny", "tool_name": "get_weather"}
                ]
            })
        );
        let link = br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#;
        assert!(matches!(
            translate_request(link, "m", false),
            Err(ProxyError::InvalidField { .. })
        ));
    }

    #[test]
    fn response_translation() {
        // Shape from Ollama's API documentation (POST /api/chat, stream: false).
        let reply = br#"{"model":"llama3.2","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":"assistant","content":"Hello! How are you today?"},"done":true,"done_reason":"stop","total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}"#;
        let v: Value =
            serde_json::from_slice(&translate_response(reply, "llama3.2", "x").unwrap()).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Hello! How are you today?"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324})
        );
        let tools = br#"{"model":"m","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Toronto"}}}]},"done":true}"#;
        let v: Value =
            serde_json::from_slice(&translate_response(tools, "m", "x").unwrap()).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            r#"{"city":"Toronto"}"#
        );
    }

    #[test]
    fn stream_translation_handles_split_lines() {
        let mut t = StreamTranslator::new("m", "x", true);
        let a = t
            .feed(br#"{"model":"m","message":{"role":"assistant","content":"The"},"done":false}"#)
            .unwrap();
        assert_eq!(a, "", "no complete line yet");
        let b = t.feed(b"\n{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\" sky\"},\"done\":false}\n{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":3,\"eval_count\":2}\n").unwrap();
        let events: Vec<&str> = b.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 6, "{b}");
        assert!(events[1].contains(r#""content":"The""#));
        assert!(events[3].contains(r#""finish_reason":"length""#));
        assert!(
            events[4]
                .contains(r#""usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5}"#),
            "{}",
            events[4]
        );
        assert_eq!(events[5], "data: [DONE]");
        assert_eq!(
            t.feed(b"{\"error\":\"model crashed\"}\n").unwrap_err(),
            "model crashed"
        );
    }

    #[test]
    fn streamed_tool_calls_are_numbered_and_finish_as_tool_calls() {
        let mut t = StreamTranslator::new("m", "x", false);
        let call = |city: &str| {
            format!("{{\"message\":{{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{{\"function\":{{\"name\":\"w\",\"arguments\":{{\"city\":\"{city}\"}}}}}}]}},\"done\":false}}\n")
        };
        let mut out = t.feed(call("Seoul").as_bytes()).unwrap();
        out += &t.feed(call("Paris").as_bytes()).unwrap();
        out += &t
            .feed(b"{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n")
            .unwrap();
        assert!(
            out.contains(r#""id":"call_0""#) && out.contains(r#""id":"call_1""#),
            "{out}"
        );
        assert!(out.contains(r#""index":1"#), "{out}");
        assert!(out.contains(r#""finish_reason":"tool_calls""#), "{out}");
        assert!(t.is_done());
    }
}
