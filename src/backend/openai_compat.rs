//! The adapter for every OpenAI-compatible server (openai, vllm, localai, lmstudio,
//! llamacpp, generic, mlxcel, continuum, and ollama's `/v1` for now): the request bytes go
//! through unchanged, with the backend's own headers.

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;

use super::endpoint::{Credential, Endpoint};
use crate::config::{BackendConfig, BackendType};

/// A configured OpenAI-compatible backend with its URIs and headers prepared once.
#[derive(Debug)]
pub struct OpenAiCompat {
    /// Server root and headers.
    pub endpoint: Endpoint,
    models_uri: Uri,
}

impl OpenAiCompat {
    /// Prepares URIs and headers (`Authorization: Bearer`, `OpenAI-Organization`).
    pub fn new(config: &BackendConfig) -> Result<OpenAiCompat, String> {
        let org: Vec<_> = config
            .org_id
            .iter()
            .map(|o| ("openai-organization", o.clone()))
            .collect();
        let endpoint = Endpoint::new(config, Credential::Bearer, &org)?;
        let name = &config.name;
        Ok(OpenAiCompat {
            models_uri: endpoint
                .uri("/v1/models")
                .map_err(|e| format!("backend '{name}': {e}"))?,
            endpoint,
        })
    }

    /// Server root, for messages.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The model list request used for discovery.
    pub fn models_request(&self) -> Request<Full<Bytes>> {
        self.endpoint
            .get(self.models_uri.clone(), "continuum-discovery")
    }

    /// A health probe of `path` (e.g. `/health`) on this server, with its credentials.
    pub fn probe_request(&self, path: Option<&str>) -> Request<Full<Bytes>> {
        let uri = path
            .and_then(|p| self.endpoint.uri(p).ok())
            .unwrap_or_else(|| self.models_uri.clone());
        self.endpoint.get(uri, "continuum-health-check")
    }
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
