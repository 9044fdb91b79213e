//! The official `openai` and `anthropic` Python SDKs (installed by `.ci/run`) against the router.

use std::process::Command;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_sdk_talks_to_the_router() {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        panic!("this test needs python3 with the official openai package: run `pip install openai` (.ci/run does)");
    }
    let router = start_router(
        "backends:\n  - {name: demo, type: mock, models: [mock-model], model_aliases: {mock: mock-model}, mock: {first_token_latency: 1ms, tokens_per_second: 0}}\n",
    )
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_smoke.py");
    let out =
        tokio::task::spawn_blocking(move || Command::new("python3").arg(script).arg(url).output())
            .await
            .unwrap()
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("openai sdk ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_anthropic_sdk_talks_to_the_router() {
    let probe = Command::new("python3")
        .args(["-c", "import anthropic"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        panic!("this test needs python3 with the official anthropic package: run `pip install anthropic` (.ci/run does)");
    }
    let router = start_router(
        "backends:\n  - {name: demo, type: mock, models: [mock-model], mock: {first_token_latency: 1ms, tokens_per_second: 0}}\n",
    )
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/anthropic_smoke.py");
    let out =
        tokio::task::spawn_blocking(move || Command::new("python3").arg(script).arg(url).output())
            .await
            .unwrap()
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("anthropic sdk ok"));
}
