//! Running the router: build backends, discover models, bind every address (TCP and Unix
//! sockets), serve until told to stop, then drain in-flight requests within the grace time.
//! This is the library API an embedding program uses; `continuum serve` is a thin caller.
//!
//! Serving is thread-per-core: `server.workers` threads each run a single-threaded tokio
//! runtime that accepts on every listener and has its own upstream connection pool, so a
//! request is parsed, routed, forwarded and answered on one thread with no cross-thread
//! wake-ups. Only the model index (an `ArcSwap`) and the immutable config are shared.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::backend::{build_client, discovery, Backend, HttpClient};
use crate::config::{BindAddr, Config, EnvSource, HealthChecksConfig, Overrides};
use crate::http::{app, AppState};
use crate::metrics::Metrics;
use crate::state::{BuildContext, Live, ReloadReport, ReloadRequest, Snapshot};

/// How often backends without a `models` list are asked for their models, by default.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// See `run_worker`: request timeouts longer than this never wake the driver early.
const WORKER_HEARTBEAT: Duration = Duration::from_secs(5);

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

/// A bound listening socket, shared by every worker (each registers a clone of the fd).
enum StdListener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl StdListener {
    fn try_clone(&self) -> std::io::Result<StdListener> {
        Ok(match self {
            StdListener::Tcp(l) => StdListener::Tcp(l.try_clone()?),
            StdListener::Unix(l) => StdListener::Unix(l.try_clone()?),
        })
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
        let config = self.config;
        // Taken first, so a change made while the router starts (discovery, probes) counts.
        let seen = fingerprint(self.source.as_ref(), &config);
        let workers = match config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
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
        let admission = crate::http::admission::Admission::new(
            config.server.max_concurrent_requests,
            config.server.queue_timeout,
        )
        .map(Arc::new);
        let client = build_client(
            config.server.connection_pool_size,
            config.timeouts.connection,
        );
        let stats_config = config.admin.stats.clone();
        let stats = stats_config.enabled.then(|| {
            let stats = crate::stats::Stats::new(stats_config.clone(), workers + 1);
            if let Some(p) = &stats_config.persistence {
                match stats.load(&p.path, p.max_age) {
                    Ok(true) => tracing::info!(path = %p.path.display(), "usage statistics loaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("usage statistics not loaded: {e}"),
                }
            }
            stats
        });
        let snapshot = Snapshot::build(config, None, cx).map_err(StartError::Backend)?;
        let oauth_waits = oauth_all(&client, &snapshot.backends).await;
        tokio::join!(
            refresh_models(&client, &snapshot),
            probe_all(&client, &snapshot.backends, &snapshot.config)
        );
        let file = self.source.as_ref().map(|s| s.file.clone());
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
        let live = Arc::new(Live::new(snapshot, reload_tx, file));
        let state = AppState {
            client,
            snap: live.current.load_full(),
            live,
            metrics: Arc::new(Metrics::new(workers, stats)),
            shard: 0,
            admission,
            exporter,
            cache,
        };

        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        let mut unix_paths = Vec::new();
        for addr in &state.config.server.bind_address {
            let fail = |e: std::io::Error| StartError::Bind {
                addr: addr.to_string(),
                reason: e.to_string(),
            };
            match addr {
                BindAddr::Tcp(a) => {
                    let l = std::net::TcpListener::bind(a).map_err(fail)?;
                    l.set_nonblocking(true).map_err(fail)?;
                    bound.push(BoundAddr::Tcp(l.local_addr().map_err(fail)?));
                    listeners.push(StdListener::Tcp(l));
                }
                BindAddr::Unix(path) => {
                    let l = bind_unix(path, state.config.server.socket_mode)?;
                    bound.push(BoundAddr::Unix(path.clone()));
                    unix_paths.push(path.clone());
                    listeners.push(StdListener::Unix(l));
                }
            }
        }

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let workers = match state.config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
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

        let mut background: Vec<JoinHandle<()>> = Vec::new();
        {
            let state = state.clone();
            let mut rx = shutdown_rx.clone();
            let every = self.discovery_interval;
            background.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {
                            let snapshot = state.live.current.load_full();
                            refresh_models(&state.client, &snapshot).await;
                        }
                        _ = rx.changed() => break,
                    }
                }
            }));
        }
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
        let control = Control {
            state: state.clone(),
            cx,
            source: self.source,
            probes: Vec::new(),
            oauth: Vec::new(),
            shutdown: shutdown_rx.clone(),
        };
        background.push(tokio::spawn(control.run(reload_rx, seen, oauth_waits)));
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
}

/// One worker thread: a single-threaded runtime serving every listener until shutdown
/// (graceful) or abort (grace time over).
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
        let router = app(Arc::new(shared.for_worker()));
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
        tokio::select! {
            _ = futures_util::future::join_all(servers) => {}
            _ = abort => {}
        }
    });
    // Dropping the runtime cancels whatever still runs (only after an abort).
    drop(runtime);
    let _ = done.send(());
}

fn bind_unix(
    path: &PathBuf,
    mode: Option<u32>,
) -> Result<std::os::unix::net::UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let fail = |reason: String| StartError::Bind {
        addr: format!("unix:{}", path.display()),
        reason,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(fail(
                "the path exists and is not a socket; refusing to replace it".into(),
            ));
        }
        // A socket file left by an earlier run refuses connections; anything else (a live
        // listener, or one we may not talk to) is left alone.
        match std::os::unix::net::UnixStream::connect(path) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Ok(_) => return Err(fail("another process is listening on this socket".into())),
            Err(e) => {
                return Err(fail(format!(
                    "the socket exists and cannot be checked ({e}); refusing to replace it"
                )))
            }
        }
        std::fs::remove_file(path)
            .map_err(|e| fail(format!("cannot remove the stale socket file: {e}")))?;
    }
    // With a socket_mode, bind under a private name, set the mode, then move it into place,
    // so the socket is never reachable with looser permissions.
    let bind_at = match mode {
        Some(_) => {
            let mut name = path
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            name.push(format!(".{}.tmp", std::process::id()));
            path.with_file_name(name)
        }
        None => path.clone(),
    };
    let listener =
        std::os::unix::net::UnixListener::bind(&bind_at).map_err(|e| fail(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mode) = mode {
        let placed = std::fs::set_permissions(&bind_at, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set socket_mode {mode:o}: {e}"))
            .and_then(|()| {
                std::fs::rename(&bind_at, path)
                    .map_err(|e| format!("cannot move the socket into place: {e}"))
            });
        if let Err(reason) = placed {
            let _ = std::fs::remove_file(&bind_at);
            return Err(fail(reason));
        }
    }
    Ok(listener)
}

/// Keeps an OAuth backend's token fresh while it is configured.
async fn oauth_loop(
    client: HttpClient,
    backend: Arc<Backend>,
    mut shutdown: watch::Receiver<bool>,
    first_wait: Duration,
) {
    let mut wait = first_wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => wait = crate::oauth::keep_fresh(&client, &backend).await,
            _ = shutdown.changed() => break,
        }
    }
}

/// Writes the usage statistics snapshot (`admin.stats.persistence`).
fn save_stats(metrics: &Metrics, path: &std::path::Path) {
    if let Some(stats) = &metrics.stats {
        if let Err(e) = stats.save(path) {
            tracing::warn!("cannot write the usage statistics snapshot: {e}");
        }
    }
}

/// Asks every discovering backend for its models (concurrently), then rebuilds the
/// snapshot's model index.
async fn refresh_models(client: &HttpClient, snapshot: &Snapshot) {
    let t = &snapshot.config.timeouts;
    let timeout = t.connection + t.standard.first_byte;
    let jobs = snapshot
        .backends
        .iter()
        .filter(|b| b.discovers_models())
        .map(|b| async move {
            match discovery::fetch_models(client, b, timeout).await {
                Ok(models) => {
                    if **b.discovered.load() != models {
                        tracing::info!(backend = b.name(), models = ?models, "discovered models");
                        b.discovered.store(Arc::new(models));
                    }
                }
                Err(e) => tracing::warn!("model discovery: {e}; keeping its last known models"),
            }
        });
    futures_util::future::join_all(jobs).await;
    snapshot.rebuild_index();
}

/// Sets the tokens of the given OAuth backends (before they serve); each one's wait
/// before its next look.
async fn oauth_all(
    client: &HttpClient,
    backends: &[Arc<Backend>],
) -> Vec<(Arc<Backend>, Duration)> {
    let jobs = backends
        .iter()
        .filter(|b| b.config.oauth.is_some())
        .map(|b| async move { (Arc::clone(b), crate::oauth::keep_fresh(client, b).await) });
    futures_util::future::join_all(jobs).await
}

/// Probes the given backends once, concurrently (at start and for backends a reload
/// adds, so `/health/ready` is right at once).
async fn probe_all(client: &HttpClient, backends: &[Arc<Backend>], config: &Config) {
    if !config.health_checks.enabled {
        return;
    }
    let jobs = backends
        .iter()
        .map(|b| probe_once(client, &config.health_checks, b));
    futures_util::future::join_all(jobs).await;
}

/// Probes one backend, applies the result; returns the wait before the next probe.
async fn probe_once(client: &HttpClient, cfg: &HealthChecksConfig, b: &Backend) -> Duration {
    let result = crate::backend::probe::probe(client, b, cfg).await;
    let (changed, next) = b
        .state
        .health
        .on_probe(result, tokio::time::Instant::now(), cfg);
    if let Some(status) = changed {
        match status {
            crate::resilience::HealthStatus::Healthy => {
                tracing::info!(backend = b.name(), "backend is healthy")
            }
            s => tracing::warn!(
                backend = b.name(),
                status = s.as_str(),
                "backend is not taking traffic"
            ),
        }
    }
    next
}

/// Probes a backend while it is configured, at the interval its state calls for, with
/// the health-check settings of the snapshot serving at each probe.
async fn probe_loop(
    client: HttpClient,
    live: Arc<Live>,
    backend: Arc<Backend>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = |live: &Live| live.current.load().config.health_checks.clone();
    let mut wait = cfg(&live).interval;
    if backend.state.health.status() == crate::resilience::HealthStatus::WarmingUp {
        wait = cfg(&live).warmup_check_interval;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => wait = probe_once(&client, &cfg(&live), &backend).await,
            _ = shutdown.changed() => break,
        }
    }
}

/// A digest of the contents of the files `config` was read from (the config file, and the
/// key, metadata and prompt files it names); unreadable files count as empty.
fn fingerprint(source: Option<&ReloadSource>, config: &Config) -> u64 {
    use std::hash::{Hash, Hasher};
    let Some(source) = source else { return 0 };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let files = std::iter::once(&source.file)
        .chain(config.api_keys.keys_file.as_ref())
        .chain(config.model_metadata_file.as_ref())
        .chain(config.global_prompts.files());
    for f in files {
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

/// The router's control task: owns the probe loops and applies reloads (asked for, or
/// when `hot_reload` sees the watched files change), one at a time.
struct Control {
    state: AppState,
    cx: BuildContext,
    source: Option<ReloadSource>,
    /// The running probe loop of each probed backend.
    probes: Vec<(Arc<Backend>, JoinHandle<()>)>,
    /// The token refresh loop of each OAuth backend.
    oauth: Vec<(Arc<Backend>, JoinHandle<()>)>,
    shutdown: watch::Receiver<bool>,
}

impl Control {
    async fn run(
        mut self,
        requests: Option<mpsc::Receiver<ReloadRequest>>,
        mut seen: u64,
        oauth_waits: Vec<(Arc<Backend>, Duration)>,
    ) {
        self.sync_probes();
        self.sync_oauth(oauth_waits);
        let Some(mut requests) = requests else {
            let _ = self.shutdown.changed().await;
            return self.stop_probes();
        };
        let mut shutdown = self.shutdown.clone();
        loop {
            let poll = {
                let config = &self.state.live.current.load().config.hot_reload;
                config.enabled.then_some(config.poll_interval)
            };
            let tick = async {
                match poll {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                asked = requests.recv() => {
                    let Some(reply) = asked else { break };
                    // Taken before the files are read, so a change during the reload is not missed.
                    seen = self.fingerprint();
                    let report = self.reload().await;
                    let _ = reply.send(report);
                }
                _ = tick => {
                    let now = self.fingerprint();
                    if now != seen {
                        seen = now;
                        tracing::info!("configuration files changed; reloading");
                        if self.reload().await.ok {
                            // The new config may watch other files (a new api_keys_file).
                            seen = self.fingerprint();
                        }
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        self.stop_probes();
    }

    /// A digest of the watched files' contents (the config file, and the key and
    /// metadata files it names); unreadable files count as empty.
    fn fingerprint(&self) -> u64 {
        let snapshot = self.state.live.current.load();
        fingerprint(self.source.as_ref(), &snapshot.config)
    }

    /// Loads the file again and swaps in a new snapshot; an invalid file changes nothing.
    async fn reload(&mut self) -> ReloadReport {
        let report = match self.try_reload().await {
            Ok(restart_required) => {
                if restart_required.is_empty() {
                    tracing::info!("configuration reloaded");
                } else {
                    tracing::warn!(sections = ?restart_required, "configuration reloaded; changes to these sections take effect after a restart");
                }
                ReloadReport {
                    at: std::time::SystemTime::now(),
                    ok: true,
                    error: None,
                    restart_required,
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "configuration reload failed; the previous configuration keeps serving");
                ReloadReport::failed(error)
            }
        };
        self.state.live.record(report.clone());
        report
    }

    async fn try_reload(&mut self) -> Result<Vec<&'static str>, String> {
        let Some(source) = &self.source else {
            return Err("the router was started without a config file".into());
        };
        let loaded = crate::config::load(
            Some(&source.file),
            &source.overrides,
            &*source.env,
            crate::config::Strictness::Serve,
        )
        .map_err(|e| e.to_string())?;
        for w in &loaded.warnings {
            tracing::warn!("{}: {w} (ignored)", source.file.display());
        }
        let old = self.state.live.current.load_full();
        let snapshot = Snapshot::build(loaded.config, Some(&old), self.cx)?;
        if snapshot.config.logging.level != old.config.logging.level {
            crate::telemetry::set_log_level(&snapshot.config.logging)?;
        }
        let added: Vec<Arc<Backend>> = snapshot
            .backends
            .iter()
            .filter(|b| !old.backends.iter().any(|o| Arc::ptr_eq(o, b)))
            .cloned()
            .collect();
        let client = &self.state.client;
        let oauth_waits = oauth_all(client, &added).await;
        tokio::join!(
            refresh_models(client, &snapshot),
            probe_all(client, &added, &snapshot.config)
        );
        let restart = crate::state::restart_required(&old.config, &snapshot.config);
        self.state.live.current.store(Arc::new(snapshot));
        self.sync_oauth(oauth_waits);
        // Answers cached under the old configuration (prompts, backends) may differ now.
        if let Some(cache) = &self.state.cache {
            cache.clear();
        }
        self.sync_probes();
        Ok(restart)
    }

    /// Starts a probe loop for every probed backend without one and stops the loops of
    /// backends no longer configured.
    fn sync_probes(&mut self) {
        let snapshot = self.state.live.current.load_full();
        let probed = snapshot.config.health_checks.enabled;
        let wanted: Vec<&Arc<Backend>> = snapshot
            .backends
            .iter()
            .filter(|b| probed && b.config.kind != crate::config::BackendType::Mock)
            .collect();
        let (client, live, shutdown) = (&self.state.client, &self.state.live, &self.shutdown);
        sync_tasks(
            &mut self.probes,
            &wanted,
            // Nothing will probe it again: a kept backend must not stay out of rotation.
            |b| b.state.health.reset(),
            |b| {
                tokio::spawn(probe_loop(
                    client.clone(),
                    Arc::clone(live),
                    Arc::clone(b),
                    shutdown.clone(),
                ))
            },
        );
    }

    fn stop_probes(&mut self) {
        for (_, task) in self.probes.drain(..).chain(self.oauth.drain(..)) {
            task.abort();
        }
    }

    /// Starts a token loop for each OAuth backend without one (`waits`: backends whose
    /// token was just set, and when to look again) and stops those of removed backends.
    fn sync_oauth(&mut self, waits: Vec<(Arc<Backend>, Duration)>) {
        let snapshot = self.state.live.current.load_full();
        let wanted: Vec<&Arc<Backend>> = snapshot
            .backends
            .iter()
            .filter(|b| b.config.oauth.is_some())
            .collect();
        let (client, shutdown) = (&self.state.client, &self.shutdown);
        sync_tasks(
            &mut self.oauth,
            &wanted,
            |_| {},
            |b| {
                let first = waits
                    .iter()
                    .find(|(w, _)| Arc::ptr_eq(w, b))
                    .map_or(Duration::ZERO, |(_, d)| *d);
                tokio::spawn(oauth_loop(
                    client.clone(),
                    Arc::clone(b),
                    shutdown.clone(),
                    first,
                ))
            },
        );
    }
}

/// Keeps one task per backend of `wanted` in `tasks`: stops (and passes to `removed`) the
/// tasks of backends no longer wanted, starts `spawn` for wanted ones without a task.
fn sync_tasks(
    tasks: &mut Vec<(Arc<Backend>, JoinHandle<()>)>,
    wanted: &[&Arc<Backend>],
    removed: impl Fn(&Backend),
    spawn: impl Fn(&Arc<Backend>) -> JoinHandle<()>,
) {
    tasks.retain(|(b, task)| {
        let keep = wanted.iter().any(|w| Arc::ptr_eq(w, b));
        if !keep {
            task.abort();
            removed(b);
        }
        keep
    });
    for b in wanted {
        if !tasks.iter().any(|(t, _)| Arc::ptr_eq(t, b)) {
            tasks.push((Arc::clone(b), spawn(b)));
        }
    }
}

/// A router that is serving. Drop it or call [`RunningRouter::shutdown`] to stop.
pub struct RunningRouter {
    bound: Vec<BoundAddr>,
    unix_paths: Vec<PathBuf>,
    shutdown_tx: watch::Sender<bool>,
    finished: Vec<oneshot::Receiver<()>>,
    aborts: Vec<oneshot::Sender<()>>,
    background: Vec<JoinHandle<()>>,
    grace: Duration,
    /// Where usage statistics are saved at shutdown.
    stats_path: Option<PathBuf>,
    state: AppState,
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
    /// went; without a [`RouterBuilder::reload_from`] source, it fails and changes nothing.
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

    /// Stops accepting connections and waits for in-flight requests (streams included)
    /// for up to `server.shutdown_grace`. Returns whether everything finished in time.
    pub async fn shutdown(self) -> bool {
        self.shutdown_with(std::future::ready(())).await
    }

    /// Serves until `signal` completes, then shuts down as [`RunningRouter::shutdown`].
    pub async fn shutdown_with(mut self, signal: impl Future<Output = ()>) -> bool {
        signal.await;
        tracing::info!(grace = ?self.grace, "shutting down: no new connections; draining in-flight requests");
        let _ = self.shutdown_tx.send(true);
        for task in self.background.drain(..) {
            task.abort();
        }
        let finished = std::mem::take(&mut self.finished);
        let drained = tokio::time::timeout(self.grace, futures_util::future::join_all(finished))
            .await
            .is_ok();
        if !drained {
            tracing::warn!(grace = ?self.grace, "shutdown grace time passed with requests still in flight");
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
