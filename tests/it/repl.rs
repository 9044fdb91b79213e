//! The `chat` REPL through a pseudo-terminal, as a person types: Ctrl-C at an idle prompt,
//! line-editing keys (Ctrl-A/E/U/W/K, arrows), history (up arrow, Ctrl-R search, kept in
//! the data directory), `/model` checked at once, `/models`, `/set`, multi-line input and Ctrl-D.

use std::time::Duration;

use axum::routing::post;
use serde_json::Value;

use crate::common::*;

/// An OpenAI-compatible backend whose answer describes the request it got: its
/// temperature, max_tokens and last user message (newlines shown as `|`).
fn describing_backend() -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(|body: axum::Json<Value>| async move {
            let last = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default()
                .replace('\n', "|");
            let text = format!(
                "temperature={} max_tokens={} last={last}",
                body["temperature"], body["max_tokens"]
            );
            let chunk = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "echo",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]});
            (
                [("content-type", "text/event-stream")],
                format!("data: {chunk}\n\ndata: [DONE]\n\n"),
            )
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repl_edits_lines_keeps_history_and_checks_commands() {
    let upstream = spawn_upstream(describing_backend()).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: one, type: mock, models: [mock-a], mock: {{first_token_latency: 0ms, tokens_per_second: 0}}}}\n  - {{name: echo, url: 'http://{upstream}', models: [echo]}}\n"
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let data = temp_dir("repl-data");
    let history = data.join("continuum/chat_history");
    tokio::task::spawn_blocking(move || {
        use expectrl::{ControlCode, Expect, Regex};
        let mut cmd = bin();
        cmd.env("XDG_DATA_HOME", &data)
            .args(["chat", "--url", &url, "-m", "mock-a"]);
        let mut p = expectrl::Session::spawn(cmd).unwrap();
        p.set_expect_timeout(Some(Duration::from_secs(20)));
        p.expect("you> ").unwrap();

        // Ctrl-C at an idle prompt is a hint, and the next question gets its answer.
        p.send(ControlCode::EndOfText).unwrap();
        p.expect("(Ctrl-C stops an answer; /exit or Ctrl-D leaves)")
            .unwrap();
        p.expect("you> ").unwrap();
        p.send_line("after ctrl c").unwrap();
        let got = p
            .expect(Regex("after ctrl c[^\n]*\n[^\n]*after ctrl c|cancelled"))
            .unwrap();
        assert!(
            !String::from_utf8_lossy(got.as_bytes()).contains("cancelled"),
            "the question after an idle Ctrl-C was cancelled"
        );
        p.expect("you> ").unwrap();

        // Ctrl-U erases the line typed so far; Ctrl-A and Ctrl-E move to its ends.
        p.send("xyz").unwrap();
        p.send(ControlCode::NegativeAcknowledge).unwrap();
        p.send_line("/model nope").unwrap();
        p.expect("does not serve a model 'nope'; /models lists them (still mock-a)")
            .unwrap();
        p.expect("you> ").unwrap();
        p.send("ello").unwrap();
        p.send(ControlCode::StartOfHeading).unwrap();
        p.send("h").unwrap();
        p.send(ControlCode::Enquiry).unwrap();
        p.send_line(" world").unwrap();
        p.expect(Regex("\nhello world")).unwrap();
        p.expect("you> ").unwrap();
        // Ctrl-W erases the word before the cursor.
        p.send("one two three\x17").unwrap();
        p.send_line("four").unwrap();
        p.expect(Regex("\none two four")).unwrap();
        p.expect("you> ").unwrap();
        // The left arrow moves the cursor; Ctrl-K cuts the line from it to the end.
        p.send("keep drop").unwrap();
        p.send("\x1b[D".repeat(5)).unwrap();
        p.send("\x0b").unwrap();
        p.send_line("!").unwrap();
        p.expect(Regex("\nkeep!")).unwrap();
        p.expect("you> ").unwrap();
        // Ctrl-R searches the history; Enter sends what it found.
        p.send("\x12").unwrap();
        p.send("lo w").unwrap();
        p.expect("hello world").unwrap();
        p.send("\r").unwrap();
        p.expect(Regex("\nhello world")).unwrap();
        p.expect("you> ").unwrap();

        p.send_line("/models").unwrap();
        p.expect("* mock-a").unwrap();
        p.expect("  echo").unwrap();
        p.send_line("/model echo").unwrap();
        p.expect("model: echo").unwrap();
        p.send_line("/set temperature 3").unwrap();
        p.expect("temperature '3' is not a number from 0 to 2")
            .unwrap();
        p.send_line("/set temperature 0.5").unwrap();
        p.expect("temperature = 0.5").unwrap();
        p.send_line("/set max_tokens 7").unwrap();
        p.expect("max_tokens = 7").unwrap();
        p.expect("you> ").unwrap();
        // A line ending in a backslash goes on.
        p.send_line("first\\").unwrap();
        p.expect("...").unwrap();
        p.send_line("second").unwrap();
        p.expect("temperature=0.5 max_tokens=7 last=first|second")
            .unwrap();
        p.expect("you> ").unwrap();
        p.send_line("/set max_tokens default").unwrap();
        p.expect("max_tokens: the model's default").unwrap();
        // The up arrow brings back the last question.
        p.send_line("again").unwrap();
        p.expect("last=again").unwrap();
        p.expect("you> ").unwrap();
        p.send("\x1b[A").unwrap();
        p.send("\r").unwrap();
        p.expect("temperature=0.5 max_tokens=null last=again")
            .unwrap();
        p.expect("you> ").unwrap();
        // Ctrl-D at an empty prompt leaves.
        p.send(ControlCode::EndOfTransmission).unwrap();
        p.expect(expectrl::Eof).unwrap();
    })
    .await
    .unwrap();
    let saved = std::fs::read_to_string(&history).expect("history saved in XDG_DATA_HOME");
    assert!(saved.contains("hello world"), "{saved}");
    assert!(saved.contains("one two four"), "{saved}");
    assert!(saved.contains("keep!"), "{saved}");
    for erased in ["xyz", "three", "drop"] {
        assert!(!saved.contains(erased), "{erased} in {saved}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_input_takes_the_same_commands() {
    let upstream = spawn_upstream(describing_backend()).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: echo, url: 'http://{upstream}', models: [echo]}}\n"
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let out = tokio::task::spawn_blocking(move || {
        run_with_input(
            bin().args(["chat", "--url", &url, "-m", "echo"]),
            b"/set temperature 0.25\none\\\ntwo\n/model nope\n",
        )
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "temperature=0.25 max_tokens=null last=one|two\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not serve a model 'nope'"), "{stderr}");
}
