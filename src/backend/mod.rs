//! Backends: what the router sends requests to. One adapter serves every OpenAI-compatible
//! server; `mock` answers in-process.

pub mod anthropic;
mod client;
pub mod discovery;
pub mod endpoint;
pub mod gemini;
mod mock;
pub mod ollama;
mod openai_compat;
pub mod probe;

use arc_swap::ArcSwap;
use http::HeaderValue;
use std::sync::Arc;

pub use client::{build_client, HttpClient};
pub use endpoint::X_REQUEST_ID;
pub use mock::MockBackend;
pub use openai_compat::{adapt_request, LengthParams, OpenAiCompat};

use crate::config::{BackendConfig, BackendType, CircuitBreakerConfig};
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
            state,
            name_hash,
        })
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether its model list comes from the backend (no `models` in the config).
    pub fn discovers_models(&self) -> bool {
        self.config.models.is_none()
    }

    /// The models it serves now: configured, else last discovered.
    pub fn models(&self) -> Arc<Vec<String>> {
        match &self.config.models {
            Some(m) => Arc::new(m.clone()),
            None => self.discovered.load_full(),
        }
    }
}
