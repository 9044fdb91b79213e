//! Google's Gemini API as a backend: `POST /v1beta/models/{model}:generateContent` (and
//! `:streamGenerateContent?alt=sse`) with `x-goog-api-key`; `GET /v1beta/models` for
//! discovery and probes. Requests are translated (`protocol::gemini`).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;

use super::X_REQUEST_ID;
use crate::config::BackendConfig;
use crate::error::ProxyError;

/// A Gemini backend with its headers prepared once.
#[derive(Debug)]
pub struct GeminiApi {
    /// Server root.
    pub url: String,
    models_uri: Uri,
    headers: HeaderMap,
}

impl GeminiApi {
    /// Prepares headers and URIs from a validated config.
    pub fn new(config: &BackendConfig) -> Result<GeminiApi, String> {
        let url = config
            .url
            .clone()
            .ok_or_else(|| format!("backend '{}' has no url", config.name))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &config.api_key {
            let mut v = HeaderValue::from_str(key.expose()).map_err(|_| {
                format!(
                    "backend '{}': api_key is not a valid header value",
                    config.name
                )
            })?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-goog-api-key"), v);
        }
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("backend '{}': bad header name '{name}'", config.name))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("backend '{}': bad value for header '{name}'", config.name))?;
            headers.insert(name, value);
        }
        let models_uri = format!("{url}/v1beta/models")
            .parse()
            .map_err(|e| format!("backend '{}': {e}", config.name))?;
        Ok(GeminiApi {
            url,
            models_uri,
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

    /// The generate request for `model` (a bare id or `models/<id>`).
    pub fn generate_request(
        &self,
        model: &str,
        stream: bool,
        body: Bytes,
        id: &HeaderValue,
    ) -> Result<Request<Full<Bytes>>, ProxyError> {
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
        let path = if stream {
            format!(
                "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                self.url
            )
        } else {
            format!("{}/v1beta/models/{model}:generateContent", self.url)
        };
        let uri: Uri = path.parse().map_err(|e| ProxyError::InvalidField {
            param: "model",
            message: format!("cannot build the Gemini URL: {e}"),
        })?;
        Ok(self.request(Method::POST, uri, body, id))
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
