//! The bridge from a hyper connection to the axum app: each request gets its peer (the TCP
//! address rate limits and access rules read, or the Unix-socket mark the admin guard
//! reads), a body that fails after `server.body_read_timeout` of silence, and marks its
//! connection busy until its response body is done.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::phase::ConnState;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Peer {
    /// A TCP client at this address.
    Tcp(SocketAddr),
    /// A client of a Unix socket (who may connect is the socket file's mode).
    Unix,
}

/// A request body whose next bytes did not come within `server.body_read_timeout`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no request body bytes came for {0:?} (server.body_read_timeout)")]
pub struct BodyReadTimeout(pub Duration);

/// Serves one connection's requests with the app.
pub(super) struct Handler {
    app: axum::Router,
    state: Arc<ConnState>,
    peer: Peer,
    body_read: Duration,
}

impl Handler {
    /// A handler for the connection of `state` from `peer`.
    pub(super) fn new(
        app: axum::Router,
        state: Arc<ConnState>,
        peer: Peer,
        body_read: Duration,
    ) -> Handler {
        Handler {
            app,
            state,
            peer,
            body_read,
        }
    }
}

impl hyper::service::Service<http::Request<Incoming>> for Handler {
    type Response = http::Response<TrackedBody>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: http::Request<Incoming>) -> Answer {
        self.state.busy();
        let mut req = req.map(|body| TimedBody::new(body, self.body_read));
        match self.peer {
            Peer::Tcp(addr) => {
                req.extensions_mut().insert(ConnectInfo(addr));
            }
            Peer::Unix => {
                req.extensions_mut().insert(crate::http::UnixSocketPeer);
            }
        }
        let mut app = self.app.clone();
        Answer {
            inner: tower::Service::call(&mut app, req),
            state: Some(Arc::clone(&self.state)),
        }
    }
}

/// The app's answer to one request, its body tracked.
pub(super) struct Answer {
    inner: axum::routing::future::RouteFuture<Infallible>,
    state: Option<Arc<ConnState>>,
}

impl Future for Answer {
    type Output = Result<http::Response<TrackedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(resp) = std::task::ready!(Pin::new(&mut self.inner).poll(cx));
        let state = self.state.take();
        Poll::Ready(Ok(resp.map(|inner| TrackedBody { inner, state })))
    }
}

/// A response body that marks its connection idle when it is done (hyper drops it then).
pub(super) struct TrackedBody {
    inner: axum::body::Body,
    state: Option<Arc<ConnState>>,
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            state.idle();
        }
    }
}

impl Body for TrackedBody {
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

/// A request body that fails with [`BodyReadTimeout`] when the client sends nothing for
/// `limit` while it is being read. Its timer is made only for a body that has to wait.
pub(super) struct TimedBody {
    inner: Incoming,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    expired: bool,
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> TimedBody {
        TimedBody {
            inner,
            limit,
            timer: None,
            waiting: false,
            expired: false,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if !this.waiting {
            this.waiting = true;
            let deadline = tokio::time::Instant::now() + this.limit;
            match &mut this.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let fired = this
            .timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        if !fired {
            return Poll::Pending;
        }
        this.expired = true;
        Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.limit)))))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
