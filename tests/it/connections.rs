//! Connection hygiene against hostile or broken clients, over raw TCP sockets: header,
//! body, keep-alive and client-write timeouts; the connection cap that sheds idle and slow
//! connections first (and answers 503 when nothing can go); pipelined requests; a client
//! that never reads holds back the backend instead of filling the router.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

const MOCK: &str =
    "backends:\n  - {name: demo, type: mock, models: [mock-model], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";
const HEALTH: &str = "GET /health HTTP/1.1\r\nhost: x\r\n\r\n";

/// A chat request with a body of `body`, its content-length `extra` bytes more than sent.
fn chat_request(body: &str, extra: usize, close: bool) -> String {
    let connection = if close { "connection: close\r\n" } else { "" };
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{connection}content-length: {}\r\n\r\n{body}",
        body.len() + extra
    )
}

const CHAT: &str = r#"{"model":"mock-model","messages":[{"role":"user","content":"hi"}]}"#;

/// Reads until `needle` was seen `times` times, the peer closes, or `wait` passes.
async fn read_until(s: &mut TcpStream, needle: &str, times: usize, wait: Duration) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).matches(needle).count() >= times {
                break;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

/// How long until the router closes `s` (reading and discarding what it sends), or `None`
/// if it is still open after `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 8192];
    tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// Whether the router has closed `s` by now (a read would see the end at once).
async fn is_closed(s: &mut TcpStream) -> bool {
    closed_within(s, Duration::from_millis(100)).await.is_some()
}

/// A connection that asked for /health and read the whole answer: idle, kept alive.
async fn idle_connection(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(HEALTH.as_bytes()).await.unwrap();
    let got = read_until(&mut s, "\"ok\"}", 1, Duration::from_secs(5)).await;
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("\"ok\"}"),
        "{got:?}"
    );
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_closed_after_header_read_timeout() {
    let router = start_router(&format!("server: {{header_read_timeout: 300ms}}\n{MOCK}")).await;
    let addr = router.tcp_addr().unwrap();

    // Never sends a byte.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Sends its headers a byte every 50 ms: progress, but far too slow.
    let mut drip = TcpStream::connect(addr).await.unwrap();
    let dripping = tokio::spawn(async move {
        for b in HEALTH.bytes().take(30) {
            if drip.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drip
    });

    let after = closed_within(&mut silent, Duration::from_secs(5)).await;
    let after = after.expect("a connection that sends nothing is never closed");
    assert!(
        after >= Duration::from_millis(200),
        "closed too early: {after:?}"
    );
    let mut drip = dripping.await.unwrap();
    assert!(
        is_closed(&mut drip).await,
        "a connection dripping its headers byte by byte is kept open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_keep_alive_timeout() {
    let router = start_router(&format!(
        "server: {{keep_alive_timeout: 300ms, header_read_timeout: 10s}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut s = idle_connection(addr).await;
    let after = closed_within(&mut s, Duration::from_secs(5)).await;
    let after = after.expect("an idle kept-alive connection is never closed");
    assert!(
        after >= Duration::from_millis(200),
        "closed too early: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_time_does_not_count_against_the_next_requests_headers() {
    let router = start_router(&format!(
        "server: {{keep_alive_timeout: 10s, header_read_timeout: 300ms}}\n{MOCK}"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut s = idle_connection(addr).await;
    // Idle for longer than the header timeout: still open, and the next request is served.
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.write_all(HEALTH.as_bytes()).await.unwrap();
    let got = read_until(&mut s, "HTTP/1.1 200", 1, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_stops_arriving_gets_408_after_body_read_timeout() {
    let router = start_router(&format!("server: {{body_read_timeout: 300ms}}\n{MOCK}")).await;
    let addr = router.tcp_addr().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Content-Length promises 100 bytes more than are sent.
    s.write_all(chat_request(CHAT, 100, false).as_bytes())
        .await
        .unwrap();
    let start = Instant::now();
    let got = read_until(&mut s, "body_read_timeout", 1, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("request_timeout"), "{got}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(
        closed_within(&mut s, Duration::from_secs(5))
            .await
            .is_some(),
        "the connection stays open after a broken body"
    );
}

/// A connection that started a request's headers and sends no more.
async fn slow_connection(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /hea").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s
}

/// A chat request on a new connection kept open after the answer: its status line.
async fn kept_request(addr: SocketAddr) -> (String, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(chat_request(CHAT, 0, false).as_bytes())
        .await
        .unwrap();
    let got = read_until(&mut s, "chat.completion\"", 1, Duration::from_secs(5)).await;
    (got.lines().next().unwrap_or("").to_string(), s)
}

// A connection still sending its headers after 1 s is slow (the header timeout is longer).
const CAPPED: &str = "header_read_timeout: 5s, keep_alive_timeout: 60s";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room_first() {
    let router = start_router(&format!("server: {{max_connections: 3, {CAPPED}}}\n{MOCK}")).await;
    let addr = router.tcp_addr().unwrap();
    let mut slow = slow_connection(addr).await;
    let mut idle_a = idle_connection(addr).await;
    let mut idle_b = idle_connection(addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Three open, the cap: a new one is served, and the longest idle made room for it,
    // not the slow one, older as it is.
    let (status, _e) = kept_request(addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(is_closed(&mut idle_a).await, "the longest idle goes first");
    assert!(!is_closed(&mut idle_b).await);
    assert!(
        !is_closed(&mut slow).await,
        "idle connections go before slow ones"
    );
    let (status, _f) = kept_request(addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(is_closed(&mut idle_b).await);
    assert!(
        !is_closed(&mut slow).await,
        "idle connections go before slow ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_slow_connections_make_room() {
    let router = start_router(&format!("server: {{max_connections: 2, {CAPPED}}}\n{MOCK}")).await;
    let addr = router.tcp_addr().unwrap();
    let mut slow_a = slow_connection(addr).await;
    let mut slow_b = slow_connection(addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _c) = kept_request(addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(is_closed(&mut slow_a).await, "the slowest goes first");
    assert!(!is_closed(&mut slow_b).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_with_every_connection_busy_a_new_one_gets_503_at_once() {
    // A backend that never answers keeps two requests busy.
    let hang = axum::Router::new().route(
        "/v1/chat/completions",
        post(std::future::pending::<&'static str>),
    );
    let up = spawn_upstream(hang).await;
    let router = start_router(&format!(
        "server: {{max_connections: 2}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [mock-model]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(chat_request(CHAT, 0, false).as_bytes())
            .await
            .unwrap();
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let mut third = TcpStream::connect(addr).await.unwrap();
    let _ = third
        .write_all(chat_request(CHAT, 0, false).as_bytes())
        .await;
    let got = read_until(&mut third, "max_connections", 1, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
    assert!(got.to_lowercase().contains("retry-after: 1"), "{got}");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(closed_within(&mut third, Duration::from_secs(2))
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_in_one_write_are_all_answered() {
    let router = start_router(MOCK).await;
    let addr = router.tcp_addr().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let post = chat_request(CHAT, 0, false);
    s.write_all(format!("{HEALTH}{post}{HEALTH}{post}").as_bytes())
        .await
        .unwrap();
    let got = read_until(&mut s, "chat.completion\"", 2, Duration::from_secs(5)).await;
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 4, "{got}");
    assert_eq!(got.matches("chat.completion\"").count(), 2, "{got}");
}

/// An OpenAI-compatible backend streaming 4 KB events as fast as it may: the bytes its
/// stream handed out, and whether the stream was dropped (its request cancelled).
fn endless_stream(written: Arc<AtomicUsize>, dropped: Arc<AtomicBool>) -> axum::Router {
    struct Guard(Arc<AtomicBool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let (written, guard) = (written.clone(), Guard(dropped.clone()));
            async move {
                let event = Bytes::from(format!(
                    "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
                    "a".repeat(4000)
                ));
                let stream = futures_util::stream::unfold(guard, move |guard| {
                    let (event, written) = (event.clone(), written.clone());
                    async move {
                        written.fetch_add(event.len(), Ordering::SeqCst);
                        Some((Ok::<_, std::convert::Infallible>(event), guard))
                    }
                });
                (
                    [("content-type", "text/event-stream")],
                    axum::body::Body::from_stream(stream),
                )
            }
        }),
    )
}

const STREAM: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_holds_back_the_backend_and_is_dropped_after_client_write_timeout(
) {
    let (written, dropped) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let up = spawn_upstream(endless_stream(written.clone(), dropped.clone())).await;
    let router = start_router(&format!(
        "server: {{client_write_timeout: 500ms}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(chat_request(STREAM, 0, false).as_bytes())
        .await
        .unwrap();

    // Never read: the backend is held back once the buffers on the way are full, and the
    // stalled client is dropped, which cancels the backend's stream.
    let start = Instant::now();
    while !dropped.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = written.load(Ordering::SeqCst);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the backend kept streaming to a client that reads nothing ({} MiB so far)",
        total >> 20
    );
    // What the backend got out: its own socket's send buffer (up to 4 MiB on loopback), the
    // router's receive and read buffers, and 128 KiB unsent to the client plus the client's
    // window; without the unsent cap, the router's send buffer takes megabytes more (about
    // 9 MiB in all).
    assert!(total < 6 << 20, "the backend wrote {} KiB", total >> 10);
    assert!(closed_within(&mut s, Duration::from_secs(5))
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_that_keeps_reading_is_not_dropped() {
    let (written, dropped) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let up = spawn_upstream(endless_stream(written, dropped.clone())).await;
    let router = start_router(&format!(
        "server: {{client_write_timeout: 1s}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(chat_request(STREAM, 0, false).as_bytes())
        .await
        .unwrap();
    // Takes 16 KB every 25 ms for 2 s: slow, but never stalled for the write timeout.
    let mut buf = vec![0u8; 16 << 10];
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the stream of a slow but reading client was cut");
    }
    assert!(!dropped.load(Ordering::SeqCst));
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_hold_a_bounded_amount_of_router_memory() {
    const STREAMS: usize = 32;
    let (written, dropped) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let up = spawn_upstream(endless_stream(written.clone(), dropped)).await;
    let dir = temp_dir("stalled");
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!("server: {{bind_address: \"127.0.0.1:0\", workers: 1}}\nlogging: {{access_log: false}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"),
    )
    .unwrap();
    let p = ServeProcess::start(bin().args(["serve", "--config"]).arg(&config), 1);
    let addr = p.tcp_addr();
    // One whole request first, so pools and buffers that every request uses exist.
    let mut warm = TcpStream::connect(addr).await.unwrap();
    warm.write_all(chat_request(STREAM, 0, false).as_bytes())
        .await
        .unwrap();
    let _ = read_until(&mut warm, "data:", 50, Duration::from_secs(5)).await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(p.child.id());

    let mut clients = Vec::new();
    for _ in 0..STREAMS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(chat_request(STREAM, 0, false).as_bytes())
            .await
            .unwrap();
        clients.push(s);
    }
    // Until the backend is held back: nothing more written for half a second.
    let start = Instant::now();
    let mut last = usize::MAX;
    while start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = written.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        last = now;
    }
    let grown = rss_kib(p.child.id()).saturating_sub(before);
    assert!(
        grown < STREAMS * 600,
        "{STREAMS} stalled streams grew the router by {grown} KiB ({} KiB each)",
        grown / STREAMS
    );
}

/// `continuum serve --config config` with an open-file limit of `files`.
fn serve_with_open_files(files: u32, config: &std::path::Path) -> ServeProcess {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n {files} && exec \"$0\" serve --config \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_continuum"))
        .arg(config);
    for var in [
        "CONTINUUM_CONFIG",
        "CONTINUUM_BIND_ADDRESS",
        "CONTINUUM_BACKEND_URLS",
        "CONTINUUM_LOG_LEVEL",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    ServeProcess::start(&mut cmd, 1)
}

/// Opens 100 kept-alive connections one after the other against a router whose open-file
/// limit is `files` (each is served), then checks a new request is served too; returns
/// how many of the 100 the router still holds open.
async fn past_the_descriptor_limit(files: u32, server: &str) -> usize {
    let dir = temp_dir("descriptors");
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!("server: {{bind_address: \"127.0.0.1:0\", {server}}}\nlogging: {{access_log: false}}\n{MOCK}"),
    )
    .unwrap();
    let p = serve_with_open_files(files, &config);
    let addr = p.tcp_addr();
    let mut open = Vec::new();
    for _ in 0..100 {
        open.push(idle_connection(addr).await);
    }
    let (status, _s) = kept_request(addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut still = 0;
    for s in &mut open {
        if !is_closed_now(s).await {
            still += 1;
        }
    }
    still
}

/// Whether the router has closed `s` (a quick look).
async fn is_closed_now(s: &mut TcpStream) -> bool {
    closed_within(s, Duration::from_millis(5)).await.is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auto_cap_comes_from_the_open_file_limit() {
    // 128 descriptors: a cap of (128 - 64) / 2 = 32.
    let open = past_the_descriptor_limit(128, "max_connections: auto").await;
    assert!(
        open <= 32,
        "{open} idle connections left open over a cap of 32"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_idle_connections_are_closed_to_keep_accepting() {
    // A cap far above what 64 descriptors allow: accepting fails, and idle connections
    // make room instead of new ones waiting in the backlog.
    let open = past_the_descriptor_limit(64, "max_connections: 1000").await;
    assert!(open < 64, "{open}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_upload_that_stops_arriving_gets_408_too() {
    let dir = temp_dir("upload-408");
    let router = start_router(&format!(
        "server: {{body_read_timeout: 300ms}}\nfiles: {{storage_path: '{}'}}\n{MOCK}",
        dir.display()
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let part = "--b\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n--b\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\ncontent-type: text/plain\r\n\r\nsome text";
    // Content-Length promises 100 bytes more than are sent.
    s.write_all(
        format!(
            "POST /v1/files HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=b\r\ncontent-length: {}\r\n\r\n{part}",
            part.len() + 100
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let got = read_until(&mut s, "body_read_timeout", 1, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("request_timeout"), "{got}");
}
