//! The streaming direction: an OpenAI chat completion stream as Anthropic's event stream.

use serde_json::{json, Value};

use super::reply::{stop_reason, Usage};
use crate::protocol::sse;

fn event(name: &str, data: &Value) -> String {
    let mut out = String::new();
    sse::write_event(&mut out, Some(name), &data.to_string());
    out
}

/// Turns an OpenAI chat completion stream (SSE bytes) into Anthropic's event stream.
#[derive(Debug)]
pub struct StreamTranslator {
    model: String,
    sse: sse::SseDecoder,
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
            sse: sse::SseDecoder::new(sse::DEFAULT_MAX_EVENT),
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
