//! API keys: modes, both headers, hashes, disabled and expired keys, scopes, model
//! allow-lists (also in `/v1/models`), per-key rate limits with their headers, refusals
//! in each client's error shape, and `api_keys_file`.

use http::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::*;

const MOCK: &str = "backends:\n  - {name: m, type: mock, models: [mock-a, mock-b, other], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";

fn hex_sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn chat_as(addr: std::net::SocketAddr, model: &str, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#),
        headers,
    )
    .await
}

async fn messages_as(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"mock-a","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        headers,
    )
    .await
}

#[tokio::test]
async fn blocking_mode_wants_a_valid_enabled_unexpired_key() {
    let hashed = hex_sha256("sk-hashed-key-2");
    let router = start_router(&format!(
        "api_keys:\n  mode: blocking\n  api_keys:\n    - {{key: sk-plain-key-1, id: plain}}\n    - {{key_hash: \"sha256:{hashed}\", id: hashed}}\n    - {{key: sk-disabled-3, id: off, enabled: false}}\n    - {{key: sk-expired-4, id: old, expires_at: \"2001-01-01T00:00:00Z\"}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    let r = chat_as(addr, "mock-a", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key", "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "authentication_error");
    assert_eq!(r.header("www-authenticate"), "Bearer");
    assert!(!r.header("x-request-id").is_empty());

    let r = messages_as(addr, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let v = r.json();
    assert_eq!(v["type"], "error", "Anthropic's shape: {v}");
    assert_eq!(v["error"]["type"], "authentication_error");

    for h in [
        ("authorization", "Bearer sk-plain-key-1"),
        ("x-api-key", "sk-plain-key-1"),
        ("authorization", "bearer sk-hashed-key-2"),
    ] {
        assert_eq!(
            chat_as(addr, "mock-a", &[h]).await.status,
            StatusCode::OK,
            "{h:?}"
        );
    }
    assert_eq!(
        messages_as(addr, &[("x-api-key", "sk-plain-key-1")])
            .await
            .status,
        StatusCode::OK
    );

    for (key, why) in [
        ("sk-wrong", "invalid"),
        ("sk-disabled-3", "disabled"),
        ("sk-expired-4", "expired"),
    ] {
        let auth = format!("Bearer {key}");
        let r = chat_as(addr, "mock-a", &[("authorization", &auth)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{key}");
        let text = r.text();
        assert!(text.contains(why), "{text}");
        assert!(!text.contains(key), "the key is never echoed: {text}");
    }

    // Health and metrics need no key.
    for path in ["/health", "/health/ready", "/metrics"] {
        assert_eq!(get_path(addr, path).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn permissive_mode_serves_anonymous_callers_but_not_wrong_keys() {
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-plain-key-1, id: plain}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(chat_as(addr, "mock-a", &[]).await.status, StatusCode::OK);
    assert_eq!(
        chat_as(
            addr,
            "mock-a",
            &[("authorization", "Bearer sk-plain-key-1")]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        chat_as(addr, "mock-a", &[("authorization", "Bearer nope")])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn scopes_and_allowed_models_are_enforced() {
    let router = start_router(&format!(
        "api_keys:\n  mode: blocking\n  api_keys:\n    - {{key: sk-reader-0001, id: reader, scopes: [read]}}\n    - {{key: sk-chatter-002, id: chatter, scopes: [chat], allowed_models: [\"mock-*\"]}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let reader = [("authorization", "Bearer sk-reader-0001")];
    let chatter = [("authorization", "Bearer sk-chatter-002")];

    let r = chat_as(addr, "mock-a", &reader).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json()["error"]["type"],
        "permission_error",
        "{}",
        r.text()
    );
    let r = send(Method::GET, format!("http://{addr}/v1/models"), "", &reader).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 3);

    assert_eq!(
        chat_as(addr, "mock-b", &chatter).await.status,
        StatusCode::OK
    );
    let r = chat_as(addr, "other", &chatter).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json()["error"]["code"],
        "model_not_allowed",
        "{}",
        r.text()
    );
    let r = send(
        Method::GET,
        format!("http://{addr}/v1/models"),
        "",
        &chatter,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "chat scope does not list models"
    );

    // A key with read and an allow-list sees only the allowed models.
    let router = start_router(&format!(
        "api_keys:\n  mode: blocking\n  api_keys:\n    - {{key: sk-lister-003, id: lister, allowed_models: [\"mock-?\"]}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let lister = [("authorization", "Bearer sk-lister-003")];
    let r = send(Method::GET, format!("http://{addr}/v1/models"), "", &lister).await;
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["mock-a", "mock-b"]);
    let r = send(
        Method::GET,
        format!("http://{addr}/v1/models/other"),
        "",
        &lister,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_keys_rate_limit_answers_429_with_its_headers() {
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-limited-001, id: limited, rate_limit: {{requests_per_second: 0.01, burst_capacity: 2}}}}\n    - {{key: sk-per-minute-2, id: minute, rate_limit: 600}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let key = [("authorization", "Bearer sk-limited-001")];
    assert_eq!(chat_as(addr, "mock-a", &key).await.status, StatusCode::OK);
    assert_eq!(chat_as(addr, "mock-a", &key).await.status, StatusCode::OK);
    let r = chat_as(addr, "mock-a", &key).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let retry: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=100).contains(&retry), "{retry}");
    assert_eq!(r.header("x-ratelimit-limit"), "2");
    assert_eq!(r.header("x-ratelimit-remaining"), "0");
    assert!(r.header("x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    let r = messages_as(addr, &[("x-api-key", "sk-limited-001")]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.json()["error"]["type"],
        "rate_limit_error",
        "{}",
        r.text()
    );
    // Other keys and anonymous callers are not affected.
    assert_eq!(
        chat_as(
            addr,
            "mock-a",
            &[("authorization", "Bearer sk-per-minute-2")]
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(chat_as(addr, "mock-a", &[]).await.status, StatusCode::OK);
    let m = get_path(addr, "/metrics").await.text();
    assert!(m.contains("continuum_rate_limited_total 2\n"), "{m}");
}

#[test]
fn keys_file_entries_are_loaded_and_checked() {
    let dir = temp_dir("keys-file");
    std::fs::write(
        dir.join("keys.yaml"),
        "- {key: sk-from-file-01, id: filed, scopes: [read, writ]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("api_keys:\n  mode: blocking\n  api_keys_file: keys.yaml\n{MOCK}"),
    )
    .unwrap();
    let run = crate::common::run(
        bin()
            .args(["config", "validate", "--config"])
            .arg(dir.join("config.yaml")),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("keys.yaml"), "{}", run.stderr);
    assert!(
        run.stderr.contains("[0].scopes: 'writ' is not a scope"),
        "{}",
        run.stderr
    );

    std::fs::write(
        dir.join("keys.yaml"),
        "api_keys:\n  - {key: sk-from-file-01, id: filed}\n",
    )
    .unwrap();
    let run_ok = crate::common::run(
        bin()
            .args(["config", "validate", "--config"])
            .arg(dir.join("config.yaml")),
    );
    assert_eq!(run_ok.code, 0, "{}", run_ok.stderr);
}

#[tokio::test]
async fn keys_from_the_file_authenticate_in_serve() {
    let dir = temp_dir("keys-file-serve");
    std::fs::write(
        dir.join("keys.yaml"),
        "- {key: sk-from-file-01, id: filed}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("server: {{bind_address: \"127.0.0.1:0\"}}\napi_keys:\n  mode: blocking\n  api_keys_file: keys.yaml\n{MOCK}"),
    )
    .unwrap();
    let p = ServeProcess::start(
        bin()
            .args(["serve", "--config"])
            .arg(dir.join("config.yaml")),
        1,
    );
    let addr = p.tcp_addr();
    assert_eq!(
        chat_as(addr, "mock-a", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = chat_as(
        addr,
        "mock-a",
        &[("authorization", "Bearer sk-from-file-01")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let _: Value = r.json();
}
