//! The one place where errors become HTTP responses, in OpenAI's error shape
//! `{"error":{"message","type","param","code"}}`.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue};

use crate::error::ProxyError;
use crate::protocol::errors::openai_error_json;

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
    let mut resp = Response::new(Body::from(crate::protocol::anthropic_client::error_body(
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
