//! The HTTP edge: routes, shared state, request ids, and the error mapper.

mod access;
pub mod admission;
mod anthropic;
mod continuation;
mod cors;
pub mod error;
mod proxy;
mod stream;
pub mod tap;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::backend::{build_client, Backend, HttpClient, X_REQUEST_ID};
use crate::config::Config;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::routing::{ListedModel, ModelIndex};

/// Response header naming the backend that answered.
pub static X_CONTINUUM_BACKEND: HeaderName = HeaderName::from_static("x-continuum-backend");
/// Response header naming the model that answered.
pub static X_CONTINUUM_MODEL: HeaderName = HeaderName::from_static("x-continuum-model");

/// Everything a request handler reads. Each worker thread has its own instance: the
/// shared parts are behind `Arc`s, the upstream client (and so its connection pool) is the
/// worker's own, so a request never leaves its thread.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the router was started with.
    pub config: Arc<Config>,
    /// Backends in config order.
    pub backends: Arc<[Arc<Backend>]>,
    /// Model name → backends; rebuilt when discovered model lists change.
    pub index: Arc<ArcSwap<ModelIndex>>,
    /// This worker's upstream client.
    pub client: HttpClient,
    /// The metrics registry (shared by every worker).
    pub metrics: Arc<Metrics>,
    /// This worker's shard of the registry.
    pub shard: usize,
    /// API keys (`None`: no `api_keys` section, no authentication).
    pub keys: Option<Arc<crate::auth::Keys>>,
    /// Rate limits (`None`: `rate_limiting` off).
    pub limits: Option<Arc<crate::ratelimit::Limits>>,
    /// Admission control (`None`: `server.max_concurrent_requests: 0`).
    pub admission: Option<Arc<admission::Admission>>,
}

impl AppState {
    /// The same shared state with a new upstream client, for another worker thread. Must be
    /// called on the thread (runtime) that will use it.
    pub fn for_worker(&self) -> AppState {
        AppState {
            client: build_client(
                self.config.server.connection_pool_size,
                self.config.timeouts.connection,
            ),
            shard: self.metrics.assign_shard(),
            ..self.clone()
        }
    }
}

/// The axum router with every endpoint of this build.
pub fn app(state: Arc<AppState>) -> axum::Router {
    // The client API, behind the API-key check.
    let api = axum::Router::new()
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/v1/messages", post(anthropic::messages))
        .route("/anthropic/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route(
            "/anthropic/v1/messages/count_tokens",
            post(anthropic::count_tokens),
        )
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::admit,
        ));
    let router = if state.config.metrics.enabled {
        api.route(&state.config.metrics.path, get(metrics))
    } else {
        api
    };
    router
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/health/ready", get(ready))
        .route("/admin/backends", get(admin_backends))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Outermost: preflights are answered before any route or authentication.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        .with_state(state)
}

/// The request's `X-Request-ID`, or a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(&X_REQUEST_ID) {
        if !v.is_empty() && v.len() <= 256 {
            return v.clone();
        }
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = format!("{:016x}{:08x}", fastrand::u64(..), n as u32);
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A readable reason for an upstream client error, including its cause chain.
pub fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn with_request_id(headers: &HeaderMap, resp: impl IntoResponse) -> Response {
    let mut resp = resp.into_response();
    resp.headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id(headers));
    resp
}

fn model_json(m: &ListedModel) -> serde_json::Value {
    let mut v = json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by, "backends": m.backends});
    if let Some(md) = &m.metadata {
        v["metadata"] = serde_json::to_value(md).unwrap_or_default();
    }
    v
}

async fn list_models(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let index = state.index.load();
    let data: Vec<_> = index
        .listed()
        .iter()
        .filter(|m| access::may_list(req.extensions(), &m.id))
        .map(model_json)
        .collect();
    with_request_id(req.headers(), Json(json!({"object": "list", "data": data})))
}

async fn get_model(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: http::Extensions,
) -> Response {
    let index = state.index.load();
    match index
        .listed()
        .iter()
        .find(|m| m.id == id && access::may_list(&extensions, &m.id))
    {
        Some(m) => with_request_id(&headers, Json(model_json(m))),
        None => with_request_id(&headers, ProxyError::ModelNotFound(id)),
    }
}

/// `GET /metrics` (or `metrics.path`): Prometheus text.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state.metrics.render(&state.backends);
    (
        [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn health(headers: HeaderMap) -> Response {
    with_request_id(&headers, Json(json!({"status": "ok"})))
}

/// 200 while at least one backend takes traffic, else 503.
async fn ready(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let healthy = state
        .backends
        .iter()
        .filter(|b| b.state.health.is_healthy())
        .count();
    let status = if healthy > 0 {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if healthy > 0 { "ready" } else { "not_ready" },
        "healthy_backends": healthy,
        "backends": state.backends.len(),
    });
    with_request_id(&headers, (status, Json(body)))
}

/// Each backend's health, circuit, latency, load and models.
async fn admin_backends(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let now = tokio::time::Instant::now();
    let list: Vec<_> = state
        .backends
        .iter()
        .map(|b| {
            json!({
                "name": b.name(),
                "type": b.config.kind.as_str(),
                "url": b.config.url,
                "status": b.state.health.status().as_str(),
                "circuit": b.state.breaker.state(now).as_str(),
                "latency_ewma_ms": b.state.latency_ewma().map(|d| d.as_secs_f64() * 1000.0),
                "in_flight": b.state.in_flight(),
                "prompt_tokens": b.state.cache.totals().0,
                "cached_prompt_tokens": b.state.cache.totals().1,
                "weight": b.config.weight,
                "models": *b.models(),
            })
        })
        .collect();
    with_request_id(&headers, Json(json!({"backends": list})))
}

async fn not_found(req: Request) -> Response {
    let err = ProxyError::UnknownRoute {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    };
    with_request_id(req.headers(), err)
}

async fn method_not_allowed(req: Request) -> Response {
    let err = ProxyError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    };
    with_request_id(req.headers(), err)
}
