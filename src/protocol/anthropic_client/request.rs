//! The request direction: an Anthropic Messages request as an OpenAI chat request.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::billing::without_billing_line;
use crate::error::ProxyError;
use crate::protocol::object;
use crate::protocol::openai::text_of;

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

/// A `document` block with a base64 PDF source as an OpenAI `file` part with `file_data`,
/// named after the block's `title` (OpenAI wants a file name with inline data). Other
/// sources (URLs, plain text, unresolved file ids) are refused.
fn document_part(block: &Value, i: usize) -> Result<Value, ProxyError> {
    let src = &block["source"];
    match (src["type"].as_str(), src["media_type"].as_str(), src["data"].as_str()) {
        (Some("base64"), Some("application/pdf"), Some(data)) => {
            let filename = match block["title"].as_str().map(str::trim) {
                Some(t) if t.to_ascii_lowercase().ends_with(".pdf") => t.to_string(),
                Some(t) if !t.is_empty() => format!("{t}.pdf"),
                _ => "document.pdf".to_string(),
            };
            let file = object([
                ("filename", filename.into()),
                ("file_data", format!("data:application/pdf;base64,{data}").into()),
            ]);
            Ok(object([("type", "file".into()), ("file", file)]))
        }
        (kind, _, _) => Err(invalid(format!(
            "messages.{i}: document blocks with a {} source are not supported by this server; send the PDF as a base64 source",
            kind.unwrap_or("(no)")
        ))),
    }
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
    let system = system_prompt(req.get("system"))?;
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    let input = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: Field required (a list)"))?;
    for (i, m) in input.iter().enumerate() {
        push_message(&mut messages, i, m)?;
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
    copy_options(&req, &mut out);
    copy_tools(&req, &mut out)?;
    let bytes = serde_json::to_vec(&out).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    Ok((Bytes::from(bytes), model, stream))
}

/// The top-level `system` prompt as one text (empty when there is none).
fn system_prompt(system: Option<&Value>) -> Result<String, ProxyError> {
    Ok(match system {
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
    })
}

/// Translates message `i` of `messages` into OpenAI messages, appended to `messages`.
fn push_message(messages: &mut Vec<Value>, i: usize, m: &Value) -> Result<(), ProxyError> {
    let role = m["role"]
        .as_str()
        .ok_or_else(|| invalid(format!("messages.{i}.role: Field required")))?;
    match (role, &m["content"]) {
        ("user" | "assistant", Value::String(s)) => {
            messages.push(json!({"role": role, "content": s}))
        }
        ("user", Value::Array(blocks)) => push_user_blocks(messages, i, blocks)?,
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
        ("assistant", Value::Array(blocks)) => messages.push(assistant_message(blocks)),
        (r, _) => {
            return Err(invalid(format!(
                "messages.{i}: role '{r}' with this content is not valid"
            )))
        }
    }
    Ok(())
}

/// A user turn's blocks: tool results become `tool` messages, text and images one user
/// message after them.
fn push_user_blocks(
    messages: &mut Vec<Value>,
    i: usize,
    blocks: &[Value],
) -> Result<(), ProxyError> {
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
                messages.push(
                    json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": content}),
                );
            }
            Some("document") => parts.push(document_part(b, i)?),
            _ => {}
        }
    }
    if !parts.is_empty() {
        messages.push(object([
            ("role", "user".into()),
            ("content", Value::Array(parts)),
        ]));
    }
    Ok(())
}

/// An assistant turn's blocks as one OpenAI assistant message: its text, and its tool uses
/// as tool calls (thinking blocks are dropped).
fn assistant_message(blocks: &[Value]) -> Value {
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
    msg
}

/// Sampling and request options: `temperature`, `top_p`, `thinking` (as
/// `reasoning_effort`), `stop_sequences` and `metadata.user_id`.
fn copy_options(req: &Map<String, Value>, out: &mut Value) {
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
        out["reasoning_effort"] =
            json!(crate::protocol::reasoning::Effort::from_budget(budget).as_str());
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
}

/// `tools` (those with an `input_schema`) as OpenAI functions, and `tool_choice` when any
/// tool is left.
fn copy_tools(req: &Map<String, Value>, out: &mut Value) -> Result<(), ProxyError> {
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
        // Anthropic's one-tool-call switch is OpenAI's `parallel_tool_calls: false`.
        if choice["disable_parallel_tool_use"] == true {
            out["parallel_tool_calls"] = json!(false);
        }
    }
    Ok(())
}
