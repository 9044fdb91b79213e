//! A Responses event stream into chat completion chunks.

use serde_json::{json, Value};

use super::reverse::finish_reason;
use super::usage_to_chat;
use crate::protocol::openai;
use crate::protocol::sse::{self, SseDecoder};

/// Turns a Responses event stream (SSE bytes) into OpenAI chat completion chunks: a role
/// chunk, content / `refusal` / `reasoning_content` / `tool_calls` deltas, the finishing
/// chunk, the usage chunk when the client asked for one, and `[DONE]`. `response.failed`
/// and `error` events end it with an error.
#[derive(Debug)]
pub struct ChatStreamTranslator {
    id: String,
    model: String,
    include_usage: bool,
    sse: SseDecoder,
    created: u64,
    started: bool,
    /// Function call items by `item_id`: their chat tool call index, and whether argument
    /// deltas were sent for them.
    calls: Vec<(String, bool)>,
    done: bool,
    /// An error that came after chunks of the same feed: handed out by the next one.
    pending_error: Option<String>,
}

impl ChatStreamTranslator {
    /// A translator for one stream answering `model`; chunks carry the id `chatcmpl-{id}`.
    pub fn new(model: &str, id: &str, include_usage: bool) -> ChatStreamTranslator {
        ChatStreamTranslator {
            id: format!("chatcmpl-{id}"),
            model: model.to_string(),
            include_usage,
            sse: SseDecoder::new(sse::DEFAULT_MAX_EVENT),
            created: 0,
            started: false,
            calls: Vec::new(),
            done: false,
            pending_error: None,
        }
    }

    /// Whether the response finished (completed or incomplete) and `[DONE]` was written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn chunk(&self, out: &mut String, delta: Value, finish: Value) {
        out.push_str(&openai::chunk(
            &self.id,
            &self.model,
            self.created,
            delta,
            finish,
        ));
    }

    fn start(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            self.chunk(
                out,
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            );
        }
    }

    /// The chat tool call index of function call item `item_id`.
    fn call_index(&self, item_id: &str) -> Option<usize> {
        self.calls.iter().position(|(id, _)| id == item_id)
    }

    fn call_delta(&mut self, out: &mut String, index: usize, arguments: &str) {
        self.calls[index].1 = true;
        self.chunk(
            out,
            json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
            Value::Null,
        );
    }

    /// Feeds Responses SSE bytes; returns the chat chunks they complete, or the error the
    /// stream carried. Chunks are never dropped for an error: when an error follows
    /// chunks in the same bytes, the chunks come first and the error with the next call.
    pub fn feed(&mut self, data: &[u8]) -> Result<String, String> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        let mut out = String::new();
        match self.translate(data, &mut out) {
            Ok(()) => Ok(out),
            Err(e) if out.is_empty() => Err(e),
            Err(e) => {
                self.pending_error = Some(e);
                Ok(out)
            }
        }
    }

    fn translate(&mut self, data: &[u8], out: &mut String) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        self.sse.push(data).map_err(|e| e.to_string())?;
        while let Some(event) = self.sse.next_event() {
            let v: Value = serde_json::from_slice(event.data.trim_ascii())
                .map_err(|e| format!("unreadable Responses stream event: {e}"))?;
            let kind = v["type"].as_str().unwrap_or_else(|| event.name_str());
            match kind {
                "response.created" | "response.in_progress" => {
                    if let Some(t) = v["response"]["created_at"].as_f64() {
                        self.created = t as u64;
                    }
                    self.start(out);
                }
                "response.output_text.delta" => {
                    self.start(out);
                    self.chunk(out, json!({"content": v["delta"]}), Value::Null);
                }
                "response.refusal.delta" => {
                    self.start(out);
                    self.chunk(out, json!({"refusal": v["delta"]}), Value::Null);
                }
                "response.reasoning_summary_part.added"
                    if v["summary_index"].as_u64().unwrap_or(0) > 0 =>
                {
                    self.chunk(out, json!({"reasoning_content": "\n\n"}), Value::Null);
                }
                "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                    self.start(out);
                    self.chunk(out, json!({"reasoning_content": v["delta"]}), Value::Null);
                }
                "response.output_item.added" if v["item"]["type"] == "function_call" => {
                    self.start(out);
                    let item = &v["item"];
                    let index = self.calls.len();
                    self.calls
                        .push((item["id"].as_str().unwrap_or_default().to_string(), false));
                    self.chunk(
                        out,
                        json!({"tool_calls": [{"index": index, "id": item["call_id"], "type": "function",
                            "function": {"name": item["name"], "arguments": ""}}]}),
                        Value::Null,
                    );
                    if let Some(args) = item["arguments"].as_str().filter(|a| !a.is_empty()) {
                        self.call_delta(out, index, args);
                    }
                }
                "response.function_call_arguments.delta" => {
                    let index = self.call_index(v["item_id"].as_str().unwrap_or_default());
                    if let (Some(index), Some(delta)) = (index, v["delta"].as_str()) {
                        self.call_delta(out, index, delta);
                    }
                }
                "response.output_item.done" if v["item"]["type"] == "function_call" => {
                    // Arguments sent only with the finished item.
                    let item = &v["item"];
                    let index = self.call_index(item["id"].as_str().unwrap_or_default());
                    if let (Some(index), Some(args)) = (index, item["arguments"].as_str()) {
                        if !self.calls[index].1 && !args.is_empty() {
                            self.call_delta(out, index, args);
                        }
                    }
                }
                "response.completed" | "response.incomplete" => {
                    self.start(out);
                    let response = &v["response"];
                    let finish = finish_reason(response, !self.calls.is_empty());
                    self.chunk(out, json!({}), json!(finish));
                    if self.include_usage {
                        out.push_str(&openai::usage_chunk(
                            &self.id,
                            &self.model,
                            self.created,
                            usage_to_chat(&response["usage"]),
                        ));
                    }
                    sse::write_event(out, None, "[DONE]");
                    self.done = true;
                    return Ok(());
                }
                "response.failed" => {
                    return Err(v["response"]["error"]["message"]
                        .as_str()
                        .unwrap_or("the backend's response failed")
                        .to_string());
                }
                "error" => {
                    return Err(v["message"]
                        .as_str()
                        .or_else(|| v["error"]["message"].as_str())
                        .unwrap_or("the backend failed")
                        .to_string());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl crate::protocol::codec::ChunkTranslator for ChatStreamTranslator {
    fn feed(&mut self, data: &[u8]) -> Result<String, String> {
        ChatStreamTranslator::feed(self, data)
    }

    fn is_done(&self) -> bool {
        ChatStreamTranslator::is_done(self)
    }
}
