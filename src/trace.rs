//! Distributed tracing (`tracing:`): each request's W3C trace context (`traceparent`,
//! `tracestate`) and correlation id, carried in a task-local so the one place that builds
//! backend requests (`backend::endpoint`) sends them on with the router's own span id;
//! and an OTLP/HTTP (JSON) exporter that batches one server span per request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;

/// `traceparent`.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// One request's trace context.
#[derive(Debug, Clone)]
pub struct TraceContext {
    /// The trace (the caller's, else a new one).
    pub trace_id: [u8; 16],
    /// The caller's span, when it sent a `traceparent`.
    pub parent: Option<[u8; 8]>,
    /// The router's span for this request: the parent of the backend's spans.
    pub span_id: [u8; 8],
    /// W3C trace flags (sampled = 1).
    pub flags: u8,
    /// `traceparent` as sent to backends.
    pub traceparent: HeaderValue,
    /// The caller's `tracestate`, passed on unchanged.
    pub tracestate: Option<HeaderValue>,
    /// The correlation id and its header, passed to backends.
    pub correlation: Option<(HeaderName, HeaderValue)>,
}

tokio::task_local! {
    static CURRENT: Arc<TraceContext>;
}

/// Runs `f` with `ctx` as the current trace context.
pub async fn scope<F: std::future::Future>(ctx: Arc<TraceContext>, f: F) -> F::Output {
    CURRENT.scope(ctx, f).await
}

/// Adds the current trace context (if any) to a backend request's headers.
pub fn add_outgoing(headers: &mut HeaderMap) {
    let _ = CURRENT.try_with(|ctx| {
        headers.insert(TRACEPARENT.clone(), ctx.traceparent.clone());
        if let Some(state) = &ctx.tracestate {
            headers.insert(TRACESTATE.clone(), state.clone());
        }
        if let Some((name, value)) = &ctx.correlation {
            headers.insert(name.clone(), value.clone());
        }
    });
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// A valid `traceparent` (version 00 form; later versions read by their first fields):
/// trace id, parent span id, flags. All-zero ids and upper-case hex are invalid.
pub fn parse_traceparent(v: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let mut parts = v.trim().split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if [version, trace, span, flags]
        .iter()
        .any(|p| p.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return None;
    }
    let trace_id = unhex::<16>(trace).filter(|t| t.iter().any(|b| *b != 0))?;
    let span_id = unhex::<8>(span).filter(|s| s.iter().any(|b| *b != 0))?;
    let flags = unhex::<1>(flags)?[0];
    Some((trace_id, span_id, flags))
}

/// `00-<trace>-<span>-<flags>`.
pub fn format_traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], flags: u8) -> String {
    format!("00-{}-{}-{:02x}", hex(trace_id), hex(span_id), flags)
}

/// Random non-zero bytes (trace and span ids).
pub fn random_id<const N: usize>() -> [u8; N] {
    loop {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let r = fastrand::u64(..).to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        if out.iter().any(|b| *b != 0) {
            return out;
        }
    }
}

/// One finished request, as exported.
#[derive(Debug)]
pub struct SpanRecord {
    /// Its context.
    pub ctx: Arc<TraceContext>,
    /// `METHOD /path`.
    pub name: String,
    /// Start and end, since the Unix epoch.
    pub start: Duration,
    /// End.
    pub end: Duration,
    /// Attributes (string values; the status code as an integer).
    pub attributes: Vec<(&'static str, String)>,
    /// The HTTP status answered.
    pub status: u16,
}

/// Now, since the Unix epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Spans queued beyond this are dropped (and counted) rather than buffered without bound.
const QUEUE: usize = 4096;
/// Spans per export request.
const BATCH: usize = 512;
/// The longest a span waits before it is sent.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The OTLP span exporter: a bounded queue drained by one task.
pub struct Exporter {
    tx: mpsc::Sender<SpanRecord>,
    dropped: AtomicU64,
}

impl Exporter {
    /// Starts exporting to `endpoint` (`/v1/traces` appended) with `client`; must be
    /// called within a tokio runtime. The task ends when the exporter is dropped.
    pub fn start(
        endpoint: &str,
        service_name: &str,
        client: crate::backend::HttpClient,
    ) -> Result<Arc<Exporter>, String> {
        let uri: http::Uri = format!("{endpoint}/v1/traces")
            .parse()
            .map_err(|e| format!("tracing.otlp_endpoint: {e}"))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let exporter = Arc::new(Exporter {
            tx,
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(export_loop(rx, uri, service_name.to_string(), client));
        Ok(exporter)
    }

    /// Queues a finished span (dropped when the queue is full).
    pub fn submit(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "OTLP export queue full; spans dropped");
            }
        }
    }
}

async fn export_loop(
    mut rx: mpsc::Receiver<SpanRecord>,
    uri: http::Uri,
    service: String,
    client: crate::backend::HttpClient,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let first = match rx.recv().await {
            Some(s) => s,
            None => break,
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(s)) => batch.push(s),
                Ok(None) | Err(_) => break,
            }
        }
        let body = otlp_json(&service, &batch);
        batch.clear();
        let mut req = http::Request::new(http_body_util::Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri.clone();
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => {}
            Ok(Ok(resp)) => tracing::warn!(
                status = resp.status().as_u16(),
                "OTLP collector refused spans"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "OTLP export failed"),
            Err(_) => tracing::warn!("OTLP export timed out"),
        }
    }
}

/// An `ExportTraceServiceRequest` in OTLP's JSON encoding (hex ids, nanosecond strings).
pub fn otlp_json(service: &str, spans: &[SpanRecord]) -> Bytes {
    use serde_json::{json, Value};
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut attributes: Vec<Value> = s
                .attributes
                .iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
                .collect();
            attributes.push(json!({"key": "http.response.status_code", "value": {"intValue": s.status.to_string()}}));
            let mut span = json!({
                "traceId": hex(&s.ctx.trace_id),
                "spanId": hex(&s.ctx.span_id),
                "name": s.name,
                "kind": 2,
                "flags": s.ctx.flags,
                "startTimeUnixNano": s.start.as_nanos().to_string(),
                "endTimeUnixNano": s.end.as_nanos().to_string(),
                "attributes": attributes,
                "status": {"code": if s.status >= 500 { 2 } else { 0 }},
            });
            if let Some(p) = &s.ctx.parent {
                span["parentSpanId"] = Value::String(hex(p));
            }
            if let Some(state) = s.ctx.tracestate.as_ref().and_then(|v| v.to_str().ok()) {
                span["traceState"] = Value::String(state.to_string());
            }
            span
        })
        .collect();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "continuum", "version": env!("CARGO_PKG_VERSION")}, "spans": spans}],
    }]});
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_parsed_strictly() {
        let (t, s, f) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(hex(&t), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&s), "00f067aa0ba902b7");
        assert_eq!(f, 1);
        assert_eq!(
            format_traceparent(&t, &s, f),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f35-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }
}
