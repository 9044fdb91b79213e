//! Who may call: the API-key check in front of the `/v1` endpoints (see `crate::auth`),
//! answering refusals in the client's protocol, and the per-key model allow-list.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Extensions;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::error::error_response;
use super::{request_id, AppState};
use crate::auth::{presented_key, Caller, Need, Refusal};
use crate::backend::X_REQUEST_ID;
use crate::config::files::FilesAuthMethod;
use crate::error::ProxyError;
use crate::pipeline::op::{ErrorShape, RouteSpec};
use crate::ratelimit::{AdmitError, KeyedCaller};

/// Middleware: checks the presented API key for the endpoint, puts the [`Caller`] in the
/// request's extensions, and applies the per-client, per-key and global rate limits.
/// Without `api_keys` and `rate_limiting` sections, everything passes.
pub async fn admit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let state = state.current();
    if state.keys.is_none() && state.limits.is_none() {
        return enter(&state, req, next).await;
    }
    check(&state, req, next).await
}

/// Counts the request in flight, takes a request slot (admission control), then serves.
async fn enter(state: &AppState, req: Request, next: Next) -> Response {
    let ticket = state.requests.start();
    let permit = match &state.admission {
        None => None,
        Some(admission) => match admission.enter().await {
            Ok(permit) => Some(permit),
            Err(err) => return refuse(state, &req, &err),
        },
    };
    super::admission::hold(next.run(req).await, permit, ticket)
}

async fn check(state: &AppState, mut req: Request, next: Next) -> Response {
    let now = Instant::now().into_std();
    let caller = match &state.keys {
        None => None,
        Some(keys) => {
            let need = match route_of(&req).map_or(Need::Chat, |r| r.need) {
                Need::Files => match state.config.files.auth.method {
                    FilesAuthMethod::ApiKey => Need::Scope(state.config.files.auth.required_scope),
                    FilesAuthMethod::None => Need::Any,
                },
                need => need,
            };
            match keys.check(req.headers(), need, now) {
                Ok(caller) => caller,
                Err(refusal) => {
                    let err = match refusal {
                        Refusal::Unauthenticated(why) => ProxyError::Unauthenticated(why),
                        Refusal::Forbidden(message) => ProxyError::Forbidden {
                            message,
                            code: "insufficient_scope",
                        },
                        Refusal::RateLimited(decision) => ProxyError::RateLimited {
                            subject: "this API key".into(),
                            decision,
                        },
                    };
                    return refuse(state, &req, &err);
                }
            }
        }
    };
    if let Some(limits) = &state.limits {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = limits.client_ip(peer, req.headers());
        let raw_bypass = caller.is_none()
            && presented_key(req.headers())
                .is_some_and(|k| limits.bypass_digest(&Sha256::digest(k).into()));
        if !raw_bypass {
            let key = caller.as_ref().map(|k| KeyedCaller {
                id: &k.id,
                digest: &k.config.digest,
                own_rate: k.config.rate_limit,
            });
            match limits.admit(state.shard, ip, key, now).await {
                Ok(None) => {}
                Ok(Some(store_error)) => {
                    state.metrics.rate_limit_store_error(state.shard, true);
                    tracing::warn!(error = %store_error, "rate limits not enforced (fail_open): the request passes");
                }
                Err(AdmitError::Limited(subject, decision)) => {
                    return refuse(state, &req, &ProxyError::RateLimited { subject, decision });
                }
                Err(AdmitError::StoreDown(reason)) => {
                    state.metrics.rate_limit_store_error(state.shard, false);
                    tracing::warn!(error = %reason, "rate limits cannot be decided (fail_open: false): refused");
                    return refuse(state, &req, &ProxyError::RateLimitStoreDown(reason));
                }
            }
        }
    }
    if let Some(key) = caller {
        req.extensions_mut().insert(Caller(key));
    }
    enter(state, req, next).await
}

/// A refusal in the client's protocol, counted when it is a rate limit.
fn refuse(state: &AppState, req: &Request, err: &ProxyError) -> Response {
    if matches!(err, ProxyError::RateLimited { .. }) {
        state.metrics.rate_limited(state.shard);
    }
    let anthropic = route_of(req).is_some_and(|r| r.error_shape() == ErrorShape::Anthropic);
    let mut resp = error_response(err, anthropic);
    resp.headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id(req.headers()));
    resp
}

/// The route table's entry for the route axum matched (this middleware sits on the
/// client API's routes, all of which are in the table).
fn route_of(req: &Request) -> Option<&'static RouteSpec> {
    let path = req.extensions().get::<MatchedPath>()?;
    crate::pipeline::op::route(req.method(), path.as_str())
}

/// Refuses a model outside the caller's `allowed_models` (403).
pub fn check_model(extensions: &Extensions, model: &str) -> Result<(), ProxyError> {
    match extensions.get::<Caller>() {
        Some(Caller(key)) if !key.allows_model(model) => Err(ProxyError::Forbidden {
            message: format!(
                "API key '{}' may not use the model '{model}' (allowed_models)",
                key.id()
            ),
            code: "model_not_allowed",
        }),
        _ => Ok(()),
    }
}

/// Whether the caller may see `model` in `/v1/models`.
pub fn may_list(extensions: &Extensions, model: &str) -> bool {
    check_model(extensions, model).is_ok()
}
