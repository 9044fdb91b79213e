//! The admin API under `/admin/`: its own authentication (`admin.auth`, never the client
//! API keys unless `method: api_key` asks for a key with the `admin` scope), backends,
//! the effective configuration with secrets redacted, and reloads.

use crate::config::access::rfc3339;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::{with_request_id, AppState};
use crate::auth::{constant_time_eq, presented_key, Need, Refusal};
use crate::config::operations::AdminAuth;
use crate::error::ProxyError;
use crate::state::ReloadReport;

/// Middleware in front of every `/admin/*` route: `admin.auth` decides.
pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let state = state.current();
    let peer = match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(c) => Peer::Ip(c.0.ip()),
        None if req.extensions().get::<super::UnixSocketPeer>().is_some() => Peer::UnixSocket,
        None => Peer::Unknown,
    };
    match allowed(&state, req.headers(), peer) {
        Ok(()) => next.run(req).await,
        Err(err) => {
            let mut resp = with_request_id(req.headers(), err);
            if resp.status() == StatusCode::UNAUTHORIZED {
                let challenge = match &state.config.admin.auth {
                    AdminAuth::Basic { .. } => "Basic realm=\"continuum admin\"",
                    _ => "Bearer realm=\"continuum admin\"",
                };
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            resp
        }
    }
}

/// Where an admin request came from.
#[derive(Clone, Copy)]
enum Peer {
    /// A TCP client.
    Ip(IpAddr),
    /// A Unix-socket client (the socket file's mode decides who may connect).
    UnixSocket,
    /// Not known (an embedding program served the app without connect info): refused by
    /// the address-based methods.
    Unknown,
}

/// Whether this caller may use the admin API.
fn allowed(state: &AppState, headers: &HeaderMap, peer: Peer) -> Result<(), ProxyError> {
    let forbidden = |message: &str| ProxyError::Forbidden {
        message: message.to_string(),
        code: "admin_forbidden",
    };
    match &state.config.admin.auth {
        AdminAuth::None => Ok(()),
        AdminAuth::LoopbackOnly => match peer {
            Peer::UnixSocket => Ok(()),
            Peer::Ip(ip) if ip.is_loopback() || ip.to_canonical().is_loopback() => Ok(()),
            _ => Err(forbidden(
                "without an admin.auth section the admin API answers loopback clients only",
            )),
        },
        AdminAuth::IpWhitelist(nets) => match peer {
            Peer::UnixSocket => Ok(()),
            Peer::Ip(ip) if nets.iter().any(|n| n.contains(ip.to_canonical())) => Ok(()),
            _ => Err(forbidden(
                "this client address is not in admin.auth.allowed_ips",
            )),
        },
        AdminAuth::Bearer(token) => {
            let presented = bearer(headers).ok_or(ProxyError::Unauthenticated(
                "the admin API needs Authorization: Bearer TOKEN",
            ))?;
            if constant_time_eq(presented, token.expose().as_bytes()) {
                Ok(())
            } else {
                Err(ProxyError::Unauthenticated("invalid admin token"))
            }
        }
        AdminAuth::Basic { username, password } => {
            let presented = basic(headers).ok_or(ProxyError::Unauthenticated(
                "the admin API needs Authorization: Basic (username:password)",
            ))?;
            let expected = format!("{username}:{}", password.expose());
            if constant_time_eq(&presented, expected.as_bytes()) {
                Ok(())
            } else {
                Err(ProxyError::Unauthenticated(
                    "invalid admin user name or password",
                ))
            }
        }
        AdminAuth::ApiKey => {
            if presented_key(headers).is_none() {
                return Err(ProxyError::Unauthenticated(
                    "the admin API needs an API key with the 'admin' scope (X-API-Key or Authorization: Bearer)",
                ));
            }
            let Some(keys) = &state.keys else {
                return Err(ProxyError::Unauthenticated(
                    "admin.auth.method is api_key but there is no api_keys section",
                ));
            };
            match keys.check(headers, Need::Admin, tokio::time::Instant::now().into_std()) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(ProxyError::Unauthenticated("invalid API key")),
                Err(Refusal::Unauthenticated(why)) => Err(ProxyError::Unauthenticated(why)),
                Err(Refusal::Forbidden(message)) => Err(ProxyError::Forbidden {
                    message,
                    code: "insufficient_scope",
                }),
                Err(Refusal::RateLimited(decision)) => Err(ProxyError::RateLimited {
                    subject: "this API key".into(),
                    decision,
                }),
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| v[7..].trim_ascii())
}

fn basic(headers: &HeaderMap) -> Option<Vec<u8>> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    if v.len() <= 6 || !v[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(v[6..].trim_ascii())
        .ok()
}

/// One backend as the admin API shows it.
fn backend_json(b: &crate::backend::Backend, now: tokio::time::Instant) -> Value {
    let (prompt, cached) = b.state.cache.totals();
    json!({
        "name": b.name(),
        "type": b.config.kind.as_str(),
        "url": b.config.url.as_deref().map(redact_url),
        "status": b.state.health.status().as_str(),
        "circuit": b.state.breaker.state(now).as_str(),
        "latency_ewma_ms": b.state.latency_ewma().map(|d| d.as_secs_f64() * 1000.0),
        "in_flight": b.state.in_flight(),
        "load": b.state.load(),
        "server_load": b.state.server_load.current().map(|r| json!({
            "running": r.running,
            "waiting": r.waiting,
            "kv_cache_usage": r.kv_usage,
        })),
        "prompt_tokens": prompt,
        "cached_prompt_tokens": cached,
        "cache_hit_ratio": (prompt > 0).then(|| cached as f64 / prompt as f64),
        "prefix_nodes": b.state.prefixes.nodes(),
        "weight": b.config.weight,
        "models": *b.models(),
        "discovers_models": b.discovers_models(),
    })
}

/// `GET /admin/backends`: each backend's health, circuit, latency, load and models.
pub async fn backends(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let state = state.current();
    let now = tokio::time::Instant::now();
    let list: Vec<_> = state
        .backends
        .iter()
        .map(|b| backend_json(b, now))
        .collect();
    with_request_id(&headers, Json(json!({"backends": list})))
}

/// `GET /admin/stats[?window=1h]`: requests, errors, latency percentiles, tokens and
/// estimated cost per model, backend and API key over the window (default: all of
/// `admin.stats.retention_window`).
pub async fn stats(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let state = state.current();
    let headers = req.headers();
    let Some(stats) = state.metrics.stats.as_ref() else {
        return with_request_id(
            headers,
            ProxyError::InvalidField {
                param: "admin.stats",
                message: "usage statistics are off (admin.stats.enabled: false)".into(),
            },
        );
    };
    let query = req.uri().query().unwrap_or("");
    let window = query.split('&').find_map(|kv| kv.strip_prefix("window="));
    let series = query
        .split('&')
        .any(|kv| kv == "series" || kv == "series=1" || kv == "series=true");
    let window = match window.map(crate::config::types::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            return with_request_id(
                headers,
                ProxyError::InvalidField {
                    param: "window",
                    message: format!("window: {e}"),
                },
            )
        }
    };
    let index = state.index.load();
    let price = |model: &str| {
        let listed = index.listed().iter().find(|m| m.id == model)?;
        let pricing = listed.metadata.as_ref()?.pricing.as_ref()?;
        Some((
            pricing.input_tokens.unwrap_or(0.0),
            pricing.output_tokens.unwrap_or(0.0),
        ))
    };
    let mut report = stats.report(window, price);
    // What each backend's server served from its prompt cache, on routes of the
    // cache-seeking strategies (counted since the router started, not per window).
    report["prompt_cache"] = state
        .backends
        .iter()
        .map(|b| {
            let (prompt, cached) = b.state.cache.totals();
            json!({
                "backend": b.name(),
                "prompt_tokens": prompt,
                "cached_prompt_tokens": cached,
                "cache_hit_ratio": (prompt > 0).then(|| cached as f64 / prompt as f64),
            })
        })
        .collect::<Vec<_>>()
        .into();
    if series {
        report["series"] = stats.series(window);
    }
    with_request_id(headers, Json(report))
}

/// `GET /admin/config`: the configuration file as loaded (after `${VAR}` substitution),
/// secrets redacted, and how the last reload went.
pub async fn config(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let state = state.current();
    with_request_id(&headers, Json(config_body(&state, false)))
}

/// `GET /admin/models`: every routable model (as `/v1/models` lists it, whatever the
/// API keys allow) and every alias, for the web UI's models view and playground.
pub async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let state = state.current();
    let index = state.index.load();
    let models: Vec<Value> = index.listed().iter().map(super::model_json).collect();
    let mut aliases = Map::new();
    for b in state.backends.iter() {
        for (alias, target) in &b.config.model_aliases {
            aliases.insert(alias.clone(), json!(target));
        }
    }
    for (alias, target) in &state.config.model_aliases {
        aliases.insert(alias.clone(), json!(target));
    }
    with_request_id(
        &headers,
        Json(json!({"models": models, "aliases": aliases})),
    )
}

/// `GET /admin/config/full`: as `/admin/config`, plus what was built from it: every
/// backend as resolved (type, URL with its default, models), the served model ids and
/// the sections a reload cannot change.
pub async fn config_full(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let state = state.current();
    with_request_id(&headers, Json(config_body(&state, true)))
}

fn config_body(state: &AppState, full: bool) -> Value {
    let mut body = json!({
        "config": redact(&state.config.source),
        "effective": redact(&crate::config::effective::to_tree(&state.config)),
        "file": state.live.file.as_ref().map(|f| f.display().to_string()),
        "last_reload": state.live.last().map(|r| report_json(&r)),
        "hot_reload": state.config.hot_reload.enabled,
    });
    if full {
        let now = tokio::time::Instant::now();
        let backends: Vec<_> = state
            .backends
            .iter()
            .map(|b| backend_json(b, now))
            .collect();
        let models: Vec<_> = state
            .index
            .load()
            .listed()
            .iter()
            .map(|m| m.id.clone())
            .collect();
        body["resolved"] = json!({
            "backends": backends,
            "models": models,
            "selection_strategy": format!("{:?}", state.config.selection_strategy),
            "restart_only": crate::state::RESTART_ONLY,
        });
    }
    body
}

/// `POST /admin/config/reload`: reload the config file now. 200 with the report when the
/// new configuration serves; 422 (and nothing changed) when it is invalid.
pub async fn reload(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let report = state.live.reload().await;
    let status = if report.ok {
        StatusCode::OK
    } else if state.live.file.is_none() {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    with_request_id(&headers, (status, Json(report_json(&report))))
}

fn report_json(r: &ReloadReport) -> Value {
    json!({
        "at": rfc3339(r.at),
        "ok": r.ok,
        "error": r.error,
        "restart_required": r.restart_required,
    })
}

/// Keys whose values are secrets wherever they appear.
const SECRET_KEYS: [&str; 13] = [
    "api_key",
    "org_id",
    "key",
    "key_hash",
    "token",
    "bearer_token",
    "password",
    "secret",
    "client_secret",
    "access_token",
    "refresh_token",
    "authorization",
    "x-api-key",
];

/// Header names whose values are credentials.
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["auth", "key", "token", "secret", "cookie", "password"]
        .iter()
        .any(|s| n.contains(s))
}

/// The tree with every secret replaced by `"[redacted]"` and passwords in URLs masked.
pub fn redact(v: &Value) -> Value {
    redact_in(v, false)
}

fn redact_in(v: &Value, in_headers: bool) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_KEYS.contains(&lower.as_str())
                    || (in_headers && secret_header(k))
                    || lower.ends_with("_key") && !lower.ends_with("_keys");
                let secret = secret || lower == "bypass_keys";
                let value = if secret && !v.is_null() && !v.is_object() && !v.is_array() {
                    Value::String("[redacted]".into())
                } else if secret && v.is_array() {
                    // A list of secrets (bypass_keys may hold the keys themselves).
                    Value::Array(
                        v.as_array()
                            .into_iter()
                            .flatten()
                            .map(|item| match item {
                                Value::Object(_) | Value::Array(_) => redact_in(item, false),
                                _ => Value::String("[redacted]".into()),
                            })
                            .collect(),
                    )
                } else {
                    redact_in(v, lower == "headers")
                };
                out.insert(k.clone(), value);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| redact_in(v, in_headers)).collect()),
        Value::String(s) if s.contains("://") => Value::String(redact_url(s)),
        other => other.clone(),
    }
}

pub use crate::config::types::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_by_key_headers_and_urls() {
        let tree = json!({
            "backends": [{"name": "openai", "api_key": "sk-live", "org_id": "org-secret-9", "headers": {"X-Auth-Token": "t", "X-Extra": "v"}}],
            "api_keys": {"api_keys": [{"key": "k1", "id": "team-a"}, {"key_hash": "sha256:ab"}]},
            "admin": {"auth": {"method": "bearer", "bearer_token": "adm-secret-x"}},
            "rate_limiting": {"redis": {"url": "redis://:hunter2@cache:6379/0"}},
            "custom_key": "s",
            "rate_limiting_extra": {"bypass_keys": ["sk-bypass-1"]},
        });
        let out = redact(&tree).to_string();
        for secret in [
            "sk-live",
            "\"t\"",
            "k1",
            "sha256:ab",
            "adm-secret-x",
            "hunter2",
            "\"s\"",
            "sk-bypass-1",
            "org-secret-9",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("team-a") && out.contains("X-Extra") && out.contains("\"v\""));
        assert!(out.contains("redis://:***@cache:6379/0"), "{out}");
    }
}
