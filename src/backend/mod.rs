//! Backends: what the router sends requests to. One adapter serves every OpenAI-compatible
//! server; `mock` answers in-process.

pub mod anthropic;
mod client;
pub mod discovery;
pub mod endpoint;
pub mod gemini;
pub mod load;
mod mock;
pub mod ollama;
mod openai_compat;
pub mod probe;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;

pub use client::{build_client, HttpClient, UpstreamBody};
pub use endpoint::X_REQUEST_ID;
pub use mock::MockBackend;
pub use openai_compat::{adapt_request, LengthParams, OpenAiCompat};

use crate::config::{BackendConfig, BackendType, CircuitBreakerConfig};
use crate::error::ProxyError;
use crate::pipeline::body::Response;
use crate::pipeline::op::{Operation, Wire};
use crate::resilience::{BackendState, CircuitBreaker};

/// How a backend is spoken to.
#[derive(Debug)]
pub enum Adapter {
    /// Over HTTP, OpenAI's wire format.
    OpenAi(Box<OpenAiCompat>),
    /// Over HTTP, Ollama's native API (translated).
    Ollama(Box<ollama::Ollama>),
    /// Over HTTP, Anthropic's Messages API (passed through or translated).
    Anthropic(Box<anthropic::AnthropicApi>),
    /// Over HTTP, Google's Gemini API (translated).
    Gemini(Box<gemini::GeminiApi>),
    /// In-process.
    Mock(MockBackend),
}

impl Adapter {
    /// The HTTP plumbing (server root, headers) of a backend reached over HTTP.
    pub fn http(&self) -> Option<&OpenAiCompat> {
        match self {
            Adapter::OpenAi(api) => Some(api),
            Adapter::Ollama(o) => Some(&o.http),
            Adapter::Anthropic(_) | Adapter::Gemini(_) | Adapter::Mock(_) => None,
        }
    }
}

/// One configured backend, ready to serve.
#[derive(Debug)]
pub struct Backend {
    /// Its configuration.
    pub config: BackendConfig,
    /// Its name as a response header value (`x-continuum-backend`).
    pub name_header: HeaderValue,
    /// How to reach it.
    pub adapter: Adapter,
    /// Models learned from the backend itself when the config lists none.
    pub discovered: ArcSwap<Vec<String>>,
    /// Why the last model discovery failed (`None`: it succeeded, or has not run).
    pub discovery_failure: std::sync::Mutex<Option<discovery::DiscoveryError>>,
    /// Health, circuit, latency and load, shared by every worker.
    pub state: Arc<BackendState>,
    /// Hash of the name, for rendezvous hashing (ConsistentHash, PrefixAwareHash).
    pub name_hash: u64,
}

impl Backend {
    /// The HTTP endpoint of a backend reached over HTTP.
    pub fn endpoint(&self) -> Option<&endpoint::Endpoint> {
        match &self.adapter {
            Adapter::OpenAi(api) => Some(&api.endpoint),
            Adapter::Ollama(o) => Some(&o.http.endpoint),
            Adapter::Anthropic(a) => Some(&a.endpoint),
            Adapter::Gemini(g) => Some(&g.endpoint),
            Adapter::Mock(_) => None,
        }
    }

    /// Sends `access_token` as this backend's bearer token from now on (OAuth backends).
    pub fn set_oauth_token(&self, access_token: &str) -> Result<(), String> {
        let slot = self
            .endpoint()
            .and_then(|e| e.oauth_token.as_ref())
            .ok_or_else(|| format!("backend '{}' does not use OAuth", self.name()))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {access_token}"))
            .map_err(|_| "the stored access token is not a valid header value".to_string())?;
        value.set_sensitive(true);
        slot.store(Some(Arc::new(value)));
        Ok(())
    }

    /// Prepares a backend from its (validated) configuration.
    pub fn new(config: BackendConfig, breaker: &CircuitBreakerConfig) -> Result<Backend, String> {
        let adapter = match config.kind {
            BackendType::Mock => Adapter::Mock(MockBackend::new(config.mock.clone())),
            BackendType::Anthropic => {
                Adapter::Anthropic(Box::new(anthropic::AnthropicApi::new(&config)?))
            }
            BackendType::Gemini => Adapter::Gemini(Box::new(gemini::GeminiApi::new(&config)?)),
            BackendType::Ollama => {
                Adapter::Ollama(Box::new(ollama::Ollama::new(OpenAiCompat::new(&config)?)?))
            }
            _ => Adapter::OpenAi(Box::new(OpenAiCompat::new(&config)?)),
        };
        let name_header = HeaderValue::from_str(&config.name)
            .map_err(|_| format!("backend name '{}' is not a valid header value", config.name))?;
        let name_hash = crate::routing::strategy::hash_key(config.name.as_bytes());
        let state = Arc::new(BackendState::new(CircuitBreaker::new(
            &config.name,
            breaker.clone(),
        )));
        Ok(Backend {
            config,
            name_header,
            adapter,
            discovered: ArcSwap::from_pointee(Vec::new()),
            discovery_failure: std::sync::Mutex::new(None),
            state,
            name_hash,
        })
    }

    /// The wire this backend speaks for `op`; `None` when it does not serve it (selection
    /// passes it over). The one table of what each backend type can do.
    pub fn wire_for(&self, op: Operation, model: &str) -> Option<Wire> {
        use BackendType as T;
        use Operation as O;
        let responses_only = || self.config.responses_only_models.iter().any(|m| m == model);
        match op {
            // Passed through where the server takes it, else translated onto chat.
            O::Responses if self.config.responses_api => return Some(Wire::OpenAiResponses),
            O::Responses => return self.wire_for(O::Chat, model),
            O::Chat if responses_only() => return Some(Wire::OpenAiResponses),
            _ => {}
        }
        Some(match (self.config.kind, op) {
            (T::Mock, O::Chat) => Wire::OpenAiChat,
            (T::Anthropic, O::Chat) => Wire::AnthropicMessages,
            (T::Anthropic, O::CountTokens) => Wire::AnthropicCountTokens,
            (T::Gemini, O::Chat) => Wire::GeminiGenerate,
            (T::Gemini, O::CountTokens) => Wire::GeminiCountTokens,
            (T::Gemini, O::Embed) => Wire::GeminiEmbed,
            (T::Gemini, O::ImageGenerate) => Wire::GeminiImages,
            (T::Ollama, O::Chat) => Wire::OllamaChat,
            (T::Ollama, O::Embed) => Wire::OllamaEmbed,
            (T::Tei, O::Embed) => Wire::OpenAiEmbeddings,
            (T::Tei, O::Rerank) => Wire::TeiRerank,
            (T::Tei, O::EmbedSparse) => Wire::TeiSparse,
            (T::Tei | T::Anthropic | T::Gemini, _) => return None,
            (T::Mock | T::Ollama, O::CountTokens) => Wire::LocalCount,
            (T::Mock | T::Ollama, _) => return None,
            // The OpenAI-compatible servers.
            (_, O::Chat) => Wire::OpenAiChat,
            (_, O::Completion) => Wire::OpenAiCompletions,
            (_, O::Embed) => Wire::OpenAiEmbeddings,
            (_, O::CountTokens) => Wire::LocalCount,
            (T::Vllm | T::Llamacpp | T::Generic | T::Continuum | T::Localai, O::Rerank) => {
                Wire::Rerank
            }
            (T::Openai | T::Localai | T::Generic | T::Continuum | T::Mlxcel, O::ImageGenerate) => {
                Wire::OpenAiImages
            }
            (T::Openai | T::Localai | T::Generic | T::Continuum | T::Mlxcel, O::ImageEdit) => {
                Wire::OpenAiImageEdits
            }
            (T::Openai | T::Localai | T::Generic | T::Continuum | T::Mlxcel, O::ImageVariation) => {
                Wire::OpenAiImageVariations
            }
            (
                _,
                O::Rerank
                | O::EmbedSparse
                | O::Responses
                | O::ImageGenerate
                | O::ImageEdit
                | O::ImageVariation,
            ) => return None,
        })
    }

    /// The request carrying `body` (in `wire`) to this backend, with its credentials and
    /// the request id (`beta`: the client's `anthropic-beta`, for Anthropic's wires).
    pub fn request(
        &self,
        wire: Wire,
        model: &str,
        stream: bool,
        body: Bytes,
        id: &HeaderValue,
        beta: Option<&HeaderValue>,
    ) -> Result<Request<Full<Bytes>>, ProxyError> {
        let path = match wire {
            Wire::OpenAiChat => "/v1/chat/completions".into(),
            Wire::OpenAiCompletions => "/v1/completions".into(),
            Wire::OpenAiResponses => "/v1/responses".into(),
            Wire::OpenAiEmbeddings => "/v1/embeddings".into(),
            Wire::AnthropicMessages => "/v1/messages".into(),
            Wire::AnthropicCountTokens => "/v1/messages/count_tokens".into(),
            Wire::OpenAiImages => "/v1/images/generations".into(),
            Wire::OpenAiImageEdits => "/v1/images/edits".into(),
            Wire::OpenAiImageVariations => "/v1/images/variations".into(),
            Wire::GeminiGenerate
            | Wire::GeminiCountTokens
            | Wire::GeminiEmbed
            | Wire::GeminiImages => {
                let model = gemini::bare_model_id(model)?;
                let method = match wire {
                    Wire::GeminiGenerate if stream => "streamGenerateContent?alt=sse",
                    Wire::GeminiGenerate | Wire::GeminiImages => "generateContent",
                    Wire::GeminiCountTokens => "countTokens",
                    _ => "batchEmbedContents",
                };
                format!("/v1beta/models/{model}:{method}")
            }
            Wire::OllamaChat => "/api/chat".into(),
            Wire::OllamaEmbed => "/api/embed".into(),
            Wire::Rerank => "/v1/rerank".into(),
            Wire::TeiRerank => "/rerank".into(),
            Wire::TeiSparse => "/embed_sparse".into(),
            Wire::OpenAiSparse => "/v1/sparse-embeddings".into(),
            Wire::LocalCount => "/count_tokens".into(),
        };
        let Some(endpoint) = self.endpoint().filter(|_| wire != Wire::LocalCount) else {
            // Answered in-process: only the path and body matter.
            let mut req = Request::new(Full::new(body));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = path.parse::<Uri>().map_err(|e| ProxyError::BadUpstream {
                backend: self.name().to_string(),
                reason: e.to_string(),
            })?;
            return Ok(req);
        };
        let uri = endpoint
            .uri(&path)
            .map_err(|message| ProxyError::InvalidField {
                param: "model",
                message,
            })?;
        let mut req = endpoint.request(Method::POST, uri, body, id);
        if let (Some(b), Wire::AnthropicMessages | Wire::AnthropicCountTokens) = (beta, wire) {
            req.headers_mut().insert("anthropic-beta", b.clone());
        }
        Ok(req)
    }

    /// Sends a request prepared by [`Backend::request`]: over HTTP, or answered in-process
    /// (the mock backend, the router's own token counts). Transport failures are named.
    pub async fn send(
        &self,
        client: &HttpClient,
        wire: Wire,
        request: Request<UpstreamBody>,
    ) -> Result<Response, ProxyError> {
        // In-process answers take whole bodies (uploads never reach them).
        let whole = |b: UpstreamBody| match b {
            http_body_util::Either::Left(full) => full,
            http_body_util::Either::Right(_) => Full::default(),
        };
        if wire == Wire::LocalCount {
            return Ok(crate::tokens::answer_count(whole(request.into_body())).await);
        }
        if let Adapter::Mock(mock) = &self.adapter {
            return Ok(mock.serve(request.map(whole)).await);
        }
        let name = self.name();
        match client.send(request).await {
            Ok(resp) => Ok(resp.map(|incoming| {
                let backend = name.to_string();
                incoming
                    .map_err(move |e| ProxyError::BadUpstream {
                        backend: backend.clone(),
                        reason: e.to_string(),
                    })
                    .boxed_unsync()
            })),
            Err(e) => {
                let reason = crate::http::describe_client_error(&e);
                Err(if e.is_connect() {
                    ProxyError::Unreachable {
                        backend: name.to_string(),
                        url: self.endpoint().map_or_else(String::new, |e| e.url.clone()),
                        reason,
                    }
                } else {
                    ProxyError::BadUpstream {
                        backend: name.to_string(),
                        reason,
                    }
                })
            }
        }
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether its model list comes from the backend (no `models` in the config).
    pub fn discovers_models(&self) -> bool {
        self.config.models.is_none()
    }

    /// Records how a model discovery went.
    pub fn set_discovery(&self, failure: Option<discovery::DiscoveryError>) {
        *self
            .discovery_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = failure;
    }

    /// Why the last model discovery failed, if it did.
    pub fn discovery_failed(&self) -> Option<discovery::DiscoveryError> {
        self.discovery_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Its url as errors and listings show it (credentials redacted).
    pub fn shown_url(&self) -> String {
        self.config
            .url
            .as_deref()
            .map_or_else(|| "(in-process)".into(), crate::config::types::redact_url)
    }

    /// When its models come from discovery and the last discovery failed: the sentence
    /// that says so ("backend 'ollama' at http://localhost:11434 is unreachable, so its
    /// models are unknown"), for the 503 that answers a model no known list has.
    pub fn models_unknown(&self) -> Option<String> {
        if !self.discovers_models() {
            return None;
        }
        let failure = self.discovery_failed()?;
        let (name, url) = (self.name(), self.shown_url());
        Some(if failure.unreachable {
            format!("backend '{name}' at {url} is unreachable, so its models are unknown")
        } else {
            format!(
                "backend '{name}' at {url} does not list its models ({}), so they are unknown",
                failure.detail
            )
        })
    }

    /// Why it takes no traffic or lists no models now, as a clause ("is unhealthy (last
    /// probe: …)", "is unreachable (GET … failed: …)"); `None` when it is up.
    pub fn down_reason(&self, now: tokio::time::Instant) -> Option<String> {
        if let Some(why) = self.state.unavailable(now) {
            return Some(why);
        }
        let failure = self
            .discovery_failed()
            .filter(|_| self.discovers_models())?;
        Some(if failure.unreachable {
            format!("is unreachable ({})", failure.detail)
        } else {
            format!("does not list its models ({})", failure.detail)
        })
    }

    /// The models it serves now: configured, else last discovered.
    pub fn models(&self) -> Arc<Vec<String>> {
        match &self.config.models {
            Some(m) => Arc::new(m.clone()),
            None => self.discovered.load_full(),
        }
    }
}
