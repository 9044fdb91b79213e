//! One client connection, driven to its end: HTTP/1.1 served by hyper, closed when a
//! timeout of `server` passes (headers, keep-alive idle, a client that takes no bytes),
//! when the registry sheds it, or after its request in flight when the router drains.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::limits::ConnLimits;
use super::phase::{instant, now, Expiry, Watched};
use super::registry::Ticket;
use super::service::{Handler, Peer};

/// The HTTP/1.1 settings of every client connection. hyper's own write buffer limits stay
/// (at most 16 queued body chunks, ~400 KB): a stalled client holds a few chunks, and
/// the socket holds little more (see `accept::hold_back_unsent`).
pub(super) fn builder() -> http1::Builder {
    let mut b = http1::Builder::new();
    // The header timeout is ours (see `drive`): it must start at the connection's start
    // and at the first byte of a kept-alive connection's next request, not while idle.
    b.header_read_timeout(None).keep_alive(true);
    b
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    /// hyper finished it (the client closed, asked to close, or broke the protocol).
    Done(Result<(), hyper::Error>),
    /// A timeout passed.
    Expired(Expiry),
    /// Closed to make room at the connection cap.
    Shed,
}

/// Serves the connection `io` from `peer` until it ends. `_open` is held until then, so
/// the worker can wait for its connections at shutdown.
pub(super) async fn serve<I>(
    io: I,
    peer: Peer,
    app: axum::Router,
    settings: http1::Builder,
    limits: ConnLimits,
    ticket: Ticket,
    _open: watch::Receiver<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = std::sync::Arc::clone(ticket.state());
    let handler = Handler::new(app, std::sync::Arc::clone(&state), peer, limits.body_read);
    let conn = settings.serve_connection(TokioIo::new(Watched::new(io, state.clone())), handler);
    let end = drive(conn, &state, &limits).await;
    match end {
        End::Done(Ok(())) => {}
        End::Done(Err(e)) => tracing::debug!(?peer, error = %e, "client connection failed"),
        End::Expired(why) => tracing::debug!(
            ?peer,
            timeout = why.key(),
            "client connection closed: timed out"
        ),
        End::Shed => tracing::debug!(
            ?peer,
            "client connection closed to make room (server.max_connections)"
        ),
    }
    drop(ticket);
}

/// Polls `conn` and watches the connection's deadlines with one timer, moved only when a
/// deadline comes earlier than the one it is set for (a timer that fires early is set
/// again): the requests of a busy connection touch it about once per timeout, not once
/// each.
async fn drive<I>(
    conn: http1::Connection<TokioIo<Watched<I>>, Handler>,
    state: &super::phase::ConnState,
    limits: &ConnLimits,
) -> End
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = pin!(conn);
    let first = state.deadline(limits).map_or(now(), |(at, _)| at);
    let mut timer = pin!(tokio::time::sleep_until(instant(first)));
    let mut armed = true;
    let mut draining = false;
    std::future::poll_fn(|cx| loop {
        if state.is_shed() {
            return Poll::Ready(End::Shed);
        }
        if state.is_draining() && !draining {
            draining = true;
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            return Poll::Ready(End::Done(result));
        }
        state.register(cx);
        if state.is_shed() || (state.is_draining() && !draining) {
            continue;
        }
        let Some((at, why)) = state.deadline(limits) else {
            // Serving a request: no deadline. The timer is left as it is (setting it again
            // for every request would cost a timer-wheel update each); if it fires now,
            // it is only disarmed.
            if armed && timer.as_mut().poll(cx).is_ready() {
                armed = false;
            }
            return Poll::Pending;
        };
        let deadline = instant(at);
        if !armed || timer.deadline() > deadline {
            timer.as_mut().reset(deadline);
            armed = true;
        }
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        armed = false;
        if now() >= at {
            return Poll::Ready(End::Expired(why));
        }
    })
    .await
}
