//! The errors a proxied request can end in. Each knows its HTTP status and OpenAI error
//! type; `http::error` turns them into responses in exactly one place.

use std::time::Duration;

use http::StatusCode;

/// Why a request could not be answered by a backend.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The body exceeds `server.max_body_size`.
    #[error("request body is larger than the {limit}-byte limit (server.max_body_size)")]
    BodyTooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The body could not be read from the client.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The client stopped sending the body (`server.body_read_timeout`).
    #[error(
        "the request body stopped arriving: nothing came for {after:?} (server.body_read_timeout)"
    )]
    BodyTimeout {
        /// The configured timeout.
        after: std::time::Duration,
    },
    /// The body is not a JSON object of the expected shape.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A field has the wrong type.
    #[error("{message}")]
    InvalidField {
        /// The field name.
        param: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No `model` in the request.
    #[error("you must provide a model parameter")]
    MissingModel,
    /// No backend serves the requested model.
    #[error("the model '{0}' does not exist or is not served by any backend")]
    ModelNotFound(String),
    /// No route for this path.
    #[error("no route for {method} {path}")]
    UnknownRoute {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The path exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// Every backend serving the model is unhealthy, warming up or circuit-open.
    #[error("{}", no_healthy_message(.model, .reasons))]
    NoHealthyBackend {
        /// The model asked for.
        model: String,
        /// Why each of its backends is passed over ("backend 'a' is unhealthy (…)").
        reasons: Vec<String>,
    },
    /// No backend is known to serve the model, but some backends' model lists are unknown
    /// (no `models` configured and discovery failing): the model may well be theirs.
    #[error("{}", models_unknown_message(.model, .backends))]
    ModelsUnknown {
        /// The model asked for.
        model: String,
        /// Each such backend and why ("backend 'ollama' at URL is unreachable, so its
        /// models are unknown").
        backends: Vec<String>,
    },
    /// The backend could not be connected to.
    #[error("backend '{backend}' is unreachable: {reason}")]
    Unreachable {
        /// Backend name.
        backend: String,
        /// Backend URL (for logs; not shown to clients).
        url: String,
        /// The connection error.
        reason: String,
    },
    /// The backend did not answer in time.
    #[error("backend '{backend}' timed out: no {what} within {after:?}")]
    Timeout {
        /// Backend name.
        backend: String,
        /// What did not arrive ("response headers", "first chunk", "complete response").
        what: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// The backend broke the connection or sent something unreadable.
    #[error("backend '{backend}' failed: {reason}")]
    BadUpstream {
        /// Backend name.
        backend: String,
        /// What went wrong.
        reason: String,
    },

    /// No valid API key.
    #[error("{0}")]
    Unauthenticated(&'static str),

    /// The API key may not do this.
    #[error("{message}")]
    Forbidden {
        /// What was refused, naming the key id (never the key).
        message: String,
        /// Machine-readable reason (`model_not_allowed`, `insufficient_scope`).
        code: &'static str,
    },

    /// More requests than `server.max_concurrent_requests` (and its queue) can take, or
    /// every backend of the model at its `max_concurrent`.
    #[error("{0}; try again shortly")]
    Overloaded(&'static str),

    /// The shared rate-limit store cannot decide and `fail_open` is off.
    #[error("rate limits cannot be checked right now ({0}); try again shortly")]
    RateLimitStoreDown(String),

    /// A stored object (a response) that does not exist or is not the caller's.
    #[error("no {kind} found with id '{id}'")]
    NotFound {
        /// What was looked for ("response").
        kind: &'static str,
        /// The id asked for.
        id: String,
    },

    /// An upload exceeds `files.max_file_size`.
    #[error("the file is larger than the {limit}-byte limit (files.max_file_size)")]
    FileTooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },

    /// The embedded store failed.
    #[error("{0}")]
    Store(String),

    /// The router is shutting down and its `server.shutdown_grace` ran out while this
    /// request (a stream) was still open.
    #[error("the router is shutting down and its shutdown grace time ran out before this response was complete; retry the request")]
    ShuttingDown,

    /// A rate limit was hit.
    #[error("rate limit exceeded for {subject}; retry after {}s", retry_after_secs(.decision))]
    RateLimited {
        /// Whose limit: `API key 'id'`, `client 1.2.3.4`, `backend 'x'`, `the router`.
        subject: String,
        /// The limiter's answer (for the `Retry-After` and `x-ratelimit-*` headers).
        decision: crate::ratelimit::Decision,
    },
}

fn no_healthy_message(model: &str, reasons: &[String]) -> String {
    if reasons.is_empty() {
        return format!(
            "no healthy backend is available for model '{model}' (unhealthy, warming up or circuit open)"
        );
    }
    format!(
        "no backend can take model '{model}' now: {}",
        reasons.join("; ")
    )
}

fn models_unknown_message(model: &str, backends: &[String]) -> String {
    let what = if backends.len() == 1 {
        "start it (or fix its url)"
    } else {
        "start them (or fix their urls)"
    };
    format!(
        "the model '{model}' is not in any known model list, and {}; {what} and try again",
        backends.join("; ")
    )
}

/// Whole seconds to wait, at least 1 (`Retry-After`).
pub fn retry_after_secs(d: &crate::ratelimit::Decision) -> u64 {
    d.retry_after.as_secs_f64().ceil().max(1.0) as u64
}

impl ProxyError {
    /// The error for a failed read of the client's request body: [`ProxyError::BodyTimeout`]
    /// when `server.body_read_timeout` cut it off, else [`ProxyError::BodyRead`].
    pub fn from_body_error(err: &(dyn std::error::Error + 'static)) -> ProxyError {
        let mut cause = Some(err);
        while let Some(e) = cause {
            if let Some(t) = e.downcast_ref::<crate::server::BodyReadTimeout>() {
                return ProxyError::BodyTimeout { after: t.0 };
            }
            cause = e.source();
        }
        ProxyError::BodyRead(err.to_string())
    }

    /// Whether another attempt (on this or another backend) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProxyError::Unreachable { .. }
                | ProxyError::Timeout { .. }
                | ProxyError::BadUpstream { .. }
        )
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BodyTooLarge { .. } | ProxyError::FileTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ProxyError::BodyRead(_)
            | ProxyError::InvalidJson(_)
            | ProxyError::InvalidField { .. }
            | ProxyError::MissingModel => StatusCode::BAD_REQUEST,
            ProxyError::ModelNotFound(_)
            | ProxyError::UnknownRoute { .. }
            | ProxyError::NotFound { .. } => StatusCode::NOT_FOUND,
            ProxyError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Unreachable { .. } | ProxyError::BadUpstream { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NoHealthyBackend { .. } | ProxyError::ModelsUnknown { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ProxyError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ProxyError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::RateLimitStoreDown(_)
            | ProxyError::Overloaded(_)
            | ProxyError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Headers the error response carries besides the body: `Retry-After` and
    /// `x-ratelimit-limit/remaining/reset` for rate limits, `WWW-Authenticate` for 401.
    pub fn add_headers(&self, headers: &mut http::HeaderMap) {
        match self {
            ProxyError::RateLimited { decision, .. } => {
                let reset = decision.reset.as_secs_f64().ceil().max(1.0) as u64;
                headers.insert(http::header::RETRY_AFTER, retry_after_secs(decision).into());
                headers.insert("x-ratelimit-limit", decision.limit.into());
                headers.insert("x-ratelimit-remaining", 0u32.into());
                headers.insert("x-ratelimit-reset", reset.into());
            }
            ProxyError::Overloaded(_) | ProxyError::RateLimitStoreDown(_) => {
                headers.insert(http::header::RETRY_AFTER, 1u32.into());
            }
            ProxyError::Unauthenticated(_) => {
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
            }
            _ => {}
        }
    }

    /// OpenAI's error `type` for this error.
    pub fn openai_type(&self) -> &'static str {
        match self.status() {
            StatusCode::NOT_FOUND if matches!(self, ProxyError::UnknownRoute { .. }) => {
                "not_found_error"
            }
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// OpenAI's error `code` (machine-readable), if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            ProxyError::BodyTooLarge { .. } => Some("request_too_large"),
            ProxyError::BodyTimeout { .. } => Some("request_timeout"),
            ProxyError::InvalidJson(_) => Some("invalid_json"),
            ProxyError::MissingModel => Some("missing_required_parameter"),
            ProxyError::ModelNotFound(_) => Some("model_not_found"),
            ProxyError::Unreachable { .. } => Some("backend_unreachable"),
            ProxyError::Timeout { .. } => Some("backend_timeout"),
            ProxyError::BadUpstream { .. } => Some("backend_error"),
            ProxyError::NoHealthyBackend { .. } => Some("no_healthy_backend"),
            ProxyError::ModelsUnknown { .. } => Some("models_unknown"),
            ProxyError::Unauthenticated(_) => Some("invalid_api_key"),
            ProxyError::Forbidden { code, .. } => Some(code),
            ProxyError::RateLimited { .. } => Some("rate_limit_exceeded"),
            ProxyError::RateLimitStoreDown(_) => Some("rate_limit_store_unavailable"),
            ProxyError::Overloaded(_) => Some("server_overloaded"),
            ProxyError::ShuttingDown => Some("shutting_down"),
            ProxyError::NotFound { .. } => Some("not_found"),
            ProxyError::FileTooLarge { .. } => Some("file_too_large"),
            ProxyError::Store(_) => Some("store_error"),
            ProxyError::BodyRead(_)
            | ProxyError::InvalidField { .. }
            | ProxyError::UnknownRoute { .. }
            | ProxyError::MethodNotAllowed { .. } => None,
        }
    }

    /// The request parameter at fault, if any.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            ProxyError::MissingModel
            | ProxyError::ModelNotFound(_)
            | ProxyError::NoHealthyBackend { .. }
            | ProxyError::ModelsUnknown { .. } => Some("model"),
            ProxyError::InvalidField { param, .. } => Some(param),
            _ => None,
        }
    }
}
