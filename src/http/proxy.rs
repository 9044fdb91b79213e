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

use super::stream::{GuardedStream, StreamLimits, StreamMode, TranslatedSse};
use super::tap::{fix_usage, tap, UsageFix};
use super::{describe_client_error, request_id, AppState, X_CONTINUUM_BACKEND, X_CONTINUUM_MODEL};
use crate::backend::{ollama, Adapter, Backend, X_REQUEST_ID};
use crate::config::SelectionStrategy;
use crate::error::ProxyError;
use crate::metrics::Served;
use crate::protocol::errors::ProviderError;
use crate::protocol::{anthropic_backend, gemini};
use crate::resilience::{retry, Permit};
use crate::routing::strategy::{self, HashKey};
use crate::routing::Route;

/// The only fields the router reads from a chat request (borrowed, not copied).
#[derive(Deserialize)]
struct RoutingFields<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    user: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning_effort: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reasoning: Option<&'a RawValue>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// What routing needs from the body: the model name, where it sits, `stream`, and where
/// `user` and `messages` sit (for the hashing strategies).
struct Routing {
    model: String,
    model_span: (usize, usize),
    stream: bool,
    user_span: Option<(usize, usize)>,
    messages_span: Option<(usize, usize)>,
    /// Which output-length parameters the client set (for the backends' quirks).
    limits: crate::backend::LengthParams,
    /// The client asked for a reasoning level (normalised per backend).
    wants_reasoning: bool,
    /// `stream_options` is present, and whether it asks for a usage chunk.
    stream_options: Option<bool>,
}

/// Bytes of the prompt that PrefixAwareHash hashes: enough to cover a system prompt and
/// the start of the conversation, which is what KV and prompt caches share.
const PREFIX_BYTES: usize = 512;

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
    let span = |raw: &RawValue| {
        let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
        (start, start + raw.get().len())
    };
    Ok(Routing {
        model: model.into_owned(),
        model_span: span(raw),
        stream: fields.stream.unwrap_or(false),
        user_span: fields.user.filter(|u| u.get() != "null").map(span),
        messages_span: fields.messages.map(span),
        limits: crate::backend::LengthParams {
            max_tokens: fields.max_tokens.is_some(),
            max_completion_tokens: fields.max_completion_tokens.is_some(),
        },
        wants_reasoning: fields.reasoning_effort.is_some() || fields.reasoning.is_some(),
        stream_options: fields
            .stream_options
            .map(|o| o.include_usage.unwrap_or(false)),
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
    serve_openai(state, req, "/v1/chat/completions").await
}

/// Handler of `POST /v1/completions` (legacy text completions), for OpenAI-compatible backends.
pub async fn completions(State(state): State<Arc<AppState>>, req: Request) -> Response {
    serve_openai(state, req, "/v1/completions").await
}

/// Handler of `POST /v1/embeddings`, for OpenAI-compatible backends.
pub async fn embeddings(State(state): State<Arc<AppState>>, req: Request) -> Response {
    serve_openai(state, req, "/v1/embeddings").await
}

/// An OpenAI-format request to `endpoint`, through the routing pipeline.
async fn serve_openai(state: Arc<AppState>, req: Request, endpoint: &'static str) -> Response {
    let state = state.current();
    let timer = super::start_timer(&state, endpoint, req.extensions());
    let id = request_id(req.headers());
    let mut resp = match proxy_chat(&state, req, &id, endpoint).await {
        Ok(resp) => resp,
        Err(err) => {
            log_error(&err, &id);
            err.into_response()
        }
    };
    resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
    tap(resp, timer)
}

fn log_error(err: &ProxyError, id: &HeaderValue) {
    let id = id.to_str().unwrap_or("");
    if let ProxyError::Unreachable { url, .. } = err {
        tracing::warn!(request_id = id, status = err.status().as_u16(), error = %err, url = %url, "request failed");
    } else if err.status().is_server_error() {
        tracing::warn!(request_id = id, status = err.status().as_u16(), error = %err, "request failed");
    } else {
        tracing::debug!(request_id = id, status = err.status().as_u16(), error = %err, "request rejected");
    }
}

async fn proxy_chat(
    state: &AppState,
    req: Request,
    id: &HeaderValue,
    endpoint: &'static str,
) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, state.config.server.max_body_size).await?;
    let chat = if endpoint == "/v1/chat/completions" {
        ChatRequest::openai(body)?
    } else {
        ChatRequest::openai_endpoint(body, endpoint)?
    };
    super::access::check_model(&parts.extensions, chat.model())?;
    super::cached::serve_cached(
        state,
        endpoint,
        &parts.extensions,
        &chat.body,
        chat.stream(),
        route_chat(state, &parts.headers, &chat, id),
    )
    .await
}

/// Routes a chat request: resolve, select, retry, fall back. Every chat endpoint
/// (OpenAI's and Anthropic's) comes through here.
pub(super) async fn route_chat(
    state: &AppState,
    headers: &HeaderMap,
    req: &ChatRequest,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let routing = &req.routing;
    let index = state.index.load();
    let fallback = &state.config.fallback;
    let chain: &[String] = if fallback.enabled {
        let chain = fallback
            .chains
            .iter()
            .find(|(m, _)| *m == routing.model)
            .map_or(&[][..], |(_, c)| &c[..]);
        &chain[..chain.len().min(fallback.max_fallback_attempts as usize)]
    } else {
        &[]
    };
    let models = std::iter::once(routing.model.as_str()).chain(chain.iter().map(String::as_str));
    let mut last: Option<Result<Response, ProxyError>> = None;
    for (i, model) in models.enumerate() {
        if i > 0 {
            state.metrics.fallback(state.shard);
            tracing::info!(request_id = id.to_str().unwrap_or(""), from = %routing.model, to = model, "falling back");
        }
        // Models after this one, for continuing a stream that breaks mid-way.
        let rest = &chain[i.min(chain.len())..];
        let continues = fallback.mid_stream_continue
            && routing.stream
            && !rest.is_empty()
            && !req.is_anthropic();
        let outcome = match index.resolve(model) {
            Ok(route) => {
                let strategy = route.strategy.unwrap_or(state.config.selection_strategy);
                let key = hash_key(strategy, headers, &req.body, routing);
                let plan = ModelPlan {
                    route,
                    strategy,
                    key,
                    continues,
                };
                serve_model(state, plan, req, id).await
            }
            Err(e) => Err(e),
        };
        let triggers = &fallback.triggers;
        let fall_back = match &outcome {
            Ok(resp) => triggers.error_codes.contains(&resp.status().as_u16()),
            Err(ProxyError::Timeout { .. }) => triggers.timeout,
            Err(ProxyError::Unreachable { .. } | ProxyError::BadUpstream { .. }) => {
                triggers.connection_error
            }
            Err(ProxyError::NoHealthyBackend(_)) => triggers.circuit_breaker_open,
            Err(ProxyError::ModelNotFound(_)) => triggers.model_not_found || i > 0,
            Err(_) => false,
        };
        if !fall_back {
            return match outcome {
                Ok(resp) if continues && resp.status().is_success() => Ok(
                    super::continuation::wrap(resp, state, &req.body, model, rest, id),
                ),
                other => other,
            };
        }
        // The first model's failure is what the client sees if no fallback answers.
        if last.is_none() {
            last = Some(outcome);
        }
    }
    last.unwrap_or_else(|| Err(ProxyError::ModelNotFound(routing.model.clone())))
}

/// Serves `model` for a continued stream: its route, strategy and retries as for any
/// request (the body already names `model` and carries the prefill).
pub(super) async fn serve_continuation(
    state: AppState,
    body: Bytes,
    model: String,
    id: HeaderValue,
    continues: bool,
) -> Result<Response, ProxyError> {
    let req = ChatRequest::openai(body)?;
    let index = state.index.load_full();
    let route = index.resolve(&model)?;
    let strategy = route.strategy.unwrap_or(state.config.selection_strategy);
    let key = hash_key(strategy, &HeaderMap::new(), &req.body, &req.routing);
    let plan = ModelPlan {
        route,
        strategy,
        key,
        continues,
    };
    serve_model(&state, plan, &req, &id).await
}

/// The key the hashing strategies use: `X-Session-ID`, else `user`, else the client's
/// credentials (ConsistentHash); the prompt's first bytes (PrefixAwareHash).
fn hash_key(strategy: SelectionStrategy, headers: &HeaderMap, body: &[u8], r: &Routing) -> HashKey {
    match strategy {
        SelectionStrategy::ConsistentHash => {
            let session = headers.get("x-session-id").map(|v| v.as_bytes());
            let user = r.user_span.map(|(a, b)| &body[a..b]);
            let auth = headers
                .get(header::AUTHORIZATION)
                .or_else(|| headers.get("x-api-key"))
                .map(|v| v.as_bytes());
            session.or(user).or(auth).map(strategy::hash_key)
        }
        SelectionStrategy::PrefixAwareHash => r.messages_span.map(|(a, b)| {
            let end = b.min(a + PREFIX_BYTES);
            strategy::hash_key(&body[a..end])
        }),
        _ => None,
    }
}

/// Backends already tried for this request (a bit set; indices past 127 are not tracked,
/// which only means such a backend may be retried first).
#[derive(Default)]
struct Tried(u128);

impl Tried {
    fn contains(&self, i: usize) -> bool {
        i < 128 && self.0 & (1 << i) != 0
    }
    fn insert(&mut self, i: usize) {
        if i < 128 {
            self.0 |= 1 << i;
        }
    }
}

/// Says when a reasoning level was clamped or dropped for the backend.
static X_CONTINUUM_REASONING_EFFORT: http::HeaderName =
    http::HeaderName::from_static("x-continuum-reasoning-effort");

/// A reasoning level changed for the backend: the header to send and the levels
/// (requested, applied) for the metric.
struct EffortNote {
    header: HeaderValue,
    requested: &'static str,
    applied: &'static str,
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

/// How usage is made sure of for an OpenAI-compatible backend. Backends that stream usage
/// when asked (OpenAI, vLLM, llama.cpp) are asked for it on every stream, and the chunk is
/// dropped again when the client did not ask; for the others, usage the client asked for
/// (or any non-streamed reply's) is counted by the router when the backend leaves it out.
fn usage_fix(
    backend: &Backend,
    model: &Arc<str>,
    body: Bytes,
    routing: &Routing,
) -> (Bytes, Option<UsageFix>) {
    use crate::config::BackendType;
    let streams_usage = matches!(
        backend.config.kind,
        BackendType::Openai | BackendType::Vllm | BackendType::Llamacpp
    );
    match (routing.stream, routing.stream_options) {
        (true, None) if streams_usage => {
            // `{"stream_options":{"include_usage":true},` + the rest of the object.
            let start = body.iter().position(|b| *b == b'{').map_or(0, |i| i + 1);
            let field: &[u8] = b"\"stream_options\":{\"include_usage\":true},";
            let mut out = BytesMut::with_capacity(body.len() + field.len());
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(field);
            out.extend_from_slice(&body[start..]);
            (out.freeze(), Some(UsageFix::Strip))
        }
        (true, Some(true)) | (false, _) if !streams_usage => {
            let fix = UsageFix::Fill {
                model: model.clone(),
                request: body.clone(),
            };
            (body, Some(fix))
        }
        _ => (body, None),
    }
}

/// Frees a half-open circuit's trial slot if the attempt ends without a verdict.
struct TrialGuard<'a> {
    backend: &'a Backend,
    permit: Permit,
    recorded: bool,
}

impl Drop for TrialGuard<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.backend.state.breaker.release(self.permit);
        }
    }
}

/// Serves one model: pick a backend by the strategy, retry failures (on another backend
/// first, then with backoff), and feed every outcome to the backend's breaker and latency.
/// How one model is to be served.
struct ModelPlan<'a> {
    /// The model's route.
    route: &'a Route,
    /// Its selection strategy.
    strategy: SelectionStrategy,
    /// The hashing strategies' key.
    key: HashKey,
    /// Streams hand failures to a continuation instead of ending with an error event.
    continues: bool,
}

async fn serve_model(
    state: &AppState,
    plan: ModelPlan<'_>,
    req: &ChatRequest,
    id: &HeaderValue,
) -> Result<Response, ProxyError> {
    let ModelPlan {
        route,
        strategy,
        key,
        continues,
    } = plan;
    let routing = &req.routing;
    let backends = &state.backends;
    let mut tried = Tried::default();
    let mut attempt = 0u32;
    let mut retry_after = None;
    let mut previous: Option<Result<Response, ProxyError>> = None;
    loop {
        attempt += 1;
        let now = Instant::now();
        let mut permit = None;
        // A backend over its own rate limit (`rate_limiting.limits.per_backend`) is passed
        // over like an unavailable one; if that leaves none, the answer is 429.
        let mut limited: Option<(usize, crate::ratelimit::Decision)> = None;
        let mut saturated = false;
        let mut incompatible: Option<usize> = None;
        let mut usable = |t: &crate::routing::Target| {
            let b = &backends[t.backend];
            // Completions and embeddings go to OpenAI-compatible backends only.
            if matches!(req.inbound, Inbound::OpenAiEndpoint(_))
                && !matches!(b.adapter, Adapter::OpenAi(_))
            {
                incompatible = Some(t.backend);
                return false;
            }
            // A backend at its `max_concurrent` is passed over.
            if b.config
                .max_concurrent
                .is_some_and(|max| b.state.in_flight() >= max)
            {
                saturated = true;
                return false;
            }
            permit = b.state.try_acquire(now);
            let Some(p) = permit else {
                return false;
            };
            let over = state
                .limits
                .as_ref()
                .and_then(|l| l.admit_backend(t.backend, now.into_std()));
            if let Some(d) = over {
                backends[t.backend].state.breaker.release(p);
                permit = None;
                limited = Some((t.backend, d));
                return false;
            }
            true
        };
        let fresh = route.select(strategy, key, backends, |t| {
            !tried.contains(t.backend) && usable(t)
        });
        let (target, again) = match fresh {
            Some(t) => (t, false),
            None => {
                let again = route.select(strategy, key, backends, &mut usable);
                let Some(t) = again else {
                    if let (Some(b), Inbound::OpenAiEndpoint(path), None) =
                        (incompatible, &req.inbound, &previous)
                    {
                        let b = &backends[b];
                        return Err(ProxyError::InvalidField {
                            param: "model",
                            message: format!(
                                "backend '{}' (type {}) does not serve {path}; route this model to an OpenAI-compatible backend",
                                b.name(),
                                b.config.kind.as_str()
                            ),
                        });
                    }
                    if saturated && previous.is_none() {
                        return Err(ProxyError::Overloaded(
                            "every backend of this model is at its max_concurrent",
                        ));
                    }
                    if let Some((b, decision)) = limited {
                        state.metrics.rate_limited(state.shard);
                        return Err(ProxyError::RateLimited {
                            subject: format!("backend '{}'", backends[b].name()),
                            decision,
                        });
                    }
                    // Breakers may open while we retry: then the last real failure is the answer.
                    return previous.unwrap_or_else(|| {
                        Err(ProxyError::NoHealthyBackend(routing.model.clone()))
                    });
                };
                (t, true)
            }
        };
        tried.insert(target.backend);
        let backend = &backends[target.backend];
        // From here on a cancelled request gives its half-open trial slot back.
        let mut guard = TrialGuard {
            backend,
            permit: permit.unwrap_or(Permit::Free),
            recorded: false,
        };
        if again && attempt > 1 {
            let policy = backend
                .config
                .retry_override
                .as_ref()
                .unwrap_or(&state.config.retry);
            tokio::time::sleep(retry::wait_before_retry(policy, attempt - 1, retry_after)).await;
        }
        tracing::debug!(request_id = id.to_str().unwrap_or(""), model = %routing.model, backend = backend.name(), attempt, "routing");
        let native = match (&req.inbound, &backend.adapter) {
            (Inbound::Anthropic { beta }, Adapter::Anthropic(_)) => Some(beta),
            _ => None,
        };
        let prompts = &state.config.global_prompts;
        let injection = prompts
            .enabled
            .then(|| prompts.prompt_for([&routing.model, &target.upstream_model], backend.name()))
            .flatten()
            .map(|prompt| crate::prompts::Injection {
                prompt,
                merge: prompts.merge_strategy,
                separator: &prompts.separator,
            });
        // Every other pairing works on OpenAI's form, with the model and reasoning level
        // set for this backend.
        let (body, effort_note, openai) = match native {
            Some(_) => (Bytes::new(), None, routing),
            None => {
                let (body, openai) = req.as_openai()?;
                let body = if *target.upstream_model == openai.model {
                    body.clone()
                } else {
                    splice_model(body, openai.model_span, &target.upstream_model)
                };
                let (body, note) = if openai.wants_reasoning {
                    normalise_reasoning(backend, &target.upstream_model, body)
                } else {
                    (body, None)
                };
                let body = match injection {
                    Some(inj) => crate::prompts::apply_openai(&body, inj),
                    None => body,
                };
                (body, note, openai)
            }
        };
        let outcome = match &backend.adapter {
            Adapter::Mock(mock) => Ok(mock
                .chat(&body, routing.stream, &target.upstream_model)
                .await),
            Adapter::OpenAi(api) => 'attempt: {
                // Completions and embeddings (only OpenAI-compatible backends are selected
                // for them) are passed through as they are.
                if let Inbound::OpenAiEndpoint(path) = &req.inbound {
                    let spec = AttemptSpec {
                        model: &target.upstream_model,
                        stream: routing.stream,
                        count_cache: false,
                        continue_on_failure: false,
                        dialect: Dialect::OpenAi,
                    };
                    let request = api.post_request(path, body, id)?;
                    break 'attempt forward(state, backend, api.url(), request, spec).await;
                }
                let spec = AttemptSpec {
                    model: &target.upstream_model,
                    stream: routing.stream,
                    count_cache: strategy == SelectionStrategy::PrefixAwareHash,
                    continue_on_failure: continues,
                    dialect: Dialect::OpenAi,
                };
                let body = crate::backend::adapt_request(
                    backend.config.kind,
                    &target.upstream_model,
                    body,
                    openai.limits,
                );
                let (body, fix) = usage_fix(backend, &target.upstream_model, body, openai);
                let outcome =
                    forward(state, backend, api.url(), api.chat_request(body, id), spec).await;
                match (outcome, fix) {
                    (Ok(resp), Some(fix)) => Ok(fix_usage(resp, fix).await),
                    (outcome, _) => outcome,
                }
            }
            Adapter::Ollama(o) => {
                let (translated, include_usage) =
                    ollama::translate_request(&body, &target.upstream_model, routing.stream)?;
                let spec = AttemptSpec {
                    model: &target.upstream_model,
                    stream: routing.stream,
                    count_cache: false,
                    continue_on_failure: continues,
                    dialect: Dialect::Ollama {
                        include_usage,
                        id: id.to_str().unwrap_or("ollama"),
                    },
                };
                forward(
                    state,
                    backend,
                    o.http.url(),
                    o.chat_request(translated, id),
                    spec,
                )
                .await
            }
            Adapter::Anthropic(a) => {
                let model = &target.upstream_model;
                let (request, dialect) = match native {
                    // An Anthropic client's request goes through byte for byte.
                    Some(beta) => {
                        let body = if **model == routing.model {
                            req.body.clone()
                        } else {
                            splice_model(&req.body, routing.model_span, model)
                        };
                        let body = match injection {
                            Some(inj) => crate::prompts::apply_anthropic(&body, inj),
                            None => body,
                        };
                        (
                            a.messages_request(body, id, beta.as_ref()),
                            Dialect::AnthropicNative,
                        )
                    }
                    None => {
                        let (translated, include_usage) =
                            anthropic_backend::from_openai_request(&body, model, routing.stream)?;
                        (
                            a.messages_request(translated, id, None),
                            Dialect::Anthropic { include_usage },
                        )
                    }
                };
                let spec = AttemptSpec {
                    model,
                    stream: routing.stream,
                    count_cache: false,
                    continue_on_failure: continues,
                    dialect,
                };
                forward(state, backend, &a.endpoint.url, request, spec).await
            }
            Adapter::Gemini(g) => {
                let model = &target.upstream_model;
                let (translated, include_usage) = gemini::from_openai_request(&body, model)?;
                let request = g.generate_request(model, routing.stream, translated, id)?;
                let spec = AttemptSpec {
                    model,
                    stream: routing.stream,
                    count_cache: false,
                    continue_on_failure: continues,
                    dialect: Dialect::Gemini {
                        include_usage,
                        id: id.to_str().unwrap_or("gemini"),
                    },
                };
                forward(state, backend, &g.endpoint.url, request, spec).await
            }
        };
        let ok = match &outcome {
            Ok(resp) => !resp.status().is_server_error(),
            Err(_) => false,
        };
        backend
            .state
            .breaker
            .record(guard.permit, ok, Instant::now());
        guard.recorded = true;
        let policy = backend
            .config
            .retry_override
            .as_ref()
            .unwrap_or(&state.config.retry);
        let retry = attempt < policy.max_attempts
            && match &outcome {
                Ok(resp) => policy
                    .retryable_status_codes
                    .contains(&resp.status().as_u16()),
                Err(e) => e.is_retryable(),
            };
        if !retry {
            let mut resp = outcome?;
            let served = Served {
                backend: backend.clone(),
                model: target.upstream_model.clone(),
            };
            if let Some(note) = effort_note {
                state.metrics.reasoning_adjusted(
                    state.shard,
                    &served,
                    note.requested,
                    note.applied,
                );
                resp.headers_mut()
                    .insert(X_CONTINUUM_REASONING_EFFORT.clone(), note.header);
            }
            resp.extensions_mut().insert(served);
            if state.config.server.expose_backend_header {
                let headers = resp.headers_mut();
                headers.insert(X_CONTINUUM_BACKEND.clone(), backend.name_header.clone());
                if let Some(model) = &target.model_header {
                    headers.insert(X_CONTINUUM_MODEL.clone(), model.clone());
                }
            }
            return Ok(resp);
        }
        retry_after = match &outcome {
            Ok(resp) => retry::retry_after(resp.headers()),
            Err(_) => None,
        };
        state.metrics.retry(state.shard);
        match &outcome {
            Ok(resp) => tracing::info!(
                request_id = id.to_str().unwrap_or(""),
                backend = backend.name(),
                status = resp.status().as_u16(),
                attempt,
                "retrying"
            ),
            Err(e) => {
                tracing::info!(request_id = id.to_str().unwrap_or(""), backend = backend.name(), error = %e, attempt, "retrying")
            }
        }
        previous = Some(outcome.map(|mut resp| {
            if state.config.server.expose_backend_header {
                resp.headers_mut()
                    .insert(X_CONTINUUM_BACKEND.clone(), backend.name_header.clone());
            }
            resp
        }));
    }
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

/// The protocol a chat request arrived in.
enum Inbound {
    /// OpenAI's chat format, which every non-Anthropic backend adapter takes.
    OpenAi,
    /// Another OpenAI endpoint (`/v1/completions`, `/v1/embeddings`): passed to
    /// OpenAI-compatible backends only.
    OpenAiEndpoint(&'static str),
    /// Anthropic's Messages API; passed through as is to Anthropic backends.
    Anthropic {
        /// The client's `anthropic-beta` header.
        beta: Option<HeaderValue>,
    },
}

/// A chat request being routed. An Anthropic client's request is translated to OpenAI's
/// format only when a backend that needs it is picked, so passthrough to Anthropic
/// backends costs no translation and keeps blocks the translation cannot carry.
pub(super) struct ChatRequest {
    /// The body as received.
    body: Bytes,
    /// Its routing fields.
    routing: Routing,
    inbound: Inbound,
    /// OpenAI's form of an Anthropic request, made on first need.
    translated: std::sync::OnceLock<(Bytes, Routing)>,
}

impl ChatRequest {
    /// The body as received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// An OpenAI chat request.
    pub fn openai(body: Bytes) -> Result<ChatRequest, ProxyError> {
        Ok(ChatRequest {
            routing: parse_routing(&body)?,
            body,
            inbound: Inbound::OpenAi,
            translated: std::sync::OnceLock::new(),
        })
    }

    /// An OpenAI-format request to `path` (not chat).
    pub fn openai_endpoint(body: Bytes, path: &'static str) -> Result<ChatRequest, ProxyError> {
        Ok(ChatRequest {
            routing: parse_routing(&body)?,
            body,
            inbound: Inbound::OpenAiEndpoint(path),
            translated: std::sync::OnceLock::new(),
        })
    }

    /// An Anthropic Messages request with the client's headers.
    pub fn anthropic(body: Bytes, headers: &HeaderMap) -> Result<ChatRequest, ProxyError> {
        Ok(ChatRequest {
            routing: parse_routing(&body)?,
            body,
            inbound: Inbound::Anthropic {
                beta: headers.get("anthropic-beta").cloned(),
            },
            translated: std::sync::OnceLock::new(),
        })
    }

    /// The model the client asked for.
    pub fn model(&self) -> &str {
        &self.routing.model
    }

    /// Whether the client asked for a stream.
    pub fn stream(&self) -> bool {
        self.routing.stream
    }

    fn is_anthropic(&self) -> bool {
        matches!(self.inbound, Inbound::Anthropic { .. })
    }

    /// The request in OpenAI's chat format, with its routing fields.
    fn as_openai(&self) -> Result<(&Bytes, &Routing), ProxyError> {
        if let Inbound::OpenAi | Inbound::OpenAiEndpoint(_) = self.inbound {
            return Ok((&self.body, &self.routing));
        }
        if let Some((b, r)) = self.translated.get() {
            return Ok((b, r));
        }
        let (body, _, _) = crate::protocol::anthropic::to_openai_request(&self.body)?;
        let routing = parse_routing(&body)?;
        let (b, r) = self.translated.get_or_init(|| (body, routing));
        Ok((b, r))
    }
}

/// Marks a response that is already in the Anthropic client's own format.
#[derive(Clone, Copy)]
pub(super) struct NativeReply;

/// What one attempt sends besides the body.
struct AttemptSpec<'a> {
    /// The model name the backend gets (picks per-model timeouts).
    model: &'a str,
    /// Whether the client asked for a stream.
    stream: bool,
    /// Count prompt-cache usage (PrefixAwareHash routes).
    count_cache: bool,
    /// A broken stream is continued on a fallback model (`mid_stream: continue`).
    continue_on_failure: bool,
    /// What the backend speaks.
    dialect: Dialect<'a>,
}

/// The wire format of a backend's replies.
#[derive(Clone, Copy)]
enum Dialect<'a> {
    /// OpenAI's: passed through as is.
    OpenAi,
    /// Anthropic's, for an OpenAI client: translated to OpenAI's.
    Anthropic {
        /// The client asked for a usage chunk.
        include_usage: bool,
    },
    /// Anthropic's, for an Anthropic client: passed through and marked [`NativeReply`].
    AnthropicNative,
    /// Gemini's: translated to OpenAI's.
    Gemini {
        /// The client asked for a usage chunk.
        include_usage: bool,
        /// Id for the translated completion.
        id: &'a str,
    },
    /// Ollama's native API: translated to OpenAI's.
    Ollama {
        /// The client asked for a usage chunk (`stream_options.include_usage`).
        include_usage: bool,
        /// Id for the translated completion.
        id: &'a str,
    },
}

async fn forward(
    state: &AppState,
    backend: &Arc<Backend>,
    url: &str,
    request: http::Request<http_body_util::Full<Bytes>>,
    spec: AttemptSpec<'_>,
) -> Result<Response, ProxyError> {
    let AttemptSpec {
        model,
        stream,
        count_cache,
        continue_on_failure,
        dialect,
    } = spec;
    let started = Instant::now();
    let (standard, streaming) = state.config.timeouts.for_model(model);
    let (first_byte, total) = if stream {
        (streaming.first_byte, streaming.total)
    } else {
        (standard.first_byte, standard.total)
    };
    let total_deadline = started + total;
    let first_deadline = (started + first_byte).min(total_deadline);
    let name = || backend.name().to_string();
    let in_flight = backend.state.start_request();

    let upstream = match timeout_at(first_deadline, state.client.request(request)).await {
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
                    url: url.to_string(),
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
    backend.state.record_latency(started.elapsed());
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
        let translate = matches!(
            dialect,
            Dialect::Ollama { .. } | Dialect::Anthropic { .. } | Dialect::Gemini { .. }
        );
        let guarded = GuardedStream::new(
            first,
            incoming,
            StreamLimits {
                chunk_interval: streaming.chunk_interval,
                started,
                total,
            },
            Arc::clone(backend),
            in_flight,
            StreamMode {
                count_cache,
                continue_on_failure: continue_on_failure || translate,
                sse: !matches!(dialect, Dialect::Ollama { .. }),
                max_event: state.config.server.max_stream_event_size as usize,
            },
        );
        let event_stream = HeaderValue::from_static("text/event-stream");
        let body = match dialect {
            Dialect::OpenAi | Dialect::AnthropicNative => Body::new(guarded),
            Dialect::Ollama { include_usage, id } => {
                parts.headers.insert(header::CONTENT_TYPE, event_stream);
                let translator = ollama::StreamTranslator::new(model, id, include_usage);
                Body::new(TranslatedSse::new(
                    guarded,
                    translator,
                    backend.name(),
                    continue_on_failure,
                ))
            }
            Dialect::Gemini { include_usage, id } => {
                parts.headers.insert(header::CONTENT_TYPE, event_stream);
                let translator = gemini::StreamTranslator::new(model, id, include_usage);
                Body::new(TranslatedSse::new(
                    guarded,
                    translator,
                    backend.name(),
                    continue_on_failure,
                ))
            }
            Dialect::Anthropic { include_usage } => {
                parts.headers.insert(header::CONTENT_TYPE, event_stream);
                let translator = anthropic_backend::StreamTranslator::new(include_usage);
                Body::new(TranslatedSse::new(
                    guarded,
                    translator,
                    backend.name(),
                    continue_on_failure,
                ))
            }
        };
        let mut resp = Response::from_parts(parts, body);
        if matches!(dialect, Dialect::AnthropicNative) {
            resp.extensions_mut().insert(NativeReply);
        }
        return Ok(resp);
    }
    let limited = Limited::new(incoming, MAX_UPSTREAM_BODY);
    let bytes = match timeout_at(total_deadline, limited.collect()).await {
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
    if count_cache && parts.status.is_success() {
        backend.state.cache.count_json(&bytes);
    }
    let json = HeaderValue::from_static("application/json");
    let bytes = match dialect {
        Dialect::OpenAi => bytes,
        Dialect::AnthropicNative => {
            let mut resp = Response::from_parts(parts, Body::from(bytes));
            resp.extensions_mut().insert(NativeReply);
            return Ok(resp);
        }
        Dialect::Gemini { id, .. } => {
            parts.headers.insert(header::CONTENT_TYPE, json);
            if parts.status.is_success() {
                gemini::to_openai_response(&bytes, model, id).map_err(|reason| {
                    ProxyError::BadUpstream {
                        backend: name(),
                        reason,
                    }
                })?
            } else {
                let e = ProviderError::from_gemini(parts.status, &bytes);
                parts.status = e.openai_status(parts.status);
                e.openai_body()
            }
        }
        Dialect::Anthropic { .. } => {
            parts.headers.insert(header::CONTENT_TYPE, json);
            if parts.status.is_success() {
                anthropic_backend::to_openai_response(&bytes).map_err(|reason| {
                    ProxyError::BadUpstream {
                        backend: name(),
                        reason,
                    }
                })?
            } else {
                let e = ProviderError::from_anthropic(parts.status, &bytes);
                parts.status = e.openai_status(parts.status);
                e.openai_body()
            }
        }
        Dialect::Ollama { id, .. } => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if parts.status.is_success() {
                ollama::translate_response(&bytes, model, id).map_err(|reason| {
                    ProxyError::BadUpstream {
                        backend: name(),
                        reason,
                    }
                })?
            } else {
                let e = ProviderError::from_openai(parts.status, &bytes);
                parts.status = e.openai_status(parts.status);
                e.openai_body()
            }
        }
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
