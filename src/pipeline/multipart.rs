//! The two things the router reads or edits in a multipart form (image edits and
//! variations): the `model` field, read to route, and replaced with the backend's model
//! name — every other byte kept.

use bytes::Bytes;
use http::HeaderValue;

use crate::error::ProxyError;

/// The `model` field of a multipart body (OpenAI's image edits and variations); OpenAI's
/// default, `dall-e-2`, when there is none.
pub fn model(body: &[u8], content_type: Option<&HeaderValue>) -> Result<String, ProxyError> {
    let boundary = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| ProxyError::InvalidField {
            param: "image",
            message: "the request must be multipart/form-data with a boundary".into(),
        })?;
    let delimiter = format!("--{boundary}");
    for part in split_on(body, delimiter.as_bytes()) {
        let Some(at) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..at]).to_ascii_lowercase();
        if head.contains("name=\"model\"") {
            let value = &part[at + 4..];
            let value = value.strip_suffix(b"\r\n").unwrap_or(value);
            let model = String::from_utf8_lossy(value).trim().to_string();
            if model.is_empty() {
                return Err(ProxyError::MissingModel);
            }
            return Ok(model);
        }
    }
    Ok("dall-e-2".into())
}

/// A multipart body with its `model` field's value replaced (every other byte kept);
/// `None` when it has no `model` field or no readable boundary.
pub fn replace_model(
    body: &Bytes,
    content_type: Option<&HeaderValue>,
    model: &str,
) -> Option<Bytes> {
    let boundary = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())?;
    let delimiter = format!("--{boundary}");
    let mut offset = 0;
    for part in split_on(body, delimiter.as_bytes()) {
        let start = offset;
        offset += part.len() + delimiter.len();
        let Some(at) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&part[..at]).to_ascii_lowercase();
        if !head.contains("name=\"model\"") {
            continue;
        }
        let value_start = start + at + 4;
        let value_end = start + part.len() - usize::from(part.ends_with(b"\r\n")) * 2;
        let mut out = bytes::BytesMut::with_capacity(body.len() + model.len());
        out.extend_from_slice(&body[..value_start]);
        out.extend_from_slice(model.as_bytes());
        out.extend_from_slice(&body[value_end..]);
        return Some(out.freeze());
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `hay` split at each `delimiter`.
fn split_on<'a>(hay: &'a [u8], delimiter: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(hay);
    std::iter::from_fn(move || {
        let r = rest?;
        match find(r, delimiter) {
            Some(i) => {
                rest = Some(&r[i + delimiter.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}
