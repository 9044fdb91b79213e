//! Hot reload: `POST /admin/config/reload`, the file watcher and SIGHUP apply a new
//! config atomically; an invalid file changes nothing and is reported; reloading under
//! load fails no request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::common::*;

fn mock(name: &str, models: &str) -> String {
    format!("  - {{name: {name}, type: mock, models: [{models}], mock: {{first_token_latency: 2ms, tokens_per_second: 0}}}}\n")
}

async fn reload(addr: std::net::SocketAddr) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/admin/config/reload"),
        bytes::Bytes::new(),
        &[],
    )
    .await
}

async fn chat_model(addr: std::net::SocketAddr, model: &str) -> Reply {
    chat(
        addr,
        &format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#),
    )
    .await
}

#[tokio::test]
async fn a_reload_applies_backends_keys_and_limits_and_an_invalid_file_changes_nothing() {
    let dir = temp_dir("reload");
    let file = dir.join("config.yaml");
    std::fs::write(&file, format!("backends:\n{}", mock("one", "mock-a"))).unwrap();
    let router = start_router_file(&file).await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(chat_model(addr, "mock-a").await.status, StatusCode::OK);
    assert_eq!(
        chat_model(addr, "mock-b").await.status,
        StatusCode::NOT_FOUND
    );

    // A second backend, API keys and a model alias arrive without a restart.
    std::fs::write(
        &file,
        format!(
            "api_keys:\n  mode: blocking\n  api_keys: [{{key: sk-new-key-1, id: new}}]\nmodel_aliases: {{fast: mock-b}}\nbackends:\n{}{}",
            mock("one", "mock-a"),
            mock("two", "mock-b")
        ),
    )
    .unwrap();
    let r = reload(addr).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["ok"], true);
    assert_eq!(
        chat_model(addr, "mock-b").await.status,
        StatusCode::UNAUTHORIZED
    );
    let with_key = |model: &'static str| {
        send(
            Method::POST,
            format!("http://{addr}/v1/chat/completions"),
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#),
            &[("authorization", "Bearer sk-new-key-1")],
        )
    };
    let r = with_key("fast").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-backend"), "two");

    // An invalid file: 422 naming the key, the old config keeps serving, /admin/config says so.
    std::fs::write(
        &file,
        format!(
            "backends:\n{}health_checks: {{interval: soon}}\n",
            mock("one", "mock-a")
        ),
    )
    .unwrap();
    let r = reload(addr).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("health_checks.interval"),
        "{}",
        r.text()
    );
    assert_eq!(
        with_key("mock-b").await.status,
        StatusCode::OK,
        "old config still serves"
    );
    let cfg = get_path(addr, "/admin/config").await.json();
    assert_eq!(cfg["last_reload"]["ok"], false, "{cfg}");
    assert!(cfg["last_reload"]["error"]
        .as_str()
        .unwrap()
        .contains("health_checks.interval"));
    assert!(cfg["last_reload"]["at"].as_str().unwrap().ends_with('Z'));

    // A changed worker count is applied to nothing and reported as needing a restart.
    std::fs::write(
        &file,
        format!(
            "server: {{workers: 1}}\nbackends:\n{}",
            mock("one", "mock-a")
        ),
    )
    .unwrap();
    let r = reload(addr).await.json();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["restart_required"], serde_json::json!(["server"]), "{r}");
    assert_eq!(
        chat_model(addr, "mock-b").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        chat_model(addr, "mock-a").await.status,
        StatusCode::OK,
        "keys are gone too"
    );
}

#[tokio::test]
async fn backends_kept_across_a_reload_keep_their_state() {
    let dir = temp_dir("reload-keep");
    let file = dir.join("config.yaml");
    let up = spawn_upstream(axum::Router::new().route(
        "/v1/models",
        axum::routing::get(|| async {
            axum::Json(
                serde_json::json!({"object":"list","data":[{"id":"up-model","object":"model"}]}),
            )
        }),
    ))
    .await;
    let base = format!("backends:\n  - {{name: up, type: vllm, url: \"http://{up}\"}}\n");
    std::fs::write(&file, &base).unwrap();
    let router = start_router_file(&file).await;
    let addr = router.tcp_addr().unwrap();
    let models = |v: serde_json::Value| v["backends"][0]["models"].clone();
    let before = get_path(addr, "/admin/backends").await.json();
    assert_eq!(models(before.clone()), serde_json::json!(["up-model"]));
    std::fs::write(&file, format!("{base}{}", "retry: {max_attempts: 2}\n")).unwrap();
    assert_eq!(reload(addr).await.status, StatusCode::OK);
    let after = get_path(addr, "/admin/backends").await.json();
    assert_eq!(models(after.clone()), serde_json::json!(["up-model"]));
    assert_eq!(after["backends"][0]["status"], "healthy");
}

#[tokio::test]
async fn the_file_watcher_applies_a_change_on_its_own() {
    let dir = temp_dir("reload-watch");
    let file = dir.join("config.yaml");
    let watch = "hot_reload: {enabled: true, poll_interval: 20ms}\n";
    std::fs::write(
        &file,
        format!("{watch}backends:\n{}", mock("one", "mock-a")),
    )
    .unwrap();
    let router = start_router_file(&file).await;
    let addr = router.tcp_addr().unwrap();
    std::fs::write(
        &file,
        format!("{watch}backends:\n{}", mock("one", "mock-a, mock-new")),
    )
    .unwrap();
    let mut served = false;
    for _ in 0..250 {
        if chat_model(addr, "mock-new").await.status == StatusCode::OK {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the watcher did not apply the change");
    let cfg = get_path(addr, "/admin/config").await.json();
    assert_eq!(cfg["last_reload"]["ok"], true, "{cfg}");
}

/// 2,000 requests (streamed and not) at concurrency 50 while the config is reloaded 50
/// times, adding and removing a backend each time: no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_fail_no_request() {
    let dir = temp_dir("reload-load");
    let file = dir.join("config.yaml");
    let one = format!("backends:\n{}", mock("one", "mock-a"));
    let two = format!(
        "rate_limiting:\n  limits: {{global: {{requests_per_second: 100000, burst_capacity: 100000}}}}\nbackends:\n{}{}",
        mock("one", "mock-a"),
        mock("two", "mock-a")
    );
    std::fs::write(&file, &one).unwrap();
    let router = Arc::new(start_router_file(&file).await);
    let addr = router.tcp_addr().unwrap();

    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let next = next.clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= 2000 {
                        break;
                    }
                    let stream = n % 3 == 0;
                    let r = chat(
                        addr,
                        &format!(r#"{{"model":"mock-a","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#),
                    )
                    .await;
                    let text = r.text();
                    let complete = !stream || text.contains("[DONE]");
                    if r.status != StatusCode::OK || !complete || text.contains("\"error\"") {
                        failures.lock().unwrap().push(format!("{}: {text}", r.status));
                    }
                }
            })
        })
        .collect();
    let reloader = {
        let router = router.clone();
        let file = file.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                std::fs::write(&file, if i % 2 == 0 { &two } else { &one }).unwrap();
                let report = router.reload().await;
                assert!(report.ok, "reload {i}: {:?}", report.error);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    reloader.await.unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
}

#[test]
fn sighup_reloads_the_served_binary() {
    let dir = temp_dir("reload-hup");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "server: {bind_address: \"127.0.0.1:0\"}\nbackends:\n  - {name: one, type: mock, models: [mock-a]}\n",
    )
    .unwrap();
    let mut p = ServeProcess::start(bin().args(["serve", "--config"]).arg(&file), 1);
    let addr = p.tcp_addr();
    std::fs::write(
        &file,
        "server: {bind_address: \"127.0.0.1:0\"}\nbackends:\n  - {name: one, type: mock, models: [mock-a, mock-hup]}\n",
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut reloaded = false;
    while let Some(line) = p.next_line(Duration::from_secs(10)) {
        if line.contains("configuration reloaded") {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "no reload logged:\n{}", p.seen.join("\n"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(chat_model(addr, "mock-hup"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    p.terminate();
    assert_eq!(p.wait_exit(Duration::from_secs(10)), 0);
}
