//! The agent mode: the router as an Agent Client Protocol agent for code editors
//! (`continuum acp`, `continuum --mode stdio`). The editor speaks JSON-RPC 2.0 lines on
//! stdin/stdout; each prompt goes through the same pipeline as an HTTP chat completion
//! (model resolution, strategies, retries, fallback, limits, global prompts, metrics),
//! with no HTTP listener. See `docs/acp.md`.

pub mod mcp;
pub mod rpc;
pub mod schema;
pub mod session;
pub mod tools;
pub mod turn;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};

use crate::config::acp::AcpConfig;
use crate::pipeline::Core;
use rpc::{code, Incoming, Peer, RpcError};
use schema::{params, ClientCapabilities};
use session::{Session, SessionState, Sessions, MODES};

/// The protocol version spoken.
pub const PROTOCOL_VERSION: u64 = 1;
/// Largest message line read (a prompt with images can be large).
const MAX_LINE: u64 = 64 << 20;

/// The agent serving one client connection.
pub struct Agent {
    /// The router's pipeline state.
    pub core: Core,
    /// `acp:`.
    pub config: AcpConfig,
    /// The way to the client.
    pub peer: Peer,
    /// Open sessions.
    pub sessions: Sessions,
    /// What the client said it can do (set by `initialize`).
    caps: Mutex<Option<ClientCapabilities>>,
}

impl Agent {
    /// The client's capabilities (none before `initialize`).
    pub fn client_caps(&self) -> ClientCapabilities {
        self.caps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    fn initialized(&self) -> bool {
        self.caps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Sends a `session/update` notification.
    pub async fn notify_update(&self, session: &str, update: Value) {
        let params = json!({"sessionId": session, "update": update});
        self.peer.notify("session/update", params).await;
    }
}

/// Serves one client on `input`/`output` until it closes its input; running prompts are
/// then cancelled. Nothing but protocol messages is written to `output`.
pub async fn run<R, W>(core: Core, config: AcpConfig, input: R, output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (peer, writer) = Peer::start(output);
    let sessions = Sessions::new(config.sessions.clone(), core.store.clone());
    let agent = Arc::new(Agent {
        core,
        config,
        peer: peer.clone(),
        sessions,
        caps: Mutex::new(None),
    });
    let expiry = {
        let agent = agent.clone();
        let every = (agent.config.sessions.idle_timeout / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                agent.sessions.expire().await;
            }
        })
    };
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() as u64 >= MAX_LINE {
            peer.respond(
                Value::Null,
                Err(RpcError::new(
                    code::INVALID_REQUEST,
                    format!("a message is longer than {MAX_LINE} bytes"),
                )),
            )
            .await;
            // The rest of the oversized line is skipped.
            skip_line(&mut input).await;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match rpc::parse(&line) {
            Err((id, e)) => peer.respond(id, Err(e)).await,
            Ok(Incoming::Response { id, outcome }) => peer.resolve(&id, outcome),
            Ok(Incoming::Notification { method, params }) => notification(&agent, &method, params),
            // Done here, in order: initialize (a call sent right after it is never checked
            // first) and a prompt's reservation (a cancel sent right after it is never lost).
            Ok(Incoming::Request { id, method, params }) if method == "initialize" => {
                let outcome = request(&agent, &method, params).await;
                peer.respond(id, outcome).await;
            }
            Ok(Incoming::Request { id, method, params })
                if method == "session/prompt" && agent.initialized() =>
            {
                match reserve_prompt(&agent, params) {
                    Err(e) => peer.respond(id, Err(e)).await,
                    Ok((session, prompt, cancel)) => {
                        let agent = agent.clone();
                        tasks.spawn(async move {
                            let outcome = turn::prompt(&agent, &session, prompt, cancel).await;
                            agent.peer.respond(id, outcome).await;
                        });
                    }
                }
            }
            Ok(Incoming::Request { id, method, params }) => {
                let agent = agent.clone();
                tasks.spawn(async move {
                    let outcome = request(&agent, &method, params).await;
                    agent.peer.respond(id, outcome).await;
                });
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    // The client has gone: cancel what runs, let the turns answer, then stop.
    agent.sessions.cancel_all();
    peer.fail_pending();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    expiry.abort();
    drop(agent);
    drop(peer);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

async fn skip_line<R: AsyncRead + Unpin>(input: &mut BufReader<R>) {
    loop {
        let buf = match input.fill_buf().await {
            Ok(b) if !b.is_empty() => b,
            _ => return,
        };
        if let Some(i) = memchr::memchr(b'\n', buf) {
            input.consume(i + 1);
            return;
        }
        let n = buf.len();
        input.consume(n);
    }
}

/// A prompt ready to run: its session, its content and its reserved turn's cancel signal.
type ReservedPrompt = (
    Arc<Session>,
    Vec<schema::ContentBlock>,
    tokio::sync::watch::Receiver<bool>,
);

/// Reserves a prompt's turn (one at a time per session).
fn reserve_prompt(agent: &Agent, p: Value) -> Result<ReservedPrompt, RpcError> {
    let p: schema::Prompt = params("session/prompt", p)?;
    let session = agent.sessions.get(&p.session_id)?;
    let cancel = session.reserve_turn()?;
    Ok((session, p.prompt, cancel))
}

fn notification(agent: &Arc<Agent>, method: &str, params: Value) {
    match method {
        "session/cancel" => {
            if let Ok(p) = schema::params::<schema::SessionRef>(method, params) {
                if let Ok(s) = agent.sessions.get(&p.session_id) {
                    s.cancel();
                }
            }
        }
        other => tracing::debug!(method = other, "notification ignored"),
    }
}

async fn request(agent: &Arc<Agent>, method: &str, p: Value) -> Result<Value, RpcError> {
    if method != "initialize" && !agent.initialized() {
        return Err(RpcError::new(
            code::INVALID_REQUEST,
            format!("{method} before initialize: call initialize first"),
        ));
    }
    match method {
        "initialize" => initialize(agent, params(method, p)?),
        "authenticate" => authenticate(agent, params(method, p)?),
        "session/new" => new_session(agent, params(method, p)?).await,
        "session/load" if agent.config.load_session => {
            load_session(agent, params(method, p)?).await
        }
        "session/prompt" => {
            let (session, prompt, cancel) = reserve_prompt(agent, p)?;
            turn::prompt(agent, &session, prompt, cancel).await
        }
        "session/set_mode" => {
            let p: schema::SetMode = params(method, p)?;
            set_option(agent, &p.session_id, "mode", &p.mode_id).await?;
            Ok(json!({}))
        }
        "session/set_config_option" => {
            let p: schema::SetConfigOption = params(method, p)?;
            let value = p.value.as_str().ok_or_else(|| {
                RpcError::params("session/set_config_option: value must be a string")
            })?;
            let state = set_option(agent, &p.session_id, &p.config_id, value).await?;
            Ok(json!({"configOptions": config_options(agent, &state)}))
        }
        "session/set_model" => {
            let p: schema::SetModel = params(method, p)?;
            set_option(agent, &p.session_id, "model", &p.model_id).await?;
            Ok(json!({}))
        }
        other => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("method '{other}' is not served by this agent"),
        )),
    }
}

fn initialize(agent: &Agent, p: schema::Initialize) -> Result<Value, RpcError> {
    *agent.caps.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.client_capabilities);
    tracing::info!(
        client_version = p.protocol_version,
        "ACP client initialized"
    );
    Ok(json!({
        "protocolVersion": PROTOCOL_VERSION,
        "agentCapabilities": {
            "loadSession": agent.config.load_session,
            "promptCapabilities": {"image": true, "audio": false, "embeddedContext": true},
            "mcpCapabilities": {"http": agent.config.mcp, "sse": false},
        },
        "agentInfo": {"name": "continuum", "title": "Continuum", "version": env!("CARGO_PKG_VERSION")},
        "authMethods": auth_methods(agent).iter().map(|(id, b)| json!({
            "id": id,
            "name": format!("Log in to {b}"),
            "description": format!("Run `continuum auth login --backend {b}` in a terminal, then choose this"),
        })).collect::<Vec<_>>(),
    }))
}

/// `(method id, backend)` for each OAuth backend with no stored token.
fn auth_methods(agent: &Agent) -> Vec<(String, String)> {
    let snap = agent.core.live.current.load_full();
    snap.backends
        .iter()
        .filter(|b| {
            b.config.oauth.as_ref().is_some_and(|o| {
                !matches!(
                    crate::oauth::load_token(&o.token_store, b.name()),
                    Ok(Some(_))
                )
            })
        })
        .map(|b| (format!("oauth-{}", b.name()), b.name().to_string()))
        .collect()
}

fn authenticate(agent: &Agent, p: schema::Authenticate) -> Result<Value, RpcError> {
    let snap = agent.core.live.current.load_full();
    let known = |b: &str| {
        snap.backends
            .iter()
            .any(|x| x.name() == b && x.config.oauth.is_some())
    };
    let Some(backend) = p.method_id.strip_prefix("oauth-").filter(|b| known(b)) else {
        return Err(RpcError::params(format!(
            "authenticate: unknown method '{}'",
            p.method_id
        )));
    };
    if auth_methods(agent).iter().any(|(_, b)| b == backend) {
        return Err(RpcError::new(
            code::AUTH_REQUIRED,
            format!("backend '{backend}' has no login yet: run `continuum auth login --backend {backend}` in a terminal, then try again"),
        ));
    }
    Ok(json!({}))
}

/// Every model the router serves, in `/v1/models` order.
fn models(agent: &Agent) -> Vec<String> {
    let index = agent.core.live.current.load_full().index.load_full();
    index.listed().iter().map(|m| m.id.clone()).collect()
}

fn cwd(method: &str, cwd: &str) -> Result<PathBuf, RpcError> {
    let path = PathBuf::from(cwd);
    if !path.is_absolute() {
        return Err(RpcError::params(format!(
            "{method}: cwd must be an absolute path, not '{cwd}'"
        )));
    }
    Ok(path)
}

async fn connect_mcp(
    agent: &Agent,
    servers: &[schema::McpServer],
    dir: &std::path::Path,
) -> Vec<mcp::McpConnection> {
    if !agent.config.mcp {
        if !servers.is_empty() {
            tracing::warn!(
                "MCP servers named by the client are not connected (acp.capabilities.mcp: false)"
            );
        }
        return Vec::new();
    }
    let mut out = Vec::with_capacity(servers.len());
    for s in servers {
        match mcp::McpConnection::connect(s, &agent.core.client, dir).await {
            Ok(c) => {
                tracing::info!(server = %c.name, tools = c.tools.len(), "MCP server connected");
                out.push(c);
            }
            Err(e) => tracing::warn!("{e}; its tools are not offered"),
        }
    }
    out
}

async fn new_session(agent: &Agent, p: schema::NewSession) -> Result<Value, RpcError> {
    let dir = cwd("session/new", &p.cwd)?;
    let model = match &agent.config.default_model {
        Some(m) => {
            let index = agent.core.live.current.load_full().index.load_full();
            if index.resolve(m).is_err() {
                return Err(RpcError::internal(format!(
                    "acp.default_model '{m}' is not a model the router serves (it serves: {}); fix the config",
                    models(agent).join(", ")
                )));
            }
            m.clone()
        }
        None => models(agent).into_iter().next().ok_or_else(|| {
            RpcError::internal("the router serves no model yet: check the backends in the config (`continuum models list`)")
        })?,
    };
    let state = SessionState {
        cwd: dir.clone(),
        model,
        mode: "default".into(),
        history: Vec::new(),
        tool_calls: Default::default(),
        always: Default::default(),
        updated: session::now_secs(),
    };
    let id = format!("sess_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mcp = connect_mcp(agent, &p.mcp_servers, &dir).await;
    agent.sessions.save(&id, &state).await;
    let reply = session_reply(agent, &state, Some(&id));
    agent
        .sessions
        .open(Arc::new(Session::new(id, state, mcp)))?;
    Ok(reply)
}

async fn load_session(agent: &Agent, p: schema::LoadSession) -> Result<Value, RpcError> {
    let dir = cwd("session/load", &p.cwd)?;
    let mut state = agent.sessions.find(&p.session_id).await?;
    state.cwd = dir.clone();
    replay(agent, &p.session_id, &state).await;
    let mcp = connect_mcp(agent, &p.mcp_servers, &dir).await;
    let reply = session_reply(agent, &state, None);
    agent
        .sessions
        .open(Arc::new(Session::new(p.session_id, state, mcp)))?;
    Ok(reply)
}

/// Sends a loaded session's history as `session/update` notifications.
async fn replay(agent: &Agent, id: &str, state: &SessionState) {
    for m in &state.history {
        let text = crate::protocol::openai::text_of(&m["content"]);
        let kind = match m["role"].as_str() {
            Some("user") => "user_message_chunk",
            Some("assistant") => "agent_message_chunk",
            _ => continue,
        };
        if !text.is_empty() {
            agent
                .notify_update(
                    id,
                    json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}}),
                )
                .await;
        }
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            let Some(call_id) = call["id"].as_str() else {
                continue;
            };
            let Some(r) = state.tool_calls.get(call_id) else {
                continue;
            };
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or(""))
                    .unwrap_or(Value::Null);
            agent.notify_update(id, json!({"sessionUpdate": "tool_call", "toolCallId": call_id, "title": r.title, "kind": r.kind, "status": r.status, "rawInput": args})).await;
        }
    }
}

/// The modes and config options a session is answered with (`sessionId` when new).
fn session_reply(agent: &Agent, state: &SessionState, id: Option<&str>) -> Value {
    let modes = modes_as("id");
    let mut r = json!({
        "modes": {"currentModeId": state.mode, "availableModes": modes},
        "configOptions": config_options(agent, state),
    });
    if let Some(id) = id {
        r["sessionId"] = json!(id);
    }
    r
}

fn config_options(agent: &Agent, state: &SessionState) -> Value {
    let mut names = models(agent);
    if !names.contains(&state.model) {
        names.insert(0, state.model.clone());
    }
    let options: Vec<Value> = names
        .iter()
        .map(|m| json!({"value": m, "name": m}))
        .collect();
    let modes = modes_as("value");
    json!([
        {"id": "model", "name": "Model", "category": "model", "type": "select", "currentValue": state.model, "options": options},
        {"id": "mode", "name": "Mode", "category": "mode", "type": "select", "currentValue": state.mode, "options": modes},
    ])
}

/// The session modes as ACP lists them: `{key: id, name, description}` (`id` for the modes
/// state, `value` for the `mode` config option).
fn modes_as(key: &str) -> Vec<Value> {
    MODES
        .iter()
        .map(|(id, name, d)| json!({key: id, "name": name, "description": d}))
        .collect()
}

/// Sets a session's `model` or `mode`; the state after.
async fn set_option(
    agent: &Agent,
    id: &str,
    option: &str,
    value: &str,
) -> Result<SessionState, RpcError> {
    let session = agent.sessions.get(id)?;
    match option {
        "model" => {
            let known = models(agent);
            let index = agent.core.live.current.load_full().index.load_full();
            if !known.iter().any(|m| m == value) && index.resolve(value).is_err() {
                return Err(RpcError::params(format!(
                    "no model '{value}' is served (known: {})",
                    known.join(", ")
                )));
            }
        }
        "mode" => {
            if !MODES.iter().any(|(m, ..)| *m == value) {
                let ids: Vec<&str> = MODES.iter().map(|(m, ..)| *m).collect();
                return Err(RpcError::params(format!(
                    "no mode '{value}' (expected one of: {})",
                    ids.join(", ")
                )));
            }
        }
        other => {
            return Err(RpcError::params(format!(
                "no config option '{other}' (expected model or mode)"
            )))
        }
    }
    let mut state = session.state.try_lock().map_err(|_| {
        RpcError::new(
            code::INTERNAL_ERROR,
            "a prompt is running in this session; change it after the answer",
        )
    })?;
    if option == "model" {
        state.model = value.to_string();
    } else {
        state.mode = value.to_string();
        agent
            .notify_update(
                id,
                json!({"sessionUpdate": "current_mode_update", "currentModeId": value}),
            )
            .await;
    }
    agent.sessions.save(id, &state).await;
    Ok(state.clone())
}
