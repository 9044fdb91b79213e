//! One exchange with a backend: send, hold it to its deadlines (response headers, first
//! chunk, whole reply), peek a stream's first chunk before committing the response (a
//! failure before it is still a clean error, retried or fallen back), then pass the stream
//! through guarded — translated when the backend's wire is not the one the pipeline goes on
//! in — or read the whole reply and translate it.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Limited};
use tokio::time::{timeout_at, Instant};

use super::body::{self, Response};
use super::op::Wire;
use super::spill;
use super::stream::{GuardedStream, StreamLimits, StreamMode, TranslatedSse};
use super::Core;
use crate::backend::Backend;
use crate::error::ProxyError;
use crate::protocol::codec::Decode;

/// What one exchange is held to and how its reply is read.
pub struct Spec<'a> {
    /// The model name the backend gets (picks per-model timeouts).
    pub model: &'a str,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Count prompt-cache usage (PrefixAwareHash routes).
    pub count_cache: bool,
    /// A broken stream is continued on a fallback model (`mid_stream: continue`).
    pub continue_on_failure: bool,
    /// How the reply is read back.
    pub decode: Decode,
    /// Id for translated replies.
    pub id: &'a str,
    /// Held to `timeouts.request.image_generation`.
    pub images: bool,
    /// The call's own deadline, shared by all its attempts.
    pub deadline: Instant,
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

/// Largest non-streamed backend response the router reads (it buffers those whole to turn a
/// timeout into a clean 504); a larger one is a backend error.
const MAX_UPSTREAM_BODY: usize = 256 << 20;

/// Sends `request` to `backend` and reads its answer as `spec` says.
pub async fn exchange(
    core: &Core,
    backend: &Arc<Backend>,
    wire: Wire,
    request: http::Request<crate::backend::UpstreamBody>,
    spec: Spec<'_>,
) -> Result<Response, ProxyError> {
    let Spec {
        model,
        stream,
        count_cache,
        continue_on_failure,
        decode,
        id,
        images,
        deadline,
    } = spec;
    let started = Instant::now();
    let (standard, streaming) = core.config.timeouts.for_model(model);
    let (first_byte, total) = if images {
        let t = &core.config.timeouts.image_generation;
        (t.first_byte, t.total)
    } else if stream {
        (streaming.first_byte, streaming.total)
    } else {
        (standard.first_byte, standard.total)
    };
    let total_deadline = (started + total).min(deadline);
    let first_deadline = (started + first_byte).min(total_deadline);
    let total = total_deadline.saturating_duration_since(started);
    let name = || backend.name().to_string();
    let in_flight = backend.state.start_request();
    // Backends that answer one item per request (Gemini images) get the request again.
    let again: Vec<http::Request<crate::backend::UpstreamBody>> = (1..decode.requests())
        .filter_map(|_| copy_request(&request))
        .collect();

    let upstream = match timeout_at(first_deadline, backend.send(&core.client, wire, request)).await
    {
        Err(_) => {
            return Err(ProxyError::Timeout {
                backend: name(),
                what: "response headers",
                after: first_byte,
            })
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(resp)) => resp,
    };
    backend.state.record_latency(started.elapsed());
    let (mut parts, incoming) = upstream.into_parts();
    for h in &HOP_BY_HOP {
        parts.headers.remove(h);
    }
    let held = Held {
        backend,
        client: &core.client,
        wire,
        again,
        started,
        total,
        first_deadline,
        first_byte,
    };
    if stream && parts.status.is_success() {
        let mode = StreamMode {
            count_cache,
            continue_on_failure,
            sse: decode.sse(),
            max_event: core.config.server.max_stream_event_size as usize,
            wire,
            cut: core.cut.clone(),
        };
        let chunk_interval = streaming.chunk_interval;
        return stream_reply(
            held,
            parts,
            incoming,
            in_flight,
            chunk_interval,
            mode,
            decode.stream(model, id),
        )
        .await;
    }
    let read = Read {
        count_cache,
        decode: &decode,
        model,
        id,
        in_flight,
    };
    whole_reply(held, parts, incoming, read).await
}

/// How a whole reply is read back.
struct Read<'a> {
    count_cache: bool,
    decode: &'a Decode,
    model: &'a str,
    id: &'a str,
    /// The backend's request counts as in flight until its whole reply is read.
    in_flight: crate::resilience::InFlight,
}

/// An exchange's deadlines, backend and transport.
struct Held<'a> {
    backend: &'a Arc<Backend>,
    client: &'a crate::backend::HttpClient,
    wire: Wire,
    /// The same request again, for backends that answer one item per request.
    again: Vec<http::Request<crate::backend::UpstreamBody>>,
    started: Instant,
    total: std::time::Duration,
    first_deadline: Instant,
    first_byte: std::time::Duration,
}

/// A streamed reply: the first chunk peeked, the rest guarded (and translated when the
/// backend's wire is not the one the pipeline goes on in).
async fn stream_reply(
    held: Held<'_>,
    mut parts: http::response::Parts,
    mut incoming: body::Body,
    in_flight: crate::resilience::InFlight,
    chunk_interval: std::time::Duration,
    mode: StreamMode,
    translator: Option<Box<dyn crate::protocol::codec::ChunkTranslator>>,
) -> Result<Response, ProxyError> {
    let Held {
        backend,
        started,
        total,
        first_deadline,
        first_byte,
        ..
    } = held;
    let name = || backend.name().to_string();
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
    let pass_errors = mode.continue_on_failure;
    let guarded = GuardedStream::new(
        first,
        incoming,
        StreamLimits {
            chunk_interval,
            started,
            total,
        },
        Arc::clone(backend),
        in_flight,
        StreamMode {
            continue_on_failure: pass_errors || translator.is_some(),
            ..mode
        },
    );
    let body = match translator {
        None => body::boxed(guarded),
        Some(translator) => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            body::boxed(TranslatedSse::new(
                guarded,
                translator,
                backend.name(),
                pass_errors,
            ))
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// A whole reply, read within the total deadline and translated when needed. One that
/// passes through unchanged is streamed on past [`spill::WHOLE_REPLY_BUFFER`].
async fn whole_reply(
    held: Held<'_>,
    mut parts: http::response::Parts,
    incoming: body::Body,
    read: Read<'_>,
) -> Result<Response, ProxyError> {
    let Held {
        backend,
        client,
        wire,
        again,
        started,
        total,
        ..
    } = held;
    let Read {
        count_cache,
        decode,
        model,
        id,
        in_flight,
    } = read;
    let total_deadline = started + total;
    let name = || backend.name().to_string();
    if !decode.translates() && again.is_empty() {
        let hold = spill::Hold {
            backend: name(),
            deadline: total_deadline,
            total,
        };
        return match spill::read(incoming, spill::WHOLE_REPLY_BUFFER, hold, in_flight).await? {
            spill::Read::Whole(bytes) => {
                if count_cache && parts.status.is_success() {
                    backend.state.cache.count_json(&bytes);
                }
                Ok(Response::from_parts(parts, body::full(bytes)))
            }
            spill::Read::Spilled(body) => Ok(Response::from_parts(parts, body)),
        };
    }
    let _in_flight = in_flight;
    let limited = Limited::new(incoming, MAX_UPSTREAM_BODY);
    let bytes = match timeout_at(total_deadline, limited.collect()).await {
        Err(_) => {
            return Err(ProxyError::Timeout {
                backend: name(),
                what: "complete response",
                after: total,
            })
        }
        Ok(Err(e)) => return Err(read_failed(name(), &*e)),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if count_cache && parts.status.is_success() {
        backend.state.cache.count_json(&bytes);
    }
    if !decode.translates() {
        return Ok(Response::from_parts(parts, body::full(bytes)));
    }
    let (status, bytes) = if again.is_empty() || !parts.status.is_success() {
        decode.whole(parts.status, bytes, model, id)
    } else {
        let mut replies = vec![bytes];
        for request in again {
            match send_again(client, backend, wire, request, total_deadline, total).await? {
                (s, b) if s.is_success() => replies.push(b),
                // A later failure is the answer, in the client's shape.
                (s, b) => return finish(parts, decode.whole(s, b, model, id), &name),
            }
        }
        decode.merge(parts.status, &replies)
    }
    .map_err(|reason| ProxyError::BadUpstream {
        backend: name(),
        reason,
    })?;
    parts.status = status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Response::from_parts(parts, body::full(bytes)))
}

/// A translated whole reply as the response.
fn finish(
    mut parts: http::response::Parts,
    translated: Result<(http::StatusCode, Bytes), String>,
    name: &dyn Fn() -> String,
) -> Result<Response, ProxyError> {
    let (status, bytes) = translated.map_err(|reason| ProxyError::BadUpstream {
        backend: name(),
        reason,
    })?;
    parts.status = status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Response::from_parts(parts, body::full(bytes)))
}

/// Sends a repeated request within the exchange's total deadline; its status and body.
async fn send_again(
    client: &crate::backend::HttpClient,
    backend: &Arc<Backend>,
    wire: Wire,
    request: http::Request<crate::backend::UpstreamBody>,
    deadline: Instant,
    total: std::time::Duration,
) -> Result<(http::StatusCode, Bytes), ProxyError> {
    let name = || backend.name().to_string();
    let timeout = || ProxyError::Timeout {
        backend: name(),
        what: "complete response",
        after: total,
    };
    let resp = timeout_at(deadline, backend.send(client, wire, request))
        .await
        .map_err(|_| timeout())??;
    let status = resp.status();
    let bytes = timeout_at(
        deadline,
        Limited::new(resp.into_body(), MAX_UPSTREAM_BODY).collect(),
    )
    .await
    .map_err(|_| timeout())?
    .map_err(|e| read_failed(name(), &*e))?
    .to_bytes();
    Ok((status, bytes))
}

/// A whole reply that could not be read: too large to translate (the limit named), or
/// broken off.
fn read_failed(backend: String, e: &(dyn std::error::Error + 'static)) -> ProxyError {
    let reason = if e.is::<http_body_util::LengthLimitError>() {
        format!(
            "the reply is larger than {} MiB, the most the router reads whole to translate it; ask for a stream",
            MAX_UPSTREAM_BODY >> 20
        )
    } else {
        format!("reading the response failed: {e}")
    };
    ProxyError::BadUpstream { backend, reason }
}

/// A copy of a request with a whole body (for sending it again); `None` for a streamed one.
fn copy_request(
    r: &http::Request<crate::backend::UpstreamBody>,
) -> Option<http::Request<crate::backend::UpstreamBody>> {
    let http_body_util::Either::Left(body) = r.body() else {
        return None;
    };
    let mut copy = http::Request::new(http_body_util::Either::Left(body.clone()));
    *copy.method_mut() = r.method().clone();
    *copy.uri_mut() = r.uri().clone();
    *copy.version_mut() = r.version();
    *copy.headers_mut() = r.headers().clone();
    Some(copy)
}
