//! The worker threads: each runs a single-threaded tokio runtime serving every listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::sync::{oneshot, watch};

use crate::http::{app, AppState};

use super::listeners::StdListener;
use super::StartError;

/// See `run_worker`: request timeouts longer than this never wake the driver early.
const WORKER_HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a worker lets the streams it cut write their error event and close, once the
/// shutdown grace time is over, before it stops.
pub(super) const CUT_FLUSH: Duration = Duration::from_millis(500);

/// The running worker threads.
pub(super) struct Workers {
    /// Each one's signal that it is done.
    pub(super) finished: Vec<oneshot::Receiver<()>>,
    /// What aborts each one (grace time over): its open streams end with an error event,
    /// then it stops.
    pub(super) aborts: Vec<oneshot::Sender<()>>,
}

/// Starts `workers` worker threads, each serving its own clone of every listener.
pub(super) fn spawn_all(
    state: &AppState,
    listeners: &[StdListener],
    workers: usize,
    shutdown_rx: &watch::Receiver<bool>,
) -> Result<Workers, StartError> {
    let mut finished = Vec::with_capacity(workers);
    let mut aborts = Vec::with_capacity(workers);
    for i in 0..workers {
        let mine = listeners
            .iter()
            .map(StdListener::try_clone)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartError::Worker(e.to_string()))?;
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let (abort_tx, abort_rx) = oneshot::channel::<()>();
        let shared = state.clone();
        let rx = shutdown_rx.clone();
        std::thread::Builder::new()
            .name(format!("continuum-worker-{i}"))
            .spawn(move || run_worker(shared, mine, rx, abort_rx, done_tx))
            .map_err(|e| StartError::Worker(e.to_string()))?;
        finished.push(done_rx);
        aborts.push(abort_tx);
    }
    Ok(Workers { finished, aborts })
}

/// One worker thread: a single-threaded runtime serving every listener until shutdown
/// (graceful) or abort (grace time over: open streams end with an error event, given
/// [`CUT_FLUSH`] to be written).
fn run_worker(
    shared: AppState,
    listeners: Vec<StdListener>,
    shutdown: watch::Receiver<bool>,
    abort: oneshot::Receiver<()>,
    done: oneshot::Sender<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("worker runtime failed to start: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        // tokio wakes its driver through an eventfd whenever a timer is set earlier than the
        // earliest one it sleeps for; with no timer at all, that is every request's timeout.
        // A slow heartbeat keeps an earlier timer registered, saving a syscall and a wake-up
        // per request (measured with strace and the overhead benchmark).
        tokio::spawn(async {
            let mut beat = tokio::time::interval(WORKER_HEARTBEAT);
            loop {
                beat.tick().await;
            }
        });
        let (switch, cut) = crate::pipeline::StreamCut::new();
        let mut mine = shared.for_worker();
        mine.cut = cut;
        let router = app(Arc::new(mine));
        let mut servers = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let mut rx = shutdown.clone();
            let signal = async move {
                let _ = rx.changed().await;
            };
            let router = router.clone();
            servers.push(match listener {
                StdListener::Tcp(l) => match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => {
                        let l = l.tap_io(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        });
                        // The peer address is what per-client rate limits count.
                        let service = router.into_make_service_with_connect_info::<SocketAddr>();
                        tokio::spawn(async move {
                            let _ = axum::serve(l, service).with_graceful_shutdown(signal).await;
                        })
                    }
                    Err(e) => {
                        tracing::error!("worker cannot register a TCP listener: {e}");
                        continue;
                    }
                },
                StdListener::Unix(l) => match tokio::net::UnixListener::from_std(l) {
                    Ok(l) => {
                        // Who may connect is the socket file's mode; the admin guard reads this.
                        let router = router.layer(axum::Extension(crate::http::UnixSocketPeer));
                        tokio::spawn(async move {
                            let _ = axum::serve(l, router).with_graceful_shutdown(signal).await;
                        })
                    }
                    Err(e) => {
                        tracing::error!("worker cannot register a Unix listener: {e}");
                        continue;
                    }
                },
            });
        }
        let mut servers = futures_util::future::join_all(servers);
        tokio::select! {
            _ = &mut servers => {}
            _ = abort => {
                switch.cut();
                let _ = tokio::time::timeout(CUT_FLUSH, servers).await;
            }
        }
    });
    // Dropping the runtime cancels whatever still runs (only after an abort).
    drop(runtime);
    let _ = done.send(());
}
