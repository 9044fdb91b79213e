//! A chat completion stream into the Responses event stream.

use serde_json::{json, Value};

use super::reply::reasoning_of;
use super::{
    failure, function_call_item, message_item, reasoning_item, refusal_part, summary_part,
    text_part, usage_from_chat, End, ResponseCtx,
};
use crate::protocol::object;
use crate::protocol::sse::{self, SseDecoder};

/// One content part of a streamed message: output text or a refusal.
#[derive(Debug)]
struct Part {
    refusal: bool,
    text: String,
}

impl Part {
    fn json(&self) -> Value {
        if self.refusal {
            refusal_part(&self.text)
        } else {
            text_part(&self.text)
        }
    }
}

/// An output item being streamed.
#[derive(Debug)]
enum Item {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        parts: Vec<Part>,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// The chat tool call `index` it streams under.
        chat_index: u64,
    },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. } => id,
        }
    }

    /// The item as `output` lists it, with `status` (reasoning items carry none).
    fn json(&self, status: &str) -> Value {
        match self {
            // Its summary part is added by an event of its own.
            Item::Reasoning { id, .. } if status == "in_progress" => reasoning_item(id, Vec::new()),
            Item::Reasoning { id, text } => reasoning_item(id, vec![summary_part(text)]),
            Item::Message { id, parts } => {
                message_item(id, status, parts.iter().map(Part::json).collect())
            }
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => function_call_item(id, status, call_id, name, arguments),
        }
    }
}

/// Turns an OpenAI chat completion stream (SSE bytes) into the Responses event stream:
/// `response.created`, `response.in_progress`, the events of each output item, and
/// `response.completed`, `response.incomplete` or `response.failed` with the whole
/// Response object. Every event carries `sequence_number`, from 0.
#[derive(Debug)]
pub struct StreamTranslator {
    ctx: ResponseCtx,
    sse: SseDecoder,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The status each done item ended with: items stream one after the other, so only
    /// the last item can still be open.
    statuses: Vec<&'static str>,
    finish: Option<String>,
    usage: Value,
    /// The terminal Response object, once sent.
    response: Option<Value>,
}

impl StreamTranslator {
    /// A translator for the response `ctx` describes.
    pub fn new(ctx: ResponseCtx) -> StreamTranslator {
        StreamTranslator {
            ctx,
            sse: SseDecoder::new(sse::DEFAULT_MAX_EVENT),
            seq: 0,
            started: false,
            items: Vec::new(),
            statuses: Vec::new(),
            finish: None,
            usage: Value::Null,
            response: None,
        }
    }

    /// Whether the terminal event (`response.completed`, `.incomplete` or `.failed`) was
    /// sent.
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }

    /// The final Response object (as the terminal event carried it), once the stream has
    /// ended: for the caller to store.
    pub fn response(&self) -> Option<&Value> {
        self.response.as_ref()
    }

    /// Writes one event: `event: TYPE` and its data with `type` and `sequence_number`.
    fn emit(&mut self, out: &mut String, kind: &str, mut data: Value) {
        data["type"] = kind.into();
        data["sequence_number"] = self.seq.into();
        self.seq += 1;
        sse::write_event(out, Some(kind), &data.to_string());
    }

    fn start(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        for kind in ["response.created", "response.in_progress"] {
            let response = self
                .ctx
                .response("in_progress", Vec::new(), Value::Null, End::Open);
            self.emit(out, kind, object([("response", response)]));
        }
    }

    /// The `item_id` / `output_index` fields of an event about item `index`.
    fn about(&self, index: usize) -> Value {
        json!({"item_id": self.items[index].id(), "output_index": index})
    }

    fn open(&mut self, out: &mut String, item: Item) -> usize {
        let index = self.items.len();
        let added = item.json("in_progress");
        self.items.push(item);
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
        );
        match &self.items[index] {
            Item::Reasoning { .. } => {
                let mut e = self.about(index);
                e["summary_index"] = 0.into();
                e["part"] = summary_part("");
                self.emit(out, "response.reasoning_summary_part.added", e);
            }
            Item::Message { .. } | Item::Call { .. } => {}
        }
        index
    }

    /// Adds an empty content part to message `index`.
    fn open_part(&mut self, out: &mut String, index: usize, refusal: bool) {
        let Item::Message { parts, .. } = &mut self.items[index] else {
            return;
        };
        let part = Part {
            refusal,
            text: String::new(),
        };
        let mut e = json!({"content_index": parts.len(), "part": part.json()});
        parts.push(part);
        e["item_id"] = self.items[index].id().into();
        e["output_index"] = index.into();
        self.emit(out, "response.content_part.added", e);
    }

    /// Closes the last content part of message `index`.
    fn close_part(&mut self, out: &mut String, index: usize) {
        let Item::Message { parts, .. } = &self.items[index] else {
            return;
        };
        let Some(part) = parts.last() else {
            return;
        };
        let content_index = parts.len() - 1;
        let (kind, field) = if part.refusal {
            ("response.refusal.done", "refusal")
        } else {
            ("response.output_text.done", "text")
        };
        let mut done = self.about(index);
        done["content_index"] = content_index.into();
        done[field] = part.text.as_str().into();
        if !part.refusal {
            done["logprobs"] = json!([]);
        }
        let mut part_done = self.about(index);
        part_done["content_index"] = content_index.into();
        part_done["part"] = part.json();
        self.emit(out, kind, done);
        self.emit(out, "response.content_part.done", part_done);
    }

    /// Sends the done events of the open item, if any; it ends with `status`.
    fn close_open(&mut self, out: &mut String, status: &'static str) {
        let Some(index) = self.open_item() else {
            return;
        };
        match &self.items[index] {
            Item::Reasoning { text, .. } => {
                let mut done = self.about(index);
                done["summary_index"] = 0.into();
                done["text"] = text.as_str().into();
                let mut part_done = self.about(index);
                part_done["summary_index"] = 0.into();
                part_done["part"] = summary_part(text);
                self.emit(out, "response.reasoning_summary_text.done", done);
                self.emit(out, "response.reasoning_summary_part.done", part_done);
            }
            Item::Message { .. } => self.close_part(out, index),
            Item::Call {
                name, arguments, ..
            } => {
                let mut done = self.about(index);
                done["name"] = name.as_str().into();
                done["arguments"] = arguments.as_str().into();
                self.emit(out, "response.function_call_arguments.done", done);
            }
        }
        let item = self.items[index].json(status);
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.statuses.push(status);
    }

    /// Closes the open item (the stream finished with `finish`).
    fn close_all(&mut self, out: &mut String) {
        let end = End::from_finish(self.finish.as_deref());
        self.close_open(out, end.last_item_status());
    }

    /// The open item: items stream one after the other, so it is the last one, if any.
    fn open_item(&self) -> Option<usize> {
        let last = self.items.len().checked_sub(1)?;
        (last >= self.statuses.len()).then_some(last)
    }

    fn reasoning(&mut self, out: &mut String, delta: &str) {
        let index = match self.open_item() {
            Some(i) if matches!(self.items[i], Item::Reasoning { .. }) => i,
            _ => {
                self.close_open(out, "completed");
                let id = self.ctx.item_id("rs", self.items.len());
                self.open(
                    out,
                    Item::Reasoning {
                        id,
                        text: String::new(),
                    },
                )
            }
        };
        if let Item::Reasoning { text, .. } = &mut self.items[index] {
            text.push_str(delta);
        }
        let mut e = self.about(index);
        e["summary_index"] = 0.into();
        e["delta"] = delta.into();
        self.emit(out, "response.reasoning_summary_text.delta", e);
    }

    fn text(&mut self, out: &mut String, delta: &str, refusal: bool) {
        let index = match self.open_item() {
            Some(i) if matches!(self.items[i], Item::Message { .. }) => i,
            _ => {
                self.close_open(out, "completed");
                let id = self.ctx.item_id("msg", self.items.len());
                self.open(
                    out,
                    Item::Message {
                        id,
                        parts: Vec::new(),
                    },
                )
            }
        };
        let Item::Message { parts, .. } = &self.items[index] else {
            return;
        };
        match parts.last() {
            Some(p) if p.refusal == refusal => {}
            Some(_) => {
                self.close_part(out, index);
                self.open_part(out, index, refusal);
            }
            None => self.open_part(out, index, refusal),
        }
        let Item::Message { parts, .. } = &mut self.items[index] else {
            return;
        };
        let content_index = parts.len() - 1;
        if let Some(p) = parts.last_mut() {
            p.text.push_str(delta);
        }
        let mut e = self.about(index);
        e["content_index"] = content_index.into();
        e["delta"] = delta.into();
        if refusal {
            self.emit(out, "response.refusal.delta", e);
        } else {
            e["logprobs"] = json!([]);
            self.emit(out, "response.output_text.delta", e);
        }
    }

    /// A tool call fragment. Calls stream one after the other, as output items do: a new
    /// call closes the item before it. A late fragment of a call already done (chat
    /// servers do not send them) is kept in the final response only.
    fn tool_call(&mut self, out: &mut String, c: &Value) {
        let chat_index = c["index"].as_u64().unwrap_or(0);
        let delta = c["function"]["arguments"].as_str().unwrap_or_default();
        let known = self.items.iter().rposition(
            |item| matches!(item, Item::Call { chat_index: ci, .. } if *ci == chat_index),
        );
        let index = match known {
            Some(i) => i,
            None => {
                self.close_open(out, "completed");
                let index = self.items.len();
                let call_id = match c["id"].as_str().filter(|i| !i.is_empty()) {
                    Some(i) => i.to_string(),
                    None => self.ctx.item_id("call", index),
                };
                let item = Item::Call {
                    id: self.ctx.item_id("fc", index),
                    call_id,
                    name: c["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    arguments: String::new(),
                    chat_index,
                };
                self.open(out, item)
            }
        };
        if delta.is_empty() {
            return;
        }
        if let Item::Call { arguments, .. } = &mut self.items[index] {
            arguments.push_str(delta);
        }
        if index < self.statuses.len() {
            return;
        }
        let mut e = self.about(index);
        e["delta"] = delta.into();
        self.emit(out, "response.function_call_arguments.delta", e);
    }

    /// The output so far, as the Response lists it: items still open (a failed stream)
    /// are `incomplete`.
    fn output(&self) -> Vec<Value> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, item)| item.json(self.statuses.get(i).copied().unwrap_or("incomplete")))
            .collect()
    }

    /// Sends the terminal event: `response.completed` / `.incomplete` / `.failed`.
    fn end(&mut self, out: &mut String, end: End) {
        if self.response.is_some() {
            return;
        }
        self.start(out);
        let kind = match end {
            End::Incomplete(_) => "response.incomplete",
            End::Failed { .. } => "response.failed",
            _ => "response.completed",
        };
        let output = self.output();
        let response = self
            .ctx
            .response(end.status(), output, self.usage.clone(), end);
        self.emit(out, kind, object([("response", response.clone())]));
        self.response = Some(response);
    }

    fn fail(&mut self, out: &mut String, error: &Value) {
        self.end(out, failure(error));
    }

    /// Feeds chat SSE bytes; returns the Responses events they complete.
    pub fn feed(&mut self, data: &[u8]) -> String {
        let mut out = String::new();
        if self.response.is_some() {
            return out;
        }
        self.start(&mut out);
        if let Err(e) = self.sse.push(data) {
            self.fail(&mut out, &Value::from(e.to_string()));
            return out;
        }
        while let Some(event) = self.sse.next_event() {
            self.event(&mut out, &event.data);
            if self.response.is_some() {
                break;
            }
        }
        out
    }

    /// At the end of the backend's stream: a stream that ended without `[DONE]` fails
    /// (`response.failed`); returns the events still to send.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if self.response.is_some() {
            return out;
        }
        if let Some(event) = self.sse.finish() {
            self.event(&mut out, &event.data);
        }
        self.fail(
            &mut out,
            &Value::from("the backend's stream ended before it was complete"),
        );
        out
    }

    /// Ends the stream with `response.failed` for a backend failure the caller saw
    /// (`message` becomes the response's `error.message`, code `server_error`).
    pub fn finish_error(&mut self, message: &str) -> String {
        let mut out = String::new();
        self.fail(&mut out, &Value::from(message));
        out
    }

    /// Handles one chat SSE event's data.
    fn event(&mut self, out: &mut String, data: &[u8]) {
        let payload = data.trim_ascii();
        if payload == b"[DONE]" {
            self.close_all(out);
            let end = End::from_finish(self.finish.as_deref());
            self.end(out, end);
            return;
        }
        let chunk: Value = match serde_json::from_slice(payload) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("unreadable stream event from the backend: {e}");
                self.fail(out, &Value::from(message));
                return;
            }
        };
        if let Some(error) = chunk.get("error") {
            self.fail(out, error);
            return;
        }
        if chunk["usage"].is_object() {
            self.usage = usage_from_chat(&chunk["usage"]);
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if let Some(r) = reasoning_of(delta) {
            self.reasoning(out, r);
        }
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text(out, t, false);
        }
        if let Some(r) = delta["refusal"].as_str().filter(|r| !r.is_empty()) {
            self.text(out, r, true);
        }
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_call(out, c);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_string());
            self.close_all(out);
        }
    }
}
