//! `continuum acp` with a real llama-server behind it, driven by the official ACP SDK.

use crate::common::*;
use crate::real::{available, Llama};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acp_prompt_streams_an_answer_from_llama_server() {
    if !available("an_acp_prompt_streams_an_answer_from_llama_server") {
        return;
    }
    let llama = Llama::chat_capped(48);
    let dir = temp_dir("e2e-acp");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "backends:\n  - {{name: llama, type: llamacpp, url: \"{}\"}}\nacp: {{default_model: smollm2}}\n",
            llama.url()
        ),
    )
    .unwrap();
    let python = python_with("acp");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/acp_llama.py");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_continuum"))
            .arg(&config)
            .arg(&dir)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("acp on llama-server ok"), "{stdout}");
}
