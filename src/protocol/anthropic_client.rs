//! Anthropic's Messages API (`POST /v1/messages`) translated to and from OpenAI's chat
//! format, so Anthropic clients (Claude Code, the Anthropic SDKs) work against every
//! backend: system prompt, text and image blocks, tool use and tool results, tool choice,
//! stop sequences, usage; streams become Anthropic's event sequence (`message_start`,
//! `content_block_start`, `ping`, deltas, `content_block_stop`, `message_delta`,
//! `message_stop`). Thinking blocks in the history are dropped (OpenAI-compatible servers
//! cannot take them back); `system` messages inside `messages` (Claude Code sends them)
//! stay where they are; Claude Code's per-request billing block is left out of the system
//! prompt, so it does not defeat the prompt cache of self-hosted servers.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
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

/// How Claude Code's per-request attribution block begins, e.g.
/// `x-anthropic-billing-header: cc_version=2.1.37.fbe; cc_entrypoint=cli; cch=a112b;`
/// (`cch` changes on every request and is absent in some versions).
const BILLING_PREFIX: &str = "x-anthropic-billing-header:";

/// `text` without a leading billing-header line; None when nothing else is left.
fn without_billing_line(text: &str) -> Option<&str> {
    let Some(rest) = text.strip_prefix(BILLING_PREFIX) else {
        return Some(text);
    };
    let rest = rest.split_once('\n').map_or("", |(_, after)| after);
    (!rest.trim().is_empty()).then_some(rest)
}

/// Whether a system text block is Claude Code's billing block
/// (`x-anthropic-billing-header: cc_version=…; cc_entrypoint=…; cch=…;`), which differs on
/// every request and so belongs in no cache or hashing key.
pub fn is_billing_block(text: &str) -> bool {
    without_billing_line(text).is_none()
}

/// The text of a `system` message inside `messages`: a string or a list of text blocks
/// (their `cache_control` ignored); None for any other content.
fn system_message_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match (b["type"].as_str(), b["text"].as_str()) {
                (Some("text"), Some(t)) => Some(t),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|texts| texts.join("\n")),
        _ => None,
    }
}

/// The members of a JSON object in order, each value as its original text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Collect<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Collect<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'a RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Collect(PhantomData))
    }
}

/// A `system` value (JSON text) without the billing block: None when there is none,
/// `Some(None)` when nothing else is left, else the new value's JSON text (blocks kept
/// byte for byte).
fn system_without_billing(system: &RawValue) -> Option<Option<String>> {
    if let Ok(text) = serde_json::from_str::<String>(system.get()) {
        if !text.starts_with(BILLING_PREFIX) {
            return None;
        }
        return Some(without_billing_line(&text).map(|rest| Value::from(rest).to_string()));
    }
    let blocks: Vec<&RawValue> = serde_json::from_str(system.get()).ok()?;
    let mut kept = Vec::with_capacity(blocks.len());
    let mut changed = false;
    for raw in blocks {
        let mut block: Value = serde_json::from_str(raw.get()).ok()?;
        let text = match (block["type"].as_str(), block["text"].as_str()) {
            (Some("text"), Some(t)) if t.starts_with(BILLING_PREFIX) => t,
            _ => {
                kept.push(raw.get().to_string());
                continue;
            }
        };
        changed = true;
        if let Some(rest) = without_billing_line(text).map(str::to_string) {
            block["text"] = rest.into();
            kept.push(block.to_string());
        }
    }
    if !changed {
        return None;
    }
    Some((!kept.is_empty()).then(|| format!("[{}]", kept.join(","))))
}

/// An Anthropic request body without Claude Code's billing block in `system` (a `system`
/// made only of it is removed); None when there is none or the body is no JSON object.
/// Every other member keeps its exact text.
pub fn strip_billing_header(body: &[u8]) -> Option<Bytes> {
    let Members(members) = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    for (key, value) in &members {
        let edited = match key.as_str() {
            "system" => system_without_billing(value),
            _ => None,
        };
        let value = match edited {
            None => Cow::Borrowed(value.get()),
            Some(None) => {
                changed = true;
                continue;
            }
            Some(Some(v)) => {
                changed = true;
                Cow::Owned(v)
            }
        };
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(Value::from(key.as_str()).to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'}');
    changed.then(|| Bytes::from(out))
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
    let system = match req.get("system") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => without_billing_line(s).unwrap_or_default().to_string(),
        // Claude Code's billing block changes on every request: kept out, it no longer
        // defeats the prompt (KV) cache of self-hosted servers.
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .filter_map(without_billing_line)
            .collect::<Vec<_>>()
            .join("\n"),
        Some(_) => return Err(invalid("system must be a string or a list of text blocks")),
    };
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
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
            // Claude Code sends these for model ids it does not know; kept in place.
            ("system", content) => {
                let text = system_message_text(content).ok_or_else(|| {
                    invalid(format!(
                        "messages.{i}.content: a system message takes a string or a list of text blocks"
                    ))
                })?;
                if !text.is_empty() {
                    messages.push(json!({"role": "system", "content": text}));
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
}
