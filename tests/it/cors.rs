//! CORS: preflights allowed and refused, exact origins, `*.domain` wildcards, custom
//! schemes, credentials rules, exposed headers; preflights need no API key.

use http::{Method, StatusCode};

use crate::common::*;

const CONFIG: &str = "cors:\n  allowed_origins: [\"http://localhost:3000\", \"tauri://localhost\", \"https://*.example.com\"]\n  allowed_methods: [GET, POST, OPTIONS]\n  allowed_headers: [\"*\"]\n  expose_headers: [X-Request-ID, x-continuum-backend]\n  max_age: \"1h\"\napi_keys:\n  mode: blocking\n  api_keys:\n    - {key: sk-browser-key-1, id: web}\nbackends:\n  - {name: m, type: mock, models: [mock-a], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";

async fn preflight(addr: std::net::SocketAddr, origin: &str) -> Reply {
    send(
        Method::OPTIONS,
        format!("http://{addr}/v1/chat/completions"),
        "",
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .await
}

#[tokio::test]
async fn preflights_are_allowed_or_refused_by_origin() {
    let router = start_router(CONFIG).await;
    let addr = router.tcp_addr().unwrap();
    for origin in [
        "http://localhost:3000",
        "tauri://localhost",
        "https://app.example.com",
        "https://a.b.example.com",
    ] {
        let r = preflight(addr, origin).await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "{origin}: no API key needed for a preflight"
        );
        assert_eq!(r.header("access-control-allow-origin"), origin);
        assert_eq!(
            r.header("access-control-allow-methods"),
            "GET, POST, OPTIONS"
        );
        assert_eq!(
            r.header("access-control-allow-headers"),
            "authorization, content-type"
        );
        assert_eq!(r.header("access-control-max-age"), "3600");
        assert_eq!(r.header("vary"), "Origin");
        assert_eq!(r.header("access-control-allow-credentials"), "");
    }
    for origin in [
        "https://example.com",
        "https://evil.com",
        "http://app.example.com",
        "http://localhost:3001",
        "null",
    ] {
        let r = preflight(addr, origin).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), "", "{origin}");
    }
}

#[tokio::test]
async fn actual_requests_carry_cors_headers_only_for_allowed_origins() {
    let router = start_router(CONFIG).await;
    let addr = router.tcp_addr().unwrap();
    let body = r#"{"model":"mock-a","messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        body,
        &[
            ("origin", "https://app.example.com"),
            ("authorization", "Bearer sk-browser-key-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com"
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        "X-Request-ID, x-continuum-backend"
    );
    // A refusal (no key) still tells the browser it may read the error.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        body,
        &[("origin", "tauri://localhost")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("access-control-allow-origin"), "tauri://localhost");
    // A disallowed origin gets the answer (the browser hides it) without CORS headers.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        body,
        &[
            ("origin", "https://evil.com"),
            ("authorization", "Bearer sk-browser-key-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), "");
}

#[tokio::test]
async fn credentials_follow_the_fetch_rules() {
    let router = start_router("cors:\n  allowed_origins: [\"https://app.example.com\"]\n  allow_credentials: true\n  allowed_headers: [\"*\"]\nbackends:\n  - {name: m, type: mock}\n").await;
    let r = preflight(router.tcp_addr().unwrap(), "https://app.example.com").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("access-control-allow-origin"),
        "https://app.example.com",
        "never * with credentials"
    );
    assert_eq!(r.header("access-control-allow-credentials"), "true");
    assert_eq!(
        r.header("access-control-allow-headers"),
        "authorization, content-type",
        "* is echoed, not sent"
    );

    let router =
        start_router("cors:\n  allowed_origins: [\"*\"]\nbackends:\n  - {name: m, type: mock}\n")
            .await;
    let r = preflight(router.tcp_addr().unwrap(), "https://anything.test").await;
    assert_eq!(r.header("access-control-allow-origin"), "*");
}

#[test]
fn cors_config_problems_are_named() {
    let dir = temp_dir("cors-config");
    let file = dir.join("c.yaml");
    std::fs::write(&file, "cors:\n  allowed_origins: [\"*\", \"example.com\", \"https://*.*.x.com\"]\n  allow_credentials: true\n  max_age: 3600\nbackends:\n  - {name: m, type: mock}\n").unwrap();
    let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
    assert_eq!(out.code, 1);
    for expected in [
        "cors.allowed_origins: '*' with allow_credentials",
        "cors.allowed_origins[1]: 'example.com' is not an origin",
        "cors.allowed_origins[2]: 'https://*.*.x.com' is not an origin",
        "cors.max_age: durations need a unit",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing '{expected}' in {}",
            out.stderr
        );
    }
}
