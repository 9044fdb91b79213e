//! Health probes per backend type: self-hosted OpenAI-compatible servers are asked for
//! `health_checks.endpoint` (default `/v1/models`; Ollama's default is its `/api/tags`);
//! OpenAI itself always for `/v1/models` (it has no `/health`); Anthropic at its
//! `/v1/models`; `mock` is always up.

use http::StatusCode;
use http_body_util::BodyExt;

use super::{Adapter, Backend, HttpClient};
use crate::config::{BackendType, HealthChecksConfig};
use crate::resilience::ProbeResult;

/// Probes `backend` once.
pub async fn probe(
    client: &HttpClient,
    backend: &Backend,
    cfg: &HealthChecksConfig,
) -> ProbeResult {
    let request = match &backend.adapter {
        Adapter::Anthropic(a) => a.models_request(),
        Adapter::Gemini(g) => g.models_request(),
        Adapter::Mock(_) => return ProbeResult::Up,
        adapter => {
            let Some(api) = adapter.http() else {
                return ProbeResult::Up;
            };
            let path = match (backend.config.kind, cfg.endpoint.as_deref()) {
                (BackendType::Openai, _) => None,
                (BackendType::Ollama, None) => Some("/api/tags"),
                (_, endpoint) => endpoint,
            };
            api.probe_request(path)
        }
    };
    let work = async {
        let resp = client.request(request).await.ok()?;
        let status = resp.status();
        // Read (and discard) the body so the connection can be reused.
        let _ = resp.into_body().collect().await;
        Some(status)
    };
    match tokio::time::timeout(cfg.timeout, work).await {
        Ok(Some(StatusCode::SERVICE_UNAVAILABLE)) => ProbeResult::Loading,
        Ok(Some(s)) if s.is_server_error() => ProbeResult::Down,
        // Any other answer means the server is up (a 404 on an unknown path included).
        Ok(Some(_)) => ProbeResult::Up,
        Ok(None) | Err(_) => ProbeResult::Down,
    }
}
