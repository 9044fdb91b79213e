//! The admin web UI (`webui:`, `admin.webui`): three files embedded in the binary, served
//! under `webui.path_prefix`. The page carries no data; it reads everything from the admin
//! API with the credentials the user gives it, so its files need no authentication.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{header, HeaderValue, StatusCode};

use super::AppState;

const INDEX: &str = include_str!("webui/index.html");
const APP_JS: &str = include_str!("webui/app.js");
const APP_CSS: &str = include_str!("webui/app.css");

/// Nothing but the router itself: no inline script or style, no other origin, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The UI's routes under `prefix` (`/webui`: `/webui` redirects to `/webui/`).
pub fn routes(prefix: &str) -> axum::Router<Arc<AppState>> {
    let slash = format!("{prefix}/");
    axum::Router::new()
        .route(prefix, get(move || async move { redirect(slash) }))
        .route(&format!("{prefix}/"), get(index))
        .route(&format!("{prefix}/index.html"), get(index))
        .route(&format!("{prefix}/app.js"), get(script))
        .route(&format!("{prefix}/app.css"), get(style))
}

fn redirect(to: String) -> Response {
    let mut resp = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(&to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Where the page says which credential the admin API wants, so the page asks for it
/// (or not) without first making a call bound to fail.
const AUTH_SLOT: &str = "__CONTINUUM_ADMIN_AUTH__";

async fn index(state: State<Arc<AppState>>, req: Request) -> Response {
    use crate::config::operations::AdminAuth;
    let method = match &state.current().config.admin.auth {
        AdminAuth::LoopbackOnly => "loopback",
        AdminAuth::None => "none",
        AdminAuth::Bearer(_) => "bearer",
        AdminAuth::Basic { .. } => "basic",
        AdminAuth::IpWhitelist(_) => "ip_whitelist",
        AdminAuth::ApiKey => "api_key",
    };
    let page = INDEX.replacen(AUTH_SLOT, method, 1);
    file(&state, req, page.into(), "text/html; charset=utf-8").await
}

async fn script(state: State<Arc<AppState>>, req: Request) -> Response {
    file(&state, req, APP_JS.into(), "text/javascript; charset=utf-8").await
}

async fn style(state: State<Arc<AppState>>, req: Request) -> Response {
    file(&state, req, APP_CSS.into(), "text/css; charset=utf-8").await
}

/// One of the files, or the router's 404 when a reload turned the UI off.
async fn file(
    State(state): &State<Arc<AppState>>,
    req: Request,
    body: std::borrow::Cow<'static, str>,
    content_type: &'static str,
) -> Response {
    if !state.current().config.webui.enabled {
        return super::not_found(req).await;
    }
    let mut resp = match body {
        std::borrow::Cow::Borrowed(b) => b.into_response(),
        std::borrow::Cow::Owned(b) => b.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
