//! The `backends` section: each backend's type, name, URL, credentials, models, headers,
//! mock settings and per-backend overrides.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::metadata;
use super::model::*;
use super::reader::{child, did_you_mean, Keys, Reader};
use super::resilience;
use super::types::Secret;

const BACKEND: Keys = Keys {
    known: &[
        "name",
        "type",
        "url",
        "api_key",
        "org_id",
        "weight",
        "models",
        "model_aliases",
        "headers",
        "mock",
        "retry_override",
        "model_configs",
        "max_concurrent",
        "responses_api",
        "responses_only_models",
        "auth",
    ],
    unsupported: &[],
};

const MOCK: Keys = Keys {
    known: &["first_token_latency", "tokens_per_second", "fail_rate"],
    unsupported: &[],
};

pub(super) fn read_backends(
    v: &Value,
    global_retry: &RetryConfig,
    r: &mut Reader,
) -> Option<Vec<BackendConfig>> {
    let Value::Array(items) = v else {
        r.error("backends", "expected a list of backends");
        return None;
    };
    if items.is_empty() {
        r.error("backends", "at least one backend is required");
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("backends[{i}]");
        if let Some(name) = item.get("name").and_then(Value::as_str) {
            if !names.insert(name.to_string()) {
                r.error(
                    child(&path, "name"),
                    format!(
                        "'{name}' is already the name of another backend; names must be unique"
                    ),
                );
            }
        }
        if let Some(b) = read_backend(item, &path, global_retry, r) {
            out.push(b);
        }
    }
    Some(out)
}

fn read_backend(
    v: &Value,
    p: &str,
    global_retry: &RetryConfig,
    r: &mut Reader,
) -> Option<BackendConfig> {
    let m = r.section(v, p, &BACKEND)?;
    let errors_before = r.errors.len();

    let kind = read_backend_type(m, p, r);
    let name = read_backend_name(m, p, r);
    let mut b = BackendConfig::new(name, kind);
    read_backend_url(m, p, &mut b, r);
    read_backend_credentials(m, p, &mut b, r);
    if let Some(w) = r.integer(m, p, "weight") {
        if w == 0 || w > 1_000_000 {
            r.error(
                child(p, "weight"),
                format!("{w} is out of range (1 to 1000000)"),
            );
        }
        b.weight = w.clamp(1, 1_000_000) as u32;
    }

    b.max_concurrent = match r.integer(m, p, "max_concurrent") {
        Some(0) => {
            r.error(child(p, "max_concurrent"), "must be at least 1");
            None
        }
        n => n.map(|n| n as usize),
    };
    if let Some(on) = r.boolean(m, p, "responses_api") {
        b.responses_api = on;
    }
    b.responses_only_models = r
        .string_list(m, p, "responses_only_models")
        .unwrap_or_default();
    if !b.responses_only_models.is_empty() && !b.responses_api {
        r.error(
            child(p, "responses_only_models"),
            "needs responses_api: true (the backend must take /v1/responses)",
        );
    }
    read_backend_models(m, p, &mut b, r);
    read_backend_headers(m, p, &mut b, r);
    read_backend_mock(m, p, &mut b, r);

    if let Some(rv) = m.get("retry_override").filter(|v| !v.is_null()) {
        b.retry_override = resilience::read_retry(rv, &child(p, "retry_override"), global_retry, r);
    }
    if let Some(mc) = m.get("model_configs").filter(|v| !v.is_null()) {
        b.model_configs = metadata::read_model_configs(mc, &child(p, "model_configs"), false, r);
    }

    (r.errors.len() == errors_before).then_some(b)
}

/// A backend's `type`: `generic` when absent (or unknown, after an error).
fn read_backend_type(m: &Map<String, Value>, p: &str, r: &mut Reader) -> BackendType {
    match r.string(m, p, "type") {
        None => BackendType::Generic,
        Some(t) => match BackendType::ALL.iter().find(|(s, _)| *s == t) {
            Some((_, kind)) => {
                if !kind.is_served() {
                    r.error(
                        child(p, "type"),
                        format!(
                            "'{t}' backends are not supported yet by this version of continuum"
                        ),
                    );
                }
                *kind
            }
            None => {
                let hint = did_you_mean(&t, BackendType::ALL.iter().map(|(s, _)| *s))
                    .map(|s| format!("did you mean '{s}'? "))
                    .unwrap_or_default();
                let all: Vec<_> = BackendType::ALL.iter().map(|(s, _)| *s).collect();
                r.error(
                    child(p, "type"),
                    format!(
                        "unknown backend type '{t}'; {hint}(one of: {})",
                        all.join(", ")
                    ),
                );
                BackendType::Generic
            }
        },
    }
}

/// A backend's `name`: required, not empty, without `/`.
fn read_backend_name(m: &Map<String, Value>, p: &str, r: &mut Reader) -> String {
    match r.string(m, p, "name") {
        Some(n) if n.trim().is_empty() => {
            r.error(child(p, "name"), "must not be empty");
            String::new()
        }
        Some(n) if n.contains('/') => {
            r.error(
                child(p, "name"),
                format!("'{n}' contains '/', which clients use to pin a backend (NAME/model)"),
            );
            n
        }
        Some(n) => n,
        None => {
            r.missing(child(p, "name"), "a backend name");
            String::new()
        }
    }
}

/// A backend's `url`: required unless its type has a default; a mock backend takes none.
fn read_backend_url(m: &Map<String, Value>, p: &str, b: &mut BackendConfig, r: &mut Reader) {
    let kind = b.kind;
    match (r.string(m, p, "url"), kind) {
        (Some(_), BackendType::Mock) => r.error(
            child(p, "url"),
            "a mock backend has no url (it answers in-process)",
        ),
        (Some(url), _) => match normalize_url(&url) {
            Ok(u) if kind == BackendType::Ollama => {
                b.url = Some(ollama_root(u, &child(p, "url"), r))
            }
            Ok(u) => b.url = Some(u),
            Err(e) => r.error(child(p, "url"), e),
        },
        (None, BackendType::Mock) => {}
        (None, _) if b.url.is_none() => r.missing(
            child(p, "url"),
            &format!("a url (type '{}' has no default)", kind.as_str()),
        ),
        (None, _) => {}
    }
}

/// A backend's `api_key`, `auth` (OAuth) and `org_id`: one credential at most, and one
/// required by the hosted providers' types.
fn read_backend_credentials(
    m: &Map<String, Value>,
    p: &str,
    b: &mut BackendConfig,
    r: &mut Reader,
) {
    let kind = b.kind;
    b.api_key = r
        .string(m, p, "api_key")
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    b.oauth = m
        .get("auth")
        .filter(|v| !v.is_null())
        .and_then(|v| super::operations::read_backend_auth(v, &child(p, "auth"), r));
    if b.oauth.is_some() && b.api_key.is_some() {
        r.error(
            child(p, "auth"),
            "give either api_key or auth (oauth), not both",
        );
    }
    if kind == BackendType::Mock && b.oauth.is_some() {
        r.error(child(p, "auth"), "a mock backend takes no credentials");
    }
    if matches!(
        kind,
        BackendType::Openai | BackendType::Anthropic | BackendType::Gemini
    ) && b.api_key.is_none()
        && b.oauth.is_none()
    {
        r.missing(
            child(p, "api_key"),
            &format!("an api_key (type '{}')", kind.as_str()),
        );
    }
    b.org_id = r.string(m, p, "org_id").filter(|k| !k.is_empty());
}

/// A backend's `models` (none empty, none twice; a mock backend has `mock-model` by
/// default) and `model_aliases` (each naming one of those models).
fn read_backend_models(m: &Map<String, Value>, p: &str, b: &mut BackendConfig, r: &mut Reader) {
    let kind = b.kind;
    b.models = r.string_list(m, p, "models");
    if let Some(models) = &b.models {
        let mut seen = HashSet::new();
        for (i, model) in models.iter().enumerate() {
            if model.trim().is_empty() {
                r.error(format!("{p}.models[{i}]"), "a model name must not be empty");
            } else if !seen.insert(model.as_str()) {
                r.error(
                    format!("{p}.models[{i}]"),
                    format!("'{model}' is listed twice"),
                );
            }
        }
    }
    if kind == BackendType::Mock && b.models.as_ref().is_none_or(Vec::is_empty) {
        b.models = Some(vec!["mock-model".to_string()]);
    }

    b.model_aliases = r.string_map(m, p, "model_aliases").unwrap_or_default();
    for (alias, target) in &b.model_aliases {
        if let Some(models) = &b.models {
            if !models.contains(target) {
                r.error(
                    format!("{p}.model_aliases.{alias}"),
                    format!(
                        "'{target}' is not one of this backend's models ({})",
                        models.join(", ")
                    ),
                );
            }
        }
    }
}

/// A backend's extra `headers`: valid HTTP names and values.
fn read_backend_headers(m: &Map<String, Value>, p: &str, b: &mut BackendConfig, r: &mut Reader) {
    b.headers = r.string_map(m, p, "headers").unwrap_or_default();
    for (name, value) in &b.headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            r.error(
                format!("{p}.headers.{name}"),
                "is not a valid HTTP header name",
            );
        } else if http::HeaderValue::from_str(value).is_err() {
            r.error(
                format!("{p}.headers.{name}"),
                "has a value that is not a valid HTTP header value",
            );
        }
    }
}

/// A backend's `mock` settings, taken only by a `type: mock` backend.
fn read_backend_mock(m: &Map<String, Value>, p: &str, b: &mut BackendConfig, r: &mut Reader) {
    let kind = b.kind;
    if let Some(mv) = m.get("mock").filter(|v| !v.is_null()) {
        let mp = child(p, "mock");
        if kind != BackendType::Mock {
            r.error(
                mp.clone(),
                "only a backend with type: mock takes mock settings",
            );
        }
        if let Some(mm) = r.section(mv, &mp, &MOCK) {
            if let Some(d) = r.duration(mm, &mp, "first_token_latency") {
                b.mock.first_token_latency = d;
            }
            if let Some(t) = r.number(mm, &mp, "tokens_per_second") {
                if t < 0.0 {
                    r.error(
                        child(&mp, "tokens_per_second"),
                        "must not be negative (0 means no delay)",
                    );
                }
                b.mock.tokens_per_second = t;
            }
            if let Some(f) = r.number(mm, &mp, "fail_rate") {
                if !(0.0..=1.0).contains(&f) {
                    r.error(
                        child(&mp, "fail_rate"),
                        format!("{f} is not between 0.0 and 1.0"),
                    );
                }
                b.mock.fail_rate = f;
            }
        }
    }
}

/// An Ollama url ending in `/api` (or `/api/chat`, `/api/tags`…) names Ollama's API, not
/// its server root: the router adds `/api/...` itself, so the tail is dropped, with a
/// warning.
fn ollama_root(url: String, path: &str, r: &mut Reader) -> String {
    let Some(at) = url.find("://").map(|s| s + 3) else {
        return url;
    };
    let api = url[at..]
        .match_indices("/api")
        .map(|(i, _)| at + i)
        .find(|&i| url[i + 4..].is_empty() || url[i + 4..].starts_with('/'));
    let Some(api) = api else {
        return url;
    };
    let root = url[..api].to_string();
    r.note(
        path,
        format!(
            "'{url}' names Ollama's API, but an ollama backend's url is the server root (the router adds /api/chat and /api/tags); using '{root}'"
        ),
    );
    root
}

/// Checks a backend URL and reduces it to the server root: no trailing `/`, no `/v1`.
pub fn normalize_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("'{url}' is not a valid URL"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("'{url}' must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("'{url}' has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("'{url}' must not have a query string"));
    }
    let mut root = url.trim().trim_end_matches('/').to_string();
    if root.ends_with("/v1") {
        root.truncate(root.len() - 3);
    }
    Ok(root)
}
