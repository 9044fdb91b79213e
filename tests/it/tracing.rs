//! Tracing: W3C trace context propagated to backends with the router's own span id,
//! configurable id headers echoed, structured logs carrying the ids, and spans exported
//! to an OTLP/HTTP receiver started in the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// An OpenAI-compatible upstream that keeps every request's headers.
fn upstream(seen: Seen) -> axum::Router {
    axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(headers);
                axum::Json(json!({"id": "c", "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}))
            }
        }),
    )
}

/// An OTLP/HTTP receiver keeping every export request's JSON.
fn receiver(got: Arc<Mutex<Vec<Value>>>) -> axum::Router {
    axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                assert_eq!(headers["content-type"], "application/json");
                got.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                axum::Json(json!({}))
            }
        }),
    )
}

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn chat_with(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Reply {
    send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
        headers,
    )
    .await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn trace_context_reaches_the_backend_and_the_span_reaches_the_collector() {
    let seen: Seen = Default::default();
    let up = spawn_upstream(upstream(seen.clone())).await;
    let got: Arc<Mutex<Vec<Value>>> = Default::default();
    let collector = spawn_upstream(receiver(got.clone())).await;
    let router = start_router(&format!(
        "tracing:\n  enabled: true\n  otlp_endpoint: \"http://{collector}\"\n  service_name: router-under-test\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat_with(
        addr,
        &[
            ("traceparent", PARENT),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("x-correlation-id", "corr-1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(r.header("x-correlation-id"), "corr-1");

    let sent = seen.lock().unwrap().last().cloned().unwrap();
    let tp = header(&sent, "traceparent");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(parts[2], "00f067aa0ba902b7", "a child span id");
    assert_eq!(parts[3], "01");
    assert_eq!(header(&sent, "tracestate"), "congo=t61rcWkgMzE");
    assert_eq!(header(&sent, "x-correlation-id"), "corr-1");
    assert_eq!(header(&sent, "x-request-id"), r.header("x-request-id"));

    // The collector gets the router's span: the backend's parent, the caller's child.
    let mut span = None;
    for _ in 0..200 {
        if let Some(batch) = got.lock().unwrap().first() {
            span = Some(batch.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let batch = span.expect("no span exported");
    let rs = &batch["resourceSpans"][0];
    assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
    assert_eq!(
        rs["resource"]["attributes"][0]["value"]["stringValue"],
        "router-under-test"
    );
    let span = &rs["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span["spanId"], parts[2]);
    assert_eq!(span["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(span["name"], "POST /v1/chat/completions");
    assert_eq!(span["kind"], 2);
    let start: u128 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u128 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(end >= start);
    let attrs = span["attributes"].to_string();
    assert!(
        attrs.contains("continuum.backend") && attrs.contains("\"up\""),
        "{attrs}"
    );
}

#[tokio::test]
async fn configured_header_names_and_a_new_trace_without_traceparent() {
    let seen: Seen = Default::default();
    let up = spawn_upstream(upstream(seen.clone())).await;
    let router = start_router(&format!(
        "tracing:\n  enabled: true\n  headers: {{trace_id: X-My-Trace, request_id: X-My-Req, correlation_id: X-My-Corr}}\nbackends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat_with(addr, &[("x-my-req", "req-abc")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("x-my-req"), "req-abc");
    assert_eq!(r.header("x-request-id"), "req-abc");
    assert_eq!(r.header("x-my-corr"), "req-abc", "the request id stands in");
    let trace = r.header("x-my-trace").to_string();
    assert_eq!(trace.len(), 32, "{trace}");
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(header(&sent, "x-request-id"), "req-abc");
    assert_eq!(header(&sent, "x-my-corr"), "req-abc");
    assert_eq!(
        header(&sent, "traceparent").split('-').nth(1),
        Some(trace.as_str())
    );

    // A malformed traceparent starts a new trace rather than being passed on.
    let r = chat_with(addr, &[("traceparent", "00-zz-yy-01")]).await;
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    assert!(!header(&sent, "traceparent").contains("zz"));
    assert_eq!(
        header(&sent, "traceparent").split('-').nth(1),
        Some(r.header("x-my-trace"))
    );
}

#[test]
fn json_logs_carry_the_request_and_trace_ids() {
    let dir = temp_dir("trace-logs");
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        "server: {bind_address: \"127.0.0.1:0\"}\ntracing: {enabled: true}\nbackends:\n  - {name: one, type: mock, models: [mock-a], mock: {first_token_latency: 0ms}}\n",
    )
    .unwrap();
    let mut p = ServeProcess::start(
        bin()
            .args([
                "serve",
                "--log-format",
                "json",
                "--log-level",
                "debug",
                "--config",
            ])
            .arg(&file),
        1,
    );
    let addr = p.tcp_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(send(
        Method::POST,
        format!("http://{addr}/v1/chat/completions"),
        r#"{"model":"mock-a","messages":[{"role":"user","content":"hi"}]}"#,
        &[("x-request-id", "rid-42"), ("traceparent", PARENT)],
    ));
    assert_eq!(r.status, StatusCode::OK);
    let mut found = None;
    while let Some(line) = p.next_line(Duration::from_secs(5)) {
        if line.contains("rid-42") {
            found = Some(line);
            break;
        }
    }
    let line = found.unwrap_or_else(|| panic!("no log line with the ids:\n{}", p.seen.join("\n")));
    let v: Value = serde_json::from_str(&line).unwrap();
    let span = v["span"].to_string();
    assert!(
        span.contains("rid-42") && span.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{line}"
    );
    p.terminate();
    assert_eq!(p.wait_exit(Duration::from_secs(10)), 0);
}

#[tokio::test]
async fn traceparent_is_propagated_as_a_child_span_without_a_tracing_section() {
    let seen: Seen = Default::default();
    let up = spawn_upstream(upstream(seen.clone())).await;
    let router = start_router(&format!(
        "backends:\n  - {{name: up, type: vllm, url: \"http://{up}\", models: [m]}}\n"
    ))
    .await;
    let addr = router.tcp_addr().unwrap();
    let r = chat_with(addr, &[("traceparent", PARENT), ("tracestate", "vendor=1")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let sent = seen.lock().unwrap().pop().unwrap();
    let tp: Vec<&str> = header(&sent, "traceparent").split('-').collect();
    assert_eq!(tp.len(), 4, "{sent:?}");
    assert_eq!(tp[0], "00");
    assert_eq!(
        tp[1], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    assert_ne!(tp[2], "00f067aa0ba902b7", "a child span, not the caller's");
    assert_eq!(tp[2].len(), 16);
    assert_eq!(tp[3], "01");
    assert_eq!(header(&sent, "tracestate"), "vendor=1");

    // Without a traceparent nothing is invented.
    let r = chat_with(addr, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        header(&seen.lock().unwrap().pop().unwrap(), "traceparent"),
        ""
    );
}
