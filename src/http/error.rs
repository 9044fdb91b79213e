//! The one place where errors become HTTP responses, in OpenAI's error shape
//! `{"error":{"message","type","param","code"}}`.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue};
use serde::Serialize;

use crate::error::ProxyError;

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

/// The OpenAI-shaped JSON for an error.
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

/// The SSE event that ends an OpenAI stream which broke after its first byte.
pub fn openai_stream_error_event(err: &ProxyError) -> Bytes {
    crate::protocol::sse::encode(None, openai_error_json(err).as_bytes())
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        error_response(&self, false)
    }
}

/// The error response in the client's protocol: Anthropic's shape on the Messages API
/// paths, OpenAI's elsewhere.
pub fn error_response(err: &ProxyError, anthropic: bool) -> Response {
    if !anthropic {
        let mut resp = Response::new(Body::from(openai_error_json(err)));
        *resp.status_mut() = err.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        err.add_headers(resp.headers_mut());
        return resp;
    }
    let status = err.status();
    let mut resp = Response::new(Body::from(crate::protocol::anthropic::error_body(
        status.as_u16(),
        &err.to_string(),
    )));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    err.add_headers(resp.headers_mut());
    resp
}
