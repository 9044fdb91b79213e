//! The reply direction: an OpenAI chat completion as an Anthropic message, and
//! Anthropic's error bodies.

use bytes::Bytes;
use serde_json::{json, Value};

pub(super) fn stop_reason(finish: Option<&str>) -> &'static str {
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
    // A refusal comes as `message.refusal` (with `content: null`); Anthropic tells it as
    // text with `stop_reason: "refusal"`.
    let refusal = msg["refusal"].as_str().filter(|t| !t.is_empty());
    if let Some(t) = refusal {
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
        "stop_reason": match refusal {
            Some(_) => "refusal",
            None => stop_reason(choice["finish_reason"].as_str()),
        },
        "stop_sequence": null,
        "usage": Usage::from_openai(&v["usage"]).to_json(),
    });
    Ok(Bytes::from(out.to_string()))
}

/// Token usage in Anthropic's terms.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Usage {
    /// Prompt tokens that were not read from the prompt cache.
    pub(super) input: u64,
    pub(super) output: u64,
    pub(super) cache_read: u64,
}

impl Usage {
    /// OpenAI's `prompt_tokens` includes cached tokens; Anthropic's `input_tokens` does
    /// not (they are `cache_read_input_tokens`).
    pub(super) fn from_openai(u: &Value) -> Usage {
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

    pub(super) fn to_json(self) -> Value {
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
        504 => "timeout_error",
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
