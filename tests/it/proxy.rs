//! The proxy path against OpenAI-compatible upstreams: routing, passthrough, errors.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::common::*;

/// What an upstream saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    headers: HeaderMap,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An OpenAI-compatible upstream that answers with its own name and records requests.
fn named_upstream(name: &'static str, log: Log) -> axum::Router {
    axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(move |State(log): State<Log>, headers: HeaderMap, body: Bytes| async move {
                let body: Value = serde_json::from_slice(&body).unwrap();
                let model = body["model"].clone();
                log.lock().unwrap().push(Seen { headers, body });
                axum::Json(json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": name}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                }))
            }),
        )
        .with_state(log)
}

fn backend_yaml(name: &str, addr: std::net::SocketAddr, models: &str) -> String {
    format!("  - name: {name}\n    type: vllm\n    url: http://{addr}\n    models: {models}\n")
}

const HELLO: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn round_robin_across_two_backends() {
    let log: Log = Default::default();
    let a = spawn_upstream(named_upstream("a", log.clone())).await;
    let b = spawn_upstream(named_upstream("b", log.clone())).await;
    let router = start_router(&format!(
        "backends:\n{}{}",
        backend_yaml("a", a, "[m]"),
        backend_yaml("b", b, "[m]")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let mut order = Vec::new();
    for _ in 0..4 {
        let r = chat(addr, HELLO).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            r.header("x-continuum-backend")
        );
        assert_eq!(r.header("x-continuum-model"), "m");
        order.push(r.header("x-continuum-backend").to_string());
    }
    assert_eq!(order, ["a", "b", "a", "b"]);
    assert_eq!(log.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn aliases_pins_request_ids_and_backend_headers() {
    let log: Log = Default::default();
    let a = spawn_upstream(named_upstream("a", log.clone())).await;
    let b = spawn_upstream(named_upstream("b", log.clone())).await;
    let yaml = format!(
        "backends:\n{}    api_key: sk-secret\n    headers: {{X-Team: research}}\n    model_aliases: {{fast: real}}\n{}",
        backend_yaml("a", a, "[real, m]"),
        backend_yaml("b", b, "[m]")
    );
    let router = start_router(&yaml).await;
    let addr = router.tcp_addr().unwrap();

    // An alias is rewritten to the backend's model name; every other byte is kept.
    let body = r#"{"model":"fast","messages":[{"role":"user","content":"hi"}],"extra":{"kept":[1,2.50,"x"]}}"#;
    let r = send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        body,
        &[
            ("x-request-id", "req-123"),
            ("authorization", "Bearer client-key"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-continuum-backend"), "a");
    assert_eq!(r.header("x-continuum-model"), "real");
    assert_eq!(r.header("x-request-id"), "req-123");
    let seen = log.lock().unwrap().pop().unwrap();
    assert_eq!(seen.body["model"], "real");
    assert_eq!(seen.body["extra"], json!({"kept": [1, 2.5, "x"]}));
    assert_eq!(seen.headers["x-request-id"], "req-123");
    assert_eq!(
        seen.headers["authorization"], "Bearer sk-secret",
        "the backend's key, never the client's"
    );
    assert_eq!(seen.headers["x-team"], "research");

    // BACKEND/model pins a backend.
    for _ in 0..3 {
        let r = chat(addr, r#"{"model":"b/m","messages":[]}"#).await;
        assert_eq!(r.header("x-continuum-backend"), "b");
        assert_eq!(log.lock().unwrap().pop().unwrap().body["model"], "m");
    }

    // Without an X-Request-ID one is generated, echoed and forwarded.
    let r = chat(addr, HELLO).await;
    let id = r.header("x-request-id").to_string();
    assert!(id.len() >= 16, "{id}");
    let seen = log.lock().unwrap().pop().unwrap();
    assert_eq!(seen.headers["x-request-id"], id.as_str());
    assert!(
        seen.headers.get("authorization").is_none()
            || seen.headers["authorization"] == "Bearer sk-secret"
    );
}

/// An upstream that streams `chunks` with a pause between them.
fn streaming_upstream(chunks: Vec<&'static [u8]>, pause: Duration) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let chunks = chunks.clone();
            async move {
                let stream =
                    futures_util::stream::unfold(chunks.into_iter(), move |mut it| async move {
                        let c = it.next()?;
                        tokio::time::sleep(pause).await;
                        Some((Ok::<_, Infallible>(Bytes::from_static(c)), it))
                    });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(stream),
                )
            }
        }),
    )
}

#[tokio::test]
async fn streaming_passthrough_is_byte_exact() {
    let chunks: Vec<&'static [u8]> = vec![
        b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n",
        b": keep-alive comment\r\n\r\n",
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\xc3\xa9llo \xe2\x9c\x93\"}}]}\n",
        b"\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],   \"usage\":null}\n\n",
        b"data: [DONE]\n\n",
    ];
    let expected: Vec<u8> = chunks.concat();
    let up = spawn_upstream(streaming_upstream(chunks, Duration::from_millis(20))).await;
    let router = start_router(&format!("backends:\n{}", backend_yaml("s", up, "[m]"))).await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert_eq!(r.header("x-continuum-backend"), "s");
    assert_eq!(&r.body[..], &expected[..]);
}

#[tokio::test]
async fn request_errors_have_openai_shape() {
    let log: Log = Default::default();
    let up = spawn_upstream(named_upstream("a", log)).await;
    let router = start_router(&format!(
        "server: {{max_body_size: \"1KB\"}}\nbackends:\n{}",
        backend_yaml("a", up, "[m]")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let cases: Vec<(String, StatusCode, &str, Option<&str>)> = vec![
        (
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("invalid_json"),
        ),
        (
            r#"{"messages":[]}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("missing_required_parameter"),
        ),
        (
            r#"{"model":"gpt-9","messages":[]}"#.into(),
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
        ),
        (
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
                "x".repeat(2000)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
        ),
    ];
    for (body, status, kind, code) in cases {
        let r = chat(addr, &body).await;
        assert_eq!(r.status, status, "{}", r.text());
        let e = &r.json()["error"];
        assert_eq!(e["type"], kind);
        assert_eq!(e["code"].as_str(), code);
        assert!(e["message"].as_str().unwrap().len() > 10);
        assert!(e.get("param").is_some());
        assert!(!r.header("x-request-id").is_empty());
    }
    // The server keeps serving after all that.
    assert_eq!(chat(addr, HELLO).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unreachable_backend_is_502() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // Without health checks, the connection error itself is the answer (after the retries).
    let router = start_router(&format!(
        "health_checks: {{enabled: false}}\nretry: {{initial_delay: 1ms, max_delay: 5ms}}\nbackends:\n{}",
        backend_yaml("gone", closed, "[m]")
    ))
    .await;
    let r = chat(router.tcp_addr().unwrap(), HELLO).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "backend_unreachable");
    assert!(e["message"].as_str().unwrap().contains("gone"), "{e}");
    assert!(
        !e["message"].as_str().unwrap().contains(&closed.to_string()),
        "no backend address for clients: {e}"
    );
    // With them (the default), the start-up probe already knows: 503, no healthy backend.
    let router = start_router(&format!(
        "backends:\n{}",
        backend_yaml("gone", closed, "[m]")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat(addr, HELLO).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"]["code"], "no_healthy_backend");
    assert_eq!(
        get_path(addr, "/health/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let admin = get_path(addr, "/admin/backends").await.json();
    assert_eq!(admin["backends"][0]["status"], "unhealthy");
}

#[tokio::test]
async fn slow_backend_is_504_for_plain_and_streamed_requests() {
    let slow = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let up = spawn_upstream(slow).await;
    let router = start_router(&format!(
        "timeouts:\n  request:\n    standard: {{first_byte: 150ms}}\n    streaming: {{first_byte: 150ms}}\nbackends:\n{}",
        backend_yaml("slow", up, "[m]")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    for body in [HELLO, r#"{"model":"m","stream":true,"messages":[]}"#] {
        let r = chat(addr, body).await;
        assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "backend_timeout");
    }
}

#[tokio::test]
async fn backend_errors_pass_through_with_their_body() {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|body: Bytes| async move {
            let v: Value = serde_json::from_slice(&body).unwrap();
            let status = if v["messages"][0]["content"] == "limit" { 429 } else { 500 };
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json"), ("retry-after", "7")],
                format!(r#"{{"error":{{"message":"upstream says {status}","type":"x","param":null,"code":"u{status}"}}}}"#),
            )
        }),
    );
    let up = spawn_upstream(app).await;
    // One attempt: what the backend said is what the client gets (retries are tested apart).
    let router = start_router(&format!(
        "retry: {{max_attempts: 1}}\nbackends:\n{}",
        backend_yaml("e", up, "[m]")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat(
        addr,
        r#"{"model":"m","messages":[{"role":"user","content":"limit"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.text(),
        r#"{"error":{"message":"upstream says 429","type":"x","param":null,"code":"u429"}}"#
    );
    assert_eq!(r.header("retry-after"), "7");
    assert_eq!(r.header("x-continuum-backend"), "e");
    let r = chat(
        addr,
        r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"boom"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json()["error"]["code"], "u500");
}

#[tokio::test]
async fn stalled_stream_ends_with_an_error_event_not_done() {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let stream = futures_util::stream::unfold(0u32, |i| async move {
                if i > 0 {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Some((
                    Ok::<_, Infallible>(Bytes::from_static(b"data: {\"choices\":[]}\n\n")),
                    i + 1,
                ))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(stream),
            )
        }),
    );
    let up = spawn_upstream(app).await;
    let router = start_router(&format!(
        "timeouts:\n  request:\n    streaming: {{chunk_interval: 200ms}}\nbackends:\n{}",
        backend_yaml("stall", up, "[m]")
    ))
    .await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(text.starts_with("data: {\"choices\":[]}\n\n"), "{text}");
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let event: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(event["error"]["code"], "backend_timeout");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let (cancelled_tx, cancelled_rx) = tokio::sync::oneshot::channel::<()>();
    let cancelled_tx = Arc::new(Mutex::new(Some(cancelled_tx)));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let cancelled_tx = cancelled_tx.clone();
            async move {
                let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(1);
                tokio::spawn(async move {
                    loop {
                        if tx
                            .send(Ok(Bytes::from_static(b"data: {\"choices\":[]}\n\n")))
                            .await
                            .is_err()
                        {
                            if let Some(t) = cancelled_tx.lock().unwrap().take() {
                                let _ = t.send(());
                            }
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                });
                let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|c| (c, rx))
                });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(stream),
                )
            }
        }),
    );
    let up = spawn_upstream(app).await;
    let router = start_router(&format!("backends:\n{}", backend_yaml("inf", up, "[m]"))).await;
    let client = continuum::backend::build_client(1, Duration::from_secs(5));
    let mut req = http::Request::new(http_body_util::Full::new(Bytes::from_static(
        br#"{"model":"m","stream":true,"messages":[]}"#,
    )));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("http://{}/v1/chat/completions", router.tcp_addr().unwrap())
        .parse()
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let mut body = resp.into_body();
    for _ in 0..3 {
        body.frame().await.unwrap().unwrap();
    }
    drop(body);
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), cancelled_rx)
        .await
        .expect("the upstream stream was not cancelled after the client went away")
        .unwrap();
}

#[tokio::test]
async fn models_are_discovered_listed_and_refreshed() {
    let models = Arc::new(Mutex::new(vec!["first"]));
    let app = axum::Router::new()
        .route(
            "/v1/models",
            get(
                |State(m): State<Arc<Mutex<Vec<&'static str>>>>| async move {
                    let data: Vec<Value> = m
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|id| json!({"id": id, "object": "model"}))
                        .collect();
                    axum::Json(json!({"object": "list", "data": data}))
                },
            ),
        )
        .route(
            "/v1/chat/completions",
            post(|| async { axum::Json(json!({"ok": true})) }),
        )
        .with_state(models.clone());
    let up = spawn_upstream(app).await;
    let (mut config, _) = continuum::config::from_text(
        &format!("backends:\n  - {{name: disc, type: llamacpp, url: \"http://{up}/v1\"}}\n  - {{name: demo, type: mock, models: [first, mock-model]}}\n"),
        continuum::config::Format::Yaml,
        "t",
        &std::collections::HashMap::<String, String>::new(),
        continuum::config::Strictness::Validate,
    )
    .unwrap();
    config.server.bind_address = vec![continuum::config::BindAddr::Tcp(
        "127.0.0.1:0".parse().unwrap(),
    )];
    let router = continuum::Router::builder(config)
        .discovery_interval(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let addr = router.tcp_addr().unwrap();

    let list = get_path(addr, "/v1/models").await.json();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["first", "mock-model"]);
    assert_eq!(list["data"][0]["backends"], json!(["disc", "demo"]));
    assert_eq!(
        get_path(addr, "/v1/models/mock-model").await.json()["id"],
        "mock-model"
    );
    let missing = get_path(addr, "/v1/models/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "model_not_found");
    assert_eq!(
        chat(addr, r#"{"model":"second","messages":[]}"#)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    models.lock().unwrap().push("second");
    let mut routed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = chat(addr, r#"{"model":"second","messages":[]}"#).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.header("x-continuum-backend"), "disc");
            routed = true;
            break;
        }
    }
    assert!(routed, "a model added upstream never became routable");
}

#[tokio::test]
async fn mock_backend_streams_and_fails_on_request() {
    let router = start_router(
        "backends:\n  - {name: demo, type: mock, models: [mock-model], mock: {first_token_latency: 1ms, tokens_per_second: 0}}\n  - {name: flaky, type: mock, models: [flaky], mock: {fail_rate: 1.0}}\n",
    )
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat(
        addr,
        r#"{"model":"mock-model","messages":[{"role":"user","content":"echo me back"}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "echo me back");
    assert_eq!(v["usage"]["completion_tokens"], 3);

    let r = chat(addr, r#"{"model":"mock-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"echo me back"}]}"#).await;
    assert_eq!(r.header("content-type"), "text/event-stream");
    let text = r.text();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
    let content: String = events
        .iter()
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, "echo me back");
    assert!(text.contains("\"usage\":{"));

    let r = chat(addr, r#"{"model":"flaky","messages":[]}"#).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.json()["error"]["type"], "server_error");
    assert_eq!(
        get_path(addr, "/health").await.json(),
        json!({"status": "ok"})
    );
    assert_eq!(get_path(addr, "/healthz").await.status, StatusCode::OK);
    let wrong_method = get_path(addr, "/v1/chat/completions").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("GET"));
    let unknown = get_path(addr, "/v2/nothing").await;
    assert!(!unknown.header("x-request-id").is_empty());
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn backend_headers_can_be_hidden() {
    let router = start_router(
        "server: {expose_backend_header: false}\nbackends:\n  - {name: demo, type: mock, mock: {first_token_latency: 1ms}}\n",
    )
    .await;
    let r = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"mock-model","messages":[]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-continuum-backend").is_none());
    assert!(r.headers.get("x-continuum-model").is_none());
    assert!(r.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn model_overrides_change_the_deadlines_of_one_model() {
    let slowish = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            axum::Json(json!({"ok": true}))
        }),
    );
    let up = spawn_upstream(slowish).await;
    let router = start_router(&format!(
        "retry: {{max_attempts: 1}}\ntimeouts:\n  request:\n    standard: {{first_byte: 100ms}}\n    model_overrides:\n      patient: {{standard: {{first_byte: 5s}}}}\nbackends:\n{}",
        backend_yaml("s", up, "[hasty, patient]")
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    assert_eq!(
        chat(addr, r#"{"model":"hasty","messages":[]}"#)
            .await
            .status,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        chat(addr, r#"{"model":"patient","messages":[]}"#)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_half_sent_event_is_not_glued_to_the_error_event() {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let items: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(
                    b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
                )),
                Ok(Bytes::from_static(
                    b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"He",
                )),
                Err(std::io::Error::other("cut")),
            ];
            let s = futures_util::stream::unfold(items.into_iter(), |mut it| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                it.next().map(|x| (x, it))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(s),
            )
        }),
    );
    let up = spawn_upstream(app).await;
    let router = start_router(&format!("backends:\n{}", backend_yaml("half", up, "[m]"))).await;
    let text = chat(
        router.tcp_addr().unwrap(),
        r#"{"model":"m","stream":true,"messages":[]}"#,
    )
    .await
    .text();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(
        events[0],
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}"
    );
    let error: Value = serde_json::from_str(events[1].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "backend_error");
}
