//! The last layer of a response, in the client's format: it records the request's metrics
//! when the body ends (time to first byte, duration, the usage reported). Bytes pass
//! through untouched.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::access_log::TokensSlot;
use crate::metrics::{RequestTimer, Served};
use crate::pipeline::usage::{StrippedUsage, UsageScan};

/// Wraps a pipeline response so its metrics are recorded when its body ends, and the
/// tokens it reported are left for the access log; unchanged when metrics are off
/// (`timer` is `None`) and the access log too.
pub fn tap(resp: Response, timer: Option<RequestTimer>, access_log: bool) -> Response {
    if timer.is_none() && !access_log {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let slot = access_log.then(TokensSlot::default);
    if let Some(slot) = &slot {
        parts.extensions.insert(slot.clone());
    }
    let tapped = Tap {
        inner: body,
        timer,
        slot,
        status: parts.status.as_u16(),
        served: parts.extensions.get::<Served>().cloned(),
        stripped: parts.extensions.get::<StrippedUsage>().cloned(),
        ttft: None,
        usage: UsageScan::default(),
    };
    Response::from_parts(parts, AxumBody::new(tapped))
}

struct Tap {
    inner: AxumBody,
    timer: Option<RequestTimer>,
    slot: Option<TokensSlot>,
    status: u16,
    served: Option<Served>,
    stripped: Option<StrippedUsage>,
    ttft: Option<Duration>,
    usage: UsageScan,
}

impl Tap {
    fn record(&mut self) {
        let (timer, slot) = (self.timer.take(), self.slot.take());
        if timer.is_none() && slot.is_none() {
            return;
        }
        let tokens = self
            .usage
            .totals()
            .or_else(|| self.stripped.as_ref().and_then(StrippedUsage::get));
        if let (Some(slot), Some(tokens)) = (slot, tokens) {
            let _ = slot.0.set(tokens);
        }
        if let Some(timer) = timer {
            timer.record(self.status, self.served.as_ref(), self.ttft, tokens);
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.record();
    }
}

impl Body for Tap {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.ttft.is_none() {
                        this.ttft = this.timer.as_ref().map(RequestTimer::elapsed);
                    }
                    this.usage.feed(data);
                }
                // A whole body is not polled again after its last frame.
                if this.inner.is_end_stream() {
                    this.record();
                }
            }
            Poll::Ready(_) => this.record(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
