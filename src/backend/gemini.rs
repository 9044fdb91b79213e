//! Google's Gemini API as a backend: `POST /v1beta/models/{model}:generateContent` (and
//! `:streamGenerateContent?alt=sse`) with `x-goog-api-key`; `GET /v1beta/models` for
//! discovery and probes. Requests are translated (`protocol::gemini`).

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;

use super::endpoint::{Credential, Endpoint};
use crate::config::BackendConfig;
use crate::error::ProxyError;

/// A Gemini backend with its headers prepared once.
#[derive(Debug)]
pub struct GeminiApi {
    /// Server root and headers (`x-goog-api-key`).
    pub endpoint: Endpoint,
    models_uri: Uri,
}

impl GeminiApi {
    /// Prepares headers and URIs from a validated config.
    pub fn new(config: &BackendConfig) -> Result<GeminiApi, String> {
        let endpoint = Endpoint::new(config, Credential::Header("x-goog-api-key"), &[])?;
        let models_uri = endpoint
            .uri("/v1beta/models")
            .map_err(|e| format!("backend '{}': {e}", config.name))?;
        Ok(GeminiApi {
            endpoint,
            models_uri,
        })
    }

    /// The model list (discovery and health probes).
    pub fn models_request(&self) -> Request<Full<Bytes>> {
        self.endpoint
            .get(self.models_uri.clone(), "continuum-discovery")
    }
}

/// `model` without its `models/` prefix, checked to be safe in a URL path.
pub fn bare_model_id(model: &str) -> Result<&str, ProxyError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.is_empty()
        || !model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(ProxyError::InvalidField {
            param: "model",
            message: format!("'{model}' is not a Gemini model id"),
        });
    }
    Ok(model)
}

/// Model ids from a `GET /v1beta/models` answer (`models/` prefixes removed).
pub fn parse_models(body: &[u8]) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not a Gemini model list: {e}"))?;
    let list = v["models"]
        .as_array()
        .ok_or("not a Gemini model list: no 'models'")?;
    Ok(list
        .iter()
        .filter_map(|m| m["name"].as_str())
        .map(|n| n.strip_prefix("models/").unwrap_or(n).to_string())
        .collect())
}
