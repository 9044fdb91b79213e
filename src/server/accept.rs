//! A worker's accept loop on one listener: each new connection is admitted under
//! `server.max_connections` (making room by closing idle or slow ones) and served on its
//! own task, or, when nothing can make room, answered 503 and closed at once rather than
//! left waiting in the backlog.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use tokio::sync::watch;

use super::connection;
use super::limits::ConnLimits;
use super::registry::Registry;
use super::service::Peer;
use crate::error::ProxyError;

/// Pause after an accept error that is not the peer's (such as running out of
/// descriptors), so the loop does not spin on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A listening socket registered with a worker's runtime.
pub(super) enum Listener {
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// A Unix socket.
    Unix(tokio::net::UnixListener),
}

/// What every connection of a worker is served with.
#[derive(Clone)]
pub(super) struct Serving {
    /// The worker's app.
    pub(super) app: axum::Router,
    /// HTTP/1.1 settings.
    pub(super) settings: http1::Builder,
    /// Timeouts and the cap.
    pub(super) limits: ConnLimits,
    /// The router's open connections.
    pub(super) registry: Arc<Registry>,
    /// Held by each connection task; the worker waits for all to be dropped at shutdown.
    pub(super) open: watch::Receiver<()>,
}

/// Accepts on `listener` until `shutdown` turns true.
pub(super) async fn run(listener: Listener, serving: Serving, mut shutdown: watch::Receiver<bool>) {
    // Whether the last accept failed: a run of failures is logged once.
    let mut failing = false;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let accepted = tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(conn) => {
                failing = false;
                admit(conn, &serving);
            }
            Err(e) if is_peer_error(&e) => {}
            Err(e) => {
                let shed = serving.registry.shed_for_descriptors();
                if !failing {
                    tracing::warn!(error = %e, shed, "cannot accept connections (is the open-file limit too low for server.max_connections?); closing idle ones and retrying");
                }
                failing = true;
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// An accepted connection.
enum Accepted {
    Tcp(tokio::net::TcpStream, std::net::SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, addr) = l.accept().await?;
            // Small writes (stream events) go out at once.
            let _ = stream.set_nodelay(true);
            hold_back_unsent(&stream);
            Ok(Accepted::Tcp(stream, addr))
        }
        Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}

/// Most bytes a client's socket holds that the client's window does not let out yet.
const UNSENT_MAX: u32 = 128 * 1024;

/// Caps the bytes queued in the kernel for a client that does not read
/// (`TCP_NOTSENT_LOWAT`): without it the send buffer grows to megabytes, all drawn from
/// the backend; with it the socket stops taking bytes as soon as the client stops taking
/// them, so the backend is held back and `server.client_write_timeout` counts from then.
/// Bytes in flight are not limited, so throughput is not either.
fn hold_back_unsent(stream: &tokio::net::TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(UNSENT_MAX) {
        tracing::debug!(error = %e, "cannot set TCP_NOTSENT_LOWAT on a client connection");
    }
}

/// Errors of one connection attempt, not of the listener.
fn is_peer_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

fn admit(conn: Accepted, serving: &Serving) {
    let Some(ticket) = serving.registry.admit() else {
        refuse(&conn);
        return;
    };
    let s = serving.clone();
    match conn {
        Accepted::Tcp(stream, addr) => {
            tokio::spawn(connection::serve(
                stream,
                Peer::Tcp(addr),
                s.app,
                s.settings,
                s.limits,
                ticket,
                s.open,
            ));
        }
        Accepted::Unix(stream) => {
            tokio::spawn(connection::serve(
                stream,
                Peer::Unix,
                s.app,
                s.settings,
                s.limits,
                ticket,
                s.open,
            ));
        }
    }
}

/// Answers 503 without waiting for the request (it is never read) and closes.
fn refuse(conn: &Accepted) {
    let body = crate::protocol::errors::openai_error_json(&ProxyError::Overloaded(
        "too many open connections (server.max_connections)",
    ));
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Best effort: a fresh socket's send buffer takes this at once.
    let _ = match conn {
        Accepted::Tcp(s, _) => s.try_write(reply.as_bytes()),
        Accepted::Unix(s) => s.try_write(reply.as_bytes()),
    };
    tracing::debug!("connection refused: server.max_connections reached and none idle or slow");
}
