//! The one handler of every pipeline route: read the body, check the caller may use the
//! model, serve through the response cache and the pipeline, and answer errors in the
//! route's own error shape. What a route is comes from the route table
//! (`pipeline::op::ROUTES`), never from its path.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Limited};

use super::{request_id, AppState};
use crate::backend::X_REQUEST_ID;
use crate::error::ProxyError;
use crate::pipeline::op::{ErrorShape, Operation, RouteSpec};
use crate::pipeline::{self, Call};

/// Reads the request body, refusing more than `limit` bytes with 413.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ProxyError::BodyTooLarge { limit })
        }
        Err(e) => Err(ProxyError::from_body_error(&*e)),
    }
}

/// Handler of a pipeline route.
pub async fn handle(
    state: State<Arc<AppState>>,
    spec: &'static RouteSpec,
    req: Request,
) -> Response {
    let state = state.current();
    let timer = super::start_timer(&state, spec.endpoint, req.extensions());
    let id = request_id(req.headers());
    let mut resp = match serve(&state, spec, req, &id).await {
        Ok(resp) => resp,
        Err(err) => {
            log_error(&err, &id);
            super::error::error_response(&err, spec.error_shape() == ErrorShape::Anthropic)
        }
    };
    resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
    super::tap::tap(resp, timer, state.config.logging.access_log)
}

fn log_error(err: &ProxyError, id: &HeaderValue) {
    let id = id.to_str().unwrap_or("");
    if let ProxyError::Unreachable { url, .. } = err {
        let url = super::admin::redact_url(url);
        tracing::warn!(request_id = id, status = err.status().as_u16(), error = %err, url = %url, "request failed");
    } else if err.status().is_server_error() {
        tracing::warn!(request_id = id, status = err.status().as_u16(), error = %err, "request failed");
    } else {
        tracing::debug!(request_id = id, status = err.status().as_u16(), error = %err, "request rejected");
    }
}

async fn serve(
    state: &AppState,
    spec: &'static RouteSpec,
    req: Request,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let op = spec.op().ok_or_else(|| ProxyError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    })?;
    let (parts, body) = req.into_parts();
    // Uploads (image edits and variations) go to disk as they arrive; the rest is read whole.
    let (body, spool) = if op.multipart() {
        let limit = state.config.files.max_file_size;
        let spooled =
            crate::files::spool::spool(state.files.dir(), body.into_data_stream(), limit).await?;
        (spooled.head.clone(), Some(std::sync::Arc::new(spooled)))
    } else {
        let limit = state.config.server.max_body_size;
        (read_body(&parts.headers, body, limit).await?, None)
    };
    let mut call = Call::new(
        state,
        op,
        spec.client,
        spec.endpoint,
        body,
        &parts.headers,
        id.clone(),
    )?;
    super::access::check_model(&parts.extensions, call.model())?;
    call.owner = crate::auth::owner_of(&parts.extensions);
    call.spool = spool;
    // Counts are never cached; nor are stored Responses (each is a new response, kept
    // under its own id); `store: false` ones are, like chat.
    let stored = op == Operation::Responses && !crate::pipeline::responses::unstored(&call.body);
    // Uploads are not cached either (their key would be their head only).
    if op == Operation::CountTokens || stored || op.multipart() {
        let resp = pipeline::serve(state, &mut call).await?;
        return Ok(resp.map(Body::new));
    }
    let (body, stream) = (call.body.clone(), call.stream());
    let answer = async {
        let resp = pipeline::serve(state, &mut call).await?;
        Ok(resp.map(Body::new))
    };
    super::cached::serve_cached(
        state,
        spec.endpoint,
        &parts.extensions,
        &body,
        stream,
        answer,
    )
    .await
}
