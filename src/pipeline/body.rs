//! The response body type of the pipeline: a boxed stream of byte frames whose errors are
//! [`ProxyError`]s. Upstream bodies, in-process answers, translated streams and whole
//! replies all become one, so the pipeline never names a web framework's body type.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

use crate::error::ProxyError;

/// A response body in the pipeline.
pub type Body = UnsyncBoxBody<Bytes, ProxyError>;

/// A response in the pipeline.
pub type Response = http::Response<Body>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Boxes any body whose errors are [`ProxyError`]s.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes, Error = ProxyError> + Send + 'static,
{
    body.boxed_unsync()
}

/// Largest reply the pipeline reads whole after the exchange (to translate or store it).
const MAX_REPLY: usize = 256 << 20;

/// A reply read whole (at most 256 MB), for a translation or the store; a failure names
/// `model` and says what broke.
pub async fn read_whole(body: Body, model: &str) -> Result<Bytes, ProxyError> {
    use http_body_util::Limited;
    Ok(Limited::new(body, MAX_REPLY)
        .collect()
        .await
        .map_err(|e| ProxyError::BadUpstream {
            backend: model.to_string(),
            reason: format!("reading the reply failed: {e}"),
        })?
        .to_bytes())
}

/// A JSON response with `status`.
pub fn json(status: http::StatusCode, bytes: impl Into<Bytes>) -> Response {
    let mut resp = http::Response::new(full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}
