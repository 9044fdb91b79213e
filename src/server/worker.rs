//! The worker threads: each runs a single-threaded tokio runtime accepting on every
//! listener and serving the connections it accepts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::http::{app, AppState};

use super::accept::{self, Listener, Serving};
use super::connection;
use super::limits::ConnLimits;
use super::listeners::StdListener;
use super::registry::Registry;
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
    let limits = ConnLimits::from_config(&state.config.server);
    let registry = Arc::new(Registry::new(limits.max_connections, limits.header_read));
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
        let registry = Arc::clone(&registry);
        std::thread::Builder::new()
            .name(format!("continuum-worker-{i}"))
            .spawn(move || run_worker(shared, mine, (limits, registry), rx, abort_rx, done_tx))
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
    (limits, registry): (ConnLimits, Arc<Registry>),
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
    shared.metrics.runtimes.register(runtime.handle().clone());
    runtime.block_on(async move {
        // tokio wakes its driver through an eventfd whenever a timer is set earlier than the
        // earliest one it sleeps for; with no timer at all, that is every request's timeout.
        // A slow heartbeat keeps an earlier timer registered, saving a syscall and a wake-up
        // per request (measured with strace and the overhead benchmark). Each beat also
        // gives freed memory back (see `memory`).
        tokio::spawn(async {
            let mut beat = tokio::time::interval(WORKER_HEARTBEAT);
            loop {
                beat.tick().await;
                super::memory::release_freed();
            }
        });
        let (switch, cut) = crate::pipeline::StreamCut::new();
        let mut mine = shared.for_worker();
        mine.cut = cut;
        let (open_tx, open_rx) = watch::channel(());
        let serving = Serving {
            app: app(Arc::new(mine)),
            settings: connection::builder(),
            limits,
            registry,
            open: open_rx,
        };
        let mut loops = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let listener = match listener {
                StdListener::Tcp(l) => tokio::net::TcpListener::from_std(l).map(Listener::Tcp),
                StdListener::Unix(l) => tokio::net::UnixListener::from_std(l).map(Listener::Unix),
            };
            match listener {
                Ok(l) => loops.push(tokio::spawn(accept::run(
                    l,
                    serving.clone(),
                    shutdown.clone(),
                ))),
                Err(e) => tracing::error!("worker cannot register a listener: {e}"),
            }
        }
        let registry = Arc::clone(&serving.registry);
        drop(serving);
        let graceful = async move {
            futures_util::future::join_all(loops).await;
            // No new connections: the open ones finish their request in flight and close.
            registry.drain_all();
            open_tx.closed().await;
        };
        let mut graceful = std::pin::pin!(graceful);
        tokio::select! {
            _ = &mut graceful => {}
            _ = abort => {
                // Grace time is over: open streams end with an error event, then close.
                switch.cut();
                let _ = tokio::time::timeout(CUT_FLUSH, graceful).await;
            }
        }
    });
    // Dropping the runtime cancels whatever still runs (only after an abort).
    drop(runtime);
    let _ = done.send(());
}
