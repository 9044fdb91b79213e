//! What every HTTP backend shares: its server root and the headers sent with each request
//! (credentials in the provider's own header, the config's extra headers, the request id).

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;

use crate::config::BackendConfig;

/// `X-Request-ID`, forwarded to backends.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A backend's server root and prepared headers.
#[derive(Debug)]
pub struct Endpoint {
    /// Server root (no trailing `/`, no `/v1`).
    pub url: String,
    headers: HeaderMap,
    /// `Authorization: Bearer …` from the OAuth token store (`auth.type: oauth`), swapped
    /// in when the token is refreshed; `None` for backends without OAuth.
    pub oauth_token: Option<std::sync::Arc<arc_swap::ArcSwapOption<HeaderValue>>>,
}

/// How a provider takes its API key.
pub enum Credential {
    /// `Authorization: Bearer <key>` (OpenAI and compatible servers).
    Bearer,
    /// The key alone in the named header (`x-api-key`, `x-goog-api-key`).
    Header(&'static str),
}

impl Endpoint {
    /// Prepares the headers of `config`'s backend: JSON content type, the API key as
    /// `credential` says, `extra` provider headers, then the config's own `headers`.
    pub fn new(
        config: &BackendConfig,
        credential: Credential,
        extra: &[(&'static str, String)],
    ) -> Result<Endpoint, String> {
        let name = &config.name;
        let url = config
            .url
            .clone()
            .ok_or_else(|| format!("backend '{name}' has no url"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &config.api_key {
            let (header, value) = match credential {
                Credential::Bearer => (
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", key.expose()),
                ),
                Credential::Header(h) => (HeaderName::from_static(h), key.expose().to_string()),
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("backend '{name}': api_key is not a valid header value"))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        for (header, value) in extra {
            let value = HeaderValue::from_str(value).map_err(|_| {
                format!("backend '{name}': '{value}' is not a valid value for {header}")
            })?;
            headers.insert(HeaderName::from_static(header), value);
        }
        for (header, value) in &config.headers {
            let header = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("backend '{name}': bad header name '{header}'"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("backend '{name}': bad value for header '{header}'"))?;
            headers.insert(header, value);
        }
        let oauth_token = config
            .oauth
            .as_ref()
            .map(|_| std::sync::Arc::new(arc_swap::ArcSwapOption::empty()));
        Ok(Endpoint {
            url,
            headers,
            oauth_token,
        })
    }

    /// `path` on this server as a URI.
    pub fn uri(&self, path: &str) -> Result<Uri, String> {
        format!("{}{path}", self.url)
            .parse()
            .map_err(|e| format!("bad url '{}{path}': {e}", self.url))
    }

    /// A request to `uri` with this backend's headers and the request id.
    pub fn request(
        &self,
        method: Method,
        uri: Uri,
        body: Bytes,
        id: &HeaderValue,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.reserve(self.headers.len() + 1);
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        headers.insert(X_REQUEST_ID.clone(), id.clone());
        if let Some(token) = self.oauth_token.as_ref().and_then(|t| t.load_full()) {
            headers.insert(http::header::AUTHORIZATION, (*token).clone());
        }
        crate::trace::add_outgoing(headers);
        req
    }

    /// A bodiless GET (model lists, probes) tagged with `id`.
    pub fn get(&self, uri: Uri, id: &'static str) -> Request<Full<Bytes>> {
        let mut req = self.request(
            Method::GET,
            uri,
            Bytes::new(),
            &HeaderValue::from_static(id),
        );
        req.headers_mut().remove(CONTENT_TYPE);
        req
    }
}
