//! Stored Responses, read and deleted by their owner: `GET /v1/responses/{id}`,
//! `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items` (paginated). A
//! response another key stored is a 404, as one that does not exist. Responses that a
//! backend issued itself (passthrough to OpenAI) are read from and deleted at that backend.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{Extensions, HeaderMap, Method, Uri};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, AppState};
use crate::auth::owner_of;
use crate::error::ProxyError;
use crate::store::ResponseRecord;

/// The caller's stored response `id`, or 404.
async fn owned(state: &AppState, id: &str, owner: &str) -> Result<ResponseRecord, ProxyError> {
    let not_found = || ProxyError::NotFound {
        kind: "response",
        id: id.to_string(),
    };
    let record = state
        .store
        .get_response(id.to_string())
        .await
        .map_err(|e| ProxyError::Store(e.to_string()))?
        .ok_or_else(not_found)?;
    if record.owner != owner {
        return Err(not_found());
    }
    Ok(record)
}

/// Sends `method path?query` to the backend that issued a response and passes its answer
/// back.
async fn at_backend(
    state: &AppState,
    backend: &str,
    method: Method,
    path_and_query: &str,
    id: &http::HeaderValue,
) -> Result<Response, ProxyError> {
    let b = state
        .backends
        .iter()
        .find(|b| b.name() == backend)
        .ok_or_else(|| {
            ProxyError::Store(format!(
                "the backend '{backend}' that holds this response is no longer configured"
            ))
        })?;
    let endpoint = b
        .endpoint()
        .ok_or_else(|| ProxyError::Store(format!("backend '{backend}' has no URL")))?;
    let uri = endpoint.uri(path_and_query).map_err(ProxyError::Store)?;
    let mut req = endpoint.request(method, uri, bytes::Bytes::new(), id);
    req.headers_mut().remove(http::header::CONTENT_TYPE);
    let resp = b
        .send(
            &state.client,
            crate::pipeline::op::Wire::OpenAiResponses,
            req.map(http_body_util::Either::Left),
        )
        .await?;
    Ok(resp.map(Body::new))
}

/// `GET /v1/responses/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let owner = owner_of(&extensions);
    let result = async {
        let record = owned(&state, &id, &owner).await?;
        match &record.backend {
            Some(b) => {
                let rid = super::request_id(&headers);
                at_backend(&state, b, Method::GET, &format!("/v1/responses/{id}"), &rid).await
            }
            None => Ok(Json(record.response).into_response()),
        }
    }
    .await;
    answer(&headers, result)
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let owner = owner_of(&extensions);
    let result = async {
        let record = owned(&state, &id, &owner).await?;
        if let Some(b) = &record.backend {
            let rid = super::request_id(&headers);
            let resp = at_backend(
                &state,
                b,
                Method::DELETE,
                &format!("/v1/responses/{id}"),
                &rid,
            )
            .await?;
            if !resp.status().is_success() {
                return Ok(resp);
            }
        }
        state
            .store
            .delete_response(id.clone())
            .await
            .map_err(|e| ProxyError::Store(e.to_string()))?;
        Ok(Json(json!({"id": id, "object": "response", "deleted": true})).into_response())
    }
    .await;
    answer(&headers, result)
}

/// Pagination of `input_items`, as OpenAI's list endpoints take it.
#[derive(Deserialize)]
pub struct Page {
    limit: Option<String>,
    order: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// `GET /v1/responses/{id}/input_items`.
pub async fn input_items(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let state = state.current();
    let owner = owner_of(&extensions);
    let result = async {
        let record = owned(&state, &id, &owner).await?;
        if let Some(b) = &record.backend {
            let rid = super::request_id(&headers);
            let query = uri.query().map_or_else(String::new, |q| format!("?{q}"));
            let path = format!("/v1/responses/{id}/input_items{query}");
            return at_backend(&state, b, Method::GET, &path, &rid).await;
        }
        Ok(Json(paginate(record.input_items, &page)?).into_response())
    }
    .await;
    answer(&headers, result)
}

/// One page of items in OpenAI's list shape (`data`, `first_id`, `last_id`, `has_more`).
fn paginate(items: Vec<Value>, page: &Page) -> Result<Value, ProxyError> {
    let invalid =
        |param: &'static str, message: String| ProxyError::InvalidField { param, message };
    let limit = match &page.limit {
        None => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=100) => n,
            _ => {
                return Err(invalid(
                    "limit",
                    format!("limit must be an integer from 1 to 100, not '{l}'"),
                ))
            }
        },
    };
    let mut items = items;
    match page.order.as_deref() {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(other) => {
            return Err(invalid(
                "order",
                format!("order must be 'asc' or 'desc', not '{other}'"),
            ))
        }
    }
    let position = |id: &str| items.iter().position(|i| i["id"] == id);
    let start = match &page.after {
        Some(a) => position(a)
            .map(|i| i + 1)
            .ok_or_else(|| invalid("after", format!("no input item '{a}' in this response")))?,
        None => 0,
    };
    let end = match &page.before {
        Some(b) => position(b)
            .ok_or_else(|| invalid("before", format!("no input item '{b}' in this response")))?,
        None => items.len(),
    };
    let window = items.get(start..end.max(start)).unwrap_or(&[]);
    let data: Vec<Value> = window.iter().take(limit).cloned().collect();
    Ok(super::list_page(data, window.len() > limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_newest_first_by_default() {
        let items: Vec<Value> = (1..=5).map(|i| json!({"id": format!("msg_{i}")})).collect();
        let page = |limit: Option<&str>, order: Option<&str>, after: Option<&str>| Page {
            limit: limit.map(str::to_string),
            order: order.map(str::to_string),
            after: after.map(str::to_string),
            before: None,
        };
        let v = paginate(items.clone(), &page(Some("2"), None, None)).unwrap();
        assert_eq!(v["first_id"], "msg_5");
        assert_eq!(v["last_id"], "msg_4");
        assert_eq!(v["has_more"], true);
        let v = paginate(items.clone(), &page(Some("2"), None, Some("msg_4"))).unwrap();
        assert_eq!(v["data"], json!([{"id": "msg_3"}, {"id": "msg_2"}]));
        let v = paginate(items.clone(), &page(None, Some("asc"), Some("msg_4"))).unwrap();
        assert_eq!(v["data"], json!([{"id": "msg_5"}]));
        assert_eq!(v["has_more"], false);
        assert!(paginate(items.clone(), &page(Some("0"), None, None)).is_err());
        assert!(paginate(items.clone(), &page(None, Some("up"), None)).is_err());
        assert!(paginate(items, &page(None, None, Some("msg_9"))).is_err());
    }
}
