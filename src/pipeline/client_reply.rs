//! The reply in the client's own wire: a backend that answered in another (the pivot) has
//! its reply, stream and errors translated back — today OpenAI chat for Anthropic Messages
//! clients. A reply already in the client's wire passes untouched.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue};
use http_body::Frame;

use super::body::{self, Body, Response};
use super::op::Wire;
use super::prepare::Replied;
use super::Call;
use crate::error::ProxyError;
use crate::protocol::anthropic_client::{self as anthropic, StreamTranslator};
use crate::protocol::codec;
use crate::protocol::errors::ProviderError;

/// Turns a pipeline response into the client's wire.
pub async fn to_client(
    core: &super::Core,
    resp: Response,
    call: &Call,
) -> Result<Response, ProxyError> {
    let from = resp
        .extensions()
        .get::<Replied>()
        .map_or(codec::pivot(call.op), |r| r.0);
    match (from, call.client) {
        (Wire::OpenAiResponses, Wire::OpenAiResponses) => {
            super::responses::finish(core, call, resp, false).await
        }
        (Wire::OpenAiChat, Wire::OpenAiResponses) => {
            super::responses::finish(core, call, resp, true).await
        }
        (from, client) if from == client => Ok(resp),
        (Wire::OpenAiChat, Wire::AnthropicMessages) => to_anthropic(resp, call).await,
        (from, client) => whole(resp, from, client, call).await,
    }
}

/// A whole reply translated by `codec::client_reply`.
async fn whole(
    resp: Response,
    from: Wire,
    client: Wire,
    call: &Call,
) -> Result<Response, ProxyError> {
    let (mut parts, rbody) = resp.into_parts();
    let bytes = body::read_whole(rbody, call.model()).await?;
    let Some(translated) = codec::client_reply(from, client, parts.status, &bytes, call.model())
    else {
        return Err(ProxyError::BadUpstream {
            backend: "router".into(),
            reason: format!("no translation of {from:?} replies for {client:?} clients"),
        });
    };
    let (status, out) = translated.map_err(|reason| ProxyError::BadUpstream {
        backend: call.model().to_string(),
        reason,
    })?;
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Response::from_parts(parts, body::full(out)))
}

/// An OpenAI chat reply (or stream, or error) told in Anthropic's form.
async fn to_anthropic(resp: Response, call: &Call) -> Result<Response, ProxyError> {
    let (model, stream) = (call.model().to_string(), call.stream());
    let (mut rparts, rbody) = resp.into_parts();
    rparts.headers.remove(header::CONTENT_LENGTH);
    if rparts.status.is_success() && stream {
        rparts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let body = AnthropicSse {
            inner: rbody,
            translator: StreamTranslator::new(&model),
            done: false,
        };
        return Ok(Response::from_parts(rparts, body::boxed(body)));
    }
    let bytes = body::read_whole(rbody, &model).await?;
    rparts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let out = if rparts.status.is_success() {
        anthropic::from_openai_response(&bytes, &model).map_err(|reason| {
            ProxyError::BadUpstream {
                backend: model.clone(),
                reason,
            }
        })?
    } else {
        let e = ProviderError::from_openai(rparts.status, &bytes);
        rparts.status = e.anthropic_status(rparts.status);
        e.anthropic_body()
    };
    Ok(Response::from_parts(rparts, body::full(out)))
}

/// An OpenAI chunk stream re-told as Anthropic events. A stream that ends without its
/// `[DONE]` (broken after its first byte) ends with an `error` event, never `message_stop`.
struct AnthropicSse {
    inner: Body,
    translator: StreamTranslator,
    done: bool,
}

impl http_body::Body for AnthropicSse {
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
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    let out = this.translator.feed(data);
                    if this.translator.finished() {
                        this.done = true;
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    let event = StreamTranslator::error_event(&e.to_string());
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if this.translator.finished() {
                        return Poll::Ready(None);
                    }
                    let event = StreamTranslator::error_event(
                        "the backend's stream ended before it was complete",
                    );
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
            }
        }
    }
}
