//! One prompt turn: the user's message goes to the session's model through the router's
//! pipeline as a streamed chat completion; the answer is forwarded as `session/update`
//! notifications while it arrives; tool calls are run (asking when they must) and their
//! results sent back, until the model stops or the turn is cancelled.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::rpc::RpcError;
use super::schema::ContentBlock;
use super::session::{now_secs, Session, SessionState, ToolRecord};
use super::tools::{self, Answer, Decision, Outcome, Tool};
use super::Agent;
use crate::pipeline::op::{Operation, Wire};
use crate::pipeline::{self, Call};

/// Most model requests one prompt may make (each tool round is one).
pub const MAX_TURN_REQUESTS: usize = 25;
/// Most tool calls one answer may make.
const MAX_CALLS: usize = 128;
/// Largest SSE event read from the pipeline.
const MAX_EVENT: usize = 16 << 20;

/// How a turn ended.
enum Stop {
    /// The model finished: `end_turn`, `max_tokens` or `refusal`.
    Model(&'static str),
    /// `session/cancel`.
    Cancelled,
}

/// What one streamed answer held.
#[derive(Default)]
struct Reply {
    text: String,
    calls: Vec<PendingCall>,
    finish: Option<String>,
    usage: Option<Value>,
}

#[derive(Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

/// Runs a prompt turn in `session`, whose turn the caller reserved
/// ([`Session::reserve_turn`]; `cancel` says when it is cancelled); the `session/prompt`
/// result. The reservation ends with the turn.
pub async fn prompt(
    agent: &Agent,
    session: &Session,
    blocks: Vec<ContentBlock>,
    mut cancel: watch::Receiver<bool>,
) -> Result<Value, RpcError> {
    let message = match user_message(blocks) {
        Ok(m) => m,
        Err(e) => {
            session.end_turn();
            return Err(e);
        }
    };
    let mut state = session.state.lock().await;
    state.history.push(message);
    let tools = tools::toolset(&agent.client_caps(), session);
    let mut usage = Usage::default();
    let outcome = run_turn(agent, session, &mut state, &tools, &mut cancel, &mut usage).await;
    state.updated = now_secs();
    session.end_turn();
    agent.sessions.save(&session.id, &state).await;
    let stop = match outcome? {
        Some(Stop::Model(reason)) => reason,
        Some(Stop::Cancelled) => "cancelled",
        None => "max_turn_requests",
    };
    let mut result = json!({"stopReason": stop});
    if usage.total > 0 {
        result["usage"] = json!({
            "inputTokens": usage.input,
            "outputTokens": usage.output,
            "totalTokens": usage.total,
            "cachedReadTokens": usage.cached,
        });
    }
    Ok(result)
}

#[derive(Default)]
struct Usage {
    input: u64,
    output: u64,
    total: u64,
    cached: u64,
}

impl Usage {
    fn add(&mut self, u: &Value) {
        self.input += u["prompt_tokens"].as_u64().unwrap_or(0);
        self.output += u["completion_tokens"].as_u64().unwrap_or(0);
        self.total += u["total_tokens"].as_u64().unwrap_or(0);
        self.cached += u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0);
    }
}

/// The model requests and tool rounds of a turn; `None` when it ran out of requests.
async fn run_turn(
    agent: &Agent,
    session: &Session,
    state: &mut SessionState,
    tools: &[Tool],
    cancel: &mut watch::Receiver<bool>,
    usage: &mut Usage,
) -> Result<Option<Stop>, RpcError> {
    for _ in 0..MAX_TURN_REQUESTS {
        let body = request_body(state, tools);
        let reply = tokio::select! {
            r = stream_answer(agent, session, body) => r?,
            _ = cancel.wait_for(|c| *c) => return Ok(Some(Stop::Cancelled)),
        };
        if let Some(u) = &reply.usage {
            usage.add(u);
        }
        state.history.push(assistant_message(&reply));
        if reply.calls.is_empty() {
            let stop = match reply.finish.as_deref() {
                Some("length") => "max_tokens",
                Some("content_filter") => "refusal",
                _ => "end_turn",
            };
            return Ok(Some(Stop::Model(stop)));
        }
        for (i, call) in reply.calls.iter().enumerate() {
            let outcome = tool_call(agent, session, state, tools, call, cancel).await;
            // Every call the model made gets an answer, so the history stays valid
            // whatever ends the turn here.
            let unanswered = |state: &mut SessionState, text: &str| {
                for c in &reply.calls[i..] {
                    state.history.push(tool_message(&c.id, text));
                }
            };
            match outcome {
                Ok(Some(o)) => state.history.push(tool_message(&call.id, &o.for_model)),
                Ok(None) => {
                    unanswered(state, "Cancelled by the user.");
                    return Ok(Some(Stop::Cancelled));
                }
                Err(e) => {
                    unanswered(state, &format!("Not run: {}", e.message));
                    return Err(e);
                }
            }
        }
    }
    Ok(None)
}

/// Runs one tool call: shown, decided (asking when it must), run, and its end shown;
/// `None` when the turn was cancelled while asking or running (a command running in the
/// client's terminal is killed and released).
async fn tool_call(
    agent: &Agent,
    session: &Session,
    state: &mut SessionState,
    tools: &[Tool],
    call: &PendingCall,
    cancel: &mut watch::Receiver<bool>,
) -> Result<Option<Outcome>, RpcError> {
    let peer = &agent.peer;
    let args: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
    let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
        let outcome = Outcome::failed(format!("there is no tool named '{}'", call.name));
        let shown = json!({
            "sessionUpdate": "tool_call",
            "toolCallId": call.id,
            "title": format!("Unknown tool {}", call.name),
            "kind": "other",
            "status": "failed",
            "rawInput": args,
            "content": outcome.content,
        });
        agent.notify_update(&session.id, shown).await;
        return Ok(Some(outcome));
    };
    let (title, locations) = tools::describe(tool, &args, &state.cwd);
    let shown = json!({
        "toolCallId": call.id,
        "title": title,
        "kind": tool.kind,
        "status": "pending",
        "rawInput": args,
        "locations": locations,
    });
    let mut start = shown.clone();
    start["sessionUpdate"] = json!("tool_call");
    agent.notify_update(&session.id, start).await;
    let record = |status: &str| ToolRecord {
        title: title.clone(),
        kind: tool.kind.to_string(),
        status: status.to_string(),
    };
    let always = state.always.get(&tool.name).copied();
    let mut decision = tools::decide(&agent.config.permissions, &state.mode, tool, always);
    let cancelled = |state: &mut SessionState| {
        state.tool_calls.insert(call.id.clone(), record("failed"));
    };
    if decision == Decision::Ask {
        let answer = tokio::select! {
            a = tools::ask(peer, &session.id, &shown) => a,
            _ = cancel.wait_for(|c| *c) => Ok(Answer::Cancelled),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let why = format!("the permission request failed: {}", e.message);
                update(
                    agent,
                    session,
                    &call.id,
                    "failed",
                    &[tools::text_content(&why)],
                )
                .await;
                state.tool_calls.insert(call.id.clone(), record("failed"));
                return Err(e);
            }
        };
        decision = match answer {
            Answer::Cancelled => {
                update(agent, session, &call.id, "failed", &[]).await;
                cancelled(state);
                return Ok(None);
            }
            Answer::Allow { always } => {
                if always {
                    state.always.insert(tool.name.clone(), true);
                }
                Decision::Run
            }
            Answer::Reject { always } => {
                if always {
                    state.always.insert(tool.name.clone(), false);
                }
                Decision::Refuse("the user refused this tool call".into())
            }
        };
    }
    let outcome = match decision {
        Decision::Refuse(why) => Outcome::failed(why),
        _ => {
            let progress = json!({"sessionUpdate": "tool_call_update", "toolCallId": call.id, "status": "in_progress"});
            agent.notify_update(&session.id, progress).await;
            tools::run(peer, session, &state.cwd, tool, &args, cancel).await
        }
    };
    if *cancel.borrow() {
        update(agent, session, &call.id, "failed", &outcome.content).await;
        cancelled(state);
        return Ok(None);
    }
    let status = if outcome.failed {
        "failed"
    } else {
        "completed"
    };
    update(agent, session, &call.id, status, &outcome.content).await;
    state.tool_calls.insert(call.id.clone(), record(status));
    Ok(Some(outcome))
}

async fn update(agent: &Agent, session: &Session, id: &str, status: &str, content: &[Value]) {
    let mut u = json!({"sessionUpdate": "tool_call_update", "toolCallId": id, "status": status});
    if !content.is_empty() {
        u["content"] = json!(content);
    }
    agent.notify_update(&session.id, u).await;
}

/// The chat completion request for the session's next model call.
fn request_body(state: &SessionState, tools: &[Tool]) -> Bytes {
    let system = format!(
        "You are Continuum, a coding agent working in the user's editor. The working directory is {}. Use the tools to read, change and run things in the project when the user asks; answer in Markdown.",
        state.cwd.display()
    );
    let mut messages = Vec::with_capacity(state.history.len() + 1);
    messages.push(json!({"role": "system", "content": system}));
    messages.extend(state.history.iter().cloned());
    let mut body = json!({
        "model": state.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools.iter().map(|t| t.def.clone()).collect());
    }
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Sends `body` through the pipeline and forwards the answer as it streams.
async fn stream_answer(agent: &Agent, session: &Session, body: Bytes) -> Result<Reply, RpcError> {
    let core = agent.core.current();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        headers.insert("x-session-id", v);
    }
    let id = crate::http::request_id(&HeaderMap::new());
    let mut call = Call::new(
        &core,
        Operation::Chat,
        Wire::OpenAiChat,
        "acp",
        body,
        &headers,
        id,
    )
    .map_err(|e| RpcError::internal(e.to_string()))?;
    let resp = pipeline::serve(&core, &mut call)
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?;
    let status = resp.status();
    let mut body = resp.into_body();
    if !status.is_success() {
        let bytes = pipeline::body::read_whole(body, &call.routing.model)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = v["error"]["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_string,
        );
        // A backend that wants credentials it was not given: the client may authenticate.
        let code = if status == http::StatusCode::UNAUTHORIZED {
            super::rpc::code::AUTH_REQUIRED
        } else {
            super::rpc::code::INTERNAL_ERROR
        };
        let mut e = RpcError::new(code, message);
        e.data = Some(json!({"status": status.as_u16()}));
        return Err(e);
    }
    let mut decoder = crate::protocol::sse::SseDecoder::new(MAX_EVENT);
    let mut reply = Reply::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RpcError::internal(format!("the answer broke off: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.push_bytes(data).map_err(|e| {
            RpcError::internal(format!(
                "an event of the answer is too large ({} bytes)",
                e.limit
            ))
        })?;
        while let Some(ev) = decoder.next_event() {
            if ev.data.as_ref() == b"[DONE]" {
                continue;
            }
            let Ok(chunk) = serde_json::from_slice::<Value>(&ev.data) else {
                continue;
            };
            if let Some(message) = chunk["error"]["message"].as_str() {
                return Err(RpcError::internal(message.to_string()));
            }
            absorb(agent, session, &chunk, &mut reply).await;
        }
    }
    Ok(reply)
}

/// Takes one chunk of the answer: text and reasoning are forwarded at once, tool calls
/// gathered.
async fn absorb(agent: &Agent, session: &Session, chunk: &Value, reply: &mut Reply) {
    if chunk["usage"].is_object() {
        reply.usage = Some(chunk["usage"].clone());
    }
    let Some(choice) = chunk["choices"].get(0) else {
        return;
    };
    let delta = &choice["delta"];
    for (field, kind) in [
        ("reasoning_content", "agent_thought_chunk"),
        ("reasoning", "agent_thought_chunk"),
        ("content", "agent_message_chunk"),
    ] {
        if let Some(text) = delta[field].as_str().filter(|t| !t.is_empty()) {
            if field == "content" {
                reply.text.push_str(text);
            }
            let u = json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}});
            agent.notify_update(&session.id, u).await;
        }
    }
    for tc in delta["tool_calls"].as_array().into_iter().flatten() {
        let index = tc["index"].as_u64().unwrap_or(reply.calls.len() as u64);
        // A backend's index sizes the list: one past any sane number of calls is ignored.
        let Some(index) = usize::try_from(index).ok().filter(|i| *i < MAX_CALLS) else {
            continue;
        };
        while reply.calls.len() <= index {
            reply.calls.push(PendingCall::default());
        }
        let c = &mut reply.calls[index];
        if let Some(id) = tc["id"].as_str() {
            c.id = id.to_string();
        }
        if let Some(name) = tc["function"]["name"].as_str() {
            c.name.push_str(name);
        }
        if let Some(args) = tc["function"]["arguments"].as_str() {
            c.arguments.push_str(args);
        }
    }
    if let Some(f) = choice["finish_reason"].as_str() {
        reply.finish = Some(f.to_string());
    }
    for c in reply.calls.iter_mut() {
        if c.id.is_empty() {
            c.id = format!("call_{:016x}", fastrand::u64(..));
        }
    }
}

fn assistant_message(reply: &Reply) -> Value {
    let mut m = json!({"role": "assistant", "content": reply.text});
    if !reply.calls.is_empty() {
        let calls: Vec<Value> = reply
            .calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        m["tool_calls"] = Value::Array(calls);
    }
    m
}

fn tool_message(id: &str, content: &str) -> Value {
    json!({"role": "tool", "tool_call_id": id, "content": content})
}

/// The user's prompt as an OpenAI chat message: text, images as data URLs, embedded
/// resources as their text, links by name.
fn user_message(blocks: Vec<ContentBlock>) -> Result<Value, RpcError> {
    let mut parts = Vec::with_capacity(blocks.len());
    for b in blocks {
        match b {
            ContentBlock::Text { text } => parts.push(json!({"type": "text", "text": text})),
            ContentBlock::Image { data, mime_type } => parts.push(json!({
                "type": "image_url",
                "image_url": {"url": format!("data:{mime_type};base64,{data}")}
            })),
            ContentBlock::Audio {} => {
                return Err(RpcError::params(
                    "session/prompt: audio is not accepted (promptCapabilities.audio is false)",
                ))
            }
            ContentBlock::ResourceLink { uri, name } => {
                parts.push(json!({"type": "text", "text": format!("[@{name}]({uri})")}));
            }
            ContentBlock::Resource { resource } => {
                let text = match (resource.text, resource.mime_type) {
                    (Some(t), _) => format!("Content of {}:\n```\n{t}\n```", resource.uri),
                    (None, Some(m)) if m.starts_with("image/") => {
                        let data = resource.blob.unwrap_or_default();
                        parts.push(json!({"type": "image_url", "image_url": {"url": format!("data:{m};base64,{data}")}}));
                        continue;
                    }
                    _ => format!("[{} (binary, not included)]", resource.uri),
                };
                parts.push(json!({"type": "text", "text": text}));
            }
        }
    }
    if parts.is_empty() {
        return Err(RpcError::params("session/prompt: the prompt is empty"));
    }
    // A text-only prompt is sent as a plain string, which every backend accepts.
    let only_text = parts.iter().all(|p| p["type"] == "text");
    if only_text {
        let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        return Ok(json!({"role": "user", "content": text.join("\n\n")}));
    }
    Ok(json!({"role": "user", "content": parts}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_become_chat_messages() {
        let text = vec![
            ContentBlock::Text {
                text: "explain".into(),
            },
            ContentBlock::Resource {
                resource: super::super::schema::EmbeddedResource {
                    uri: "file:///a.rs".into(),
                    text: Some("fn main() {}".into()),
                    mime_type: None,
                    blob: None,
                },
            },
        ];
        let m = user_message(text).unwrap();
        assert_eq!(
            m["content"],
            "explain\n\nContent of file:///a.rs:\n```\nfn main() {}\n```"
        );
        let image = vec![ContentBlock::Image {
            data: "AAAA".into(),
            mime_type: "image/png".into(),
        }];
        let m = user_message(image).unwrap();
        assert_eq!(
            m["content"][0]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert!(user_message(vec![]).is_err());
        assert!(user_message(vec![ContentBlock::Audio {}]).is_err());
    }
}
