//! The original Continuum Router's documented configuration sample
//! (`tests/fixtures/original/seed-config-sample.yaml`, the seed's copy, unchanged) is a
//! config this router takes as it is: `config validate` passes it and `serve` starts with
//! it, with nothing in it reported as not supported.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::common::*;

/// A working directory holding the sample as `config.yaml` and the
/// `model-metadata.yaml` it names (relative paths in it, such as `./data/files`, land here).
fn seed_dir(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/original/seed-config-sample.yaml"
        ),
        dir.join("config.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("model-metadata.yaml"),
        "models:\n  - id: gpt-4o\n    aliases: [gpt-4o-2024-08-06]\n    metadata:\n      display_name: GPT-4o\n      capabilities: [text, image, function_calling]\n      limits: {context_window: 128000, max_output: 16384}\n",
    )
    .unwrap();
    dir
}

/// The binary in `dir` with the variables the sample refers to (the optional
/// `CONTINUUM_OPENAI_ORG_ID` left unset).
fn in_dir(dir: &PathBuf) -> Command {
    let mut c = bin();
    c.current_dir(dir)
        .env("ADMIN_TOKEN", "seed-admin-token")
        .env("CONTINUUM_OPENAI_API_KEY", "sk-seed-openai")
        .env("CONTINUUM_GEMINI_API_KEY", "seed-gemini-key")
        .env_remove("CONTINUUM_OPENAI_ORG_ID");
    c
}

fn not_supported(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.to_ascii_lowercase().contains("not supported"))
        .collect()
}

async fn admin_backends(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::GET,
        format!("http://{addr}/admin/backends"),
        "",
        headers,
    )
    .await
}

#[test]
fn the_seed_sample_config_validates() {
    let dir = seed_dir("seed-validate");
    let out = run(in_dir(&dir).args(["config", "validate", "--config", "config.yaml"]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("valid (5 backend(s)"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(not_supported(&all).is_empty(), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_sample_config_serves() {
    let dir = seed_dir("seed-serve");
    let mut p = ServeProcess::start(
        in_dir(&dir).args(["serve", "--config", "config.yaml", "--bind", "127.0.0.1:0"]),
        1,
    );
    let addr = p.tcp_addr();

    // It answers: models from the config, the admin API behind ${ADMIN_TOKEN}, the Files
    // API behind an API key (files.auth.method: api_key, and no keys configured).
    let r = get_path(addr, "/v1/models").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    for m in ["gpt-4o", "gpt-4", "llama2", "gemini-2.5-flash"] {
        assert!(ids.iter().any(|i| i == m), "{m} not in {ids:?}");
    }
    let r = admin_backends(addr, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = admin_backends(addr, &[("authorization", "Bearer seed-admin-token")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["backends"].as_array().unwrap().len(), 5);
    let r = get_path(addr, "/v1/files").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // Let the start-up tasks (probes, discovery) speak, then stop it.
    while p.next_line(Duration::from_millis(500)).is_some() {}
    p.terminate();
    assert_eq!(p.wait_exit(Duration::from_secs(30)), 0);
    while p.next_line(Duration::from_millis(200)).is_some() {}
    let all = p.seen.join("\n");
    assert!(not_supported(&all).is_empty(), "{all}");
}
