//! A serving router: its addresses, reloads, and shutdown (graceful, within the grace
//! time, or on drop).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::http::admission::Requests;
use crate::http::{app, AppState};
use crate::state::{Live, ReloadReport};

use super::tasks::save_stats;
use super::BoundAddr;

/// A router that is serving. Drop it or call [`RunningRouter::shutdown`] to stop.
pub struct RunningRouter {
    pub(super) bound: Vec<BoundAddr>,
    pub(super) unix_paths: Vec<PathBuf>,
    pub(super) shutdown_tx: watch::Sender<bool>,
    pub(super) finished: Vec<oneshot::Receiver<()>>,
    pub(super) aborts: Vec<oneshot::Sender<()>>,
    pub(super) background: Vec<JoinHandle<()>>,
    pub(super) grace: Duration,
    /// Where usage statistics are saved at shutdown.
    pub(super) stats_path: Option<PathBuf>,
    pub(super) state: AppState,
}

impl RunningRouter {
    /// Every address served, with real ports.
    pub fn local_addrs(&self) -> &[BoundAddr] {
        &self.bound
    }

    /// The first TCP address served, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.bound.iter().find_map(|a| match a {
            BoundAddr::Tcp(a) => Some(*a),
            BoundAddr::Unix(_) => None,
        })
    }

    /// Reloads the config file now (as `POST /admin/config/reload` does) and says how it
    /// went; without a [`RouterBuilder::reload_from`](super::RouterBuilder::reload_from)
    /// source, it fails and changes nothing.
    pub async fn reload(&self) -> ReloadReport {
        self.state.live.reload().await
    }

    /// The serving snapshot and reload handle, to reload from elsewhere (a signal handler).
    pub fn live(&self) -> Arc<Live> {
        Arc::clone(&self.state.live)
    }

    /// An axum router over this instance's backends, to mount inside another axum app
    /// (it uses an upstream client of the runtime it is called on).
    pub fn app(&self) -> axum::Router {
        app(Arc::new(self.state.for_worker()))
    }

    /// The count of API requests in flight (streams until their body ends), to report
    /// while shutting down.
    pub fn requests(&self) -> Arc<Requests> {
        Arc::clone(&self.state.requests)
    }

    /// Stops accepting connections and waits for in-flight requests (streams included)
    /// for up to `server.shutdown_grace`; streams still open then end with an error event
    /// in their client's protocol. Returns whether everything finished in time.
    pub async fn shutdown(self) -> bool {
        self.shutdown_with(std::future::ready(())).await
    }

    /// Serves until `signal` completes, then shuts down as [`RunningRouter::shutdown`].
    pub async fn shutdown_with(mut self, signal: impl Future<Output = ()>) -> bool {
        signal.await;
        let grace = self.grace;
        tracing::info!(
            "shutting down: no new connections; draining: {} request(s) in flight, waiting up to {grace:?}",
            self.state.requests.count()
        );
        let _ = self.shutdown_tx.send(true);
        for task in self.background.drain(..) {
            task.abort();
        }
        let mut finished = futures_util::future::join_all(std::mem::take(&mut self.finished));
        let drained = tokio::time::timeout(grace, &mut finished).await.is_ok();
        if !drained {
            tracing::warn!(
                "shutdown grace time ({grace:?}) passed with {} request(s) in flight: ending open streams with an error event",
                self.state.requests.count()
            );
            for abort in self.aborts.drain(..) {
                let _ = abort.send(());
            }
            // The workers give the cut streams CUT_FLUSH to write their error event.
            let flush = super::worker::CUT_FLUSH + Duration::from_millis(200);
            let _ = tokio::time::timeout(flush, finished).await;
        }
        if let Some(path) = &self.stats_path {
            save_stats(&self.state.metrics, path);
        }
        drained
    }
}

impl Drop for RunningRouter {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for abort in self.aborts.drain(..) {
            let _ = abort.send(());
        }
        for task in &self.background {
            task.abort();
        }
        for p in &self.unix_paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
