//! Chat clients on a backend that speaks only the Responses API: the chat request as a
//! Responses request, and the Response back as a chat completion.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::usage_to_chat;
use crate::error::ProxyError;
use crate::protocol::object;
use crate::protocol::openai::{self, text_of};

fn invalid(param: &'static str, message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param,
        message: message.into(),
    }
}

/// Translates an OpenAI chat request into a Responses request; also says whether the
/// client asked for a usage chunk (`stream_options.include_usage`).
///
/// The backend is asked not to store the response (`store: false`): the chat client
/// sends its whole conversation every time. Chat parameters the Responses API has no
/// counterpart for are refused (`stop`, `logit_bias`, `n` above 1, `logprobs`, non-zero
/// penalties); `seed` (best effort by definition) is left out.
pub fn from_chat_request(chat: &[u8]) -> Result<(Bytes, bool), ProxyError> {
    let req = openai::parse_request(chat)?;
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(ProxyError::MissingModel),
    };
    refuse_unsupported(&req)?;
    let mut input = Vec::new();
    for (i, m) in openai::messages(&req).iter().enumerate() {
        push_message(&mut input, m, i)?;
    }
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut out = object([
        ("model", model.into()),
        ("input", Value::Array(input)),
        ("store", false.into()),
    ]);
    if stream {
        out["stream"] = true.into();
    }
    if let Some(max) = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        out["max_output_tokens"] = max.clone();
    }
    for key in [
        "temperature",
        "top_p",
        "user",
        "metadata",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
        "service_tier",
    ] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            out[key] = v.clone();
        }
    }
    if let Some(effort) = req.get("reasoning_effort").filter(|v| !v.is_null()) {
        out["reasoning"] = json!({ "effort": effort });
    }
    let mut text = Map::new();
    if let Some(format) = req.get("response_format").filter(|v| !v.is_null()) {
        text.insert("format".into(), text_format(format)?);
    }
    if let Some(v) = req.get("verbosity").filter(|v| !v.is_null()) {
        text.insert("verbosity".into(), v.clone());
    }
    if !text.is_empty() {
        out["text"] = Value::Object(text);
    }
    if let Some(tools) = req.get("tools").filter(|v| !v.is_null()) {
        out["tools"] = Value::Array(function_tools(tools)?);
    }
    if let Some(choice) = req.get("tool_choice").filter(|v| !v.is_null()) {
        out["tool_choice"] = tool_choice(choice)?;
    }
    let include_usage = openai::include_usage(&req);
    let body = serde_json::to_vec(&out).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    Ok((Bytes::from(body), include_usage))
}

fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), ProxyError> {
    let set = |k: &str| req.get(k).filter(|v| !v.is_null());
    if set("stop").is_some() {
        return Err(invalid(
            "stop",
            "stop sequences are not supported by this model's backend (OpenAI Responses API)",
        ));
    }
    if set("logit_bias").is_some() {
        return Err(invalid(
            "logit_bias",
            "logit_bias is not supported by this model's backend (OpenAI Responses API)",
        ));
    }
    if set("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(invalid(
            "n",
            "n above 1 is not supported by this model's backend (OpenAI Responses API)",
        ));
    }
    if set("logprobs") == Some(&Value::Bool(true)) {
        return Err(invalid(
            "logprobs",
            "logprobs are not supported by this router for this model's backend (OpenAI Responses API)",
        ));
    }
    for (key, name) in [
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ] {
        if set(key).and_then(Value::as_f64).is_some_and(|p| p != 0.0) {
            return Err(invalid(
                name,
                format!("{name} is not supported by this model's backend (OpenAI Responses API)"),
            ));
        }
    }
    Ok(())
}

/// Adds the input items of chat message `i`.
fn push_message(input: &mut Vec<Value>, m: &Value, i: usize) -> Result<(), ProxyError> {
    let bad = |message: String| invalid("messages", message);
    let role = m["role"]
        .as_str()
        .ok_or_else(|| bad(format!("messages[{i}].role: Field required")))?;
    match role {
        "system" | "developer" => input.push(object([
            ("type", "message".into()),
            ("role", role.into()),
            ("content", text_of(&m["content"]).into()),
        ])),
        "user" => {
            let content = match &m["content"] {
                Value::String(s) => Value::String(s.clone()),
                Value::Array(parts) => Value::Array(
                    parts
                        .iter()
                        .enumerate()
                        .map(|(j, p)| user_part(p, i, j))
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(bad(format!("messages[{i}].content: Field required"))),
            };
            input.push(object([
                ("type", "message".into()),
                ("role", "user".into()),
                ("content", content),
            ]));
        }
        "assistant" => {
            let text = text_of(&m["content"]);
            if !text.is_empty() {
                input.push(object([
                    ("type", "message".into()),
                    ("role", "assistant".into()),
                    ("content", text.into()),
                ]));
            }
            for (j, c) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                if c["type"] != "function" && !c["type"].is_null() {
                    return Err(bad(format!(
                        "messages[{i}].tool_calls[{j}].type: only function tool calls are supported by this model's backend"
                    )));
                }
                input.push(object([
                    ("type", "function_call".into()),
                    ("call_id", c["id"].clone()),
                    ("name", c["function"]["name"].clone()),
                    ("arguments", c["function"]["arguments"].clone()),
                ]));
            }
        }
        "tool" => input.push(object([
            ("type", "function_call_output".into()),
            ("call_id", m["tool_call_id"].clone()),
            ("output", text_of(&m["content"]).into()),
        ])),
        other => {
            return Err(bad(format!(
                "messages[{i}].role: '{other}' is not supported by this model's backend"
            )))
        }
    }
    Ok(())
}

/// A user content part as a Responses input part.
fn user_part(p: &Value, i: usize, j: usize) -> Result<Value, ProxyError> {
    match p["type"].as_str() {
        Some("text") => Ok(object([
            ("type", "input_text".into()),
            ("text", p["text"].clone()),
        ])),
        Some("image_url") => {
            let image = &p["image_url"];
            let url = image["url"].as_str().or_else(|| image.as_str());
            Ok(object([
                ("type", "input_image".into()),
                ("image_url", url.into()),
                ("detail", image["detail"].as_str().unwrap_or("auto").into()),
            ]))
        }
        Some("file") => {
            let mut part = object([("type", "input_file".into())]);
            for key in ["file_data", "file_id", "filename"] {
                if let Some(v) = p["file"].get(key).filter(|v| !v.is_null()) {
                    part[key] = v.clone();
                }
            }
            Ok(part)
        }
        other => Err(invalid(
            "messages",
            format!(
                "messages[{i}].content[{j}].type: '{}' is not supported by this model's backend",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

fn text_format(format: &Value) -> Result<Value, ProxyError> {
    match format["type"].as_str() {
        Some("text") => Ok(json!({"type": "text"})),
        Some("json_object") => Ok(json!({"type": "json_object"})),
        Some("json_schema") => {
            let schema = &format["json_schema"];
            let mut out = object([
                ("type", "json_schema".into()),
                ("name", schema["name"].clone()),
                ("schema", schema["schema"].clone()),
            ]);
            for key in ["description", "strict"] {
                if let Some(v) = schema.get(key).filter(|v| !v.is_null()) {
                    out[key] = v.clone();
                }
            }
            Ok(out)
        }
        other => Err(invalid(
            "response_format",
            format!(
                "response_format.type '{}' is not one of text, json_object, json_schema",
                other.unwrap_or("(none)")
            ),
        )),
    }
}

/// Chat function tools as Responses function tools. `strict` is false unless the client
/// set it: the Responses API makes function tools strict by default, chat does not.
fn function_tools(tools: &Value) -> Result<Vec<Value>, ProxyError> {
    let list = tools
        .as_array()
        .ok_or_else(|| invalid("tools", "'tools' must be a list"))?;
    list.iter()
        .enumerate()
        .map(|(j, t)| {
            if t["type"] != "function" {
                return Err(invalid(
                    "tools",
                    format!("tools[{j}].type: only function tools are supported by this model's backend"),
                ));
            }
            let f = &t["function"];
            let mut tool = object([
                ("type", "function".into()),
                ("name", f["name"].clone()),
                ("strict", f["strict"].as_bool().unwrap_or(false).into()),
            ]);
            for key in ["description", "parameters"] {
                if let Some(v) = f.get(key).filter(|v| !v.is_null()) {
                    tool[key] = v.clone();
                }
            }
            Ok(tool)
        })
        .collect()
}

fn tool_choice(choice: &Value) -> Result<Value, ProxyError> {
    match choice {
        Value::String(_) => Ok(choice.clone()),
        Value::Object(c) => match c.get("type").and_then(Value::as_str) {
            Some("function") => Ok(json!({"type": "function", "name": choice["function"]["name"]})),
            Some("allowed_tools") => {
                let allowed = &choice["allowed_tools"];
                let tools: Vec<Value> = allowed["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| json!({"type": "function", "name": t["function"]["name"]}))
                    .collect();
                Ok(json!({"type": "allowed_tools", "mode": allowed["mode"], "tools": tools}))
            }
            _ => Err(invalid(
                "tool_choice",
                "tool_choice must be none, auto, required, a function or allowed_tools",
            )),
        },
        _ => Err(invalid(
            "tool_choice",
            "tool_choice must be a string or an object",
        )),
    }
}

/// Translates a Response object into a chat completion answering `model`. Output text
/// becomes the message content, refusals its `refusal`, reasoning (summary and reasoning
/// text) its `reasoning_content`, and function calls its `tool_calls`; items of hosted
/// tools are left out. A failed response is an error.
pub fn to_chat_response(resp: &[u8], model: &str) -> Result<Bytes, String> {
    let v: Value =
        serde_json::from_slice(resp).map_err(|e| format!("unreadable backend reply: {e}"))?;
    if v["status"] == "failed" || v["error"].is_object() {
        return Err(v["error"]["message"]
            .as_str()
            .unwrap_or("the backend failed")
            .to_string());
    }
    let output = v["output"]
        .as_array()
        .ok_or("the backend's reply has no output")?;
    let (mut text, mut refusal, mut reasoning) = (String::new(), String::new(), Vec::new());
    let mut calls = Vec::new();
    for item in output {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"].as_array().into_iter().flatten() {
                    match part["type"].as_str() {
                        Some("output_text") => text.push_str(part["text"].as_str().unwrap_or("")),
                        Some("refusal") => refusal.push_str(part["refusal"].as_str().unwrap_or("")),
                        _ => {}
                    }
                }
            }
            Some("reasoning") => {
                for part in ["summary", "content"]
                    .iter()
                    .flat_map(|k| item[*k].as_array().into_iter().flatten())
                {
                    if let Some(t) = part["text"].as_str().filter(|t| !t.is_empty()) {
                        reasoning.push(t);
                    }
                }
            }
            Some("function_call") => calls.push(object([
                ("id", item["call_id"].clone()),
                ("type", "function".into()),
                (
                    "function",
                    object([
                        ("name", item["name"].clone()),
                        ("arguments", item["arguments"].clone()),
                    ]),
                ),
            ])),
            _ => {}
        }
    }
    let finish = finish_reason(&v, !calls.is_empty());
    let mut message = object([
        ("role", "assistant".into()),
        (
            "content",
            if text.is_empty() && !calls.is_empty() {
                Value::Null
            } else {
                text.into()
            },
        ),
        (
            "refusal",
            if refusal.is_empty() {
                Value::Null
            } else {
                refusal.into()
            },
        ),
    ]);
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.join("\n\n").into();
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let mut out = json!({
        "id": v["id"], "object": "chat.completion", "created": v["created_at"].as_f64().unwrap_or(0.0) as u64,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
    });
    let usage = usage_to_chat(&v["usage"]);
    if !usage.is_null() {
        out["usage"] = usage;
    }
    Ok(Bytes::from(out.to_string()))
}

/// The chat `finish_reason` of a Response (or of `response.completed`'s response).
pub(super) fn finish_reason(response: &Value, called: bool) -> &'static str {
    match response["incomplete_details"]["reason"].as_str() {
        Some("max_output_tokens") => "length",
        Some("content_filter") => "content_filter",
        _ if response["status"] == "incomplete" => "length",
        _ if called => "tool_calls",
        _ => "stop",
    }
}
