//! OpenAI's Responses API on the pipeline: the conversation a `previous_response_id` names
//! is loaded from the store before routing (the caller's own, else 404), and the response
//! is stored after it — made by the router from a chat backend's answer (translated, whole
//! or streamed), or, when a backend that keeps its own state (OpenAI) answered, noted as
//! living there so reads and deletes go to it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue};
use http_body::Frame;

use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{self, Body, Response};
use super::{Call, Core};
use crate::error::ProxyError;
use crate::metrics::Served;
use crate::protocol::responses::{self, StreamTranslator};
use crate::store::{ResponseRecord, Store};

/// A Responses call's state: its id, and the conversation it continues.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The response id the router gives it (`resp_…`).
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Input and output items of the earlier turns, oldest first.
    pub history: Vec<Value>,
    /// The `previous_response_id`, when the router stored it.
    pub previous: Option<String>,
    /// The backend that holds the previous response itself (passthrough to OpenAI): the
    /// call goes there, with the id unchanged.
    pub pinned: Option<String>,
    /// Whether the response is to be stored (`store`, default true).
    pub store: bool,
}

#[derive(Deserialize)]
struct StateFields {
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    store: Option<bool>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new response id.
fn new_id() -> String {
    format!("resp_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Whether a Responses request asks not to be stored (`store: false`).
pub fn unstored(body: &[u8]) -> bool {
    serde_json::from_slice::<StateFields>(body).is_ok_and(|f| f.store == Some(false))
}

/// Loads the conversation `previous_response_id` names (the caller's own, else 404).
pub async fn begin(core: &Core, call: &Call) -> Result<Turn, ProxyError> {
    let fields: StateFields =
        serde_json::from_slice(&call.body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let mut turn = Turn {
        id: new_id(),
        created_at: now(),
        history: Vec::new(),
        previous: None,
        pinned: None,
        store: fields.store.unwrap_or(true),
    };
    let Some(previous) = fields.previous_response_id.filter(|p| !p.is_empty()) else {
        return Ok(turn);
    };
    let not_found = || ProxyError::NotFound {
        kind: "response",
        id: previous.clone(),
    };
    let found = core
        .store
        .conversation(previous.clone())
        .await
        .map_err(|e| ProxyError::Store(e.to_string()))?;
    let (last, items) = found.ok_or_else(not_found)?;
    if last.owner != call.owner {
        return Err(not_found());
    }
    match last.backend {
        Some(b) => turn.pinned = Some(b),
        None => {
            turn.history = items;
            turn.previous = Some(previous);
        }
    }
    Ok(turn)
}

/// A Responses body for a backend that takes Responses itself, when the conversation is
/// the router's: the earlier items inlined before `input`, `previous_response_id` dropped
/// (the backend never saw those ids).
pub fn inline_history(body: &Bytes, turn: &Turn) -> Result<Bytes, ProxyError> {
    if turn.previous.is_none() {
        return Ok(body.clone());
    }
    let mut v: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| ProxyError::InvalidJson(e.to_string()))?;
    let input = match v.remove("input") {
        Some(Value::String(text)) => vec![json!({"role": "user", "content": text})],
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut all = turn.history.clone();
    all.extend(input);
    v.insert("input".into(), Value::Array(all));
    v.remove("previous_response_id");
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|e| ProxyError::InvalidJson(e.to_string()))
}

/// This turn's input items with ids (for `input_items`).
fn with_ids(items: &[Value], response_id: &str) -> Vec<Value> {
    let own = response_id.strip_prefix("resp_").unwrap_or(response_id);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mut item = item.clone();
            if let Some(obj) = item.as_object_mut() {
                obj.entry("id")
                    .or_insert_with(|| format!("msg_{own}_in{i}").into());
                obj.entry("type").or_insert_with(|| "message".into());
                // A message's text content is listed as parts, as OpenAI lists it.
                if obj["type"] == "message" {
                    if let Some(Value::String(text)) = obj.get("content").cloned() {
                        let part = if obj["role"] == "assistant" {
                            "output_text"
                        } else {
                            "input_text"
                        };
                        obj.insert("content".into(), json!([{"type": part, "text": text}]));
                    }
                    obj.entry("status").or_insert_with(|| "completed".into());
                }
            }
            item
        })
        .collect()
}

/// The record of a response the router made.
fn record(call: &Call, turn: &Turn, response: Value) -> ResponseRecord {
    let input = call
        .responses_request()
        .map_or(&[][..], |r| &r.input_items[..]);
    ResponseRecord {
        owner: call.owner.clone(),
        created_at: turn.created_at,
        input_items: with_ids(input, &turn.id),
        response,
        previous: turn.previous.clone(),
        backend: None,
    }
}

/// The reply to a Responses call, in the client's wire, stored when asked: a chat answer
/// (`translated`) becomes a Response; a backend's own Response is passed on and noted.
pub async fn finish(
    core: &Core,
    call: &Call,
    resp: Response,
    translated: bool,
) -> Result<Response, ProxyError> {
    let Some(turn) = call.turn.as_ref() else {
        return Ok(resp);
    };
    if !translated {
        return passed_through(core, call, turn, resp).await;
    }
    let request = call
        .responses_request()
        .ok_or_else(|| ProxyError::Store("the Responses request was not translated".into()))?;
    let ctx = request.ctx(&turn.id, turn.created_at);
    let store = turn.store.then(|| core.store.clone());
    let (mut parts, inner) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if parts.status.is_success() && call.stream() {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let record = store.map(|s| (s, record(call, turn, Value::Null), turn.id.clone()));
        let body = ResponsesSse {
            inner,
            translator: StreamTranslator::new(ctx),
            record,
            storing: None,
            held: None,
            done: false,
        };
        return Ok(Response::from_parts(parts, body::boxed(body)));
    }
    let bytes = body::read_whole(inner, call.model()).await?;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if !parts.status.is_success() {
        let e = crate::protocol::errors::ProviderError::from_openai(parts.status, &bytes);
        parts.status = e.openai_status(parts.status);
        return Ok(Response::from_parts(parts, body::full(e.openai_body())));
    }
    let response =
        responses::from_chat_response(&bytes, &ctx).map_err(|reason| ProxyError::BadUpstream {
            backend: call.model().to_string(),
            reason,
        })?;
    let out = Bytes::from(response.to_string());
    if let Some(store) = store {
        store
            .put_response(turn.id.clone(), record(call, turn, response))
            .await
            .map_err(|e| ProxyError::Store(e.to_string()))?;
    }
    Ok(Response::from_parts(parts, body::full(out)))
}

/// A backend's own Response (passthrough): noted in the store as living at that backend,
/// so reads, deletes and `previous_response_id` go there.
async fn passed_through(
    core: &Core,
    call: &Call,
    turn: &Turn,
    resp: Response,
) -> Result<Response, ProxyError> {
    let backend = resp
        .extensions()
        .get::<Served>()
        .map(|s| s.backend.name().to_string());
    let (Some(backend), true, true) = (backend, turn.store, resp.status().is_success()) else {
        return Ok(resp);
    };
    let note = move |id: String| ResponseRecord {
        owner: call.owner.clone(),
        created_at: turn.created_at,
        response: json!({"id": id}),
        input_items: Vec::new(),
        previous: None,
        backend: Some(backend.clone()),
    };
    if call.stream() {
        // The id is in the first event (`response.created`); noted when it passes.
        let (parts, inner) = resp.into_parts();
        let body = NoteId {
            inner,
            store: core.store.clone(),
            note: Some(Box::new(note(String::new()))),
            sse: crate::protocol::sse::SseDecoder::default(),
            noting: None,
        };
        return Ok(Response::from_parts(parts, body::boxed(body)));
    }
    let (parts, inner) = resp.into_parts();
    let bytes = body::read_whole(inner, call.model()).await?;
    if let Some(id) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
    {
        core.store
            .put_response(id.clone(), note(id))
            .await
            .map_err(|e| ProxyError::Store(e.to_string()))?;
    }
    Ok(Response::from_parts(parts, body::full(bytes)))
}

type Pending = Pin<Box<dyn Future<Output = Result<(), crate::store::StoreError>> + Send>>;

/// A chat stream told as Responses events; the final response is stored before the
/// terminal event is sent, so a follow-up `previous_response_id` always finds it.
struct ResponsesSse {
    inner: Body,
    translator: StreamTranslator,
    record: Option<(Arc<Store>, ResponseRecord, String)>,
    storing: Option<Pending>,
    held: Option<Bytes>,
    done: bool,
}

impl ResponsesSse {
    /// Output of the translator: sent at once, or (when it ends the response) held until
    /// the response is stored.
    fn out(&mut self, text: String) -> Option<Bytes> {
        if text.is_empty() {
            return None;
        }
        let bytes = Bytes::from(text);
        if self.translator.is_done() {
            self.done = true;
            if let (Some((store, mut record, id)), Some(response)) =
                (self.record.take(), self.translator.response().cloned())
            {
                record.response = response;
                let failed = record.response["status"] == "failed";
                if !failed {
                    self.storing = Some(Box::pin(
                        async move { store.put_response(id, record).await },
                    ));
                    self.held = Some(bytes);
                    return None;
                }
            }
        }
        Some(bytes)
    }
}

impl http_body::Body for ResponsesSse {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        loop {
            if let Some(storing) = this.storing.as_mut() {
                let stored = std::task::ready!(storing.as_mut().poll(cx));
                this.storing = None;
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "a streamed response could not be stored");
                }
                return Poll::Ready(this.held.take().map(|b| Ok(Frame::data(b))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let text = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.data_ref() {
                    Some(data) => this.translator.feed(data),
                    None => continue,
                },
                Some(Err(e)) => this.translator.finish_error(&e.to_string()),
                None => this.translator.finish(),
            };
            if let Some(bytes) = this.out(text) {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.done && this.storing.is_none() {
                return Poll::Ready(None);
            }
        }
    }
}

/// A backend's own Responses stream, passed through; the response id of its first event
/// is noted in the store before any later frame is passed on, so a client that reads the
/// stream and continues at once finds it.
struct NoteId {
    inner: Body,
    store: Arc<Store>,
    note: Option<Box<ResponseRecord>>,
    sse: crate::protocol::sse::SseDecoder,
    noting: Option<Pending>,
}

impl NoteId {
    /// Looks for the response id in `data`; starts noting it when found.
    fn look(&mut self, data: &[u8]) {
        if self.note.is_none() {
            return;
        }
        if self.sse.push(data).is_err() {
            self.note = None;
            return;
        }
        while let Some(event) = self.sse.next_event() {
            let id = serde_json::from_slice::<Value>(&event.data)
                .ok()
                .and_then(|v| v["response"]["id"].as_str().map(str::to_string));
            if let (Some(id), Some(mut record)) = (id, self.note.take()) {
                record.response = json!({"id": id});
                let store = self.store.clone();
                self.noting = Some(Box::pin(
                    async move { store.put_response(id, *record).await },
                ));
                return;
            }
        }
    }
}

impl http_body::Body for NoteId {
    type Data = Bytes;
    type Error = ProxyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ProxyError>>> {
        let this = self.get_mut();
        if let Some(noting) = this.noting.as_mut() {
            let noted = std::task::ready!(noting.as_mut().poll(cx));
            this.noting = None;
            if let Err(e) = noted {
                tracing::warn!(error = %e, "a passed-through response could not be noted");
            }
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let data = data.clone();
                this.look(&data);
            }
        }
        if let (Poll::Ready(None), Some(noting)) = (&polled, this.noting.as_mut()) {
            // The stream ended right after its id: note it before the end goes out.
            let noted = std::task::ready!(noting.as_mut().poll(cx));
            this.noting = None;
            if let Err(e) = noted {
                tracing::warn!(error = %e, "a passed-through response could not be noted");
            }
        }
        polled
    }
}
