//! `continuum serve` as a process: sockets, signals, environment and priority.

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use axum::body::Body;
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tcp_and_a_unix_socket_replacing_a_stale_one() {
    let dir = temp_dir("unix");
    let sock = dir.join("continuum.sock");
    // A socket file left behind by a crashed process.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  bind_address: [\"127.0.0.1:0\", \"unix:{}\"]\n  socket_mode: 0o600\nbackends:\n  - {{name: demo, type: mock, models: [mock-model], mock: {{first_token_latency: 1ms}}}}\n",
            sock.display()
        ),
    )
    .unwrap();
    let mut p = ServeProcess::start(bin().args(["serve", "--config"]).arg(&config), 2);
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post("/v1/chat/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"mock-model","messages":[{"role":"user","content":"over unix"}]}"#,
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "over unix");
    assert_eq!(get_path(p.tcp_addr(), "/health").await.status, 200);

    p.terminate();
    assert_eq!(
        tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(10)))
            .await
            .unwrap(),
        0
    );
    assert!(!sock.exists(), "the socket file is removed at exit");
    // A regular file in the way is never deleted.
    std::fs::write(&sock, "precious").unwrap();
    let out = run(bin().args(["serve", "--config"]).arg(&config));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not a socket"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&sock).unwrap(), "precious");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_open_stream_and_refuses_new_connections() {
    let app = axum::Router::new()
        .route(
            "/v1/models",
            axum::routing::get(|| async {
                axum::Json(
                    serde_json::json!({"object": "list", "data": [{"id": "m", "object": "model"}]}),
                )
            }),
        )
        .route(
            "/v1/chat/completions",
            post(|| async {
                let stream = futures_util::stream::unfold(0u32, |i| async move {
                    if i == 12 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let chunk = if i == 11 {
                        Bytes::from_static(b"data: [DONE]\n\n")
                    } else {
                        Bytes::from(format!("data: {{\"n\":{i}}}\n\n"))
                    };
                    Some((Ok::<_, Infallible>(chunk), i + 1))
                });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(stream),
                )
            }),
        );
    let up = spawn_upstream(app).await;
    let mut p = ServeProcess::start(
        bin().args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--backends",
            &format!("http://{up}"),
        ]),
        1,
    );
    // --backends servers have no model list: "m" is discovered from /v1/models.
    let addr = p.tcp_addr();
    let client = continuum::backend::build_client(1, Duration::from_secs(5));
    let mut req = http::Request::new(Full::new(Bytes::from_static(
        br#"{"model":"m","stream":true,"messages":[]}"#,
    )));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = format!("http://{addr}/v1/chat/completions")
        .parse()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: {\"n\":0}\n\n");

    p.terminate();
    // New connections are refused once the signal is handled.
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "new connections were still accepted after SIGTERM");
    let mut rest = Vec::new();
    while let Some(frame) = body.frame().await {
        rest.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.ends_with("data: [DONE]\n\n"),
        "the open stream finished: {rest}"
    );
    assert_eq!(
        tokio::task::spawn_blocking(move || p.wait_exit(Duration::from_secs(10)))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_command_line_override_the_file() {
    let dir = temp_dir("priority");
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        "server:\n  bind_address: \"unix:/nonexistent-dir/never.sock\"\nbackends:\n  - name: demo\n    type: mock\n    models: [\"${CONTINUUM_TEST_MODEL:-default-model}\", \"${CONTINUUM_TEST_UNSET_MODEL}\"]\nlogging:\n  level: error\n",
    )
    .unwrap();
    // The environment beats the file (bind address, log level), ${VAR} is substituted, and an
    // unset optional ${VAR} is simply left out.
    let p = ServeProcess::start(
        bin()
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&config)
            .env("CONTINUUM_BIND_ADDRESS", "127.0.0.1:0")
            .env("CONTINUUM_LOG_LEVEL", "info")
            .env("CONTINUUM_TEST_MODEL", "from-env"),
        1,
    );
    let models = get_path(p.tcp_addr(), "/v1/models").await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["from-env"]);
    for line in &p.seen {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
    drop(p);

    // The command line beats the environment, whose bad value is then never read.
    let p = ServeProcess::start(
        bin()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--log-level",
                "info",
                "--config",
            ])
            .arg(&config)
            .env("CONTINUUM_BIND_ADDRESS", "not-an-address"),
        1,
    );
    assert_eq!(get_path(p.tcp_addr(), "/health").await.status, 200);
    drop(p);

    // Without the flag, the bad environment value is an error naming the variable.
    let out = run(bin()
        .args(["serve", "--config"])
        .arg(&config)
        .env("CONTINUUM_BIND_ADDRESS", "not-an-address"));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("CONTINUUM_BIND_ADDRESS: 'not-an-address'"),
        "{}",
        out.stderr
    );
    // And the file's own unbindable address is reported with the address.
    let out = run(bin().args(["serve", "--config"]).arg(&config));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("unix:/nonexistent-dir/never.sock"),
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_command_line_form_serves() {
    let dir = temp_dir("legacy");
    let config = dir.join("config.yml");
    std::fs::write(&config, "backends:\n  - {name: demo, type: mock}\n").unwrap();
    let p = ServeProcess::start(
        bin()
            .arg("--config")
            .arg(&config)
            .args(["--bind", "127.0.0.1:0"]),
        1,
    );
    let r = chat(
        p.tcp_addr(),
        r#"{"model":"mock-model","messages":[{"role":"user","content":"legacy"}]}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "legacy");
    drop(p);
    std::fs::remove_dir_all(dir).unwrap();
}
