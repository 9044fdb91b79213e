//! The built-in `mock` backend: answers in-process, deterministically, with an echo of the
//! last user message, at a settable first-token latency and token rate, failing a settable
//! fraction of requests. Used by the README quick start, the tests and the benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{header, HeaderValue, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt as _, Full, StreamBody};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::MockSettings;
use crate::pipeline::body::Response;

/// A mock backend with its settings.
#[derive(Debug)]
pub struct MockBackend {
    settings: MockSettings,
    counter: AtomicU64,
}

#[derive(Deserialize)]
struct MockRequest {
    messages: Vec<MockMessage>,
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct MockMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Rough token count used by the mock: whitespace-separated words.
fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn json_response(status: StatusCode, body: Value) -> Response {
    crate::pipeline::body::json(status, body.to_string())
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    json_response(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

fn sse(value: &Value) -> Bytes {
    crate::protocol::sse::encode(None, value.to_string().as_bytes())
}

/// Where a mock stream is: each frame is built when it is due, so a long answer costs one
/// copy of its text rather than every frame at once (the stream benchmark measures the
/// router, not the mock).
enum Stage {
    Role,
    Tokens,
    Stop,
    Usage,
    Done,
    End,
}

/// What a mock stream still has to send.
struct LazyFrames {
    reply: String,
    /// Byte offset of the next token in `reply`.
    at: usize,
    stage: Stage,
    id: String,
    created: u64,
    model: String,
    usage: Option<Value>,
    first: Duration,
    step: Duration,
}

impl LazyFrames {
    fn chunk(&self, delta: Value, finish: Value) -> Bytes {
        sse(&json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        }))
    }

    /// The next frame and the delay before it: the first token after first_token_latency,
    /// the next ones at the token rate, the closing frames at once.
    fn next_frame(&mut self) -> Option<(Bytes, Duration)> {
        loop {
            match self.stage {
                Stage::Role => {
                    self.stage = Stage::Tokens;
                    let role = json!({"role": "assistant", "content": ""});
                    return Some((self.chunk(role, Value::Null), self.first));
                }
                Stage::Tokens if self.at < self.reply.len() => {
                    let rest = &self.reply[self.at..];
                    // A token is a word with the whitespace after it (split_inclusive).
                    let len = rest
                        .char_indices()
                        .find(|(_, c)| c.is_whitespace())
                        .map_or(rest.len(), |(i, c)| i + c.len_utf8());
                    let wait = if self.at == 0 {
                        Duration::ZERO
                    } else {
                        self.step
                    };
                    let token = rest[..len].to_string();
                    self.at += len;
                    return Some((self.chunk(json!({"content": token}), Value::Null), wait));
                }
                Stage::Tokens => self.stage = Stage::Stop,
                Stage::Stop => {
                    self.stage = Stage::Usage;
                    return Some((self.chunk(json!({}), json!("stop")), Duration::ZERO));
                }
                Stage::Usage => {
                    self.stage = Stage::Done;
                    if let Some(usage) = self.usage.take() {
                        let chunk = json!({
                            "id": self.id, "object": "chat.completion.chunk",
                            "created": self.created, "model": self.model,
                            "choices": [], "usage": usage,
                        });
                        return Some((sse(&chunk), Duration::ZERO));
                    }
                }
                Stage::Done => {
                    self.stage = Stage::End;
                    return Some((
                        Bytes::from_static(crate::protocol::sse::DONE),
                        Duration::ZERO,
                    ));
                }
                Stage::End => return None,
            }
        }
    }
}

impl MockBackend {
    /// A mock backend with `settings`.
    pub fn new(settings: MockSettings) -> MockBackend {
        MockBackend {
            settings,
            counter: AtomicU64::new(0),
        }
    }

    fn token_delay(&self) -> Duration {
        if self.settings.tokens_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / self.settings.tokens_per_second)
        } else {
            Duration::ZERO
        }
    }

    /// Answers a request in-process, as an OpenAI-compatible server would: chat
    /// completions, streamed or not; any other path is a 404.
    pub async fn serve(&self, request: http::Request<Full<Bytes>>) -> Response {
        if request.uri().path() != "/v1/chat/completions" {
            return error_response(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                &format!("mock backend: no route for {}", request.uri().path()),
            );
        }
        let Ok(collected) = request.into_body().collect().await;
        self.chat(&collected.to_bytes()).await
    }

    async fn chat(&self, body: &[u8]) -> Response {
        let request: MockRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!(
                        "mock backend: 'messages' must be a list of {{role, content}} objects: {e}"
                    ),
                )
            }
        };
        if self.settings.fail_rate > 0.0 && fastrand::f64() < self.settings.fail_rate {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "mock backend: injected failure (mock.fail_rate)",
            );
        }
        let (stream, model) = (request.stream, request.model.as_str());
        let reply = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| text_of(&m.content))
            .unwrap_or_default();
        let prompt_tokens: u64 = request
            .messages
            .iter()
            .map(|m| count_words(&text_of(&m.content)) + 1)
            .sum();
        let tokens: Vec<&str> = reply.split_inclusive(char::is_whitespace).collect();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("chatcmpl-mock-{n}");
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens.len(),
            "total_tokens": prompt_tokens + tokens.len() as u64,
        });
        if !stream {
            tokio::time::sleep(
                self.settings.first_token_latency + self.token_delay() * tokens.len() as u32,
            )
            .await;
            return json_response(
                StatusCode::OK,
                json!({
                    "id": id, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                 "logprobs": null, "finish_reason": "stop"}],
                    "usage": usage,
                }),
            );
        }
        let lazy = LazyFrames {
            reply: reply.to_string(),
            at: 0,
            stage: Stage::Role,
            id,
            created,
            model: model.to_string(),
            usage: request
                .stream_options
                .is_some_and(|o| o.include_usage)
                .then_some(usage),
            first: self.settings.first_token_latency,
            step: self.token_delay(),
        };
        let stream = futures_util::stream::unfold(lazy, |mut lazy| async move {
            let (frame, wait) = lazy.next_frame()?;
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Some((frame, lazy))
        });
        let stream = StreamBody::new(stream.map(|b| Ok(Frame::data(b))));
        let mut resp = Response::new(crate::pipeline::body::boxed(stream));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }
}
