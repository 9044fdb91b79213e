//! The body one attempt sends, for the backend it picked: passed through in the client's
//! own wire when the backend speaks it (model name spliced, global prompt added), else the
//! pivot form with the backend's model, reasoning level and global prompt, encoded into
//! the backend's wire.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use super::attempt::EffortNote;
use super::fields::splice_model;
use super::op::{Operation, Wire};
use super::usage::UsageFix;
use super::{Call, Core};
use crate::backend::Backend;
use crate::config::SelectionStrategy;
use crate::error::ProxyError;
use crate::protocol::codec::{self, Decode, EncodeCtx, UsageNeed};
use crate::routing::Target;

/// Marks the wire a pipeline response is in.
#[derive(Debug, Clone, Copy)]
pub struct Replied(pub Wire);

/// What the exchange needs.
pub struct ForExchange {
    /// The request to send.
    pub request: http::Request<crate::backend::UpstreamBody>,
    /// The wire it is in.
    pub wire: Wire,
    /// How its reply is read back.
    pub decode: Decode,
    /// A usage fix for its OpenAI-shaped reply.
    pub usage: Option<UsageFix>,
    /// Count prompt-cache usage in its reply (PrefixAwareHash routes).
    pub count_cache: bool,
}

/// One attempt's request and what to do with its reply.
pub struct Prepared {
    /// For the exchange.
    pub exchange: ForExchange,
    /// A reasoning level changed for the backend.
    pub effort: Option<EffortNote>,
    /// Headers for the client's response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The wire the reply will be in.
    pub replies_in: Replied,
}

static TOKEN_COUNT: HeaderName = HeaderName::from_static("x-continuum-token-count");

/// Names the hosted tools left out of a Responses request for a backend that cannot run
/// them.
static DROPPED_TOOLS: HeaderName = HeaderName::from_static("x-continuum-dropped-tools");

/// Hosted tools (`web_search`, `file_search`, …) asked of a backend that cannot run them:
/// left out (and named in a header) when `tool_choice` lets the model go without them,
/// else a 400 naming the tool.
fn hosted_tools(
    r: &crate::protocol::responses::ChatRequest,
    backend: &Backend,
) -> Result<Option<HeaderValue>, ProxyError> {
    let Some(first) = r.hosted_tools.first() else {
        return Ok(None);
    };
    if !r.tool_choice_auto {
        return Err(ProxyError::InvalidField {
            param: "tools",
            message: format!(
                "the hosted tool '{first}' cannot run on backend '{}' (type {}); remove it or let tool_choice be auto",
                backend.name(),
                backend.config.kind.as_str()
            ),
        });
    }
    Ok(HeaderValue::from_str(&r.hosted_tools.join(", ")).ok())
}

/// Prepares the request for `backend` (which speaks the call's operation: selection
/// passes over backends that do not).
pub fn prepare(
    core: &Core,
    call: &Call,
    backend: &Backend,
    target: &Target,
    strategy: SelectionStrategy,
) -> Result<Prepared, ProxyError> {
    let wire = backend
        .wire_for(call.op, &target.upstream_model)
        .ok_or_else(|| ProxyError::BadUpstream {
            backend: backend.name().to_string(),
            reason: format!("does not serve {}", call.endpoint),
        })?;
    let model = &target.upstream_model;
    let prompts = &core.config.global_prompts;
    let injection = (matches!(call.op, Operation::Chat | Operation::Responses) && prompts.enabled)
        .then(|| prompts.prompt_for([&call.routing.model, model], backend.name()))
        .flatten()
        .map(|prompt| crate::prompts::Injection {
            prompt,
            merge: prompts.merge_strategy,
            separator: &prompts.separator,
        });
    let mut headers = Vec::new();
    if let Some(source) = codec::count_source(wire) {
        headers.push((TOKEN_COUNT.clone(), HeaderValue::from_static(source)));
    }
    // File references resolved for this backend (PDFs natively where it takes them).
    let resolved = call.resolved_body(codec::native_pdf(wire, backend.config.kind))?;
    if wire == call.client && wire != codec::pivot(call.op) {
        // The backend speaks the client's own wire: the bytes go through.
        let body = passthrough_body(call, model, resolved.as_ref(), injection)?;
        let request = backend.request(
            wire,
            model,
            call.stream(),
            body,
            &call.id,
            call.beta.as_ref(),
        )?;
        return Ok(Prepared {
            exchange: ForExchange {
                request: request.map(http_body_util::Either::Left),
                wire,
                decode: Decode::Pass,
                usage: None,
                count_cache: false,
            },
            effort: None,
            headers,
            replies_in: Replied(wire),
        });
    }
    let fresh;
    let (pivot, routing) = match &resolved {
        Some(r) => {
            let history = call.turn.as_ref().map_or(&[][..], |t| &t.history[..]);
            fresh = codec::to_pivot(call.client, r, history)?;
            // A Responses call keeps a form (echo fields, input items, hosted tools) for
            // its reply and store, whichever backend's resolution it came from.
            call.keep_pivot(&fresh);
            (&fresh.body, &fresh.routing)
        }
        None => call.pivot()?,
    };
    if let Some(r) = call.responses_request() {
        if let Some(header) = hosted_tools(r, backend)? {
            headers.push((DROPPED_TOOLS.clone(), header));
        }
    }
    let body = with_model(call, pivot, routing, model);
    let (body, effort) = if routing.wants_reasoning {
        normalise_reasoning(backend, model, body)
    } else {
        (body, None)
    };
    let body = match injection {
        Some(inj) => codec::apply_prompt(codec::pivot(call.op), body, inj),
        None => body,
    };
    let id = call.id.to_str().unwrap_or("continuum");
    let ctx = EncodeCtx {
        model,
        stream: call.stream(),
        kind: backend.config.kind,
        routing,
        id,
    };
    let encoded = codec::encode(wire, body, &ctx)?;
    let usage = encoded
        .usage
        .map(|need| usage_fix(need, model, &encoded.body));
    let sent = encoded.body.clone();
    let request = backend.request(
        wire,
        model,
        call.stream(),
        encoded.body,
        &call.id,
        call.beta.as_ref(),
    )?;
    let request = with_content_type(request, call);
    // An upload spooled to disk is streamed from there, after its (maybe rewritten) head.
    let request = match &call.spool {
        Some(spool) => {
            let len = spool.len - spool.head.len() as u64 + sent.len() as u64;
            let mut request = request.map(|_| spool.body(sent));
            request
                .headers_mut()
                .insert(http::header::CONTENT_LENGTH, len.into());
            request
        }
        None => request.map(http_body_util::Either::Left),
    };
    Ok(Prepared {
        exchange: ForExchange {
            request,
            wire,
            decode: encoded.decode,
            usage,
            count_cache: strategy.seeks_cache_hits()
                && matches!(
                    wire,
                    Wire::OpenAiChat | Wire::OpenAiCompletions | Wire::AnthropicMessages
                ),
        },
        effort,
        headers,
        replies_in: Replied(encoded.replies_in),
    })
}

/// The client's body for a backend speaking its own wire: the backend's model name,
/// the global prompt, and a Responses conversation the router holds (inlined for a
/// backend that never saw its ids).
fn passthrough_body(
    call: &Call,
    model: &str,
    resolved: Option<&Bytes>,
    injection: Option<crate::prompts::Injection<'_>>,
) -> Result<Bytes, ProxyError> {
    let body = match resolved {
        // Resolution rewrote the body: the model goes in by a JSON edit.
        Some(r) if model != call.routing.model => set_model(r, model)?,
        Some(r) => r.clone(),
        None if model == call.routing.model || !call.routing.model_in_body => call.body.clone(),
        None => splice_model(&call.body, call.routing.model_span, model),
    };
    let body = match injection {
        Some(inj) => codec::apply_prompt(call.client, body, inj),
        None => body,
    };
    match &call.turn {
        Some(turn) => super::responses::inline_history(&body, turn),
        None => Ok(body),
    }
}

/// The pivot body naming the backend's model: spliced into JSON, replaced in a
/// multipart form, or as it is when the body names no model.
fn with_model(call: &Call, pivot: &Bytes, routing: &super::fields::Routing, model: &str) -> Bytes {
    if model == routing.model {
        pivot.clone()
    } else if call.op.multipart() {
        super::multipart::replace_model(pivot, call.content_type.as_ref(), model)
            .unwrap_or_else(|| pivot.clone())
    } else if !routing.model_in_body {
        pivot.clone()
    } else {
        splice_model(pivot, routing.model_span, model)
    }
}

/// The usage fix the encoding asked for.
fn usage_fix(need: UsageNeed, model: &std::sync::Arc<str>, body: &Bytes) -> UsageFix {
    match need {
        UsageNeed::Strip => UsageFix::Strip,
        UsageNeed::Fill => UsageFix::Fill {
            model: model.clone(),
            request: body.clone(),
        },
    }
}

/// A JSON body with its `model` set.
fn set_model(body: &Bytes, model: &str) -> Result<Bytes, ProxyError> {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    v.insert("model".into(), model.into());
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ProxyError::InvalidJson(e.to_string()))
}

/// A multipart body goes with the client's `Content-Type` (its boundary).
fn with_content_type(
    mut request: http::Request<http_body_util::Full<Bytes>>,
    call: &Call,
) -> http::Request<http_body_util::Full<Bytes>> {
    if let (true, Some(ct)) = (call.op.multipart(), &call.content_type) {
        request
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, ct.clone());
    }
    request
}

/// Rewrites the request's reasoning level for `backend`/`model` (see
/// `protocol::reasoning`); returns the body and, when the level changed, a note of it.
fn normalise_reasoning(backend: &Backend, model: &str, body: Bytes) -> (Bytes, Option<EffortNote>) {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return (body, None);
    };
    let Some(done) = crate::protocol::reasoning::normalise(backend.config.kind, model, &mut map)
    else {
        return (body, None);
    };
    let header = done
        .header
        .and_then(|h| HeaderValue::from_str(&h).ok())
        .map(|header| EffortNote {
            header,
            requested: done.requested.as_str(),
            applied: done
                .applied
                .map_or("none", crate::protocol::reasoning::Effort::as_str),
        });
    match serde_json::to_vec(&map) {
        Ok(b) => (Bytes::from(b), header),
        Err(_) => (body, None),
    }
}
