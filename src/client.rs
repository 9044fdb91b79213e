//! A small client of an OpenAI-compatible endpoint (a running router, or any server), used
//! by `chat`, `models list`, `bench` and `health-check`. Errors carry the server's own
//! one-line message, not its JSON.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::backend::{build_client, HttpClient};

/// What went wrong talking to the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not usable.
    #[error("'{0}' is not a valid URL")]
    BadUrl(String),
    /// Nothing accepts connections at the endpoint.
    #[error("nothing is listening at {root}{origin}; start `continuum serve` or pass --url")]
    NotListening {
        /// The endpoint's root.
        root: String,
        /// Where the URL came from (` (server.bind_address in FILE)`), or empty.
        origin: String,
    },
    /// The endpoint could not be reached for another reason (name lookup, TLS, reset).
    #[error("cannot reach {root}{origin}: {reason}; check the URL or pass --url")]
    Unreachable {
        /// The endpoint's root.
        root: String,
        /// Where the URL came from, or empty.
        origin: String,
        /// The innermost cause, e.g. "Name or service not known".
        reason: String,
    },
    /// The server refused, with its message.
    #[error("{message} (HTTP {status})")]
    Api {
        /// The status.
        status: u16,
        /// The server's `error.message` (or its body).
        message: String,
    },
    /// A stream ended with an error event.
    #[error("the answer broke off: {0}")]
    Stream(String),
    /// The answer is not what an OpenAI-compatible server sends.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("{url}: no answer within {after:?}")]
    Timeout {
        /// The URL asked.
        url: String,
        /// The limit.
        after: Duration,
    },
}

/// A client of one endpoint's root (`http://host:port`; a trailing `/v1` is accepted).
#[derive(Clone)]
pub struct Client {
    root: String,
    origin: String,
    api_key: Option<HeaderValue>,
    http: HttpClient,
}

impl Client {
    /// A client of `root` sending `api_key` as `Authorization: Bearer`.
    pub fn new(root: &str, api_key: Option<&str>) -> Result<Client, ClientError> {
        let root = root.trim_end_matches('/');
        let root = root.strip_suffix("/v1").unwrap_or(root).to_string();
        if !(root.starts_with("http://") || root.starts_with("https://"))
            || root.parse::<Uri>().is_err()
        {
            return Err(ClientError::BadUrl(root));
        }
        let api_key = match api_key.filter(|k| !k.is_empty()) {
            Some(k) => Some(HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                ClientError::BadUrl("the API key is not a valid header value".into())
            })?),
            None => None,
        };
        Ok(Client {
            root,
            origin: String::new(),
            api_key,
            http: build_client(64, Duration::from_secs(5)),
        })
    }

    /// Names where the root URL came from (e.g. `server.bind_address in config.yaml`),
    /// for the message when nothing answers there.
    pub fn with_origin(mut self, origin: &str) -> Client {
        self.origin = format!(" ({origin})");
        self
    }

    /// The endpoint's root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A request to `path` with the API key.
    pub fn request(&self, method: Method, path: &str, body: Bytes) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = format!("{}{path}", self.root)
            .parse()
            .unwrap_or_else(|_| Uri::from_static("http://invalid"));
        let h = req.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(k) = &self.api_key {
            h.insert(http::header::AUTHORIZATION, k.clone());
        }
        req
    }

    /// The underlying HTTP client (the load generator drives it directly).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let url = req.uri().to_string();
        match tokio::time::timeout(timeout, self.http.request(req)).await {
            Err(_) => Err(ClientError::Timeout {
                url,
                after: timeout,
            }),
            Ok(Err(e)) => Err(self.unreachable(&e)),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// GETs `path` and parses the JSON answer (a refusal is [`ClientError::Api`]).
    pub async fn get_json(&self, path: &str, timeout: Duration) -> Result<Value, ClientError> {
        let resp = self
            .send(self.request(Method::GET, path, Bytes::new()), timeout)
            .await?;
        let status = resp.status();
        let body = read_all(resp).await?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// GETs `path` and returns the answer's status only (the health check).
    pub async fn status(&self, path: &str, timeout: Duration) -> Result<StatusCode, ClientError> {
        let resp = self
            .send(self.request(Method::GET, path, Bytes::new()), timeout)
            .await?;
        Ok(resp.status())
    }

    /// `GET /v1/models`.
    pub async fn models(&self) -> Result<Value, ClientError> {
        self.get_json("/v1/models", Duration::from_secs(30)).await
    }

    /// Streams a chat completion of `messages` with `model` and the request fields in
    /// `extra` (`temperature`, `max_tokens`, …), calling `on_text` with each piece of text
    /// as it arrives.
    pub async fn chat_stream(
        &self,
        model: &str,
        messages: &[Value],
        extra: &serde_json::Map<String, Value>,
        mut on_text: impl FnMut(&str),
    ) -> Result<(), ClientError> {
        let mut body = serde_json::json!({
            "model": model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        for (k, v) in extra {
            body[k] = v.clone();
        }
        let req = self.request(
            Method::POST,
            "/v1/chat/completions",
            Bytes::from(body.to_string()),
        );
        let resp = self.send(req, Duration::from_secs(600)).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_all(resp).await?;
            return Err(api_error(status, &body));
        }
        let mut sse = SseLines::default();
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::Stream(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            for event in sse.push(&data) {
                if event == "[DONE]" {
                    return Ok(());
                }
                let v: Value = serde_json::from_str(&event)
                    .map_err(|e| ClientError::Protocol(format!("{e}: {event}")))?;
                if let Some(err) = v.get("error") {
                    return Err(ClientError::Stream(message_of(err)));
                }
                if let Some(text) = v["choices"][0]["delta"]["content"].as_str() {
                    on_text(text);
                }
            }
        }
        Err(ClientError::Stream(
            "the stream ended without [DONE]".into(),
        ))
    }
}

async fn read_all(resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, ClientError> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Stream(e.to_string()))
}

fn message_of(err: &Value) -> String {
    err["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| err.to_string())
}

impl Client {
    /// What a failed connection means, in one sentence: nothing listening, or the
    /// innermost cause (not hyper's whole chain).
    fn unreachable(&self, e: &hyper_util::client::legacy::Error) -> ClientError {
        let innermost = crate::http::innermost_cause(e);
        let refused = innermost
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            return ClientError::NotListening {
                root: self.root.clone(),
                origin: self.origin.clone(),
            };
        }
        ClientError::Unreachable {
            root: self.root.clone(),
            origin: self.origin.clone(),
            reason: innermost.to_string(),
        }
    }
}

/// A refusal's one-line message: OpenAI's `error.message`, Anthropic's, or the body.
pub fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.get("error").is_some() => message_of(&v["error"]),
        _ => String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(300)
            .collect(),
    };
    ClientError::Api {
        status: status.as_u16(),
        message,
    }
}

/// Splits an SSE byte stream into the `data:` payloads of whole events.
#[derive(Default)]
pub struct SseLines {
    pending: Vec<u8>,
}

impl SseLines {
    /// Adds bytes; returns the data of every line completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(data) = line.strip_prefix("data:") {
                out.push(data.trim_start().to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_lines_split_across_chunks() {
        let mut s = SseLines::default();
        assert!(s.push(b"data: {\"a\"").is_empty());
        assert_eq!(s.push(b":1}\n\ndata: [DONE]\n\n"), ["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn refusals_are_one_line() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"message":"model 'x' not found","type":"invalid_request_error"}}"#,
        );
        assert_eq!(e.to_string(), "model 'x' not found (HTTP 404)");
        assert!(Client::new("ftp://x", None).is_err());
        assert_eq!(
            Client::new("http://h:1/v1/", None).unwrap().root(),
            "http://h:1"
        );
    }
}
