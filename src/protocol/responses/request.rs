//! A Responses request (`POST /v1/responses`) into the chat pivot.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::items::push_item;
use super::{echo_defaults, ResponseCtx};
use crate::error::ProxyError;
use crate::protocol::object;

/// A Responses request in the chat pivot, with what the reply translations and the
/// caller need.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The OpenAI chat request body.
    pub body: Bytes,
    /// The model as the client named it.
    pub model: String,
    /// The client asked for a stream (the chat body then asks for a usage chunk).
    pub stream: bool,
    /// The `type` of every tool that is not a function (`web_search`, `file_search`,
    /// `code_interpreter`, `mcp`…), in order: hosted tools no chat backend runs. They are
    /// left out of the chat body; the caller refuses the request or goes on without them.
    pub hosted_tools: Vec<String>,
    /// Whether `tool_choice` lets the model choose (`auto`, or not set): hosted tools can
    /// then be left out without the model being forced to call one.
    pub tool_choice_auto: bool,
    /// `store` (default true): the caller keeps the response for `previous_response_id`.
    pub store: bool,
    /// `previous_response_id`: the caller loaded that response's items as `history`.
    pub previous_response_id: Option<String>,
    /// This turn's input items (a string `input` as one user message), to be stored with
    /// the response's output items as the next turn's history.
    pub input_items: Vec<Value>,
    /// The request fields the Response object echoes.
    pub echo: Map<String, Value>,
}

impl ChatRequest {
    /// The context of the response to this request.
    pub fn ctx(&self, id: &str, created_at: u64) -> ResponseCtx {
        ResponseCtx {
            id: id.to_string(),
            created_at,
            echo: self.echo.clone(),
        }
    }
}

pub(super) fn invalid(param: &'static str, message: impl Into<String>) -> ProxyError {
    ProxyError::InvalidField {
        param,
        message: message.into(),
    }
}

/// A JSON type's name, for error messages.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `field` when it is set (present and not null).
fn set<'a>(req: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    req.get(field).filter(|v| !v.is_null())
}

/// The chat messages of a Responses request: `instructions` first, then the earlier
/// turns' items, then this turn's input.
fn chat_messages(
    req: &Map<String, Value>,
    history: &[Value],
    input_items: &[Value],
) -> Result<Vec<Value>, ProxyError> {
    let mut messages = Vec::new();
    match set(req, "instructions") {
        None => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(other) => {
            return Err(invalid(
                "instructions",
                format!("'instructions' must be a string, not {}", kind(other)),
            ))
        }
    }
    for (i, item) in history.iter().enumerate() {
        push_item(
            &mut messages,
            item,
            &format!("previous response item {i}"),
            "previous_response_id",
        )?;
    }
    for (i, item) in input_items.iter().enumerate() {
        push_item(&mut messages, item, &format!("input[{i}]"), "input")?;
    }
    Ok(messages)
}

/// `reasoning.effort`, `max_output_tokens` and the sampling fields, in chat's names.
fn copy_generation(req: &Map<String, Value>, out: &mut Value) -> Result<(), ProxyError> {
    match set(req, "reasoning") {
        None => {}
        Some(Value::Object(r)) => {
            if let Some(effort) = r.get("effort").filter(|e| !e.is_null()) {
                out["reasoning_effort"] = effort.clone();
            }
        }
        Some(other) => {
            return Err(invalid(
                "reasoning",
                format!("'reasoning' must be an object, not {}", kind(other)),
            ))
        }
    }
    if let Some(max) = set(req, "max_output_tokens") {
        if !max.is_u64() {
            return Err(invalid(
                "max_output_tokens",
                "'max_output_tokens' must be a positive integer",
            ));
        }
        out["max_completion_tokens"] = max.clone();
    }
    for key in [
        "temperature",
        "top_p",
        "user",
        "prompt_cache_key",
        "safety_identifier",
    ] {
        if let Some(v) = set(req, key) {
            out[key] = v.clone();
        }
    }
    Ok(())
}

/// Translates a Responses request into the chat pivot. `history` holds the input and
/// output items of the earlier turns (for `previous_response_id`, loaded by the caller);
/// they come before this request's `input`.
pub fn to_chat_request(body: &[u8], history: &[Value]) -> Result<ChatRequest, ProxyError> {
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
        None | Some(Value::Null) | Some(Value::String(_)) => return Err(ProxyError::MissingModel),
        Some(other) => {
            return Err(invalid(
                "model",
                format!("'model' must be a string, not {}", kind(other)),
            ))
        }
    };
    refuse_unsupported(&req)?;
    let input_items = match req.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(invalid(
                "input",
                format!(
                    "'input' must be a string or a list of input items, not {}",
                    kind(other)
                ),
            ))
        }
    };
    if input_items.is_empty() && history.is_empty() {
        return Err(invalid(
            "input",
            "'input' is required: a string or a list of input items",
        ));
    }

    let messages = chat_messages(&req, history, &input_items)?;

    let stream = match set(&req, "stream") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(
                "stream",
                format!("'stream' must be a boolean, not {}", kind(other)),
            ))
        }
    };
    let mut out = object([
        ("model", model.as_str().into()),
        ("messages", Value::Array(messages)),
        ("stream", stream.into()),
    ]);
    if stream {
        out["stream_options"] = json!({"include_usage": true});
    }

    let (mut tools, hosted_tools) = tools(&req)?;
    let (choice, tool_choice_auto, allowed) = tool_choice(&req)?;
    if let Some(allowed) = allowed {
        tools.retain(|t| allowed.iter().any(|name| t["function"]["name"] == *name));
    }
    if !tools.is_empty() {
        out["tools"] = Value::Array(tools);
        if let Some(choice) = choice {
            out["tool_choice"] = choice;
        }
        if let Some(p) = set(&req, "parallel_tool_calls") {
            out["parallel_tool_calls"] = p.clone();
        }
    }

    text_format(&req, &mut out)?;
    copy_generation(&req, &mut out)?;

    let store = match set(&req, "store") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(
                "store",
                format!("'store' must be a boolean, not {}", kind(other)),
            ))
        }
    };
    let previous_response_id = match set(&req, "previous_response_id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(invalid(
                "previous_response_id",
                format!(
                    "'previous_response_id' must be a string, not {}",
                    kind(other)
                ),
            ))
        }
    };
    let body = serde_json::to_vec(&out).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    Ok(ChatRequest {
        body: Bytes::from(body),
        echo: echo(&req, &model),
        model,
        stream,
        hosted_tools,
        tool_choice_auto,
        store,
        previous_response_id,
        input_items,
    })
}

/// Refuses what a chat backend cannot do for a Responses client.
fn refuse_unsupported(req: &Map<String, Value>) -> Result<(), ProxyError> {
    if set(req, "background") == Some(&Value::Bool(true)) {
        return Err(invalid(
            "background",
            "background responses are not supported by this server",
        ));
    }
    if set(req, "conversation").is_some() {
        return Err(invalid(
            "conversation",
            "conversations are not supported by this server; use previous_response_id",
        ));
    }
    if set(req, "prompt").is_some() {
        return Err(invalid(
            "prompt",
            "prompt templates are not supported by this server",
        ));
    }
    Ok(())
}

/// The fields the Response echoes: the request's, or their defaults.
fn echo(req: &Map<String, Value>, model: &str) -> Map<String, Value> {
    let mut echo = echo_defaults(model);
    for key in [
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt_cache_key",
        "safety_identifier",
        "store",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "truncation",
        "user",
    ] {
        if let Some(v) = set(req, key) {
            echo.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Object(r)) = set(req, "reasoning") {
        let mut reasoning = json!({"effort": null, "summary": null});
        for (k, v) in r {
            reasoning[k.as_str()] = v.clone();
        }
        echo.insert("reasoning".into(), reasoning);
    }
    if let Some(Value::Object(t)) = set(req, "text") {
        let mut text = t.clone();
        text.entry("format")
            .or_insert_with(|| json!({"type": "text"}));
        echo.insert("text".into(), Value::Object(text));
    }
    echo
}

/// The chat function tools, and the types of the hosted tools.
fn tools(req: &Map<String, Value>) -> Result<(Vec<Value>, Vec<String>), ProxyError> {
    let list = match set(req, "tools") {
        None => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(invalid(
                "tools",
                format!("'tools' must be a list, not {}", kind(other)),
            ))
        }
    };
    let mut functions = Vec::new();
    let mut hosted = Vec::new();
    for (j, t) in list.iter().enumerate() {
        match t["type"].as_str() {
            Some("function") => {
                let name = t["name"].as_str().ok_or_else(|| {
                    invalid(
                        "tools",
                        format!("tools[{j}].name: Field required (a string)"),
                    )
                })?;
                let mut function = object([("name", name.into())]);
                for key in ["description", "parameters", "strict"] {
                    if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                        function[key] = v.clone();
                    }
                }
                functions.push(object([
                    ("type", "function".into()),
                    ("function", function),
                ]));
            }
            Some(other) => hosted.push(other.to_string()),
            None => return Err(invalid("tools", format!("tools[{j}].type: Field required"))),
        }
    }
    Ok((functions, hosted))
}

/// The chat `tool_choice` (None: not set), whether it lets the model choose, and the
/// function names an `allowed_tools` choice keeps.
type Choice = (Option<Value>, bool, Option<Vec<String>>);

fn tool_choice(req: &Map<String, Value>) -> Result<Choice, ProxyError> {
    let bad = |message: String| invalid("tool_choice", message);
    Ok(match set(req, "tool_choice") {
        None => (None, true, None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => (Some(json!("auto")), true, None),
            "none" | "required" => (Some(json!(s)), false, None),
            other => {
                return Err(bad(format!(
                    "tool_choice '{other}' is not one of none, auto, required"
                )))
            }
        },
        Some(Value::Object(c)) => match c.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("tool_choice.name: Field required (a string)".into()))?;
                (
                    Some(json!({"type": "function", "function": {"name": name}})),
                    false,
                    None,
                )
            }
            Some("allowed_tools") => {
                let mode = match c.get("mode").and_then(Value::as_str) {
                    Some(m @ ("auto" | "required")) => m,
                    _ => return Err(bad("tool_choice.mode must be auto or required".into())),
                };
                let names = c
                    .get("tools")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("tool_choice.tools: Field required (a list)".into()))?
                    .iter()
                    .filter(|t| t["type"] == "function")
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect();
                (Some(json!(mode)), mode == "auto", Some(names))
            }
            Some(other) => {
                return Err(bad(format!(
                    "tool_choice forces the hosted tool '{other}', which this server cannot run"
                )))
            }
            None => return Err(bad("tool_choice.type: Field required".into())),
        },
        Some(other) => {
            return Err(bad(format!(
                "'tool_choice' must be a string or an object, not {}",
                kind(other)
            )))
        }
    })
}

/// `text.format` as chat's `response_format`; `text.verbosity` as `verbosity`.
fn text_format(req: &Map<String, Value>, out: &mut Value) -> Result<(), ProxyError> {
    let text = match set(req, "text") {
        None => return Ok(()),
        Some(Value::Object(t)) => t,
        Some(other) => {
            return Err(invalid(
                "text",
                format!("'text' must be an object, not {}", kind(other)),
            ))
        }
    };
    if let Some(v) = text.get("verbosity").filter(|v| !v.is_null()) {
        out["verbosity"] = v.clone();
    }
    let Some(format) = text.get("format").filter(|f| !f.is_null()) else {
        return Ok(());
    };
    match format["type"].as_str() {
        Some("text") => {}
        Some("json_object") => out["response_format"] = json!({"type": "json_object"}),
        Some("json_schema") => {
            let name = format["name"]
                .as_str()
                .ok_or_else(|| invalid("text", "text.format.name: Field required (a string)"))?;
            if !format["schema"].is_object() {
                return Err(invalid(
                    "text",
                    "text.format.schema: Field required (a JSON Schema object)",
                ));
            }
            let mut schema = object([("name", name.into()), ("schema", format["schema"].clone())]);
            for key in ["description", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema[key] = v.clone();
                }
            }
            out["response_format"] =
                object([("type", "json_schema".into()), ("json_schema", schema)]);
        }
        other => {
            return Err(invalid(
                "text",
                format!(
                    "text.format.type '{}' is not one of text, json_object, json_schema",
                    other.unwrap_or("(none)")
                ),
            ))
        }
    }
    Ok(())
}
