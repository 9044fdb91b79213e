//! The validated, immutable configuration the router runs on. Every value here has
//! passed validation; defaults are filled in.

use std::time::Duration;

use super::types::{BindAddr, Secret};

/// The whole router configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listening sockets and server limits.
    pub server: ServerConfig,
    /// Upstream model servers, in file order.
    pub backends: Vec<BackendConfig>,
    /// How a backend is chosen among those serving a model.
    pub selection_strategy: SelectionStrategy,
    /// Connection and request deadlines.
    pub timeouts: TimeoutsConfig,
    /// Log level and format.
    pub logging: LoggingConfig,
    /// Backend health probing.
    pub health_checks: HealthChecksConfig,
    /// Retries of failed attempts (per-backend overrides live on the backend).
    pub retry: RetryConfig,
    /// Per-backend circuit breakers.
    pub circuit_breaker: CircuitBreakerConfig,
    /// Other models to try when a model cannot answer.
    pub fallback: FallbackConfig,
    /// Settings of the load- and cache-aware strategies (`routing:`).
    pub routing: super::routing::RoutingConfig,
    /// Top-level `model_configs`, then the entries of `model_metadata_file`.
    pub model_configs: Vec<super::metadata::ModelConfig>,
    /// `model_metadata_file` (or `--model-metadata`), as written.
    pub model_metadata_file: Option<std::path::PathBuf>,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Who may call the router.
    pub api_keys: super::access::ApiKeysConfig,
    /// How much they may call it.
    pub rate_limiting: super::access::RateLimitingConfig,
    /// Which web origins may call it from a browser.
    pub cors: super::access::CorsConfig,
    /// Top-level `model_aliases`: names clients hard-code → routable models.
    pub model_aliases: Vec<(String, String)>,
    /// Who may use the admin API, and the usage statistics it shows.
    pub admin: super::operations::AdminConfig,
    /// Answers reused for identical deterministic requests.
    pub cache: super::operations::CacheConfig,
    /// The embedded database (`store:`).
    pub store: super::store::StoreConfig,
    /// Responses API state (`responses:`).
    pub responses: super::store::ResponsesConfig,
    /// The Files API (`files:`).
    pub files: super::files::FilesConfig,
    /// The agent mode (`acp:`).
    pub acp: super::acp::AcpConfig,
    /// The admin web UI (`webui:`, `admin.webui`).
    pub webui: super::webui::WebUiConfig,
    /// Request ids, W3C trace context, OTLP export.
    pub tracing: super::operations::TracingConfig,
    /// System prompts added to every chat request.
    pub global_prompts: super::prompts::GlobalPromptsConfig,
    /// Applying a changed config file without a restart.
    pub hot_reload: super::operations::HotReloadConfig,
    /// The file's tree after `${VAR}` substitution (`Null` for built-in defaults), shown
    /// redacted by `GET /admin/config`.
    pub source: serde_json::Value,
}

/// `metrics:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Serve and record metrics.
    pub enabled: bool,
    /// Where the Prometheus text is served (`path`, or the original's `endpoint`).
    pub path: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            path: "/metrics".into(),
        }
    }
}

/// `health_checks:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthChecksConfig {
    /// Probe backends at all (off: every backend counts as healthy).
    pub enabled: bool,
    /// Time between probes of a settled backend.
    pub interval: Duration,
    /// Deadline of one probe.
    pub timeout: Duration,
    /// Consecutive failed probes that make a healthy backend unhealthy.
    pub unhealthy_threshold: u32,
    /// Consecutive good probes that make an unhealthy backend healthy.
    pub healthy_threshold: u32,
    /// Path probed on self-hosted OpenAI-compatible servers (default `/v1/models`).
    pub endpoint: Option<String>,
    /// Time between probes of a backend answering 503 (loading).
    pub warmup_check_interval: Duration,
    /// Longest a backend may stay warming up before it counts as unhealthy.
    pub max_warmup_duration: Duration,
}

impl Default for HealthChecksConfig {
    fn default() -> Self {
        HealthChecksConfig {
            enabled: true,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
            endpoint: None,
            warmup_check_interval: Duration::from_secs(1),
            max_warmup_duration: Duration::from_secs(300),
        }
    }
}

/// `retry:` section (and `backends[].retry_override`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Growth of the wait per attempt.
    pub backoff_multiplier: f64,
    /// Wait a random time between 0 and the backoff ("full jitter").
    pub jitter: bool,
    /// Backend statuses that are retried.
    pub retryable_status_codes: Vec<u16>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            backoff_multiplier: 2.0,
            jitter: true,
            retryable_status_codes: vec![429, 502, 503, 504],
        }
    }
}

/// `circuit_breaker:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerConfig {
    /// Use circuit breakers at all.
    pub enabled: bool,
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// Failure rate (0–1) over the recent window that opens the circuit…
    pub failure_rate_threshold: f64,
    /// …once the window holds at least this many requests.
    pub minimum_requests: u32,
    /// How long an open circuit stays open before trial requests.
    pub timeout: Duration,
    /// Trial requests let through at once while half-open.
    pub half_open_max_requests: u32,
    /// Successful trials that close the circuit again.
    pub half_open_success_threshold: u32,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            enabled: true,
            failure_threshold: 5,
            failure_rate_threshold: 0.5,
            minimum_requests: 10,
            timeout: Duration::from_secs(60),
            half_open_max_requests: 3,
            half_open_success_threshold: 2,
        }
    }
}

/// `fallback:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FallbackConfig {
    /// Use fallback chains at all.
    pub enabled: bool,
    /// Model → the models to try next, in order.
    pub chains: Vec<(String, Vec<String>)>,
    /// What makes the router move on to the next model.
    pub triggers: FallbackTriggers,
    /// Fallback models tried at most per request.
    pub max_fallback_attempts: u32,
    /// `mid_stream: continue`: a stream broken after its first byte goes on with the next
    /// fallback model, the text so far sent as an assistant prefill.
    pub mid_stream_continue: bool,
}

/// `fallback.fallback_policy.trigger_conditions`.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackTriggers {
    /// Final backend statuses that trigger fallback.
    pub error_codes: Vec<u16>,
    /// A timeout triggers fallback.
    pub timeout: bool,
    /// A connection error triggers fallback.
    pub connection_error: bool,
    /// No backend available (circuits open, unhealthy) triggers fallback.
    pub circuit_breaker_open: bool,
    /// An unknown model triggers fallback.
    pub model_not_found: bool,
}

impl Default for FallbackTriggers {
    fn default() -> Self {
        FallbackTriggers {
            error_codes: vec![429, 500, 502, 503, 504],
            timeout: true,
            connection_error: true,
            circuit_breaker_open: true,
            model_not_found: false,
        }
    }
}

/// `server:` section.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on (TCP and/or Unix sockets); never empty.
    pub bind_address: Vec<BindAddr>,
    /// File mode for Unix socket files (e.g. 0o660); `None` keeps the umask's.
    pub socket_mode: Option<u32>,
    /// Runtime worker threads; 0 means one per core.
    pub workers: usize,
    /// Idle keep-alive connections kept per backend host.
    pub connection_pool_size: usize,
    /// Largest accepted request body, in bytes; larger bodies get 413.
    pub max_body_size: u64,
    /// Largest streamed event (SSE event or NDJSON line) read from a backend; a larger one
    /// ends the stream with an error event instead of being buffered without bound.
    pub max_stream_event_size: u64,
    /// How long in-flight requests may run after SIGTERM before the process exits.
    pub shutdown_grace: Duration,
    /// Whether responses carry `x-continuum-backend` / `x-continuum-model`.
    pub expose_backend_header: bool,
    /// Requests served at once (0: no limit); as many more may wait.
    pub max_concurrent_requests: usize,
    /// Longest a request waits for a slot before it gets 503.
    pub queue_timeout: Duration,
    /// Longest a client may take to send a request's headers, counted from the connection's
    /// start or, on a kept-alive connection, from the next request's first byte; then the
    /// connection is closed.
    pub header_read_timeout: Duration,
    /// Longest wait for the next bytes of a request body; then 408 and the connection closes.
    pub body_read_timeout: Duration,
    /// Longest a kept-alive connection waits idle for its next request before it is closed.
    pub keep_alive_timeout: Duration,
    /// Longest a client may take none of the response bytes the router has for it; then the
    /// connection is dropped, and the backend request with it.
    pub client_write_timeout: Duration,
    /// Most client connections open at once; `None` (`auto`) derives it from the open-file
    /// limit. At the cap, idle and slow connections are closed to make room, else new ones
    /// get 503.
    pub max_connections: Option<usize>,
}

/// The kinds of backend a config may name (`backends[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendType {
    /// OpenAI's own API.
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini API.
    Gemini,
    /// Ollama, spoken to natively (`/api/chat`, `/api/tags`), translated from OpenAI's format.
    Ollama,
    /// vLLM's OpenAI-compatible server.
    Vllm,
    /// LocalAI.
    Localai,
    /// LM Studio's server.
    Lmstudio,
    /// llama.cpp's `llama-server`.
    Llamacpp,
    /// Any other OpenAI-compatible server.
    Generic,
    /// MLXcel (OpenAI-compatible).
    Mlxcel,
    /// Another Continuum router (OpenAI-compatible).
    Continuum,
    /// Hugging Face text-embeddings-inference: embeddings (`/v1/embeddings`), reranking
    /// (`/rerank`) and sparse embeddings (`/embed_sparse`).
    Tei,
    /// The built-in deterministic backend (no network).
    Mock,
}

impl BackendType {
    /// Every type with its config spelling.
    pub const ALL: [(&'static str, BackendType); 13] = [
        ("openai", BackendType::Openai),
        ("anthropic", BackendType::Anthropic),
        ("gemini", BackendType::Gemini),
        ("ollama", BackendType::Ollama),
        ("vllm", BackendType::Vllm),
        ("localai", BackendType::Localai),
        ("lmstudio", BackendType::Lmstudio),
        ("llamacpp", BackendType::Llamacpp),
        ("generic", BackendType::Generic),
        ("mlxcel", BackendType::Mlxcel),
        ("continuum", BackendType::Continuum),
        ("tei", BackendType::Tei),
        ("mock", BackendType::Mock),
    ];

    /// The config spelling of this type.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(s, _)| *s)
            .unwrap_or("generic")
    }

    /// The URL used when the config gives none (`None`: a URL is required).
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            BackendType::Openai => Some("https://api.openai.com"),
            BackendType::Anthropic => Some("https://api.anthropic.com"),
            BackendType::Gemini => Some("https://generativelanguage.googleapis.com"),
            BackendType::Ollama => Some("http://localhost:11434"),
            BackendType::Vllm => Some("http://localhost:8000"),
            BackendType::Localai => Some("http://localhost:8080"),
            BackendType::Lmstudio => Some("http://localhost:1234"),
            BackendType::Llamacpp => Some("http://localhost:8080"),
            BackendType::Generic
            | BackendType::Mlxcel
            | BackendType::Continuum
            | BackendType::Tei => None,
            BackendType::Mock => None,
        }
    }

    /// Whether this build can route requests to this type.
    pub fn is_served(self) -> bool {
        true
    }
}

/// One `backends[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// Unique name; shown in `x-continuum-backend` and usable as `name/model`.
    pub name: String,
    /// What the backend speaks.
    pub kind: BackendType,
    /// Server root without a trailing `/` or `/v1` (`None` only for `mock`).
    pub url: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<Secret>,
    /// OpenAI organisation, sent as `OpenAI-Organization`.
    pub org_id: Option<String>,
    /// Relative share for weighted strategies (≥ 1).
    pub weight: u32,
    /// Models served; `None` means discover them from the backend's model list.
    pub models: Option<Vec<String>>,
    /// Extra names clients may use, mapped to one of the backend's models.
    pub model_aliases: Vec<(String, String)>,
    /// Extra headers sent with every request to this backend.
    pub headers: Vec<(String, String)>,
    /// Behaviour of a `mock` backend.
    pub mock: MockSettings,
    /// Retry settings for this backend instead of the global `retry`.
    pub retry_override: Option<RetryConfig>,
    /// Metadata of this backend's models (searched before the top-level entries).
    pub model_configs: Vec<super::metadata::ModelConfig>,
    /// Requests this backend gets at once; beyond it, it is passed over.
    pub max_concurrent: Option<usize>,
    /// `auth: {type: oauth, ...}`: a bearer token from the OAuth device flow.
    pub oauth: Option<super::operations::OAuthConfig>,
    /// The server takes OpenAI's Responses API (`/v1/responses`) itself, so Responses
    /// requests are passed through (`responses_api`; on by default for `openai` and
    /// `mlxcel`, and vLLM serves it too).
    pub responses_api: bool,
    /// Models this backend serves only through the Responses API: chat and messages
    /// clients' requests for them are translated to Responses and back.
    pub responses_only_models: Vec<String>,
}

/// Settings of the built-in `mock` backend.
#[derive(Debug, Clone, PartialEq)]
pub struct MockSettings {
    /// Delay before the first token (and before a non-streamed reply).
    pub first_token_latency: Duration,
    /// Tokens streamed per second; 0 streams without delay.
    pub tokens_per_second: f64,
    /// Fraction of requests (0.0–1.0) answered with a 500 error.
    pub fail_rate: f64,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            first_token_latency: Duration::from_millis(20),
            tokens_per_second: 200.0,
            fail_rate: 0.0,
        }
    }
}

/// `selection_strategy`: which backend of several serving a model gets a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionStrategy {
    /// Each backend in turn.
    RoundRobin,
    /// In turn, in proportion to `weight` (smooth: no bursts to one backend).
    WeightedRoundRobin,
    /// The backend with the lowest recent latency (EWMA), with some exploration.
    LeastLatency,
    /// Uniformly at random.
    Random,
    /// The same backend for the same session key (`X-Session-ID`, else `user`, else the
    /// client's credentials), moving as few keys as possible when backends change.
    ConsistentHash,
    /// The same backend for the same prompt prefix, so KV and prompt caches keep hitting.
    PrefixAwareHash,
    /// PrefixAwareHash with bounded loads: a prefix stays on its backend unless that one
    /// carries more than (1 + `routing.bounded_load_epsilon`) × the mean load, then moves
    /// to its next backend in hash order.
    BoundedLoadHash,
    /// The backend that was recently sent the longest part of this prompt (its KV cache
    /// most likely still holds it), within the bounded-load limit; else the least loaded.
    CacheAware,
}

impl SelectionStrategy {
    /// Every strategy with its config spelling.
    pub const ALL: [(&'static str, SelectionStrategy); 8] = [
        ("RoundRobin", SelectionStrategy::RoundRobin),
        ("WeightedRoundRobin", SelectionStrategy::WeightedRoundRobin),
        ("LeastLatency", SelectionStrategy::LeastLatency),
        ("Random", SelectionStrategy::Random),
        ("ConsistentHash", SelectionStrategy::ConsistentHash),
        ("PrefixAwareHash", SelectionStrategy::PrefixAwareHash),
        ("BoundedLoadHash", SelectionStrategy::BoundedLoadHash),
        ("CacheAware", SelectionStrategy::CacheAware),
    ];

    /// Whether it routes for the servers' prompt caches (their hits are then counted per
    /// backend from each reply's usage).
    pub fn seeks_cache_hits(self) -> bool {
        matches!(
            self,
            SelectionStrategy::PrefixAwareHash
                | SelectionStrategy::BoundedLoadHash
                | SelectionStrategy::CacheAware
        )
    }

    /// Whether it weighs the backends' load (and so wants the servers' load signals).
    pub fn weighs_load(self) -> bool {
        matches!(
            self,
            SelectionStrategy::BoundedLoadHash | SelectionStrategy::CacheAware
        )
    }
}

/// `timeouts:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeoutsConfig {
    /// TCP (and TLS) connect deadline.
    pub connection: Duration,
    /// Non-streaming requests.
    pub standard: StandardTimeouts,
    /// Streaming requests.
    pub streaming: StreamingTimeouts,
    /// Image generation, edits and variations (`timeouts.request.image_generation`).
    pub image_generation: StandardTimeouts,
    /// Per-model deadlines (`timeouts.request.model_overrides`), complete after merging
    /// with the defaults above.
    pub model_overrides: std::collections::HashMap<String, (StandardTimeouts, StreamingTimeouts)>,
}

impl TimeoutsConfig {
    /// The deadlines for requests to `model`.
    pub fn for_model(&self, model: &str) -> (&StandardTimeouts, &StreamingTimeouts) {
        if !self.model_overrides.is_empty() {
            if let Some((s, st)) = self.model_overrides.get(model) {
                return (s, st);
            }
        }
        (&self.standard, &self.streaming)
    }
}

/// Deadlines of a non-streamed request.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardTimeouts {
    /// Until the backend's response headers arrive.
    pub first_byte: Duration,
    /// Until the whole response is read.
    pub total: Duration,
}

/// Deadlines of a streamed request.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingTimeouts {
    /// Until the backend's headers and first chunk arrive.
    pub first_byte: Duration,
    /// Longest silence between two chunks.
    pub chunk_interval: Duration,
    /// Whole stream.
    pub total: Duration,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connection: Duration::from_secs(10),
            standard: StandardTimeouts {
                first_byte: Duration::from_secs(30),
                total: Duration::from_secs(180),
            },
            streaming: StreamingTimeouts {
                first_byte: Duration::from_secs(60),
                chunk_interval: Duration::from_secs(30),
                total: Duration::from_secs(600),
            },
            image_generation: StandardTimeouts {
                first_byte: Duration::from_secs(60),
                total: Duration::from_secs(180),
            },
            model_overrides: Default::default(),
        }
    }
}

/// `logging:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggingConfig {
    /// `trace|debug|info|warn|error` or a `RUST_LOG`-style filter; `None` falls back to
    /// `RUST_LOG`, then `info`.
    pub level: Option<String>,
    /// Human-readable or one JSON object per line.
    pub format: LogFormat,
    /// One `info` line per request (method, path, model, backend, status, latency,
    /// tokens, request id).
    pub access_log: bool,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind_address: vec![BindAddr::Tcp(([127, 0, 0, 1], 8080).into())],
            socket_mode: None,
            workers: 0,
            connection_pool_size: 100,
            max_body_size: 32 << 20,
            max_stream_event_size: crate::protocol::sse::DEFAULT_MAX_EVENT as u64,
            shutdown_grace: Duration::from_secs(30),
            expose_backend_header: true,
            max_concurrent_requests: 10_000,
            queue_timeout: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(75),
            client_write_timeout: Duration::from_secs(60),
            max_connections: None,
        }
    }
}

impl BackendConfig {
    /// A backend of `kind` with every optional setting at its default.
    pub fn new(name: impl Into<String>, kind: BackendType) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            kind,
            url: kind.default_url().map(str::to_string),
            api_key: None,
            org_id: None,
            weight: 1,
            models: None,
            model_aliases: Vec::new(),
            headers: Vec::new(),
            mock: MockSettings::default(),
            retry_override: None,
            model_configs: Vec::new(),
            max_concurrent: None,
            responses_api: matches!(kind, BackendType::Openai | BackendType::Mlxcel),
            responses_only_models: Vec::new(),
            oauth: None,
        }
    }
}

impl Default for Config {
    /// The configuration used when no file is found: listen on 127.0.0.1:8080 and route
    /// to a local Ollama and LM Studio.
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            backends: vec![
                BackendConfig::new("ollama", BackendType::Ollama),
                BackendConfig::new("lmstudio", BackendType::Lmstudio),
            ],
            selection_strategy: SelectionStrategy::RoundRobin,
            timeouts: TimeoutsConfig::default(),
            logging: LoggingConfig {
                level: None,
                format: LogFormat::Pretty,
                access_log: true,
            },
            health_checks: HealthChecksConfig::default(),
            retry: RetryConfig::default(),
            circuit_breaker: CircuitBreakerConfig::default(),
            fallback: FallbackConfig {
                max_fallback_attempts: 3,
                ..FallbackConfig::default()
            },
            routing: Default::default(),
            model_configs: Vec::new(),
            model_metadata_file: None,
            metrics: MetricsConfig::default(),
            api_keys: Default::default(),
            rate_limiting: Default::default(),
            cors: Default::default(),
            model_aliases: Vec::new(),
            admin: Default::default(),
            hot_reload: Default::default(),
            global_prompts: Default::default(),
            tracing: Default::default(),
            cache: Default::default(),
            store: Default::default(),
            responses: Default::default(),
            files: Default::default(),
            acp: Default::default(),
            webui: super::webui::WebUiConfig {
                enabled: false,
                path_prefix: "/webui".into(),
            },
            source: serde_json::Value::Null,
        }
    }
}
