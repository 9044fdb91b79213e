//! Large non-streamed replies that pass through unchanged are sent on as they arrive
//! (past a bounded buffer), so the router's memory does not grow with the reply.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::common::*;

const HEAD: usize = 3 << 20;

/// A backend whose non-streamed reply is `HEAD` bytes, then (only once `go` is notified)
/// a last piece: the router must send the head on before the backend finishes.
fn large_reply(go: Arc<Notify>) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let go = go.clone();
            async move {
                let s = futures_util::stream::unfold(0u8, move |step| {
                    let go = go.clone();
                    async move {
                        match step {
                            0 => Some((Ok::<_, std::io::Error>(vec![b' '; HEAD]), 1)),
                            1 => {
                                go.notified().await;
                                Some((b"{\"end\":true}".to_vec(), 2)).map(|(v, n)| (Ok(v), n))
                            }
                            _ => None,
                        }
                    }
                });
                ([("content-type", "application/json")], Body::from_stream(s))
            }
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_whole_reply_is_sent_on_before_the_backend_finishes() {
    let go = Arc::new(Notify::new());
    let upstream = spawn_upstream(large_reply(go.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: big, url: 'http://{upstream}', models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    conn.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The head arrives while the backend still holds the last piece back.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let read_head = tokio::time::timeout(Duration::from_secs(20), async {
        while got.len() < HEAD {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed early");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(
        read_head.is_ok(),
        "the router held the whole reply back ({} bytes arrived)",
        got.len()
    );
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got[..64])
    );
    go.notify_one();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got.ends_with(b"{\"end\":true}")
            || String::from_utf8_lossy(&got).contains("{\"end\":true}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_whole_reply_is_still_one_piece_with_a_clean_error_on_timeout() {
    // A reply that stalls before its end (and below the buffer) is a clean 504, as before.
    let go = Arc::new(Notify::new());
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let go = go.clone();
            async move {
                let s = futures_util::stream::unfold(0u8, move |step| {
                    let go = go.clone();
                    async move {
                        match step {
                            0 => Some((Ok::<_, std::io::Error>(b"{\"partial\":".to_vec()), 1)),
                            1 => {
                                go.notified().await;
                                None
                            }
                            _ => None,
                        }
                    }
                });
                ([("content-type", "application/json")], Body::from_stream(s))
            }
        }),
    );
    let upstream = spawn_upstream(app).await;
    let router = start_router(&format!(
        "timeouts:\n  request:\n    standard: {{first_byte: 2s, total: 300ms}}\nretry: {{max_attempts: 1}}\nbackends:\n  - {{name: stall, url: 'http://{upstream}', models: [m]}}\n"
    ))
    .await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(r.status, 504, "{:?}", r.body);
}
