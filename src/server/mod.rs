//! Running the router: build backends, discover models, bind every address (TCP and Unix
//! sockets), serve until told to stop, then drain in-flight requests within the grace time.
//! This is the library API an embedding program uses; `continuum serve` is a thin caller.
//!
//! Serving is thread-per-core: `server.workers` threads each run a single-threaded tokio
//! runtime that accepts on every listener and has its own upstream connection pool, so a
//! request is parsed, routed, forwarded and answered on one thread with no cross-thread
//! wake-ups. Only the model index (an `ArcSwap`) and the immutable config are shared.

mod accept;
mod connection;
mod control;
mod limits;
mod listeners;
mod memory;
mod phase;
mod registry;
mod running;
mod service;
mod signals;
mod tasks;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backend::{build_client, Backend};
use crate::config::operations::StatsConfig;
use crate::config::{Config, EnvSource, Overrides};
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::state::{BuildContext, Live, ReloadRequest, Snapshot};

use control::{fingerprint, Control};
use listeners::Listeners;
pub use running::RunningRouter;
pub use service::BodyReadTimeout;
use tasks::{oauth_all, probe_all, refresh_models, save_stats};
use worker::Workers;

/// How often backends without a `models` list are asked for their models, by default.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A backend could not be prepared.
    #[error("{0}")]
    Backend(String),
    /// An address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start worker thread: {0}")]
    Worker(String),
}

/// Entry point of the library API.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = continuum::config::from_text(
///     "backends: [{name: demo, type: mock}]",
///     continuum::config::Format::Yaml,
///     "<inline>",
///     &continuum::config::ProcessEnv,
///     continuum::config::Strictness::Validate,
/// )?.0;
/// let router = continuum::Router::builder(config).start().await?;
/// println!("listening on {:?}", router.local_addrs());
/// router.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Router;

impl Router {
    /// Starts building a router from a validated configuration.
    pub fn builder(config: Config) -> RouterBuilder {
        RouterBuilder {
            config,
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            source: None,
        }
    }
}

/// Settings for starting a router beyond its configuration.
pub struct RouterBuilder {
    config: Config,
    discovery_interval: Duration,
    source: Option<ReloadSource>,
}

/// Where a reload reads the configuration from: the file and the command line's overrides
/// (applied again on every reload), with the environment `${VAR}`s are taken from.
pub struct ReloadSource {
    /// The config file.
    pub file: PathBuf,
    /// Command-line overrides.
    pub overrides: Overrides,
    /// The environment.
    pub env: Box<dyn EnvSource + Send>,
}

/// An address the router is listening on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundAddr {
    /// TCP, with the real port (useful with port 0).
    Tcp(SocketAddr),
    /// A Unix socket file.
    Unix(PathBuf),
}

impl std::fmt::Display for BoundAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BoundAddr::Tcp(a) => write!(f, "{a}"),
            BoundAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl RouterBuilder {
    /// How often backends without configured models are asked for their model list.
    pub fn discovery_interval(mut self, every: Duration) -> RouterBuilder {
        self.discovery_interval = every;
        self
    }

    /// Lets the router reload its configuration from `source` (`POST /admin/config/reload`,
    /// [`RunningRouter::reload`], and with `hot_reload.enabled` whenever the files change).
    pub fn reload_from(mut self, source: ReloadSource) -> RouterBuilder {
        self.source = Some(source);
        self
    }

    /// Prepares backends, discovers models, binds every address and starts the worker
    /// threads. Must be called within a tokio runtime (it runs model discovery there).
    pub async fn start(self) -> Result<RunningRouter, StartError> {
        let prepared = self.prepare().await?;
        let Listeners {
            listeners,
            bound,
            unix_paths,
        } = Listeners::bind(&prepared.state.config.server)?;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let workers = worker_count(prepared.state.config.server.workers);
        let Workers { finished, aborts } =
            worker::spawn_all(&prepared.state, &listeners, workers, &shutdown_rx)?;
        let (state, background, stats_path) = prepared.run(shutdown_rx).await;
        for a in &bound {
            tracing::info!(workers, "listening on {a}");
        }
        Ok(RunningRouter {
            bound,
            unix_paths,
            shutdown_tx,
            finished,
            aborts,
            background,
            grace: state.config.server.shutdown_grace,
            stats_path,
            state,
        })
    }

    /// Prepares backends, discovers models and starts the background tasks (discovery,
    /// health probes, reloads, load signals) but binds nothing: the router's pipeline for a
    /// front end that is not HTTP (the agent mode over stdio).
    pub async fn start_headless(self) -> Result<HeadlessRouter, StartError> {
        let prepared = self.prepare().await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (state, background, stats_path) = prepared.run(shutdown_rx).await;
        Ok(HeadlessRouter {
            core: state,
            shutdown_tx,
            background,
            stats_path,
        })
    }

    /// The serving state, built (backends, discovery, probes), before anything runs.
    async fn prepare(self) -> Result<Prepared, StartError> {
        let config = self.config;
        // Taken first, so a change made while the router starts (discovery, probes) counts.
        let seen = fingerprint(self.source.as_ref(), &config);
        let workers = worker_count(config.server.workers);
        let cx = BuildContext {
            epoch: std::time::Instant::now(),
            workers,
        };
        let reloads = self
            .source
            .as_ref()
            .map(|_| mpsc::channel::<ReloadRequest>(8));
        let (reload_tx, reload_rx) = match reloads {
            Some((tx, rx)) => (Some(tx), Some(rx)),
            None => (None, None),
        };
        let stats_config = config.admin.stats.clone();
        let file = self.source.as_ref().map(|s| s.file.clone());
        let (state, oauth_waits) =
            serving_state(config, &stats_config, cx, reload_tx, file).await?;
        Ok(Prepared {
            state,
            cx,
            source: self.source,
            seen,
            reload_rx,
            oauth_waits,
            stats_config,
            discovery_interval: self.discovery_interval,
        })
    }
}

/// A router's state between [`RouterBuilder::prepare`] and its background tasks starting.
struct Prepared {
    state: AppState,
    cx: BuildContext,
    source: Option<ReloadSource>,
    seen: u64,
    reload_rx: Option<mpsc::Receiver<ReloadRequest>>,
    oauth_waits: Vec<(Arc<Backend>, Duration)>,
    stats_config: StatsConfig,
    discovery_interval: Duration,
}

impl Prepared {
    /// Starts the background tasks (until `shutdown_rx` says stop); the state, the tasks
    /// and where usage statistics are saved at shutdown.
    async fn run(
        self,
        shutdown_rx: watch::Receiver<bool>,
    ) -> (AppState, Vec<JoinHandle<()>>, Option<PathBuf>) {
        let Prepared {
            state,
            cx,
            source,
            seen,
            reload_rx,
            oauth_waits,
            stats_config,
            discovery_interval,
        } = self;
        let mut background: Vec<JoinHandle<()>> = vec![spawn_discovery(
            state.clone(),
            shutdown_rx.clone(),
            discovery_interval,
        )];
        let stats_path = stats_config
            .persistence
            .as_ref()
            .filter(|_| stats_config.enabled)
            .map(|p| p.path.clone());
        if let Some(p) = stats_config.persistence.filter(|_| stats_config.enabled) {
            let metrics = Arc::clone(&state.metrics);
            let mut rx = shutdown_rx.clone();
            background.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(p.snapshot_interval) => save_stats(&metrics, &p.path),
                        _ = rx.changed() => break,
                    }
                }
            }));
        }
        reconcile_files(&state).await;
        background.push(tasks::spawn_retention(state.clone(), shutdown_rx.clone()));
        let control = Control {
            state: state.clone(),
            cx,
            source,
            probes: Vec::new(),
            oauth: Vec::new(),
            signals: Vec::new(),
            shutdown: shutdown_rx,
        };
        background.push(tokio::spawn(control.run(reload_rx, seen, oauth_waits)));
        (state, background, stats_path)
    }
}

/// A router with no listener (see [`RouterBuilder::start_headless`]): its pipeline state
/// and background tasks, stopped when it is dropped or [`HeadlessRouter::shutdown`].
pub struct HeadlessRouter {
    /// The pipeline state requests are served with.
    pub core: AppState,
    shutdown_tx: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    stats_path: Option<PathBuf>,
}

impl HeadlessRouter {
    /// Stops the background tasks and saves usage statistics when configured to.
    pub fn shutdown(mut self) {
        self.stop();
        if let Some(path) = &self.stats_path {
            save_stats(&self.core.metrics, path);
        }
    }

    fn stop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for HeadlessRouter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `server.workers`, with 0 meaning one per available core.
fn worker_count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// The state every worker serves with: the first snapshot (its backends' OAuth tokens set,
/// models discovered and health probed), the upstream client, metrics, admission control,
/// the span exporter and the response cache. Also each OAuth backend's wait before its
/// next token look.
async fn serving_state(
    config: Config,
    stats_config: &StatsConfig,
    cx: BuildContext,
    reload_tx: Option<mpsc::Sender<ReloadRequest>>,
    file: Option<PathBuf>,
) -> Result<(AppState, Vec<(Arc<Backend>, Duration)>), StartError> {
    let workers = cx.workers;
    let admission = crate::http::admission::Admission::new(
        config.server.max_concurrent_requests,
        config.server.queue_timeout,
    )
    .map(Arc::new);
    let client = build_client(
        config.server.connection_pool_size,
        config.timeouts.connection,
    );
    let stats = stats_config
        .enabled
        .then(|| load_stats(stats_config, workers));
    let snapshot = Snapshot::build(config, None, cx).map_err(StartError::Backend)?;
    let oauth_waits = oauth_all(&client, &snapshot.backends).await;
    tokio::join!(
        refresh_models(&client, &snapshot),
        probe_all(&client, &snapshot.backends, &snapshot.config)
    );
    let tracing_config = &snapshot.config.tracing;
    let exporter = match &tracing_config.otlp_endpoint {
        Some(url) if tracing_config.enabled => Some(
            crate::trace::Exporter::start(url, &tracing_config.service_name, client.clone())
                .map_err(StartError::Backend)?,
        ),
        _ => None,
    };
    let cache = crate::cache::ResponseCache::from_config(&snapshot.config.cache, workers + 1)
        .map_err(StartError::Backend)?
        .map(Arc::new);
    let store = Arc::new(crate::store::Store::new(&snapshot.config.store.path));
    let files = Arc::new(crate::files::Files::new(&snapshot.config.files, &store));
    let live = Arc::new(Live::new(snapshot, reload_tx, file));
    let state = AppState {
        store,
        files,
        client,
        snap: live.current.load_full(),
        live,
        metrics: Arc::new(Metrics::new(workers, stats)),
        shard: 0,
        admission,
        requests: Default::default(),
        cut: crate::pipeline::StreamCut::never(),
        exporter,
        cache,
    };
    Ok((state, oauth_waits))
}

/// The usage statistics registry, with the snapshot saved by an earlier run when
/// `persistence` names one.
fn load_stats(stats_config: &StatsConfig, workers: usize) -> crate::stats::Stats {
    let stats = crate::stats::Stats::new(stats_config.clone(), workers + 1);
    if let Some(p) = &stats_config.persistence {
        match stats.load(&p.path, p.max_age) {
            Ok(true) => tracing::info!(path = %p.path.display(), "usage statistics loaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!("usage statistics not loaded: {e}"),
        }
    }
    stats
}

/// Asks the discovering backends for their models every `every`, until shutdown.
/// Brings the Files API's blobs and metadata in line after a crash (see `crate::files`).
async fn reconcile_files(state: &AppState) {
    let cleanup = state.config.files.cleanup_orphans_on_startup;
    match state.files.reconcile(cleanup).await {
        Ok(done) if done == crate::files::Reconciled::default() => {}
        Ok(done) => tracing::info!(
            completed = done.completed,
            dropped = done.dropped,
            partial = done.partial,
            orphans = done.orphans,
            dir = %state.files.dir().display(),
            "files reconciled at start"
        ),
        Err(e) => tracing::warn!(error = %e, "files could not be reconciled at start"),
    }
}

fn spawn_discovery(
    state: AppState,
    mut rx: watch::Receiver<bool>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {
                    let snapshot = state.live.current.load_full();
                    refresh_models(&state.client, &snapshot).await;
                }
                _ = rx.changed() => break,
            }
        }
    })
}
