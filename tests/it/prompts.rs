//! Global prompts: model over backend over default, files over inline text, each merge
//! strategy, OpenAI and Anthropic clients on OpenAI and Anthropic backends, files kept
//! inside `prompts_dir`, and a changed prompt file applied by a reload.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

type Log = Arc<Mutex<Vec<Value>>>;

/// An OpenAI- and Anthropic-speaking upstream that logs every request body.
fn upstream(log: Log) -> axum::Router {
    let openai = {
        let log = log.clone();
        move |body: Bytes| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                axum::Json(
                    json!({"id": "c", "object": "chat.completion", "model": "up",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}),
                )
            }
        }
    };
    let anthropic = move |body: Bytes| {
        let log = log.clone();
        async move {
            log.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            axum::Json(
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "up",
                "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 5, "output_tokens": 1}}),
            )
        }
    };
    axum::Router::new()
        .route("/v1/chat/completions", post(openai))
        .route("/v1/messages", post(anthropic))
}

fn last(log: &Log) -> Value {
    log.lock().unwrap().last().cloned().unwrap()
}

async fn openai_chat(addr: std::net::SocketAddr, model: &str, system: Option<&str>) -> Reply {
    let mut messages = vec![json!({"role": "user", "content": "hi"})];
    if let Some(s) = system {
        messages.insert(0, json!({"role": "system", "content": s}));
    }
    let r = chat(
        addr,
        &json!({"model": model, "messages": messages}).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r
}

async fn anthropic_chat(addr: std::net::SocketAddr, model: &str, system: Value) -> Reply {
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/messages"),
        json!({"model": model, "max_tokens": 10, "system": system, "messages": [{"role": "user", "content": "hi"}]}).to_string(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r
}

#[tokio::test]
async fn prompts_are_chosen_by_model_then_backend_then_default_and_merged() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream(log.clone())).await;
    let dir = temp_dir("prompts");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::fs::write(dir.join("prompts/special.md"), "FROM FILE\n").unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "global_prompts:\n  separator: \" | \"\n  default: DEFAULT\n  prompts_dir: prompts\n  backends:\n    claude: BACKEND\n  models:\n    special: {{prompt: inline-loses, prompt_file: special.md}}\nbackends:\n  - {{name: local, type: vllm, url: \"http://{up}\", models: [plain, special]}}\n  - {{name: claude, type: anthropic, url: \"http://{up}\", api_key: k, models: [claude-x, claude-special]}}\n"
        ),
    )
    .unwrap();
    let router = start_router_file(&file).await;
    let addr = router.tcp_addr().unwrap();

    // Default, prepended to the client's system message.
    openai_chat(addr, "plain", Some("Be brief.")).await;
    assert_eq!(last(&log)["messages"][0]["content"], "DEFAULT | Be brief.");
    // The model's prompt comes from its file, over the inline text; added when the client has none.
    openai_chat(addr, "special", None).await;
    let sent = last(&log);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "FROM FILE"})
    );
    assert_eq!(sent["messages"][1]["role"], "user");
    // An OpenAI client on the Anthropic backend: the backend's prompt, in `system`.
    openai_chat(addr, "claude-x", Some("Mine.")).await;
    let system = last(&log)["system"].clone();
    assert!(
        system.to_string().contains("BACKEND | Mine."),
        "translated system: {system}"
    );
    // An Anthropic client passed through: blocks keep their cache marks.
    anthropic_chat(
        addr,
        "claude-x",
        json!([{"type": "text", "text": "Cached.", "cache_control": {"type": "ephemeral"}}]),
    )
    .await;
    let sent = last(&log);
    assert_eq!(sent["system"][0]["text"], "BACKEND | ");
    assert_eq!(sent["system"][1]["cache_control"]["type"], "ephemeral");
    // An Anthropic client translated onto the OpenAI-compatible backend.
    anthropic_chat(addr, "plain", json!("Terse.")).await;
    assert_eq!(last(&log)["messages"][0]["content"], "DEFAULT | Terse.");

    // A changed prompt file is applied by a reload.
    std::fs::write(dir.join("prompts/special.md"), "NEW FILE").unwrap();
    let r = send(
        Method::POST,
        format!("http://{addr}/admin/config/reload"),
        Bytes::new(),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    openai_chat(addr, "special", None).await;
    assert_eq!(last(&log)["messages"][0]["content"], "NEW FILE");
}

#[tokio::test]
async fn append_and_replace() {
    let log: Log = Default::default();
    let up = spawn_upstream(upstream(log.clone())).await;
    for (strategy, expected) in [("append", "Mine.\n\nRULES"), ("replace", "RULES")] {
        let router = start_router(&format!(
            "global_prompts: {{merge_strategy: {strategy}, default: RULES}}\nbackends:\n  - {{name: local, type: vllm, url: \"http://{up}\", models: [m]}}\n"
        ))
        .await;
        openai_chat(router.tcp_addr().unwrap(), "m", Some("Mine.")).await;
        assert_eq!(last(&log)["messages"][0]["content"], expected, "{strategy}");
        assert_eq!(last(&log)["messages"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn prompt_files_may_not_leave_prompts_dir_and_must_exist() {
    let dir = temp_dir("prompts-bad");
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    std::fs::write(dir.join("secret.txt"), "do not read").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("prompts/link.md")).unwrap();
    for (entry, path) in [
        (
            "models: {m: {prompt_file: link.md}}",
            "global_prompts.models.m.prompt_file",
        ),
        (
            "models: {m: {prompt_file: ../secret.txt}}",
            "global_prompts.models.m.prompt_file",
        ),
        ("default_file: /etc/passwd", "global_prompts.default_file"),
        (
            "backends: {b: {prompt_file: missing.md}}",
            "global_prompts.backends.b.prompt_file",
        ),
        ("merge_strategy: sideways", "global_prompts.merge_strategy"),
        ("models: {m: {}}", "global_prompts.models.m"),
    ] {
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            format!("global_prompts:\n  prompts_dir: prompts\n  {entry}\nbackends: [{{name: b, type: mock}}]\n"),
        )
        .unwrap();
        let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
        let all = format!("{}{}", out.stdout, out.stderr);
        assert_eq!(out.code, 1, "{entry}: {all}");
        assert!(all.contains(path), "{entry} should name {path}: {all}");
        assert!(!all.contains("do not read"));
    }
}
