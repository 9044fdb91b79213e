//! Health probes per backend type: self-hosted OpenAI-compatible servers are asked for
//! `health_checks.endpoint` (default `/v1/models`; Ollama's default is its `/api/tags`);
//! OpenAI itself always for `/v1/models` (it has no `/health`); Anthropic at its
//! `/v1/models`; `mock` is always up.
//!
//! A 404 on a path the backend's type is known to serve (Ollama's `/api/tags`, the model
//! list of OpenAI-compatible servers, Anthropic and Gemini) means the url points at the
//! wrong place: the backend is down, with a hint. A 404 on a configured
//! `health_checks.endpoint`, or on `/v1/models` of a `generic` or `tei` server (which may
//! not have one), only means the server lacks that path: it is up, with a warning.

use http::StatusCode;
use http_body_util::BodyExt;

use super::{Adapter, Backend, HttpClient};
use crate::config::{BackendType, HealthChecksConfig};
use crate::resilience::ProbeResult;

/// What one probe found, and in words what went wrong (or looks wrong) when anything did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Up, loading or down.
    pub result: ProbeResult,
    /// For the log: `GET URL answered 404 Not Found: …`, `GET URL failed: …`.
    pub detail: Option<String>,
}

impl Probe {
    /// `detail` as clients may see it (in a 503): the probed path instead of the URL, as
    /// no client error shows a backend's address.
    pub fn for_clients(&self, url: &str, path: &str) -> Option<String> {
        self.detail.as_ref().map(|d| d.replace(url, path))
    }
}

/// Probes `backend` once; also returns the probed URL (as shown) and path, for
/// [`Probe::for_clients`].
pub async fn probe(
    client: &HttpClient,
    backend: &Backend,
    cfg: &HealthChecksConfig,
) -> (Probe, String, String) {
    let kind = backend.config.kind;
    let (request, strict) = match &backend.adapter {
        Adapter::Anthropic(a) => (a.models_request(), true),
        Adapter::Gemini(g) => (g.models_request(), true),
        Adapter::Mock(_) => return (up(), String::new(), String::new()),
        adapter => {
            let Some(api) = adapter.http() else {
                return (up(), String::new(), String::new());
            };
            // (path, whether a 404 there means a wrong url)
            let (path, strict) = match (kind, cfg.endpoint.as_deref()) {
                (BackendType::Openai, _) => (None, true),
                (BackendType::Ollama, None) => (Some("/api/tags"), true),
                (BackendType::Generic | BackendType::Tei, None) => (None, false),
                (_, None) => (None, true),
                (_, endpoint) => (endpoint, false),
            };
            (api.probe_request(path), strict)
        }
    };
    let url = shown_url(request.uri());
    let path = request.uri().path().to_string();
    let work = async {
        let resp = client
            .request(request)
            .await
            .map_err(|e| crate::http::describe_client_error(&e))?;
        let status = resp.status();
        // Read (and discard) the body so the connection can be reused.
        let _ = resp.into_body().collect().await;
        Ok::<_, String>(status)
    };
    let down = |detail: String| Probe {
        result: ProbeResult::Down,
        detail: Some(detail),
    };
    let probe = match tokio::time::timeout(cfg.timeout, work).await {
        Ok(Ok(StatusCode::SERVICE_UNAVAILABLE)) => Probe {
            result: ProbeResult::Loading,
            detail: Some(format!("GET {url} answered 503 Service Unavailable")),
        },
        Ok(Ok(StatusCode::NOT_FOUND)) if strict => down(format!(
            "GET {url} answered 404 Not Found, so backend '{}' is probably not at this url: {}",
            backend.name(),
            url_hint(kind)
        )),
        Ok(Ok(StatusCode::NOT_FOUND)) => Probe {
            result: ProbeResult::Up,
            detail: Some(format!(
                "GET {url} answered 404 Not Found; set health_checks.endpoint to a path backend '{}' serves",
                backend.name()
            )),
        },
        Ok(Ok(s)) if s.is_server_error() => down(format!("GET {url} answered {s}")),
        Ok(Ok(_)) => up(),
        Ok(Err(e)) => down(format!("GET {url} failed: {e}")),
        Err(_) => down(format!("GET {url} timed out after {:?}", cfg.timeout)),
    };
    (probe, url, path)
}

fn up() -> Probe {
    Probe {
        result: ProbeResult::Up,
        detail: None,
    }
}

/// The probed URL as logs and errors show it: no credentials, no query string.
fn shown_url(uri: &http::Uri) -> String {
    let mut text = uri.to_string();
    if let Some(q) = text.find('?') {
        text.truncate(q);
    }
    crate::config::types::redact_url(&text)
}

/// What a backend's `url` should be, for the hint on a 404.
fn url_hint(kind: BackendType) -> &'static str {
    match kind {
        BackendType::Ollama => {
            "an ollama backend's url is the server root, e.g. http://localhost:11434 (the router adds /api/chat and /api/tags)"
        }
        _ => "a backend's url is the server root, e.g. http://localhost:8000 (the router adds /v1/...)",
    }
}
