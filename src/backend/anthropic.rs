//! Anthropic's Messages API as a backend: `POST /v1/messages` with `x-api-key` and
//! `anthropic-version`, `GET /v1/models` for discovery and probes. Anthropic clients'
//! requests go through byte for byte (with their `anthropic-beta` header); OpenAI clients'
//! requests are translated (`protocol::anthropic_backend`).

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;

use super::endpoint::{Credential, Endpoint};
use crate::config::BackendConfig;

/// The API version sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// An Anthropic backend with its URIs and headers prepared once.
#[derive(Debug)]
pub struct AnthropicApi {
    /// Server root and headers (`x-api-key`, `anthropic-version`).
    pub endpoint: Endpoint,
    models_uri: Uri,
}

impl AnthropicApi {
    /// Prepares URIs and headers from a validated config.
    pub fn new(config: &BackendConfig) -> Result<AnthropicApi, String> {
        let version = [("anthropic-version", ANTHROPIC_VERSION.to_string())];
        let endpoint = Endpoint::new(config, Credential::Header("x-api-key"), &version)?;
        let name = &config.name;
        Ok(AnthropicApi {
            models_uri: endpoint
                .uri("/v1/models")
                .map_err(|e| format!("backend '{name}': {e}"))?,
            endpoint,
        })
    }

    /// The model list (discovery and health probes).
    pub fn models_request(&self) -> Request<Full<Bytes>> {
        self.endpoint
            .get(self.models_uri.clone(), "continuum-discovery")
    }
}
