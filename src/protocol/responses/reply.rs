//! A chat completion into a Response object.

use serde_json::Value;

use super::{
    failure, function_call_item, mark_last, message_item, reasoning_item, refusal_part,
    summary_part, text_part, usage_from_chat, End, ResponseCtx,
};
use crate::protocol::openai::text_of;

/// The reasoning text of a chat message or delta: `reasoning_content` (vLLM, DeepSeek,
/// llama.cpp) or `reasoning` (OpenRouter's convention, gpt-oss).
pub(super) fn reasoning_of(m: &Value) -> Option<&str> {
    m["reasoning_content"]
        .as_str()
        .or_else(|| m["reasoning"].as_str())
        .filter(|t| !t.is_empty())
}

/// Translates a chat completion into the Response object answering the request `ctx`
/// describes: a `reasoning` item (when the backend returned reasoning), a `message` item
/// (text or refusal), then one `function_call` item per tool call. A `finish_reason` of
/// `length` or `content_filter` makes the response `incomplete` (and its last item).
pub fn from_chat_response(chat: &[u8], ctx: &ResponseCtx) -> Result<Value, String> {
    let v: Value =
        serde_json::from_slice(chat).map_err(|e| format!("unreadable backend reply: {e}"))?;
    if let Some(End::Failed { message, .. }) = v.get("error").map(failure) {
        return Err(message);
    }
    let choice = &v["choices"][0];
    if !choice.is_object() {
        return Err("the backend's reply has no choices".into());
    }
    let msg = &choice["message"];
    let mut output = Vec::new();
    if let Some(reasoning) = reasoning_of(msg) {
        let id = ctx.item_id("rs", output.len());
        output.push(reasoning_item(&id, vec![summary_part(reasoning)]));
    }
    let text = text_of(&msg["content"]);
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(text_part(&text));
    }
    if let Some(refusal) = msg["refusal"].as_str().filter(|r| !r.is_empty()) {
        content.push(refusal_part(refusal));
    }
    if !content.is_empty() {
        let id = ctx.item_id("msg", output.len());
        output.push(message_item(&id, "completed", content));
    }
    for c in msg["tool_calls"].as_array().into_iter().flatten() {
        let index = output.len();
        let id = ctx.item_id("fc", index);
        let call_id = match c["id"].as_str().filter(|i| !i.is_empty()) {
            Some(i) => i.to_string(),
            None => ctx.item_id("call", index),
        };
        output.push(function_call_item(
            &id,
            "completed",
            &call_id,
            c["function"]["name"].as_str().unwrap_or_default(),
            c["function"]["arguments"].as_str().unwrap_or_default(),
        ));
    }
    let end = End::from_finish(choice["finish_reason"].as_str());
    if matches!(end, End::Incomplete(_)) {
        mark_last(&mut output, end.last_item_status());
    }
    Ok(ctx.response(end.status(), output, usage_from_chat(&v["usage"]), end))
}
