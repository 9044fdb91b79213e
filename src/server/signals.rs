//! The load-signal loops (`routing.load_signals`): one per self-hosted backend that a
//! load-aware strategy (`BoundedLoadHash`, `CacheAware`) routes to, reading the server's
//! own load on an interval (see [`crate::backend::load`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use tokio::sync::watch;

use crate::backend::load::{parse_metrics, parse_slots, Reading};
use crate::backend::{Backend, HttpClient};
use crate::config::{BackendType, Config};
use crate::state::Live;

/// Most bytes read of a `/metrics` or `/slots` answer (vLLM's metrics with histograms are
/// around 100 KB).
const MAX_BODY: usize = 4 << 20;

/// After a server showed it has no load metrics, how long before asking again.
const ABSENT_RETRY: Duration = Duration::from_secs(60);

/// Whether `backend` gets a load-signal loop under `config`: the signals are on, a
/// load-aware strategy is in use (the default one or a model's own), and the backend is a
/// self-hosted OpenAI-compatible server (vLLM, llama.cpp, or a `generic` one such as
/// SGLang).
pub(super) fn wanted(config: &Config, backend: &Backend) -> bool {
    let load_aware = config.selection_strategy.weighs_load()
        || config
            .model_configs
            .iter()
            .any(|m| m.selection_strategy.is_some_and(|s| s.weighs_load()));
    config.routing.load_signals.enabled
        && load_aware
        && matches!(
            backend.config.kind,
            BackendType::Vllm | BackendType::Llamacpp | BackendType::Generic
        )
        && backend.adapter.http().is_some()
}

/// What one scrape found.
#[derive(Debug, PartialEq)]
enum Scrape {
    Read(Reading),
    /// The server has no load metrics (404, 501, or none of the known gauges).
    Absent(String),
    /// It could not be asked (down, timed out).
    Failed(String),
}

/// Reads `backend`'s load while it is configured, at the interval of the snapshot serving.
pub(super) async fn signal_loop(
    client: HttpClient,
    live: Arc<Live>,
    backend: Arc<Backend>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wait = Duration::ZERO;
    let mut said_absent = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        let interval = live.current.load().config.routing.load_signals.interval;
        wait = interval;
        match scrape(&client, &backend, interval).await {
            Scrape::Read(r) => {
                // Current for three intervals: one slow scrape does not drop it.
                backend.state.server_load.record(r, interval * 3);
                said_absent = false;
            }
            Scrape::Absent(why) => {
                if !said_absent {
                    tracing::info!(
                        backend = backend.name(),
                        "no load metrics from the server ({why}); routing weighs the router's own requests in flight to it"
                    );
                    said_absent = true;
                }
                wait = ABSENT_RETRY.max(interval);
            }
            Scrape::Failed(why) => {
                tracing::debug!(backend = backend.name(), "load metrics not read: {why}")
            }
        }
    }
}

/// One reading: `/metrics`, else (llama.cpp without `--metrics`) `/slots`.
async fn scrape(client: &HttpClient, backend: &Backend, timeout: Duration) -> Scrape {
    let metrics = match get(client, backend, "/metrics", timeout).await {
        Ok((StatusCode::OK, body)) => match parse_metrics(&String::from_utf8_lossy(&body)) {
            Some(r) => return Scrape::Read(r),
            None => Scrape::Absent(
                "/metrics has none of the vLLM, SGLang or llama.cpp load gauges".into(),
            ),
        },
        Ok((status, _)) if status.is_client_error() || status == StatusCode::NOT_IMPLEMENTED => {
            Scrape::Absent(format!("GET /metrics answered {status}"))
        }
        Ok((status, _)) => return Scrape::Failed(format!("GET /metrics answered {status}")),
        Err(e) => return Scrape::Failed(e),
    };
    if backend.config.kind != BackendType::Llamacpp {
        return metrics;
    }
    match get(client, backend, "/slots", timeout).await {
        Ok((StatusCode::OK, body)) => match parse_slots(&body) {
            Some(r) => Scrape::Read(r),
            None => metrics,
        },
        Ok(_) => metrics,
        Err(e) => Scrape::Failed(e),
    }
}

/// `GET path` on the backend's server, with its credentials: status and body.
async fn get(
    client: &HttpClient,
    backend: &Backend,
    path: &str,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), String> {
    let Some(api) = backend.adapter.http() else {
        return Err("not an HTTP backend".into());
    };
    let request = api.probe_request(Some(path));
    let work = async {
        let resp = client
            .request(request)
            .await
            .map_err(|e| crate::http::describe_client_error(&e))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading {path}: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout.max(Duration::from_secs(1)), work)
        .await
        .unwrap_or_else(|_| Err(format!("GET {path} timed out")))
}
