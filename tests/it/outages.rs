//! What a client is told when backends are down: a model whose backend's model list is
//! unknown because that backend is unreachable (503 naming it, not 404), and why each
//! backend of a known model is passed over (unhealthy, warming up, circuit open until
//! when); a backend whose probe succeeds again gets its half-open trial at once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use serde_json::Value;

use crate::common::*;
use crate::faults::{Faulty, Killable, Mode};

const LLAMA: &str = r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#;

/// A loopback address nothing listens on.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Polls `check` every 10 ms for up to 5 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_model_of_an_unreachable_discovering_backend_is_503_naming_it() {
    let dead = closed_port();
    let router = start_router(&format!(
        "health_checks: {{interval: 20ms, timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1}}\nbackends:\n  - {{name: ollama, type: ollama, url: \"http://{dead}\"}}\n  - {{name: demo, type: mock}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let says =
        format!("backend 'ollama' at http://{dead} is unreachable, so its models are unknown");

    // OpenAI's shape.
    let r = chat(addr, LLAMA).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let e = &r.json()["error"];
    assert_eq!(e["code"], "models_unknown");
    assert_eq!(e["param"], "model");
    assert!(e["message"].as_str().unwrap().contains(&says), "{e}");
    assert!(e["message"].as_str().unwrap().contains("llama3.2"), "{e}");

    // Anthropic's shape on the Messages API.
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"llama3.2","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&says),
        "{v}"
    );

    // GET /v1/models/{id} says the same.
    let r = get_path(addr, "/v1/models/llama3.2").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());

    // A model pinned to a backend whose list is known is still simply unknown.
    let r = chat(addr, r#"{"model":"demo/llama3.2","messages":[]}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    // The live backend still serves.
    let r = chat(
        addr,
        r#"{"model":"mock-model","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // /v1/models says which backends are down and that their models are not listed.
    let list = get_path(addr, "/v1/models").await.json();
    let down = list["unavailable"].as_array().expect("an unavailable list");
    assert_eq!(down.len(), 1, "{list}");
    assert_eq!(down[0]["backend"], "ollama");
    assert_eq!(down[0]["url"], format!("http://{dead}"));
    assert_eq!(down[0]["status"], "unhealthy");
    assert_eq!(down[0]["models_listed"], false);
    assert!(
        down[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("is unhealthy"),
        "{list}"
    );

    // The backend comes up: its models are discovered as soon as its probe succeeds (not
    // at the next discovery round, a minute away), and `llama3.2` means `llama3.2:latest`.
    let seen: Arc<Mutex<Vec<Value>>> = Default::default();
    let listener = tokio::net::TcpListener::bind(dead).await.unwrap();
    let app = crate::ollama::ollama_upstream(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    eventually("the ollama backend's models are known", async || {
        chat(addr, LLAMA).await.status == StatusCode::OK
    })
    .await;
    assert_eq!(
        seen.lock().unwrap().last().unwrap()["model"],
        "llama3.2:latest"
    );
    let list = get_path(addr, "/v1/models").await.json();
    assert!(list.get("unavailable").is_none(), "{list}");
}

#[tokio::test]
async fn without_discovering_backends_an_unknown_model_stays_404() {
    let router = start_router("backends:\n  - {name: demo, type: mock}\n").await;
    let r = chat(router.tcp_addr().unwrap(), LLAMA).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
}

/// The 503's message for one chat request.
async fn refusal(addr: SocketAddr) -> String {
    let r = chat(
        addr,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    if r.status != StatusCode::SERVICE_UNAVAILABLE {
        return format!("status {}", r.status);
    }
    r.json()["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_503_says_why_and_a_recovered_probe_half_opens_the_circuit_at_once() {
    let up = Killable::start(Faulty::new("b")).await;
    let router = start_router(&format!(
        "health_checks: {{endpoint: /health, interval: 20ms, warmup_check_interval: 10ms, timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1}}\nretry: {{max_attempts: 1}}\ncircuit_breaker: {{failure_threshold: 1, timeout: 1h, half_open_success_threshold: 1}}\nbackends:\n  - {{name: b, type: vllm, url: \"http://{}\", models: [m]}}\n",
        up.addr
    ))
    .await;
    let addr = router.tcp_addr().unwrap();

    // One failure opens the circuit for an hour: the 503 says until when.
    up.faulty.set(Mode::Status(500, None));
    let r = chat(addr, r#"{"model":"m","messages":[]}"#).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let text = refusal(addr).await;
    let until = text
        .split("has its circuit open until ")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let (at, rest) = until.split_once(' ').unwrap();
    let at = continuum::config::access::parse_rfc3339(at).unwrap_or_else(|| panic!("{text}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 3590..=now + 3601).contains(&at), "{text}");
    assert!(rest.starts_with("(for another 3"), "{text}");
    assert!(text.contains("backend 'b' has its circuit open"), "{text}");

    // Warming up (probe answers 503).
    up.faulty.set_health(503);
    eventually("the 503 says warming up", async || {
        refusal(addr).await.contains("backend 'b' is warming up")
    })
    .await;

    // Unhealthy, with what the last probe found (the path, not the backend's address).
    up.faulty.set_health(500);
    eventually("the 503 says unhealthy and why", async || {
        refusal(addr).await.contains(
            "backend 'b' is unhealthy (last probe: GET /health answered 500 Internal Server Error)",
        )
    })
    .await;
    assert!(!refusal(addr).await.contains(&up.addr.to_string()));

    // The probe succeeds again: the circuit (open for another hour) lets a trial through
    // at once, and the backend serves.
    up.faulty.set(Mode::Ok);
    up.faulty.set_health(200);
    eventually("the backend serves again", async || {
        chat(addr, r#"{"model":"m","messages":[]}"#).await.status == StatusCode::OK
    })
    .await;
    let admin = get_path(addr, "/admin/backends").await.json();
    assert_eq!(admin["backends"][0]["circuit"], "closed", "{admin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_and_chat_say_which_backend_is_down() {
    let dead = closed_port();
    let router = start_router(&format!(
        "backends:\n  - {{name: ollama, type: ollama, url: \"http://{dead}\"}}\n  - {{name: demo, type: mock}}\n"
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run(bin().args(["models", "list", "--url", &url]))
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("mock-model"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "backend 'ollama' (http://{dead}) is down: it is unhealthy (last probe: GET /api/tags failed"
        )) && out.stdout.contains("; its models are not listed"),
        "{}",
        out.stdout
    );

    // With the dead backend alone, `chat` has no model to pick, and says why instead of
    // suggesting -m.
    let alone = start_router(&format!(
        "backends:\n  - {{name: ollama, type: ollama, url: \"http://{dead}\"}}\n"
    ))
    .await;
    let url = format!("http://{}", alone.tcp_addr().unwrap());
    let out = tokio::task::spawn_blocking(move || run(bin().args(["chat", "--url", &url, "hi"])))
        .await
        .unwrap();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "lists no models because backend 'ollama' (http://{dead}) is down"
        )) && out.stderr.contains("start it (or fix its url)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("-m"), "{}", out.stderr);
}
