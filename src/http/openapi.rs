//! `GET /openapi.json`: an OpenAPI 3.1 document of the router's own HTTP API, generated
//! from the one route table (`pipeline::op::ROUTES`) and the routes mounted beside it
//! (health, metrics, admin, hosted images), so a route added to the table is documented
//! by construction. Clients generate SDKs from it; `scripts/api-fuzz` fuzzes a running
//! router against it.

use serde_json::{json, Map, Value};

use super::openapi_schemas::{components, file_upload, request_body};
use crate::auth::Need;
use crate::pipeline::op::{ErrorShape, Handler, RouteSpec, Wire, ROUTES};

/// The path of the document itself.
pub const PATH: &str = "/openapi.json";

/// The whole document for a router whose metrics are served at `metrics_path` (none when
/// metrics are off). Built once per router (see `http::app`), not per request.
pub fn document(metrics_path: Option<&str>) -> Value {
    let mut paths = Map::new();
    for spec in ROUTES {
        add(
            &mut paths,
            &openapi_path(spec.path),
            spec.method.as_str(),
            api_operation(spec),
        );
    }
    for (path, method, op) in outside_routes(metrics_path) {
        add(&mut paths, path, method, op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Continuum",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An OpenAI- and Anthropic-compatible router in front of many model backends. Request bodies list the fields the router reads or checks and those the providers require; any other field a provider accepts is passed on as sent."
        },
        "paths": paths,
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key from `api_keys` (or `keys_file`)."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "The same API key, as Anthropic's SDKs send it."},
                "adminBasic": {"type": "http", "scheme": "basic", "description": "`admin.auth.method: basic`."}
            }
        }
    })
}

/// An axum path (`{id}`, `{*id}`) as an OpenAPI path template (`{id}`).
fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

fn add(paths: &mut Map<String, Value>, path: &str, method: &str, op: Value) {
    let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
    item[method.to_ascii_lowercase()] = op;
}

/// A unique operation id from the method and the path: `post_v1_chat_completions`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| !matches!(c, '{' | '}' | '*'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// The error responses of a route: 4XX and 5XX in its client's error shape.
fn errors(shape: ErrorShape) -> Value {
    let schema = match shape {
        ErrorShape::OpenAi => "#/components/schemas/OpenAiError",
        ErrorShape::Anthropic => "#/components/schemas/AnthropicError",
    };
    let body = json!({"content": {"application/json": {"schema": {"$ref": schema}}}});
    let mut four = body.clone();
    four["description"] = "The request was refused (its fields, key, scope or rate limit)".into();
    let mut five = body;
    five["description"] = "No backend could answer (unreachable, timed out, overloaded)".into();
    json!({"4XX": four, "5XX": five})
}

/// The path parameters of a templated path (every one a string; a model's id has an
/// example that names a model the router commonly serves).
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|p| p.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let mut p = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}});
            if path.starts_with("/v1/models/") {
                p["example"] = json!("gpt-4o-mini");
            }
            p
        })
        .collect()
}

fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

/// The operation object of a client-API route.
fn api_operation(spec: &'static RouteSpec) -> Value {
    let path = openapi_path(spec.path);
    let method = spec.method.as_str();
    let mut ok = json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}});
    let mut op = json!({
        "operationId": operation_id(method, &path),
        "summary": summary(spec),
        "tags": [tag(spec)],
        "security": [{"bearer": []}, {"apiKey": []}],
        "x-continuum-scope": scope_name(spec.need),
    });
    let mut parameters = path_parameters(&path);
    match spec.handler {
        Handler::Op(operation) => {
            let (media, schema) = request_body(operation, spec.client);
            op["requestBody"] = json!({"required": true, "content": {media: {"schema": schema}}});
            if spec.client == Wire::TeiSparse {
                // text-embeddings-inference answers with a bare array: per input, its
                // non-zero dimensions.
                ok["content"]["application/json"]["schema"] = json!({
                    "type": "array",
                    "items": {"type": "array", "items": {
                        "type": "object",
                        "required": ["index", "value"],
                        "properties": {"index": {"type": "integer", "minimum": 0}, "value": {"type": "number"}}
                    }}
                });
            }
            if operation.streams() {
                // Each event's `data`: a JSON object in the client's stream format (OpenAI's
                // chat stream ends with the bare `[DONE]`).
                ok["content"]["text/event-stream"] = json!({"schema": {}});
            }
        }
        Handler::UploadFile => {
            op["requestBody"] = json!({"required": true, "content": {"multipart/form-data": {"schema": file_upload()}}});
        }
        Handler::ListFiles => parameters.extend([
            query("purpose", json!({"type": "string"})),
            query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 10000}),
            ),
            query("after", json!({"type": "string"})),
            query("order", json!({"type": "string", "enum": ["asc", "desc"]})),
        ]),
        Handler::ListInputItems => parameters.extend([
            query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 100}),
            ),
            query("order", json!({"type": "string", "enum": ["asc", "desc"]})),
            query("after", json!({"type": "string"})),
            query("before", json!({"type": "string"})),
        ]),
        Handler::FileContent => {
            ok["content"] = json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}});
        }
        _ => {}
    }
    if !parameters.is_empty() {
        op["parameters"] = parameters.into();
    }
    let mut responses = errors(spec.error_shape());
    responses["200"] = ok;
    op["responses"] = responses;
    op
}

fn summary(spec: &RouteSpec) -> String {
    match spec.handler {
        Handler::Op(op) => format!("{op:?} ({:?} wire)", spec.client),
        other => format!("{other:?}"),
    }
}

fn tag(spec: &RouteSpec) -> &'static str {
    match spec.handler {
        Handler::Op(_) => "inference",
        Handler::ListModels | Handler::GetModel => "models",
        Handler::GetResponse | Handler::DeleteResponse | Handler::ListInputItems => "responses",
        _ => "files",
    }
}

/// The scope an API key needs, as `api_keys[].scopes` names it.
fn scope_name(need: Need) -> &'static str {
    match need {
        Need::Read => "read",
        Need::Chat => "write or chat",
        Need::Embeddings => "write or embeddings",
        Need::Images => "write or images",
        Need::Admin => "admin",
        Need::Files => "files (files.auth.required_scope)",
        Need::Scope(_) | Need::Any => "any",
    }
}

/// The routes mounted outside the route table: (path, method, operation).
fn outside_routes(metrics_path: Option<&str>) -> Vec<(&str, &'static str, Value)> {
    let json_ok = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let open = |id: &str, summary: &str, responses: Value| json!({"operationId": id, "summary": summary, "tags": ["operations"], "security": [], "responses": responses});
    let health = json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok"]}}});
    let ready = json!({"type": "object", "required": ["status", "healthy_backends", "backends"], "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "healthy_backends": {"type": "integer", "minimum": 0},
        "backends": {"type": "integer", "minimum": 0}}});
    let mut routes = vec![
        (
            "/health",
            "GET",
            open(
                "get_health",
                "Liveness",
                json!({"200": json_ok("Serving", health.clone())}),
            ),
        ),
        (
            "/healthz",
            "GET",
            open(
                "get_healthz",
                "Liveness (Kubernetes spelling)",
                json!({"200": json_ok("Serving", health)}),
            ),
        ),
        (
            "/health/ready",
            "GET",
            open(
                "get_health_ready",
                "Readiness: at least one healthy backend",
                json!({
            "200": json_ok("At least one backend takes traffic", ready.clone()),
            "503": json_ok("No backend takes traffic", ready)}),
            ),
        ),
        (
            PATH,
            "GET",
            open(
                "get_openapi",
                "This document",
                json!({"200": json_ok("The OpenAPI document", json!({"type": "object", "required": ["openapi", "paths"]}))}),
            ),
        ),
    ];
    if let Some(path) = metrics_path {
        routes.push((path, "GET", open("get_metrics", "Prometheus metrics", json!({"200": {"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}}))));
    }
    let mut hosted = open(
        "get_v1_images_hosted_id",
        "An image hosted for `response_format: url` (the id is the secret; one hour)",
        errors(ErrorShape::OpenAi),
    );
    hosted["responses"]["200"] = json!({"description": "The image", "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}});
    hosted["parameters"] = path_parameters("/v1/images/hosted/{id}").into();
    routes.push(("/v1/images/hosted/{id}", "GET", hosted));
    let admin = [
        (
            "/admin/backends",
            "GET",
            "Backends: health, circuit, latency, in-flight",
        ),
        (
            "/admin/stats",
            "GET",
            "Usage per model, backend and key (admin.stats)",
        ),
        (
            "/admin/config",
            "GET",
            "The effective configuration, secrets redacted",
        ),
        (
            "/admin/config/full",
            "GET",
            "The configuration with defaults, secrets redacted",
        ),
        (
            "/admin/config/reload",
            "POST",
            "Reload the configuration file",
        ),
        (
            "/admin/models",
            "GET",
            "Every routable model with its metadata, and every alias",
        ),
    ];
    for (path, method, summary) in admin {
        let mut op = json!({
            "operationId": operation_id(method, path),
            "summary": summary,
            "tags": ["admin"],
            "description": "Authenticated by `admin.auth` (without it: loopback clients only).",
            "security": [{"bearer": []}, {"adminBasic": []}, {"apiKey": []}, {}],
            "responses": errors(ErrorShape::OpenAi),
        });
        op["responses"]["200"] = json_ok("Success", json!({"type": "object"}));
        if path == "/admin/stats" {
            op["parameters"] = json!([
                query(
                    "window",
                    json!({"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$", "description": "A duration such as `1h`."})
                ),
                query(
                    "series",
                    json!({"type": "string", "enum": ["1", "true"], "description": "Add the per-bucket `series` (the web UI's charts)."})
                )
            ]);
        }
        routes.push((path, method, op));
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_table_is_documented() {
        let doc = document(Some("/metrics"));
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for spec in ROUTES {
            let path = openapi_path(spec.path);
            let op = &doc["paths"][&path][spec.method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} is missing", spec.method, spec.path);
            assert!(op["responses"]["4XX"].is_object(), "{path}");
            if spec.op().is_some() {
                assert!(op["requestBody"]["required"].as_bool().unwrap(), "{path}");
            }
            for p in path_parameters(&path) {
                let listed = op["parameters"].as_array().unwrap();
                assert!(listed.contains(&p), "{path} lacks {p}");
            }
        }
        for path in [
            "/health",
            "/health/ready",
            "/openapi.json",
            "/metrics",
            "/admin/config",
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
        assert!(document(None)["paths"].get("/metrics").is_none());
    }

    #[test]
    fn error_shapes_follow_the_client_wire() {
        let doc = document(None);
        let anthropic = &doc["paths"]["/v1/messages"]["post"]["responses"]["4XX"];
        assert_eq!(
            anthropic["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/AnthropicError"
        );
        let openai = &doc["paths"]["/v1/chat/completions"]["post"]["responses"]["5XX"];
        assert_eq!(
            openai["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/OpenAiError"
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document(Some("/metrics"));
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_string();
                assert!(!ids.contains(&id), "{id} twice");
                ids.push(id);
            }
        }
        assert_eq!(operation_id("GET", "/v1/models/{id}"), "get_v1_models_id");
    }
}
