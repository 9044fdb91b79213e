//! What one client connection is doing, as its timeouts and the connection cap need to
//! know: waiting for a request's headers, serving a request, or idle between requests;
//! and whether the client has stopped taking the bytes written to it. The socket wrapper
//! [`Watched`] and the request handler record it; the connection's driver reads it.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::limits::ConnLimits;

/// The start of [`ConnState`]'s clock.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since [`EPOCH`], never 0 (0 means "not set" in [`ConnState`]).
pub(super) fn now() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    (epoch.elapsed().as_nanos() as u64).max(1)
}

/// The instant `nanos` after [`EPOCH`].
pub(super) fn instant(nanos: u64) -> Instant {
    *EPOCH.get_or_init(Instant::now) + Duration::from_nanos(nanos)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Receiving a request's headers (from its start, or from the first byte after idle).
    Head = 0,
    /// A request is being served (its body read, its response written).
    Busy = 1,
    /// Kept alive after a response, waiting for the next request.
    Idle = 2,
}

/// Why a connection was closed by the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// `server.header_read_timeout`.
    Headers,
    /// `server.keep_alive_timeout`.
    KeepAlive,
    /// `server.client_write_timeout`.
    ClientWrite,
}

impl Expiry {
    /// The config key of the timeout.
    pub(super) fn key(self) -> &'static str {
        match self {
            Expiry::Headers => "server.header_read_timeout",
            Expiry::KeepAlive => "server.keep_alive_timeout",
            Expiry::ClientWrite => "server.client_write_timeout",
        }
    }
}

/// One connection's state, shared by its socket wrapper, its request handler, its driver
/// and the connection registry (which sheds and drains through it).
#[derive(Debug)]
pub(super) struct ConnState {
    phase: AtomicU8,
    /// When the phase began ([`now`]).
    since: AtomicU64,
    /// When the client stopped taking bytes (0: it takes them).
    write_stalled: AtomicU64,
    /// Close at once: shed to make room at the connection cap.
    shed: AtomicBool,
    /// Finish the request in flight, then close: the router is shutting down.
    drain: AtomicBool,
    /// The driver, woken to act on `shed` and `drain`.
    waker: AtomicWaker,
}

impl ConnState {
    /// A connection just accepted: waiting for its first request's headers.
    pub(super) fn new() -> ConnState {
        ConnState {
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(now()),
            write_stalled: AtomicU64::new(0),
            shed: AtomicBool::new(false),
            drain: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// The phase and when it began.
    pub(super) fn phase(&self) -> (Phase, u64) {
        let phase = match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Head,
            1 => Phase::Busy,
            _ => Phase::Idle,
        };
        (phase, self.since.load(Ordering::Relaxed))
    }

    fn enter(&self, phase: Phase) {
        self.since.store(now(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// A request's headers are in: it is being served.
    pub(super) fn busy(&self) {
        self.phase.store(Phase::Busy as u8, Ordering::Relaxed);
    }

    /// The response is complete: the connection waits for its next request.
    pub(super) fn idle(&self) {
        self.enter(Phase::Idle);
    }

    /// Bytes came in: on an idle connection, they begin the next request's headers.
    fn bytes_in(&self) {
        if self.phase.load(Ordering::Relaxed) == Phase::Idle as u8 {
            self.enter(Phase::Head);
        }
    }

    fn write_blocked(&self) {
        if self.write_stalled.load(Ordering::Relaxed) == 0 {
            self.write_stalled.store(now(), Ordering::Relaxed);
        }
    }

    fn write_progressed(&self) {
        if self.write_stalled.load(Ordering::Relaxed) != 0 {
            self.write_stalled.store(0, Ordering::Relaxed);
        }
    }

    /// When the connection is due to be closed, and why; `None` while a request is served
    /// and the client takes what is written to it.
    pub(super) fn deadline(&self, limits: &ConnLimits) -> Option<(u64, Expiry)> {
        let stalled = self.write_stalled.load(Ordering::Relaxed);
        if stalled != 0 {
            let at = stalled.saturating_add(nanos(limits.client_write));
            return Some((at, Expiry::ClientWrite));
        }
        match self.phase() {
            (Phase::Head, since) => Some((
                since.saturating_add(nanos(limits.header_read)),
                Expiry::Headers,
            )),
            (Phase::Idle, since) => Some((
                since.saturating_add(nanos(limits.keep_alive)),
                Expiry::KeepAlive,
            )),
            (Phase::Busy, _) => None,
        }
    }

    /// Has the driver close the connection at once.
    pub(super) fn shed(&self) {
        self.shed.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Has the driver finish the request in flight and close.
    pub(super) fn drain(&self) {
        self.drain.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the connection was shed.
    pub(super) fn is_shed(&self) -> bool {
        self.shed.load(Ordering::Acquire)
    }

    /// Whether the connection is to drain.
    pub(super) fn is_draining(&self) -> bool {
        self.drain.load(Ordering::Acquire)
    }

    /// Wakes `cx`'s task on [`ConnState::shed`] and [`ConnState::drain`].
    pub(super) fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }
}

/// A client socket that records into its [`ConnState`] when a request's bytes start coming
/// in after idle, and when the client stops (and starts again) taking bytes.
pub(super) struct Watched<T> {
    io: T,
    state: std::sync::Arc<ConnState>,
}

impl<T> Watched<T> {
    /// Wraps `io`.
    pub(super) fn new(io: T, state: std::sync::Arc<ConnState>) -> Watched<T> {
        Watched { io, state }
    }

    fn after_write<R>(&self, result: Poll<std::io::Result<R>>) -> Poll<std::io::Result<R>> {
        match &result {
            Poll::Pending => self.state.write_blocked(),
            Poll::Ready(Ok(_)) => self.state.write_progressed(),
            Poll::Ready(Err(_)) => {}
        }
        result
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.bytes_in();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.after_write(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.after_write(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // A flush moves no bytes of its own (hyper flushes only after its writes went out).
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
