//! What a request is served with: one [`Snapshot`] of the configuration and everything
//! built from it (backends, model index, API keys, rate limiters), behind one `ArcSwap`.
//! A hot reload builds a whole new snapshot beside the serving one — keeping the parts
//! whose configuration did not change, so health, circuits and buckets survive — and swaps
//! it in at once; a request holds the snapshot it started with until it ends.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

use crate::auth::Keys;
use crate::backend::Backend;
use crate::config::Config;
use crate::ratelimit::Limits;
use crate::routing::ModelIndex;

/// The configuration and what was built from it; immutable but for the model index,
/// which model discovery refreshes.
pub struct Snapshot {
    /// The configuration.
    pub config: Arc<Config>,
    /// Backends in config order (a route's targets index into this).
    pub backends: Arc<[Arc<Backend>]>,
    /// Model name → backends; rebuilt when discovered model lists change.
    pub index: ArcSwap<ModelIndex>,
    /// API keys (`None`: no `api_keys` section, no authentication).
    pub keys: Option<Arc<Keys>>,
    /// Rate limits (`None`: `rate_limiting` off).
    pub limits: Option<Arc<Limits>>,
}

/// What every snapshot of one router shares: the clock base of its limiters and its
/// worker count.
#[derive(Clone, Copy)]
pub struct BuildContext {
    /// Time zero of the rate limiters.
    pub epoch: Instant,
    /// Worker threads (per-worker Redis connections).
    pub workers: usize,
}

impl Snapshot {
    /// Builds a snapshot of `config`, reusing from `previous` every backend whose
    /// configuration is unchanged (keeping its health, circuit, latency and discovered
    /// models) and the keys and limiters when their sections are unchanged.
    pub fn build(
        mut config: Config,
        previous: Option<&Snapshot>,
        cx: BuildContext,
    ) -> Result<Snapshot, String> {
        // A config built in memory (not by `config::load`) reads its prompt files from the
        // working directory.
        let prompts = &mut config.global_prompts;
        if prompts.enabled && !prompts.loaded {
            let problems = prompts.load_files(std::path::Path::new("."));
            if let Some(p) = problems.first() {
                return Err(format!("{p}"));
            }
        }
        let same_breakers =
            previous.is_some_and(|p| p.config.circuit_breaker == config.circuit_breaker);
        let backends = config
            .backends
            .iter()
            .map(|c| {
                let kept = previous
                    .filter(|_| same_breakers)
                    .and_then(|p| p.backends.iter().find(|b| b.config == *c));
                match kept {
                    Some(b) => Ok(Arc::clone(b)),
                    None => Backend::new(c.clone(), &config.circuit_breaker).map(Arc::new),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let same_backend_names = |p: &Snapshot| {
            p.backends.len() == backends.len()
                && p.backends
                    .iter()
                    .zip(&backends)
                    .all(|(a, b)| a.name() == b.name())
        };
        let limits = match previous {
            Some(p) if p.config.rate_limiting == config.rate_limiting && same_backend_names(p) => {
                p.limits.clone()
            }
            _ => Limits::from_config(&config.rate_limiting, cx.epoch, cx.workers)?.map(Arc::new),
        };
        // A key's own rate limit lives with the shared buckets when those are in Redis.
        let local_key_limits = !limits.as_ref().is_some_and(|l| l.shared());
        let keys = match previous {
            Some(p)
                if p.config.api_keys == config.api_keys
                    && p.config.rate_limiting.storage == config.rate_limiting.storage
                    && p.config.rate_limiting.enabled == config.rate_limiting.enabled =>
            {
                p.keys.clone()
            }
            _ => Keys::from_config(&config.api_keys, cx.epoch, local_key_limits).map(Arc::new),
        };
        let snapshot = Snapshot {
            backends: backends.into(),
            index: ArcSwap::from_pointee(ModelIndex::default()),
            keys,
            limits,
            config: Arc::new(config),
        };
        snapshot.rebuild_index();
        Ok(snapshot)
    }

    /// Rebuilds the model index from the backends' configured and discovered models and
    /// the top-level aliases.
    pub fn rebuild_index(&self) {
        let index = ModelIndex::build(&self.backends, &self.config.model_configs);
        let (index, missing) = index.with_aliases(&self.config.model_aliases, &self.backends);
        if !missing.is_empty() {
            tracing::warn!(aliases = ?missing, "model_aliases whose target no backend serves (yet)");
        }
        self.index.store(Arc::new(index));
    }
}

/// How the last reload ended, for the log and `GET /admin/config`.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// When it was tried.
    pub at: SystemTime,
    /// Whether the new configuration is serving.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
    /// Changed sections that only take effect after a restart.
    pub restart_required: Vec<&'static str>,
}

impl ReloadReport {
    /// A reload that changed nothing, and why.
    pub fn failed(error: impl Into<String>) -> ReloadReport {
        ReloadReport {
            at: SystemTime::now(),
            ok: false,
            error: Some(error.into()),
            restart_required: Vec::new(),
        }
    }
}

/// A request to reload, answered with its report.
pub type ReloadRequest = oneshot::Sender<ReloadReport>;

/// The serving snapshot and the way to ask for a reload, shared by every worker.
pub struct Live {
    /// The snapshot new requests are served with.
    pub current: ArcSwap<Snapshot>,
    /// Asks the router's control task to reload (`None`: not started from a file).
    reload: Option<mpsc::Sender<ReloadRequest>>,
    /// The last reload's outcome (`None`: none yet).
    pub last_reload: Mutex<Option<ReloadReport>>,
    /// The file reloads read (`None`: the router was given a config, not a file).
    pub file: Option<std::path::PathBuf>,
}

impl Live {
    /// Serving `first`; reloads go to `reload` and read `file`.
    pub fn new(
        first: Snapshot,
        reload: Option<mpsc::Sender<ReloadRequest>>,
        file: Option<std::path::PathBuf>,
    ) -> Live {
        Live {
            current: ArcSwap::from_pointee(first),
            reload,
            last_reload: Mutex::new(None),
            file,
        }
    }

    /// Reloads the config file now and says how it went.
    pub async fn reload(&self) -> ReloadReport {
        let failed = ReloadReport::failed;
        let Some(tx) = &self.reload else {
            return failed(
                "the router was started without a config file; there is nothing to reload",
            );
        };
        let (reply, answer) = oneshot::channel();
        if tx.send(reply).await.is_err() {
            return failed("the router is shutting down");
        }
        answer
            .await
            .unwrap_or_else(|_| failed("the reload was interrupted (shutting down)"))
    }

    /// Records a reload's outcome.
    pub fn record(&self, report: ReloadReport) {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(report);
    }

    /// The last reload's outcome.
    pub fn last(&self) -> Option<ReloadReport> {
        self.last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Sections a reload cannot change: listeners, workers and pools, the metrics route, the
/// log format, the connect timeout, the stats ring, the cache, the span exporter and the
/// embedded store are set up once at start. Shown by `/admin/config/full`.
pub const RESTART_ONLY: [&str; 12] = [
    "server.bind_address",
    "server",
    "metrics",
    "logging.format",
    "timeouts.connection",
    "admin.stats",
    "cache",
    "tracing.otlp_endpoint",
    "store",
    "files",
    "webui",
    "acp",
];

/// Which of [`RESTART_ONLY`] changed between `old` and `new`.
pub fn restart_required(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    let changed = [
        o.bind_address != n.bind_address,
        o.workers != n.workers
            || o.connection_pool_size != n.connection_pool_size
            || o.socket_mode != n.socket_mode
            || o.max_concurrent_requests != n.max_concurrent_requests
            || o.queue_timeout != n.queue_timeout
            || o.header_read_timeout != n.header_read_timeout
            || o.body_read_timeout != n.body_read_timeout
            || o.keep_alive_timeout != n.keep_alive_timeout
            || o.client_write_timeout != n.client_write_timeout
            || o.max_connections != n.max_connections
            || o.shutdown_grace != n.shutdown_grace,
        old.metrics != new.metrics,
        old.logging.format != new.logging.format,
        old.timeouts.connection != new.timeouts.connection,
        old.admin.stats != new.admin.stats,
        old.cache != new.cache,
        old.tracing.otlp_endpoint != new.tracing.otlp_endpoint
            || old.tracing.service_name != new.tracing.service_name,
        old.store != new.store,
        old.files.storage_path != new.files.storage_path
            || old.files.metadata_storage != new.files.metadata_storage,
        // Turning the UI off applies at once; its routes are made at start.
        old.webui.path_prefix != new.webui.path_prefix || (new.webui.enabled && !old.webui.enabled),
        // The agent reads its section once, when it starts.
        old.acp != new.acp,
    ];
    RESTART_ONLY
        .iter()
        .zip(changed)
        .filter_map(|(name, c)| c.then_some(*name))
        .collect()
}
