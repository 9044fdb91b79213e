//! The access log: one `info` line per request when its response has been sent (or the
//! client left), with method, path, model, backend, status, latency, tokens and request
//! id. `logging.access_log: false` turns it off.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::Method;
use http_body::{Body, Frame, SizeHint};

use super::AppState;
use crate::backend::X_REQUEST_ID;
use crate::metrics::Served;

/// Where the usage tap leaves the (input, output) tokens a response reported, for the
/// access-log line written after the body ends.
#[derive(Clone, Default)]
pub struct TokensSlot(pub Arc<OnceLock<(u64, u64)>>);

/// Middleware: times the request and logs its line when the response body ends.
pub async fn layer(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !state.live.current.load().config.logging.access_log {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let (mut parts, body) = resp.into_parts();
    let slot = parts.extensions.get::<TokensSlot>().cloned();
    let line = Line {
        method,
        path,
        status: parts.status.as_u16(),
        served: parts.extensions.get::<Served>().cloned(),
        request_id: parts
            .headers
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        tokens: slot,
        started,
        sent: 0,
        done: false,
    };
    parts.extensions.remove::<TokensSlot>();
    Response::from_parts(parts, AxumBody::new(Logged { inner: body, line }))
}

/// What the line says, gathered while the body goes out.
struct Line {
    method: Method,
    path: String,
    status: u16,
    served: Option<Served>,
    request_id: String,
    tokens: Option<TokensSlot>,
    started: Instant,
    sent: u64,
    done: bool,
}

impl Line {
    /// Writes the line once; `complete` is false when the client left before the end.
    fn write(&mut self, complete: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let (model, backend) = match &self.served {
            Some(s) => (&*s.model, s.backend.name()),
            None => ("-", "-"),
        };
        let (input, output) = self
            .tokens
            .as_ref()
            .and_then(|t| t.0.get().copied())
            .unwrap_or((0, 0));
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "continuum::access",
            method = %self.method,
            path = %self.path,
            model,
            backend,
            status = self.status,
            latency_ms,
            input_tokens = input,
            output_tokens = output,
            bytes = self.sent,
            complete,
            request_id = %self.request_id,
            "{} {} {} {:.1}ms",
            self.method,
            self.path,
            self.status,
            latency_ms
        );
    }
}

struct Logged {
    inner: AxumBody,
    line: Line,
}

impl Drop for Logged {
    fn drop(&mut self) {
        // The inner body first: the usage tap inside it leaves the tokens as it goes.
        drop(std::mem::replace(&mut self.inner, AxumBody::empty()));
        self.line.write(false);
    }
}

impl Body for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.line.sent += data.len() as u64;
                }
                // A whole body is not polled again after its last frame.
                if this.inner.is_end_stream() {
                    this.line.write(true);
                }
            }
            Poll::Ready(None) => this.line.write(true),
            Poll::Ready(Some(Err(_))) => this.line.write(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
