//! OAuth backends: `continuum auth login` runs the device flow (RFC 8628) against an
//! authorization server started here — pending, slow_down, success; denial; expiry —
//! stores the token with mode 0600; `auth status` and `logout`; `serve` sends the token
//! and refreshes it before it expires, without a restart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::common::*;

/// What the token endpoint answers to device-code polls, in order; refreshes count up.
#[derive(Default)]
struct AuthServer {
    polls: Mutex<VecDeque<&'static str>>,
    seen_polls: Mutex<Vec<String>>,
    refreshes: Mutex<u32>,
}

fn auth_server(state: Arc<AuthServer>) -> axum::Router {
    axum::Router::new()
        .route(
            "/device",
            post(|body: String| async move {
                assert!(body.contains("client_id=cli-app"), "{body}");
                assert!(body.contains("scope=models"), "{body}");
                axum::Json(json!({
                    "device_code": "dev-123",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://auth.example/activate",
                    "expires_in": 600,
                    "interval": 0,
                }))
            }),
        )
        .route(
            "/token",
            post(|State(s): State<Arc<AuthServer>>, body: String| async move {
                use axum::response::IntoResponse;
                let error = |e: &str| {
                    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response()
                };
                if body.contains("grant_type=refresh_token") {
                    let mut n = s.refreshes.lock().unwrap();
                    *n += 1;
                    return axum::Json(json!({"access_token": format!("refreshed-{n}"), "token_type": "bearer", "expires_in": 2, "refresh_token": format!("refresh-{n}")})).into_response();
                }
                assert!(body.contains("device_code=dev-123"), "{body}");
                s.seen_polls.lock().unwrap().push(body);
                match s.polls.lock().unwrap().pop_front() {
                    Some("ok") | None => axum::Json(json!({"access_token": "access-1", "token_type": "bearer", "expires_in": 3600, "refresh_token": "refresh-0"})).into_response(),
                    Some(e) => error(e),
                }
            }),
        )
        .with_state(state)
}

fn config(dir: &std::path::Path, auth: std::net::SocketAddr, upstream: &str) -> std::path::PathBuf {
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "server: {{bind_address: \"127.0.0.1:0\"}}\nhealth_checks: {{enabled: false}}\nbackends:\n  - name: cloud\n    type: vllm\n    url: \"{upstream}\"\n    models: [m]\n    auth:\n      type: oauth\n      oauth:\n        client_id: cli-app\n        device_authorization_url: \"http://{auth}/device\"\n        token_url: \"http://{auth}/token\"\n        scopes: [models]\n        token_store: tokens.json\n  - {{name: plain, type: mock}}\n"
        ),
    )
    .unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_polls_through_pending_and_slow_down_and_stores_the_token() {
    let state = Arc::new(AuthServer::default());
    state
        .polls
        .lock()
        .unwrap()
        .extend(["authorization_pending", "slow_down", "ok"]);
    let auth = spawn_upstream(auth_server(state.clone())).await;
    let dir = temp_dir("oauth-login");
    let file = config(&dir, auth, "http://127.0.0.1:9");
    let out = tokio::task::spawn_blocking({
        let file = file.clone();
        move || {
            run(bin()
                .args(["auth", "login", "--backend", "cloud", "--config"])
                .arg(&file))
        }
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("https://auth.example/activate"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("WDJB-MJHT"));
    let polls = state.seen_polls.lock().unwrap().clone();
    assert_eq!(
        polls.len(),
        3,
        "pending, slow_down, then the token: {polls:?}"
    );
    assert!(
        polls[0].contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
        "{}",
        polls[0]
    );

    let store = dir.join("tokens.json");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(saved["backends"]["cloud"]["access_token"], "access-1");
    assert_eq!(saved["backends"]["cloud"]["refresh_token"], "refresh-0");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let status = run(bin().args(["auth", "status", "--config"]).arg(&file));
    assert_eq!(status.code, 0, "{}", status.stderr);
    let row = status.stdout.lines().find(|l| l.contains("cloud")).unwrap();
    assert!(row.contains("stored") && row.contains("yes"), "{row}");
    assert!(
        !status.stdout.contains("access-1"),
        "tokens are not printed"
    );

    let out = run(bin()
        .args(["auth", "logout", "--backend", "cloud", "--config"])
        .arg(&file));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("removed"));
    let status = run(bin().args(["auth", "status", "--config"]).arg(&file));
    assert!(
        status.stdout.contains("none (run auth login)"),
        "{}",
        status.stdout
    );

    // Backends without OAuth, and unknown ones, are refused by name.
    let out = run(bin()
        .args(["auth", "login", "--backend", "plain", "--config"])
        .arg(&file));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("'plain' does not use OAuth"),
        "{}",
        out.stderr
    );
    let out = run(bin()
        .args(["auth", "login", "--backend", "nope", "--config"])
        .arg(&file));
    assert!(
        out.stderr.contains("no backend named 'nope'"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_and_expiry_end_the_login_with_a_clear_error() {
    for (answer, message) in [
        ("access_denied", "the authorization was denied"),
        ("expired_token", "the device code expired"),
    ] {
        let state = Arc::new(AuthServer::default());
        state
            .polls
            .lock()
            .unwrap()
            .extend(["authorization_pending", answer]);
        let auth = spawn_upstream(auth_server(state.clone())).await;
        let dir = temp_dir("oauth-deny");
        let file = config(&dir, auth, "http://127.0.0.1:9");
        let out = tokio::task::spawn_blocking(move || {
            run(bin()
                .args(["auth", "login", "--backend", "cloud", "--config"])
                .arg(&file))
        })
        .await
        .unwrap();
        assert_eq!(out.code, 1, "{answer}");
        assert!(out.stderr.contains(message), "{answer}: {}", out.stderr);
        assert!(!dir.join("tokens.json").exists(), "nothing stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_sends_the_token_and_refreshes_it_before_expiry() {
    let state = Arc::new(AuthServer::default());
    let auth = spawn_upstream(auth_server(state.clone())).await;
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let upstream = spawn_upstream(axum::Router::new().route(
        "/v1/chat/completions",
        post({
            let seen = seen.clone();
            move |headers: HeaderMap, _body: Bytes| {
                let seen = seen.clone();
                async move {
                    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                    seen.lock().unwrap().push(auth);
                    axum::Json(json!({"id": "c", "object": "chat.completion", "model": "m",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
                }
            }
        }),
    ))
    .await;
    let dir = temp_dir("oauth-serve");
    let file = config(&dir, auth, &format!("http://{upstream}"));
    // An expired token with a refresh token: serve refreshes it before taking traffic.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(
        dir.join("tokens.json"),
        json!({"backends": {"cloud": {"access_token": "stale", "refresh_token": "refresh-0", "expires_at": now - 10, "obtained_at": now - 3600}}}).to_string(),
    )
    .unwrap();
    let router = start_router_file(&file).await;
    let addr = router.tcp_addr().unwrap();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(chat(addr, body).await.status, StatusCode::OK);
    assert_eq!(seen.lock().unwrap().last().unwrap(), "Bearer refreshed-1");
    // refreshed-1 lives 2 s: it is refreshed half-way, one second from now.
    let mut refreshed = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(chat(addr, body).await.status, StatusCode::OK);
        if seen.lock().unwrap().last().unwrap() == "Bearer refreshed-2" {
            refreshed = true;
            break;
        }
    }
    assert!(refreshed, "token not refreshed: {:?}", seen.lock().unwrap());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokens.json")).unwrap()).unwrap();
    assert_eq!(saved["backends"]["cloud"]["refresh_token"], "refresh-2");
}

#[test]
fn oauth_settings_are_checked_with_their_paths() {
    let dir = temp_dir("oauth-config");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "backends:\n  - name: c\n    type: openai\n    api_key: sk\n    auth: {type: oauth, oauth: {token_url: \"ftp://x\"}}\n  - name: d\n    type: vllm\n    url: \"http://x\"\n    auth: {type: saml}\n",
    )
    .unwrap();
    let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
    assert_eq!(out.code, 1);
    for expected in [
        "backends[0].auth: give either api_key or auth (oauth), not both",
        "backends[0].auth.oauth.client_id: client_id is required",
        "backends[0].auth.oauth.device_authorization_url",
        "backends[0].auth.oauth.token_url: 'ftp://x' must start with http:// or https://",
        "backends[1].auth.type: 'saml' is not an auth type",
    ] {
        assert!(
            out.stderr.contains(expected),
            "missing '{expected}':\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_login_error_names_the_backend_and_the_key_to_check() {
    let dir = temp_dir("oauth-unreachable");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let file = config(&dir, closed, "http://127.0.0.1:9");
    let out = run(bin()
        .args(["auth", "login", "--backend", "cloud", "--config"])
        .arg(&file));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: login for backend 'cloud' failed: ")
            && out
                .stderr
                .ends_with("; check backends[0].auth.oauth.device_authorization_url\n"),
        "{}",
        out.stderr
    );
}
