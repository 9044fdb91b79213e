//! The tracing layer (`tracing.enabled`): settles each request's ids (request id under
//! the configured header, W3C trace context or `X-Trace-ID`, correlation id), runs the
//! request inside a log span carrying them and with the trace context current (so
//! backends get a `traceparent` naming the router's span), echoes the ids on the
//! response, and exports the request's span when `tracing.otlp_endpoint` is set.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use tracing::Instrument as _;

use super::{request_id, AppState};
use crate::backend::X_REQUEST_ID;
use crate::metrics::Served;
use crate::trace::{self, Exporter, SpanRecord, TraceContext, TRACEPARENT, TRACESTATE};

/// Middleware: see the module docs. Off, it only passes the request on.
pub async fn layer(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let snapshot = state.live.current.load_full();
    let t = &snapshot.config.tracing;
    if !t.enabled {
        return propagate_only(req, next).await;
    }
    let usable = |v: &HeaderValue| !v.is_empty() && v.len() <= 256 && v.to_str().is_ok();
    // One request id for every layer: the configured header's, else X-Request-ID's, else new.
    let id = req
        .headers()
        .get(&t.request_id_header)
        .filter(|v| usable(v))
        .cloned()
        .unwrap_or_else(|| request_id(req.headers()));
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());

    let incoming = t
        .w3c_trace_context
        .then(|| req.headers().get(&TRACEPARENT))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(trace::parse_traceparent);
    let (trace_id, parent, flags) = match incoming {
        Some((trace_id, span, flags)) => (trace_id, Some(span), flags),
        None => {
            let given = req
                .headers()
                .get(&t.trace_id_header)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| trace::parse_traceparent(&format!("00-{s}-0000000000000001-01")));
            (
                given.map_or_else(trace::random_id::<16>, |(t, _, _)| t),
                None,
                1,
            )
        }
    };
    let span_id = trace::random_id::<8>();
    let correlation = req
        .headers()
        .get(&t.correlation_id_header)
        .filter(|v| usable(v))
        .cloned()
        .unwrap_or_else(|| id.clone());
    let trace_hex = trace::hex(&trace_id);
    let ctx = Arc::new(TraceContext {
        trace_id,
        parent,
        span_id,
        flags,
        traceparent: HeaderValue::from_str(&trace::format_traceparent(&trace_id, &span_id, flags))
            .unwrap_or_else(|_| HeaderValue::from_static("")),
        tracestate: incoming
            .and_then(|_| req.headers().get(&TRACESTATE))
            .cloned(),
        correlation: Some((t.correlation_id_header.clone(), correlation.clone())),
    });
    let log_span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or(""),
        trace_id = %trace_hex,
        span_id = %trace::hex(&span_id),
        correlation_id = correlation.to_str().unwrap_or(""),
    );
    let name = format!("{} {}", req.method(), req.uri().path());
    let start = trace::unix_now();
    let mut resp = trace::scope(ctx.clone(), next.run(req).instrument(log_span)).await;

    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&trace_hex) {
        headers.insert(t.trace_id_header.clone(), v);
    }
    headers.insert(t.correlation_id_header.clone(), correlation);
    headers.insert(t.request_id_header.clone(), id.clone());
    let Some(exporter) = state.exporter.clone() else {
        return resp;
    };
    let mut attributes = vec![(
        "continuum.request_id",
        id.to_str().unwrap_or("").to_string(),
    )];
    if let Some(served) = resp.extensions().get::<Served>() {
        attributes.push(("continuum.backend", served.backend.name().to_string()));
        attributes.push(("gen_ai.request.model", served.model.to_string()));
    }
    let record = SpanRecord {
        ctx,
        name,
        start,
        end: start,
        attributes,
        status: resp.status().as_u16(),
    };
    resp.map(|body| {
        Body::new(SpanBody {
            inner: body,
            pending: Some((exporter, record)),
        })
    })
}

/// Without a `tracing` section a client's W3C trace context is still passed on: backends
/// get a `traceparent` in the caller's trace naming a new child span (and the caller's
/// `tracestate`), so a distributed trace is not broken by the router. Nothing is logged or
/// exported; a request without a valid `traceparent` costs one header lookup.
async fn propagate_only(req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(trace::parse_traceparent);
    let Some((trace_id, parent, flags)) = incoming else {
        return next.run(req).await;
    };
    let span_id = trace::random_id::<8>();
    let Ok(traceparent) =
        HeaderValue::from_str(&trace::format_traceparent(&trace_id, &span_id, flags))
    else {
        return next.run(req).await;
    };
    let ctx = Arc::new(TraceContext {
        trace_id,
        parent: Some(parent),
        span_id,
        flags,
        traceparent,
        tracestate: req.headers().get(&TRACESTATE).cloned(),
        correlation: None,
    });
    trace::scope(ctx, next.run(req)).await
}

/// The response body, ending the request's span when it is dropped (sent whole, or the
/// client went away).
struct SpanBody {
    inner: Body,
    pending: Option<(Arc<Exporter>, SpanRecord)>,
}

impl http_body::Body for SpanBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for SpanBody {
    fn drop(&mut self) {
        if let Some((exporter, mut record)) = self.pending.take() {
            record.end = trace::unix_now();
            exporter.submit(record);
        }
    }
}
