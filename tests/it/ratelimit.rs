//! `rate_limiting` (in memory): per client (key id, else IP; X-Forwarded-For when
//! trusted), per key, global and per backend; whitelist and bypass keys; 429 with
//! `Retry-After` and `x-ratelimit-*` in the client's shape.

use http::{Method, StatusCode};

use crate::common::*;

const MOCK: &str = "backends:\n  - {name: m, type: mock, models: [mock-a], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";
const SLOW: &str = "{requests_per_second: 0.01, burst_capacity: 2}";

async fn chat_from(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        r#"{"model":"mock-a","messages":[{"role":"user","content":"hi"}]}"#,
        headers,
    )
    .await
}

async fn statuses(addr: std::net::SocketAddr, n: usize, headers: &[(&str, &str)]) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(chat_from(addr, headers).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn per_client_limits_count_the_peer_address() {
    let router = start_router(&format!(
        "rate_limiting:\n  limits:\n    per_client: {SLOW}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(statuses(addr, 2, &[]).await, [200, 200]);
    let r = chat_from(addr, &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client 127.0.0.1"),
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(r.header("x-ratelimit-limit"), "2");
    assert_eq!(r.header("x-ratelimit-remaining"), "0");
    // X-Forwarded-For is not trusted by default: another claimed address changes nothing.
    assert_eq!(
        statuses(addr, 1, &[("x-forwarded-for", "203.0.113.9")]).await,
        [429]
    );
    // Anthropic clients get Anthropic's shape.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"mock-a","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    // Health is never limited.
    assert_eq!(get_path(addr, "/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn trusted_forwarded_for_picks_the_configured_hop() {
    let router = start_router(&format!(
        "rate_limiting:\n  trust_forwarded_for: true\n  limits:\n    per_client: {SLOW}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    // Right-most hop (the default): the client-written left part does not matter.
    assert_eq!(
        statuses(addr, 3, &[("x-forwarded-for", "1.1.1.1, 198.51.100.7")]).await,
        [200, 200, 429]
    );
    assert_eq!(
        statuses(addr, 1, &[("x-forwarded-for", "2.2.2.2, 198.51.100.7")]).await,
        [429]
    );
    assert_eq!(
        statuses(addr, 1, &[("x-forwarded-for", "198.51.100.8")]).await,
        [200]
    );

    let router = start_router(&format!(
        "rate_limiting:\n  trust_forwarded_for: true\n  use_rightmost_xff: false\n  limits:\n    per_client: {SLOW}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        statuses(addr, 3, &[("x-forwarded-for", "192.0.2.1, 10.0.0.1")]).await,
        [200, 200, 429]
    );
    assert_eq!(
        statuses(addr, 1, &[("x-forwarded-for", "192.0.2.2, 10.0.0.1")]).await,
        [200]
    );
}

#[tokio::test]
async fn whitelist_and_bypass_keys_are_never_limited() {
    let router = start_router(&format!(
        "rate_limiting:\n  whitelist: [\"127.0.0.0/8\"]\n  limits:\n    per_client: {SLOW}\n{MOCK}"
    ))
    .await;
    assert_eq!(statuses(router.tcp_addr().unwrap(), 4, &[]).await, [200; 4]);

    // By key id, with api_keys.
    let router = start_router(&format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-monitor-0001, id: monitor}}\n    - {{key: sk-normal-00002, id: normal}}\nrate_limiting:\n  bypass_keys: [monitor]\n  limits:\n    per_client: {SLOW}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        statuses(addr, 4, &[("authorization", "Bearer sk-monitor-0001")]).await,
        [200; 4]
    );
    assert_eq!(
        statuses(addr, 3, &[("authorization", "Bearer sk-normal-00002")]).await,
        [200, 200, 429]
    );
    // Keys are their own clients: the anonymous caller from the same address still has its bucket.
    assert_eq!(statuses(addr, 1, &[]).await, [200]);

    // The original's form: the key itself, without api_keys.
    let router = start_router(&format!(
        "rate_limiting:\n  bypass_keys: [admin-key-123]\n  limits:\n    per_client: {SLOW}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        statuses(addr, 4, &[("authorization", "Bearer admin-key-123")]).await,
        [200; 4]
    );
    assert_eq!(statuses(addr, 3, &[]).await, [200, 200, 429]);
}

#[tokio::test]
async fn global_and_per_backend_limits() {
    let router = start_router(&format!(
        "rate_limiting:\n  trust_forwarded_for: true\n  limits:\n    global: {{requests_per_second: 0.01, burst_capacity: 3}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut got = Vec::new();
    for i in 0..4 {
        let ip = format!("192.0.2.{i}");
        got.push(
            chat_from(addr, &[("x-forwarded-for", &ip)])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(got, [200, 200, 200, 429]);
    let r = chat_from(addr, &[]).await;
    assert!(r.text().contains("the router"), "{}", r.text());

    let router = start_router(
        "rate_limiting:\n  limits:\n    per_backend: {requests_per_second: 0.01, burst_capacity: 1}\nbackends:\n  - {name: a, type: mock, models: [mock-a], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n  - {name: b, type: mock, models: [mock-a], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n",
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let first = chat_from(addr, &[]).await;
    let second = chat_from(addr, &[]).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_ne!(
        first.header("x-continuum-backend"),
        second.header("x-continuum-backend"),
        "the limited backend is passed over"
    );
    let r = chat_from(addr, &[]).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    assert!(r.text().contains("backend '"), "{}", r.text());
    let m = get_path(addr, "/metrics").await.text();
    assert!(m.contains("continuum_rate_limited_total 1\n"), "{m}");
}

#[test]
fn rate_limiting_config_problems_are_named() {
    let dir = temp_dir("ratelimit-config");
    let file = dir.join("c.yaml");
    std::fs::write(
        &file,
        format!("rate_limiting:\n  storage: redis\n  redis: {{url: \"redis://user:pw@host\"}}\n  whitelist: [\"10.0.0.0/99\"]\n  limits:\n    per_model: {{requests_per_second: 1}}\n    per_client: {{requests_per_second: 0}}\n{MOCK}"),
    )
    .unwrap();
    let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
    assert_eq!(out.code, 1);
    for expected in [
        "rate_limiting.redis.url: 'redis://user:pw@host': Redis passwords in the URL are not supported yet",
        "rate_limiting.whitelist[0]: '10.0.0.0/99' is not an IP address or CIDR",
        "rate_limiting.limits.per_model: not supported yet",
        "rate_limiting.limits.per_client.requests_per_second: must be above 0",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing '{expected}' in {}",
            out.stderr
        );
    }
}

fn redis_config(url: &str, extra: &str) -> String {
    format!(
        "api_keys:\n  api_keys:\n    - {{key: sk-shared-key-01, id: team, rate_limit: {{requests_per_second: 0.01, burst_capacity: 3}}}}\nrate_limiting:\n  storage: redis\n  redis: {{url: \"{url}\", key_prefix: \"test-{}:\", timeout: 500ms}}\n{extra}{MOCK}",
        fastrand::u32(..)
    )
}

#[tokio::test]
async fn two_routers_sharing_one_redis_enforce_one_combined_limit() {
    let redis = RedisServer::start();
    let config = redis_config(&redis.url, "");
    let a = start_router(&config).await;
    let b = start_router(&config).await;
    let key = [("authorization", "Bearer sk-shared-key-01")];
    let mut got = Vec::new();
    for i in 0..5 {
        let router = if i % 2 == 0 { &a } else { &b };
        got.push(
            chat_from(router.tcp_addr().unwrap(), &key)
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(
        got,
        [200, 200, 200, 429, 429],
        "one limit of 3 across both routers"
    );
    let r = chat_from(b.tcp_addr().unwrap(), &key).await;
    assert!(r.text().contains("API key 'team'"), "{}", r.text());
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);

    // Per-client limits are shared too.
    let config = format!(
        "rate_limiting:\n  storage: redis\n  redis: {{url: \"{}\", key_prefix: \"test-{}:\"}}\n  limits:\n    per_client: {SLOW}\n{MOCK}",
        redis.url,
        fastrand::u32(..)
    );
    let a = start_router(&config).await;
    let b = start_router(&config).await;
    let (a, b) = (a.tcp_addr().unwrap(), b.tcp_addr().unwrap());
    assert_eq!(chat_from(a, &[]).await.status, StatusCode::OK);
    assert_eq!(chat_from(b, &[]).await.status, StatusCode::OK);
    assert_eq!(
        chat_from(a, &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        chat_from(b, &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_redis_outage_fails_open_by_default_and_says_so() {
    let mut redis = RedisServer::start();
    let router = start_router(&redis_config(&redis.url, "")).await;
    let addr = router.tcp_addr().unwrap();
    let key = [("authorization", "Bearer sk-shared-key-01")];
    assert_eq!(chat_from(addr, &key).await.status, StatusCode::OK);
    redis.kill();
    // Requests keep flowing (the limit of 3 is not enforced while Redis is away).
    assert_eq!(statuses(addr, 5, &key).await, [200; 5]);
    let m = get_path(addr, "/metrics").await.text();
    assert!(
        m.contains("continuum_rate_limit_store_errors_total{outcome=\"fail_open\"} 5\n"),
        "{m}"
    );

    // fail_open: false refuses with 503 instead.
    let redis = RedisServer::start();
    let url = redis.url.clone();
    drop(redis);
    let router = start_router(
        &redis_config(&url, "").replace("rate_limiting:\n", "rate_limiting:\n  fail_open: false\n"),
    )
    .await;
    let r = chat_from(router.tcp_addr().unwrap(), &key).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limit_store_unavailable");
}
