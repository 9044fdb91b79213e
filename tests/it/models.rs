//! Model metadata (`model_configs`, `model_metadata_file`, `--model-metadata`) and
//! per-model selection strategies.

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_config_backend_and_file_is_listed() {
    let dir = temp_dir("metadata");
    std::fs::write(
        dir.join("meta.yaml"),
        "models:\n  - id: file-model\n    metadata: {display_name: From The File, limits: {context_window: 8192}}\n  - id: gpt-4\n    metadata: {summary: \"from the file; the config wins\"}\n",
    )
    .unwrap();
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        r#"model_metadata_file: meta.yaml
model_configs:
  - id: gpt-4
    aliases: [gpt-4-0125-preview]
    metadata:
      display_name: GPT-4
      capabilities: [text, function_calling]
      pricing: {input_tokens: 0.03, output_tokens: 0.06}
      limits: {context_window: 128000, max_output: 4096}
backends:
  - name: demo
    type: mock
    models: [gpt-4, custom/gpt-4, gpt-4-0125-preview, file-model, local]
    model_configs:
      - id: local
        metadata: {summary: described by its backend}
"#,
    )
    .unwrap();
    let p = ServeProcess::start(
        bin()
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(&config),
        1,
    );
    let list = get_path(p.tcp_addr(), "/v1/models").await.json();
    let md = |id: &str| {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()["metadata"]
            .clone()
    };
    let gpt4 = json!({"display_name": "GPT-4", "capabilities": ["text", "function_calling"],
        "pricing": {"input_tokens": 0.03, "output_tokens": 0.06}, "limits": {"context_window": 128000, "max_output": 4096}});
    assert_eq!(md("gpt-4"), gpt4);
    assert_eq!(
        md("custom/gpt-4"),
        gpt4,
        "a namespaced id matches its base name"
    );
    assert_eq!(md("gpt-4-0125-preview"), gpt4, "aliases share the metadata");
    assert_eq!(
        md("file-model"),
        json!({"display_name": "From The File", "limits": {"context_window": 8192}})
    );
    assert_eq!(md("local"), json!({"summary": "described by its backend"}));
    drop(p);

    // --model-metadata replaces the file, with ~ expanded.
    std::fs::write(
        dir.join("other.yaml"),
        "models:\n  - {id: local, metadata: {summary: from the flag}}\n",
    )
    .unwrap();
    let p = ServeProcess::start(
        bin()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--model-metadata",
                "~/other.yaml",
                "--config",
            ])
            .arg(&config)
            .env("HOME", &dir),
        1,
    );
    let list = get_path(p.tcp_addr(), "/v1/models").await.json();
    let file_model = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "file-model")
        .unwrap()
        .clone();
    assert!(file_model.get("metadata").is_none(), "{file_model}");
    drop(p);

    // A broken metadata file is named with the key at fault.
    std::fs::write(
        dir.join("meta.yaml"),
        "models:\n  - id: x\n    metadata: {pricing: {input_tokens: cheap}}\n",
    )
    .unwrap();
    let out = run(bin().args(["config", "validate", "--config"]).arg(&config));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("meta.yaml")
            && out
                .stderr
                .contains("models[0].metadata.pricing.input_tokens"),
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_model_can_choose_its_own_strategy() {
    let router = start_router(
        "selection_strategy: RoundRobin\nmodel_configs:\n  - {id: heavy, selection_strategy: WeightedRoundRobin}\nbackends:\n  - {name: a, type: mock, weight: 3, models: [heavy, plain], mock: {first_token_latency: 0ms}}\n  - {name: b, type: mock, weight: 1, models: [heavy, plain], mock: {first_token_latency: 0ms}}\n",
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let count = |model: &'static str| async move {
        let mut a = 0;
        for _ in 0..40 {
            let r = chat(addr, &format!(r#"{{"model":"{model}","messages":[]}}"#)).await;
            if r.header("x-continuum-backend") == "a" {
                a += 1;
            }
        }
        a
    };
    assert_eq!(count("heavy").await, 30, "weighted 3:1 for this model");
    assert_eq!(count("plain").await, 20, "round robin for the others");
}

/// Top-level `model_aliases`: a name a client hard-codes (Claude Code's model ids) routes to
/// a model some backend serves, and is listed; an alias whose target nobody serves is not.
#[tokio::test]
async fn top_level_aliases_route_hard_coded_names() {
    let router = start_router("model_aliases:\n  claude-haiku-4-5-20251001: qwen3-coder\n  ghost: nobody-serves-this\nbackends:\n  - {name: local, type: mock, models: [qwen3-coder], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n").await;
    let addr = router.tcp_addr().unwrap();
    let r = send(
        http::Method::POST,
        format!("http://{addr}/v1/messages"),
        r#"{"model":"claude-haiku-4-5-20251001","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, http::StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-continuum-model"), "qwen3-coder");
    let ids: Vec<String> = get_path(addr, "/v1/models").await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["qwen3-coder", "claude-haiku-4-5-20251001"]);
    let r = chat(
        addr,
        r#"{"model":"ghost","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, http::StatusCode::NOT_FOUND);
}
