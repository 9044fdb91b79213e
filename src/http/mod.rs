//! The HTTP edge: routes, shared state, request ids, and the error mapper.

mod access;
pub mod access_log;
mod admin;
pub mod admission;
mod cached;
mod cors;
pub mod error;
mod files;
pub mod openapi;
mod openapi_schemas;
mod responses;
mod serve;
pub mod tap;
mod trace;
mod webui;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::backend::X_REQUEST_ID;
use crate::error::ProxyError;
use crate::routing::ListedModel;

/// Marks a request that came over a Unix socket (no peer address; the socket file's mode
/// decides who may connect).
#[derive(Debug, Clone, Copy)]
pub struct UnixSocketPeer;

/// Response header naming the backend that answered.
pub static X_CONTINUUM_BACKEND: HeaderName = HeaderName::from_static("x-continuum-backend");
/// Response header naming the model that answered.
pub static X_CONTINUUM_MODEL: HeaderName = HeaderName::from_static("x-continuum-model");

pub use crate::pipeline::Core as AppState;
/// Secret redaction and timestamps as `/admin/config` shows them, for `config show`.
pub use admin::redact;

/// The axum router with every endpoint of this build.
pub fn app(state: Arc<AppState>) -> axum::Router {
    // The client API, behind the API-key check: every route of the one table.
    let mut api = axum::Router::new();
    for spec in crate::pipeline::op::ROUTES {
        use crate::pipeline::op::Handler;
        let route = match spec.handler {
            Handler::Op(_) => post(move |state, req| serve::handle(state, spec, req)),
            Handler::ListModels => get(list_models),
            Handler::GetModel => get(get_model),
            Handler::GetResponse => get(responses::get),
            Handler::DeleteResponse => delete(responses::delete),
            Handler::ListInputItems => get(responses::input_items),
            Handler::UploadFile => post(files::create),
            Handler::ListFiles => get(files::list),
            Handler::GetFile => get(files::get),
            Handler::FileContent => get(files::content),
            Handler::DeleteFile => delete(files::delete),
        };
        // Methods of one path (GET and DELETE of a stored response) merge into one route.
        api = api.route(spec.path, route);
    }
    let api = api.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        access::admit,
    ));
    // The document is built once per router: it names the metrics path this config mounts.
    let metrics_path = state
        .config
        .metrics
        .enabled
        .then_some(state.config.metrics.path.as_str());
    let openapi = bytes::Bytes::from(openapi::document(metrics_path).to_string());
    let router = if state.config.metrics.enabled {
        api.route(&state.config.metrics.path, get(metrics))
    } else {
        api
    };
    router
        .route("/v1/images/hosted/{id}", get(files::hosted_image))
        .route("/health", get(health))
        .route(
            openapi::PATH,
            get(move |headers: HeaderMap| async move {
                let json = [(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )];
                with_request_id(&headers, (json, openapi))
            }),
        )
        .route("/healthz", get(health))
        .route("/health/ready", get(ready))
        .merge(admin_routes(state.clone()))
        .merge(webui_routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Outermost: preflights are answered before any route or authentication.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::cors,
        ))
        // Inside the ids (it logs the request id), outside everything else.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access_log::layer,
        ))
        // Outermost of all: every response carries the request's ids.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trace::layer,
        ))
        .with_state(state)
}

/// Starts timing a request for the metrics and `admin.stats` (when either is on),
/// naming the caller's API key.
fn start_timer(
    state: &AppState,
    endpoint: &'static str,
    extensions: &http::Extensions,
) -> Option<crate::metrics::RequestTimer> {
    let stats = state.metrics.stats.is_some();
    (state.config.metrics.enabled || stats).then(|| {
        let key = extensions
            .get::<crate::auth::Caller>()
            .map(|c| c.0.id.clone());
        state.metrics.start(state.shard, endpoint).with_key(key)
    })
}

/// The admin web UI's files, when the config that starts the router has it on (a reload
/// can turn it off; turning it on or moving it takes a restart).
fn webui_routes(state: &AppState) -> axum::Router<Arc<AppState>> {
    if state.config.webui.enabled {
        webui::routes(&state.config.webui.path_prefix)
    } else {
        axum::Router::new()
    }
}

/// `/admin/*`, behind `admin.auth`.
fn admin_routes(state: Arc<AppState>) -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/admin/backends", get(admin::backends))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/config", get(admin::config))
        .route("/admin/config/full", get(admin::config_full))
        .route("/admin/config/reload", post(admin::reload))
        .route("/admin/models", get(admin::models))
        .route_layer(axum::middleware::from_fn_with_state(state, admin::guard))
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

/// The innermost cause of an error: hyper's outer layers say only "client error
/// (Connect)", "tcp connect error"; what a person can act on is at the bottom of the chain.
pub fn innermost_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause
}

/// A readable reason for an upstream client error: its innermost cause.
pub fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let innermost = innermost_cause(e);
    let cause = innermost.to_string();
    if e.is_connect() {
        format!("cannot connect: {cause}")
    } else if std::ptr::addr_eq(innermost, e as &dyn Error) {
        cause
    } else {
        format!("{e}: {cause}")
    }
}

/// A handler's outcome as a response carrying the request id; server-side failures are
/// logged.
fn answer(headers: &HeaderMap, result: Result<Response, ProxyError>) -> Response {
    match result {
        Ok(resp) => with_request_id(headers, resp),
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(error = %e, "request failed");
            }
            with_request_id(headers, e)
        }
    }
}

/// One page of a list in OpenAI's shape (`data`, `first_id`, `last_id`, `has_more`).
fn list_page(data: Vec<serde_json::Value>, has_more: bool) -> serde_json::Value {
    json!({
        "object": "list",
        "first_id": data.first().map(|i| i["id"].clone()),
        "last_id": data.last().map(|i| i["id"].clone()),
        "has_more": has_more,
        "data": data,
    })
}

fn with_request_id(headers: &HeaderMap, resp: impl IntoResponse) -> Response {
    let mut resp = resp.into_response();
    resp.headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id(headers));
    resp
}

pub(super) fn model_json(m: &ListedModel) -> serde_json::Value {
    let mut v = json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by, "backends": m.backends});
    if let Some(md) = &m.metadata {
        v["metadata"] = serde_json::to_value(md).unwrap_or_default();
    }
    v
}

async fn list_models(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let state = state.current();
    let index = state.index.load();
    let data: Vec<_> = index
        .listed()
        .iter()
        .filter(|m| access::may_list(req.extensions(), &m.id))
        .map(model_json)
        .collect();
    let mut list = json!({"object": "list", "data": data});
    let down = unavailable_backends(&state.backends);
    if !down.is_empty() {
        list["unavailable"] = down.into();
    }
    with_request_id(req.headers(), Json(list))
}

/// The backends that are down (unhealthy, warming up, circuit open, or their model
/// discovery failing), each with why and whether its models are in the list: the
/// `unavailable` extension of `GET /v1/models`, so `continuum models list` can say which
/// backends are down without admin credentials.
fn unavailable_backends(backends: &[Arc<crate::backend::Backend>]) -> Vec<serde_json::Value> {
    let now = tokio::time::Instant::now();
    backends
        .iter()
        .filter_map(|b| {
            let reason = b.down_reason(now)?;
            Some(json!({
                "backend": b.name(),
                "url": b.shown_url(),
                "status": b.state.health.status().as_str(),
                "reason": reason,
                "models_listed": !b.models().is_empty(),
            }))
        })
        .collect()
}

async fn get_model(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: http::Extensions,
) -> Response {
    let state = state.current();
    let index = state.index.load();
    match index
        .listed()
        .iter()
        .find(|m| m.id == id && access::may_list(&extensions, &m.id))
    {
        Some(m) => with_request_id(&headers, Json(model_json(m))),
        None => with_request_id(&headers, crate::routing::not_found(&state.backends, &id)),
    }
}

/// `GET /metrics` (or `metrics.path`): Prometheus text.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let state = state.current();
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
    let state = state.current();
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
