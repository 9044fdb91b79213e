//! `response_format: url` for backends that answer images in base64 only (Gemini): the
//! images are kept in the files store under new, unguessable ids (purpose
//! `image_hosting`, not uploadable) and the reply gets URLs of the router's
//! `GET /v1/images/hosted/{id}`, which serves them for an hour without a key.

use http::header;

use serde::Deserialize;

use super::body::{self, Response};
use super::{Call, Core};
use crate::error::ProxyError;
use crate::files::{HOSTED_IMAGE, HOSTED_IMAGE_TTL};
use crate::protocol::images;

#[derive(Deserialize)]
struct Format {
    #[serde(default)]
    response_format: Option<String>,
}

/// The reply with base64 images replaced by hosted URLs, when the client asked for URLs
/// and the backend sent base64; else the reply as it is.
pub async fn host_images(core: &Core, call: &Call, resp: Response) -> Result<Response, ProxyError> {
    let wants_url = serde_json::from_slice::<Format>(&call.body)
        .is_ok_and(|f| f.response_format.as_deref() == Some("url"));
    if !wants_url || !resp.status().is_success() {
        return Ok(resp);
    }
    let (mut parts, inner) = resp.into_parts();
    let bytes = body::read_whole(inner, call.model()).await?;
    let found = images::b64_images(&bytes).map_err(|reason| ProxyError::BadUpstream {
        backend: call.model().to_string(),
        reason,
    })?;
    if found.is_empty() {
        return Ok(Response::from_parts(parts, body::full(bytes)));
    }
    let host = call
        .host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut urls = Vec::with_capacity(found.len());
    for (i, image, mime) in found {
        let ext = mime.rsplit('/').next().unwrap_or("png");
        let meta = core
            .files
            .put(
                &call.owner,
                &format!("image-{i}.{ext}"),
                &mime,
                HOSTED_IMAGE,
                &image,
            )
            .await?;
        urls.push(format!("http://{host}/v1/images/hosted/{}", meta.id));
    }
    let out = images::with_urls(&bytes, &urls).map_err(|reason| ProxyError::BadUpstream {
        backend: call.model().to_string(),
        reason,
    })?;
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, body::full(out)))
}

/// Whether a hosted image created at `created_at` may still be served at `now`.
pub fn still_hosted(created_at: u64, now: u64) -> bool {
    now <= created_at + HOSTED_IMAGE_TTL
}
