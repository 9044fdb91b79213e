//! `GET /openapi.json`: the router's own API as an OpenAPI 3 document, served without an
//! API key, naming every client route and this config's metrics path.

use http::StatusCode;

use crate::common::*;

const CONFIG: &str = "api_keys:\n  mode: blocking\n  api_keys:\n    - {key: sk-openapi-key-1, id: k}\nmetrics:\n  path: /stats/prom\nbackends:\n  - name: m\n    type: mock\n    models: [mock-a]\n";

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let router = start_router(CONFIG).await;
    let addr = router.tcp_addr().unwrap();
    // The API itself wants the key; the document does not.
    let refused = get_path(addr, "/v1/models").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let reply = get_path(addr, "/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "application/json");
    assert!(!reply.header("x-request-id").is_empty());
    let doc = reply.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for spec in continuum::pipeline::op::ROUTES {
        let path = spec.path.replace("{*", "{");
        let method = spec.method.as_str().to_ascii_lowercase();
        assert!(
            doc["paths"][&path][&method].is_object(),
            "{method} {path} missing"
        );
    }
    // The metrics path this config mounts, not the default.
    assert!(doc["paths"]["/stats/prom"]["get"].is_object());
    assert!(doc["paths"].get("/metrics").is_none());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    router.shutdown().await;
}
