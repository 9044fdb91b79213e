//! Provider errors classified once and re-told in each client's protocol. Every provider
//! says "rate limited", "overloaded" or "context too long" in its own words and status;
//! the client gets the status and error type its SDK understands, with the provider's
//! message kept.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use crate::error::ProxyError;
use serde_json::{json, Value};

/// What a provider's error means, whatever its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or names something invalid.
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextTooLong,
    /// The backend refused the credentials.
    Authentication,
    /// The credentials may not do this.
    Permission,
    /// The model or resource does not exist.
    NotFound,
    /// A rate limit or quota was hit.
    RateLimited,
    /// The provider is overloaded (Anthropic's 529, Gemini's `UNAVAILABLE`).
    Overloaded,
    /// Any other failure on the provider's side.
    Server,
}

/// A classified provider error with the provider's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// What the error means.
    pub kind: ErrorKind,
    /// The provider's message, unchanged.
    pub message: String,
}

/// Phrases providers use for a prompt over the context window.
const CONTEXT_PHRASES: &[&str] = &[
    "prompt is too long",
    "maximum context length",
    "context length",
    "context window",
    "exceeds the maximum number of tokens",
    "too many tokens",
];

fn mentions_context(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    CONTEXT_PHRASES.iter().any(|p| lower.contains(p))
}

fn by_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Authentication,
        403 => ErrorKind::Permission,
        404 => ErrorKind::NotFound,
        413 => ErrorKind::ContextTooLong,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Server,
    }
}

fn body_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().to_string()
}

impl ProviderError {
    fn new(kind: ErrorKind, message: String) -> ProviderError {
        let kind = match kind {
            ErrorKind::InvalidRequest if mentions_context(&message) => ErrorKind::ContextTooLong,
            k => k,
        };
        ProviderError { kind, message }
    }

    /// An OpenAI-shaped error (`{"error":{"message","type","code"}}`), also what
    /// OpenAI-compatible servers send; a bare `{"error":"…"}` (Ollama) is read too.
    pub fn from_openai(status: StatusCode, body: &[u8]) -> ProviderError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let (message, code) = match &v["error"] {
            Value::String(s) => (s.clone(), None),
            e => (
                e["message"]
                    .as_str()
                    .map_or_else(|| body_text(body), str::to_string),
                e["code"].as_str(),
            ),
        };
        let kind = match code {
            Some("context_length_exceeded") => ErrorKind::ContextTooLong,
            Some("rate_limit_exceeded" | "insufficient_quota") => ErrorKind::RateLimited,
            Some("model_not_found") => ErrorKind::NotFound,
            _ => by_status(status),
        };
        ProviderError::new(kind, message)
    }

    /// An Anthropic error (`{"type":"error","error":{"type","message"}}`).
    pub fn from_anthropic(status: StatusCode, body: &[u8]) -> ProviderError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message = v["error"]["message"]
            .as_str()
            .map_or_else(|| body_text(body), str::to_string);
        let kind = match v["error"]["type"].as_str() {
            Some("invalid_request_error") => ErrorKind::InvalidRequest,
            Some("authentication_error") => ErrorKind::Authentication,
            Some("permission_error") => ErrorKind::Permission,
            Some("not_found_error") => ErrorKind::NotFound,
            Some("request_too_large") => ErrorKind::ContextTooLong,
            Some("rate_limit_error") => ErrorKind::RateLimited,
            Some("overloaded_error") => ErrorKind::Overloaded,
            Some("api_error") => ErrorKind::Server,
            _ => by_status(status),
        };
        ProviderError::new(kind, message)
    }

    /// A Google API error (`{"error":{"code","message","status"}}`).
    pub fn from_gemini(status: StatusCode, body: &[u8]) -> ProviderError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message = v["error"]["message"]
            .as_str()
            .map_or_else(|| body_text(body), str::to_string);
        // A bad API key comes as 400 `INVALID_ARGUMENT`; only its `ErrorInfo.reason` says
        // `API_KEY_INVALID` (https://google.aip.dev/193).
        let reason = |r: &str| {
            v["error"]["details"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|d| d["reason"] == r)
        };
        let kind = match v["error"]["status"].as_str() {
            _ if reason("API_KEY_INVALID") => ErrorKind::Authentication,
            Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
                ErrorKind::InvalidRequest
            }
            Some("UNAUTHENTICATED") => ErrorKind::Authentication,
            Some("PERMISSION_DENIED") => ErrorKind::Permission,
            Some("NOT_FOUND") => ErrorKind::NotFound,
            Some("RESOURCE_EXHAUSTED") => ErrorKind::RateLimited,
            Some("UNAVAILABLE") => ErrorKind::Overloaded,
            _ => by_status(status),
        };
        ProviderError::new(kind, message)
    }

    /// The status an OpenAI client gets: the standard code its SDK maps to a typed error.
    pub fn openai_status(&self, upstream: StatusCode) -> StatusCode {
        match self.kind {
            ErrorKind::InvalidRequest | ErrorKind::ContextTooLong => StatusCode::BAD_REQUEST,
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::Permission => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Server if upstream.is_server_error() => upstream,
            ErrorKind::Server => StatusCode::BAD_GATEWAY,
        }
    }

    /// The body an OpenAI client gets.
    pub fn openai_body(&self) -> Bytes {
        let (kind, code) = match self.kind {
            ErrorKind::InvalidRequest => ("invalid_request_error", Value::Null),
            ErrorKind::ContextTooLong => (
                "invalid_request_error",
                Value::from("context_length_exceeded"),
            ),
            ErrorKind::Authentication => ("authentication_error", Value::from("invalid_api_key")),
            ErrorKind::Permission => ("permission_error", Value::Null),
            ErrorKind::NotFound => ("invalid_request_error", Value::from("model_not_found")),
            ErrorKind::RateLimited => ("rate_limit_error", Value::from("rate_limit_exceeded")),
            ErrorKind::Overloaded => ("server_error", Value::from("overloaded")),
            ErrorKind::Server => ("server_error", Value::Null),
        };
        Bytes::from(
            json!({"error": {"message": self.message, "type": kind, "param": null, "code": code}})
                .to_string(),
        )
    }

    /// The status an Anthropic client gets (529 for overload, as Anthropic sends it).
    pub fn anthropic_status(&self, upstream: StatusCode) -> StatusCode {
        match self.kind {
            ErrorKind::Overloaded => StatusCode::from_u16(529).unwrap_or(upstream),
            ErrorKind::ContextTooLong => StatusCode::BAD_REQUEST,
            _ => self.openai_status(upstream),
        }
    }

    /// The body an Anthropic client gets.
    pub fn anthropic_body(&self) -> Bytes {
        let kind = match self.kind {
            ErrorKind::InvalidRequest | ErrorKind::ContextTooLong => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RateLimited => "rate_limit_error",
            ErrorKind::Overloaded => "overloaded_error",
            ErrorKind::Server => "api_error",
        };
        Bytes::from(
            json!({"type": "error", "error": {"type": kind, "message": self.message}}).to_string(),
        )
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// The OpenAI-shaped JSON for a router error.
pub fn openai_error_json(err: &ProxyError) -> String {
    let message = err.to_string();
    let body = ErrorBody {
        error: ErrorDetail {
            message: &message,
            kind: err.openai_type(),
            param: err.param(),
            code: err.code(),
        },
    };
    serde_json::to_string(&body).unwrap_or_else(|_| {
        String::from(
            r#"{"error":{"message":"internal error","type":"api_error","param":null,"code":null}}"#,
        )
    })
}

/// The event that ends a stream in `wire` which broke after its first byte: an Anthropic
/// `event: error` for Messages streams, a Responses `error` event for Responses streams,
/// else OpenAI's `data: {"error":…}` — never a clean end.
pub fn stream_error_event(wire: crate::pipeline::op::Wire, err: &ProxyError) -> Bytes {
    use crate::pipeline::op::Wire;
    match wire {
        Wire::AnthropicMessages => Bytes::from(
            crate::protocol::anthropic_client::StreamTranslator::error_event(&err.to_string()),
        ),
        Wire::OpenAiResponses => {
            let data = json!({"type": "error", "code": err.code().unwrap_or("server_error"),
                "message": err.to_string(), "param": null});
            crate::protocol::sse::encode(Some("error"), data.to_string().as_bytes())
        }
        _ => openai_stream_error_event(err),
    }
}

/// The SSE event that ends an OpenAI stream which broke after its first byte.
pub fn openai_stream_error_event(err: &ProxyError) -> Bytes {
    crate::protocol::sse::encode(None, openai_error_json(err).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn each_provider_wording_is_classified() {
        let cases = [
            (
                ProviderError::from_anthropic(
                    s(400),
                    br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"}}"#,
                ),
                ErrorKind::ContextTooLong,
            ),
            (
                ProviderError::from_anthropic(
                    s(529),
                    br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                ),
                ErrorKind::Overloaded,
            ),
            (
                ProviderError::from_gemini(
                    s(400),
                    br#"{"error":{"code":400,"message":"The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
                ),
                ErrorKind::ContextTooLong,
            ),
            (
                ProviderError::from_gemini(
                    s(429),
                    br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#,
                ),
                ErrorKind::RateLimited,
            ),
            (
                ProviderError::from_openai(
                    s(400),
                    br#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
                ),
                ErrorKind::ContextTooLong,
            ),
            (
                ProviderError::from_openai(s(404), br#"{"error":"model 'llama3.2' not found"}"#),
                ErrorKind::NotFound,
            ),
            (
                ProviderError::from_openai(s(500), b"upstream exploded"),
                ErrorKind::Server,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind, kind, "{e:?}");
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn statuses_follow_each_client_protocol() {
        let overloaded = ProviderError {
            kind: ErrorKind::Overloaded,
            message: "busy".into(),
        };
        assert_eq!(overloaded.openai_status(s(529)), s(503));
        assert_eq!(overloaded.anthropic_status(s(503)), s(529));
        let v: Value = serde_json::from_slice(&overloaded.anthropic_body()).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
        );
        let server = ProviderError::from_openai(s(500), b"boom");
        assert_eq!(server.openai_status(s(500)), s(500));
        assert_eq!(server.anthropic_status(s(500)), s(500));
    }
}
