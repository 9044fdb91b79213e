//! The Files API (OpenAI's shapes): `POST /v1/files` (multipart, streamed to disk),
//! `GET /v1/files` (`purpose`, `limit`, `after`, `order`), `GET /v1/files/{id}`,
//! `GET /v1/files/{id}/content` (streamed, with its type and length) and
//! `DELETE /v1/files/{id}`. A file is its uploader's (`files.auth.enforce_ownership`):
//! another caller gets 404, as for an id that does not exist; keys with the `admin` scope
//! see every file when `admin_can_access_all`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, Extensions, HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, AppState};
use crate::auth::Caller;
use crate::config::access::Scope;
use crate::config::files::FilesAuthMethod;
use crate::error::ProxyError;
use crate::files::{upload, well_formed, FileMeta, Upload};

/// Who is asking, as far as files go: their owner name and whether they see every file.
struct Asker {
    owner: String,
    sees_all: bool,
}

/// The caller's identity for the Files API, or why it may not use it.
fn asker(state: &AppState, extensions: &Extensions) -> Result<Asker, ProxyError> {
    let files = &state.config.files;
    if !files.enabled {
        return Err(ProxyError::UnknownRoute {
            method: "Files API".into(),
            path: "(files.enabled is false)".into(),
        });
    }
    let caller = extensions.get::<Caller>();
    if files.auth.method == FilesAuthMethod::ApiKey && caller.is_none() {
        return Err(ProxyError::Unauthenticated(if state.keys.is_some() {
            "the Files API needs an API key (files.auth.method: api_key)"
        } else {
            "the Files API needs an API key (files.auth.method: api_key), but no api_keys are configured"
        }));
    }
    Ok(Asker {
        owner: caller.map_or_else(String::new, |c| c.owner().to_string()),
        sees_all: !files.auth.enforce_ownership
            || (files.auth.admin_can_access_all
                && caller.is_some_and(|c| c.0.has_scope(Scope::Admin))),
    })
}

/// The file `id` if the asker may see it, else 404.
async fn visible(state: &AppState, asker: &Asker, id: &str) -> Result<FileMeta, ProxyError> {
    let not_found = || ProxyError::NotFound {
        kind: "file",
        id: id.to_string(),
    };
    if !well_formed(id) {
        return Err(not_found());
    }
    match state.files.get(id).await? {
        Some(meta) if asker.sees_all || meta.owner == asker.owner => Ok(meta),
        _ => Err(not_found()),
    }
}

/// `POST /v1/files`.
pub async fn create(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let state = state.current();
    let headers = req.headers().clone();
    let result = async {
        let asker = asker(&state, req.extensions())?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = state.config.files.max_file_size;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // A body declared far larger than any allowed file is refused before it is read.
        if declared.is_some_and(|n| n > limit.saturating_add(1 << 20)) {
            return Err(ProxyError::FileTooLarge { limit });
        }
        let body = req.into_body().into_data_stream();
        let up = Upload {
            content_type,
            body,
            owner: asker.owner,
            max_file_size: limit,
        };
        let meta = upload(&state.files, up).await?;
        Ok(Json(meta.object(state.config.files.retention_days)).into_response())
    }
    .await;
    answer(&headers, result)
}

/// `GET /v1/files` query.
#[derive(Deserialize)]
pub struct ListQuery {
    purpose: Option<String>,
    limit: Option<String>,
    after: Option<String>,
    order: Option<String>,
}

/// `GET /v1/files`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let result = async {
        let asker = asker(&state, &extensions)?;
        let invalid =
            |param: &'static str, message: String| ProxyError::InvalidField { param, message };
        let limit = match &q.limit {
            None => 10_000,
            Some(l) => match l.parse::<usize>() {
                Ok(n @ 1..=10_000) => n,
                _ => {
                    return Err(invalid(
                        "limit",
                        format!("limit must be an integer from 1 to 10000, not '{l}'"),
                    ))
                }
            },
        };
        let mut all: Vec<FileMeta> = state
            .files
            .list()
            .await?
            .into_iter()
            .filter(|m| asker.sees_all || m.owner == asker.owner)
            .filter(|m| m.purpose != crate::files::HOSTED_IMAGE)
            .filter(|m| q.purpose.as_ref().is_none_or(|p| &m.purpose == p))
            .collect();
        match q.order.as_deref() {
            None | Some("desc") => all.reverse(),
            Some("asc") => {}
            Some(o) => {
                return Err(invalid(
                    "order",
                    format!("order must be 'asc' or 'desc', not '{o}'"),
                ))
            }
        }
        let start = match &q.after {
            None => 0,
            Some(a) => all
                .iter()
                .position(|m| &m.id == a)
                .map(|i| i + 1)
                .ok_or_else(|| invalid("after", format!("no file '{a}' to list after")))?,
        };
        let rest = &all[start..];
        let retention = state.config.files.retention_days;
        let data: Vec<Value> = rest
            .iter()
            .take(limit)
            .map(|m| m.object(retention))
            .collect();
        Ok(Json(super::list_page(data, rest.len() > limit)).into_response())
    }
    .await;
    answer(&headers, result)
}

/// `GET /v1/files/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let result = async {
        let asker = asker(&state, &extensions)?;
        let meta = visible(&state, &asker, &id).await?;
        Ok(Json(meta.object(state.config.files.retention_days)).into_response())
    }
    .await;
    answer(&headers, result)
}

/// `DELETE /v1/files/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let result = async {
        let asker = asker(&state, &extensions)?;
        let meta = visible(&state, &asker, &id).await?;
        state.files.delete(&meta.id).await?;
        Ok(Json(json!({"id": meta.id, "object": "file", "deleted": true})).into_response())
    }
    .await;
    answer(&headers, result)
}

/// `GET /v1/images/hosted/{id}`: an image the router hosts for `response_format: url`
/// (no key: the id is the secret, and it works for an hour).
pub async fn hosted_image(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let state = state.current();
    let result = async {
        let not_found = || ProxyError::NotFound {
            kind: "image",
            id: id.clone(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let meta = state
            .files
            .get(&id)
            .await?
            .filter(|m| m.purpose == crate::files::HOSTED_IMAGE)
            .filter(|m| crate::pipeline::hosted::still_hosted(m.created_at, now))
            .ok_or_else(not_found)?;
        stream_content(&state, &meta).await
    }
    .await;
    answer(&headers, result)
}

/// A file's content as a streamed response with its type and length.
async fn stream_content(state: &AppState, meta: &FileMeta) -> Result<Response, ProxyError> {
    let file = state.files.open(meta).await?;
    let stream = crate::files::frames(file);
    let body = Body::new(http_body_util::StreamBody::new(stream).map_err(axum::Error::new));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, meta.bytes.into());
    let disposition = format!(
        "attachment; filename=\"{}\"",
        meta.filename.replace(['"', '\\'], "_")
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `GET /v1/files/{id}/content`: the blob streamed in 64 KB reads (a delete meanwhile
/// does not cut it: the open file stays readable).
pub async fn content(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let result = async {
        let asker = asker(&state, &extensions)?;
        let meta = visible(&state, &asker, &id).await?;
        stream_content(&state, &meta).await
    }
    .await;
    answer(&headers, result)
}
