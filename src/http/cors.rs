//! CORS for browser clients (Fetch standard): an allowed origin gets
//! `Access-Control-Allow-Origin` (its own value, or `*` when every origin is allowed
//! without credentials) and `Vary: Origin`; preflights (`OPTIONS` with
//! `Access-Control-Request-Method`) are answered here, before authentication. A disallowed
//! origin gets no `Access-Control-Allow-Origin`, and its preflight a 403.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::AppState;
use crate::config::access::CorsConfig;

/// Whether `origin` is one of the allowed origins: exact (ASCII case-insensitive), or a
/// `scheme://*.domain` pattern matching a subdomain at any depth (not the domain itself).
pub fn origin_allowed(config: &CorsConfig, origin: &str) -> bool {
    config.allowed_origins.iter().any(|allowed| {
        if allowed == "*" {
            return origin != "null";
        }
        if allowed.eq_ignore_ascii_case(origin) {
            return true;
        }
        let (Some((scheme, pattern)), Some((o_scheme, host))) =
            (allowed.split_once("://"), origin.split_once("://"))
        else {
            return false;
        };
        let Some(domain) = pattern.strip_prefix("*.") else {
            return false;
        };
        scheme.eq_ignore_ascii_case(o_scheme)
            && host.len() > domain.len() + 1
            && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
    })
}

fn joined(list: &[String]) -> Option<HeaderValue> {
    HeaderValue::from_str(&list.join(", ")).ok()
}

/// The headers every answer to an allowed origin carries.
fn allow(config: &CorsConfig, origin: &HeaderValue, headers: &mut HeaderMap) {
    let any = config.allowed_origins.iter().any(|o| o == "*") && !config.allow_credentials;
    headers.insert(
        ACCESS_CONTROL_ALLOW_ORIGIN,
        if any {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        },
    );
    if !any {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    if config.allow_credentials {
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// Middleware applying the `cors` section.
pub async fn cors(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let snapshot = state.live.current.load_full();
    let config = &snapshot.config.cors;
    // The admin API is never offered to web pages.
    if !config.enabled || req.uri().path().starts_with("/admin/") {
        return next.run(req).await;
    }
    let Some(origin) = req.headers().get(ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| origin_allowed(config, o));
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut resp = Response::new(Body::empty());
        if !allowed {
            *resp.status_mut() = StatusCode::FORBIDDEN;
            resp.headers_mut()
                .append(VARY, HeaderValue::from_static("Origin"));
            return resp;
        }
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        allow(config, &origin, h);
        if let Some(v) = joined(&config.allowed_methods) {
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        // `*` is a wildcard only without credentials (Fetch); echoing what was asked
        // works either way.
        let asked = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let headers = if config.allowed_headers.iter().any(|x| x == "*") {
            asked
        } else {
            joined(&config.allowed_headers)
        };
        if let Some(v) = headers {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(age) = config.max_age {
            h.insert(ACCESS_CONTROL_MAX_AGE, age.as_secs().into());
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    if allowed {
        let h = resp.headers_mut();
        allow(config, &origin, h);
        if !config.expose_headers.is_empty() {
            if let Some(v) = joined(&config.expose_headers) {
                h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let c = CorsConfig {
            enabled: true,
            allowed_origins: [
                "http://localhost:3000",
                "tauri://localhost",
                "https://*.example.com",
            ]
            .map(String::from)
            .to_vec(),
            ..CorsConfig::default()
        };
        assert!(origin_allowed(&c, "http://localhost:3000"));
        assert!(origin_allowed(&c, "tauri://localhost"));
        assert!(origin_allowed(&c, "https://app.example.com"));
        assert!(origin_allowed(&c, "https://a.b.example.com"));
        assert!(!origin_allowed(&c, "https://example.com"));
        assert!(!origin_allowed(&c, "https://badexample.com"));
        assert!(!origin_allowed(&c, "http://app.example.com"));
        assert!(!origin_allowed(&c, "http://localhost:3001"));
        assert!(!origin_allowed(&c, "null"));
    }
}
