//! `fallback.mid_stream: continue`: when a streamed answer breaks after its first byte,
//! the client's stream goes on with the next fallback model instead of ending. The text
//! produced so far is sent to that model as an assistant message (a prefill to continue),
//! and the stream ends with an event saying where it was continued and why.
//!
//! The stream below is a `GuardedStream` in continue mode: it yields its failure as an
//! error, which this wrapper turns into a continuation (or, with no model left, into the
//! usual error event).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderValue;
use http_body::Frame;
use serde_json::{json, Value};

use super::body::{self, Body, Response};
use super::serve_continuation;
use super::Core;
use crate::error::ProxyError;
use crate::protocol::errors::openai_stream_error_event;

type Pending = Pin<Box<dyn Future<Output = Result<Response, ProxyError>> + Send>>;

/// Wraps a successful streamed response so a later break continues on `rest`.
pub fn wrap(
    resp: Response,
    state: &Core,
    body: &Bytes,
    model: &str,
    rest: &[String],
    id: &HeaderValue,
) -> Response {
    let (parts, inner) = resp.into_parts();
    let stream = ContinuingStream {
        inner,
        state: state.clone(),
        body: body.clone(),
        id: id.clone(),
        model: model.to_string(),
        rest: rest.iter().cloned().collect(),
        produced: String::new(),
        reconnect: None,
        marker: None,
        reason: None,
        tool_calls_sent: false,
        done: false,
    };
    Response::from_parts(parts, body::boxed(stream))
}

struct ContinuingStream {
    inner: Body,
    state: Core,
    body: Bytes,
    id: HeaderValue,
    model: String,
    rest: VecDeque<String>,
    produced: String,
    reconnect: Option<(String, Pending)>,
    marker: Option<Bytes>,
    reason: Option<String>,
    tool_calls_sent: bool,
    done: bool,
}

impl ContinuingStream {
    /// Collects the assistant text of the frame's events (the stream below passes whole
    /// events only).
    fn track(&mut self, data: &[u8]) {
        for json in crate::protocol::sse::data_fields(data) {
            if let Ok(v) = serde_json::from_slice::<Value>(json.trim_ascii()) {
                let delta = &v["choices"][0]["delta"];
                if let Some(t) = delta["content"].as_str() {
                    self.produced.push_str(t);
                }
                if delta.get("tool_calls").is_some() {
                    self.tool_calls_sent = true;
                }
            }
        }
    }

    /// The original request with `model` and the produced text as an assistant prefill.
    fn continued_body(&self, model: &str) -> Result<Bytes, ProxyError> {
        let mut v: Value = serde_json::from_slice(&self.body)
            .map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
        v["model"] = Value::String(model.to_string());
        if let Some(messages) = v.get_mut("messages").and_then(Value::as_array_mut) {
            if !self.produced.is_empty() {
                messages.push(json!({"role": "assistant", "content": self.produced}));
            }
        }
        serde_json::to_vec(&v)
            .map(Bytes::from)
            .map_err(|e| ProxyError::InvalidJson(e.to_string()))
    }

    /// Starts the request to the next model, if one is left.
    fn start_next(&mut self, err: &ProxyError) -> bool {
        // A half-sent tool call cannot be continued by another model: the client would
        // merge two different calls. The stream ends with the error instead.
        if self.tool_calls_sent {
            return false;
        }
        // Nothing new starts once the shutdown grace time is over.
        if matches!(err, ProxyError::ShuttingDown) {
            return false;
        }
        let Some(next) = self.rest.pop_front() else {
            return false;
        };
        let body = match self.continued_body(&next) {
            Ok(b) => b,
            Err(_) => return false,
        };
        tracing::warn!(request_id = self.id.to_str().unwrap_or(""), from = %self.model, to = %next, error = %err, "stream broke; continuing on the next fallback model");
        self.reason.get_or_insert_with(|| err.to_string());
        let continues = !self.rest.is_empty();
        let fut = serve_continuation(
            self.state.clone(),
            body,
            next.clone(),
            self.id.clone(),
            continues,
        );
        self.reconnect = Some((next, Box::pin(fut)));
        true
    }

    fn marker_event(&self, to: &str) -> Bytes {
        let event = json!({
            "id": "continuum-continuation", "object": "chat.completion.chunk", "created": 0, "model": to,
            "choices": [],
            "continuum": {"continued": true, "from_model": self.model, "to_model": to,
                          "reason": self.reason, "prefill_chars": self.produced.chars().count()},
        });
        crate::protocol::sse::encode(None, event.to_string().as_bytes())
    }

    fn give_up(&mut self, err: &ProxyError) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        self.done = true;
        Poll::Ready(Some(Ok(Frame::data(openai_stream_error_event(err)))))
    }
}

const DONE: &[u8] = b"data: [DONE]";

impl http_body::Body for ContinuingStream {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some((to, fut)) = &mut this.reconnect {
                let outcome = match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(o) => o,
                };
                let to = to.clone();
                this.reconnect = None;
                match outcome {
                    Ok(resp) if resp.status().is_success() => {
                        this.marker = Some(this.marker_event(&to));
                        this.inner = resp.into_body();
                        this.model = to;
                        continue;
                    }
                    Ok(resp) => {
                        let err = ProxyError::BadUpstream {
                            backend: to.clone(),
                            reason: format!("continuation answered {}", resp.status()),
                        };
                        if !this.start_next(&err) {
                            return this.give_up(&err);
                        }
                        continue;
                    }
                    Err(err) => {
                        if !this.start_next(&err) {
                            return this.give_up(&err);
                        }
                        continue;
                    }
                }
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Some(data) = frame.data_ref() else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    let data = data.clone();
                    this.track(&data);
                    // The continuation marker goes right before the final [DONE].
                    if let Some(marker) = this.marker.take() {
                        if let Some(at) = data.windows(DONE.len()).position(|w| w == DONE) {
                            let mut out = Vec::with_capacity(data.len() + marker.len());
                            out.extend_from_slice(&data[..at]);
                            out.extend_from_slice(&marker);
                            out.extend_from_slice(&data[at..]);
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                        this.marker = Some(marker);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(err))) => {
                    if !this.start_next(&err) {
                        return this.give_up(&err);
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(this.marker.take().map(|m| Ok(Frame::data(m))));
                }
            }
        }
    }
}
