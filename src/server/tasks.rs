//! The router's background work: model discovery, health probes, OAuth token refreshes
//! and usage statistics snapshots.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::backend::{discovery, Backend, HttpClient};
use crate::config::{Config, HealthChecksConfig};
use crate::metrics::Metrics;
use crate::state::{Live, Snapshot};

/// Keeps an OAuth backend's token fresh while it is configured.
pub(super) async fn oauth_loop(
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

/// How often stored responses past `responses.retention` are deleted.
const RETENTION_SWEEP: Duration = Duration::from_secs(3600);

/// Deletes stored responses older than `responses.retention` and files older than
/// `files.retention_days`, at start and then hourly
/// (the retention is read from the serving snapshot, so a reload changes it). Nothing
/// happens until the store exists: a router that never stored anything creates no file.
pub(super) fn spawn_retention(
    state: crate::http::AppState,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let files_retention = state.live.current.load().config.files.retention_days;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let before =
                (files_retention > 0).then(|| now.saturating_sub(files_retention * 86_400));
            match state.files.sweep(before, now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired files and hosted images deleted"),
                Err(e) => tracing::warn!(error = %e, "sweeping files failed"),
            }
            if state.store.path().exists() {
                let retention = state.live.current.load().config.responses.retention;
                let before = std::time::SystemTime::now()
                    .checked_sub(retention)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                match state.store.sweep_responses(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        deleted = n,
                        "stored responses past responses.retention deleted"
                    ),
                    Err(e) => tracing::warn!(error = %e, "sweeping stored responses failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RETENTION_SWEEP) => {}
                _ = shutdown.changed() => break,
            }
        }
    })
}

/// Writes the usage statistics snapshot (`admin.stats.persistence`).
pub(super) fn save_stats(metrics: &Metrics, path: &std::path::Path) {
    if let Some(stats) = &metrics.stats {
        if let Err(e) = stats.save(path) {
            tracing::warn!("cannot write the usage statistics snapshot: {e}");
        }
    }
}

/// Asks every discovering backend for its models (concurrently), then rebuilds the
/// snapshot's model index.
pub(super) async fn refresh_models(client: &HttpClient, snapshot: &Snapshot) {
    let jobs = snapshot
        .backends
        .iter()
        .filter(|b| b.discovers_models())
        .map(|b| discover(client, b, &snapshot.config));
    futures_util::future::join_all(jobs).await;
    snapshot.rebuild_index();
}

/// Asks one backend for its models and records the outcome (a failure keeps its last
/// known models).
async fn discover(client: &HttpClient, b: &Backend, config: &Config) {
    let t = &config.timeouts;
    let timeout = t.connection + t.standard.first_byte;
    match discovery::fetch_models(client, b, timeout).await {
        Ok(models) => {
            if b.discovery_failed().is_some() {
                tracing::info!(backend = b.name(), "model discovery works again");
            }
            b.set_discovery(None);
            if **b.discovered.load() != models {
                tracing::info!(backend = b.name(), models = ?models, "discovered models");
                b.discovered.store(Arc::new(models));
            }
        }
        Err(e) => {
            if already_said(b.discovery_failed().as_ref(), &e) {
                tracing::debug!("model discovery: {e}; keeping its last known models");
            } else {
                tracing::warn!("model discovery: {e}; keeping its last known models");
            }
            b.set_discovery(Some(e));
        }
    }
}

/// Whether a discovery failure was logged already: it is said once per outage (and when
/// its reason changes), not every round.
fn already_said(
    before: Option<&discovery::DiscoveryError>,
    now: &discovery::DiscoveryError,
) -> bool {
    before.is_some_and(|b| b.to_string() == now.to_string())
}

/// Sets the tokens of the given OAuth backends (before they serve); each one's wait
/// before its next look.
pub(super) async fn oauth_all(
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
pub(super) async fn probe_all(client: &HttpClient, backends: &[Arc<Backend>], config: &Config) {
    if !config.health_checks.enabled {
        return;
    }
    let jobs = backends
        .iter()
        .map(|b| probe_once(client, &config.health_checks, b));
    futures_util::future::join_all(jobs).await;
}

/// Probes one backend and applies the result. A backend whose probe succeeds again after
/// failing gets its circuit's half-open trial at once (not after the breaker's timeout).
async fn probe_once(
    client: &HttpClient,
    cfg: &HealthChecksConfig,
    b: &Backend,
) -> crate::resilience::Verdict {
    let (probe, url, path) = crate::backend::probe::probe(client, b, cfg).await;
    let verdict = b.state.health.on_probe(
        probe.result,
        probe.for_clients(&url, &path),
        tokio::time::Instant::now(),
        cfg,
    );
    if verdict.recovered {
        b.state.breaker.probe_recovered();
    }
    use crate::resilience::HealthStatus;
    match (verdict.changed, probe.detail) {
        (None, _) => {}
        (Some(HealthStatus::Healthy), None) => {
            tracing::info!(backend = b.name(), "backend is healthy")
        }
        (Some(HealthStatus::Healthy), Some(detail)) => tracing::warn!(
            backend = b.name(),
            "backend takes traffic, but its health probe is not answered: {detail}"
        ),
        (Some(s), detail) => tracing::warn!(
            backend = b.name(),
            status = s.as_str(),
            "backend is not taking traffic: {}",
            detail.as_deref().unwrap_or("its health probe fails")
        ),
    }
    verdict
}

/// Probes a backend while it is configured, at the interval its state calls for, with
/// the health-check settings of the snapshot serving at each probe.
pub(super) async fn probe_loop(
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
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        let verdict = probe_once(&client, &cfg(&live), &backend).await;
        wait = verdict.next;
        // Back up after its model discovery failed: its models are known at once, not
        // at the next discovery round.
        let healthy = verdict.changed == Some(crate::resilience::HealthStatus::Healthy);
        if healthy && backend.discovers_models() && backend.discovery_failed().is_some() {
            let snapshot = live.current.load_full();
            discover(&client, &backend, &snapshot.config).await;
            snapshot.rebuild_index();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(detail: &str) -> discovery::DiscoveryError {
        discovery::DiscoveryError {
            backend: "ollama".into(),
            unreachable: true,
            detail: detail.into(),
        }
    }

    #[test]
    fn a_discovery_failure_is_said_once_per_outage_and_reason() {
        let refused = failure("GET http://localhost:11434/api/tags failed: cannot connect");
        assert!(!already_said(None, &refused), "the first failure is said");
        assert!(
            already_said(Some(&refused), &refused),
            "the same again is not"
        );
        let other = failure("GET http://localhost:11434/api/tags answered 500");
        assert!(
            !already_said(Some(&refused), &other),
            "a new reason is said"
        );
    }
}
