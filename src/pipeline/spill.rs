//! Whole (non-streamed) replies that pass through unchanged: read into memory up to
//! [`WHOLE_REPLY_BUFFER`], so a reply that fails or stalls before its end is still a clean
//! error (retried, or a 502/504 in the client's shape); a larger one is sent on as it
//! arrives, so a reply of any size costs the router bounded memory.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{timeout_at, Instant, Sleep};

use super::body::{self, Body};
use crate::error::ProxyError;
use crate::resilience::InFlight;

/// How much of a passed-through whole reply is held before it is streamed on.
pub const WHOLE_REPLY_BUFFER: usize = 1 << 20;

/// A whole reply as read: all of it, or its head and the rest still to come.
pub enum Read {
    /// The reply ended within the buffer.
    Whole(Bytes),
    /// Longer than the buffer: a body sending what was read, then the rest as it arrives.
    Spilled(Body),
}

/// What a spilled body needs to end on time and to say who failed.
pub struct Hold {
    /// The backend's name, for errors.
    pub backend: String,
    /// When the whole reply must have arrived.
    pub deadline: Instant,
    /// The total time allowed, for the timeout's message.
    pub total: Duration,
}

/// Reads `incoming` until it ends (→ [`Read::Whole`]) or passes `buffer` bytes
/// (→ [`Read::Spilled`]), within the deadline. The backend's request counts as in flight
/// (`in_flight`) until the reply's end.
pub async fn read(
    incoming: Body,
    buffer: usize,
    hold: Hold,
    in_flight: InFlight,
) -> Result<Read, ProxyError> {
    let deadline = hold.deadline;
    let head = match timeout_at(deadline, read_head(incoming, buffer)).await {
        Err(_) => return Err(timeout(&hold)),
        Ok(Err(e)) => {
            return Err(ProxyError::BadUpstream {
                backend: hold.backend,
                reason: format!("reading the response failed: {e}"),
            })
        }
        Ok(Ok(head)) => head,
    };
    Ok(match head {
        Head::Whole(bytes) => Read::Whole(bytes),
        Head::Part(head, rest) => Read::Spilled(body::boxed(Spilled {
            head: Some(head),
            rest,
            guard: Some((Box::pin(tokio::time::sleep_until(deadline)), hold)),
            _in_flight: Some(in_flight),
            done: false,
        })),
    })
}

/// Reads a body already held to its deadlines (a reply the pipeline goes on with) until it
/// ends or passes `buffer` bytes.
pub async fn read_unguarded(incoming: Body, buffer: usize) -> Result<Read, ProxyError> {
    Ok(match read_head(incoming, buffer).await? {
        Head::Whole(bytes) => Read::Whole(bytes),
        Head::Part(head, rest) => Read::Spilled(body::boxed(Spilled {
            head: Some(head),
            rest,
            guard: None,
            _in_flight: None,
            done: false,
        })),
    })
}

/// A body's first bytes, and the rest of it when it goes on past them.
enum Head {
    Whole(Bytes),
    Part(Bytes, Body),
}

async fn read_head(mut incoming: Body, buffer: usize) -> Result<Head, ProxyError> {
    let mut head = BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        head.extend_from_slice(&data);
        if head.len() > buffer {
            return Ok(Head::Part(head.freeze(), incoming));
        }
    }
    Ok(Head::Whole(head.freeze()))
}

fn timeout(hold: &Hold) -> ProxyError {
    ProxyError::Timeout {
        backend: hold.backend.clone(),
        what: "complete response",
        after: hold.total,
    }
}

/// The head already read, then the rest of the backend's body, held to the deadline.
struct Spilled {
    head: Option<Bytes>,
    rest: Body,
    /// The deadline and who to blame (a reply read straight from a backend).
    guard: Option<(Pin<Box<Sleep>>, Hold)>,
    _in_flight: Option<InFlight>,
    done: bool,
}

impl http_body::Body for Spilled {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(head) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        match Pin::new(&mut this.rest).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                // Headers are sent: the client sees the connection cut before the end.
                tracing::warn!("a long reply broke off: {e}");
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Pending => {
                let Some((deadline, hold)) = &mut this.guard else {
                    return Poll::Pending;
                };
                if deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.done = true;
                let e = timeout(hold);
                tracing::warn!("a long reply broke off: {e}");
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.head.is_none() && self.rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let n = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + n);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + n);
        }
        hint
    }
}
