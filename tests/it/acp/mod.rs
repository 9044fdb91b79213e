//! Agent mode (`continuum acp`, docs/acp.md): whole sessions driven by a client built on the
//! official ACP Python SDK (tests/acp/client.py, one scenario per run) against a scripted
//! OpenAI-compatible upstream or the built-in mock backend, an MCP server built on the
//! official MCP Python SDK (tests/acp/mcp_server.py), and the raw protocol's robustness
//! (bad lines, calls out of order, a client that goes away) spoken directly from here.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::common::*;

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/acp/client.py");

// ---------------------------------------------------------------------------------------
// The scripted upstream
// ---------------------------------------------------------------------------------------

/// Every request body the scripted upstream got.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

/// What the scripted upstream answers.
enum Script {
    /// Text in these pieces, then this finish reason; `pace` between pieces.
    Text {
        pieces: Vec<String>,
        finish: &'static str,
        pace: Option<Duration>,
    },
    /// Reasoning pieces, then text.
    Reasoning { thoughts: Vec<String>, text: String },
    /// One function call.
    Call { name: String, args: Value },
}

/// A message's text: a string, or the text parts of an array.
use continuum::protocol::openai::text_of;

/// Decides the answer from the request (see the module's scenarios in tests/acp/client.py):
/// `loop` → always a read_file call; the last message a tool result → an answer quoting
/// it; `slow` → 200 pieces 50 ms apart; `write F` / `read F` / `add A B` / `mul A B` → a
/// tool call (`run CMD ARGS` → run_command); `recall` → the earlier user messages; `think`, `truncate`, `filtered` →
/// reasoning, finish `length`, finish `content_filter`; else "Hello from MODEL.".
fn script(req: &Value) -> Script {
    let model = req["model"].as_str().unwrap_or("?").to_string();
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let users: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| text_of(&m["content"]))
        .collect();
    let user = users.last().cloned().unwrap_or_default();
    let words: Vec<&str> = user.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    };
    let numbers = |key: &str| -> Option<(i64, i64)> {
        let i = words.iter().position(|w| *w == key)?;
        Some((
            words.get(i + 1)?.parse().ok()?,
            words.get(i + 2)?.parse().ok()?,
        ))
    };
    let text = |pieces: &[&str]| Script::Text {
        pieces: pieces.iter().map(|s| s.to_string()).collect(),
        finish: "stop",
        pace: None,
    };
    if user.contains("loop") {
        return Script::Call {
            name: "read_file".into(),
            args: json!({"path": after("read").unwrap_or_default()}),
        };
    }
    if let Some(last) = messages.last().filter(|m| m["role"] == "tool") {
        let result = text_of(&last["content"]);
        return text(&["The tool said: ", &result, " (done)."]);
    }
    if user.contains("slow") {
        return Script::Text {
            pieces: (0..200).map(|i| format!("tick {i} ")).collect(),
            finish: "stop",
            pace: Some(Duration::from_millis(50)),
        };
    }
    if let Some(path) = after("write") {
        return Script::Call {
            name: "write_file".into(),
            args: json!({"path": path, "content": "hello from the model"}),
        };
    }
    if let Some(path) = after("read") {
        return Script::Call {
            name: "read_file".into(),
            args: json!({"path": path}),
        };
    }
    if let Some(i) = words.iter().position(|w| *w == "run") {
        if let Some(command) = words.get(i + 1) {
            return Script::Call {
                name: "run_command".into(),
                args: json!({"command": command, "args": words[i + 2..]}),
            };
        }
    }
    for op in ["add", "mul"] {
        if let Some((a, b)) = numbers(op) {
            return Script::Call {
                name: format!("calc__{op}"),
                args: json!({"a": a, "b": b}),
            };
        }
    }
    if user.contains("recall") {
        let earlier = users[..users.len() - 1].join(" | ");
        return text(&["You said earlier: ", &earlier]);
    }
    if user.contains("think") {
        return Script::Reasoning {
            thoughts: vec!["Let me ".into(), "think. ".into(), "Yes.".into()],
            text: "Thought about it.".into(),
        };
    }
    if user.contains("truncate") {
        return Script::Text {
            pieces: vec!["partial ".into(), "answ".into()],
            finish: "length",
            pace: None,
        };
    }
    if user.contains("filtered") {
        return Script::Text {
            pieces: vec!["I can".into()],
            finish: "content_filter",
            pace: None,
        };
    }
    text(&["Hello ", "from ", &model, "."])
}

fn chunk(n: u64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({"id": format!("chatcmpl-s{n}"), "object": "chat.completion.chunk", "created": 1, "model": model,
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

/// The scripted answer as SSE events (streamed) or one chat.completion.
fn render(n: u64, model: &str, s: Script, stream: bool) -> axum::response::Response {
    use axum::response::IntoResponse;
    let call_id = format!("call_{n}");
    if !stream {
        let (message, finish) = match s {
            Script::Text { pieces, finish, .. } => (
                json!({"role": "assistant", "content": pieces.concat()}),
                finish,
            ),
            Script::Reasoning { thoughts, text } => (
                json!({"role": "assistant", "content": text, "reasoning_content": thoughts.concat()}),
                "stop",
            ),
            Script::Call { name, args } => (
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": call_id, "type": "function",
                        "function": {"name": name, "arguments": args.to_string()}}]}),
                "tool_calls",
            ),
        };
        let body = json!({"id": format!("chatcmpl-s{n}"), "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
        return axum::Json(body).into_response();
    }
    let mut events = vec![chunk(
        n,
        model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    let mut pace = None;
    let finish = match s {
        Script::Text {
            pieces,
            finish,
            pace: p,
        } => {
            pace = p;
            events.extend(
                pieces
                    .into_iter()
                    .map(|t| chunk(n, model, json!({"content": t}), None)),
            );
            finish
        }
        Script::Reasoning { thoughts, text } => {
            events.extend(
                thoughts
                    .into_iter()
                    .map(|t| chunk(n, model, json!({"reasoning_content": t}), None)),
            );
            events.push(chunk(n, model, json!({"content": text}), None));
            "stop"
        }
        Script::Call { name, args } => {
            let args = args.to_string();
            let (a, b) = args.split_at(args.len() / 2);
            events.push(chunk(
                n,
                model,
                json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            for part in [a, b] {
                events.push(chunk(
                    n,
                    model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    None,
                ));
            }
            "tool_calls"
        }
    };
    events.push(chunk(n, model, json!({}), Some(finish)));
    events.push(json!({"id": format!("chatcmpl-s{n}"), "object": "chat.completion.chunk", "created": 1, "model": model,
        "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}));
    let mut frames: Vec<Result<Bytes, std::convert::Infallible>> = events
        .iter()
        .map(|e| Ok(Bytes::from(format!("data: {e}\n\n"))))
        .collect();
    frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    let body = match pace {
        None => Body::from_stream(futures_util::stream::iter(frames)),
        Some(pace) => Body::from_stream(futures_util::stream::unfold(
            (frames.into_iter(), true),
            move |(mut it, first)| async move {
                let next = it.next()?;
                if !first {
                    tokio::time::sleep(pace).await;
                }
                Some((next, (it, false)))
            },
        )),
    };
    ([("content-type", "text/event-stream")], body).into_response()
}

/// The scripted OpenAI-compatible upstream (POST /v1/chat/completions; spawn_upstream
/// answers GET /v1/models), recording every request.
async fn scripted_upstream() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |body: Bytes| {
            let seen = s2.clone();
            let counter = counter.clone();
            async move {
                let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.0.lock().unwrap().push(req.clone());
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let model = req["model"].as_str().unwrap_or("?").to_string();
                let stream = req["stream"].as_bool().unwrap_or(false);
                render(n, &model, script(&req), stream)
            }
        }),
    );
    (spawn_upstream(app).await, seen)
}

/// The tool message that answers the first tool call in a chat request's history (every
/// call must be answered, or backends refuse the history).
fn answer_to_first_call(req: &Value) -> Value {
    let messages = req["messages"].as_array().unwrap();
    let call = messages
        .iter()
        .find_map(|m| m["tool_calls"][0]["id"].as_str())
        .expect("a tool call in the history");
    messages
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call)
        .unwrap_or_else(|| panic!("no tool message answers {call}: {messages:?}"))
        .clone()
}

/// The names of the tools a chat request offered.
fn tool_names(req: &Value) -> Vec<String> {
    req["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["function"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Running client.py
// ---------------------------------------------------------------------------------------

/// A test's directory: its config file and the session's working directory.
struct Env {
    dir: PathBuf,
    config: PathBuf,
    work: PathBuf,
}

fn env_with(name: &str, yaml: &str) -> Env {
    let dir = temp_dir(&format!("acp-{name}"));
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, yaml).unwrap();
    Env { dir, config, work }
}

const MOCK_BACKEND: &str = "  - {name: demo, type: mock, models: [mock-model], mock: {first_token_latency: 1ms, tokens_per_second: 0}}\n";

/// A config with the scripted upstream serving model-a and model-b (model-a a session's
/// default), `acp_extra` lines under `acp:` and `top_extra` at the top level.
fn scripted_config(addr: SocketAddr, acp_extra: &str, top_extra: &str) -> String {
    format!(
        "backends:\n  - {{name: up, type: generic, url: \"http://{addr}\", models: [model-a, model-b]}}\nacp:\n  default_model: model-a\n{acp_extra}{top_extra}"
    )
}

/// Runs `client.py SCENARIO` against the binary with the env's config; fails the test with
/// the client's report unless it printed `ok SCENARIO`. Returns its stdout.
async fn run_client(env: &Env, scenario: &str, extra: &[&str]) -> String {
    let python = python_with("acp");
    if scenario.starts_with("mcp") {
        python_with("mcp");
    }
    let mut cmd = Command::new(python);
    cmd.arg(CLIENT)
        .arg(scenario)
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_continuum"))
        .arg("--config")
        .arg(&env.config)
        .arg("--workdir")
        .arg(&env.work)
        .args(extra);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::env::var_os("ACP_CLIENT_DUMP").is_some() {
        eprintln!("--- client.py {scenario}\n{stdout}{stderr}");
    }
    assert!(
        out.status.success() && stdout.contains(&format!("ok {scenario}")),
        "client.py {scenario} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

mod raw;
mod sessions;
