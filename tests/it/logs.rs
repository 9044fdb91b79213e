//! What `serve` and the CLI write to the log: one access line per request (and none when
//! turned off), colour only when wanted (`--color`, `NO_COLOR`), every error once, login
//! errors naming the backend and key, and a URL built from a `${VAR:-default}` whose
//! variable is unset.

use std::time::Duration;

use crate::common::*;

const MOCK: &str = "backends:\n  - {name: one, type: mock, models: [mock-a], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";

fn serve_with(dir: &std::path::Path, yaml: &str, extra: &[&str]) -> ServeProcess {
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!("server: {{bind_address: \"127.0.0.1:0\"}}\n{yaml}"),
    )
    .unwrap();
    ServeProcess::start(bin().args(["serve", "-c"]).arg(&file).args(extra), 1)
}

/// Lines of `p`'s log until one contains `needle` (or 10 s pass).
fn wait_for(p: &mut ServeProcess, needle: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(line) = p.next_line(Duration::from_millis(200)) {
            if line.contains(needle) {
                return Some(line);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_access_line_per_request_with_model_backend_status_and_tokens() {
    let dir = temp_dir("access-log");
    let mut p = serve_with(&dir, MOCK, &["--log-format", "json"]);
    let addr = p.tcp_addr();
    let r = chat(
        addr,
        r#"{"model":"mock-a","messages":[{"role":"user","content":"one two three"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").to_string();
    let line = tokio::task::spawn_blocking(move || {
        let line = wait_for(&mut p, "/v1/chat/completions");
        (line, p)
    })
    .await
    .unwrap();
    let (line, mut p) = line;
    let line = line.expect("an access line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    let f = &v["fields"];
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(f["method"], "POST");
    assert_eq!(f["path"], "/v1/chat/completions");
    assert_eq!(f["model"], "mock-a");
    assert_eq!(f["backend"], "one");
    assert_eq!(f["status"], 200);
    assert_eq!(f["request_id"], id.as_str());
    assert!(f["latency_ms"].as_f64().is_some(), "{line}");
    assert!(f["input_tokens"].as_u64().unwrap() > 0, "{line}");
    assert!(f["output_tokens"].as_u64().unwrap() > 0, "{line}");
    // Requests off the pipeline are logged too, with what is known.
    let r = get_path(addr, "/v1/models/nope").await;
    assert_eq!(r.status, 404);
    let line = tokio::task::spawn_blocking(move || wait_for(&mut p, "/v1/models/nope"))
        .await
        .unwrap()
        .expect("an access line for the 404");
    assert!(
        line.contains("\"status\":404") && line.contains("\"model\":\"-\""),
        "{line}"
    );

    // Turned off: no line.
    let dir = temp_dir("access-log-off");
    let p = serve_with(
        &dir,
        &format!("logging: {{access_log: false}}\n{MOCK}"),
        &[],
    );
    let addr = p.tcp_addr();
    let r = chat(
        addr,
        r#"{"model":"mock-a","messages":[{"role":"user","content":"x"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let rest = tokio::task::spawn_blocking(move || rest_of_log(p))
        .await
        .unwrap();
    assert!(
        !rest.iter().any(|l| l.contains("/v1/chat/completions")),
        "an access line with access_log: false: {rest:?}"
    );
}

/// Stops `p` and returns every line it logged.
fn rest_of_log(mut p: ServeProcess) -> Vec<String> {
    p.terminate();
    assert_eq!(p.wait_exit(Duration::from_secs(20)), 0);
    while p.next_line(Duration::from_millis(500)).is_some() {}
    p.seen.clone()
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let dir = temp_dir("colour");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!("server: {{bind_address: \"127.0.0.1:0\"}}\n{MOCK}"),
    )
    .unwrap();
    // Into a pipe: no colour unless --color always.
    let mut p = ServeProcess::start(bin().args(["serve", "-c"]).arg(&file), 1);
    assert!(!p.seen.join("\n").contains('\u{1b}'), "{:?}", p.seen);
    p.terminate();
    p.wait_exit(Duration::from_secs(20));
    let mut p = ServeProcess::start(
        bin().args(["serve", "--color", "always", "-c"]).arg(&file),
        1,
    );
    assert!(p.seen.join("\n").contains("\u{1b}["), "{:?}", p.seen);
    p.terminate();
    p.wait_exit(Duration::from_secs(20));
    // On a terminal: colour, unless NO_COLOR or --color never.
    for (no_color, flag, coloured) in [
        (false, "auto", true),
        (true, "auto", false),
        (false, "never", false),
    ] {
        use expectrl::Expect;
        let mut cmd = bin();
        cmd.args(["serve", "--color", flag, "-c"]).arg(&file);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut s = expectrl::Session::spawn(cmd).unwrap();
        s.set_expect_timeout(Some(Duration::from_secs(20)));
        let found = s.expect(expectrl::Regex("listening on [^\r\n]*")).unwrap();
        let before = String::from_utf8_lossy(found.before()).into_owned()
            + &String::from_utf8_lossy(found.as_bytes());
        assert_eq!(
            before.contains("\u{1b}["),
            coloured,
            "NO_COLOR {no_color}, --color {flag}: {before:?}"
        );
        s.send(expectrl::ControlCode::EndOfText).unwrap();
        s.expect(expectrl::Eof).unwrap();
    }
}

#[test]
fn a_failed_start_is_said_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = temp_dir("said-once");
    let file = dir.join("config.yaml");
    std::fs::write(&file, MOCK).unwrap();
    let out = run(bin().args(["serve", "--bind", &addr, "-c"]).arg(&file));
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.matches(&addr).count(), 1, "{}", out.stderr);
}

#[test]
fn a_url_from_an_unset_variables_default_is_warned_about() {
    let dir = temp_dir("defaulted-url");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "backends:\n  - {name: local, type: ollama, url: \"${MY_OLLAMA_URL:-http://localhost:11434}\", models: [m]}\n",
    )
    .unwrap();
    let out = run(bin()
        .env_remove("MY_OLLAMA_URL")
        .args(["config", "validate", "-c"])
        .arg(&file));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "warning: backends[0].url: MY_OLLAMA_URL is unset; using the default 'http://localhost:11434'"
        ) || out.stderr.contains("backends[0].url: MY_OLLAMA_URL is unset; using the default 'http://localhost:11434'"),
        "{}",
        out.stderr
    );
    let out = run(bin()
        .env("MY_OLLAMA_URL", "http://127.0.0.1:11434")
        .args(["config", "validate", "-c"])
        .arg(&file));
    assert!(!out.stderr.contains("is unset"), "{}", out.stderr);
}
