//! Usage on a backend's OpenAI-shaped answer: [`fix_usage`] drops the usage event the
//! router asked the backend for on the client's behalf, or adds the usage a backend left
//! out (counted by `crate::tokens`, the tier named in the answer). [`UsageScan`] reads the
//! usage any reply reports (OpenAI's or Anthropic's shape, streamed or not) for metrics.
//! Bytes pass through untouched unless a fix applies to the frame.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use serde::Deserialize;
use serde_json::json;

use super::body::{self, Response};
use crate::error::ProxyError;
use crate::tokens::TextTally;

/// A usage fix the proxy asks for on an OpenAI-shaped response.
#[derive(Clone)]
pub enum UsageFix {
    /// The router asked the backend for a streamed usage chunk the client did not ask for:
    /// drop it (the metrics still count it).
    Strip,
    /// The backend may leave usage out: count it when it does — the prompt from the
    /// request, the completion from the answer's text.
    Fill {
        /// The model the backend was sent (picks the tokenizer).
        model: Arc<str>,
        /// The request as sent.
        request: Bytes,
    },
}

/// Usage seen in a backend's stream before [`fix_usage`] dropped it, for the metrics.
#[derive(Clone, Default)]
pub struct StrippedUsage(Arc<OnceLock<(u64, u64)>>);

impl StrippedUsage {
    /// The (input, output) tokens of the dropped usage event, once seen.
    pub fn get(&self) -> Option<(u64, u64)> {
        self.0.get().copied()
    }
}

/// Applies the usage fix to a backend's OpenAI-shaped response (successful answers only):
/// a stream is wrapped; a whole reply (already in memory) is fixed at once, so it keeps
/// its exact length.
pub async fn fix_usage(resp: Response, fix: UsageFix) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let (mut parts, incoming) = resp.into_parts();
    let sse = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let model = match &fix {
        UsageFix::Fill { model, .. } => Some(model.clone()),
        UsageFix::Strip => None,
    };
    let stripped = StrippedUsage::default();
    let tier = model
        .as_deref()
        .map_or(crate::tokens::Tier::Estimate, crate::tokens::tier_for);
    if !sse {
        // A reply too long to hold is passed on as it is (its usage left as sent).
        let whole =
            match super::spill::read_unguarded(incoming, super::spill::WHOLE_REPLY_BUFFER).await {
                Ok(super::spill::Read::Whole(bytes)) => bytes,
                Ok(super::spill::Read::Spilled(rest)) => return Response::from_parts(parts, rest),
                Err(_) => return Response::from_parts(parts, body::empty()),
            };
        let mut fixer = UsageFixer {
            inner: body::empty(),
            fix,
            sse,
            usage: UsageScan::default(),
            stripped,
            text: TextTally::new(tier),
            id: None,
            model,
        };
        let fixed = fixer.fix(whole);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, body::full(fixed));
    }
    if matches!(fix, UsageFix::Strip) {
        parts.extensions.insert(stripped.clone());
    }
    let fixer = UsageFixer {
        inner: incoming,
        fix,
        sse,
        usage: UsageScan::default(),
        stripped,
        text: TextTally::new(tier),
        id: None,
        model,
    };
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, body::boxed(fixer))
}

struct UsageFixer {
    inner: body::Body,
    fix: UsageFix,
    sse: bool,
    usage: UsageScan,
    stripped: StrippedUsage,
    /// The answer's text so far, counted in pieces (when usage may have to be counted).
    text: TextTally,
    /// The chunks' `id` (for a usage chunk the router adds).
    id: Option<String>,
    model: Option<Arc<str>>,
}

impl UsageFixer {
    fn fix(&mut self, data: Bytes) -> Bytes {
        self.usage.feed(&data);
        match &self.fix {
            UsageFix::Strip if self.sse => {
                if let Some(t) = self.usage.totals() {
                    let _ = self.stripped.0.set(t);
                }
                strip_usage_events(data)
            }
            UsageFix::Strip => data,
            UsageFix::Fill { .. } if self.sse => self.fill_stream(data),
            UsageFix::Fill { .. } => self.fill_reply(data),
        }
    }

    /// Notes the text of each chunk; before `[DONE]`, adds a usage chunk if none came.
    fn fill_stream(&mut self, data: Bytes) -> Bytes {
        for json in crate::protocol::sse::data_fields(&data) {
            if let Ok(chunk) = serde_json::from_slice::<Chunk>(json.trim_ascii()) {
                if self.id.is_none() {
                    self.id = chunk.id.map(Cow::into_owned);
                }
                for c in chunk.choices {
                    if let Some(t) = c.delta.content {
                        self.text.push(&t);
                    }
                    for call in c.delta.tool_calls.into_iter().flatten() {
                        if let Some(f) = call.function {
                            self.text.push(f.name.as_deref().unwrap_or(""));
                            self.text.push(f.arguments.as_deref().unwrap_or(""));
                        }
                    }
                }
            }
        }
        let Some(done) = find(&data, b"data: [DONE]") else {
            return data;
        };
        if self.usage.totals().is_some() {
            return data;
        }
        let Some(usage) = self.counted_usage() else {
            return data;
        };
        let chunk = json!({"id": self.id.as_deref().unwrap_or("chatcmpl-continuum"),
            "object": "chat.completion.chunk", "created": 0, "model": self.model.as_deref(),
            "choices": [], "usage": usage.0, "continuum": {"usage": usage.1}});
        let event = crate::protocol::sse::encode(None, chunk.to_string().as_bytes());
        let mut out = BytesMut::with_capacity(data.len() + event.len());
        out.extend_from_slice(&data[..done]);
        out.extend_from_slice(&event);
        out.extend_from_slice(&data[done..]);
        out.freeze()
    }

    /// Adds `usage` to a whole (non-streamed) reply that has none.
    fn fill_reply(&mut self, data: Bytes) -> Bytes {
        if self.usage.totals().is_some() {
            return data;
        }
        let Ok(serde_json::Value::Object(mut reply)) = serde_json::from_slice(&data) else {
            return data;
        };
        for c in reply
            .get("choices")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            let m = &c["message"];
            self.text.push(m["content"].as_str().unwrap_or(""));
            for call in m["tool_calls"].as_array().into_iter().flatten() {
                self.text
                    .push(call["function"]["name"].as_str().unwrap_or(""));
                self.text
                    .push(call["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        let Some((usage, tier)) = self.counted_usage() else {
            return data;
        };
        reply.insert("usage".into(), usage);
        reply.insert("continuum".into(), json!({"usage": tier}));
        serde_json::to_vec(&reply).map(Bytes::from).unwrap_or(data)
    }

    /// Usage counted by the router, and the tier that counted it.
    fn counted_usage(&self) -> Option<(serde_json::Value, String)> {
        let UsageFix::Fill { model, request } = &self.fix else {
            return None;
        };
        let request: serde_json::Value = serde_json::from_slice(request).ok()?;
        let (prompt, tier) = crate::tokens::count_chat(model, &request);
        let completion = self.text.total();
        Some((
            json!({"prompt_tokens": prompt, "completion_tokens": completion,
                   "total_tokens": prompt + completion}),
            tier.describe(),
        ))
    }
}

impl Body for UsageFixer {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_data() {
                Ok(data) => Frame::data(this.fix(data)),
                Err(frame) => frame,
            }))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Drops usage-only events (`"choices":[]` with a usage object) from whole SSE events.
fn strip_usage_events(data: Bytes) -> Bytes {
    if find(&data, b"\"choices\":[]").is_none() {
        return data;
    }
    let mut out = BytesMut::with_capacity(data.len());
    for event in crate::protocol::sse::raw_events(&data) {
        let usage_only =
            find(event, b"\"choices\":[]").is_some() && find(event, b"\"usage\":{").is_some();
        if !usage_only {
            out.extend_from_slice(event);
        }
    }
    out.freeze()
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<ChunkChoice<'a>>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(borrow, default)]
    delta: Delta<'a>,
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(borrow, default)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<UsageFields>,
    /// Anthropic's `message_start` carries usage inside `message`.
    message: Option<Box<WithUsage>>,
}

/// The token usage a response reports, in OpenAI's or Anthropic's shape, streamed or not.
/// Streams report usage cumulatively (Anthropic's `message_start` then `message_delta`,
/// OpenAI's last chunk), so the largest value seen wins.
#[derive(Default)]
pub struct UsageScan {
    input: Option<u64>,
    output: Option<u64>,
}

impl UsageScan {
    /// Reads the usage in `data` (a whole reply, or whole SSE events).
    pub fn feed(&mut self, data: &[u8]) {
        if find(data, b"\"usage\"").is_none() {
            return;
        }
        let trimmed = data.trim_ascii_start();
        if trimmed.starts_with(b"{") {
            self.read(trimmed);
            return;
        }
        for json in crate::protocol::sse::data_fields(data) {
            if find(json, b"\"usage\"").is_some() {
                self.read(json.trim_ascii());
            }
        }
    }

    fn read(&mut self, json: &[u8]) {
        let Ok(v) = serde_json::from_slice::<WithUsage>(json) else {
            return;
        };
        let Some(u) = v.usage.or_else(|| v.message.and_then(|m| m.usage)) else {
            return;
        };
        let input = u.prompt_tokens.or_else(|| {
            u.input_tokens.map(|i| {
                i + u.cache_read_input_tokens.unwrap_or(0)
                    + u.cache_creation_input_tokens.unwrap_or(0)
            })
        });
        let output = u.completion_tokens.or(u.output_tokens);
        if let Some(i) = input {
            self.input = Some(self.input.map_or(i, |x| x.max(i)));
        }
        if let Some(o) = output {
            self.output = Some(self.output.map_or(o, |x| x.max(o)));
        }
    }

    /// (input, output) tokens reported, if any.
    pub fn totals(&self) -> Option<(u64, u64)> {
        (self.input.is_some() || self.output.is_some())
            .then(|| (self.input.unwrap_or(0), self.output.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_every_shape() {
        let mut u = UsageScan::default();
        u.feed(br#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3}}"#);
        assert_eq!(u.totals(), Some((10, 3)));

        let mut u = UsageScan::default();
        u.feed(b"data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n");
        assert_eq!(u.totals(), Some((7, 2)));

        let mut u = UsageScan::default();
        u.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n");
        u.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n");
        assert_eq!(u.totals(), Some((105, 42)));

        let mut u = UsageScan::default();
        u.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n");
        assert_eq!(u.totals(), None);
    }

    #[test]
    fn usage_only_events_are_stripped_and_nothing_else() {
        let data = Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n");
        assert_eq!(
            &strip_usage_events(data)[..],
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: [DONE]\n\n"
        );
    }
}
