//! The client commands run as processes against a router in the test: `chat` one-shot and
//! its REPL through a pseudo-terminal, `models list` as a table and JSON.

use std::time::Duration;

use crate::common::*;

const MOCKS: &str = "model_configs:\n  - {id: mock-a, metadata: {limits: {context_window: 8192}, pricing: {input_tokens: 0.5, output_tokens: 1.5}}}\nbackends:\n  - {name: one, type: mock, models: [mock-a, mock-slow], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n  - {name: slow, type: mock, models: [mock-slow], mock: {first_token_latency: 0ms, tokens_per_second: 5}}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_one_shot_streams_the_answer_and_errors_are_one_line() {
    let router = start_router(MOCKS).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run(bin().args(["chat", "--url", &url, "-m", "mock-a", "hello there router"]))
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "hello there router\n");

    // From stdin with `-`, and the first listed model when -m is left out.
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            use std::io::Write;
            let mut child = bin()
                .args(["chat", "--url", &url, "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"from stdin")
                .unwrap();
            child.wait_with_output().unwrap()
        }
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");

    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || run(bin().args(["chat", "--url", &url, "-m", "nope", "hi"]))
    })
    .await
    .unwrap();
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(
        out.stderr.contains("nope") && !out.stderr.contains('{'),
        "one line, no JSON: {}",
        out.stderr
    );
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);

    let out = run(bin().args(["chat", "--url", "http://127.0.0.1:1", "-m", "m", "hi"]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("127.0.0.1:1"),
        "names the URL: {}",
        out.stderr
    );
}

#[test]
fn chat_with_a_config_talks_to_its_backends_directly() {
    let dir = temp_dir("chat-config");
    let file = dir.join("config.yaml");
    std::fs::write(&file, MOCKS).unwrap();
    let out = run(bin()
        .args(["chat", "--in-process", "-m", "mock-a", "--config"])
        .arg(&file)
        .arg("direct"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "direct\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repl_takes_prompts_commands_and_ctrl_c() {
    let router = start_router(MOCKS).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    tokio::task::spawn_blocking(move || {
        use expectrl::{ControlCode, Expect};
        let mut cmd = bin();
        cmd.args(["chat", "--url", &url, "-m", "mock-a"]);
        let mut p = expectrl::Session::spawn(cmd).unwrap();
        p.set_expect_timeout(Some(Duration::from_secs(20)));
        p.expect("you").unwrap();
        p.send_line("ping one").unwrap();
        p.expect("ping one").unwrap();
        p.expect("you").unwrap();
        // A slow model (pinned to the slow backend): its answer is cut short by Ctrl-C,
        // and the session goes on.
        p.send_line("/model slow/mock-slow").unwrap();
        p.expect("model: slow/mock-slow").unwrap();
        p.expect("you").unwrap();
        p.send_line("a b c d e f g h i j k l m n o p q r s t u v w x y z")
            .unwrap();
        // The echo of the typed line ends with "z" (and the editor's terminal modes); the
        // answer starts on the next line.
        p.expect(expectrl::Regex("z[^\n]*\na ")).unwrap();
        p.send(ControlCode::EndOfText).unwrap();
        p.expect("[cancelled]").unwrap();
        p.expect("you").unwrap();
        p.send_line("/model mock-a").unwrap();
        p.expect("model: mock-a").unwrap();
        p.send_line("still here").unwrap();
        p.expect("still here").unwrap();
        p.expect("you").unwrap();
        p.send_line("/exit").unwrap();
        p.expect(expectrl::Eof).unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_as_a_table_and_as_json() {
    let router = start_router(MOCKS).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let (table, json) = tokio::task::spawn_blocking(move || {
        (
            run(bin().args(["models", "list", "--url", &url])),
            run(bin().args(["models", "list", "--url", &url, "--json"])),
        )
    })
    .await
    .unwrap();
    assert_eq!(table.code, 0, "{}", table.stderr);
    let row = table
        .stdout
        .lines()
        .find(|l| l.contains("mock-a"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    for cell in ["one", "healthy", "8192", "0.5 / 1.5"] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    let slow = table
        .stdout
        .lines()
        .find(|l| l.contains("mock-slow"))
        .unwrap();
    assert!(slow.contains("one, slow"), "{slow}");
    assert_eq!(json.code, 0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mock-a", "mock-slow"]);

    let out = run(bin().args(["models", "list", "--url", "http://127.0.0.1:1"]));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("127.0.0.1:1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_prints_every_figure_and_json_parses() {
    let router = start_router(MOCKS).await;
    let other = start_router(MOCKS).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let url2 = format!("http://{}", other.tcp_addr().unwrap());
    let (table, json, compare, failing) = tokio::task::spawn_blocking(move || {
        (
            run(bin().args([
                "bench", "--url", &url, "-m", "mock-a", "-n", "40", "-c", "4", "--stream",
            ])),
            run(bin().args([
                "bench", "--url", &url, "-m", "mock-a", "-n", "40", "-c", "4", "--stream", "--json",
            ])),
            run(bin().args([
                "bench",
                "--url",
                &url,
                "--compare",
                &url2,
                "-m",
                "mock-a",
                "-n",
                "40",
                "-c",
                "2",
                "--json",
            ])),
            run(bin().args(["bench", "--url", &url, "-m", "nope", "-n", "5"])),
        )
    })
    .await
    .unwrap();
    assert_eq!(table.code, 0, "{}", table.stderr);
    for figure in [
        "requests",
        "errors",
        "req/s",
        "latency p50",
        "latency p90",
        "latency p99",
        "latency max",
        "TTFT p50",
        "TTFT p90",
        "TTFT p99",
        "inter-token p50",
        "output tokens/s",
        "statuses",
        "200: 40",
    ] {
        assert!(
            table.stdout.contains(figure),
            "{figure} missing:\n{}",
            table.stdout
        );
    }
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["requests"], 40);
    assert_eq!(v["errors"], 0);
    assert!(v["rps"].as_f64().unwrap() > 0.0);
    for k in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][k].as_f64().unwrap() > 0.0, "{k}: {v}");
    }
    for k in ["p50", "p90", "p99"] {
        assert!(v["ttft_ms"][k].as_f64().unwrap() > 0.0, "{k}: {v}");
    }
    assert!(v["output_tokens_per_second"].as_f64().unwrap() > 0.0);

    assert_eq!(compare.code, 0, "{}", compare.stderr);
    let c: serde_json::Value = serde_json::from_str(&compare.stdout).unwrap();
    assert_eq!(c["a"]["summary"]["requests"], 20);
    assert_eq!(c["b"]["summary"]["requests"], 20);
    assert!(c["ratios"]["rps"].as_f64().unwrap() > 0.0);

    assert_eq!(failing.code, 1);
    assert!(
        failing.stderr.contains("every request failed (404: 5)"),
        "{}",
        failing.stderr
    );
}

#[test]
fn bench_overhead_measures_the_router_against_an_in_process_backend() {
    let out = run(bin().args(["bench", "--overhead", "-n", "80", "-c", "2", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["direct"]["requests"], 40);
    assert_eq!(v["router"]["requests"], 40);
    assert_eq!(v["router"]["errors"], 0);
    assert!(v["added_ms"]["p50"].is_number());
    assert!(v["rps_ratio"].as_f64().unwrap() > 0.0);
}
