//! Running the router: build backends, discover models, bind every address (TCP and Unix
//! sockets), serve until told to stop, then drain in-flight requests within the grace time.
//! This is the library API an embedding program uses; `continuum serve` is a thin caller.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{build_client, discovery, Backend};
use crate::config::{BindAddr, Config};
use crate::http::{app, AppState};
use crate::routing::ModelIndex;

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
        }
    }
}

/// Settings for starting a router beyond its configuration.
pub struct RouterBuilder {
    config: Config,
    discovery_interval: Duration,
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

    /// Prepares backends, discovers models, binds every address and starts serving.
    pub async fn start(self) -> Result<RunningRouter, StartError> {
        let config = self.config;
        let backends = config
            .backends
            .iter()
            .map(|c| Backend::new(c.clone()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Backend)?;
        let client = build_client(
            config.server.connection_pool_size,
            config.timeouts.connection,
        );
        let state = Arc::new(AppState {
            index: ArcSwap::from_pointee(ModelIndex::default()),
            backends,
            client,
            config,
        });
        refresh_models(&state).await;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        let mut unix_paths = Vec::new();
        for addr in &state.config.server.bind_address {
            match addr {
                BindAddr::Tcp(a) => {
                    let l = TcpListener::bind(a).await.map_err(|e| StartError::Bind {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    })?;
                    let local = l.local_addr().map_err(|e| StartError::Bind {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    })?;
                    bound.push(BoundAddr::Tcp(local));
                    listeners.push(Listener::Tcp(l));
                }
                BindAddr::Unix(path) => {
                    let l = bind_unix(path, state.config.server.socket_mode)?;
                    bound.push(BoundAddr::Unix(path.clone()));
                    unix_paths.push(path.clone());
                    listeners.push(Listener::Unix(l));
                }
            }
        }

        let router = app(Arc::clone(&state));
        let mut servers = Vec::new();
        for listener in listeners {
            let mut rx = shutdown_rx.clone();
            let signal = async move {
                let _ = rx.changed().await;
            };
            let router = router.clone();
            servers.push(match listener {
                Listener::Tcp(l) => {
                    let l = l.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    tokio::spawn(async move {
                        let _ = axum::serve(l, router).with_graceful_shutdown(signal).await;
                    })
                }
                Listener::Unix(l) => tokio::spawn(async move {
                    let _ = axum::serve(l, router).with_graceful_shutdown(signal).await;
                }),
            });
        }
        let discovery = state
            .backends
            .iter()
            .any(|b| b.discovers_models())
            .then(|| {
                let state = Arc::clone(&state);
                let mut rx = shutdown_rx.clone();
                let every = self.discovery_interval;
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(every) => refresh_models(&state).await,
                            _ = rx.changed() => break,
                        }
                    }
                })
            });
        for a in &bound {
            tracing::info!("listening on {a}");
        }
        Ok(RunningRouter {
            bound,
            unix_paths,
            shutdown_tx,
            servers,
            discovery,
            grace: state.config.server.shutdown_grace,
            state,
        })
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

fn bind_unix(path: &PathBuf, mode: Option<u32>) -> Result<UnixListener, StartError> {
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
        // A socket file left by an earlier run: nothing listens on it any more if a connect fails.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(fail("another process is listening on this socket".into()));
        }
        std::fs::remove_file(path)
            .map_err(|e| fail(format!("cannot remove the stale socket file: {e}")))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(format!("cannot set socket_mode {mode:o}: {e}")))?;
    }
    Ok(listener)
}

/// Asks every discovering backend for its models (concurrently) and swaps in a new index
/// when something changed.
async fn refresh_models(state: &AppState) {
    let timeout = state.config.timeouts.connection + state.config.timeouts.standard.first_byte;
    let jobs = state
        .backends
        .iter()
        .filter(|b| b.discovers_models())
        .map(|b| async move {
            match discovery::fetch_models(&state.client, b, timeout).await {
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
    state
        .index
        .store(Arc::new(ModelIndex::build(&state.backends)));
}

/// A router that is serving. Drop it or call [`RunningRouter::shutdown`] to stop.
pub struct RunningRouter {
    bound: Vec<BoundAddr>,
    unix_paths: Vec<PathBuf>,
    shutdown_tx: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    discovery: Option<JoinHandle<()>>,
    grace: Duration,
    state: Arc<AppState>,
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

    /// The axum router serving this instance, to mount inside another axum app.
    pub fn app(&self) -> axum::Router {
        app(Arc::clone(&self.state))
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
        if let Some(d) = self.discovery.take() {
            d.abort();
        }
        let servers = std::mem::take(&mut self.servers);
        let drained = tokio::time::timeout(self.grace, futures_util::future::join_all(servers))
            .await
            .is_ok();
        if !drained {
            tracing::warn!(grace = ?self.grace, "shutdown grace time passed with requests still in flight");
        }
        drained
    }
}

impl Drop for RunningRouter {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for s in &self.servers {
            s.abort();
        }
        if let Some(d) = &self.discovery {
            d.abort();
        }
        for p in &self.unix_paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
