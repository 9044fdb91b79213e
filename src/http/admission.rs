//! Admission control: at most `server.max_concurrent_requests` API requests are served at
//! once (a request holds its slot until its response body ends, streams included); as many
//! more may wait up to `server.queue_timeout`; the rest get 503 with `Retry-After` at once.
//! So memory stays bounded when a backend stalls or clients flood. Every API request is
//! also counted while in flight (see [`Requests`]), whether admission control is on or not.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;

/// The slots and the queue.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    timeout: Duration,
}

impl Admission {
    /// Admission for `max` concurrent requests (`None` when `max` is 0: no limit).
    pub fn new(max: usize, timeout: Duration) -> Option<Admission> {
        (max > 0).then(|| Admission {
            slots: Arc::new(Semaphore::new(max)),
            waiting: AtomicUsize::new(0),
            max_waiting: max,
            timeout,
        })
    }

    /// A slot, at once or after waiting in the queue.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, ProxyError> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(ProxyError::Overloaded(
                "the router is at server.max_concurrent_requests and its queue is full",
            ));
        }
        let waited = tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ProxyError::Overloaded(
                "no request slot freed up within server.queue_timeout",
            )),
        }
    }
}

/// The API requests being served now (a stream until its body ends): what the drain log
/// and a forced exit report.
#[derive(Debug, Default)]
pub struct Requests(AtomicUsize);

impl Requests {
    /// How many are in flight.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one request until the ticket is dropped.
    pub fn start(self: &Arc<Self>) -> Ticket {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ticket(Arc::clone(self))
    }
}

/// One request counted in [`Requests`] while alive.
#[derive(Debug)]
pub struct Ticket(Arc<Requests>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keeps the request counted (and its admission slot, if any) until the response body
/// ends or is dropped.
pub fn hold(resp: Response, permit: Option<OwnedSemaphorePermit>, ticket: Ticket) -> Response {
    let (parts, body) = resp.into_parts();
    Response::from_parts(
        parts,
        Body::new(Held {
            inner: body,
            _permit: permit,
            _ticket: ticket,
        }),
    )
}

struct Held {
    inner: Body,
    _permit: Option<OwnedSemaphorePermit>,
    _ticket: Ticket,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
