//! JSON-RPC 2.0 as ACP carries it: one JSON message per line. Reading a line into a
//! message ([`parse`]), and the [`Peer`] through which everything leaves: responses,
//! notifications, and the agent's own requests to the client (whose answers come back
//! through [`Peer::resolve`]). One writer task owns the output, so messages never
//! interleave and nothing but protocol messages is ever written there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The standard codes, and the two ACP adds.
pub mod code {
    /// The line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC 2.0 message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The params do not fit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The agent failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// ACP: the client must authenticate first.
    pub const AUTH_REQUIRED: i64 = -32000;
    /// ACP: a resource (a session) is not there.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// Its code (see [`code`]).
    pub code: i64,
    /// One sentence for the user.
    pub message: String,
    /// More detail, when there is some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Invalid params, naming what is wrong.
    pub fn params(message: impl Into<String>) -> RpcError {
        RpcError::new(code::INVALID_PARAMS, message)
    }

    /// The agent failed at something.
    pub fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(code::INTERNAL_ERROR, message)
    }
}

/// One message read from the client.
#[derive(Debug)]
pub enum Incoming {
    /// A call that wants an answer.
    Request {
        /// Its id (a number or a string), echoed in the answer.
        id: Value,
        /// The method.
        method: String,
        /// Its params (`null` when absent).
        params: Value,
    },
    /// A call that wants none.
    Notification {
        /// The method.
        method: String,
        /// Its params.
        params: Value,
    },
    /// The answer to one of the agent's own requests.
    Response {
        /// The id the agent gave it.
        id: Value,
        /// Its result or error.
        outcome: Result<Value, RpcError>,
    },
}

/// Reads one line into a message; a line that is not one is the error to answer with
/// (and the id to answer it under, `null` when none could be read).
pub fn parse(line: &[u8]) -> Result<Incoming, (Value, RpcError)> {
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        (
            Value::Null,
            RpcError::new(code::PARSE_ERROR, format!("not JSON: {e}")),
        )
    })?;
    let Value::Object(mut m) = v else {
        return Err((
            Value::Null,
            RpcError::new(
                code::INVALID_REQUEST,
                "a message must be a JSON object (batches are not used by ACP)",
            ),
        ));
    };
    let id = m.remove("id");
    let bad = |id: Option<Value>, why: &str| {
        Err((
            id.unwrap_or(Value::Null),
            RpcError::new(code::INVALID_REQUEST, why),
        ))
    };
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return bad(id, "\"jsonrpc\" must be \"2.0\"");
    }
    if let Some(i) = &id {
        if !(i.is_number() || i.is_string() || i.is_null()) {
            return bad(None, "\"id\" must be a number or a string");
        }
    }
    match m.remove("method") {
        Some(Value::String(method)) => {
            let params = m.remove("params").unwrap_or(Value::Null);
            if !(params.is_object() || params.is_array() || params.is_null()) {
                return bad(id, "\"params\" must be an object");
            }
            Ok(match id {
                Some(id) => Incoming::Request { id, method, params },
                None => Incoming::Notification { method, params },
            })
        }
        Some(_) => bad(id, "\"method\" must be a string"),
        None => {
            let Some(id) = id else {
                return bad(None, "a message needs a \"method\" or an \"id\"");
            };
            let outcome = match (m.remove("result"), m.remove("error")) {
                (Some(r), None) => Ok(r),
                (None, Some(e)) => Err(RpcError {
                    code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    data: e.get("data").cloned(),
                }),
                _ => return bad(Some(id), "a response needs one of \"result\" or \"error\""),
            };
            Ok(Incoming::Response { id, outcome })
        }
    }
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>;

/// The sending side of the connection, shared by every task serving it.
#[derive(Clone)]
pub struct Peer {
    out: mpsc::Sender<Vec<u8>>,
    pending: Arc<Pending>,
    next_id: Arc<AtomicU64>,
    /// The client is gone (its input closed, or its output broke): requests fail at once.
    closed: Arc<AtomicBool>,
}

impl Peer {
    /// A peer writing to `output` (from a task it spawns; the task ends when every peer
    /// is dropped, after flushing what was queued).
    pub fn start<W>(output: W) -> (Peer, tokio::task::JoinHandle<()>)
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
        let peer = Peer {
            out: tx,
            pending: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            closed: Arc::default(),
        };
        // Not a Peer: a sender kept here would keep the channel (and this task) open.
        let (pending, closed) = (peer.pending.clone(), peer.closed.clone());
        let writer = tokio::spawn(async move {
            let mut output = output;
            while let Some(line) = rx.recv().await {
                let ok = output.write_all(&line).await.is_ok() && output.flush().await.is_ok();
                if !ok {
                    // The client is gone; what is left can go nowhere, and nobody answers.
                    fail_all(&pending, &closed);
                    break;
                }
            }
        });
        (peer, writer)
    }

    async fn send(&self, message: &Value) {
        let mut line = serde_json::to_vec(message).unwrap_or_default();
        line.push(b'\n');
        // An error means the writer is gone (the client closed its input): nothing to do.
        let _ = self.out.send(line).await;
    }

    /// Answers request `id`.
    pub async fn respond(&self, id: Value, outcome: Result<Value, RpcError>) {
        let message = match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
        };
        self.send(&message).await;
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: impl Serialize) {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send(&message).await;
    }

    /// Sends a request to the client and waits for its answer (an error when the
    /// connection closes first).
    pub async fn request(&self, method: &str, params: impl Serialize) -> Result<Value, RpcError> {
        let gone = || Err(RpcError::internal("the client closed the connection"));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            // Checked under the lock `fail_pending` takes, so no request slips past it.
            if self.closed.load(Ordering::Relaxed) {
                return gone();
            }
            pending.insert(id, tx);
        }
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = serde_json::to_vec(&message).unwrap_or_default();
        line.push(b'\n');
        if self.out.send(line).await.is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            return gone();
        }
        rx.await.unwrap_or_else(|_| gone())
    }

    /// Hands the client's answer to the request waiting for it; an answer to nothing
    /// asked is dropped (and logged).
    pub fn resolve(&self, id: &Value, outcome: Result<Value, RpcError>) {
        let waiting = id.as_u64().and_then(|n| {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&n)
        });
        match waiting {
            Some(tx) => {
                let _ = tx.send(outcome);
            }
            None => tracing::warn!(%id, "a response to no request of the agent's was dropped"),
        }
    }

    /// Fails every request still waiting for the client, and every later one (it has gone).
    pub fn fail_pending(&self) {
        fail_all(&self.pending, &self.closed);
    }
}

fn fail_all(pending: &Pending, closed: &AtomicBool) {
    let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
    closed.store(true, Ordering::Relaxed);
    for (_, tx) in pending.drain() {
        let _ = tx.send(Err(RpcError::internal("the client closed the connection")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> (Value, i64) {
        let (id, e) = parse(line.as_bytes()).unwrap_err();
        (id, e.code)
    }

    #[test]
    fn lines_that_are_not_messages_get_the_right_codes() {
        assert_eq!(err("{nope"), (Value::Null, code::PARSE_ERROR));
        assert_eq!(err("[1,2]"), (Value::Null, code::INVALID_REQUEST));
        assert_eq!(
            err(r#"{"id":3,"method":"initialize"}"#),
            (json!(3), code::INVALID_REQUEST)
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":4,"method":7}"#),
            (json!(4), code::INVALID_REQUEST)
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#),
            (Value::Null, code::INVALID_REQUEST)
        );
        assert_eq!(
            err(r#"{"jsonrpc":"2.0","id":5,"method":"x","params":"s"}"#),
            (json!(5), code::INVALID_REQUEST)
        );
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let r = parse(br#"{"jsonrpc":"2.0","id":"a","method":"session/new","params":{"cwd":"/"}}"#);
        assert!(
            matches!(r, Ok(Incoming::Request { id, method, .. }) if id == "a" && method == "session/new")
        );
        let n = parse(br#"{"jsonrpc":"2.0","method":"session/cancel","params":{}}"#);
        assert!(
            matches!(n, Ok(Incoming::Notification { method, .. }) if method == "session/cancel")
        );
        let ok = parse(br#"{"jsonrpc":"2.0","id":7,"result":{"content":"x"}}"#);
        assert!(matches!(ok, Ok(Incoming::Response { outcome: Ok(_), .. })));
        let e = parse(br#"{"jsonrpc":"2.0","id":7,"error":{"code":-32603,"message":"no"}}"#);
        assert!(matches!(
            e,
            Ok(Incoming::Response {
                outcome: Err(RpcError { code: -32603, .. }),
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_request_waits_for_its_own_answer() {
        let (client, agent) = tokio::io::duplex(4096);
        let (peer, _writer) = Peer::start(agent);
        let asking = {
            let peer = peer.clone();
            tokio::spawn(async move {
                peer.request("fs/read_text_file", json!({"path": "/a"}))
                    .await
            })
        };
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(client));
        let sent: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(sent["method"], "fs/read_text_file");
        peer.resolve(&sent["id"], Ok(json!({"content": "hi"})));
        assert_eq!(asking.await.unwrap().unwrap()["content"], "hi");
    }

    #[tokio::test]
    async fn once_the_client_is_gone_requests_fail_at_once() {
        let (client, agent) = tokio::io::duplex(4096);
        let (peer, _writer) = Peer::start(agent);
        let waiting = {
            let peer = peer.clone();
            tokio::spawn(async move { peer.request("fs/read_text_file", json!({})).await })
        };
        // Its request is out: read it, then the client leaves.
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(client));
        lines.next_line().await.unwrap();
        peer.fail_pending();
        assert!(waiting.await.unwrap().is_err());
        assert!(peer.request("terminal/output", json!({})).await.is_err());
    }
}
