//! The request pipeline, with no web framework in it: used by the HTTP edge, the library's
//! builder API and any other front end. A [`Call`] (operation, client wire, body) is served
//! by [`serve`]: the fallback chain over models, each model served by the one attempt loop
//! ([`attempt`]: select → permit → backoff → prepare → exchange → record), and the reply
//! translated back into the client's wire when a backend answered in another.

pub mod body;
mod client_reply;
mod continuation;
mod exchange;
pub mod fields;
pub mod hosted;
pub(crate) mod multipart;
pub mod op;
mod prepare;
pub mod responses;
mod spill;
mod stream;
pub mod usage;

mod attempt;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};

use crate::backend::{build_client, HttpClient};
use crate::config::SelectionStrategy;
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::protocol::codec;
use crate::routing::strategy::{self, HashKey};
use crate::state::{Live, Snapshot};

pub use body::{Body, Response};
use fields::{parse_routing, require_messages, Routing, PREFIX_BYTES};
use op::{Operation, Wire};
pub use stream::{CutSwitch, StreamCut};

/// Everything a request is served with: the snapshot it is served with (fields of
/// [`Snapshot`] are reached through `Deref`) and the worker's own parts. Each worker
/// thread has its own instance; its upstream client (and so its connection pool) is the
/// worker's own, so a request never leaves its thread.
#[derive(Clone)]
pub struct Core {
    /// The snapshot this request is served with (see [`Core::current`]).
    pub snap: Arc<Snapshot>,
    /// The serving snapshot and the reload handle, shared by every worker.
    pub live: Arc<Live>,
    /// This worker's upstream client.
    pub client: HttpClient,
    /// The metrics registry (shared by every worker).
    pub metrics: Arc<Metrics>,
    /// This worker's shard of the registry.
    pub shard: usize,
    /// Admission control (`None`: `server.max_concurrent_requests: 0`).
    pub admission: Option<Arc<crate::http::admission::Admission>>,
    /// The API requests in flight (shared by every worker).
    pub requests: Arc<crate::http::admission::Requests>,
    /// Ends this worker's open streams with an error event when the shutdown grace
    /// time is over.
    pub cut: stream::StreamCut,
    /// The response cache (`None`: `cache` off).
    pub cache: Option<Arc<crate::cache::ResponseCache>>,
    /// OTLP span export (`None`: no `tracing.otlp_endpoint`).
    pub exporter: Option<Arc<crate::trace::Exporter>>,
    /// The embedded database (stored responses, files' metadata).
    pub store: Arc<crate::store::Store>,
    /// The Files API's storage.
    pub files: Arc<crate::files::Files>,
}

impl std::ops::Deref for Core {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        &self.snap
    }
}

impl Core {
    /// The same shared state with a new upstream client, for another worker thread. Must be
    /// called on the thread (runtime) that will use it.
    pub fn for_worker(&self) -> Core {
        Core {
            client: build_client(
                self.config.server.connection_pool_size,
                self.config.timeouts.connection,
            ),
            shard: self.metrics.assign_shard(),
            ..self.clone()
        }
    }

    /// This worker's state with the snapshot serving now: a handler takes it once, at the
    /// start, and serves the whole request with it.
    pub fn current(&self) -> Core {
        Core {
            snap: self.live.current.load_full(),
            ..self.clone()
        }
    }
}

/// One request on its way through the pipeline: what it asks for, in which wire, and the
/// body as received (its pivot form made once, on first need).
pub struct Call {
    /// The operation.
    pub op: Operation,
    /// The wire the client speaks.
    pub client: Wire,
    /// Metrics label of the route it came by.
    pub endpoint: &'static str,
    /// The body as received.
    pub body: Bytes,
    /// Its routing fields.
    pub routing: Routing,
    /// The pivot form, when the client's wire is not the pivot.
    pivot: OnceLock<codec::Pivot>,
    /// Who owns what this call stores (see `auth::owner_of`).
    pub owner: String,
    /// A Responses call's state (loaded before routing).
    turn: Option<responses::Turn>,
    /// An upload spooled to disk (image edits and variations): `body` holds its head.
    pub spool: Option<Arc<crate::files::spool::Spool>>,
    /// Uploaded files the request refers to (loaded before routing, the caller's own).
    files: Vec<crate::protocol::files::StoredFile>,
    /// The client's `anthropic-beta` header (passed to Anthropic backends).
    pub beta: Option<HeaderValue>,
    /// The client's `Content-Type` (a multipart body's boundary goes with it).
    pub content_type: Option<HeaderValue>,
    /// The `Host` the client addressed (for URLs of images the router hosts).
    pub host: Option<HeaderValue>,
    /// `X-Session-ID`, else the client's credentials: ConsistentHash keys.
    session: Option<HeaderValue>,
    credentials: Option<HeaderValue>,
    /// The request id, sent to backends.
    pub id: HeaderValue,
    /// When the whole call must be answered: one total deadline that every attempt,
    /// retry and fallback shares, set when the first attempt starts (`timeouts.request`'s
    /// total for the call's kind and that attempt's model).
    deadline: OnceLock<tokio::time::Instant>,
    /// The prompt's blocks for `CacheAware` (made on first need).
    prompt: OnceLock<crate::routing::prefix_index::PromptBlocks>,
}

impl Call {
    /// A call from a request's body and headers; refuses bodies routing cannot read (400).
    pub fn new(
        core: &Core,
        op: Operation,
        client: Wire,
        endpoint: &'static str,
        body: Bytes,
        headers: &HeaderMap,
        id: HeaderValue,
    ) -> Result<Call, ProxyError> {
        let content_type = headers.get(header::CONTENT_TYPE).cloned();
        let routing = if op.multipart() {
            Routing::named(multipart::model(&body, content_type.as_ref())?)
        } else {
            match parse_routing(&body) {
                Err(ProxyError::MissingModel) if client == Wire::TeiSparse => {
                    codec::check_request(client, &body)?;
                    Routing::named(sole_model(core, op, endpoint)?)
                }
                other => other?,
            }
        };
        if matches!(op, Operation::Chat | Operation::CountTokens) {
            require_messages(&body, &routing)?;
        }
        codec::check_request(client, &body)?;
        Ok(Call {
            op,
            client,
            endpoint,
            body,
            routing,
            pivot: OnceLock::new(),
            owner: String::new(),
            turn: None,
            spool: None,
            files: Vec::new(),
            beta: headers.get("anthropic-beta").cloned(),
            content_type,
            host: headers.get(header::HOST).cloned(),
            session: headers.get("x-session-id").cloned(),
            credentials: headers
                .get(header::AUTHORIZATION)
                .or_else(|| headers.get("x-api-key"))
                .cloned(),
            id,
            deadline: OnceLock::new(),
            prompt: OnceLock::new(),
        })
    }

    /// The call's deadline, set by its first attempt (at `model`'s total deadline).
    fn deadline(&self, core: &Core, model: &str) -> tokio::time::Instant {
        *self.deadline.get_or_init(|| {
            let t = &core.config.timeouts;
            let (standard, streaming) = t.for_model(model);
            let total = if self.op.makes_images() {
                t.image_generation.total
            } else if self.stream() {
                streaming.total
            } else {
                standard.total
            };
            tokio::time::Instant::now() + total
        })
    }

    /// The model the client asked for.
    pub fn model(&self) -> &str {
        &self.routing.model
    }

    /// Whether the client asked for a stream.
    pub fn stream(&self) -> bool {
        self.routing.stream && self.op.streams()
    }

    /// The request in the operation's pivot wire, with its routing fields.
    fn pivot(&self) -> Result<(&Bytes, &Routing), ProxyError> {
        if self.client == codec::pivot(self.op) {
            return Ok((&self.body, &self.routing));
        }
        let p = self.pivot_form()?;
        Ok((&p.body, &p.routing))
    }

    fn pivot_form(&self) -> Result<&codec::Pivot, ProxyError> {
        if let Some(p) = self.pivot.get() {
            return Ok(p);
        }
        let history = self.turn.as_ref().map_or(&[][..], |t| &t.history[..]);
        let made = codec::to_pivot(self.client, &self.body, history)?;
        Ok(self.pivot.get_or_init(|| made))
    }

    /// The client's body with its file references resolved for a backend that takes PDFs
    /// natively (`native_pdf`) or not; `None` when it refers to no files.
    fn resolved_body(&self, native_pdf: bool) -> Result<Option<Bytes>, ProxyError> {
        if self.files.is_empty() {
            return Ok(None);
        }
        let caps = crate::protocol::files::Caps {
            native_pdf,
            max_bytes: usize::try_from(self.resolved_budget()).unwrap_or(usize::MAX),
        };
        crate::protocol::files::resolve(self.client, &self.body, &self.files, caps)
            .map(Some)
            .map_err(crate::protocol::files::FileError::into_proxy)
    }

    /// Most bytes resolved files may add to a request (their base64 or text).
    fn resolved_budget(&self) -> u64 {
        // Base64 grows a file by a third; the load step already capped the raw bytes.
        self.files.iter().map(|f| f.bytes.len() as u64).sum::<u64>() * 2 + (1 << 20)
    }

    /// Keeps `p` as the call's pivot form when it has none yet (its file references were
    /// resolved for the first backend tried).
    fn keep_pivot(&self, p: &codec::Pivot) {
        if self.client != codec::pivot(self.op) {
            let _ = self.pivot.get_or_init(|| p.clone());
        }
    }

    /// A Responses request's chat form (what the reply translation and the store need).
    fn responses_request(&self) -> Option<&crate::protocol::responses::ChatRequest> {
        self.pivot.get().and_then(|p| p.responses.as_ref())
    }

    /// The backend a Responses call must go to (it holds the previous response).
    fn pinned(&self) -> Option<&str> {
        self.turn.as_ref().and_then(|t| t.pinned.as_deref())
    }

    /// The prompt as `CacheAware` sees it (made on first need): the text of its system
    /// prompt, instructions, messages and input, in that order, then its tools as sent
    /// (Claude Code's per-request billing block left out of the system prompt); see
    /// [`crate::routing::prompt_text`].
    pub fn prompt_blocks(&self) -> &crate::routing::prefix_index::PromptBlocks {
        self.prompt.get_or_init(|| {
            let r = &self.routing;
            let part = |span: Option<(usize, usize)>| span.map(|(a, b)| &self.body[a..b]);
            let system = part(r.system_span)
                .map(|s| crate::protocol::anthropic_client::system_for_hashing(s));
            // The system prompt first (OpenAI's is the first message; tools, which the
            // chat templates put after it, then differ between wires only from there).
            let mut text = Vec::with_capacity(self.body.len());
            let parts = [
                system.as_deref(),
                part(r.instructions_span),
                part(r.messages_span),
                part(r.input_span),
            ];
            for p in parts.into_iter().flatten() {
                crate::routing::prompt_text::append(p, &mut text);
            }
            if let Some(tools) = part(r.tools_span) {
                text.extend_from_slice(tools);
            }
            crate::routing::prefix_index::PromptBlocks::new([text.as_slice()])
        })
    }

    /// The key the hashing strategies use: `X-Session-ID`, else `user`, else the client's
    /// credentials (ConsistentHash); the prompt's first bytes (PrefixAwareHash,
    /// BoundedLoadHash).
    fn hash_key(&self, strategy: SelectionStrategy) -> HashKey {
        let r = &self.routing;
        match strategy {
            SelectionStrategy::ConsistentHash => {
                let user = r.user_span.map(|(a, b)| &self.body[a..b]);
                self.session
                    .as_ref()
                    .map(HeaderValue::as_bytes)
                    .or(user)
                    .or(self.credentials.as_ref().map(HeaderValue::as_bytes))
                    .map(strategy::hash_key)
            }
            SelectionStrategy::PrefixAwareHash | SelectionStrategy::BoundedLoadHash => {
                r.messages_span.map(|(a, b)| {
                    let end = b.min(a + PREFIX_BYTES);
                    strategy::hash_key(&self.body[a..end])
                })
            }
            _ => None,
        }
    }
}

/// The uploaded files a request refers to (`{"type":"file","file":{"file_id"}}` and its
/// kin in every client wire), read for resolution; an id that is not the caller's, or not
/// there, is a 400 naming it. At most `server.max_body_size` bytes of files are read.
async fn load_files(
    core: &Core,
    call: &Call,
) -> Result<Vec<crate::protocol::files::StoredFile>, ProxyError> {
    use crate::protocol::files::{file_refs, StoredFile};
    let ids = file_refs(call.client, &call.body)?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let files_config = &core.config.files;
    if !files_config.enabled {
        return Err(ProxyError::InvalidField {
            param: "messages",
            message:
                "the request refers to uploaded files, but the Files API is off (files.enabled)"
                    .into(),
        });
    }
    let param = if call.client == Wire::OpenAiResponses {
        "input"
    } else {
        "messages"
    };
    let budget = core.config.server.max_body_size;
    let mut used = 0u64;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let meta = core.files.get(&id).await?;
        let mine = |m: &crate::files::FileMeta| {
            !files_config.auth.enforce_ownership || m.owner == call.owner
        };
        let Some(meta) = meta.filter(mine) else {
            return Err(ProxyError::InvalidField {
                param,
                message: format!("no file found with id '{id}'"),
            });
        };
        used += meta.bytes;
        if used > budget {
            return Err(ProxyError::InvalidField {
                param,
                message: format!(
                    "the files this request refers to are larger than {budget} bytes together (server.max_body_size)"
                ),
            });
        }
        let bytes = core.files.read(&meta).await?;
        out.push(StoredFile {
            id: meta.id,
            filename: meta.filename,
            mime: meta.mime,
            bytes,
        });
    }
    Ok(out)
}

/// A conversation held by backend `b` (its own response ids) can only go on there: the
/// model must be one `b` serves (a 400 naming both otherwise).
fn pinned_serves(core: &Core, b: &str, model: &str) -> Result<(), ProxyError> {
    let index = core.index.load();
    let served = index.resolve(model).is_ok_and(|route| {
        route
            .targets()
            .iter()
            .any(|t| core.backends[t.backend].name() == b)
    });
    if served {
        return Ok(());
    }
    Err(ProxyError::InvalidField {
        param: "previous_response_id",
        message: format!(
            "the previous response is held by backend '{b}', which does not serve the model '{model}'; continue it with a model that backend serves"
        ),
    })
}

/// The one model served for `op` when a request names none (TEI's shapes carry no
/// `model`): a 400 naming the choices when there are several.
fn sole_model(core: &Core, op: Operation, endpoint: &str) -> Result<String, ProxyError> {
    let mut models: Vec<String> = Vec::new();
    for b in core
        .backends
        .iter()
        .filter(|b| b.wire_for(op, "").is_some())
    {
        for m in b.models().iter() {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
    }
    match models.len() {
        1 => Ok(models.remove(0)),
        0 => Err(ProxyError::InvalidField {
            param: "model",
            message: format!("no backend serves {endpoint} (a backend of type tei does)"),
        }),
        _ => Err(ProxyError::InvalidField {
            param: "model",
            message: format!(
                "several models serve {endpoint} ({}): name one with a 'model' field",
                models.join(", ")
            ),
        }),
    }
}

/// Serves a call: the fallback chain over the requested model and its fallbacks, each
/// served by the attempt loop; the reply comes back in the client's wire.
pub async fn serve(core: &Core, call: &mut Call) -> Result<Response, ProxyError> {
    if call.op == Operation::Responses {
        let turn = responses::begin(core, call).await?;
        if let Some(b) = &turn.pinned {
            pinned_serves(core, b, &call.routing.model)?;
        }
        call.turn = Some(turn);
    }
    call.files = load_files(core, call).await?;
    let call = &*call;
    let resp = serve_chain(core, call).await?;
    let resp = client_reply::to_client(core, resp, call).await?;
    if call.op == Operation::ImageGenerate {
        return hosted::host_images(core, call, resp).await;
    }
    Ok(resp)
}

async fn serve_chain(core: &Core, call: &Call) -> Result<Response, ProxyError> {
    let routing = &call.routing;
    let index = core.index.load();
    let fallback = &core.config.fallback;
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
            core.metrics.fallback(core.shard);
            tracing::info!(request_id = call.id.to_str().unwrap_or(""), from = %routing.model, to = model, "falling back");
        }
        // Models after this one, for continuing a stream that breaks mid-way.
        let rest = &chain[i.min(chain.len())..];
        let continues = fallback.mid_stream_continue
            && call.stream()
            && !rest.is_empty()
            && call.client == Wire::OpenAiChat;
        let outcome = match index.resolve(model) {
            Ok(route) => {
                let strategy = route.strategy.unwrap_or(core.config.selection_strategy);
                let plan = attempt::ModelPlan {
                    route,
                    strategy,
                    key: call.hash_key(strategy),
                    continues,
                    fallback: i > 0,
                };
                attempt::serve_model(core, plan, call).await
            }
            Err(ProxyError::ModelNotFound(m)) => Err(crate::routing::not_found(&core.backends, &m)),
            Err(e) => Err(e),
        };
        let triggers = &fallback.triggers;
        let fall_back = match &outcome {
            Ok(resp) => triggers.error_codes.contains(&resp.status().as_u16()),
            Err(ProxyError::Timeout { .. }) => triggers.timeout,
            Err(
                ProxyError::Unreachable { .. }
                | ProxyError::BadUpstream { .. }
                | ProxyError::ModelsUnknown { .. },
            ) => triggers.connection_error,
            Err(ProxyError::NoHealthyBackend { .. }) => triggers.circuit_breaker_open,
            Err(ProxyError::ModelNotFound(_)) => triggers.model_not_found || i > 0,
            Err(_) => false,
        };
        if !fall_back {
            return match outcome {
                Ok(resp) if continues && resp.status().is_success() => Ok(continuation::wrap(
                    resp, core, &call.body, model, rest, &call.id,
                )),
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
async fn serve_continuation(
    core: Core,
    body: Bytes,
    model: String,
    id: HeaderValue,
    continues: bool,
) -> Result<Response, ProxyError> {
    let call = Call::new(
        &core,
        Operation::Chat,
        Wire::OpenAiChat,
        "/v1/chat/completions",
        body,
        &HeaderMap::new(),
        id,
    )?;
    let index = core.index.load_full();
    let route = index.resolve(&model)?;
    let strategy = route.strategy.unwrap_or(core.config.selection_strategy);
    let plan = attempt::ModelPlan {
        route,
        strategy,
        key: call.hash_key(strategy),
        continues,
        // A continuation serves a fallback model of the stream that broke.
        fallback: true,
    };
    attempt::serve_model(&core, plan, &call).await
}
