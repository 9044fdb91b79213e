//! A Model Context Protocol client for the servers an editor names at `session/new`: stdio
//! (a child process speaking JSON-RPC lines) and streamable HTTP (JSON-RPC POSTs answered
//! with JSON or an SSE stream). It initializes, lists the server's tools and calls them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

use super::schema::McpServer;
use crate::backend::HttpClient;

/// The MCP revision the client asks for.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// Longest wait for a server's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Most pages of `tools/list` read (a server repeating its cursor cannot hold a session).
const MAX_PAGES: usize = 100;
/// Largest line or event a server may send.
const MAX_MESSAGE: usize = 16 << 20;

/// Why an MCP server could not be used.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The server could not be started or reached.
    #[error("MCP server '{server}': {reason}")]
    Unavailable {
        /// The server's name.
        server: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error("MCP server '{server}' answered {method} with an error: {message}")]
    Rpc {
        /// The server's name.
        server: String,
        /// The method.
        method: String,
        /// Its message.
        message: String,
    },
}

/// A tool a server offers.
#[derive(Debug, Clone)]
pub struct McpTool {
    /// Its name on the server.
    pub name: String,
    /// What it does (for the model).
    pub description: String,
    /// Its arguments' JSON Schema.
    pub input_schema: Value,
    /// The server says it changes nothing (`annotations.readOnlyHint`).
    pub read_only: bool,
    /// The server says it may delete or overwrite (`annotations.destructiveHint`).
    pub destructive: bool,
    /// The server says it reaches outside (`annotations.openWorldHint`).
    pub open_world: bool,
}

impl McpTool {
    /// Its ACP kind, from the server's hints: read, delete, fetch, else other.
    pub fn kind(&self) -> &'static str {
        if self.read_only {
            "read"
        } else if self.destructive {
            "delete"
        } else if self.open_world {
            "fetch"
        } else {
            "other"
        }
    }
}

/// What a tool call returned: its text content, and whether the server called it an error.
#[derive(Debug, Clone)]
pub struct McpResult {
    /// Text parts joined (other parts described).
    pub text: String,
    /// `isError`.
    pub is_error: bool,
}

type Waiting = Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>;

enum Transport {
    Stdio {
        stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
        waiting: Arc<Waiting>,
        _child: tokio::process::Child,
        reader: tokio::task::JoinHandle<()>,
    },
    Http {
        client: HttpClient,
        url: http::Uri,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        session: Mutex<Option<http::HeaderValue>>,
    },
}

/// A connected server.
pub struct McpConnection {
    /// Its name (the prefix of its tools' names).
    pub name: String,
    /// Its tools.
    pub tools: Vec<McpTool>,
    transport: Transport,
    next_id: AtomicU64,
}

impl Drop for McpConnection {
    fn drop(&mut self) {
        if let Transport::Stdio { reader, .. } = &self.transport {
            reader.abort();
        }
    }
}

impl McpConnection {
    /// Starts or reaches `spec`, initializes it and lists its tools.
    pub async fn connect(
        spec: &McpServer,
        client: &HttpClient,
        cwd: &Path,
    ) -> Result<McpConnection, McpError> {
        let unavailable = |reason: String| McpError::Unavailable {
            server: spec.name.clone(),
            reason,
        };
        let transport = match (spec.kind.as_deref(), &spec.command, &spec.url) {
            (None | Some("stdio"), Some(command), _) => stdio(spec, command, cwd)
                .map_err(|e| unavailable(format!("cannot run '{command}': {e}")))?,
            (Some("http"), _, Some(url)) => {
                let url: http::Uri = url
                    .parse()
                    .map_err(|e| unavailable(format!("bad url '{url}': {e}")))?;
                let mut headers = Vec::new();
                for h in &spec.headers {
                    let name = http::HeaderName::try_from(h.name.as_str());
                    let value = http::HeaderValue::try_from(h.value.as_str());
                    match (name, value) {
                        (Ok(n), Ok(v)) => headers.push((n, v)),
                        _ => return Err(unavailable(format!("bad header '{}'", h.name))),
                    }
                }
                Transport::Http {
                    client: client.clone(),
                    url,
                    headers,
                    session: Mutex::new(None),
                }
            }
            (Some("sse"), ..) => {
                return Err(unavailable(
                    "the SSE transport is not offered (mcpCapabilities.sse is false); use http"
                        .into(),
                ))
            }
            _ => {
                return Err(unavailable(
                    "needs a command (stdio) or a url (http)".into(),
                ))
            }
        };
        let mut conn = McpConnection {
            name: spec.name.clone(),
            tools: Vec::new(),
            transport,
            next_id: AtomicU64::new(1),
        };
        let init = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "continuum", "version": env!("CARGO_PKG_VERSION")},
        });
        conn.request("initialize", init).await?;
        conn.notify("notifications/initialized").await?;
        let mut cursor: Option<String> = None;
        for page in 0.. {
            if page == MAX_PAGES {
                tracing::warn!(server = %conn.name, "MCP server lists more than {MAX_PAGES} pages of tools; the rest are not offered");
                break;
            }
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = conn.request("tools/list", params).await?;
            for t in page["tools"].as_array().into_iter().flatten() {
                let Some(name) = t["name"].as_str() else {
                    continue;
                };
                conn.tools.push(McpTool {
                    name: name.to_string(),
                    description: t["description"].as_str().unwrap_or("").to_string(),
                    input_schema: t
                        .get("inputSchema")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                    read_only: t["annotations"]["readOnlyHint"].as_bool() == Some(true),
                    destructive: t["annotations"]["destructiveHint"].as_bool() == Some(true),
                    open_world: t["annotations"]["openWorldHint"].as_bool() == Some(true),
                });
            }
            cursor = page["nextCursor"].as_str().map(str::to_string);
            if cursor.is_none() {
                break;
            }
        }
        Ok(conn)
    }

    /// Calls tool `name` with `arguments`.
    pub async fn call(&self, name: &str, arguments: Value) -> Result<McpResult, McpError> {
        let r = self
            .request("tools/call", json!({"name": name, "arguments": arguments}))
            .await?;
        let mut text = String::new();
        for part in r["content"].as_array().into_iter().flatten() {
            if !text.is_empty() {
                text.push('\n');
            }
            match part["type"].as_str() {
                Some("text") => text.push_str(part["text"].as_str().unwrap_or("")),
                Some(other) => text.push_str(&format!("[{other} content]")),
                None => {}
            }
        }
        if text.is_empty() {
            if let Some(s) = r.get("structuredContent") {
                text = s.to_string();
            }
        }
        Ok(McpResult {
            text,
            is_error: r["isError"].as_bool() == Some(true),
        })
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value, McpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.exchange(id, &message)).await;
        if answer.is_err() {
            if let Transport::Stdio { waiting, .. } = &self.transport {
                waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
        }
        let unavailable = |reason: String| McpError::Unavailable {
            server: self.name.clone(),
            reason,
        };
        let answer = answer
            .map_err(|_| unavailable(format!("no answer to {method} in {CALL_TIMEOUT:?}")))?;
        match answer.map_err(unavailable)? {
            Ok(result) => Ok(result),
            Err(message) => Err(McpError::Rpc {
                server: self.name.clone(),
                method: method.to_string(),
                message,
            }),
        }
    }

    async fn notify(&self, method: &str) -> Result<(), McpError> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        let sent = match &self.transport {
            Transport::Stdio { stdin, .. } => write_line(stdin, &message).await,
            Transport::Http { .. } => self.post(&message).await.map(drop),
        };
        sent.map_err(|reason| McpError::Unavailable {
            server: self.name.clone(),
            reason,
        })
    }

    /// Sends request `id`; the outer error is the transport's, the inner the server's.
    async fn exchange(&self, id: u64, message: &Value) -> Result<Result<Value, String>, String> {
        match &self.transport {
            Transport::Stdio { stdin, waiting, .. } => {
                let (tx, rx) = oneshot::channel();
                waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, tx);
                write_line(stdin, message).await?;
                rx.await.map_err(|_| "the server exited".to_string())
            }
            Transport::Http { .. } => {
                let reply = self.post(message).await?;
                find_response(&reply, id)
                    .ok_or_else(|| "the server's reply carried no answer".into())
            }
        }
    }

    /// POSTs `message`; the JSON-RPC messages of the reply (a JSON body or SSE events).
    async fn post(&self, message: &Value) -> Result<Vec<Value>, String> {
        let Transport::Http {
            client,
            url,
            headers,
            session,
        } = &self.transport
        else {
            return Err("not an HTTP server".into());
        };
        let mut req = http::Request::post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let sid = session.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sid) = sid {
            req = req.header("mcp-session-id", sid);
        }
        let body = Full::new(Bytes::from(serde_json::to_vec(message).unwrap_or_default()));
        let req = req.body(body).map_err(|e| e.to_string())?;
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        if let Some(sid) = resp.headers().get("mcp-session-id") {
            *session.lock().unwrap_or_else(|p| p.into_inner()) = Some(sid.clone());
        }
        let status = resp.status();
        let sse = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = http_body_util::Limited::new(resp.into_body(), MAX_MESSAGE)
            .collect()
            .await
            .map_err(|e| format!("reading its reply failed: {e}"))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("{url} answered {status}: {text}"));
        }
        if body.is_empty() {
            return Ok(Vec::new());
        }
        if !sse {
            let v: Value =
                serde_json::from_slice(&body).map_err(|e| format!("its reply is not JSON: {e}"))?;
            return Ok(vec![v]);
        }
        let mut decoder = crate::protocol::sse::SseDecoder::new(MAX_MESSAGE);
        decoder.push(&body).map_err(|e| format!("{e:?}"))?;
        decoder.push(b"\n\n").map_err(|e| format!("{e:?}"))?;
        let mut out = Vec::new();
        while let Some(ev) = decoder.next_event() {
            if let Ok(v) = serde_json::from_slice(&ev.data) {
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// The answer to request `id` among `messages`.
fn find_response(messages: &[Value], id: u64) -> Option<Result<Value, String>> {
    let m = messages.iter().find(|m| m["id"].as_u64() == Some(id))?;
    Some(match m.get("error") {
        Some(e) => Err(e["message"].as_str().unwrap_or("error").to_string()),
        None => Ok(m.get("result").cloned().unwrap_or(Value::Null)),
    })
}

async fn write_line(
    stdin: &tokio::sync::Mutex<tokio::process::ChildStdin>,
    message: &Value,
) -> Result<(), String> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    let mut stdin = stdin.lock().await;
    stdin
        .write_all(&line)
        .await
        .map_err(|e| format!("the server's input is closed: {e}"))
}

/// Starts a stdio server and the task reading its output.
fn stdio(spec: &McpServer, command: &str, cwd: &Path) -> std::io::Result<Transport> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(&spec.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if cwd.is_dir() {
        cmd.current_dir(cwd);
    }
    for e in &spec.env {
        cmd.env(&e.name, &e.value);
    }
    let mut child = cmd.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let waiting: Arc<Waiting> = Arc::default();
    let stdin = tokio::sync::Mutex::new(stdin);
    let reader = tokio::spawn(read_stdio(stdout, waiting.clone(), spec.name.clone()));
    Ok(Transport::Stdio {
        stdin,
        waiting,
        _child: child,
        reader,
    })
}

/// Hands a stdio server's answers to the requests waiting for them; its own requests and
/// notifications are logged and dropped (the client offers no capabilities).
async fn read_stdio(stdout: tokio::process::ChildStdout, waiting: Arc<Waiting>, name: String) {
    let mut lines = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut lines)
            .take(MAX_MESSAGE as u64)
            .read_until(b'\n', &mut line)
            .await;
        if !matches!(read, Ok(n) if n > 0) {
            break;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&line) else {
            tracing::debug!(server = %name, "an MCP server wrote a line that is not JSON");
            continue;
        };
        let Some(id) = v["id"].as_u64().filter(|_| v.get("method").is_none()) else {
            tracing::debug!(server = %name, method = v["method"].as_str().unwrap_or(""), "MCP server message ignored");
            continue;
        };
        let tx = waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let (Some(tx), Some(answer)) = (tx, find_response(std::slice::from_ref(&v), id)) {
            let _ = tx.send(answer);
        }
    }
    // Dropping the senders fails every request still waiting.
    waiting.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tools_kind_follows_its_hints() {
        let tool = |read_only, destructive, open_world| McpTool {
            name: "t".into(),
            description: String::new(),
            input_schema: json!({}),
            read_only,
            destructive,
            open_world,
        };
        assert_eq!(tool(true, true, true).kind(), "read");
        assert_eq!(tool(false, true, true).kind(), "delete");
        assert_eq!(tool(false, false, true).kind(), "fetch");
        assert_eq!(tool(false, false, false).kind(), "other");
    }

    #[test]
    fn an_answer_is_found_by_its_id() {
        let msgs = [
            json!({"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}),
            json!({"jsonrpc": "2.0", "id": 2, "error": {"message": "no"}}),
        ];
        assert_eq!(find_response(&msgs, 1), Some(Ok(json!({"a": 1}))));
        assert_eq!(find_response(&msgs, 2), Some(Err("no".to_string())));
        assert_eq!(find_response(&msgs, 3), None);
    }
}
