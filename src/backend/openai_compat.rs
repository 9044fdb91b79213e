//! The adapter for every OpenAI-compatible server (openai, vllm, localai, lmstudio,
//! llamacpp, generic, mlxcel, continuum, and ollama's `/v1` for now): the request bytes go
//! through unchanged, with the backend's own headers.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;

use crate::config::{BackendConfig, BackendType};

/// A configured OpenAI-compatible backend with its URIs and headers prepared once.
#[derive(Debug)]
pub struct OpenAiCompat {
    /// Server root, for messages.
    pub url: String,
    chat_uri: Uri,
    models_uri: Uri,
    headers: HeaderMap,
}

/// `X-Request-ID`, forwarded to backends.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl OpenAiCompat {
    /// Prepares URIs and headers. The config was validated, so parsing cannot fail for a
    /// validated config; an error names what did.
    pub fn new(config: &BackendConfig) -> Result<OpenAiCompat, String> {
        let url = config
            .url
            .clone()
            .ok_or_else(|| format!("backend '{}' has no url", config.name))?;
        let parse = |path: &str| -> Result<Uri, String> {
            format!("{url}{path}")
                .parse()
                .map_err(|e| format!("backend '{}': bad url '{url}{path}': {e}", config.name))
        };
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &config.api_key {
            let value =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    format!(
                        "backend '{}': api_key is not a valid header value",
                        config.name
                    )
                })?;
            headers.insert(AUTHORIZATION, mark_sensitive(value));
        }
        if let Some(org) = &config.org_id {
            let value = HeaderValue::from_str(org).map_err(|_| {
                format!(
                    "backend '{}': org_id is not a valid header value",
                    config.name
                )
            })?;
            headers.insert(HeaderName::from_static("openai-organization"), value);
        }
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("backend '{}': bad header name '{name}'", config.name))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("backend '{}': bad value for header '{name}'", config.name))?;
            headers.insert(name, value);
        }
        Ok(OpenAiCompat {
            chat_uri: parse("/v1/chat/completions")?,
            models_uri: parse("/v1/models")?,
            url,
            headers,
        })
    }

    /// The chat completions request carrying `body` as is.
    pub fn chat_request(&self, body: Bytes, request_id: &HeaderValue) -> Request<Full<Bytes>> {
        self.request_to(Method::POST, self.chat_uri.clone(), body, request_id)
    }

    /// The model list request used for discovery.
    pub fn models_request(&self) -> Request<Full<Bytes>> {
        self.get_request(self.models_uri.clone(), "continuum-discovery")
    }

    /// A health probe of `path` (e.g. `/health`) on this server, with its credentials.
    pub fn probe_request(&self, path: Option<&str>) -> Request<Full<Bytes>> {
        let uri = match path.map(|p| format!("{}{p}", self.url).parse::<Uri>()) {
            Some(Ok(u)) => u,
            _ => self.models_uri.clone(),
        };
        self.get_request(uri, "continuum-health-check")
    }

    fn get_request(&self, uri: Uri, id: &'static str) -> Request<Full<Bytes>> {
        let mut req = self.request_to(
            Method::GET,
            uri,
            Bytes::new(),
            &HeaderValue::from_static(id),
        );
        req.headers_mut().remove(CONTENT_TYPE);
        req
    }

    /// A request to `uri` on this server with its headers (credentials, extra headers).
    pub fn request_to(
        &self,
        method: Method,
        uri: Uri,
        body: Bytes,
        request_id: &HeaderValue,
    ) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.reserve(self.headers.len() + 1);
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
        headers.insert(X_REQUEST_ID.clone(), request_id.clone());
        req
    }
}

fn mark_sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// Which output-length parameters a chat request sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct LengthParams {
    /// `max_tokens` is present.
    pub max_tokens: bool,
    /// `max_completion_tokens` is present.
    pub max_completion_tokens: bool,
}

/// The OpenAI-compatible servers' quirks, applied only where one bites (the body is
/// otherwise forwarded as received):
/// - vLLM, llama.cpp, LM Studio and LocalAI builds that predate `max_completion_tokens`
///   ignore it and generate without limit, so it is sent as `max_tokens`;
/// - OpenAI's o-series models refuse `max_tokens`, so it is sent as `max_completion_tokens`.
pub fn adapt_request(kind: BackendType, model: &str, body: Bytes, limits: LengthParams) -> Bytes {
    let (from, to) = match kind {
        BackendType::Vllm
        | BackendType::Llamacpp
        | BackendType::Lmstudio
        | BackendType::Localai
            if limits.max_completion_tokens && !limits.max_tokens =>
        {
            ("max_completion_tokens", "max_tokens")
        }
        BackendType::Openai
            if is_o_series(model) && limits.max_tokens && !limits.max_completion_tokens =>
        {
            ("max_tokens", "max_completion_tokens")
        }
        _ => return body,
    };
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return body;
    };
    if let Some(v) = map.remove(from) {
        map.insert(to.to_string(), v);
    }
    serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
}

/// OpenAI's reasoning models (o1, o3, o4-mini, …, and the GPT-5 family), which take
/// `max_completion_tokens` only.
fn is_o_series(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model);
    let mut chars = m.chars();
    m.starts_with("gpt-5")
        || (chars.next() == Some('o') && chars.next().is_some_and(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapt(kind: BackendType, model: &str, body: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let limits = LengthParams {
            max_tokens: v.get("max_tokens").is_some(),
            max_completion_tokens: v.get("max_completion_tokens").is_some(),
        };
        String::from_utf8(
            adapt_request(kind, model, Bytes::from(body.to_string()), limits).to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn length_parameter_quirks() {
        let mct = r#"{"model":"m","max_completion_tokens":10}"#;
        assert_eq!(
            adapt(BackendType::Vllm, "m", mct),
            r#"{"max_tokens":10,"model":"m"}"#
        );
        assert_eq!(
            adapt(BackendType::Generic, "m", mct),
            mct,
            "untouched where no quirk applies"
        );
        let mt = r#"{"model":"o3-mini","max_tokens":10}"#;
        assert_eq!(
            adapt(BackendType::Openai, "o3-mini", mt),
            r#"{"max_completion_tokens":10,"model":"o3-mini"}"#
        );
        assert_eq!(adapt(BackendType::Openai, "gpt-4o", mt), mt);
        assert!(!is_o_series("omni-model"));
        assert!(is_o_series("gpt-5-mini"));
    }
}
