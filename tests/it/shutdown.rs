//! `continuum serve` shutting down: the drain log says how many requests are in flight, a
//! second Ctrl-C or SIGTERM exits at once, and streams still open when the grace time
//! ends get an error event in their client's protocol before the connection closes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::common::*;

/// An OpenAI-compatible upstream whose chat streams never end (a chunk every 50 ms).
async fn endless_upstream() -> SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let chunks = futures_util::stream::unfold(0u32, |i| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let chunk = format!(
                    "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}},\"finish_reason\":null}}]}}\n\n"
                );
                Some((Ok::<_, Infallible>(Bytes::from(chunk)), i + 1))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(chunks),
            )
        }),
    );
    spawn_upstream(app).await
}

/// `continuum serve` with `shutdown_grace`, in front of `up`.
fn serve(name: &str, up: SocketAddr, grace: &str) -> (ServeProcess, std::path::PathBuf) {
    let dir = temp_dir(name);
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{shutdown_grace: {grace}}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
        ),
    )
    .unwrap();
    let p = ServeProcess::start(
        bin()
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(&config),
        1,
    );
    (p, dir)
}

/// Starts a streamed request at `path` and returns its body once the first bytes came.
async fn open_stream(addr: SocketAddr, path: &str, body: &'static str) -> hyper::body::Incoming {
    let client = continuum::backend::build_client(1, Duration::from_secs(5));
    let mut req = http::Request::new(Full::new(Bytes::from_static(body.as_bytes())));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = format!("http://{addr}{path}").parse().unwrap();
    req.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(!first.into_data().unwrap().is_empty());
    body
}

const OPENAI: &str =
    r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"go on"}]}"#;
const ANTHROPIC: &str = r#"{"model":"m","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"go on"}]}"#;

/// Waits for a stderr line containing `text`.
fn wait_line(p: &mut ServeProcess, text: &str) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if let Some(line) = p.next_line(Duration::from_millis(100)) {
            if line.contains(text) {
                return line;
            }
        }
    }
    panic!("no line with {text:?}; stderr:\n{}", p.seen.join("\n"));
}

fn signal(p: &ServeProcess, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_during_the_drain_exits_at_once() {
    let up = endless_upstream().await;
    for (first, second, named) in [("-TERM", "-INT", "Ctrl-C"), ("-INT", "-TERM", "SIGTERM")] {
        let (mut p, dir) = serve("second-signal", up, "30s");
        let _open = open_stream(p.tcp_addr(), "/v1/chat/completions", OPENAI).await;
        signal(&p, first);
        let line = wait_line(&mut p, "draining:");
        assert!(
            line.contains("draining: 1 request(s) in flight, waiting up to 30s"),
            "{line}"
        );
        let asked = std::time::Instant::now();
        signal(&p, second);
        let code = tokio::task::spawn_blocking(move || {
            let code = p.wait_exit(Duration::from_secs(5));
            (code, p)
        })
        .await
        .unwrap();
        let (code, mut p) = code;
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(code, 1);
        while p.next_line(Duration::from_millis(200)).is_some() {}
        assert!(
            p.seen.iter().any(|l| l.contains(&format!(
                "second signal ({named}): exiting now with 1 request(s) in flight"
            ))),
            "{}",
            p.seen.join("\n")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Reads a body to its end (at most 10 s).
async fn rest_of(mut body: hyper::body::Incoming) -> String {
    let mut text = Vec::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => text.extend_from_slice(&f.into_data().unwrap_or_default()),
                Err(e) => panic!("the stream broke instead of ending: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the stream never ended");
    String::from_utf8(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_open_when_the_grace_time_ends_get_an_error_event() {
    let up = endless_upstream().await;
    let (mut p, dir) = serve("grace-cut", up, "300ms");
    let addr = p.tcp_addr();
    let openai = open_stream(addr, "/v1/chat/completions", OPENAI).await;
    let anthropic = open_stream(addr, "/v1/messages", ANTHROPIC).await;
    p.terminate();
    let line = wait_line(&mut p, "draining:");
    assert!(line.contains("draining: 2 request(s) in flight"), "{line}");
    let (openai, anthropic) = tokio::join!(rest_of(openai), rest_of(anthropic));

    // OpenAI's stream: chunks, then `data: {"error":…}`, never [DONE].
    let last = openai.trim_end().rsplit("\n\n").next().unwrap();
    let event: serde_json::Value =
        serde_json::from_str(last.strip_prefix("data: ").unwrap_or(last)).unwrap();
    assert_eq!(event["error"]["code"], "shutting_down", "{openai}");
    assert!(!openai.contains("[DONE]"), "{openai}");
    assert!(openai.contains("t1 "), "{openai}");

    // Anthropic's stream: `event: error`, never message_stop.
    let last = anthropic.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\n"), "{anthropic}");
    assert!(last.contains("shutting down"), "{anthropic}");
    assert!(!anthropic.contains("message_stop"), "{anthropic}");

    let code = tokio::task::spawn_blocking(move || {
        let code = p.wait_exit(Duration::from_secs(10));
        (code, p)
    })
    .await
    .unwrap();
    let (code, mut p) = code;
    assert_eq!(code, 0, "exit 0 once shutdown_grace passed");
    while p.next_line(Duration::from_millis(200)).is_some() {}
    assert!(
        p.seen.iter().any(|l| l.contains(
            "shutdown grace time (300ms) passed with 2 request(s) in flight: ending open streams with an error event"
        )),
        "{}",
        p.seen.join("\n")
    );
    std::fs::remove_dir_all(dir).unwrap();
}
