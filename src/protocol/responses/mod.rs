//! OpenAI's Responses API (`POST /v1/responses`) as pure translations through the chat
//! pivot, both ways:
//!
//! - Responses clients on chat backends: [`to_chat_request`] (input items, instructions,
//!   function tools, `text.format`, reasoning effort… into a chat body; hosted tools are
//!   listed apart for the caller to refuse or leave out), [`from_chat_response`] (a chat
//!   completion into a Response object) and [`StreamTranslator`] (chat chunks into the
//!   Responses event stream, `sequence_number` on every event, ending in
//!   `response.completed`, `response.incomplete` or `response.failed`).
//! - Chat clients on Responses-only backends: [`from_chat_request`],
//!   [`to_chat_response`] and [`ChatStreamTranslator`].
//!
//! Shapes follow OpenAI's API reference ("Create a model response", "The response
//! object", "Streaming events") and its OpenAPI description. Backend reasoning
//! (`reasoning_content` / `reasoning` in chat) becomes a `reasoning` item whose text is a
//! `summary_text` part, streamed with the `response.reasoning_summary_*` events. Nothing
//! here does I/O or keeps state across requests: `previous_response_id` history is loaded
//! by the caller and handed to [`to_chat_request`].

mod chat_stream;
mod items;
mod reply;
mod request;
mod reverse;
mod stream;

#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod tests;

pub use chat_stream::ChatStreamTranslator;
pub use reply::from_chat_response;
pub use request::{to_chat_request, ChatRequest};
pub use reverse::{from_chat_request, to_chat_response};
pub use stream::StreamTranslator;

use serde_json::{json, Map, Value};

use super::object;

/// What the reply translations need of the request: the response's id and creation time,
/// and the request fields a Response object echoes (`model` as the client named it,
/// `instructions`, `tools`, `tool_choice`, `text`, `reasoning`, `temperature`…).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseCtx {
    /// The response id (`resp_…`); output item ids are derived from it.
    pub id: String,
    /// Unix time (seconds) the response was created.
    pub created_at: u64,
    /// The echoed request fields, each present (with its default when the client left it
    /// out).
    pub echo: Map<String, Value>,
}

impl ResponseCtx {
    /// A context for a request that set nothing but `model`.
    pub fn new(id: &str, created_at: u64, model: &str) -> ResponseCtx {
        ResponseCtx {
            id: id.to_string(),
            created_at,
            echo: echo_defaults(model),
        }
    }

    /// The model as the client named it.
    pub fn model(&self) -> &str {
        self.echo.get("model").and_then(Value::as_str).unwrap_or("")
    }

    /// An output item id: `prefix` and the response id's own part, with the item's index
    /// (`msg_abc_0` for `resp_abc`).
    fn item_id(&self, prefix: &str, index: usize) -> String {
        let own = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{own}_{index}")
    }

    /// The Response object.
    fn response(&self, status: &str, output: Vec<Value>, usage: Value, end: End) -> Value {
        let mut map = self.echo.clone();
        map.insert("id".into(), self.id.as_str().into());
        map.insert("object".into(), "response".into());
        map.insert("created_at".into(), self.created_at.into());
        map.insert("status".into(), status.into());
        map.insert("output".into(), Value::Array(output));
        map.insert("usage".into(), usage);
        let (incomplete, error) = match end {
            End::Open | End::Completed => (Value::Null, Value::Null),
            End::Incomplete(reason) => (object([("reason", reason.into())]), Value::Null),
            End::Failed { code, message } => (
                Value::Null,
                object([("code", code.into()), ("message", message.into())]),
            ),
        };
        map.insert("incomplete_details".into(), incomplete);
        map.insert("error".into(), error);
        Value::Object(map)
    }
}

/// How a response ended (or that it has not).
#[derive(Debug, Clone)]
enum End {
    /// Still in progress.
    Open,
    /// Finished normally.
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    /// Failed with an error.
    Failed {
        /// One of the Response error codes (`server_error`, `rate_limit_exceeded`…).
        code: String,
        /// What went wrong.
        message: String,
    },
}

impl End {
    /// The end a chat `finish_reason` stands for.
    fn from_finish(finish: Option<&str>) -> End {
        match finish {
            Some("length") => End::Incomplete("max_output_tokens"),
            Some("content_filter") => End::Incomplete("content_filter"),
            _ => End::Completed,
        }
    }

    /// The Response `status`.
    fn status(&self) -> &'static str {
        match self {
            End::Open => "in_progress",
            End::Completed => "completed",
            End::Incomplete(_) => "incomplete",
            End::Failed { .. } => "failed",
        }
    }

    /// The status of the item the response ended in (earlier items are complete).
    fn last_item_status(&self) -> &'static str {
        match self {
            End::Open => "in_progress",
            End::Completed => "completed",
            End::Incomplete(_) | End::Failed { .. } => "incomplete",
        }
    }
}

/// The codes a Response `error` may carry; anything else a backend reports becomes
/// `server_error`.
const ERROR_CODES: &[&str] = &[
    "server_error",
    "rate_limit_exceeded",
    "invalid_prompt",
    "vector_store_timeout",
    "invalid_image",
    "invalid_image_format",
    "invalid_base64_image",
    "invalid_image_url",
    "image_too_large",
    "image_too_small",
    "image_parse_error",
    "image_content_policy_violation",
    "invalid_image_mode",
    "image_file_too_large",
    "unsupported_image_media_type",
    "empty_image_file",
    "failed_to_download_image",
    "image_file_not_found",
];

/// A failure from a chat error object (`{"message", "code", …}`).
fn failure(error: &Value) -> End {
    let message = error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .unwrap_or("the backend failed")
        .to_string();
    let code = error["code"]
        .as_str()
        .filter(|c| ERROR_CODES.contains(c))
        .unwrap_or("server_error")
        .to_string();
    End::Failed { code, message }
}

/// The echoed fields of a request that set only `model`, as OpenAI's reference shows
/// them. `temperature` and `top_p` are null: the backend's defaults are not known here.
fn echo_defaults(model: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("model", Value::from(model)),
        ("background", false.into()),
        ("instructions", Value::Null),
        ("max_output_tokens", Value::Null),
        ("max_tool_calls", Value::Null),
        ("metadata", json!({})),
        ("parallel_tool_calls", true.into()),
        ("previous_response_id", Value::Null),
        ("prompt_cache_key", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("safety_identifier", Value::Null),
        ("store", true.into()),
        ("temperature", Value::Null),
        ("text", json!({"format": {"type": "text"}})),
        ("tool_choice", "auto".into()),
        ("tools", json!([])),
        ("top_p", Value::Null),
        ("truncation", "disabled".into()),
        ("user", Value::Null),
    ] {
        m.insert(k.into(), v);
    }
    m
}

/// Responses usage from chat usage (`null` when the reply carried none). Chat's
/// `prompt_tokens` already includes cached tokens, as `input_tokens` does.
fn usage_from_chat(u: &Value) -> Value {
    if !u.is_object() {
        return Value::Null;
    }
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let input = n(&u["prompt_tokens"]);
    let output = n(&u["completion_tokens"]);
    let total = u["total_tokens"].as_u64().unwrap_or(input + output);
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": n(&u["prompt_tokens_details"]["cached_tokens"]),
            "cache_write_tokens": 0,
        },
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": n(&u["completion_tokens_details"]["reasoning_tokens"]),
        },
        "total_tokens": total,
    })
}

/// Chat usage from Responses usage (`null` when there is none).
fn usage_to_chat(u: &Value) -> Value {
    if !u.is_object() {
        return Value::Null;
    }
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let input = n(&u["input_tokens"]);
    let output = n(&u["output_tokens"]);
    json!({
        "prompt_tokens": input,
        "completion_tokens": output,
        "total_tokens": u["total_tokens"].as_u64().unwrap_or(input + output),
        "prompt_tokens_details": {"cached_tokens": n(&u["input_tokens_details"]["cached_tokens"])},
        "completion_tokens_details": {"reasoning_tokens": n(&u["output_tokens_details"]["reasoning_tokens"])},
    })
}

/// An `output_text` content part.
fn text_part(text: &str) -> Value {
    object([
        ("type", "output_text".into()),
        ("text", text.into()),
        ("annotations", json!([])),
        ("logprobs", json!([])),
    ])
}

/// A `refusal` content part.
fn refusal_part(refusal: &str) -> Value {
    object([("type", "refusal".into()), ("refusal", refusal.into())])
}

/// A `summary_text` part of a reasoning item.
fn summary_part(text: &str) -> Value {
    object([("type", "summary_text".into()), ("text", text.into())])
}

/// A `reasoning` output item (no `status`, as OpenAI returns them).
fn reasoning_item(id: &str, summary: Vec<Value>) -> Value {
    object([
        ("id", id.into()),
        ("type", "reasoning".into()),
        ("summary", Value::Array(summary)),
    ])
}

/// A `message` output item.
fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    object([
        ("id", id.into()),
        ("type", "message".into()),
        ("status", status.into()),
        ("role", "assistant".into()),
        ("content", Value::Array(content)),
    ])
}

/// A `function_call` output item.
fn function_call_item(id: &str, status: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    object([
        ("id", id.into()),
        ("type", "function_call".into()),
        ("status", status.into()),
        ("call_id", call_id.into()),
        ("name", name.into()),
        ("arguments", arguments.into()),
    ])
}

/// Sets the `status` of the last output item (when it has one) to `status`.
fn mark_last(output: &mut [Value], status: &str) {
    if let Some(last) = output.last_mut().and_then(Value::as_object_mut) {
        if last.contains_key("status") {
            last.insert("status".into(), status.into());
        }
    }
}
