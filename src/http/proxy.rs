//! `POST /v1/chat/completions`: read only `model` and `stream` from the body, pick a
//! backend, and forward the original bytes (with the model name spliced in only when an
//! alias or pin changed it). Responses stream through frame by frame.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::{timeout_at, Instant};

use super::stream::GuardedStream;
use super::{describe_client_error, request_id, AppState, X_CONTINUUM_BACKEND, X_CONTINUUM_MODEL};
use crate::backend::{Adapter, Backend, OpenAiCompat, X_REQUEST_ID};
use crate::error::ProxyError;

/// The only fields the router reads from a chat request.
#[derive(Deserialize)]
struct RoutingFields<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
}

/// What routing needs from the body: the model name, where it sits, and `stream`.
struct Routing {
    model: String,
    model_span: (usize, usize),
    stream: bool,
}

fn parse_routing(body: &[u8]) -> Result<Routing, ProxyError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ProxyError::InvalidJson(
            "the body must be a JSON object".into(),
        ));
    }
    let fields: RoutingFields<'_> =
        serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let raw = fields.model.ok_or(ProxyError::MissingModel)?;
    let model: Cow<'_, str> = match serde_json::from_str(raw.get()) {
        Ok(m) => m,
        Err(_) if raw.get() == "null" => return Err(ProxyError::MissingModel),
        Err(_) => {
            return Err(ProxyError::InvalidField {
                param: "model",
                message: format!("'model' must be a string, not {}", raw.get()),
            })
        }
    };
    if model.is_empty() {
        return Err(ProxyError::MissingModel);
    }
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    Ok(Routing {
        model: model.into_owned(),
        model_span: (start, start + raw.get().len()),
        stream: fields.stream.unwrap_or(false),
    })
}

/// The body with the `model` value replaced, every other byte kept.
fn splice_model(body: &Bytes, span: (usize, usize), model: &str) -> Bytes {
    let quoted = serde_json::to_string(model).unwrap_or_else(|_| format!("\"{model}\""));
    let mut out = BytesMut::with_capacity(body.len() + quoted.len());
    out.extend_from_slice(&body[..span.0]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[span.1..]);
    out.freeze()
}

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
        Err(e) => Err(ProxyError::BodyRead(e.to_string())),
    }
}

/// Handler of `POST /v1/chat/completions`.
pub async fn chat_completions(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let id = request_id(req.headers());
    let mut resp = match proxy_chat(&state, req, &id).await {
        Ok(resp) => resp,
        Err(err) => {
            log_error(&err, &id);
            err.into_response()
        }
    };
    resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
    resp
}

fn log_error(err: &ProxyError, id: &HeaderValue) {
    let id = id.to_str().unwrap_or("");
    if err.status().is_server_error() {
        tracing::warn!(request_id = id, status = err.status().as_u16(), error = %err, "request failed");
    } else {
        tracing::debug!(request_id = id, status = err.status().as_u16(), error = %err, "request rejected");
    }
}

async fn proxy_chat(
    state: &AppState,
    req: Request,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, state.config.server.max_body_size).await?;
    let routing = parse_routing(&body)?;
    let index = state.index.load();
    let target = index.resolve(&routing.model)?.pick();
    let backend = &state.backends[target.backend];
    let body = if *target.upstream_model == routing.model {
        body
    } else {
        splice_model(&body, routing.model_span, &target.upstream_model)
    };
    tracing::debug!(request_id = id.to_str().unwrap_or(""), model = %routing.model, backend = backend.name(), stream = routing.stream, "routing");
    let mut resp = match &backend.adapter {
        Adapter::Mock(mock) => {
            mock.chat(&body, routing.stream, &target.upstream_model)
                .await
        }
        Adapter::OpenAi(api) => {
            forward(state, backend, api, body, routing.stream, id, started).await?
        }
    };
    if state.config.server.expose_backend_header {
        let headers = resp.headers_mut();
        headers.insert(X_CONTINUUM_BACKEND.clone(), backend.name_header.clone());
        if let Some(model) = &target.model_header {
            headers.insert(X_CONTINUUM_MODEL.clone(), model.clone());
        }
    }
    Ok(resp)
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::CONTENT_LENGTH,
];

async fn forward(
    state: &AppState,
    backend: &Arc<Backend>,
    api: &OpenAiCompat,
    body: Bytes,
    stream: bool,
    id: &HeaderValue,
    started: Instant,
) -> Result<Response, ProxyError> {
    let t = &state.config.timeouts;
    let (first_byte, total) = if stream {
        (t.streaming.first_byte, t.streaming.total)
    } else {
        (t.standard.first_byte, t.standard.total)
    };
    let total_deadline = started + total;
    let first_deadline = (started + first_byte).min(total_deadline);
    let name = || backend.name().to_string();

    let upstream = match timeout_at(
        first_deadline,
        state.client.request(api.chat_request(body, id)),
    )
    .await
    {
        Err(_) => {
            return Err(ProxyError::Timeout {
                backend: name(),
                what: "response headers",
                after: first_byte,
            })
        }
        Ok(Err(e)) => {
            let reason = describe_client_error(&e);
            return Err(if e.is_connect() {
                ProxyError::Unreachable {
                    backend: name(),
                    url: api.url.clone(),
                    reason,
                }
            } else {
                ProxyError::BadUpstream {
                    backend: name(),
                    reason,
                }
            });
        }
        Ok(Ok(resp)) => resp,
    };
    let (mut parts, mut incoming) = upstream.into_parts();
    for h in &HOP_BY_HOP {
        parts.headers.remove(h);
    }
    if stream && parts.status.is_success() {
        // Peek the first chunk before committing: a failure before it is still a clean error.
        let first = match timeout_at(first_deadline, incoming.frame()).await {
            Err(_) => {
                return Err(ProxyError::Timeout {
                    backend: name(),
                    what: "first chunk",
                    after: first_byte,
                })
            }
            Ok(Some(Err(e))) => {
                return Err(ProxyError::BadUpstream {
                    backend: name(),
                    reason: format!("the stream broke off before its first chunk: {e}"),
                })
            }
            Ok(Some(Ok(frame))) => Some(frame),
            Ok(None) => None,
        };
        let guarded = GuardedStream::new(
            first,
            incoming,
            t.streaming.chunk_interval,
            started,
            total,
            Arc::clone(backend),
        );
        return Ok(Response::from_parts(parts, Body::new(guarded)));
    }
    let bytes = match timeout_at(total_deadline, incoming.collect()).await {
        Err(_) => {
            return Err(ProxyError::Timeout {
                backend: name(),
                what: "complete response",
                after: total,
            })
        }
        Ok(Err(e)) => {
            return Err(ProxyError::BadUpstream {
                backend: name(),
                reason: format!("reading the response failed: {e}"),
            })
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_and_stream_and_splices() {
        let body = Bytes::from_static(br#"{"messages":[{"role":"user","content":"hi","model":"x"}], "model" : "fast","stream":true}"#);
        let r = parse_routing(&body).unwrap();
        assert_eq!(r.model, "fast");
        assert!(r.stream);
        let out = splice_model(&body, r.model_span, "gpt-4o");
        assert_eq!(
            &out[..],
            br#"{"messages":[{"role":"user","content":"hi","model":"x"}], "model" : "gpt-4o","stream":true}"#
        );
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(matches!(
            parse_routing(b"{not json"),
            Err(ProxyError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_routing(b"[]"),
            Err(ProxyError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_routing(b"{}"),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            parse_routing(br#"{"model":null}"#),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            parse_routing(br#"{"model":""}"#),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            parse_routing(br#"{"model":3}"#),
            Err(ProxyError::InvalidField { .. })
        ));
        assert!(matches!(
            parse_routing(br#"{"model":"m","stream":"yes"}"#),
            Err(ProxyError::InvalidJson(_))
        ));
        let escaped = parse_routing(br#"{"model":"a\u002fb"}"#).unwrap();
        assert_eq!(escaped.model, "a/b");
    }
}
