//! Model discovery: a backend configured without `models` is asked for its model list
//! (`GET /v1/models`) at start and periodically.

use std::time::Duration;

use http_body_util::BodyExt;
use serde::Deserialize;

use super::{Adapter, Backend, HttpClient};

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// Why a backend's model list could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend '{backend}': {detail}")]
pub struct DiscoveryError {
    /// The backend's name.
    pub backend: String,
    /// Nothing answered at its address (no connection, or no answer in time).
    pub unreachable: bool,
    /// What happened, naming the URL (`GET http://…/api/tags failed: …`).
    pub detail: String,
}

/// Asks `backend` for its models. The error names the backend and URL.
pub async fn fetch_models(
    client: &HttpClient,
    backend: &Backend,
    timeout: Duration,
) -> Result<Vec<String>, DiscoveryError> {
    let (request, url) = match &backend.adapter {
        Adapter::OpenAi(api) => (api.models_request(), format!("{}/v1/models", api.url())),
        Adapter::Ollama(o) => (o.tags_request(), format!("{}/api/tags", o.http.url())),
        Adapter::Anthropic(a) => (a.models_request(), format!("{}/v1/models", a.endpoint.url)),
        Adapter::Gemini(g) => (
            g.models_request(),
            format!("{}/v1beta/models", g.endpoint.url),
        ),
        Adapter::Mock(_) => return Ok(backend.models().to_vec()),
    };
    let url = crate::config::types::redact_url(&url);
    let fail = |unreachable: bool, detail: String| DiscoveryError {
        backend: backend.name().to_string(),
        unreachable,
        detail,
    };
    let work = async {
        let resp = client.request(request).await.map_err(|e| {
            let why = crate::http::describe_client_error(&e);
            fail(e.is_connect(), format!("GET {url} failed: {why}"))
        })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(false, format!("GET {url}: reading the body failed: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(fail(false, format!("GET {url} answered {status}")));
        }
        if let Adapter::Gemini(_) = &backend.adapter {
            return super::gemini::parse_models(&body)
                .map_err(|e| fail(false, format!("GET {url}: {e}")));
        }
        if let Adapter::Ollama(_) = &backend.adapter {
            return super::ollama::parse_tags(&body)
                .map_err(|e| fail(false, format!("GET {url}: {e}")));
        }
        let list: ModelList = serde_json::from_slice(&body).map_err(|e| {
            fail(
                false,
                format!("GET {url} did not return an OpenAI model list: {e}"),
            )
        })?;
        Ok(list.data.into_iter().map(|m| m.id).collect())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| fail(true, format!("GET {url} timed out after {timeout:?}")))?
}
