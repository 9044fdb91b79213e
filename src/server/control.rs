//! The control task: owns the probe and token loops and applies configuration reloads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::config::Config;
use crate::http::AppState;
use crate::state::{BuildContext, ReloadReport, ReloadRequest, Snapshot};

use super::tasks::{oauth_all, oauth_loop, probe_all, probe_loop, refresh_models};
use super::ReloadSource;

/// A digest of the contents of the files `config` was read from (the config file, and the
/// key, metadata and prompt files it names); unreadable files count as empty.
pub(super) fn fingerprint(source: Option<&ReloadSource>, config: &Config) -> u64 {
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
pub(super) struct Control {
    pub(super) state: AppState,
    pub(super) cx: BuildContext,
    pub(super) source: Option<ReloadSource>,
    /// The running probe loop of each probed backend.
    pub(super) probes: Vec<(Arc<Backend>, JoinHandle<()>)>,
    /// The token refresh loop of each OAuth backend.
    pub(super) oauth: Vec<(Arc<Backend>, JoinHandle<()>)>,
    /// The load-signal loop of each backend a load-aware strategy routes to.
    pub(super) signals: Vec<(Arc<Backend>, JoinHandle<()>)>,
    pub(super) shutdown: watch::Receiver<bool>,
}

impl Control {
    pub(super) async fn run(
        mut self,
        requests: Option<mpsc::Receiver<ReloadRequest>>,
        mut seen: u64,
        oauth_waits: Vec<(Arc<Backend>, Duration)>,
    ) {
        self.sync_probes();
        self.sync_signals();
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
            tracing::warn!("{}: {w}", source.file.display());
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
        self.sync_signals();
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
        let all = self.probes.drain(..).chain(self.oauth.drain(..));
        for (_, task) in all.chain(self.signals.drain(..)) {
            task.abort();
        }
    }

    /// Starts a load-signal loop for every backend that wants one (see
    /// [`super::signals::wanted`]) and stops the others.
    fn sync_signals(&mut self) {
        let snapshot = self.state.live.current.load_full();
        let wanted: Vec<&Arc<Backend>> = snapshot
            .backends
            .iter()
            .filter(|b| super::signals::wanted(&snapshot.config, b))
            .collect();
        let (client, live, shutdown) = (&self.state.client, &self.state.live, &self.shutdown);
        sync_tasks(
            &mut self.signals,
            &wanted,
            // Its last reading must not steer routing any longer.
            |b| b.state.server_load.clear(),
            |b| {
                tokio::spawn(super::signals::signal_loop(
                    client.clone(),
                    Arc::clone(live),
                    Arc::clone(b),
                    shutdown.clone(),
                ))
            },
        );
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
