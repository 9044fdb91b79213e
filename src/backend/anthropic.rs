//! Anthropic's Messages API as a backend: `POST /v1/messages` with `x-api-key` and
//! `anthropic-version`, `GET /v1/models` for discovery and probes. Anthropic clients'
//! requests go through byte for byte (with their `anthropic-beta` header); OpenAI clients'
//! requests are translated (`protocol::anthropic_backend`).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;

use super::X_REQUEST_ID;
use crate::config::BackendConfig;

/// The API version sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// An Anthropic backend with its URIs and headers prepared once.
#[derive(Debug)]
pub struct AnthropicApi {
    /// Server root, for messages.
    pub url: String,
    messages_uri: Uri,
    models_uri: Uri,
    headers: HeaderMap,
}

impl AnthropicApi {
    /// Prepares URIs and headers from a validated config.
    pub fn new(config: &BackendConfig) -> Result<AnthropicApi, String> {
        let url = config
            .url
            .clone()
            .ok_or_else(|| format!("backend '{}' has no url", config.name))?;
        let parse = |p: &str| {
            format!("{url}{p}")
                .parse::<Uri>()
                .map_err(|e| format!("backend '{}': {e}", config.name))
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if let Some(key) = &config.api_key {
            let mut v = HeaderValue::from_str(key.expose()).map_err(|_| {
                format!(
                    "backend '{}': api_key is not a valid header value",
                    config.name
                )
            })?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), v);
        }
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("backend '{}': bad header name '{name}'", config.name))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("backend '{}': bad value for header '{name}'", config.name))?;
            headers.insert(name, value);
        }
        Ok(AnthropicApi {
            messages_uri: parse("/v1/messages")?,
            models_uri: parse("/v1/models")?,
            url,
            headers,
        })
    }

    fn request(
        &self,
        method: Method,
        uri: Uri,
        body: Bytes,
        id: &HeaderValue,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        for (name, value) in &self.headers {
            h.insert(name, value.clone());
        }
        h.insert(X_REQUEST_ID.clone(), id.clone());
        req
    }

    /// A Messages request; `beta` is the client's `anthropic-beta` header, passed on.
    pub fn messages_request(
        &self,
        body: Bytes,
        id: &HeaderValue,
        beta: Option<&HeaderValue>,
    ) -> Request<Full<Bytes>> {
        let mut req = self.request(Method::POST, self.messages_uri.clone(), body, id);
        if let Some(b) = beta {
            req.headers_mut()
                .insert(HeaderName::from_static("anthropic-beta"), b.clone());
        }
        req
    }

    /// The model list (discovery and health probes).
    pub fn models_request(&self) -> Request<Full<Bytes>> {
        let mut req = self.request(
            Method::GET,
            self.models_uri.clone(),
            Bytes::new(),
            &HeaderValue::from_static("continuum-discovery"),
        );
        req.headers_mut().remove(CONTENT_TYPE);
        req
    }
}
