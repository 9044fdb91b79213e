//! Output piped into a reader that stops early (`| head`): the command exits 0 quietly,
//! and a streamed answer nobody reads is cancelled upstream rather than generated to the end.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;

use crate::common::*;

/// Counts the chunks it sent, and notes when its stream was dropped (the reader left).
struct Sent {
    chunks: AtomicUsize,
    dropped: AtomicBool,
}

struct DropFlag(Arc<Sent>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

const CHUNKS: usize = 3000;

/// An OpenAI-compatible backend streaming `CHUNKS` chunks, one every 2 ms.
fn slow_stream(sent: Arc<Sent>) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let sent = sent.clone();
            async move {
                let flag = DropFlag(sent.clone());
                let s = futures_util::stream::unfold((0usize, flag), |(i, flag)| async move {
                    if i == CHUNKS {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    flag.0.chunks.fetch_add(1, Ordering::SeqCst);
                    let line = format!(
                        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}]}}\n\n"
                    );
                    Some((Ok::<_, std::io::Error>(line), (i + 1, flag)))
                });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(s),
                )
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_into_head_exits_quietly_and_cancels_the_answer() {
    let sent = Arc::new(Sent {
        chunks: AtomicUsize::new(0),
        dropped: AtomicBool::new(false),
    });
    let upstream = spawn_upstream(slow_stream(sent.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: slow, url: 'http://{upstream}', models: [m]}}\n"
    ))
    .await;
    let url = format!("http://{}", router.tcp_addr().unwrap());
    let exe = env!("CARGO_BIN_EXE_continuum");
    let out = tokio::task::spawn_blocking(move || {
        run(std::process::Command::new("bash").args([
            "-c",
            &format!("'{exe}' chat --url {url} -m m hi | head -c 10; echo \" status=${{PIPESTATUS[0]}}\""),
        ]))
    })
    .await
    .unwrap();
    assert_eq!(
        out.stdout, "word0 word status=0\n",
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.stderr, "", "quiet on a closed pipe");
    // The router saw the client leave and dropped the backend's stream long before its end.
    for _ in 0..500 {
        if sent.dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        sent.dropped.load(Ordering::SeqCst),
        "the backend stream was never dropped"
    );
    let chunks = sent.chunks.load(Ordering::SeqCst);
    assert!(
        chunks < CHUNKS,
        "the whole answer was generated ({chunks} chunks)"
    );
}

#[test]
fn printing_commands_into_head_exit_quietly() {
    let dir = temp_dir("pipes-migrate");
    let file = dir.join("old.yaml");
    std::fs::write(
        &file,
        "bind_address: 0.0.0.0:8080\nbackend_urls:\n  - http://localhost:11434\n  - http://localhost:1234\n",
    )
    .unwrap();
    let current = dir.join("current.yaml");
    std::fs::write(&current, "backends:\n  - {name: demo, type: mock}\n").unwrap();
    let exe = env!("CARGO_BIN_EXE_continuum");
    for command in [
        format!("config migrate --dry-run '{}'", file.display()),
        format!("config show --config '{}'", current.display()),
        format!("config show --json --config '{}'", current.display()),
        format!("config validate --config '{}'", current.display()),
        "config generate".to_string(),
        "completions bash".to_string(),
        "man".to_string(),
        "--help".to_string(),
    ] {
        let out = run(std::process::Command::new("bash").args([
            "-c",
            // The reader is gone before the command writes its first byte.
            &format!("{{ sleep 0.3; '{exe}' {command}; }} | true; echo \"${{PIPESTATUS[0]}}\""),
        ]));
        assert_eq!(out.stdout.trim(), "0", "{command}: stderr {}", out.stderr);
        assert_eq!(out.stderr, "", "{command}");
    }
}
