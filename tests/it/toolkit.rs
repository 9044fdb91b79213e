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
        move || run_with_input(bin().args(["chat", "--url", &url, "-"]), b"from stdin")
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

/// Every figure printed as JSON has at most `places` decimals.
fn assert_rounded(v: &serde_json::Value, places: usize) {
    let text = v.to_string();
    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
    assert!(decimals <= places, "{text} has more than {places} decimals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_prints_every_figure_and_json_parses() {
    let router = start_router(MOCKS).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let (table, json, plain, plain_json) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let base = [
                "bench", "--url", &url, "-m", "mock-a", "-n", "40", "-c", "4",
            ];
            (
                run(bin().args(base).arg("--stream")),
                run(bin().args(base).args(["--stream", "--json"])),
                run(bin().args(base)),
                run(bin().args(base).arg("--json")),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(table.code, 0, "{}", table.stderr);
    for figure in [
        "figure",
        "unit",
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
        "tokens/s",
        "statuses",
        "200: 40",
    ] {
        assert!(
            table.stdout.contains(figure),
            "{figure} missing:\n{}",
            table.stdout
        );
    }
    // One unit for every latency: ms, with 3 decimals.
    assert!(!table.stdout.contains("µs"), "{}", table.stdout);
    let p50 = table
        .stdout
        .lines()
        .find(|l| l.contains("latency p50"))
        .unwrap();
    assert!(p50.contains(" ms "), "{p50}");
    let value = p50.split(['┆', '│']).nth(3).unwrap().trim();
    assert_eq!(value.split_once('.').unwrap().1.len(), 3, "{p50}");

    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["url"], url.as_str());
    assert_eq!(v["model"], "mock-a");
    assert_eq!(v["concurrency"], 4);
    assert_eq!(v["stream"], true);
    assert_eq!(v["requests"], 40);
    assert_eq!(v["errors"], 0);
    assert!(v["rps"].as_f64().unwrap() > 0.0);
    assert_rounded(&v["rps"], 2);
    assert_rounded(&v["output_tokens_per_second"], 2);
    for k in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][k].as_f64().unwrap() > 0.0, "{k}: {v}");
        assert_rounded(&v["latency_ms"][k], 3);
    }
    for k in ["p50", "p90", "p99"] {
        assert!(v["ttft_ms"][k].as_f64().unwrap() > 0.0, "{k}: {v}");
        assert_rounded(&v["ttft_ms"][k], 3);
    }
    assert!(v["output_tokens_per_second"].as_f64().unwrap() > 0.0);

    // Not streamed: no first token to time, so no TTFT or inter-token rows, and null in JSON.
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.stdout.contains("latency p50"), "{}", plain.stdout);
    for absent in ["TTFT", "inter-token"] {
        assert!(
            !plain.stdout.contains(absent),
            "{absent}:\n{}",
            plain.stdout
        );
    }
    assert_eq!(plain_json.code, 0, "{}", plain_json.stderr);
    let v: serde_json::Value = serde_json::from_str(&plain_json.stdout).unwrap();
    assert_eq!(v["stream"], false);
    assert!(v["ttft_ms"].is_null(), "{v}");
    assert!(v["inter_token_ms"].is_null(), "{v}");
    assert!(v["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_compare_sends_n_to_each_and_labels_the_ratio() {
    let router = start_router(MOCKS).await;
    let other = start_router(MOCKS).await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let url2 = format!("http://{}", other.tcp_addr().unwrap());
    let (json, table) = tokio::task::spawn_blocking({
        let (url, url2) = (url.clone(), url2.clone());
        move || {
            let base = [
                "bench",
                "--url",
                &url,
                "--compare",
                &url2,
                "-m",
                "mock-a",
                "-n",
                "41",
                "-c",
                "2",
            ];
            (run(bin().args(base).arg("--json")), run(bin().args(base)))
        }
    })
    .await
    .unwrap();
    assert_eq!(json.code, 0, "{}", json.stderr);
    let c: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(c["a"]["url"], url.as_str());
    assert_eq!(c["b"]["url"], url2.as_str());
    assert_eq!(c["a"]["requests"], 41);
    assert_eq!(c["b"]["requests"], 41);
    assert_eq!(c["model"], "mock-a");
    assert_eq!(c["concurrency"], 2);
    assert_eq!(c["ratios"]["divides"], "b / a");
    assert!(c["ratios"]["rps"].as_f64().unwrap() > 0.0);
    assert!(c["ratios"]["ttft_p50"].is_null(), "not streamed: {c}");

    assert_eq!(table.code, 0, "{}", table.stderr);
    let header = table.stdout.lines().nth(1).unwrap();
    assert!(header.contains("B / A"), "{}", table.stdout);
    assert!(header.contains(&format!("A: {url}")), "{}", table.stdout);
    assert!(header.contains(&format!("B: {url2}")), "{}", table.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_failures_show_what_the_server_said() {
    let router = start_router(
        "backends:\n  - {name: one, type: mock, models: [ok, flaky], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n  - {name: broken, type: mock, models: [broken], mock: {first_token_latency: 0ms, fail_rate: 1.0}}\nretry: {max_attempts: 1}\n",
    )
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let (missing, missing_json, broken) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            (
                run(bin().args(["bench", "--url", &url, "-m", "nope", "-n", "5"])),
                run(bin().args(["bench", "--url", &url, "-m", "nope", "-n", "5", "--json"])),
                run(bin().args(["bench", "--url", &url, "-m", "broken", "-n", "3"])),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(missing.code, 1);
    let said = "404 the model 'nope' does not exist or is not served by any backend";
    assert!(
        missing
            .stderr
            .contains(&format!("every request to {url} failed: {said}")),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stdout.contains(&format!("5 × {said}")),
        "{}",
        missing.stdout
    );
    assert_eq!(missing_json.code, 1);
    let v: serde_json::Value = serde_json::from_str(&missing_json.stdout).unwrap();
    assert_eq!(v["error_messages"][said], 5, "{v}");
    assert_eq!(v["statuses"]["404"], 5, "{v}");

    assert_eq!(broken.code, 1);
    assert!(
        broken.stderr.contains("500 mock backend: injected failure"),
        "{}",
        broken.stderr
    );
}

#[test]
fn bench_refuses_an_empty_run() {
    for (args, said) in [
        (["-n", "0"], "--requests <N>': must be at least 1"),
        (["-c", "0"], "--concurrency <N>': must be at least 1"),
        (
            ["-d", "0s"],
            "--duration <DURATION>': must be longer than 0",
        ),
    ] {
        let out = run(bin()
            .args(["bench", "--url", "http://127.0.0.1:1", "-m", "m"])
            .args(args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(said), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn bench_overhead_measures_the_router_against_an_in_process_backend() {
    let out = run(bin().args(["bench", "--overhead", "-n", "40", "-c", "2", "--json"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["direct"]["requests"], 40, "-n 40 each way: {v}");
    assert_eq!(v["router"]["requests"], 40, "-n 40 each way: {v}");
    assert_eq!(v["router"]["errors"], 0);
    assert_eq!(v["model"], "bench-model");
    assert!(v["router"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert!(v["added_ms"]["p50"].is_number());
    assert_rounded(&v["added_ms"]["p50"], 3);
    assert_eq!(v["ratios"]["divides"], "router / direct");
    assert!(v["ratios"]["rps"].as_f64().unwrap() > 0.0);

    let out = run(bin().args(["bench", "--overhead", "-n", "9", "-c", "1", "--stream"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let header = out.stdout.lines().nth(1).unwrap();
    assert!(header.contains("router / direct"), "{}", out.stdout);
    assert!(out.stdout.contains("TTFT p50"), "{}", out.stdout);
    assert!(
        out.stdout.contains("router added latency (µs): p50 ")
            && out.stdout.contains("9 requests each way"),
        "{}",
        out.stdout
    );
}
