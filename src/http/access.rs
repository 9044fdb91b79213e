//! Who may call: the API-key check in front of the `/v1` endpoints (see `crate::auth`),
//! answering refusals in the client's protocol, and the per-key model allow-list.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{Extensions, Method};
use tokio::time::Instant;

use super::error::error_response;
use super::{request_id, AppState};
use crate::auth::{Caller, Need, Refusal};
use crate::backend::X_REQUEST_ID;
use crate::error::ProxyError;

/// Middleware: checks the presented API key for the endpoint and puts the [`Caller`] in
/// the request's extensions. Without an `api_keys` section, everything passes.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(keys) = &state.keys else {
        return next.run(req).await;
    };
    let need = if req.method() == Method::GET {
        Need::Read
    } else {
        Need::Chat
    };
    match keys.check(req.headers(), need, Instant::now().into_std()) {
        Ok(Some(key)) => {
            req.extensions_mut().insert(Caller(key));
            next.run(req).await
        }
        Ok(None) => next.run(req).await,
        Err(refusal) => {
            let err = match refusal {
                Refusal::Unauthenticated(why) => ProxyError::Unauthenticated(why),
                Refusal::Forbidden(message) => ProxyError::Forbidden {
                    message,
                    code: "insufficient_scope",
                },
                Refusal::RateLimited(decision) => {
                    state.metrics.rate_limited(state.shard);
                    ProxyError::RateLimited {
                        subject: "this API key".into(),
                        decision,
                    }
                }
            };
            let anthropic = req.uri().path().contains("/messages");
            let mut resp = error_response(&err, anthropic);
            resp.headers_mut()
                .insert(X_REQUEST_ID.clone(), request_id(req.headers()));
            resp
        }
    }
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
