//! The admin API: every `admin.auth` method accepted and refused, client API keys kept
//! out, the configuration shown with its secrets redacted.

use base64::Engine as _;
use http::{Method, StatusCode};

use crate::common::*;

const MOCK: &str = "backends:\n  - {name: m, type: mock, models: [mock-a], api_key: sk-backend-secret, mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";

async fn admin(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::GET,
        format!("http://{addr}{path}"),
        bytes::Bytes::new(),
        headers,
    )
    .await
}

#[tokio::test]
async fn bearer_token_in_either_spelling() {
    for (method, key) in [("bearer", "token"), ("bearer_token", "bearer_token")] {
        let router = start_router(&format!(
            "admin:\n  auth: {{method: {method}, {key}: adm-secret-1}}\n{MOCK}"
        ))
        .await;
        let addr = router.tcp_addr().unwrap();
        let r = admin(addr, "/admin/backends", &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method}: {}", r.text());
        assert_eq!(r.json()["error"]["type"], "authentication_error");
        assert!(r.header("www-authenticate").starts_with("Bearer"));
        let r = admin(
            addr,
            "/admin/backends",
            &[("authorization", "Bearer wrong")],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = admin(
            addr,
            "/admin/backends",
            &[("authorization", "Bearer adm-secret-1")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{method}: {}", r.text());
        assert_eq!(r.json()["backends"][0]["name"], "m");
        // The client API is not behind the admin token.
        let r = chat(
            addr,
            r#"{"model":"mock-a","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn basic_credentials() {
    let router = start_router(&format!(
        "admin:\n  auth: {{method: basic, username: ops, password: pa55:word}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let good = format!("Basic {}", b64("ops:pa55:word"));
    let bad = format!("Basic {}", b64("ops:nope"));
    let r = admin(addr, "/admin/config", &[("authorization", &good)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for refused in [bad.as_str(), "Basic !!!", "Bearer pa55:word"] {
        let r = admin(addr, "/admin/config", &[("authorization", refused)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{refused}");
        assert!(r.header("www-authenticate").starts_with("Basic"));
    }
    let r = admin(addr, "/admin/config", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ip_whitelist() {
    let allowed = start_router(&format!(
        "admin:\n  auth: {{method: ip_whitelist, allowed_ips: [\"127.0.0.0/8\"]}}\n{MOCK}"
    ))
    .await;
    let r = admin(allowed.tcp_addr().unwrap(), "/admin/backends", &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let refused = start_router(&format!(
        "admin:\n  auth: {{method: ip_whitelist, allowed_ips: [\"10.0.0.0/8\", \"fd00::/8\"]}}\n{MOCK}"
    ))
    .await;
    let r = admin(refused.tcp_addr().unwrap(), "/admin/backends", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "permission_error");
}

#[tokio::test]
async fn api_key_with_the_admin_scope() {
    let router = start_router(&format!(
        "api_keys:\n  mode: blocking\n  api_keys:\n    - {{key: sk-ops-admin-1, id: ops, scopes: [admin]}}\n    - {{key: sk-user-2, id: user, scopes: [read, write]}}\nadmin:\n  auth: {{method: api_key}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = admin(addr, "/admin/backends", &[("x-api-key", "sk-ops-admin-1")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = admin(
        addr,
        "/admin/backends",
        &[("authorization", "Bearer sk-ops-admin-1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // An ordinary key is refused there, and no key at all is 401.
    let r = admin(addr, "/admin/backends", &[("x-api-key", "sk-user-2")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = admin(addr, "/admin/backends", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = admin(addr, "/admin/backends", &[("x-api-key", "sk-unknown")]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_an_admin_section_loopback_clients_and_method_none_everyone() {
    let router = start_router(MOCK).await;
    let r = admin(router.tcp_addr().unwrap(), "/admin/backends", &[]).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "loopback is allowed: {}",
        r.text()
    );
    let router = start_router(&format!("admin:\n  auth: {{method: none}}\n{MOCK}")).await;
    let r = admin(router.tcp_addr().unwrap(), "/admin/config", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn config_is_shown_with_secrets_redacted() {
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-team-key-77, id: team}}\nadmin:\n  auth: {{method: bearer, token: adm-tok-9}}\nrate_limiting:\n  enabled: false\n  redis: {{url: \"redis://:hunter2@127.0.0.1:1\"}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let auth = [("authorization", "Bearer adm-tok-9")];
    for path in ["/admin/config", "/admin/config/full"] {
        let r = admin(addr, path, &auth).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let text = r.text();
        for secret in [
            "sk-team-key-77",
            "adm-tok-9",
            "sk-backend-secret",
            "hunter2",
        ] {
            assert!(!text.contains(secret), "{path} leaks {secret}: {text}");
        }
        let v = r.json();
        assert_eq!(v["config"]["api_keys"]["api_keys"][0]["id"], "team");
        assert_eq!(v["config"]["backends"][0]["api_key"], "[redacted]");
        assert!(v["last_reload"].is_null(), "no reload yet: {v}");
        // What the router runs with: sections the file left out, with their defaults.
        assert!(
            v["effective"]["health_checks"]["interval"].is_string(),
            "{v}"
        );
        assert_eq!(v["effective"]["api_keys"]["api_keys"][0]["id"], "team");
    }
    let full = admin(addr, "/admin/config/full", &auth).await.json();
    assert_eq!(full["resolved"]["backends"][0]["type"], "mock");
    assert_eq!(full["resolved"]["models"][0], "mock-a");
    // Started from a config, not a file: a reload has nothing to read.
    let r = send(
        Method::POST,
        format!("http://{addr}/admin/config/reload"),
        bytes::Bytes::new(),
        &auth,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert_eq!(r.json()["ok"], false);
}

#[tokio::test]
async fn bad_admin_sections_are_reported_with_their_key_paths() {
    for (yaml, path) in [
        ("admin:\n  auth: {method: bearer}\n", "admin.auth.token"),
        (
            "admin:\n  auth: {method: basic, username: u}\n",
            "admin.auth.password",
        ),
        (
            "admin:\n  auth: {method: ip_whitelist, allowed_ips: [nope]}\n",
            "admin.auth.allowed_ips[0]",
        ),
        ("admin:\n  auth: {method: magic}\n", "admin.auth.method"),
        (
            "admin:\n  auth: {token: forgot-the-method}\n",
            "admin.auth.method: method",
        ),
        (
            "admin:\n  stats: {retention_window: 1s}\n",
            "admin.stats.retention_window",
        ),
        (
            "hot_reload: {enabled: true, poll_interval: 1ms}\n",
            "hot_reload.poll_interval",
        ),
    ] {
        let dir = temp_dir("admin-validate");
        let file = dir.join("config.yaml");
        std::fs::write(&file, format!("{yaml}{MOCK}")).unwrap();
        let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
        assert_eq!(out.code, 1, "{yaml}: {}", out.stdout);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(path), "{yaml} should name {path}: {all}");
    }
}

#[tokio::test]
async fn stats_per_model_backend_and_key_with_cost_and_persistence() {
    let dir = temp_dir("stats");
    let path = dir.join("stats.json");
    let yaml = format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-stats-1, id: team-a}}\nadmin:\n  auth: {{method: none}}\n  stats:\n    retention_window: 1h\n    persistence: {{path: \"{}\", snapshot_interval: 1h, max_age: 1d}}\nmodel_configs:\n  - {{id: mock-a, metadata: {{pricing: {{input_tokens: 1.0, output_tokens: 2.0}}}}}}\n{MOCK}",
        path.display()
    );
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();
    let body = r#"{"model":"mock-a","messages":[{"role":"user","content":"hello there"}]}"#;
    for _ in 0..3 {
        let r = send(
            Method::POST,
            format!("http://{addr}/v1/chat/completions"),
            body,
            &[("authorization", "Bearer sk-stats-1")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    let r = chat(
        addr,
        r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let s = admin(addr, "/admin/stats", &[]).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text());
    let s = s.json();
    assert_eq!(s["total_requests"], 4, "{s}");
    assert_eq!(s["total_errors"], 1);
    assert_eq!(s["window_seconds"], 3600);
    let model = &s["models"][0];
    assert_eq!(model["name"], "mock-a");
    assert_eq!(model["requests"], 3);
    let (input, output) = (
        model["tokens"]["input"].as_u64().unwrap(),
        model["tokens"]["output"].as_u64().unwrap(),
    );
    assert!(input > 0 && output > 0, "{model}");
    let cost = model["estimated_cost"].as_f64().unwrap();
    assert!((cost - (input as f64 + 2.0 * output as f64) / 1000.0).abs() < 1e-9);
    assert!(model["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(
        model["latency_ms"]["p99"].as_f64().unwrap()
            >= model["latency_ms"]["p50"].as_f64().unwrap()
    );
    assert_eq!(s["backends"][0]["name"], "m");
    assert_eq!(s["keys"][0]["name"], "team-a");
    assert_eq!(s["keys"][0]["requests"], 3);
    let bad = admin(addr, "/admin/stats?window=soon", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        admin(addr, "/admin/stats?window=5m", &[]).await.json()["window_seconds"],
        300
    );

    // Saved at shutdown, loaded by the next router.
    assert!(router.shutdown().await);
    assert!(path.is_file());
    let again = start_router(&yaml).await;
    let s = admin(again.tcp_addr().unwrap(), "/admin/stats", &[])
        .await
        .json();
    assert_eq!(s["total_requests"], 4, "{s}");
    assert_eq!(s["keys"][0]["name"], "team-a");
}

/// The original Continuum Router's spellings of these sections load unchanged.
#[test]
fn an_original_config_with_these_sections_validates() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/original/config.yaml"
    );
    let out = run(bin()
        .args(["config", "validate", "--config", file])
        .env("TEAM_A_KEY", "sk-team-a")
        .env("ADMIN_TOKEN", "adm"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}
