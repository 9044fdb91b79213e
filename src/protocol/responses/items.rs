//! Responses input items as chat messages.

use serde_json::{json, Value};

use super::request::{invalid, kind};
use crate::error::ProxyError;
use crate::protocol::object;

/// Adds one input item to the chat messages. `at` names it in errors (`input[3]`).
pub(super) fn push_item(
    messages: &mut Vec<Value>,
    item: &Value,
    at: &str,
    param: &'static str,
) -> Result<(), ProxyError> {
    if !item.is_object() {
        return Err(invalid(
            param,
            format!("{at} must be an object, not {}", kind(item)),
        ));
    }
    match item.get("type").and_then(Value::as_str) {
        Some("message") => push_message(messages, item, at, param),
        None if item.get("type").is_none() && item.get("role").is_some() => {
            push_message(messages, item, at, param)
        }
        Some("function_call") => push_call(messages, item, at, param),
        Some("function_call_output") => {
            let call_id = required_str(item, "call_id", at, param)?;
            let content = match &item["output"] {
                Value::String(s) => Value::String(s.clone()),
                Value::Array(parts) => Value::Array(
                    parts
                        .iter()
                        .enumerate()
                        .map(|(j, p)| match p["type"].as_str() {
                            Some("input_text") | Some("output_text") => {
                                text_chat_part(p, &format!("{at}.output[{j}]"), param)
                            }
                            other => Err(invalid(
                                param,
                                format!(
                                    "{at}.output[{j}].type: '{}' is not supported in function call outputs by this server (text only)",
                                    other.unwrap_or("(none)")
                                ),
                            )),
                        })
                        .collect::<Result<_, _>>()?,
                ),
                other => {
                    return Err(invalid(
                        param,
                        format!(
                            "{at}.output must be a string or a list of content parts, not {}",
                            kind(other)
                        ),
                    ))
                }
            };
            messages.push(object([
                ("role", "tool".into()),
                ("tool_call_id", call_id.into()),
                ("content", content),
            ]));
            Ok(())
        }
        // Reasoning items carry the model's own (encrypted or summarised) thoughts: chat
        // backends take none back.
        Some("reasoning") => Ok(()),
        Some("item_reference") => Err(invalid(
            param,
            format!(
                "{at}.type: 'item_reference' is not supported by this server; send the item itself or use previous_response_id"
            ),
        )),
        Some(other) => Err(invalid(
            param,
            format!(
                "{at}.type: '{other}' is not supported by this server (message, function_call, function_call_output and reasoning items are)"
            ),
        )),
        None => Err(invalid(
            param,
            format!("{at}.type: Field required (or a role for a message)"),
        )),
    }
}

fn required_str<'a>(
    item: &'a Value,
    field: &str,
    at: &str,
    param: &'static str,
) -> Result<&'a str, ProxyError> {
    item[field]
        .as_str()
        .ok_or_else(|| invalid(param, format!("{at}.{field}: Field required (a string)")))
}

/// A chat text part from an `input_text` / `output_text` part.
fn text_chat_part(part: &Value, at: &str, param: &'static str) -> Result<Value, ProxyError> {
    let text = required_str(part, "text", at, param)?;
    Ok(json!({"type": "text", "text": text}))
}

/// A chat `file` part from an `input_file` part carrying its file inline (`file_data`).
fn file_chat_part(part: &Value, at: &str, param: &'static str) -> Result<Value, ProxyError> {
    const HOW: &str = "send file_data (a PDF as a base64 data URL)";
    let Some(data) = part["file_data"].as_str() else {
        let message = if part["file_id"].is_string() {
            format!("{at}.file_id: file ids are not supported by this server; {HOW}")
        } else if part["file_url"].is_string() {
            format!("{at}.file_url: file URLs are not supported by this server; {HOW}")
        } else {
            format!("{at}.file_data: Field required")
        };
        return Err(invalid(param, message));
    };
    let mut file = object([("file_data", data.into())]);
    if let Some(name) = part["filename"].as_str() {
        file["filename"] = name.into();
    }
    Ok(object([("type", "file".into()), ("file", file)]))
}

fn push_message(
    messages: &mut Vec<Value>,
    item: &Value,
    at: &str,
    param: &'static str,
) -> Result<(), ProxyError> {
    let role = match required_str(item, "role", at, param)? {
        "user" => "user",
        "assistant" => "assistant",
        "system" | "developer" => "system",
        other => {
            return Err(invalid(
                param,
                format!("{at}.role: '{other}' is not one of user, assistant, system, developer"),
            ))
        }
    };
    let parts = match &item["content"] {
        Value::String(s) => {
            messages.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Value::Array(parts) => parts,
        other => {
            return Err(invalid(
                param,
                format!(
                    "{at}.content must be a string or a list of content parts, not {}",
                    kind(other)
                ),
            ))
        }
    };
    let mut chat_parts = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match p["type"].as_str() {
            Some("input_text") | Some("output_text") => {
                chat_parts.push(text_chat_part(p, &at, param)?)
            }
            Some("refusal") if role == "assistant" => {
                let text = required_str(p, "refusal", &at, param)?;
                chat_parts.push(json!({"type": "text", "text": text}));
            }
            Some("input_image") if role == "user" => {
                let Some(url) = p["image_url"].as_str() else {
                    return Err(invalid(
                        param,
                        if p["file_id"].is_string() {
                            format!("{at}.file_id: file ids are not supported by this server; send image_url (a URL or a data URL)")
                        } else {
                            format!("{at}.image_url: Field required")
                        },
                    ));
                };
                let mut image_url = object([("url", url.into())]);
                if let Some(detail) = p["detail"].as_str() {
                    image_url["detail"] = detail.into();
                }
                chat_parts.push(object([
                    ("type", "image_url".into()),
                    ("image_url", image_url),
                ]));
            }
            Some("input_file") if role == "user" => chat_parts.push(file_chat_part(p, &at, param)?),
            other => {
                return Err(invalid(
                    param,
                    format!(
                        "{at}.type: '{}' is not supported in a {} message by this server",
                        other.unwrap_or("(none)"),
                        item["role"].as_str().unwrap_or(role)
                    ),
                ))
            }
        }
    }
    let content = if role == "assistant" {
        // One assistant message's text parts are consecutive pieces of its text.
        Value::String(
            chat_parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect(),
        )
    } else {
        Value::Array(chat_parts)
    };
    messages.push(object([("role", role.into()), ("content", content)]));
    Ok(())
}

/// A `function_call` item: a tool call of the assistant message before it (the text the
/// model wrote with its calls, or the calls just before), or a new assistant message.
fn push_call(
    messages: &mut Vec<Value>,
    item: &Value,
    at: &str,
    param: &'static str,
) -> Result<(), ProxyError> {
    let call_id = required_str(item, "call_id", at, param)?;
    let name = required_str(item, "name", at, param)?;
    let arguments = required_str(item, "arguments", at, param)?;
    let call = object([
        ("id", call_id.into()),
        ("type", "function".into()),
        (
            "function",
            object([("name", name.into()), ("arguments", arguments.into())]),
        ),
    ]);
    if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant") {
        match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            Some(calls) => calls.push(call),
            None => last["tool_calls"] = Value::Array(vec![call]),
        }
        return Ok(());
    }
    messages.push(object([
        ("role", "assistant".into()),
        ("content", Value::Null),
        ("tool_calls", Value::Array(vec![call])),
    ]));
    Ok(())
}
