//! Serving through the response cache (`cache:`): a hit is answered at once with
//! `x-continuum-cache: hit`; a cacheable miss is served, its 200 answer kept (when it is
//! no bigger than `max_entry_size`) and marked `x-continuum-cache: miss`.

use std::future::Future;

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use http::{Extensions, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;

use super::AppState;
use crate::auth::Caller;
use crate::cache::{Cached, KEPT_HEADERS};
use crate::error::ProxyError;

/// Says whether the answer came from the cache.
pub static X_CONTINUUM_CACHE: HeaderName = HeaderName::from_static("x-continuum-cache");

/// Serves `body` (a request to `endpoint`) with `serve`, through the cache when there is
/// one and the request may be cached.
pub(super) async fn serve_cached<F>(
    state: &AppState,
    endpoint: &'static str,
    extensions: &Extensions,
    body: &Bytes,
    stream: bool,
    serve: F,
) -> Result<Response, ProxyError>
where
    F: Future<Output = Result<Response, ProxyError>>,
{
    let Some(cache) = state.cache.as_ref().filter(|_| !stream) else {
        return serve.await;
    };
    // One tenant's answers are never another's: the key's organisation, else the key.
    let tenant = extensions.get::<Caller>().map_or_else(String::new, |c| {
        match &c.0.config.organization_id {
            Some(org) => format!("org:{org}"),
            None => format!("key:{}", c.0.id),
        }
    });
    let Some(key) = cache.key(endpoint, &tenant, body) else {
        return serve.await;
    };
    if let Some(hit) = cache.get(state.shard, &key).await {
        let mut resp = Response::new(Body::from(hit.body));
        *resp.status_mut() = StatusCode::from_u16(hit.status).unwrap_or(StatusCode::OK);
        for (n, v) in hit.headers {
            resp.headers_mut().insert(n, v);
        }
        resp.headers_mut()
            .insert(X_CONTINUUM_CACHE.clone(), HeaderValue::from_static("hit"));
        return Ok(resp);
    }
    let generation = cache.generation();
    let resp = serve.await?;
    let (mut parts, mut incoming) = resp.into_parts();
    parts
        .headers
        .insert(X_CONTINUUM_CACHE.clone(), HeaderValue::from_static("miss"));
    if parts.status != StatusCode::OK {
        return Ok(Response::from_parts(parts, incoming));
    }
    // Read up to the size limit; a bigger answer streams on uncached.
    let limit = usize::try_from(cache.max_entry_size()).unwrap_or(usize::MAX);
    let mut buf = BytesMut::new();
    loop {
        match incoming.frame().await {
            None => break,
            Some(Err(e)) => {
                let backend = parts
                    .headers
                    .get("x-continuum-backend")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("backend")
                    .to_string();
                return Err(ProxyError::BadUpstream {
                    backend,
                    reason: format!("reading the answer failed: {e}"),
                });
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    let head = futures_util::stream::once(async move {
                        Ok::<Bytes, axum::Error>(buf.freeze())
                    });
                    let body = Body::from_stream(head.chain(incoming.into_data_stream()));
                    return Ok(Response::from_parts(parts, body));
                }
            }
        }
    }
    let body = buf.freeze();
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|n| {
            let v = parts.headers.get(*n)?;
            Some((HeaderName::from_static(n), v.clone()))
        })
        .collect();
    cache
        .put(
            state.shard,
            key,
            Cached {
                status: 200,
                headers,
                body: body.clone(),
            },
            generation,
        )
        .await;
    Ok(Response::from_parts(parts, Body::from(body)))
}
