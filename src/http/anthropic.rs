//! `POST /v1/messages` (also under `/anthropic`): Anthropic's Messages API in front of
//! every backend. The request is translated to OpenAI's chat format and routed like any
//! chat request; the reply, stream and errors are translated back to Anthropic's shapes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Limited};

use super::proxy::{read_body, route_chat, ChatRequest, NativeReply};
use super::{request_id, AppState};
use crate::backend::{Adapter, X_REQUEST_ID};
use crate::error::ProxyError;
use crate::protocol::anthropic::{self, StreamTranslator};
use crate::protocol::errors::ProviderError;

/// Largest translated (non-streamed) reply read.
const MAX_REPLY: usize = 256 << 20;

/// Handler of `POST /v1/messages`.
pub async fn messages(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let state = state.current();
    let timer = super::start_timer(&state, "/v1/messages", req.extensions());
    let id = request_id(req.headers());
    let mut resp = match handle(&state, req, &id).await {
        Ok(r) => r,
        Err(err) => {
            if err.status().is_server_error() {
                tracing::warn!(request_id = id.to_str().unwrap_or(""), error = %err, "messages request failed");
            }
            super::error::error_response(&err, true)
        }
    };
    resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
    super::tap::tap(resp, timer)
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(state: &AppState, req: Request, id: &HeaderValue) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, state.config.server.max_body_size).await?;
    let chat = ChatRequest::anthropic(body, &parts.headers)?;
    super::access::check_model(&parts.extensions, chat.model())?;
    super::cached::serve_cached(
        state,
        "/v1/messages",
        &parts.extensions,
        chat.body(),
        chat.stream(),
        answer(state, &parts.headers, &chat, id),
    )
    .await
}

/// Routes an Anthropic client's request and tells the answer in Anthropic's form.
async fn answer(
    state: &AppState,
    headers: &http::HeaderMap,
    chat: &ChatRequest,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let resp = route_chat(state, headers, chat, id).await?;
    let (model, stream) = (chat.model().to_string(), chat.stream());
    if resp.extensions().get::<NativeReply>().is_some() {
        // An Anthropic backend answered in the client's own format.
        return Ok(resp);
    }
    let (mut rparts, rbody) = resp.into_parts();
    rparts.headers.remove(header::CONTENT_LENGTH);
    if rparts.status.is_success() && stream {
        rparts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let body = AnthropicSse {
            inner: rbody,
            translator: StreamTranslator::new(&model),
            done: false,
        };
        return Ok(Response::from_parts(rparts, Body::new(body)));
    }
    let bytes = Limited::new(rbody, MAX_REPLY)
        .collect()
        .await
        .map_err(|e| ProxyError::BadUpstream {
            backend: model.clone(),
            reason: format!("reading the reply failed: {e}"),
        })?
        .to_bytes();
    rparts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let out = if rparts.status.is_success() {
        anthropic::from_openai_response(&bytes, &model).map_err(|reason| {
            ProxyError::BadUpstream {
                backend: model.clone(),
                reason,
            }
        })?
    } else {
        let e = ProviderError::from_openai(rparts.status, &bytes);
        rparts.status = e.anthropic_status(rparts.status);
        e.anthropic_body()
    };
    Ok(Response::from_parts(rparts, Body::from(out)))
}

/// An OpenAI chunk stream re-told as Anthropic events. A stream that ends without its
/// `[DONE]` (broken after its first byte) ends with an `error` event, never `message_stop`.
struct AnthropicSse {
    inner: Body,
    translator: StreamTranslator,
    done: bool,
}

impl http_body::Body for AnthropicSse {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    let out = this.translator.feed(data);
                    if this.translator.finished() {
                        this.done = true;
                    }
                    if out.is_empty() {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    let event = StreamTranslator::error_event(&e.to_string());
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    if this.translator.finished() {
                        return Poll::Ready(None);
                    }
                    let event = StreamTranslator::error_event(
                        "the backend's stream ended before it was complete",
                    );
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
            }
        }
    }
}

/// Handler of `POST /v1/messages/count_tokens`: counts by the best tier available for the
/// model (see `crate::tokens`) and says which in `x-continuum-token-count`.
pub async fn count_tokens(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let state = state.current();
    let id = request_id(req.headers());
    let mut resp = match count(&state, req, &id).await {
        Ok(r) => r,
        Err(err) => super::error::error_response(&err, true),
    };
    resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
    resp
}

async fn count(state: &AppState, req: Request, id: &HeaderValue) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, state.config.server.max_body_size).await?;
    // count_tokens takes no max_tokens; the translation wants one.
    let mut v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    if let Some(obj) = v.as_object_mut() {
        obj.entry("max_tokens").or_insert(serde_json::json!(1));
        obj.remove("stream");
    }
    let (openai, model, _) = anthropic::to_openai_request(v.to_string().as_bytes())?;
    super::access::check_model(&parts.extensions, &model)?;
    let index = state.index.load();
    let route = index.resolve(&model)?;
    let target = route.targets().first();
    // Provider tier: an Anthropic backend counts its own tokens.
    if let Some(t) = target {
        let backend = &state.backends[t.backend];
        if let Adapter::Anthropic(api) = &backend.adapter {
            return count_upstream(
                state,
                api,
                backend.name(),
                body,
                (&model, &t.upstream_model),
                &parts.headers,
                id,
            )
            .await;
        }
    }
    // Provider tier: a Gemini backend counts with countTokens.
    if let Some(t) = target {
        let backend = &state.backends[t.backend];
        if let Adapter::Gemini(api) = &backend.adapter {
            return count_gemini(state, api, backend.name(), &openai, &t.upstream_model, id).await;
        }
    }
    let upstream = target
        .map(|t| t.upstream_model.to_string())
        .unwrap_or(model);
    let request: serde_json::Value =
        serde_json::from_slice(&openai).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let (tokens, tier) = crate::tokens::count_chat(&upstream, &request);
    let mut resp = Response::new(Body::from(
        serde_json::json!({"input_tokens": tokens}).to_string(),
    ));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&tier.describe()) {
        resp.headers_mut().insert(TOKEN_COUNT.clone(), v);
    }
    Ok(resp)
}

/// Counts with a Gemini backend's `countTokens` (the request translated as it would be
/// for `generateContent`) and answers in Anthropic's shape.
async fn count_gemini(
    state: &AppState,
    api: &crate::backend::gemini::GeminiApi,
    backend: &str,
    openai: &[u8],
    upstream: &str,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let model = crate::backend::gemini::bare_model_id(upstream)?;
    let (generate, _) = crate::protocol::gemini::from_openai_request(openai, model)?;
    let body = crate::protocol::gemini::count_tokens_body(&generate, model);
    let request = api.count_request(model, body, id)?;
    let (status, bytes) = send_count(state, backend, request).await?;
    if !status.is_success() {
        let e = ProviderError::from_gemini(status, &bytes);
        return Ok(json_response(
            e.anthropic_status(status),
            e.anthropic_body(),
        ));
    }
    let tokens = crate::protocol::gemini::parse_count_tokens(&bytes).ok_or_else(|| {
        ProxyError::BadUpstream {
            backend: backend.to_string(),
            reason: "countTokens answer has no totalTokens".into(),
        }
    })?;
    let mut resp = Response::new(Body::from(
        serde_json::json!({"input_tokens": tokens}).to_string(),
    ));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        TOKEN_COUNT.clone(),
        HeaderValue::from_static("provider=gemini"),
    );
    Ok(resp)
}

/// Sends a count request within the standard total timeout and reads the whole answer.
async fn send_count(
    state: &AppState,
    backend: &str,
    request: http::Request<http_body_util::Full<Bytes>>,
) -> Result<(StatusCode, Bytes), ProxyError> {
    let deadline = state.config.timeouts.standard.total;
    let fail = |reason: String| ProxyError::BadUpstream {
        backend: backend.to_string(),
        reason,
    };
    let resp = tokio::time::timeout(deadline, state.client.request(request))
        .await
        .map_err(|_| ProxyError::Timeout {
            backend: backend.to_string(),
            what: "count_tokens answer",
            after: deadline,
        })?
        .map_err(|e| fail(super::describe_client_error(&e)))?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_REPLY)
        .collect()
        .await
        .map_err(|e| fail(format!("reading the reply failed: {e}")))?
        .to_bytes();
    Ok((status, bytes))
}

static TOKEN_COUNT: http::HeaderName = http::HeaderName::from_static("x-continuum-token-count");

/// Forwards `count_tokens` to an Anthropic backend (the model name swapped for the one the
/// backend knows) and passes its answer back.
async fn count_upstream(
    state: &AppState,
    api: &crate::backend::anthropic::AnthropicApi,
    backend: &str,
    body: Bytes,
    (requested, upstream): (&str, &str),
    headers: &http::HeaderMap,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let body = if requested == upstream {
        body
    } else {
        let mut v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
        v["model"] = serde_json::json!(upstream);
        Bytes::from(v.to_string())
    };
    let request = api.count_request(body, id, headers.get("anthropic-beta"));
    let (status, bytes) = send_count(state, backend, request).await?;
    let mut resp = json_response(status, bytes);
    resp.headers_mut().insert(
        TOKEN_COUNT.clone(),
        HeaderValue::from_static("provider=anthropic"),
    );
    Ok(resp)
}
